"""Every builder verifies symbolically for every rank count we care about."""

from __future__ import annotations

import pytest

import collectives
from collectives import algorithms, build, verify

SMALL = list(range(1, 65))
LARGE = [127, 1000, 1024]
ALL = [(c, a) for c, algs in algorithms().items() for a in algs]


@pytest.mark.parametrize(("collective", "algorithm"), ALL, ids=[f"{c}-{a}" for c, a in ALL])
def test_every_builder_verifies_for_p_1_to_64(collective, algorithm):
    for p in SMALL:
        s = build(collective, algorithm, p)
        assert s.nranks == p
        verify(s)


@pytest.mark.parametrize("p", LARGE)
@pytest.mark.parametrize(("collective", "algorithm"), ALL, ids=[f"{c}-{a}" for c, a in ALL])
def test_every_builder_verifies_at_scale(collective, algorithm, p):
    verify(build(collective, algorithm, p))


# Step counts and per-rank bytes against DESIGN.md's formulas (n = 1 per chunk unit).
def _lg(p):
    return (p - 1).bit_length()


@pytest.mark.parametrize("p", [2, 3, 4, 7, 8, 13, 16, 33, 64])
def test_step_counts_match_the_formulas(p):
    L = p.bit_length() - 1
    pof2 = p & (p - 1) == 0
    fold = 0 if pof2 else 1
    assert len(build("allreduce", "ring", p).steps) == 2 * (p - 1)
    assert len(build("reducescatter", "ring", p).steps) == p - 1
    assert len(build("allgather", "ring", p).steps) == p - 1
    assert len(build("reducescatter", "pairwise", p).steps) == p - 1
    assert len(build("allgather", "bruck", p).steps) == _lg(p)
    assert len(build("allreduce", "rabenseifner", p).steps) == 2 * L + 2 * fold
    assert len(build("allreduce", "recursive-doubling", p).steps) == L + 2 * fold
    assert len(build("allreduce", "binomial", p).steps) == 2 * _lg(p)
    assert len(build("reducescatter", "recursive-halving", p).steps) == L + 2 * fold
    assert len(build("allgather", "recursive-doubling", p).steps) == L + 2 * fold


@pytest.mark.parametrize("p", [2, 4, 8, 16, 64])
def test_bandwidth_optimal_algorithms_send_2_p_minus_1_over_p(p):
    n = 64 * 1024 * p
    for algo in ("ring", "rabenseifner"):
        sent = build("allreduce", algo, p).bytes_sent(n)
        assert sent.max() == 2 * (p - 1) * n // p
    for coll, algo in (("reducescatter", "ring"), ("reducescatter", "recursive-halving"),
                       ("reducescatter", "pairwise"), ("allgather", "ring"),
                       ("allgather", "recursive-doubling"), ("allgather", "bruck")):
        assert build(coll, algo, p).bytes_sent(n).max() == (p - 1) * n // p
    assert build("allreduce", "recursive-doubling", p).bytes_sent(n).max() == _lg(p) * n


def test_bruck_sends_p_minus_1_over_p_for_any_p():
    for p in (3, 5, 6, 7, 11):
        n = 1000 * p
        assert build("allgather", "bruck", p).bytes_sent(n).max() == (p - 1) * n // p


def test_summary_is_readable():
    text = str(build("allreduce", "ring", 8))
    assert "allreduce/ring" in text and "8 ranks" in text and "14 steps" in text
    listing = build("allreduce", "ring", 3).describe()
    assert "step 0:" in listing and "+=" in listing and "<-" in listing


def test_schedules_are_hashable_and_compare_by_value():
    a, b = build("allreduce", "rabenseifner", 6), build("allreduce", "rabenseifner", 6)
    assert a == b and hash(a) == hash(b)
    assert a != build("allreduce", "rabenseifner", 5)
    assert len({a, b}) == 1


def test_transfers_view_matches_the_columns():
    s = build("allgather", "bruck", 5)
    ts = list(s.transfers(2))
    # step 2 (distance 4): every rank sends min(4, 1) = 1 chunk, its own, to r - 4.
    assert [(t.src, t.dst, t.chunks) for t in ts] == [(r, (r - 4) % 5, (r,)) for r in range(5)]
    assert all(t.op is collectives.Op.COPY for t in ts)


def test_ring_steps_share_their_arrays():
    s = build("allreduce", "ring", 1024)
    rs_steps = s.steps[:1023]
    assert len({id(st.src) for st in rs_steps}) == 1
