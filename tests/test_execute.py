"""The numpy executor against numpy's own reductions, swept by hypothesis."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectives import algorithms, build, chunk_bounds, execute

RANKS = st.one_of(st.sampled_from([1, 2, 3, 5, 7, 11, 13, 17]), st.integers(1, 24))
SIZES = st.one_of(st.sampled_from([0, 1, 2, 3]), st.integers(0, 40), st.integers(1000, 5000))
DTYPES = st.sampled_from(["int32", "int64", "float32", "float64", "float16", "uint8"])
OPS = st.sampled_from(["sum", "prod", "max", "min"])
NUMPY = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}


def _inputs(rng, p, n, dtype, op):
    if np.dtype(dtype).kind == "f":
        # prod of many floats under/overflows; keep values near 1 for prod.
        lo, hi = (0.5, 1.5) if op == "prod" else (-4.0, 4.0)
        return [rng.uniform(lo, hi, n).astype(dtype) for _ in range(p)]
    if op == "prod":
        return [rng.integers(1, 3, n).astype(dtype) if np.dtype(dtype).kind == "u"
                else rng.choice(np.array([-1, 1, 1, 2]), n).astype(dtype) for _ in range(p)]
    hi = 3 if np.dtype(dtype).itemsize == 1 else 1000
    lo = 0 if np.dtype(dtype).kind == "u" else -hi
    return [rng.integers(lo, hi, n).astype(dtype) for _ in range(p)]


def _check(got, want, dtype):
    if np.dtype(dtype).kind == "f":
        tol = 2e-2 if dtype == "float16" else 1e-4
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


def _expected(xs, op, dtype):
    stack = np.stack(xs) if xs[0].size else np.zeros((len(xs), 0), dtype=dtype)
    if np.dtype(dtype).kind == "f":
        return NUMPY[op](stack.astype(np.float64), axis=0)
    return NUMPY[op](stack, axis=0).astype(dtype)


ALLREDUCE = algorithms("allreduce")
RS = algorithms("reducescatter")
AG = algorithms("allgather")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=RANKS, n=SIZES, dtype=DTYPES, op=OPS, algo=st.sampled_from(ALLREDUCE),
       inplace=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_allreduce_equals_numpy(p, n, dtype, op, algo, inplace, seed):
    rng = np.random.default_rng(seed)
    xs = _inputs(rng, p, n, dtype, op)
    originals = [x.copy() for x in xs]
    out = execute(build("allreduce", algo, p), xs, op=op, inplace=inplace)
    want = _expected(originals, op, dtype)
    for r in range(p):
        _check(out[r], want, dtype)
        if inplace:
            assert out[r] is xs[r]
        else:
            np.testing.assert_array_equal(xs[r], originals[r])  # inputs untouched


@settings(max_examples=120, deadline=None)
@given(p=RANKS, n=SIZES, dtype=DTYPES, op=OPS, algo=st.sampled_from(RS),
       inplace=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_reduce_scatter_equals_numpy(p, n, dtype, op, algo, inplace, seed):
    rng = np.random.default_rng(seed)
    xs = _inputs(rng, p, n, dtype, op)
    want = _expected([x.copy() for x in xs], op, dtype)
    s = build("reducescatter", algo, p)
    out = execute(s, xs, op=op, inplace=inplace)
    bounds = chunk_bounds(n, s.nchunks)
    for r in range(p):
        idx = [i for c, o in enumerate(s.owner) if o == r for i in range(bounds[c], bounds[c + 1])]
        _check(out[r], want[idx], dtype)
    if p > 1 and algo in ("ring", "pairwise", "recursive-halving"):
        # MPI's Reduce_scatter_block layout: rank r gets block r.
        assert s.owner == tuple(range(p))


@settings(max_examples=120, deadline=None)
@given(p=RANKS, block=st.integers(0, 30), dtype=DTYPES, algo=st.sampled_from(AG),
       inplace=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_all_gather_equals_concatenation(p, block, dtype, algo, inplace, seed):
    rng = np.random.default_rng(seed)
    s = build("allgather", algo, p)
    blocks = _inputs(rng, p, block, dtype, "sum")
    want = np.concatenate(blocks)
    if inplace:
        bufs = []
        for r in range(p):
            b = np.zeros(p * block, dtype=dtype)
            b[r * block:(r + 1) * block] = blocks[r]
            bufs.append(b)
        out = execute(s, bufs, inplace=True)
    else:
        out = execute(s, blocks)
    for r in range(p):
        _check(out[r], want, dtype)


@pytest.mark.parametrize("p", [1, 2, 3, 6])
@pytest.mark.parametrize("root", [0, 1, 2])
def test_reduce_and_broadcast(p, root):
    if root >= p:
        pytest.skip("root beyond rank count")
    xs = [np.arange(7) + r for r in range(p)]
    out = execute(build("reduce", "binomial", p, root=root), xs)
    np.testing.assert_array_equal(out[root], np.sum(xs, axis=0))
    assert all(o is None for r, o in enumerate(out) if r != root)
    data = [None] * p
    data[root] = np.arange(5.0)
    for o in execute(build("broadcast", "binomial", p, root=root), data):
        np.testing.assert_array_equal(o, np.arange(5.0))


def test_large_vector_and_many_ranks():
    p, n = 64, 100_003
    rng = np.random.default_rng(1)
    xs = [rng.integers(-100, 100, n) for _ in range(p)]
    for algo in ("ring", "rabenseifner", "double-binary-tree"):
        out = execute(build("allreduce", algo, p), xs)
        np.testing.assert_array_equal(out[p - 1], np.sum(xs, axis=0))


def test_large_buffers_have_a_mapping_of_their_own_whatever_was_freed_before():
    # executor scratch, sweep and calibration buffers: one backing from 64 KiB on (a freed
    # numpy buffer would otherwise hand its 4 KiB heap pages to the next one)
    from bench.calibrate import _ones
    from collectives.memory import HUGE_PAGE, MAPPED_FROM, host_empty
    from collectives.transport import Transport

    for _ in range(3):
        freed = np.ones(3 << 20, np.float32)
        del freed
        bufs = [Transport().empty(1 << 20, np.float32), _ones(1 << 20, np.int32),
                host_empty(HUGE_PAGE + 1, np.uint8), host_empty(MAPPED_FROM, np.uint8)]
        assert [b.ctypes.data % HUGE_PAGE for b in bufs] == [0, 0, 0, 0]
        assert bufs[1].sum() == 1 << 20 and len(bufs[2]) == HUGE_PAGE + 1
    view = host_empty(1 << 20, np.float64)[5:9]
    view[:] = 7.0
    del bufs
    assert view.tolist() == [7.0] * 4  # the view keeps its mapping
    small = host_empty(MAPPED_FROM // 4 - 1, np.float32)
    assert small.shape == (MAPPED_FROM // 4 - 1,) and small.dtype == np.float32
