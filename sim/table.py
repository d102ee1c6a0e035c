"""One table format for predicted and measured results, in nccl-tests' columns.

The simulator and the MPI/NCCL benchmarks print through :func:`format_table`, so a predicted
and a measured table can be diffed line by line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from collectives.metrics import algbw, busbw

__all__ = ["Record", "format_table", "make_record"]


@dataclass(frozen=True)
class Record:
    """One (size, algorithm) result: measured (``wrong`` is a count) or predicted (None)."""

    collective: str
    algorithm: str
    ranks: int
    size: int  # bytes of the full vector (nccl-tests' "size")
    count: int  # elements
    dtype: str
    redop: str
    time_s: float
    algbw: float  # bytes/s
    busbw: float  # bytes/s
    wrong: int | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(d.pop("extra"))
        return d


def make_record(collective: str, algorithm: str, ranks: int, size: int, count: int, dtype: str,
                redop: str, time_s: float, wrong: int | None = None, **extra) -> Record:
    """A :class:`Record` with algbw and busbw computed by nccl-tests' rules."""
    return Record(collective, algorithm, ranks, int(size), int(count), dtype, redop,
                  float(time_s), algbw(size, time_s), busbw(collective, ranks, size, time_s),
                  wrong, dict(extra))


_HEADER = ("size", "count", "type", "redop", "algorithm", "time", "algbw", "busbw", "#wrong")
_UNITS = ("(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "")


def format_table(records: Iterable[Record], best: Sequence[tuple[int, str]] = ()) -> str:
    """Fixed-width rows: size, count, type, redop, algorithm, time (us), algbw and busbw (GB/s),
    #wrong ("N/A" for predictions). Rows whose (size, algorithm) is in ``best`` get a ``*``."""
    marks = set(best)
    widths = (12, 12, 8, 6, 26, 12, 9, 9, 7)
    lines = [
        "#" + " ".join(h.rjust(w) for h, w in zip(_HEADER, widths, strict=True))[1:],
        "#" + " ".join(u.rjust(w) for u, w in zip(_UNITS, widths, strict=True))[1:],
    ]
    for r in records:
        wrong = "N/A" if r.wrong is None else str(r.wrong)
        mark = " *" if (r.size, r.algorithm) in marks else ""
        cells = (str(r.size), str(r.count), r.dtype, r.redop, r.algorithm,
                 f"{r.time_s * 1e6:.2f}", f"{r.algbw / 1e9:.3f}", f"{r.busbw / 1e9:.3f}", wrong)
        lines.append(" ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + mark)
    return "\n".join(lines)
