"""``--algorithms auto``: the project schedule the calibrated simulator predicts fastest.

For one collective, rank count and size, :func:`choose` predicts every candidate of
:func:`candidates` (each registered algorithm at its defaults, the double binary tree at
several pipeline depths, binomial pipelined) with :func:`sim.engine.simulate` on the
analytic network under the machine's calibrated model (``bench calibrate``), and returns the
fastest, where a prediction within the model's error of the fastest (``MARGIN``) goes to the
schedule with fewer steps. It never picks the MPI library's own collective: ``auto`` is a
project schedule run by the project's executor, so that ``auto`` beside ``native`` measures
the model's choice against the library's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from collectives import algorithms, build
from collectives.compose import pipelined
from collectives.ir import Schedule

__all__ = ["MARGIN", "Choice", "candidates", "choose"]

#: Pipeline depths tried for the schedules that gain from pipelining.
SEGMENTS = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Choice:
    """What auto chose: ``label`` (algorithm and options, e.g. ``double-binary-tree
    segments=4``), the schedule and its predicted time (seconds)."""

    label: str
    schedule: Schedule
    predicted_s: float


@lru_cache(maxsize=64)
def candidates(collective: str, nranks: int) -> tuple[tuple[str, Schedule], ...]:
    """``(label, schedule)`` for every schedule auto may choose for ``collective`` on
    ``nranks`` ranks (those that cannot be built there are left out).

    >>> [label for label, _ in candidates("allgather", 4)]  # doctest: +NORMALIZE_WHITESPACE
    ['ring', 'recursive-doubling', 'bruck']
    """
    out: list[tuple[str, Schedule]] = []
    for name in algorithms(collective):
        try:
            if collective == "allreduce" and name == "double-binary-tree":
                out += [(f"{name} segments={s}", build(collective, name, nranks, segments=s))
                        for s in SEGMENTS]
                continue
            base = build(collective, name, nranks)
        except ValueError:
            continue
        out.append((name, base))
        if collective == "allreduce" and name == "binomial":
            out += [(f"{name} pipelined={s}", pipelined(base, s)) for s in SEGMENTS[1:]]
    return tuple(out)


#: Predictions this close to the fastest are a tie: the calibrated model's demonstrated median
#: error on this 2-core machine is about 10% (docs/calibration.md), so a smaller margin between
#: two candidates says nothing about which one runs faster.
MARGIN = 0.10


def choose(collective: str, nranks: int, nbytes: int, itemsize: int, params,
           margin: float = MARGIN) -> Choice:
    """The candidate predicted fastest under ``params`` (a calibrated
    :class:`sim.models.Hockney`), where predictions within ``margin`` (a fraction) of the
    fastest are a tie won by the schedule with the fewest steps (then the faster prediction,
    then the earlier candidate): every executor step costs a Python call, a ``Startall`` and
    polling, which a loaded machine stretches beyond what the calibration saw, so the schedule
    with fewer steps is the more robust prediction.

    >>> from sim.models import Hockney
    >>> choose("allreduce", 4, 8, 4, Hockney(1e-5, 1e-10, 1e-10)).label
    'recursive-doubling'
    >>> choose("allreduce", 3, 8, 4, Hockney(1e-5, 1e-10, 1e-10)).predicted_s > 0
    True
    """
    from sim.engine import simulate

    if not margin >= 0:
        raise ValueError(f"auto: margin must be a fraction >= 0, got {margin!r}")
    scored = []
    for i, (label, schedule) in enumerate(candidates(collective, nranks)):
        t = simulate(schedule, None, nbytes, params=params, itemsize=itemsize).time_s
        scored.append((t, i, label, schedule))
    if not scored:
        raise ValueError(f"auto: no {collective} schedule can be built for {nranks} ranks")
    fastest = min(t for t, *_ in scored)
    tied = [x for x in scored if x[0] <= fastest * (1 + margin)]
    # among the fewest steps the prediction decides, not the count of transfers: chosen for
    # its 6 whole-vector messages against Rabenseifner's 16 quarters, the binomial tree ran
    # 1.07-1.91x the best at 512 KiB in 25 of 33 stored 4-rank MPICH runs (now 15 miss there)
    t, _, label, schedule = min(tied, key=lambda x: (len(x[3].steps), x[0], x[1]))
    return Choice(label, schedule, t)
