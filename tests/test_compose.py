"""Composition, hierarchy and pipelining: checked conditions, verified and executed results."""

from __future__ import annotations

import numpy as np
import pytest

from collectives import (
    ScheduleError,
    binomial_broadcast,
    binomial_reduce,
    build,
    compose,
    execute,
    hierarchical,
    pipelined,
    recursive_halving_reduce_scatter,
    ring_all_gather,
    ring_reduce_scatter,
    verify,
)


@pytest.mark.parametrize("p", [1, 2, 3, 7, 8, 12])
def test_ring_allreduce_is_ring_rs_then_ring_ag(p):
    composed = compose(ring_reduce_scatter(p), ring_all_gather(p), algorithm="ring")
    assert composed == build("allreduce", "ring", p)
    assert composed.collective == "allreduce"


def test_mismatched_ownership_is_rejected_with_a_clear_error():
    p = 6
    rs = recursive_halving_reduce_scatter(p, layout="survivors")  # 4 chunks on the survivors
    ag = build("allgather", "recursive-doubling", 4)
    with pytest.raises(ScheduleError, match="rank counts differ"):
        compose(rs, ag)
    with pytest.raises(ScheduleError, match="chunk counts differ"):
        compose(rs, ring_all_gather(p))
    # Same chunk count, different owners: rotate the ring all-gather's ownership.
    rot = ring_all_gather(p)
    from collectives import Schedule

    shifted = Schedule("allgather", "shifted", p, p, rot.steps, owner=tuple((c + 1) % p
                                                                               for c in range(p)))
    with pytest.raises(ScheduleError, match="chunk 0 ends on rank 0"):
        compose(ring_reduce_scatter(p), shifted)


def test_compose_rejects_meaningless_orders():
    p = 4
    with pytest.raises(ScheduleError, match="own input"):
        compose(ring_all_gather(p), ring_reduce_scatter(p))
    with pytest.raises(ScheduleError, match="rank counts"):
        compose(ring_reduce_scatter(4), ring_all_gather(5))


def test_reduce_then_broadcast_is_an_allreduce():
    s = compose(binomial_reduce(5, root=2), binomial_broadcast(5, root=2))
    assert s.collective == "allreduce"
    verify(s)
    with pytest.raises(ScheduleError, match="ownership"):
        compose(binomial_reduce(5, root=2), binomial_broadcast(5, root=3))


@pytest.mark.parametrize(("groups", "size"), [(2, 4), (4, 2), (3, 3), (1, 5), (5, 1), (4, 8)])
@pytest.mark.parametrize("intra", ["ring", "rabenseifner"])
@pytest.mark.parametrize("inter", ["ring", "rabenseifner", "recursive-doubling",
                                   "double-binary-tree"])
def test_hierarchical_verifies_and_executes(groups, size, intra, inter):
    p = groups * size
    s = build("allreduce", "hierarchical", p, group_size=size, intra=intra, inter=inter)
    verify(s)
    rng = np.random.default_rng(p)
    xs = [rng.integers(-9, 9, 37) for _ in range(p)]
    for out in execute(s, xs):
        np.testing.assert_array_equal(out, np.sum(xs, axis=0))


def test_hierarchical_groups_can_be_strided():
    rs, ag = ring_reduce_scatter(2), ring_all_gather(2)
    s = hierarchical(rs, build("allreduce", "ring", 3), ag, [[0, 3], [1, 4], [2, 5]])
    verify(s)
    xs = [np.arange(10) * (r + 1) for r in range(6)]
    for out in execute(s, xs):
        np.testing.assert_array_equal(out, np.sum(xs, axis=0))


def test_hierarchical_rejects_bad_groups():
    rs, ag = ring_reduce_scatter(2), ring_all_gather(2)
    with pytest.raises(ValueError, match="cover ranks"):
        hierarchical(rs, build("allreduce", "ring", 2), ag, [[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="group_size must be a positive divisor"):
        build("allreduce", "hierarchical", 6, group_size=4)


@pytest.mark.parametrize(("collective", "algorithm"),
                         [("allreduce", "ring"), ("allreduce", "rabenseifner"),
                          ("allreduce", "binomial"), ("reducescatter", "recursive-halving"),
                          ("allgather", "bruck"), ("allreduce", "double-binary-tree")])
@pytest.mark.parametrize("segments", [1, 2, 3, 5])
@pytest.mark.parametrize("p", [1, 2, 5, 8])
def test_pipelined_verifies_and_executes(collective, algorithm, segments, p):
    base = build(collective, algorithm, p)
    s = pipelined(base, segments)
    verify(s)
    assert s.nchunks == base.nchunks * segments
    if segments > 1 and len(base.steps):
        assert len(s.steps) == len(base.steps) + segments - 1
    if collective == "allreduce":
        rng = np.random.default_rng(0)
        xs = [rng.standard_normal(41) for _ in range(p)]
        for out in execute(s, xs):
            np.testing.assert_allclose(out, np.sum(xs, axis=0), rtol=1e-12, atol=1e-12)


def test_pipelined_rejects_bad_segments():
    with pytest.raises(ValueError, match="segments must be a positive integer"):
        pipelined(build("allreduce", "ring", 4), 0)
