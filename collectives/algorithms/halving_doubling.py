"""Recursive halving and doubling (Thakur, Rabenseifner & Gropp 2005), with MPICH's folding.

For ``p`` not a power of two, with ``p' = 2^floor(lg p)`` and ``r = p - p'``, each even rank
below ``2r`` first hands its data to the odd rank above it and idles; the ``p'`` survivors run
the power-of-two algorithm under new ranks (odd rank ``2i+1`` becomes ``i``, rank ``o >= 2r``
becomes ``o - r``); at the end each survivor below ``2r`` hands the result back. That is the
fold of MPICH's ``MPIR_Allreduce_intra_recursive_doubling``,
``MPIR_Allreduce_intra_reduce_scatter_allgather`` and
``MPIR_Reduce_scatter_intra_recursive_halving``, and of Open MPI's
``ompi_coll_base_allreduce_intra_recursivedoubling`` and
``ompi_coll_base_reduce_scatter_intra_basic_recursivehalving``. (Open MPI's Rabenseifner,
``ompi_coll_base_allreduce_intra_redscat_allgather``, folds differently: the even ranks survive
and each pair swaps halves; see :func:`fold` with ``survivor="even"``.)

Partner order. A halving or doubling over ``p'`` survivors exchanges with new rank ``i ^ d``
for ``d`` in ``1, 2, 4, ...`` (``"nearest-first"``) or ``p'/2, ..., 1`` (``"farthest-first"``).
The block a survivor keeps is fixed by the order: farthest-first halving leaves new rank ``i``
with block ``i`` (so MPI's reduce-scatter, where rank r ends with block r, uses it), while
nearest-first halving, sending the larger share of the vector to the nearest partner first,
leaves it with block ``bitrev(i)``. Both are the same exchange pattern over the survivors
listed in bit-reversed order, which is how the builders below make them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collectives.ir import Schedule, Step, make_step

__all__ = [
    "ORDERS",
    "SURVIVORS",
    "Fold",
    "check_order",
    "fold",
    "rabenseifner_steps",
    "recursive_doubling_all_gather",
    "recursive_doubling_allreduce",
    "recursive_halving_reduce_scatter",
]


ORDERS = ("nearest-first", "farthest-first")
SURVIVORS = ("odd", "even")


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
        """(the ranks below ``2r`` that fold away, the survivors that stand in for them)."""
        evens = np.arange(0, 2 * self.extra, 2)
        if self.extra and self.survivors[0] == 0:  # even ranks survive
            return evens + 1, evens
        return evens, evens + 1


def fold(p: int, survivor: str = "odd") -> Fold:
    """The fold of ``p`` ranks onto ``p' = 2^floor(lg p)``: of each pair ``2i, 2i+1`` below
    ``2(p - p')`` the odd rank survives (MPICH, and Open MPI's recursive doubling) or the even
    one (Open MPI's Rabenseifner); ranks from ``2(p - p')`` up all survive.

    >>> fold(6).survivors
    (1, 3, 4, 5)
    >>> fold(6, survivor="even").survivors
    (0, 2, 4, 5)
    """
    if survivor not in SURVIVORS:
        raise ValueError(f"fold: survivor must be 'odd' or 'even', got {survivor!r}")
    p2 = 1 << (p.bit_length() - 1)
    r = p - p2
    low = 1 if survivor == "odd" else 0
    survivors = tuple([2 * i + low for i in range(r)] + list(range(2 * r, p)))
    return Fold(p, p2, survivors)


def check_order(fname: str, order: str) -> str:
    """``order`` if it is a partner order (``nearest-first`` or ``farthest-first``), else a
    ValueError naming both."""
    if order not in ORDERS:
        raise ValueError(
            f"{fname}: unknown order {order!r}; use 'nearest-first' (partner distance 1, 2, "
            f"4, ...) or 'farthest-first' (p'/2, ..., 1)"
        )
    return order


def _bit_reversed(f: Fold) -> np.ndarray:
    """``bitrev(i)`` over ``lg p'`` bits for every new rank ``i``."""
    i = np.arange(f.p2, dtype=np.int64)
    rev = np.zeros_like(i)
    for b in range(f.levels):
        rev |= ((i >> b) & 1) << (f.levels - 1 - b)
    return rev


