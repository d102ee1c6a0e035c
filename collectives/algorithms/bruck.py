"""Bruck's all-gather (Bruck et al. 1997), for any rank count."""

from __future__ import annotations

import numpy as np

from collectives.ir import Schedule, make_step

__all__ = ["bruck_all_gather"]


def bruck_all_gather(nranks: int) -> Schedule:
    """Bruck all-gather: ``ceil(lg p)`` steps for any ``p``.

    After step k rank r holds chunks ``r .. r+2^(k+1)-1`` (mod p); in step k it sends the
    ``min(2^k, p-2^k)`` chunks starting at its own to rank ``r - 2^k``. Chunks are addressed in
    place (a wrapping run), so no final rotation is needed.
    Hockney cost: ``ceil(lg p) alpha + (p-1)/p n beta``.
    """
    p = nranks
    ranks = np.arange(p)
    steps = []
    d = 1
    while d < p:
        count = min(d, p - d)
        steps.append(make_step(ranks, (ranks - d) % p, False, run_start=ranks, run_len=count))
        d *= 2
    return Schedule("allgather", "bruck", p, p, tuple(steps), owner=tuple(range(p)))
