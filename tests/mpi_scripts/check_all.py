"""Run every algorithm of every collective through the MPI executor and compare with numpy.

Run under ``mpiexec -n P``. For each collective and algorithm in the registry, sizes 0, 1,
``p-1`` (smaller than p), an odd size and a large one, int64 and float32, in place and out of
place: the result must equal the numpy executor's bit for bit, and a direct numpy reduction
(exactly for ints, within a tolerance for floats). A few op/dtype combinations are run on
ring and recursive doubling. Rank 0 prints ``CHECKED <cases> FAILED <failures>`` and the
first failures; the exit status is 1 if anything failed.
"""

from __future__ import annotations

import sys

import numpy as np

from collectives import algorithms, build, chunk_bounds, execute, variants
from collectives.numpy_executor import reduce_ufunc

p = rank = 0  # set by main() from COMM_WORLD


def inputs(n: int, dtype, op: str) -> list[np.ndarray]:
    i = np.arange(n, dtype=np.int64)
    if op == "prod":
        return [np.where((i + r) % 5 == 0, 2, np.where((i + 2 * r) % 7 == 0, -1, 1))
                .astype(dtype) for r in range(p)]
    return [(((i * 7 + r * 13 + (i * r) % 11) % 19) - 9).astype(dtype) for r in range(p)]


def owned_index(schedule, n: int, r: int) -> np.ndarray:
    bounds = chunk_bounds(n, schedule.nchunks)
    idx = [np.arange(bounds[c], bounds[c + 1]) for c, o in enumerate(schedule.owner) if o == r]
    return np.concatenate(idx) if idx else np.zeros(0, dtype=np.int64)


def expected(schedule, xs: list[np.ndarray], op: str, r: int):
    coll = schedule.collective
    uf = reduce_ufunc(op)
    if coll in ("allreduce", "reducescatter", "reduce"):
        full = xs[0].copy()
        for x in xs[1:]:
            uf(full, x, out=full)
        if coll == "reducescatter":
            return full[owned_index(schedule, len(full), r)]
        if coll == "reduce":
            return full if r == schedule.owner[0] else None
        return full
    if coll == "allgather":
        full = np.empty_like(xs[0])
        for q in range(p):
            idx = owned_index(schedule, len(full), q)
            full[idx] = xs[q][idx]
        return full
    return xs[schedule.owner[0]].copy()  # broadcast


failures: list[str] = []
cases = 0


def case(schedule, n: int, dtype, op: str, inplace: bool) -> None:
    from collectives.mpi_executor import run

    global cases
    cases += 1
    name = (f"{schedule.collective}/{schedule.algorithm} p={p} n={n} {np.dtype(dtype).name} "
            f"{op} {'in' if inplace else 'out-of'}-place")
    xs = inputs(n, dtype, op)
    coll = schedule.collective
    try:
        gather_block = coll == "allgather" and not inplace
        if gather_block:
            ref_inputs = [x[owned_index(schedule, n, q)] for q, x in enumerate(xs)]
        elif coll == "allgather" and inplace:
            ref_inputs = []
            for q, x in enumerate(xs):
                y = np.full_like(x, 99)
                idx = owned_index(schedule, n, q)
                y[idx] = x[idx]
                ref_inputs.append(y)
        else:
            ref_inputs = xs
        reference = execute(schedule, [x.copy() for x in ref_inputs], op, inplace=inplace)[rank]
        direct = expected(schedule, xs, op, rank)
        mine = ref_inputs[rank].copy()
        before = mine.copy()
        if inplace:
            got = run(schedule, mine, op=op, timeout=30)
        else:
            if coll == "reducescatter":
                out = np.full(len(owned_index(schedule, n, rank)), 77, dtype=dtype)
            else:
                out = np.full(n, 77, dtype=dtype)
            got = run(schedule, mine, out, op=op, timeout=30)
            if not np.array_equal(mine, before):
                failures.append(f"{name}: rank {rank}: the input was modified out of place")
            if got is not None and got.size and coll != "reduce" \
                    and not np.shares_memory(got, out):
                failures.append(f"{name}: rank {rank}: the result is not in recvbuf")
        if reference is None or direct is None:
            return
        if got is None or got.shape != reference.shape:
            failures.append(f"{name}: rank {rank}: result shape "
                            f"{None if got is None else got.shape}, expected {reference.shape}")
            return
        if not np.array_equal(got, reference):
            bad = int(np.count_nonzero(got != reference))
            failures.append(f"{name}: rank {rank}: {bad} elements differ from the numpy "
                            f"executor (first {got[got != reference][:3]} vs "
                            f"{reference[got != reference][:3]})")
        if np.issubdtype(np.dtype(dtype), np.integer):
            ok = np.array_equal(got, direct)
        else:
            ok = np.allclose(got, direct, rtol=1e-3 if dtype == np.float16 else 1e-6, atol=0)
        if not ok:
            failures.append(f"{name}: rank {rank}: differs from the numpy reduction")
    except Exception as e:  # report and go on: one failure must not hide the others
        failures.append(f"{name}: rank {rank}: {type(e).__name__}: {e}")


def main() -> int:
    global p, rank
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    p, rank = comm.Get_size(), comm.Get_rank()
    sizes = sorted({0, 1, max(p - 1, 1), 13, 100_003})
    if len(sys.argv) > 1:
        sizes = [int(s) for s in sys.argv[1].split(",")]
    for coll in ("allreduce", "reducescatter", "allgather", "reduce", "broadcast"):
        for algo, opts in ((a, o) for a in algorithms(coll) for o in variants(coll, a)):
            schedule = build(coll, algo, p, **opts)
            for n in sizes:
                for dtype in (np.int64, np.float32):
                    for inplace in (False, True):
                        case(schedule, n, dtype, "sum", inplace)
    for algo in ("ring", "recursive-doubling"):
        schedule = build("allreduce", algo, p)
        for op in ("prod", "max", "min"):
            for dtype in (np.float16, np.float64, np.int32, np.int64, np.float32):
                case(schedule, 1001, dtype, op, False)
        for dtype in (np.float16, np.float64, np.int32):
            case(schedule, 1001, dtype, "sum", True)
    all_failures = comm.gather(failures, root=0)
    total = comm.allreduce(len(failures))
    if rank == 0:
        flat = [f for fs in all_failures for f in fs]
        print(f"CHECKED {cases} FAILED {len(flat)}", flush=True)
        for f in flat[:40]:
            print("  " + f, flush=True)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
