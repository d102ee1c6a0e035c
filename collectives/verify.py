"""Symbolic verification: follow which ranks' inputs every (rank, chunk) holds.

The state is a packed bitset per (rank, chunk): bit ``r`` set means rank ``r``'s input is folded
into that copy. ``reduce`` unions two sets and must never union overlapping ones (a rank counted
twice); ``copy`` overwrites. A schedule is correct when the final sets meet its postcondition.
Cost: O(p * C * p / 64) words of memory and one vectorised pass per step.
"""

from __future__ import annotations

import numpy as np

from collectives.ir import Condition, Schedule, ScheduleError, Step

__all__ = ["verify", "initial_state", "final_state_ok"]


def _words(p: int) -> int:
    return (p + 63) // 64


def _full_mask(p: int) -> np.ndarray:
    mask = np.zeros(_words(p), dtype=np.uint64)
    for r in range(p):
        mask[r // 64] |= np.uint64(1) << np.uint64(r % 64)
    return mask


def initial_state(schedule: Schedule) -> np.ndarray:
    """The (p, C, words) bitset state the schedule's precondition describes."""
    p, C = schedule.nranks, schedule.nchunks
    state = np.zeros((p, C, _words(p)), dtype=np.uint64)
    if schedule.precondition is Condition.INPUT:
        ranks = np.arange(p)
        state[ranks, :, ranks // 64] = (np.uint64(1) << (ranks % 64).astype(np.uint64))[:, None]
    else:  # OWNED: the owner holds the finished chunk
        state[np.asarray(schedule.owner), np.arange(C)] = _full_mask(p)
    return state


def _where(schedule: Schedule, k: int, step: Step, i: int, chunk: int) -> str:
    op = "reduce" if step.reduce[i] else "copy"
    return (
        f"{schedule.collective}/{schedule.algorithm} p={schedule.nranks}: step {k}, "
        f"rank {int(step.src[i])} -> {int(step.dst[i])} ({op}), chunk {int(chunk)}"
    )


def _check_ranks(schedule: Schedule, k: int, step: Step) -> None:
    p = schedule.nranks
    for name, col in (("source", step.src), ("destination", step.dst)):
        bad = np.flatnonzero((col < 0) | (col >= p))
        if bad.size:
            i = int(bad[0])
            raise ScheduleError(
                f"{schedule.collective}/{schedule.algorithm} p={p}: step {k}, "
                f"rank {int(step.src[i])} -> {int(step.dst[i])}: {name} rank out of range "
                f"0..{p - 1}"
            )
    same = np.flatnonzero(step.src == step.dst)
    if same.size:
        i = int(same[0])
        raise ScheduleError(
            f"{schedule.collective}/{schedule.algorithm} p={p}: step {k}, "
            f"rank {int(step.src[i])} -> {int(step.dst[i])}: a rank sends to itself"
        )
    C = schedule.nchunks
    bad = np.flatnonzero((step.run_start < 0) | (step.run_len < 1) | (step.run_len > C))
    if bad.size:
        j = int(bad[0])
        i = int(np.searchsorted(step.run_ptr, j, side="right") - 1)
        raise ScheduleError(
            f"{schedule.collective}/{schedule.algorithm} p={p}: step {k}, "
            f"rank {int(step.src[i])} -> {int(step.dst[i])}: chunk run "
            f"({int(step.run_start[j])}, {int(step.run_len[j])}) is outside 0..{C - 1}"
        )
    if np.any(step.run_start >= C):
        j = int(np.flatnonzero(step.run_start >= C)[0])
        i = int(np.searchsorted(step.run_ptr, j, side="right") - 1)
        raise ScheduleError(
            f"{schedule.collective}/{schedule.algorithm} p={p}: step {k}, "
            f"rank {int(step.src[i])} -> {int(step.dst[i])}: chunk {int(step.run_start[j])} "
            f"does not exist (the schedule has {C} chunks)"
        )


def _apply_step(schedule: Schedule, state: np.ndarray, k: int, step: Step) -> None:
    _check_ranks(schedule, k, step)
    C = schedule.nchunks
    tidx, chunk = step.expand(C)
    if tidx.size == 0:
        return
    src = step.src[tidx]
    dst = step.dst[tidx]
    vals = state[src, chunk]  # snapshot of every source before any update of this step
    held = vals.any(axis=1)
    if not held.all():
        e = int(np.flatnonzero(~held)[0])
        raise ScheduleError(
            _where(schedule, k, step, tidx[e], chunk[e])
            + ": the source does not hold this chunk yet"
        )
    is_red = step.reduce[tidx]
    key = dst * C + chunk
    order = np.argsort(key, kind="stable")
    skey = key[order]
    first = np.ones(skey.shape[0], dtype=bool)
    first[1:] = skey[1:] != skey[:-1]
    group_start = np.flatnonzero(first)
    group_size = np.diff(np.append(group_start, skey.shape[0]))
    # A copy must be the only write to its (dst, chunk) in a step, or the result is undefined.
    copies_in_group = np.add.reduceat((~is_red[order]).astype(np.int64), group_start)
    clash = np.flatnonzero((copies_in_group > 0) & (group_size > 1))
    if clash.size:
        e = int(order[group_start[clash[0]]])
        raise ScheduleError(
            _where(schedule, k, step, tidx[e], chunk[e])
            + ": a copy and another write reach the same destination chunk in one step"
        )
    # Copies overwrite.
    cp = ~is_red
    if cp.any():
        state[dst[cp], chunk[cp]] = vals[cp]
    if not is_red.any():
        return
    # Reductions: per (dst, chunk), the destination's set and every incoming set must be disjoint.
    red_order = order[is_red[order]]
    rkey = key[red_order]
    rfirst = np.ones(rkey.shape[0], dtype=bool)
    rfirst[1:] = rkey[1:] != rkey[:-1]
    rstart = np.flatnonzero(rfirst)
    gdst = dst[red_order[rstart]]
    gchunk = chunk[red_order[rstart]]
    current = state[gdst, gchunk]
    if not current.any(axis=1).all():
        g = int(np.flatnonzero(~current.any(axis=1))[0])
        e = int(red_order[rstart[g]])
        raise ScheduleError(
            _where(schedule, k, step, tidx[e], chunk[e])
            + ": reduces into a chunk the destination does not hold"
        )
    incoming = vals[red_order]
    union_in = np.bitwise_or.reduceat(incoming, rstart, axis=0)
    pop_in = np.add.reduceat(np.bitwise_count(incoming).sum(axis=1, dtype=np.int64), rstart)
    total = union_in | current
    pop_total = np.bitwise_count(total).sum(axis=1, dtype=np.int64)
    pop_current = np.bitwise_count(current).sum(axis=1, dtype=np.int64)
    overlap = np.flatnonzero(pop_total != pop_in + pop_current)
    if overlap.size:
        g = int(overlap[0])
        e = int(red_order[rstart[g]])
        both = _ranks_of(union_in[g] & current[g])
        detail = (
            f"rank(s) {both[:8]} would be counted twice"
            if both
            else "two sources of this step carry the same rank's contribution"
        )
        raise ScheduleError(
            _where(schedule, k, step, tidx[e], chunk[e]) + f": double counting, {detail}"
        )
    state[gdst, gchunk] = total


def _ranks_of(bits: np.ndarray) -> list[int]:
    out = []
    for w, word in enumerate(bits.tolist()):
        b = 0
        while word:
            if word & 1:
                out.append(w * 64 + b)
            word >>= 1
            b += 1
    return out


def final_state_ok(schedule: Schedule, state: np.ndarray) -> None:
    """Raise :class:`ScheduleError` unless ``state`` meets the schedule's postcondition."""
    p, C = schedule.nranks, schedule.nchunks
    full = _full_mask(p)
    name = f"{schedule.collective}/{schedule.algorithm} p={p}"
    if schedule.postcondition is Condition.ALL:
        ok = (state == full).all(axis=2)
        if not ok.all():
            r, c = (int(x) for x in np.argwhere(~ok)[0])
            missing = _ranks_of(full & ~state[r, c])
            raise ScheduleError(
                f"{name}: postcondition unmet: rank {r}, chunk {c} lacks the contribution of "
                f"rank(s) {missing[:8]}{' ...' if len(missing) > 8 else ''}"
            )
    else:
        owners = np.asarray(schedule.owner)
        ok = (state[owners, np.arange(C)] == full).all(axis=1)
        if not ok.all():
            c = int(np.flatnonzero(~ok)[0])
            r = int(owners[c])
            missing = _ranks_of(full & ~state[r, c])
            raise ScheduleError(
                f"{name}: postcondition unmet: owner rank {r} of chunk {c} lacks the "
                f"contribution of rank(s) {missing[:8]}{' ...' if len(missing) > 8 else ''}"
            )


def verify(schedule: Schedule) -> Schedule:
    """Check ``schedule`` symbolically; return it unchanged or raise :class:`ScheduleError`.

    Rejects a rank out of range, a transfer to itself, sending a chunk not yet held, reducing
    into a chunk not held, double counting a rank, and an unmet postcondition.

    >>> from collectives import build
    >>> verify(build("allreduce", "ring", 4)).nranks
    4
    """
    state = initial_state(schedule)
    for k, step in enumerate(schedule.steps):
        _apply_step(schedule, state, k, step)
    final_state_ok(schedule, state)
    return schedule
