"""Hand-broken schedules are caught by verify, with the step, transfer and chunk named."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from collectives import Schedule, ScheduleError, Step, build, make_step, verify


def _replace_step(s: Schedule, k: int, step: Step | None) -> Schedule:
    steps = list(s.steps)
    if step is None:
        del steps[k]
    else:
        steps[k] = step
    return dataclasses.replace(s, steps=tuple(steps))


def _without_transfer(step: Step, i: int, nchunks: int) -> Step:
    keep = np.arange(len(step)) != i
    starts = step.starts(nchunks)
    runs = [[(int(starts[j]), int(step.run_len[j]))
             for j in range(step.run_ptr[t], step.run_ptr[t + 1])] for t in np.flatnonzero(keep)]
    return make_step(step.src[keep], step.dst[keep], step.reduce[keep], runs)


def test_dropped_transfer_is_caught():
    s = build("allreduce", "ring", 5)
    broken = _replace_step(s, 2, _without_transfer(s.steps[2], 3, s.nchunks))
    with pytest.raises(ScheduleError, match="step 3, rank 4 -> 0.*does not hold|postcondition"):
        verify(broken)


def test_dropped_transfer_in_last_step_fails_postcondition():
    s = build("allreduce", "ring", 4)
    last = len(s.steps) - 1
    broken = _replace_step(s, last, _without_transfer(s.steps[last], 0, s.nchunks))
    with pytest.raises(ScheduleError, match="postcondition unmet: rank 1, chunk"):
        verify(broken)


def test_duplicated_reduce_is_double_counting():
    s = build("allreduce", "recursive-doubling", 4)
    broken = dataclasses.replace(s, steps=(s.steps[0], s.steps[0]) + s.steps[1:])
    want = r"step 1, rank 1 -> 0 \(reduce\), chunk 0: double counting, rank\(s\) \[0, 1\]"
    with pytest.raises(ScheduleError, match=want):
        verify(broken)


def test_two_sources_with_the_same_contribution_are_double_counting():
    # Ranks 1 and 2 both forward rank 0's data to rank 3 in one step.
    steps = (
        make_step([0, 0], [1, 2], False, run_start=[0, 0]),
        make_step([1, 2], [3, 3], True, run_start=[0, 0]),
    )
    s = Schedule("reduce", "bad", 4, 1, steps, owner=(3,))
    with pytest.raises(ScheduleError, match="double counting"):
        verify(s)


def test_sending_a_chunk_not_held():
    step = make_step([1], [0], False, run_start=[0])
    s = Schedule("broadcast", "bad", 3, 1, (step,), owner=(0,))
    with pytest.raises(ScheduleError, match="step 0, rank 1 -> 0 \\(copy\\), chunk 0: the source "
                                            "does not hold"):
        verify(s)


def test_self_transfer_and_out_of_range():
    s = Schedule("allreduce", "bad", 3, 1, (make_step([1], [1], True, run_start=[0]),))
    with pytest.raises(ScheduleError, match="sends to itself"):
        verify(s)
    s = Schedule("allreduce", "bad", 3, 1, (make_step([0], [3], True, run_start=[0]),))
    with pytest.raises(ScheduleError, match="destination rank out of range 0..2"):
        verify(s)
    s = Schedule("allreduce", "bad", 3, 2, (make_step([0], [1], True, run_start=[2]),))
    with pytest.raises(ScheduleError, match="chunk 2 does not exist"):
        verify(s)


def test_conflicting_copies_in_one_step():
    step = make_step([0, 1], [2, 2], False, run_start=[0, 0])
    s = Schedule("allreduce", "bad", 3, 1, (step,))
    with pytest.raises(ScheduleError, match="a copy and another write"):
        verify(s)


def test_reduce_into_a_chunk_not_held():
    step = make_step([0], [1], True, run_start=[0])
    s = Schedule("broadcast", "bad", 2, 1, (step,), owner=(0,))
    with pytest.raises(ScheduleError, match="reduces into a chunk the destination does not hold"):
        verify(s)


def test_unmet_ownership_postcondition():
    s = build("reducescatter", "ring", 4)
    wrong_owner = dataclasses.replace(s, owner=(1, 2, 3, 0))
    with pytest.raises(ScheduleError, match="owner rank 1 of chunk 0 lacks"):
        verify(wrong_owner)


def test_swapping_exchange_in_one_step_is_legal():
    # Both ranks send their chunk and reduce the other's in the same step: sources are snapshots.
    step = make_step([0, 1], [1, 0], True, run_start=[0, 0])
    verify(Schedule("allreduce", "swap", 2, 1, (step,)))
