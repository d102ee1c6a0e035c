"""Run a Schedule on GPUs with NCCL point-to-point (CuPy), one GPU per MPI rank.

The plan is the MPI executor's (:mod:`collectives.plan`); only the transport differs: a
step's sends and receives are issued between ``nccl.groupStart()`` and ``nccl.groupEnd()`` on
one CUDA stream, and the copies and reductions after it are CuPy elementwise kernels on the same
stream, so the host never waits between steps; the run ends by waiting (with the timeout) on
an event recorded after the last step. The NCCL unique id is created by rank 0 and broadcast
over MPI; each rank uses the GPU of its local rank (modulo the visible devices).

Buffers are CuPy arrays with the shapes of :mod:`collectives.mpi_executor`. With a timeout,
every run waits for its stream (polling, so a stall ends); with ``timeout=None`` a run returns
as soon as it is queued, as NCCL's own calls do. Nothing here
imports CuPy until it is asked for; without CuPy or a GPU, :func:`require_nccl` (called by
everything else) raises :class:`NCCLUnavailable`.
"""

from __future__ import annotations

import time

from collectives.transport import Transport, TransportTimeout

__all__ = [
    "NO_GPU",
    "NCCLTransport",
    "NCCLUnavailable",
    "native",
    "prepare",
    "require_nccl",
    "run",
    "transport_for",
]

NO_GPU = "no CUDA device is visible (or CuPy is not installed: pip install '.[nccl]')"


class NCCLUnavailable(RuntimeError):
    """CuPy, NCCL or a GPU is missing."""


def require_nccl():
    """Import CuPy and its NCCL bindings and check that a GPU is visible; return ``cupy``."""
    try:
        import cupy
        from cupy.cuda import nccl  # noqa: F401

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise NCCLUnavailable(NO_GPU)
    except NCCLUnavailable:
        raise
    except Exception:  # ImportError, CUDARuntimeError (no driver), ...
        raise NCCLUnavailable(NO_GPU) from None
    return cupy


class _Group:
    __slots__ = ("event", "ops")

    def __init__(self, ops, event):
        self.ops = ops
        self.event = event


class NCCLTransport(Transport):
    """NCCL send/recv on CuPy arrays over a private MPI communicator's ranks."""

    name = "nccl"

    def __init__(self, comm):
        from mpi4py import MPI

        cupy = require_nccl()
        from cupy.cuda import nccl

        self.cp, self.nccl_mod = cupy, nccl
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        local_rank = local.Get_rank()
        local.Free()
        self.device = cupy.cuda.Device(local_rank % cupy.cuda.runtime.getDeviceCount())
        self.device.use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = comm.bcast(uid, root=0)
        self.nccl = nccl.NcclCommunicator(self.size, uid, self.rank)
        # A blocking stream: it orders after work the caller queued on the legacy default
        # stream (filling the buffers), so no extra synchronisation is needed at the start.
        self.stream = cupy.cuda.Stream(non_blocking=False)
        self._started: list[_Group] = []
        self._ufuncs = {"sum": cupy.add, "prod": cupy.multiply, "max": cupy.maximum,
                        "min": cupy.minimum}

    # messages ------------------------------------------------------------------------------
    def send(self, buf, peer, tag):
        return (True, buf.data.ptr, buf.nbytes, peer)

    def recv(self, buf, peer, tag):
        return (False, buf.data.ptr, buf.nbytes, peer)

    def group(self, ops):
        return _Group(tuple(ops), self.cp.cuda.Event(block=False, disable_timing=True))

    def start(self, group) -> None:
        # NCCL matches a pair's messages in issue order (no tags); both sides issue a step's
        # transfers in schedule order.
        nccl, comm, s = self.nccl_mod, self.nccl, self.stream.ptr
        u8 = nccl.NCCL_UINT8
        nccl.groupStart()
        for is_send, ptr, nbytes, peer in group.ops:
            if is_send:
                comm.send(ptr, nbytes, u8, peer, s)
            else:
                comm.recv(ptr, nbytes, u8, peer, s)
        nccl.groupEnd()

    def wait(self, group, deadline) -> None:
        # Stream order already makes the next kernels wait; remember where the step ends so
        # that a stall can be traced to it.
        group.event.record(self.stream)
        self._started.append(group)

    def finish(self, deadline) -> None:
        """Wait for the run with a ``deadline``; without one, return at once (the run stays
        queued on the stream, like NCCL's own calls)."""
        started, self._started = self._started, []
        if deadline is None:
            return
        done = self.cp.cuda.Event(block=False, disable_timing=True)
        done.record(self.stream)
        polls = 0
        while not done.done:
            polls += 1
            if deadline is not None and polls % 64 == 0 and time.monotonic() > deadline:
                first = next((g for g in started if not g.event.done), None)
                self.nccl.abort()  # the communicator cannot be trusted after this
                if first is None:
                    raise TransportTimeout(None, [])
                raise TransportTimeout(first, list(range(len(first.ops))))
            if polls > 1000:
                time.sleep(1e-5)

    # local work ----------------------------------------------------------------------------
    def empty(self, n, dtype):
        return self.cp.empty(n, dtype=dtype)

    def ufunc(self, op):
        try:
            return self._ufuncs[str(op).lower()]
        except KeyError:
            raise ValueError(f"unknown reduction {op!r}; use one of "
                             f"{', '.join(self._ufuncs)}") from None

    def reduce(self, uf, dst, a, b) -> None:
        with self.stream:
            uf(a, b, out=dst)

    def copy(self, dst, src) -> None:
        with self.stream:
            dst[...] = src

    @staticmethod
    def address(arr) -> int:
        return arr.data.ptr


