"""A run that cannot finish must end itself: ``mpiexec -n 2 python stall.py MODE TIMEOUT``.

``schedule``: rank 1 runs the ring all-reduce shifted by one empty step, so its messages carry
other tags than rank 0's and both wait forever for each other (the agreement check, which would
catch the different schedules, is off). ``absent``: rank 1 never calls the executor, so rank 0
waits in the agreement check. Either way the executor must print the stall and abort the job
with a non-zero status well within the test's limit. ``raise``: as ``schedule`` with
``abort=False``: every rank catches the StallError and the job ends normally.
"""

from __future__ import annotations

import sys
import time


def main() -> int:
    import numpy as np
    from mpi4py import MPI

    from collectives import build, make_step
    from collectives.ir import Schedule
    from collectives.mpi_executor import run

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    mode = sys.argv[1]
    timeout = float(sys.argv[2])
    ring = build("allreduce", "ring", comm.Get_size())
    x = np.arange(1000, dtype=np.float32)
    if mode == "raise":  # as "schedule", but with abort=False: every rank gets StallError
        from collectives.mpi_executor import StallError

        schedule = ring
        if rank == 1:
            empty = make_step([], [], True, run_start=[])
            schedule = Schedule(ring.collective, ring.algorithm, ring.nranks, ring.nchunks,
                                (empty, *ring.steps))
        try:
            run(schedule, x, timeout=timeout, check=False, abort=False)
        except StallError as e:
            print(f"CAUGHT rank {rank}: {e}", flush=True)
        comm.Barrier()  # the job is still usable
        return 0
    if mode == "schedule":
        schedule = ring
        if rank == 1:
            empty = make_step([], [], True, run_start=[])
            schedule = Schedule(ring.collective, ring.algorithm, ring.nranks, ring.nchunks,
                                (empty, *ring.steps))
        run(schedule, x, timeout=timeout, check=False)
    elif mode == "absent":
        if rank == 0:
            run(ring, x, timeout=timeout)
        else:
            time.sleep(4 * timeout + 30)
    print(f"rank {rank}: finished, which it should not have", flush=True)
    return 3


if __name__ == "__main__":
    sys.exit(main())
