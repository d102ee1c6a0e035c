"""Composition: sequence two schedules, pipeline one over segments, nest one inside groups."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from collectives.ir import Condition, Schedule, ScheduleError, Step

__all__ = ["compose", "hierarchical", "lift", "parallel_steps", "pipelined"]


def compose(a: Schedule, b: Schedule, algorithm: str | None = None) -> Schedule:
    """Run ``b`` after ``a``; ``a``'s postcondition must meet ``b``'s precondition.

    ``compose(ring_reduce_scatter(p), ring_all_gather(p))`` is the ring all-reduce; the steps
    are ``a``'s then ``b``'s, and the cost is the sum of both.
    """
    name = f"compose({a.collective}/{a.algorithm}, {b.collective}/{b.algorithm})"
    if a.nranks != b.nranks:
        raise ScheduleError(f"{name}: rank counts differ ({a.nranks} vs {b.nranks})")
    if a.nchunks != b.nchunks:
        raise ScheduleError(
            f"{name}: chunk counts differ ({a.nchunks} vs {b.nchunks}); build both halves with "
            f"the same chunking (e.g. the same layout option)"
        )
    post, pre = a.postcondition, b.precondition
    if pre is Condition.INPUT:
        raise ScheduleError(
            f"{name}: {b.collective} starts from every rank's own input, which nothing but an "
            f"empty schedule leaves behind"
        )
    if post is Condition.OWNED and pre is Condition.OWNED and a.owner != b.owner:
        c = next(i for i, (x, y) in enumerate(zip(a.owner, b.owner, strict=True)) if x != y)
        raise ScheduleError(
            f"{name}: chunk ownership does not match: chunk {c} ends on rank {a.owner[c]} "
            f"but the second schedule expects it on rank {b.owner[c]}; use halves with the same "
            f"ownership (e.g. ring with ring, recursive-halving with recursive-doubling)"
        )
    if post is Condition.OWNED and pre is Condition.ALL:
        raise ScheduleError(f"{name}: {b.collective} needs every chunk on every rank")
    start, end = a.precondition, b.postcondition
    if start is Condition.INPUT and end is Condition.ALL:
        collective, owner = "allreduce", ()
    elif start is Condition.INPUT:
        collective, owner = b.collective, b.owner
    elif end is Condition.ALL:
        collective, owner = a.collective, a.owner
    else:
        raise ScheduleError(f"{name}: the composition is no collective (owned in, owned out)")
    return Schedule(
        collective,
        algorithm or f"{a.algorithm}+{b.algorithm}",
        a.nranks,
        a.nchunks,
        a.steps + b.steps,
        owner=owner,
        options=a.options + b.options,
    )


def _split_wrapping_runs(step: Step, nchunks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The step's runs with every run that wraps around ``nchunks`` split in two, since a new
    numbering need not wrap at the same place. Returns (run_ptr, run_start, run_len)."""
    start = step.starts(nchunks)
    length = step.run_len
    wraps = start + length > nchunks
    first_len = np.where(wraps, nchunks - start, length)
    pieces = 1 + wraps.astype(np.int64)
    piece_start = np.repeat(start, pieces)
    piece_len = np.repeat(first_len, pieces)
    second = (np.cumsum(pieces) - 1)[wraps]  # index of each wrapping run's second piece
    piece_start[second] = 0
    piece_len[second] = (start + length - nchunks)[wraps]
    per_transfer = np.bincount(step.run_owner(), weights=pieces, minlength=len(step))
    ptr = np.zeros(len(step) + 1, dtype=np.int64)
    np.cumsum(per_transfer, out=ptr[1:])
    return ptr, piece_start, piece_len


def lift(step: Step, nchunks: int, rank_maps: np.ndarray, chunk_bases=0, scale: int = 1
         ) -> Step:
    """K renamed copies of ``step`` side by side, as one step.

    Copy k renames rank r to ``rank_maps[k, r]`` and chunk c to ``chunk_bases[k] + c*scale``
    (``scale`` new chunks per old one). A 1-D ``rank_maps`` is one copy. Vectorised: lifting a
    step into 2048 groups costs one numpy pass, not 2048.
    """
    maps = np.atleast_2d(np.asarray(rank_maps, dtype=np.int64))
    K = maps.shape[0]
    bases = np.broadcast_to(np.asarray(chunk_bases, dtype=np.int64), (K,))
    ptr, start, length = _split_wrapping_runs(step, nchunks)
    R = start.shape[0]
    run_ptr = np.concatenate(((ptr[:-1][None, :] + (np.arange(K) * R)[:, None]).ravel(),
                              [K * R]))
    return Step(
        maps[:, step.src].ravel(),
        maps[:, step.dst].ravel(),
        np.tile(step.reduce, K),
        run_ptr.astype(np.int64),
        (bases[:, None] + start[None, :] * scale).ravel(),
        np.tile(length * scale, K),
    )


