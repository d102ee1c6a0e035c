"""Pairwise-exchange (direct) reduce-scatter."""

from __future__ import annotations

import numpy as np

from collectives.ir import Schedule, make_step

__all__ = ["pairwise_reduce_scatter"]


def pairwise_reduce_scatter(nranks: int) -> Schedule:
    """Direct reduce-scatter: in step k (1..p-1) rank r reduces chunk r+k straight into rank r+k.

    Every contribution travels one hop to its owner, so nothing is forwarded and every step is
    a shifted permutation. Mirrors MPICH's ``MPIR_Reduce_scatter_intra_pairwise`` (its choice
    for long messages): in step i rank r sends block ``r+i`` to ``r+i`` and receives its own
    block from ``r-i``. Open MPI has no pairwise reduce-scatter (its nearest are
    ``ring`` and ``butterfly``).
    Hockney cost: ``(p-1) alpha + (p-1)/p n beta + (p-1)/p n gamma``.
    """
    p = nranks
    ranks = np.arange(p)
    steps = tuple(
        make_step(ranks, (ranks + k) % p, True, run_start=(ranks + k) % p) for k in range(1, p)
    )
    return Schedule("reducescatter", "pairwise", p, p, steps, owner=tuple(range(p)))
