"""Ranks that disagree must all get the same clear error: ``mpiexec -n P mismatch.py``.

One call per mode, in one launch (after a MismatchError every rank is in step again):
``count`` (rank r has 10 + r elements), ``dtype`` (rank 1 uses float64), ``schedule`` (rank 1
runs recursive doubling), ``recvbuf`` (rank 1's recvbuf is one element short). For each mode
every rank prints ``MODE rank R: MismatchError: <message>``, or ``MODE rank R: NO ERROR`` /
the unexpected exception; then a correct call must still work (``AFTER rank R: ok``).
"""

from __future__ import annotations

import sys

MODES = ("count", "dtype", "schedule", "recvbuf")


def main() -> int:
    import numpy as np
    from mpi4py import MPI

    from collectives import build
    from collectives.mpi_executor import MismatchError, run

    comm = MPI.COMM_WORLD
    rank, p = comm.Get_rank(), comm.Get_size()
    for mode in MODES:
        algo = "recursive-doubling" if mode == "schedule" and rank == 1 else "ring"
        schedule = build("allreduce", algo, p)
        n = 10 + rank if mode == "count" else 10
        dtype = np.float64 if mode == "dtype" and rank == 1 else np.float32
        x = np.ones(n, dtype)
        out = np.empty(n - 1 if mode == "recvbuf" and rank == 1 else n, dtype)
        try:
            run(schedule, x, out, timeout=20)
        except MismatchError as e:
            print(f"{mode} rank {rank}: MismatchError: {e}", flush=True)
        except Exception as e:
            print(f"{mode} rank {rank}: {type(e).__name__}: {e}", flush=True)
        else:
            print(f"{mode} rank {rank}: NO ERROR", flush=True)
    x = np.full(7, rank + 1, dtype=np.int64)
    got = run(build("allreduce", "ring", p), x, np.empty_like(x), timeout=20)
    ok = bool(np.all(got == p * (p + 1) // 2))
    print(f"AFTER rank {rank}: {'ok' if ok else got}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