def _at_block(f: Fold, reversed_: bool) -> np.ndarray:
    """The old rank at each block position: survivor ``bitrev(j)`` at position ``j`` when
    ``reversed_`` (nearest-first halving, farthest-first doubling), else survivor ``j``."""
    surv = np.asarray(f.survivors, dtype=np.int64)
    return surv[_bit_reversed(f)] if reversed_ else surv


def _by_rank(f: Fold, reversed_: bool) -> np.ndarray:
    """Block positions in the order of their ranks, so that a step's transfers are sorted by
    source (bit reversal is its own inverse): the simulator's routing is faster on them."""
    return _bit_reversed(f) if reversed_ else np.arange(f.p2)


def _rank_blocks(f: Fold) -> np.ndarray:
    """Chunk boundaries per new rank when every old rank owns its own chunk (C = p).

    Survivor i < r stands for old ranks 2i and 2i+1 and owns chunks {2i, 2i+1}.
    """
    starts = [2 * i if i < f.extra else i + f.extra for i in range(f.p2)]
    return np.array([*starts, f.p], dtype=np.int64)


def _halving(f: Fold, blocks: np.ndarray, reversed_: bool = False) -> list[Step]:
    """Recursive halving among survivors; block position j ends with chunks
    blocks[j]:blocks[j+1]. Position j is survivor j, or survivor bitrev(j) when
    ``reversed_``: then the partner distances run 1, 2, 4, ... instead of p'/2, ..., 1."""
    surv = _at_block(f, reversed_)
    new = _by_rank(f, reversed_)
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


def _doubling(f: Fold, blocks: np.ndarray, reduce: bool = False,
              reversed_: bool = False) -> list[Step]:
    """Recursive doubling among survivors over the block layout ``blocks``.

    With ``reduce=False`` each survivor copies the aligned block of positions it holds to its
    partner (all-gather); with ``reduce=True`` the whole vector is exchanged and reduced.
    Position j is survivor j (partner distances 1, 2, 4, ...), or survivor bitrev(j) when
    ``reversed_`` (distances p'/2, ..., 1).
    """
    surv = _at_block(f, reversed_)
    new = _by_rank(f, reversed_)
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
    gone, stay = f.pairs()
    return [make_step(gone, stay, reduce, run_start=np.broadcast_to(start, gone.shape),
                      run_len=length)]


def _fold_in_halves(f: Fold, nchunks: int) -> list[Step]:
    """Open MPI's fold for Rabenseifner: each pair swaps halves and reduces (the even rank
    keeps the first ``C/2`` chunks, the odd rank the rest), then the odd rank hands its
    reduced half to the even rank, which survives."""
    if f.extra == 0:
        return []
    odds, evens = f.pairs()  # (folded away, surviving)
    half = nchunks // 2
    rest = nchunks - half
    swap = make_step(np.concatenate([evens, odds]), np.concatenate([odds, evens]), True,
                     runs=[[(half, rest)]] * len(evens) + [[(0, half)]] * len(odds))
    back = make_step(odds, evens, False, run_start=np.full(len(odds), half), run_len=rest)
    return [swap, back]


def _fold_out(f: Fold, start, length) -> list[Step]:
    if f.extra == 0:
        return []
    gone, stay = f.pairs()
    return [make_step(stay, gone, False, run_start=np.broadcast_to(start, gone.shape),
                      run_len=length)]


