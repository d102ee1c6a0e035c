"""``python -m bench small``: where a small all-reduce's time goes, layer by layer.

One message size (default 8 B of float32), timed as the fastest of ``--loops`` loops of
``-n`` back-to-back calls, the largest over the ranks, each variant beside the MPI library's own
``Allreduce``:

* ``native``: ``MPI_Allreduce``;
* ``one Sendrecv``: one blocking exchange with the first recursive-doubling partner (what one
  step of any algorithm costs at least, called from Python);
* ``rd by hand, Sendrecv + np.add``: recursive doubling written directly in mpi4py, blocking
  calls (the library progresses and yields; no Python between a step's messages);
* ``rd by hand, persistent + Waitall``: the same over persistent requests, one ``Startall`` and
  one blocking ``Waitall`` per step;
* ``executor <algorithm>``: the project's executor (``collectives.mpi_executor.prepare``),
  which polls with ``Testall`` so that a stalled peer ends in an error instead of a hang.

The hand-written variants need a power-of-two rank count; elsewhere only native and the
executor run. The spread between the rows is the per-step software cost of each layer; see
docs/calibration.md for the figures measured on a 2-core machine.
"""

from __future__ import annotations

import numpy as np

from bench._common import Parser, environment, header_lines, parse_size, time_loop

__all__ = ["small_messages"]

ALGORITHMS = ("recursive-doubling", "binomial")


def small_messages(comm=None, args=None, verbose: bool = True) -> list[dict]:
    """Time each variant (see the module docstring); rows ``{"variant", "time_s",
    "to_native"}`` on every rank, printed by rank 0."""
    from mpi4py import MPI

    from collectives import build
    from collectives.mpi_executor import prepare

    comm = MPI.COMM_WORLD if comm is None else comm
    rank, p = comm.Get_rank(), comm.Get_size()
    parser = Parser(prog="python -m bench small", rank=rank,
                    description="a small all-reduce's time, layer by layer, beside native")
    parser.add_argument("-b", "--bytes", type=parse_size, default=8,
                        help="message size in bytes (float32 elements; default 8)")
    parser.add_argument("-n", "--iters", type=int, default=2000,
                        help="calls per timed loop (default 2000)")
    parser.add_argument("--loops", type=int, default=5,
                        help="timed loops; the fastest is kept (default 5)")
    a = parser.parse_args(args)
    for flag, value in (("-n/--iters", a.iters), ("--loops", a.loops)):
        if value < 1:
            parser.error(f"argument {flag}: must be >= 1, got {value}")
    n = max(a.bytes // 4, 1)
    send = np.ones(n, np.float32)
    recv = np.empty_like(send)
    tmp = np.empty_like(send)

    def timed(fn) -> float:
        # the first loop warms up; each loop's figure is its slowest rank's
        return min(time_loop(comm, fn, a.iters, min(a.iters, 200) if k == 0 else 0)[0]
                   for k in range(a.loops))

    variants: list[tuple[str, float]] = [("native", timed(lambda: comm.Allreduce(send, recv)))]
    skipped = None
    if p > 1 and p & (p - 1) == 0:
        partners = [rank ^ d for d in (1 << k for k in range(p.bit_length() - 1))]
        first = partners[0]
        variants.append(("one Sendrecv", timed(
            lambda: comm.Sendrecv(send, first, 0, tmp, first, 0))))

        def rd_sendrecv():
            np.copyto(recv, send)
            for peer in partners:
                comm.Sendrecv(recv, peer, 0, tmp, peer, 0)
                np.add(recv, tmp, recv)
        variants.append(("rd by hand, Sendrecv + np.add", timed(rd_sendrecv)))
        groups = [[comm.Send_init(recv, peer, 1), comm.Recv_init(tmp, peer, 1)]
                  for peer in partners]
        startall, waitall = MPI.Prequest.Startall, MPI.Request.Waitall

        def rd_persistent():
            np.copyto(recv, send)
            for g in groups:
                startall(g)
                waitall(g)
                np.add(recv, tmp, recv)
        try:
            variants.append(("rd by hand, persistent + Waitall", timed(rd_persistent)))
        finally:
            for g in groups:
                for req in g:
                    req.Free()
    else:
        skipped = f"# the hand-written variants need a power-of-two rank count, not {p}"
    for algo in ALGORITHMS:
        prep = prepare(build("allreduce", algo, p), send, recv)
        try:
            variants.append((f"executor {algo}", timed(prep)))
        finally:
            prep.free()
    native = variants[0][1]
    rows = [{"variant": name, "time_s": t, "to_native": t / native} for name, t in variants]
    env = environment(comm)  # collective: every rank
    if verbose and rank == 0:
        for line in header_lines(env):
            print(line)
        print(f"# {n * 4} B float32 all-reduce, fastest of {a.loops} loops of {a.iters} calls")
        if skipped:
            print(skipped)
        print(f"#{'variant':>35} {'time(us)':>10} {'/native':>8}")
        for r in rows:
            print(f"{r['variant']:>36} {r['time_s'] * 1e6:>10.2f} {r['to_native']:>8.2f}")
    return rows
