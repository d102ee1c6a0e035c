"""The MPI executor on real processes (mpiexec -n 1..4, oversubscribed is fine), and its plan.

Each rank count is one mpiexec launch of ``mpi_scripts/check_all.py``, which runs every
algorithm of every collective over sizes 0, 1, p-1, 13 and 100_003, int64 and float32, in place
and out of place, and compares with the numpy executor (bit for bit) and numpy's reductions.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from mpi_scripts.launcher import launch, needs_mpi, script

from collectives import algorithms, build
from collectives.ir import ScheduleError, make_step
from collectives.plan import OUT, SCRATCH, SEND, WORK, compile_plan

# ------------------------------------------------------------------------------------------
# real runs


@needs_mpi
@pytest.mark.parametrize("nranks", [2, 3, 4])
def test_every_algorithm_matches_numpy(nranks):
    proc = launch(nranks, [script("check_all.py")], timeout=150)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    m = re.search(r"CHECKED (\d+) FAILED (\d+)", out)
    assert m, out[-4000:]
    assert int(m.group(2)) == 0, out[-4000:]
    assert int(m.group(1)) >= 250


@needs_mpi
def test_one_rank_without_mpiexec():
    """COMM_WORLD of size 1, started as a plain Python process."""
    proc = launch(None, [script("check_all.py"), "0,1,5,1000"], timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert re.search(r"CHECKED \d+ FAILED 0", out), out[-4000:]


@needs_mpi
@pytest.mark.parametrize("mode", ["schedule", "absent"])
def test_a_stall_ends_the_job_with_a_message(mode):
    t0 = time.monotonic()
    proc = launch(2, [script("stall.py"), mode, "2"], timeout=60)
    elapsed = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "should not have" not in out
    assert elapsed < 30, (elapsed, out)
    if mode == "schedule":
        m = re.search(r"rank (\d): allreduce/ring stalled in step (\d+) of \d+: waited [\d.]+ s "
                      r"for rank\(s\) (\d): receive of \d+ elements from rank (\d)", out)
        assert m, out
        assert m.group(1) != m.group(3) and m.group(3) == m.group(4)
    else:
        assert "rank 0: timed out in the agreement check" in out, out
    assert "aborting" in out


@needs_mpi
def test_a_stall_can_raise_instead_of_aborting():
    proc = launch(2, [script("stall.py"), "raise", "1"], timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for rank in (0, 1):
        assert re.search(rf"CAUGHT rank {rank}: rank {rank}: allreduce/ring stalled in step", out)


@needs_mpi
def test_disagreeing_ranks_all_get_one_clear_error():
    nranks = 3
    proc = launch(nranks, [script("mismatch.py")], timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for rank in range(nranks):
        assert re.search(rf"AFTER rank {rank}: ok", out), out
        for mode in ("count", "dtype", "schedule", "recvbuf"):
            assert re.search(rf"{mode} rank {rank}: MismatchError", out), (mode, out)
    counts = re.findall(r"count rank \d: MismatchError: ([^\n]*?)(?=(?:count|dtype) rank|\n|$)",
                        out)
    assert counts
    for line in counts:  # each rank's count and dtype is named
        assert "rank 0: count 10 x float32" in line
        assert "rank 1: count 11 x float32" in line
        assert "rank 2: count 12 x float32" in line
    assert "ranks 0,2: count 10 x float32" in out and "rank 1: count 10 x float64" in out
    assert "rank 1: its recvbuf has 9 elements but 10 were expected" in out


# ------------------------------------------------------------------------------------------
# the plan, in-process


def test_ring_plan_sends_views_and_never_copies_the_input():
    s = build("allreduce", "ring", 4)
    plan = compile_plan(s, 1, 100, inplace=False)
    assert len(plan.steps) == 6
    # every step: one send and one receive, no packing
    assert all(len(st.sends) == 1 and len(st.recvs) == 1 and not st.pack for st in plan.steps)
    rs = plan.steps[:3]
    # reduce-scatter: receive into scratch, then op(own, received) into work
    assert all(st.recvs[0].data.buf == SCRATCH for st in rs)
    first = rs[0].post[0]
    assert first.reduce and first.a.buf == SEND and first.dst.buf == WORK
    # all-gather: received chunks land in place
    assert all(st.recvs[0].data.buf == WORK for st in plan.steps[3:])
    # every chunk is written by some step, so no final copy of the input is needed
    assert plan.final == ()
    assert plan.result.buf == WORK and plan.result.size == 100
    assert plan.scratch == 25


def test_swap_and_reduce_goes_through_scratch():
    # recursive doubling: each rank sends the vector it is about to reduce into
    plan = compile_plan(build("allreduce", "recursive-doubling", 2), 0, 10, inplace=True)
    (st,) = plan.steps
    assert st.sends[0].data.buf == WORK and st.recvs[0].data.buf == SCRATCH
    assert plan.scratch == 10


def test_copy_of_a_chunk_also_sent_lands_in_scratch():
    # rank 0 sends chunk 0 to 1 and receives chunk 0 from 1 in the same step (a copy)
    step = make_step([0, 1], [1, 0], False, run_start=[0, 0])
    from collectives.ir import Schedule

    s = Schedule("broadcast", "swap", 2, 1, (step,), owner=(0,))
    with pytest.raises(ScheduleError, match="rank 1 sends a chunk it does not hold"):
        compile_plan(s, 1, 10, inplace=True)
    plan = compile_plan(s, 0, 10, inplace=True)
    (st,) = plan.steps
    assert st.recvs[0].data.buf == SCRATCH
    assert not st.post[0].reduce and st.post[0].dst.buf == WORK


def test_reduce_scatter_out_of_place_writes_the_output_directly():
    plan = compile_plan(build("reducescatter", "ring", 3), 2, 30, inplace=False)
    assert plan.result.buf == OUT and plan.out_count == 10
    last = plan.steps[-1].post[-1]
    assert last.reduce and last.dst.buf == OUT


def test_empty_chunks_send_nothing():
    plan = compile_plan(build("allgather", "ring", 4), 0, 2, inplace=True)
    sizes = [m.data.size for st in plan.steps for m in (*st.sends, *st.recvs)]
    assert sizes and all(sz > 0 for sz in sizes)
    assert compile_plan(build("allreduce", "ring", 4), 0, 0, inplace=False).steps == ()


@pytest.mark.parametrize("coll", ["allreduce", "reducescatter", "allgather"])
def test_every_registered_algorithm_compiles_for_every_rank(coll):
    for algo in algorithms(coll):
        for p in (1, 2, 5, 8):
            s = build(coll, algo, p)
            for r in range(p):
                for n in (0, 3, 1001):
                    plan = compile_plan(s, r, n, inplace=bool(r % 2))
                    assert plan.scratch <= max(n, 1) * max(len(s.steps), 1)
                    assert np.all([m.peer != r for st in plan.steps for m in st.sends])


@needs_mpi
def test_one_rank_in_process_results_and_argument_errors():
    from mpi4py import MPI

    from collectives.mpi_executor import MismatchError, prepare, run

    self_ = MPI.COMM_SELF
    x = np.arange(5, dtype=np.float32)
    out = np.empty_like(x)
    got = run(build("allreduce", "ring", 1), x, out, comm=self_)
    assert got is not None and np.shares_memory(got, out) and np.array_equal(out, x)
    rs = run(build("reducescatter", "ring", 1), x.copy(), comm=self_)  # in place: a view
    assert np.array_equal(rs, x)
    ag = run(build("allgather", "bruck", 1), x, np.empty(5, np.float32), comm=self_)
    assert np.array_equal(ag, x)
    prep = prepare(build("allreduce", "recursive-doubling", 1), x, out, op="max", comm=self_)
    assert prep() is prep.result and prep.plan.nmessages == 0
    prep.free()
    cases = [
        (dict(sendbuf=x.astype(np.uint8)), "dtype is not one of float16, float32"),
        (dict(op="avg"), "op is not one of sum, prod, max, min"),
        (dict(recvbuf=np.empty(4, np.float32)), "recvbuf has 4 elements but 5 were expected"),
        (dict(recvbuf=np.empty(5, np.float64)), "different dtypes"),
        (dict(sendbuf=np.ones((2, 2), np.float32)), "one-dimensional contiguous"),
        (dict(schedule=build("allreduce", "ring", 2)), "schedule is for 2 ranks but the "
                                                          "communicator has 1"),
        (dict(recvbuf=x), None),  # recvbuf is sendbuf: in place, fine
    ]
    for change, message in cases:
        kw = dict(schedule=build("allreduce", "ring", 1), sendbuf=x, recvbuf=out, op="sum",
                  comm=self_)
        kw.update(change)
        if message is None:
            run(**kw)
            continue
        with pytest.raises(MismatchError, match=message):
            run(**kw)
