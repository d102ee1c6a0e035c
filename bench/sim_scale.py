"""How fast the simulator is: ring and Rabenseifner all-reduce on fat-trees, up to a million
ranks.

``python -m bench.sim_scale`` prints one line per row: ranks, algorithm, the routing policy and
the fat-tree's ``k``, the steps and transfers simulated, which way the contention model got
its answer (``fast``: per-step rates proven exact, see :mod:`sim.fastpath`; ``flow``: the
event-driven flow simulation of :mod:`sim.flows`), the seconds ``simulate`` took (wall clock,
and the CPU seconds of its process: on a shared machine the two part), transfers per second on
that path (fast-path and event-path figures in their own columns: they differ by
two orders of magnitude), the peak resident memory of the row and the predicted collective
time for 1 GiB. Building the schedule and the network (and placing the ranks) is timed apart
(``setup_s``). The per-transfer timeline is off.

The default rows (:data:`ROWS`) are the issue's targets, each under the routing a real machine
of that size would use:

* rings under ``auto`` routing (``dmodk`` on a fat-tree): every ring step is a shift, the
  fast path applies, up to 262,144 ranks (524,286 steps);
* Rabenseifner under ``shortest`` (hashed ECMP, as Ethernet/RoCE fabrics route) up to 16,384
  ranks: hash collisions put two flows
  on one uplink, they end at different times, and the run takes the event path; its
  transfers/s is the event-path figure;
* Rabenseifner under ``dmodk`` (destination-mod-k up-ports, as InfiniBand subnet managers and
  SimGrid's fat-tree route) on a fat-tree whose ``k/2`` up-ports per switch are a power of two
  (the smallest such ``k`` that fits): recursive halving and doubling then never put two flows
  on one link, the fast path applies, up to 1,048,576 ranks (``k = 256``).

Each row runs in a process of its own (so its peak memory is its own) and stops after
``--limit`` seconds (default 300), printed as ``>LIMIT``. ``--repeat N`` (default 3) reports
the best of up to ``N`` cold runs (each on a fresh topology, so nothing routed or costed is
reused), repeating only while the row's simulations have taken under a second in all: the
machine may be shared, and best-of-N is what the figures are. ``--quick`` keeps the rows up to
1024 ranks. ``--ranks P,P --algorithms A,A [--routing POLICY]`` runs those instead (on the
smallest fat-tree that fits, or the smallest power-of-two ``k`` under ``dmodk``);
``--topology analytic`` uses the fully connected network without a graph.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectives import build  # noqa: E402
from sim import simulate  # noqa: E402
from sim.api import make_topology  # noqa: E402
from sim.fabric import fabric_for  # noqa: E402

__all__ = ["main", "run", "run_row"]

ALGORITHMS = ("ring", "rabenseifner")
#: The default rows: (ranks, algorithm, routing policy; None: the network's own, ``auto``).
ROWS = (
    (256, "ring", None), (1024, "ring", None), (4096, "ring", None), (16384, "ring", None),
    (262_144, "ring", None),
    (256, "rabenseifner", "shortest"), (1024, "rabenseifner", "shortest"),
    (4096, "rabenseifner", "shortest"), (16384, "rabenseifner", "shortest"),
    (1024, "rabenseifner", "dmodk"), (16384, "rabenseifner", "dmodk"),
    (1_048_576, "rabenseifner", "dmodk"),
)
#: ``--quick`` keeps the rows up to this many ranks.
QUICK_RANKS = 1024
#: Repeats stop once a row's simulations have taken this many seconds in all.
REPEAT_BUDGET_S = 1.0


#: Latency and bandwidth of the analytic fully connected network (``--topology analytic``).
ANALYTIC = {"alpha": 1e-6, "beta": 1 / 25e9}


def fat_tree_k(p: int, routing: str | None) -> int:
    """The fat-tree radix for ``p`` ranks: the smallest even ``k`` with ``k**3 / 4 >= p``, and
    under ``dmodk`` the smallest power of two (so that each switch's ``k/2`` up-ports are a
    power of two and recursive halving / doubling partners never share an up-port)."""
    k = 2
    while k**3 // 4 < p:
        k = 2 * k if routing == "dmodk" else k + 2
    return k


def _topology(p: int, name: str = "fat-tree", routing: str | None = None):
    """A fresh topology for ``p`` ranks, compiled and with the ranks placed (setup work); None
    for the analytic fully connected network."""
    if name == "analytic":
        return None
    extra = {"k": fat_tree_k(p, routing)} if name == "fat-tree" else {}
    G = make_topology(name, p, **extra)
    fabric_for(G, p, routing=routing)
    return G


def run_row(p: int, algo: str, nbytes: int = 1 << 30, model: str = "contention",
            repeat: int = 3, routing: str | None = None, topology: str = "fat-tree") -> dict:
    """One row, in this process: best of up to ``repeat`` cold runs of ``simulate``."""
    from sim.models import model_params

    t0 = time.perf_counter()
    G = _topology(p, topology, routing)
    if G is None:
        model = model_params(model, **ANALYTIC)
    sch = build("allreduce", algo, p)
    setup = time.perf_counter() - t0
    kw = {} if routing is None else {"routing": routing}
    secs = cpu = float("inf")
    spent = 0.0
    res = None
    for r in range(max(repeat, 1)):
        if r and spent >= REPEAT_BUDGET_S:
            break
        topo = G if r == 0 else _topology(p, topology, routing)  # nothing cached before
        t2, c2 = time.perf_counter(), time.process_time()
        res = simulate(sch, topo, nbytes, model, timeline=False, **kw)
        s, c = time.perf_counter() - t2, time.process_time() - c2
        spent += s
        if s < secs:
            secs, cpu = s, c
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    k = None if G is None else G.graph.get("params", {}).get("k")
    return {"ranks": p, "algorithm": algo, "routing": routing or "auto", "k": k,
            "steps": res.nsteps, "transfers": res.ntransfers,
            "path": res.path, "setup_s": setup, "seconds": secs, "cpu_s": cpu,
            "transfers_per_s": res.ntransfers / secs, "peak_rss": rss, "time_s": res.time_s}


def _child(conn, *args):
    try:
        conn.send(("ok", run_row(*args)))
    except Exception as e:  # reported as the row's result, one line
        conn.send(("error", f"{type(e).__name__}: {e}"))
    conn.close()


def _row_in_child(args: tuple, limit: float):
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, *args))
    proc.start()
    send.close()
    got = None
    if recv.poll(limit):
        try:
            got = recv.recv()
        except EOFError:
            got = None
    if proc.is_alive():
        proc.kill()
    proc.join()
    if got is None:
        return "timeout" if proc.exitcode in (None, -9) else f"died ({proc.exitcode})"
    kind, value = got
    return value if kind == "ok" else value


HEADER = (f"{'ranks':>8} {'algorithm':>13} {'routing':>8} {'k':>4} {'steps':>7} "
          f"{'transfers':>10} {'path':>5} "
          f"{'setup_s':>8} {'seconds':>8} {'cpu_s':>8} {'fast tr/s':>10} {'event tr/s':>10} "
          f"{'peak_mem':>9} "
          f"{'predicted':>10}")


def _format(row: dict) -> str:
    tps = f"{row['transfers_per_s']:>10.3g}"
    fast, event = (tps, f"{'-':>10}") if row["path"] != "flow" else (f"{'-':>10}", tps)
    k = "-" if row["k"] is None else row["k"]
    return (f"{row['ranks']:>8} {row['algorithm']:>13} {row['routing']:>8} {k:>4} "
            f"{row['steps']:>7} {row['transfers']:>10} "
            f"{row['path']:>5} {row['setup_s']:>8.2f} {row['seconds']:>8.2f} {row['cpu_s']:>8.2f} "
            f"{fast} {event} "
            f"{row['peak_rss'] / 2**30:>7.2f}Gi {row['time_s'] * 1e3:>8.2f}ms")


def run(rows, nbytes: int = 1 << 30, model: str = "contention", out=sys.stdout,
        repeat: int = 3, limit: float = 300.0, routing: str | None = None,
        topology: str = "fat-tree") -> list[dict]:
    """Simulate every row of ``rows`` (``(ranks, algorithm)`` under ``routing``, or ``(ranks,
    algorithm, routing)``), each in a process of its own; print a line each and return the
    rows that finished as dicts."""
    runs = "one run" if repeat <= 1 else f"best of up to {repeat} cold runs"
    where = ("fat-tree (smallest even k that fits; under dmodk the smallest power of two)"
             if topology == "fat-tree" else
             f"{topology} (alpha 1 us, 25 GB/s)" if topology == "analytic" else topology)
    print(f"# {model} model, {where}, {nbytes} bytes, {runs}, {limit:g} s limit per row; "
          f"routing auto = dmodk on a fat-tree, shortest = hashed ECMP", file=out)
    print(HEADER, file=out, flush=True)
    done = []
    for row in rows:
        p, algo = row[0], row[1]
        how = row[2] if len(row) > 2 else routing
        got = _row_in_child((p, algo, nbytes, model, repeat, how, topology), limit)
        if isinstance(got, dict):
            done.append(got)
            print(_format(got), file=out, flush=True)
        else:
            what = f">{limit:g}s" if got == "timeout" else got
            print(f"{p:>8} {algo:>13} {how or 'auto':>8}  {what}", file=out, flush=True)
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"the default rows up to {QUICK_RANKS} ranks only")
    parser.add_argument("--big", action="store_true",
                        help="no effect: the large rows are among the default ones now")
    parser.add_argument("--model", default="contention",
                        choices=("hockney", "contention", "loggp"))
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="best of up to N cold runs per row (default 3; 1: one run)")
    parser.add_argument("--limit", type=float, default=300.0, metavar="S",
                        help="stop a row after S seconds (default 300)")
    parser.add_argument("--routing", default=None, metavar="POLICY",
                        help="with --ranks: the routing policy passed to simulate")
    parser.add_argument("--topology", default="fat-tree",
                        help="fat-tree (default), analytic (fully connected, no graph) or "
                             "another sim topology name")
    parser.add_argument("--ranks", default=None, metavar="P,P,...",
                        help="these rank counts instead of the default rows")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS), metavar="A,A,...")
    args = parser.parse_args(argv)
    if args.ranks is not None:
        rows = [(int(p), a, args.routing) for p in args.ranks.split(",")
                for a in args.algorithms.split(",")]
    else:
        rows = [r for r in ROWS if not args.quick or r[0] <= QUICK_RANKS]
        if args.routing is not None:
            parser.error("--routing goes with --ranks (the default rows name their own)")
    run(rows, model=args.model, repeat=args.repeat, limit=args.limit, topology=args.topology)
    return 0


if __name__ == "__main__":
    sys.exit(main())
