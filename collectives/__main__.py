"""``python -m collectives``: list the algorithms, or show one schedule.

    python -m collectives                          # every algorithm with steps and bytes per rank
    python -m collectives show allreduce ring 8    # one schedule, step by step
    python -m collectives show allreduce rabenseifner 8 --option order=farthest-first

Defaults follow MPICH (docs/algorithms.md); each algorithm's other library variants are listed
with their options.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction

from collectives.registry import algorithms, build, variants


def _peers(s, rank: int, limit: int = 8) -> str:
    """The rank ``rank`` sends to in each step (``.`` where it sends nothing), comma-separated."""
    out = []
    for step in s.steps[:limit]:
        mine = step.dst[step.src == rank]
        out.append("+".join(str(int(d)) for d in mine) if mine.size else ".")
    return ",".join(out) + (",..." if len(s.steps) > limit else "")


def _table(ranks: list[int]) -> str:
    rows = [f"{'collective':<14} {'algorithm':<18} {'options':<20} {'p':>3} {'steps':>6} "
            f"{'transfers':>10}  {'max sent/n':>10}  {'max messages':>12}  rank 0 sends to"]
    for coll, algs in algorithms().items():
        for algo in algs:
            for opts in variants(coll, algo):
                label = " ".join(f"{k}={v}" for k, v in opts.items()) or "-"
                for p in ranks:
                    s = build(coll, algo, p, **opts)
                    # n = a multiple of every chunk count, so the fraction is exact.
                    n = s.nchunks * 720720
                    frac = Fraction(int(s.bytes_sent(n).max()), n)
                    msgs = int(s.messages_sent().max())
                    rows.append(f"{coll:<14} {algo:<18} {label:<20} {p:>3} {len(s.steps):>6} "
                                f"{s.ntransfers:>10}  {str(frac):>10}  {msgs:>12}  "
                                f"{_peers(s, 0)}")
    return "\n".join(rows)


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--option expects NAME=VALUE (e.g. order=farthest-first), got {text!r}")
    value = value.strip()
    return key.strip().replace("-", "_"), int(value) if value.lstrip("-").isdigit() else value


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
    show.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                      help="builder option, e.g. order=farthest-first (repeatable)")
    args = parser.parse_args(argv)
    try:
        if args.command == "show":
            opts = dict(_option(o) for o in args.option)
            print(build(args.collective, args.algorithm, args.ranks, **opts)
                  .describe(args.limit))
        else:
            text = getattr(args, "ranks", "7,8")
            try:
                ranks = [int(x) for x in text.split(",")]
            except ValueError:
                raise ValueError(f"--ranks expects comma-separated integers (e.g. 7,8), "
                                 f"got {text!r}") from None
            print(_table(ranks))
    except ValueError as e:
        print(f"python -m collectives: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
