"""How fast the simulator is: ring and Rabenseifner all-reduce, contention model, fat-tree.

Runs ``python -m bench.sim_scale`` (or ``python bench/sim_scale.py``) and prints, per run, the
rank count, the transfers simulated, the seconds ``simulate`` took (wall and CPU) and
transfers per (wall) second, with the predicted collective time for 1 GiB. Building the
schedule and generating and compiling the network (and placing the ranks on it) are timed
apart (``setup_s``): they happen once per (algorithm, ranks) and are reused across message
sizes. The per-transfer timeline is off (``timeline=False``), as it is by default above a
million transfers. ``--quick`` stops at 1024 ranks.

A run of a few milliseconds is at the mercy of the machine (another process, a cold cache):
``--repeat N`` (default 3) reports the best of up to ``N`` cold runs, each on a fresh topology
(so nothing routed or costed is reused), repeating only while the run's simulations have
taken less than a second in all; ``--repeat 1`` times a single run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectives import build  # noqa: E402
from sim import simulate  # noqa: E402
from sim.api import make_topology  # noqa: E402
from sim.fabric import fabric_for  # noqa: E402

__all__ = ["main", "run"]

SIZES = (256, 1024, 4096, 16384)
QUICK = (256, 1024)
ALGORITHMS = ("ring", "rabenseifner")
#: Repeats stop once a run's simulations have taken this many seconds in all.
REPEAT_BUDGET_S = 1.0


def _topology(p: int):
    """A fresh fat-tree for ``p`` ranks, compiled and with the ranks placed (setup work)."""
    G = make_topology("fat-tree", p)
    fabric_for(G, p)
    return G


def run(ranks=SIZES, algorithms=ALGORITHMS, nbytes: int = 1 << 30, model: str = "contention",
        out=sys.stdout, repeat: int = 3) -> list[dict]:
    """Simulate every (ranks, algorithm), best of up to ``repeat`` cold runs; print a row each
    and return them as dicts."""
    rows = []
    header = (f"{'ranks':>7} {'algorithm':>13} {'steps':>7} {'transfers':>12} {'setup_s':>8} "
              f"{'seconds':>8} {'cpu_s':>7} {'transfers/s':>12} {'predicted':>10}")
    runs = "one run" if repeat <= 1 else f"best of up to {repeat} cold runs"
    print(f"# {model} model, fat-tree (smallest even k that fits), {nbytes} bytes, {runs}",
          file=out)
    print(header, file=out, flush=True)
    for p in ranks:
        t0 = time.perf_counter()
        G = _topology(p)
        for algo in algorithms:
            t1 = time.perf_counter()
            sch = build("allreduce", algo, p)
            setup = time.perf_counter() - t1 + (t1 - t0)
            secs = cpu = float("inf")
            spent = 0.0
            for r in range(max(repeat, 1)):
                if r and spent >= REPEAT_BUDGET_S:
                    break
                topo = G if r == 0 else _topology(p)  # nothing cached from the runs before
                t2, c2 = time.perf_counter(), time.process_time()
                res = simulate(sch, topo, nbytes, model, timeline=False)
                s, c = time.perf_counter() - t2, time.process_time() - c2
                spent += s
                if s < secs:
                    secs, cpu = s, c
            row = {"ranks": p, "algorithm": algo, "steps": res.nsteps,
                   "transfers": res.ntransfers, "setup_s": setup, "seconds": secs,
                   "cpu_s": cpu, "transfers_per_s": res.ntransfers / secs,
                   "time_s": res.time_s}
            rows.append(row)
            print(f"{p:>7} {algo:>13} {res.nsteps:>7} {res.ntransfers:>12} {setup:>8.2f} "
                  f"{secs:>8.2f} {cpu:>7.2f} {row['transfers_per_s']:>12.3g} "
                  f"{res.time_s * 1e3:>8.2f}ms", file=out, flush=True)
            t0 = time.perf_counter()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="256 and 1024 ranks only")
    parser.add_argument("--model", default="contention",
                        choices=("hockney", "contention", "loggp"))
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="best of up to N cold runs per row (default 3; 1: one run)")
    args = parser.parse_args(argv)
    run(QUICK if args.quick else SIZES, model=args.model, repeat=args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
