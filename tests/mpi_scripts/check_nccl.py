"""The NCCL executor on one GPU per rank: ``mpiexec -n P python check_nccl.py``.

Every algorithm of all-reduce, reduce-scatter and all-gather, out of place and in place, on
CuPy arrays, against the numpy executor; then NCCL's own collectives through
:func:`collectives.nccl_executor.native`. Prints ``CHECKED <cases> FAILED <failures>`` on
rank 0; exit status 1 on any failure.
"""

from __future__ import annotations

import sys


def main() -> int:
    import cupy
    import numpy as np
    from mpi4py import MPI

    from collectives import algorithms, build, chunk_bounds, execute
    from collectives.nccl_executor import native, run, transport_for

    comm = MPI.COMM_WORLD
    p, rank = comm.Get_size(), comm.Get_rank()
    transport_for(comm)
    failures, cases = [], 0
    for coll in ("allreduce", "reducescatter", "allgather"):
        for algo in algorithms(coll):
            s = build(coll, algo, p)
            for n in (0, 1, 13, 100_003):
                for inplace in (False, True):
                    cases += 1
                    xs = [((np.arange(n) * 7 + q * 3) % 11 - 5).astype(np.float32)
                          for q in range(p)]
                    bounds = chunk_bounds(n, s.nchunks)
                    owned = [np.arange(bounds[c], bounds[c + 1])
                             for c, o in enumerate(s.owner) if o == rank]
                    own = np.concatenate(owned) if owned else np.zeros(0, np.int64)
                    if coll == "allgather" and not inplace:
                        ins = []
                        for q in range(p):
                            idx = [np.arange(bounds[c], bounds[c + 1])
                                   for c, o in enumerate(s.owner) if o == q]
                            ins.append(xs[q][np.concatenate(idx)] if idx else xs[q][:0])
                    else:
                        ins = xs
                    want = execute(s, [x.copy() for x in ins], "sum", inplace=inplace)[rank]
                    mine = cupy.asarray(ins[rank])
                    if inplace:
                        got = run(s, mine)
                    else:
                        size = own.size if coll == "reducescatter" else n
                        got = run(s, mine, cupy.empty(size, np.float32))
                    cupy.cuda.Device().synchronize()
                    if not np.array_equal(cupy.asnumpy(got), want):
                        failures.append(f"{coll}/{algo} n={n} inplace={inplace} rank {rank}")
    t = transport_for(comm)
    n = 64 * p
    x = cupy.full(n, rank + 1, dtype=cupy.float32)
    for coll in ("allreduce", "reducescatter", "allgather"):
        cases += 1
        if coll == "allgather":
            fn, res = native(t, coll, x[:n // p].copy(), cupy.empty(n, cupy.float32))
            expect = np.repeat(np.arange(1, p + 1, dtype=np.float32), n // p)
        else:
            out = cupy.empty(n if coll == "allreduce" else n // p, cupy.float32)
            fn, res = native(t, coll, x, out)
            expect = np.full(out.size, p * (p + 1) / 2, np.float32)
        fn()
        t.stream.synchronize()
        if not np.array_equal(cupy.asnumpy(res), expect):
            failures.append(f"native {coll} rank {rank}")
    failures = comm.gather(failures, root=0)
    if rank == 0:
        flat = [f for fs in failures for f in fs]
        print(f"CHECKED {cases} FAILED {len(flat)}", flush=True)
        for f in flat[:20]:
            print("  " + f, flush=True)
        return 1 if flat else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
