"""Ring reduce-scatter and all-gather (Patarasuk & Yuan 2009)."""

from __future__ import annotations

import numpy as np

from collectives.ir import Schedule, make_step

__all__ = ["ring_all_gather", "ring_reduce_scatter"]


def _ring_steps(p: int, first_chunk: np.ndarray, reduce: bool, nsteps: int):
    """``nsteps`` steps in which rank r sends to r+1; step k sends chunk ``first_chunk[r] - k``.

    Every step shares one set of arrays and only rotates its chunks, so a ring costs O(p)
    memory however many steps it has.
    """
    ranks = np.arange(p)
    base = make_step(ranks, (ranks + 1) % p, reduce, run_start=first_chunk % p)
    return tuple(base.rotated(-k) for k in range(nsteps))


def ring_reduce_scatter(nranks: int) -> Schedule:
    """Ring reduce-scatter: rank r ends owning chunk r of ``p`` chunks, fully reduced.

    ``p-1`` steps; in step k rank r reduces chunk ``r-k-1`` into rank r+1: the first phase of
    MPICH's ``MPIR_Allreduce_intra_ring``. MPICH's own reduce-scatter algorithms are recursive
    halving, pairwise and recursive doubling (no ring); Open MPI's
    ``ompi_coll_base_reduce_scatter_intra_ring`` (coll/tuned reduce_scatter algorithm 3) is
    the same (step 0: rank r sends block r-1 to r+1). No difference in what moves.
    Hockney cost: ``(p-1) alpha + (p-1)/p n beta + (p-1)/p n gamma``.
    """
    p = nranks
    steps = _ring_steps(p, np.arange(p) - 1, True, p - 1)
    return Schedule("reducescatter", "ring", p, p, steps, owner=tuple(range(p)))


def ring_all_gather(nranks: int) -> Schedule:
    """Ring all-gather: rank r contributes chunk r of ``p``; every rank ends with all.

    ``p-1`` steps; in step k rank r copies chunk ``r-k`` to rank r+1: MPICH's
    ``MPIR_Allgather_intra_ring`` and Open MPI's ``ompi_coll_base_allgather_intra_ring``
    (coll/tuned allgather algorithm 4), both "send own block right, then forward". No
    difference in what moves.
    Hockney cost: ``(p-1) alpha + (p-1)/p n beta``.
    """
    p = nranks
    steps = _ring_steps(p, np.arange(p), False, p - 1)
    return Schedule("allgather", "ring", p, p, steps, owner=tuple(range(p)))