_transports: dict = {}


def transport_for(comm=None, timeout: float | None = None) -> NCCLTransport:
    """The NCCL transport of ``comm`` (default ``COMM_WORLD``), created collectively once."""
    from collectives.mpi_executor import DEFAULT_TIMEOUT, private_comm

    require_nccl()
    dup, _ = private_comm(comm, DEFAULT_TIMEOUT if timeout is None else timeout)
    key = dup.py2f()
    t = _transports.get(key)
    if t is None:
        t = _transports[key] = NCCLTransport(dup)
    return t


def prepare(schedule, sendbuf, recvbuf=None, op: str = "sum", comm=None, timeout=60.0,
            check: bool = True, abort: bool = True):
    """:func:`collectives.mpi_executor.prepare` on CuPy arrays with the NCCL transport."""
    cupy = require_nccl()
    from collectives.mpi_executor import prepare_with

    return prepare_with(schedule, sendbuf, recvbuf, op, comm, timeout, check, abort, xp=cupy,
                        transport_for=transport_for)


def run(schedule, sendbuf, recvbuf=None, op: str = "sum", comm=None, timeout=60.0,
        check: bool = True, abort: bool = True):
    """Run ``schedule`` once on CuPy buffers (see :mod:`collectives.mpi_executor` for the
    shapes); return the result array."""
    prep = prepare(schedule, sendbuf, recvbuf, op, comm, timeout, check, abort)
    try:
        return prep()
    finally:
        prep.free()


def native(transport: NCCLTransport, collective: str, sendbuf, recvbuf, op: str = "sum"):
    """``(callable, result)`` running NCCL's own collective on these CuPy buffers.

    ``recvbuf`` None means in place, as NCCL defines it: reduce-scatter's result and
    all-gather's input are the rank's block at its place in the n-element buffer.
    """
    nccl, comm, cp = transport.nccl_mod, transport.nccl, transport.cp
    types = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32,
             "float64": nccl.NCCL_FLOAT64, "int32": nccl.NCCL_INT32, "int64": nccl.NCCL_INT64}
    ops = {"sum": nccl.NCCL_SUM, "prod": nccl.NCCL_PROD, "max": nccl.NCCL_MAX,
           "min": nccl.NCCL_MIN}
    dt = types[cp.dtype(sendbuf.dtype).name]
    rop = ops[op]
    s = transport.stream.ptr
    p = transport.size
    out = sendbuf if recvbuf is None else recvbuf
    n = out.size if collective != "reducescatter" or recvbuf is None else sendbuf.size
    if collective == "allreduce":
        def fn():
            comm.allReduce(sendbuf.data.ptr, out.data.ptr, n, dt, rop, s)
        return fn, out
    if collective == "reducescatter":
        m = n // p
        # NCCL's in-place reduce-scatter leaves the rank's block at its place
        res = out[transport.rank * m:(transport.rank + 1) * m] if recvbuf is None else out

        def fn():
            comm.reduceScatter(sendbuf.data.ptr, res.data.ptr, m, dt, rop, s)
        return fn, res
    if collective == "allgather":
        m = out.size // p
        src = out[transport.rank * m:(transport.rank + 1) * m] if recvbuf is None else sendbuf

        def fn():
            comm.allGather(src.data.ptr, out.data.ptr, m, dt, s)
        return fn, out
    raise ValueError(f"native: no NCCL collective for {collective!r}")
