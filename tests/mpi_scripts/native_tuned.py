"""Native MPI collectives at given sizes, results checked: for loading exported tuning files.

``mpiexec -n K python native_tuned.py COLLECTIVE SIZE[,SIZE...]`` runs MPI's own
``Allreduce``, ``Reduce_scatter`` (with per-rank counts, the call Open MPI's rules id 12 and
MPICH's ``collective=reduce_scatter`` tune; not ``Reduce_scatter_block``) or ``Allgather`` on
float32 vectors of SIZE bytes in all (the full vector, as the tuning files count it), twice per
size, and checks every element against the exact sum of small integers. Rank 0 prints one JSON
line ``{"library": ..., "ranks": K, "wrong": {size: count}}``.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from mpi4py import MPI


def main() -> int:
    coll, sizes = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
    comm = MPI.COMM_WORLD
    rank, p = comm.Get_rank(), comm.Get_size()
    wrong = {}
    for size in sizes:
        n = max(size // 4, p)
        n -= n % p if coll != "allreduce" else 0
        values = ((np.arange(n) * 3 + np.arange(p)[:, None] * 5) % 9 - 4).astype(np.float32)
        total = values.sum(axis=0)
        bad = 0
        for _ in range(2):
            if coll == "allreduce":
                out = np.empty(n, np.float32)
                comm.Allreduce(values[rank], out, MPI.SUM)
                expected = total
            elif coll == "reducescatter":
                m = n // p
                out = np.empty(m, np.float32)
                comm.Reduce_scatter(values[rank], out, [m] * p, MPI.SUM)
                expected = total[rank * m:(rank + 1) * m]
            else:
                m = n // p
                out = np.empty(n, np.float32)
                comm.Allgather(values[rank, rank * m:(rank + 1) * m], out)
                expected = np.concatenate([values[q, q * m:(q + 1) * m] for q in range(p)])
            bad += int(np.count_nonzero(out != expected))
        wrong[size] = comm.allreduce(bad)
    if rank == 0:
        print(json.dumps({"library": MPI.Get_library_version().split("\n")[0].strip("\0 \t"),
                          "ranks": p, "wrong": wrong}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
