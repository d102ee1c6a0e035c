"""Recursive halving and doubling (Thakur, Rabenseifner & Gropp 2005), with MPICH's folding.

For ``p`` not a power of two, with ``p' = 2^floor(lg p)`` and ``r = p - p'``, each even rank
below ``2r`` first hands its data to the odd rank above it and idles; the ``p'`` survivors run
the power-of-two algorithm under new ranks (odd rank ``2i+1`` becomes ``i``, rank ``o >= 2r``
becomes ``o - r``); at the end each survivor below ``2r`` hands the result back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collectives.ir import Schedule, Step, make_step

__all__ = [
    "Fold",
    "fold",
    "recursive_doubling_all_gather",
    "recursive_doubling_allreduce",
    "recursive_halving_reduce_scatter",
]


@dataclass(frozen=True)
class Fold:
    """How ``p`` ranks fold onto the largest power of two ``p2`` below or at ``p``."""

    p: int
    p2: int
    survivors: tuple[int, ...]  # survivors[i] is the old rank of new rank i

    @property
    def extra(self) -> int:
        return self.p - self.p2

    @property
    def levels(self) -> int:
        return self.p2.bit_length() - 1

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(even ranks that fold away, the odd survivors that stand in for them)."""
        evens = np.arange(0, 2 * self.extra, 2)
        return evens, evens + 1


def fold(p: int) -> Fold:
    """The MPICH fold of ``p`` ranks.

    >>> fold(6).survivors
    (1, 3, 4, 5)
    """
    p2 = 1 << (p.bit_length() - 1)
    r = p - p2
    survivors = tuple([2 * i + 1 for i in range(r)] + list(range(2 * r, p)))
    return Fold(p, p2, survivors)


def _rank_blocks(f: Fold) -> np.ndarray:
    """Chunk boundaries per new rank when every old rank owns its own chunk (C = p).

    Survivor i < r stands for old ranks 2i and 2i+1 and owns chunks {2i, 2i+1}.
    """
    starts = [2 * i if i < f.extra else i + f.extra for i in range(f.p2)]
    return np.array([*starts, f.p], dtype=np.int64)


def _halving(f: Fold, blocks: np.ndarray) -> list[Step]:
    """Recursive halving among survivors; new rank i ends with chunks blocks[i]:blocks[i+1]."""
    surv = np.asarray(f.survivors)
    new = np.arange(f.p2)
    steps = []
    d = f.p2 // 2
    while d >= 1:
        partner = new ^ d
        # Send the half of the current 2d-block that the partner keeps.
        lo = (new & ~(2 * d - 1)) + (partner & d)
        start, stop = blocks[lo], blocks[lo + d]
        steps.append(
            make_step(surv[new], surv[partner], True, run_start=start, run_len=stop - start)
        )
        d //= 2
    return steps


def _doubling(f: Fold, blocks: np.ndarray, reduce: bool = False) -> list[Step]:
    """Recursive doubling among survivors over the block layout ``blocks``.

    With ``reduce=False`` each survivor copies the aligned block of new ranks it holds to its
    partner (all-gather); with ``reduce=True`` the whole vector is exchanged and reduced.
    """
    surv = np.asarray(f.survivors)
    new = np.arange(f.p2)
    steps = []
    d = 1
    while d < f.p2:
        partner = new ^ d
        if reduce:
            steps.append(make_step(surv[new], surv[partner], True, run_start=np.zeros_like(new),
                                   run_len=int(blocks[-1])))
        else:
            lo = new & ~(d - 1)
            start, stop = blocks[lo], blocks[lo + d]
            steps.append(
                make_step(surv[new], surv[partner], False, run_start=start, run_len=stop - start)
            )
        d *= 2
    return steps


def _fold_in(f: Fold, reduce: bool, start, length) -> list[Step]:
    if f.extra == 0:
        return []
    evens, odds = f.pairs()
    return [make_step(evens, odds, reduce, run_start=np.broadcast_to(start, evens.shape),
                      run_len=length)]


def _fold_out(f: Fold, start, length) -> list[Step]:
    if f.extra == 0:
        return []
    evens, odds = f.pairs()
    return [make_step(odds, evens, False, run_start=np.broadcast_to(start, evens.shape),
                      run_len=length)]


def _layout(f: Fold, layout: str, fname: str) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """(block boundaries per survivor, chunk count, chunk owners) of a chunk layout.

    ``"ranks"``: p chunks, rank r owns chunk r (survivor i < r stands for two). ``"survivors"``:
    p' chunks, survivor i owns chunk i, folded ranks own nothing.
    """
    if layout == "ranks":
        return _rank_blocks(f), f.p, tuple(range(f.p))
    if layout == "survivors":
        return np.arange(f.p2 + 1, dtype=np.int64), f.p2, f.survivors
    raise ValueError(f"{fname}: unknown layout {layout!r}; use 'ranks' or 'survivors'")


