"""``python -m collectives``: list the algorithms, or show one schedule.

    python -m collectives                          # every algorithm with steps and bytes per rank
    python -m collectives show allreduce ring 8    # one schedule, step by step
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction

from collectives.registry import algorithms, build


def _table(ranks: list[int]) -> str:
    rows = ["collective     algorithm            p  steps  transfers  max sent/n  max messages"]
    for coll, algs in algorithms().items():
        for algo in algs:
            for p in ranks:
                s = build(coll, algo, p)
                # n = a multiple of every chunk count, so the fraction is exact.
                n = s.nchunks * 720720
                frac = Fraction(int(s.bytes_sent(n).max()), n)
                msgs = int(s.messages_sent().max())
                rows.append(f"{coll:<14} {algo:<18} {p:>3} {len(s.steps):>6} "
                            f"{s.ntransfers:>10}  {str(frac):>10}  {msgs:>12}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collectives", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    table = sub.add_parser("table", help="steps and bytes per rank of every algorithm")
    table.add_argument("--ranks", default="7,8", help="comma-separated rank counts (7,8)")
    show = sub.add_parser("show", help="one schedule, step by step")
    show.add_argument("collective")
    show.add_argument("algorithm")
    show.add_argument("ranks", type=int)
    show.add_argument("--limit", type=int, default=60, help="transfers to list (60)")
    args = parser.parse_args(argv)
    try:
        if args.command == "show":
            print(build(args.collective, args.algorithm, args.ranks).describe(args.limit))
        else:
            ranks = [int(x) for x in getattr(args, "ranks", "7,8").split(",")]
            print(_table(ranks))
    except ValueError as e:
        print(f"python -m collectives: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