def _layout(f: Fold, layout: str, fname: str,
            reversed_: bool = False) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """(block boundaries per position, chunk count, chunk owners) of a chunk layout.

    ``"ranks"``: p chunks, rank r owns chunk r (survivor i < r stands for two); only the
    farthest-first halving / nearest-first doubling keep that in place. ``"survivors"``:
    p' chunks, the survivor at block position j owns chunk j, folded ranks own nothing.
    """
    if layout == "ranks":
        if reversed_:
            raise ValueError(
                f"{fname}: this partner order leaves rank r with block bitrev(r), not block r,"
                f" so it needs layout='survivors' (as inside Rabenseifner's all-reduce)"
            )
        return _rank_blocks(f), f.p, tuple(range(f.p))
    if layout == "survivors":
        owner = tuple(int(x) for x in _at_block(f, reversed_))
        return np.arange(f.p2 + 1, dtype=np.int64), f.p2, owner
    raise ValueError(f"{fname}: unknown layout {layout!r}; use 'ranks' or 'survivors'")


def _own_chunk_handoff(f: Fold, to_even: bool) -> list[Step]:
    """One step moving chunk 2i between old ranks 2i and 2i+1 (i < r), in either direction."""
    if f.extra == 0:
        return []
    evens, odds = f.pairs()
    src, dst = (odds, evens) if to_even else (evens, odds)
    return [make_step(src, dst, False, run_start=evens)]


def recursive_halving_reduce_scatter(nranks: int, layout: str = "ranks",
                                     order: str = "farthest-first") -> Schedule:
    """Recursive-halving reduce-scatter.

    Mirrors MPICH's ``MPIR_Reduce_scatter_intra_recursive_halving`` and Open MPI's
    ``ompi_coll_base_reduce_scatter_intra_basic_recursivehalving`` (coll/tuned reduce_scatter
    algorithm 2): the MPICH fold, then partners at distance ``p'/2, ..., 2, 1``
    (``order="farthest-first"``, the only order that leaves rank r with block r); the lower
    rank of a pair keeps the lower half. Differences: chunk ``c`` is elements
    ``[c n/C, (c+1) n/C)`` (the libraries take ``recvcounts``); a survivor sends its two-chunk
    block in one message, as they do.

    ``layout="ranks"`` (the collective as MPI defines it): ``p`` chunks, rank r owns chunk r.
    For ``p = 2^k``: ``lg p alpha + (p-1)/p n beta + (p-1)/p n gamma``. Otherwise the even ranks
    below ``2r`` fold their whole vector into their odd neighbour, the ``p'`` survivors halve
    over uneven blocks (survivor i < r holds two chunks), and each hands its folded neighbour
    chunk ``2i``: ``(L+2) alpha`` and, exactly, ``n beta (1 + S/p + 1/p) + n gamma (1 + S/p)``
    where ``S = sum over halving steps of the chunks sent by the busiest survivor``, which
    DESIGN.md approximates as ``(p'-1)/p'``.

    ``layout="survivors"`` (the first half of Rabenseifner's all-reduce): ``p'`` chunks, one
    per survivor, folded ranks own nothing; cost
    ``(L + [r>0]) alpha + ([r>0] + (p'-1)/p') n beta + ([r>0] + (p'-1)/p') n gamma``. Here
    ``order="nearest-first"`` is allowed too: distances ``1, 2, ..., p'/2``, as in
    ``MPIR_Allreduce_intra_reduce_scatter_allgather``; new rank i then owns chunk
    ``bitrev(i)`` (``owner`` says which survivor owns which chunk). Same cost.
    """
    fname = "recursive_halving_reduce_scatter"
    reversed_ = check_order(fname, order) == "nearest-first"
    f = fold(nranks)
    blocks, C, owner = _layout(f, layout, fname, reversed_)
    # Each survivor below 2r hands its folded neighbour the chunk that neighbour owns.
    tail = _own_chunk_handoff(f, to_even=True) if layout == "ranks" else []
    steps = _fold_in(f, True, 0, C) + _halving(f, blocks, reversed_) + tail
    return Schedule("reducescatter", "recursive-halving", nranks, C, tuple(steps), owner=owner,
                    options=(("layout", layout), ("order", order)))


