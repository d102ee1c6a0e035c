"""How fast the simulator is: ring and Rabenseifner all-reduce on a fat-tree.

``python -m bench.sim_scale`` prints, per (ranks, algorithm): the steps and transfers
simulated, which way the contention model got its answer (``fast``: per-step rates proven
exact, see :mod:`sim.fastpath`; ``flow``: the event-driven flow simulation of :mod:`sim.flows`),
the seconds ``simulate`` took, transfers per second on that path (fast-path and event-path
figures in their own columns: they differ by orders of magnitude), the peak resident memory of
the row and the predicted collective time for 1 GiB. Building the schedule and the network
(and placing the ranks) is timed apart (``setup_s``). The per-transfer timeline is off.

Each row runs in a process of its own (so its peak memory is its own) and stops after
``--limit`` seconds (default 300), printed as ``>LIMIT``. ``--repeat N`` (default 3) reports
the best of up to ``N`` cold runs (each on a fresh topology, so nothing routed or costed is
reused), repeating only while the row's simulations have taken under a second in all: the
machine may be shared, and best-of-N is what the figures are. ``--quick`` stops at 1024 ranks;
``--big`` adds the large rows (a 262,144-rank ring: 524,286 steps; a 1,048,576-rank
Rabenseifner). ``--routing POLICY`` is passed to ``simulate`` where it takes one;
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

SIZES = (256, 1024, 4096, 16384)
QUICK = (256, 1024)
ALGORITHMS = ("ring", "rabenseifner")
#: The large rows of ``--big``: (ranks, algorithm).
BIG = ((262_144, "ring"), (1_048_576, "rabenseifner"))
#: Repeats stop once a row's simulations have taken this many seconds in all.
REPEAT_BUDGET_S = 1.0


#: Latency and bandwidth of the analytic fully connected network (``--topology analytic``).
ANALYTIC = {"alpha": 1e-6, "beta": 1 / 25e9}


def _topology(p: int, name: str = "fat-tree"):
    """A fresh topology for ``p`` ranks, compiled and with the ranks placed (setup work); None
    for the analytic fully connected network."""
    if name == "analytic":
        return None
    G = make_topology(name, p)
    fabric_for(G, p)
    return G


def run_row(p: int, algo: str, nbytes: int = 1 << 30, model: str = "contention",
            repeat: int = 3, routing: str | None = None, topology: str = "fat-tree") -> dict:
    """One row, in this process: best of up to ``repeat`` cold runs of ``simulate``."""
    from sim.models import model_params

    t0 = time.perf_counter()
    G = _topology(p, topology)
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
        topo = G if r == 0 else _topology(p, topology)  # nothing cached from the runs before
        t2, c2 = time.perf_counter(), time.process_time()
        res = simulate(sch, topo, nbytes, model, timeline=False, **kw)
        s, c = time.perf_counter() - t2, time.process_time() - c2
        spent += s
        if s < secs:
            secs, cpu = s, c
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"ranks": p, "algorithm": algo, "steps": res.nsteps, "transfers": res.ntransfers,
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


HEADER = (f"{'ranks':>8} {'algorithm':>13} {'steps':>7} {'transfers':>12} {'path':>5} "
          f"{'setup_s':>8} {'seconds':>8} {'fast tr/s':>10} {'event tr/s':>10} {'peak_mem':>9} "
          f"{'predicted':>10}")


def _format(row: dict) -> str:
    tps = f"{row['transfers_per_s']:>10.3g}"
    fast, event = (tps, f"{'-':>10}") if row["path"] != "flow" else (f"{'-':>10}", tps)
    return (f"{row['ranks']:>8} {row['algorithm']:>13} {row['steps']:>7} {row['transfers']:>12} "
            f"{row['path']:>5} {row['setup_s']:>8.2f} {row['seconds']:>8.2f} {fast} {event} "
            f"{row['peak_rss'] / 2**30:>7.2f}Gi {row['time_s'] * 1e3:>8.2f}ms")


def run(rows, nbytes: int = 1 << 30, model: str = "contention", out=sys.stdout,
        repeat: int = 3, limit: float = 300.0, routing: str | None = None,
        topology: str = "fat-tree") -> list[dict]:
    """Simulate every ``(ranks, algorithm)`` of ``rows``, each in a process of its own; print a
    line each and return the rows that finished as dicts."""
    runs = "one run" if repeat <= 1 else f"best of up to {repeat} cold runs"
    route = "" if routing is None else f", routing {routing}"
    where = ("fat-tree (smallest even k that fits)" if topology == "fat-tree" else
             f"{topology} (alpha 1 us, 25 GB/s)" if topology == "analytic" else topology)
    print(f"# {model} model, {where}{route}, {nbytes} bytes, "
          f"{runs}, {limit:g} s limit per row", file=out)
    print(HEADER, file=out, flush=True)
    done = []
    for p, algo in rows:
        got = _row_in_child((p, algo, nbytes, model, repeat, routing, topology), limit)
        if isinstance(got, dict):
            done.append(got)
            print(_format(got), file=out, flush=True)
        else:
            what = f">{limit:g}s" if got == "timeout" else got
            print(f"{p:>8} {algo:>13}  {what}", file=out, flush=True)
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="256 and 1024 ranks only")
    parser.add_argument("--big", action="store_true",
                        help="add a 262,144-rank ring and a 1,048,576-rank Rabenseifner")
    parser.add_argument("--model", default="contention",
                        choices=("hockney", "contention", "loggp"))
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="best of up to N cold runs per row (default 3; 1: one run)")
    parser.add_argument("--limit", type=float, default=300.0, metavar="S",
                        help="stop a row after S seconds (default 300)")
    parser.add_argument("--routing", default=None, metavar="POLICY",
                        help="routing policy passed to simulate (where it takes one)")
    parser.add_argument("--topology", default="fat-tree",
                        help="fat-tree (default), analytic (fully connected, no graph) or "
                             "another sim topology name")
    parser.add_argument("--ranks", default=None, metavar="P,P,...",
                        help="these rank counts instead of the default rows")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS), metavar="A,A,...")
    args = parser.parse_args(argv)
    sizes = (QUICK if args.quick else SIZES) if args.ranks is None else tuple(
        int(x) for x in args.ranks.split(","))
    rows = [(p, a) for p in sizes for a in args.algorithms.split(",")]
    if args.big:
        rows += list(BIG)
    run(rows, model=args.model, repeat=args.repeat, limit=args.limit, routing=args.routing,
        topology=args.topology)
    return 0


if __name__ == "__main__":
    sys.exit(main())
