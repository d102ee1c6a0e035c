"""The small interface a compiled plan runs on, and its MPI implementation.

A :class:`Transport` moves one step's messages and does the local arithmetic:

- ``send(buf, peer, tag)`` / ``recv(buf, peer, tag)``: prepare sending the array view ``buf``
  to ``peer`` / receiving into it from ``peer``; returns an op handle.
- ``group(ops)``: the ops of one step as one handle; ``start(group)`` starts them together.
- ``poll(group)``: True if the group is already complete (default False).
- ``wait(group, deadline)``: return once the group's buffers may be reused; at ``deadline``
  (``time.monotonic``) raise ``Timeout(group, pending)``.
- ``finish(deadline)``: everything started is complete (for stream-ordered transports; skipped
  where ``needs_finish`` is False).
- ``reduce(uf, dst, a, b)``: ``dst = uf(a, b)`` elementwise (``dst`` may be ``a``);
  ``copy(dst, src)``: ``dst[:] = src``; ``bind_reduce``/``bind_copy``: the same on fixed
  arguments as argument-less callables, built once per plan (the hot path calls them).
- ``empty(n, dtype)``: a buffer where this transport's data lives; ``ufunc(op)``: the
  elementwise function for ``sum``, ``prod``, ``max``, ``min``; ``free(group)``: release what
  ``send``/``recv`` prepared.

Messages between one pair of ranks in one step carry distinct tags, so a transport may start a
group's operations in any order. :class:`MPITransport` prepares persistent requests
(``Send_init``/``Recv_init`` on numpy views, sent as bytes: no pickling, no packing) and starts a
step with one ``Prequest.Startall``; waiting polls ``Request.Testall`` so that a stall ends at
the deadline instead of hanging. The NCCL transport lives in :mod:`collectives.nccl_executor`.
"""

from __future__ import annotations

import functools
import os
import time

import numpy as np

from collectives.memory import host_empty
from collectives.numpy_executor import reduce_ufunc

__all__ = ["MPITransport", "Transport", "TransportTimeout"]


class TransportTimeout(Exception):
    """``wait`` or ``finish`` reached its deadline; ``pending`` indexes the unfinished ops of
    ``handle`` (sends first, then receives, in the order they were prepared)."""

    def __init__(self, handle, pending: list[int]):
        super().__init__(f"{len(pending)} operation(s) pending")
        self.handle = handle
        self.pending = pending


class Transport:
    """Base class: see the module docstring for the contract."""

    Timeout = TransportTimeout
    name = "abstract"
    needs_finish = True  # False where every group is complete once ``wait`` returns

    def send(self, buf, peer: int, tag: int):
        raise NotImplementedError

    def recv(self, buf, peer: int, tag: int):
        raise NotImplementedError

    def group(self, ops: list):
        return list(ops)

    def start(self, group) -> None:
        raise NotImplementedError

    def poll(self, group) -> bool:
        """True if the group is already complete (then ``wait`` is skipped)."""
        return False

    def wait(self, group, deadline: float | None) -> None:
        raise NotImplementedError

    def finish(self, deadline: float | None) -> None:
        return None

    def free(self, group) -> None:
        return None

    def empty(self, n: int, dtype):
        return host_empty(n, dtype)

    def ufunc(self, op: str):
        return reduce_ufunc(op)

    def reduce(self, uf, dst, a, b) -> None:
        uf(a, b, out=dst)

    def copy(self, dst, src) -> None:
        np.copyto(dst, src)

    def bind_reduce(self, uf, dst, a, b):
        """``reduce`` on fixed arguments, as a callable without arguments (the hot path)."""
        return functools.partial(self.reduce, uf, dst, a, b)

    def bind_copy(self, dst, src):
        return functools.partial(self.copy, dst, src)

    @staticmethod
    def address(arr) -> int:
        """Where an array's data starts (used to cache bindings)."""
        return arr.__array_interface__["data"][0]


# How many failed Testall polls before the waiting rank yields its core. On an oversubscribed
# machine (more ranks than cores) a rank that spins without yielding keeps its peer off the
# CPU until the scheduler's time slice ends, which turns microseconds into milliseconds;
# MPICH's own blocking calls yield the same way (MPIR_CVAR_POLLS_BEFORE_YIELD, default 1000).
# Default: yield at every failed poll when this host runs more ranks than it has cores (as
# MPICH's launcher reports in MPI_LOCALNRANKS, Open MPI's in OMPI_COMM_WORLD_LOCAL_SIZE),
# every 16 polls otherwise; COLLECTIVES_POLLS_BEFORE_YIELD overrides (0: never yield).


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _polls_before_yield() -> int:
    value = os.environ.get("COLLECTIVES_POLLS_BEFORE_YIELD")
    if value:
        return int(value)
    local = os.environ.get("MPI_LOCALNRANKS") or os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE")
    return 1 if local and local.isdigit() and int(local) > cores() else 16


POLLS_BEFORE_YIELD = _polls_before_yield()
# How many polls between two looks at the clock.
POLLS_PER_CLOCK = 256


class MPITransport(Transport):
    """Point-to-point messages over an mpi4py communicator with persistent requests.

    The communicator should be private to the executor (a ``Dup``), so that its tags never meet
    the application's messages.
    """

    name = "mpi"
    needs_finish = False

    def __init__(self, comm):
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self._startall = MPI.Prequest.Startall
        self._testall = MPI.Request.Testall
        self._waitall = MPI.Request.Waitall
        # the hot path calls mpi4py directly, without a Python frame in between
        self.start = MPI.Prequest.Startall
        self.poll = MPI.Request.Testall

    def send(self, buf, peer, tag):
        return self.comm.Send_init([buf, self.MPI.BYTE], peer, tag)

    def recv(self, buf, peer, tag):
        return self.comm.Recv_init([buf, self.MPI.BYTE], peer, tag)

    def bind_reduce(self, uf, dst, a, b):
        # ``out`` as the third positional argument: a keyword costs the ufunc a dict parse
        return functools.partial(uf, a, b, dst)

    def bind_copy(self, dst, src):
        return functools.partial(np.copyto, dst, src)

    def start(self, group) -> None:
        self._startall(group)

    def wait(self, group, deadline) -> None:
        testall = self._testall
        if testall(group):
            return
        if deadline is None and POLLS_BEFORE_YIELD <= 0:
            self._waitall(group)
            return
        polls = 0
        yield_every = POLLS_BEFORE_YIELD if POLLS_BEFORE_YIELD > 0 else 1 << 62
        sched_yield = os.sched_yield
        while not testall(group):
            polls += 1
            if polls % yield_every == 0:
                sched_yield()
            if deadline is not None and polls % POLLS_PER_CLOCK == 0 \
                    and time.monotonic() > deadline:
                pending = [i for i, req in enumerate(group) if not req.Get_status()]
                raise TransportTimeout(group, pending)

    def free(self, group) -> None:
        if self.MPI.Is_finalized():
            return
        for req in group:
            if req == self.MPI.REQUEST_NULL:
                continue
            if not req.Get_status():  # after a stall: cancel, wait a little, free anyway
                req.Cancel()
                deadline = time.monotonic() + 0.1
                while not req.Test() and time.monotonic() < deadline:
                    pass
            if req != self.MPI.REQUEST_NULL:
                req.Free()