def _own_chunk_handoff(f: Fold, to_even: bool) -> list[Step]:
    """One step moving chunk 2i between old ranks 2i and 2i+1 (i < r), in either direction."""
    if f.extra == 0:
        return []
    evens, odds = f.pairs()
    src, dst = (odds, evens) if to_even else (evens, odds)
    return [make_step(src, dst, False, run_start=evens)]


def recursive_halving_reduce_scatter(nranks: int, layout: str = "ranks") -> Schedule:
    """Recursive-halving reduce-scatter.

    ``layout="ranks"`` (the collective as MPI defines it): ``p`` chunks, rank r owns chunk r.
    For ``p = 2^k``: ``lg p alpha + (p-1)/p n beta + (p-1)/p n gamma``. Otherwise the even ranks
    below ``2r`` fold their whole vector into their odd neighbour, the ``p'`` survivors halve
    over uneven blocks (survivor i < r holds two chunks), and each hands its folded neighbour
    chunk ``2i``: ``(L+2) alpha`` and, exactly, ``n beta (1 + S/p + 1/p) + n gamma (1 + S/p)``
    where ``S = sum over halving steps of the chunks sent by the busiest survivor``, which
    DESIGN.md approximates as ``(p'-1)/p'``.

    ``layout="survivors"`` (the first half of Rabenseifner's all-reduce): ``p'`` chunks, new
    rank i (old rank ``survivors[i]``) owns chunk i and folded ranks own nothing; cost
    ``(L + [r>0]) alpha + ([r>0] + (p'-1)/p') n beta + ([r>0] + (p'-1)/p') n gamma``.
    """
    f = fold(nranks)
    blocks, C, owner = _layout(f, layout, "recursive_halving_reduce_scatter")
    # Each survivor below 2r hands its folded neighbour the chunk that neighbour owns.
    tail = _own_chunk_handoff(f, to_even=True) if layout == "ranks" else []
    steps = _fold_in(f, True, 0, C) + _halving(f, blocks) + tail
    return Schedule("reducescatter", "recursive-halving", nranks, C, tuple(steps), owner=owner,
                    options=(("layout", layout),))


def recursive_doubling_all_gather(nranks: int, layout: str = "ranks") -> Schedule:
    """Recursive-doubling all-gather.

    ``layout="ranks"``: ``p`` chunks, rank r contributes chunk r. For ``p = 2^k``:
    ``lg p alpha + (p-1)/p n beta``. Otherwise each even rank below ``2r`` first copies its chunk
    to its odd neighbour, survivors double over uneven blocks, and finally each hands the whole
    vector back: ``(L+2) alpha + (1/p + S/p + 1) n beta`` where ``S`` is the busiest survivor's
    chunks summed over the doubling steps (about ``(p-1)/p`` of n when blocks are even; up to
    15% more at p=48, where survivors hold one or two chunks).

    ``layout="survivors"`` (the second half of Rabenseifner): ``p'`` chunks owned by the
    survivors; ``(L + [r>0]) alpha + ((p'-1)/p' + [r>0]) n beta``.
    """
    f = fold(nranks)
    blocks, C, owner = _layout(f, layout, "recursive_doubling_all_gather")
    # Each even rank below 2r first hands its own chunk to the survivor standing in for it.
    head = _own_chunk_handoff(f, to_even=False) if layout == "ranks" else []
    steps = head + _doubling(f, blocks) + _fold_out(f, 0, C)
    return Schedule("allgather", "recursive-doubling", nranks, C, tuple(steps), owner=owner,
                    options=(("layout", layout),))


def recursive_doubling_allreduce(nranks: int) -> Schedule:
    """Recursive-doubling all-reduce: every step exchanges and reduces the whole vector.

    One chunk. For ``p = 2^k``: ``lg p (alpha + n beta + n gamma)``; otherwise, with the fold,
    ``(L+2) alpha + (L+2) n beta + (L+1) n gamma``. Latency-optimal, bandwidth-poor: the choice
    for small messages.
    """
    f = fold(nranks)
    blocks = np.array([0, 1], dtype=np.int64)
    steps = _fold_in(f, True, 0, 1) + _doubling(f, blocks, reduce=True) + _fold_out(f, 0, 1)
    return Schedule("allreduce", "recursive-doubling", nranks, 1, tuple(steps))