def parallel_steps(parts: Sequence[Sequence[Step]]) -> tuple[Step, ...]:
    """Merge step lists that run side by side: step k of the result is every part's step k.

    The steps must be unrotated (``chunk_offset == 0``), as :func:`lift` makes them.
    """
    nsteps = max((len(s) for s in parts), default=0)
    merged = []
    for k in range(nsteps):
        here = [s[k] for s in parts if k < len(s)]
        if any(s.chunk_offset for s in here):
            raise ValueError("parallel_steps: lift rotated steps first")
        if len(here) == 1:
            merged.append(here[0])
            continue
        counts = [len(s.run_start) for s in here]
        offsets = np.cumsum([0, *counts[:-1]])
        ptr = np.concatenate(
            [[0]] + [s.run_ptr[1:] + off for s, off in zip(here, offsets, strict=True)]
        )
        merged.append(
            Step(
                np.concatenate([s.src for s in here]),
                np.concatenate([s.dst for s in here]),
                np.concatenate([s.reduce for s in here]),
                ptr.astype(np.int64),
                np.concatenate([s.run_start for s in here]),
                np.concatenate([s.run_len for s in here]),
            )
        )
    return tuple(merged)


def pipelined(schedule: Schedule, segments: int) -> Schedule:
    """Split every chunk into ``segments`` pieces and overlap them: piece j of step k runs in
    step ``k + j``.

    Chunk c becomes chunks ``c*S .. c*S+S-1`` (so the element layout is unchanged). With K
    steps of cost ``alpha + m beta`` the pipeline costs ``(K + S - 1)(alpha + m/S beta)``.
    """
    if not isinstance(segments, int | np.integer) or segments < 1:
        raise ValueError(f"pipelined: segments must be a positive integer, got {segments!r}")
    S = int(segments)
    if S == 1:
        return schedule
    C = schedule.nchunks
    identity = np.arange(schedule.nranks)
    per_segment = []
    for j in range(S):
        lifted = []
        for step in schedule.steps:
            # Each old chunk c maps to the single new chunk c*S + j: split runs into unit runs.
            tidx, chunk = step.expand(C)
            counts = np.bincount(tidx, minlength=len(step))
            ptr = np.zeros(len(step) + 1, dtype=np.int64)
            np.cumsum(counts, out=ptr[1:])
            lifted.append(Step(identity[step.src], identity[step.dst], step.reduce, ptr,
                               chunk * S + j, np.ones_like(chunk)))
        per_segment.append(lifted)
    # Piece j is delayed by j steps.
    delayed = [[_empty_step()] * j + per_segment[j] for j in range(S)]
    steps = tuple(s for s in parallel_steps(delayed) if len(s))
    owner = tuple(o for o in schedule.owner for _ in range(S))
    return Schedule(schedule.collective, schedule.algorithm, schedule.nranks, C * S, steps,
                    owner=owner, options=schedule.options + (("segments", S),))


def _empty_step() -> Step:
    z = np.zeros(0, dtype=np.int64)
    return Step(z, z, np.zeros(0, dtype=bool), np.zeros(1, dtype=np.int64), z, z)


def hierarchical(intra_rs: Schedule, inter: Schedule, intra_ag: Schedule,
                 groups: Sequence[Sequence[int]]) -> Schedule:
    """Two-level all-reduce: reduce-scatter inside each group, all-reduce across groups on the
    shards, all-gather inside each group.

    ``groups`` is a list of G equal-size lists of ranks (e.g. the GPUs of each node). With L
    ranks per group the cost is ``RS_L(n) + AR_G(n/L) + AG_L(n)``: only ``1/L`` of the vector
    crosses the slow inter-group links. Chunk ``a*Cb + b`` is inner chunk b of intra chunk a.
    """
    ranks = np.asarray(groups, dtype=np.int64)
    if ranks.ndim != 2 or ranks.size == 0:
        raise ValueError("hierarchical: groups must be a non-empty list of equal-size rank lists")
    G, L = ranks.shape
    p = G * L
    if sorted(ranks.ravel().tolist()) != list(range(p)):
        raise ValueError(f"hierarchical: groups must cover ranks 0..{p - 1} exactly once")
    for s, want, n in ((intra_rs, "reducescatter", L), (intra_ag, "allgather", L),
                       (inter, "allreduce", G)):
        if s.collective != want or s.nranks != n:
            raise ValueError(
                f"hierarchical: expected a {want} on {n} ranks, got {s.collective} on {s.nranks}"
            )
    if intra_rs.owner != intra_ag.owner or intra_rs.nchunks != intra_ag.nchunks:
        raise ScheduleError(
            f"hierarchical: the intra-group reduce-scatter ({intra_rs.algorithm}) and all-gather "
            f"({intra_ag.algorithm}) chunk their data differently; pick matching algorithms"
        )
    Ca, Cb = intra_rs.nchunks, inter.nchunks
    C = Ca * Cb

    # Intra phases: every group runs the intra schedule; intra chunk a is chunks a*Cb..a*Cb+Cb-1.
    rs = tuple(lift(st, Ca, ranks, 0, scale=Cb) for st in intra_rs.steps)
    ag = tuple(lift(st, Ca, ranks, 0, scale=Cb) for st in intra_ag.steps)
    # Inter phase: for every intra chunk a, the ranks that own it (one per group) all-reduce its
    # Cb sub-chunks.
    owners = np.asarray(intra_rs.owner, dtype=np.int64)
    inter_steps = tuple(lift(st, Cb, ranks[:, owners].T, np.arange(Ca) * Cb)
                        for st in inter.steps)
    steps = rs + inter_steps + ag
    name = f"hierarchical({intra_rs.algorithm}/{inter.algorithm})"
    return Schedule("allreduce", name, p, C, steps,
                    options=(("groups", G), ("group_size", L)))