def recursive_doubling_all_gather(nranks: int, layout: str = "ranks",
                                  order: str = "nearest-first") -> Schedule:
    """Recursive-doubling all-gather.

    Mirrors MPICH's ``MPIR_Allgather_intra_recursive_doubling`` and Open MPI's
    ``ompi_coll_base_allgather_intra_recursivedoubling`` (coll/tuned allgather algorithm 3):
    partners at distance ``1, 2, 4, ...`` (``order="nearest-first"``), each sending the aligned
    block of ``d`` ranks' chunks it holds. Both libraries run it for ``p = 2^k`` only (MPICH
    selects Bruck otherwise, Open MPI falls back to Bruck); for other ``p`` ours folds as
    MPICH's all-reduce does, which neither library's all-gather does.

    ``layout="ranks"``: ``p`` chunks, rank r contributes chunk r. For ``p = 2^k``:
    ``lg p alpha + (p-1)/p n beta``. Otherwise each even rank below ``2r`` first copies its chunk
    to its odd neighbour, survivors double over uneven blocks, and finally each hands the whole
    vector back: ``(L+2) alpha + (1/p + S/p + 1) n beta`` where ``S`` is the busiest survivor's
    chunks summed over the doubling steps (about ``(p-1)/p`` of n when blocks are even; up to
    15% more at p=48, where survivors hold one or two chunks).

    ``layout="survivors"`` (the second half of Rabenseifner): ``p'`` chunks owned by the
    survivors; ``(L + [r>0]) alpha + ((p'-1)/p' + [r>0]) n beta``. Here
    ``order="farthest-first"`` is allowed too (distances ``p'/2, ..., 1``, survivor i
    contributing chunk ``bitrev(i)``): the mirror of a nearest-first halving, as in
    ``MPIR_Allreduce_intra_reduce_scatter_allgather``. Same cost.
    """
    fname = "recursive_doubling_all_gather"
    reversed_ = check_order(fname, order) == "farthest-first"
    f = fold(nranks)
    blocks, C, owner = _layout(f, layout, fname, reversed_)
    # Each even rank below 2r first hands its own chunk to the survivor standing in for it.
    head = _own_chunk_handoff(f, to_even=False) if layout == "ranks" else []
    steps = head + _doubling(f, blocks, reversed_=reversed_) + _fold_out(f, 0, C)
    return Schedule("allgather", "recursive-doubling", nranks, C, tuple(steps), owner=owner,
                    options=(("layout", layout), ("order", order)))


def rabenseifner_steps(nranks: int, order: str, survivor: str) -> tuple[int, tuple[Step, ...]]:
    """(chunk count, steps) of Rabenseifner's all-reduce; see
    :func:`collectives.registry.rabenseifner_allreduce`."""
    fname = "rabenseifner"
    reversed_ = check_order(fname, order) == "nearest-first"
    f = fold(nranks, survivor)
    C = f.p2
    blocks = np.arange(C + 1, dtype=np.int64)
    pre = _fold_in(f, True, 0, C) if survivor == "odd" else _fold_in_halves(f, C)
    steps = (pre + _halving(f, blocks, reversed_)
             + _doubling(f, blocks, reversed_=reversed_) + _fold_out(f, 0, C))
    return C, tuple(steps)


def recursive_doubling_allreduce(nranks: int) -> Schedule:
    """Recursive-doubling all-reduce: every step exchanges and reduces the whole vector.

    Mirrors MPICH's ``MPIR_Allreduce_intra_recursive_doubling`` and Open MPI's
    ``ompi_coll_base_allreduce_intra_recursivedoubling`` (coll/tuned allreduce
    algorithm 3): the fold (even ranks below ``2r`` reduce into rank+1, the odd ones survive), then
    partners at distance ``1, 2, 4, ...``, then the result back to the folded ranks. No
    difference in what moves.

    One chunk. For ``p = 2^k``: ``lg p (alpha + n beta + n gamma)``; otherwise, with the fold,
    ``(L+2) alpha + (L+2) n beta + (L+1) n gamma``. Latency-optimal, bandwidth-poor: the choice
    for small messages.
    """
    f = fold(nranks)
    blocks = np.array([0, 1], dtype=np.int64)
    steps = _fold_in(f, True, 0, 1) + _doubling(f, blocks, reduce=True) + _fold_out(f, 0, 1)
    return Schedule("allreduce", "recursive-doubling", nranks, 1, tuple(steps))
