"""Run a Schedule on real processes with MPI (mpi4py).

>>> import numpy as np
>>> from collectives import build
>>> from collectives.mpi_executor import run
>>> run(build("allreduce", "ring", 1), np.arange(4.0))  # one rank: no mpiexec needed
array([0., 1., 2., 3.])

Shapes mirror :func:`collectives.numpy_executor.execute`; ``n`` is the full vector's length.

=============  ==============================  ====================================
collective     out of place: ``sendbuf``        out of place: ``recvbuf`` (result)
=============  ==============================  ====================================
allreduce      n elements                      n elements
reducescatter  n elements                      the rank's owned chunks, in chunk order
allgather      the rank's own block            n elements
reduce         n elements                      n (result on the root; scratch elsewhere)
broadcast      n (read on the root only)       n elements
=============  ==============================  ====================================

In place (``recvbuf`` None, ``recvbuf is sendbuf``, or ``sendbuf`` is ``MPI.IN_PLACE`` with the
buffer as ``recvbuf``), the one n-element buffer holds the input (for all-gather: the rank's own
chunks at their place) and is overwritten with the working state; the result is the whole
buffer, or for a reduce-scatter the view of the rank's owned chunks. :func:`run` returns the
result (a view of the caller's buffer where possible).

Every call first checks, with one small non-blocking all-gather, that all ranks agree on the
count, dtype, op and schedule, and raises :class:`MismatchError` on every rank if not, naming
each rank's values, before any data moves. A run that stalls (a receive nobody sends) ends after
``timeout`` seconds with a message naming the rank, the step and the peers waited on; by
default the message goes to stderr and the job is aborted with ``comm.Abort(1)`` (a stalled
peer cannot be woken), with ``abort=False`` a :class:`~collectives.plan.StallError` is raised
instead. Messages travel on a private duplicate of the communicator, cached on it.

:func:`prepare` does the checks and the binding once and returns a callable that runs the
collective again and again on the same buffers with nothing but the transfers and the local
arithmetic (like ``MPI_Allreduce_init``); :func:`run` keeps a few such bindings cached.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import OrderedDict

import numpy as np

from collectives.ir import COLLECTIVES, Schedule, ScheduleError
from collectives.numpy_executor import REDUCE_OPS
from collectives.plan import (
    MERGE_LIMIT,
    BoundPlan,
    StallError,
    bind,
    compile_plan,
    execute,
    schedule_digest,
)
from collectives.transport import MPITransport

__all__ = [
    "DEFAULT_TIMEOUT",
    "DTYPES",
    "MismatchError",
    "Prepared",
    "StallError",
    "prepare",
    "prepare_with",
    "private_comm",
    "run",
]

DEFAULT_TIMEOUT = 60.0
DTYPES = ("float16", "float32", "float64", "int32", "int64")
_OPS = tuple(REDUCE_OPS)
_CACHE_SIZE = 4


class MismatchError(ValueError):
    """The ranks disagree about a call (count, dtype, op, schedule) or one rejected it."""


# ------------------------------------------------------------------------------------------
# a private communicator per user communicator

_KEYVAL = None


def _wait(req, deadline: float | None, what: str, rank: int) -> None:
    """Poll one request until done; past ``deadline`` raise StallError."""
    if deadline is None:
        req.Wait()
        return
    polls = 0
    while not req.Test():
        polls += 1
        if polls % 64 == 0:
            os.sched_yield()
            if time.monotonic() > deadline:
                raise StallError(
                    f"rank {rank}: timed out in {what}, before any data moved: not every rank "
                    f"of the communicator made the same call")


def private_comm(comm=None, timeout: float | None = DEFAULT_TIMEOUT):
    """``(dup, transport)`` for ``comm`` (default ``COMM_WORLD``), created collectively on first
    use (with a non-blocking ``Idup``, so a missing rank times out) and cached as an attribute
    of ``comm``, freed with it."""
    global _KEYVAL
    from mpi4py import MPI

    if comm is None:
        comm = MPI.COMM_WORLD
    if _KEYVAL is None:
        def _delete(_comm, _keyval, value):
            if not MPI.Is_finalized():
                value[0].Free()

        _KEYVAL = MPI.Comm.Create_keyval(delete_fn=_delete)
    got = comm.Get_attr(_KEYVAL)
    if got is None:
        dup, req = comm.Idup()
        deadline = None if timeout is None else time.monotonic() + timeout
        _wait(req, deadline, "duplicating the communicator", comm.Get_rank())
        got = (dup, MPITransport(dup))
        comm.Set_attr(_KEYVAL, got)
    return got


# ------------------------------------------------------------------------------------------
# argument analysis and the agreement check

# error codes carried in the agreement record, with how every rank renders them
_ERRORS = {
    1: "its buffers must be one-dimensional contiguous numpy arrays",
    2: "its dtype is not one of " + ", ".join(DTYPES),
    3: "sendbuf and recvbuf have different dtypes",
    4: "its {what} has {got} elements but {want} were expected",
    5: "its op is not one of " + ", ".join(_OPS),
    6: "its schedule is for {want} ranks but the communicator has {got}",
    7: "its schedule cannot run here: {msg}",
    8: "its output buffer is read-only",
    9: "sendbuf and recvbuf overlap (pass the same array for in place)",
    10: "its collective is not one of " + ", ".join(COLLECTIVES),
}
_WHAT = ("sendbuf", "recvbuf")


class _Call:
    """One rank's view of a call, as a fixed-size int64 record that all ranks exchange."""

    FIELDS = 10

    def __init__(self, schedule, sendbuf, recvbuf, op, comm_size, rank, xp=np):
        self.xp = xp
        self.error = 0
        self.detail = ""
        self.what = self.got = self.want = 0
        self.plan = None
        self.inplace = recvbuf is None or recvbuf is sendbuf or _is_in_place(sendbuf)
        if _is_in_place(sendbuf):
            sendbuf = recvbuf
        self.sendbuf, self.recvbuf = sendbuf, (None if self.inplace else recvbuf)
        self.op = str(op).lower()
        self.dtype = None
        self.count = -1
        with contextlib.suppress(_Reject):
            self._analyse(schedule, comm_size, rank)
        self.digest = int(schedule_digest(schedule), 16) & ((1 << 62) - 1) \
            if isinstance(schedule, Schedule) else 0
        coll = getattr(schedule, "collective", None)
        self.record = np.array([
            self.count,
            DTYPES.index(self.dtype) if self.dtype in DTYPES else -1,
            _OPS.index(self.op) if self.op in _OPS else -1,
            COLLECTIVES.index(coll) if coll in COLLECTIVES else -1,
            getattr(schedule, "nranks", -1),
            self.digest,
            self.error,
            self.what,
            self.got,
            self.want,
        ], dtype=np.int64)

    def _fail(self, code, **kw):
        self.error = code
        self.what = kw.get("what", 0)
        self.got = kw.get("got", 0)
        self.want = kw.get("want", 0)
        self.detail = kw.get("msg", "")
        raise _Reject

    def _analyse(self, schedule, comm_size, rank):
        s, rbuf = self.sendbuf, self.recvbuf
        if not isinstance(schedule, Schedule) or schedule.collective not in COLLECTIVES:
            self._fail(10)
        for b in (s, rbuf):
            if b is None:
                continue
            if not isinstance(b, self.xp.ndarray) or b.ndim != 1 or not b.flags.c_contiguous:
                self._fail(1)
        if s is None:
            self._fail(1)
        self.dtype = s.dtype.name
        if self.dtype not in DTYPES:
            self._fail(2)
        if rbuf is not None and rbuf.dtype != s.dtype:
            self._fail(3)
        if self.op not in _OPS:
            self._fail(5)
        if schedule.nranks != comm_size:
            self._fail(6, want=schedule.nranks, got=comm_size)
        out = s if self.inplace else rbuf
        if not getattr(out.flags, "writeable", True):
            self._fail(8)
        overlap = getattr(self.xp, "may_share_memory", None)
        if rbuf is not None and overlap is not None and overlap(s, rbuf):
            self._fail(9)
        if self.inplace or schedule.collective != "allgather":
            self.count = s.shape[0]
        else:
            self.count = rbuf.shape[0]
        try:
            self.plan = compile_plan(schedule, rank, self.count, self.inplace)
        except (ScheduleError, ValueError) as e:
            self._fail(7, msg=str(e))
        plan = self.plan
        if not self.inplace:
            if s.shape[0] != plan.send_count:
                self._fail(4, what=0, got=s.shape[0], want=plan.send_count)
            want = plan.out_count if schedule.collective == "reducescatter" else self.count
            if rbuf.shape[0] != want:
                self._fail(4, what=1, got=rbuf.shape[0], want=want)


class _Reject(Exception):
    pass


def _is_in_place(buf) -> bool:
    if buf is None or hasattr(buf, "dtype"):
        return False
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi is not None and buf is mpi.IN_PLACE


def _ranges(ranks: list[int]) -> str:
    out, i = [], 0
    while i < len(ranks):
        j = i
        while j + 1 < len(ranks) and ranks[j + 1] == ranks[j] + 1:
            j += 1
        out.append(str(ranks[i]) if i == j else f"{ranks[i]}-{ranks[j]}")
        i = j + 1
    return ",".join(out)


def _describe_rank(rec: np.ndarray, with_schedule: bool) -> str:
    count, dt, op, coll, nr, digest = (int(x) for x in rec[:6])
    dtype = DTYPES[dt] if dt >= 0 else "unsupported dtype"
    text = f"count {count} x {dtype}, op {_OPS[op] if op >= 0 else '?'}"
    if with_schedule:
        text += (f", {COLLECTIVES[coll] if coll >= 0 else '?'} schedule for {nr} ranks "
                 f"#{digest & 0xFFFFFF:06x}")
    return text


def _render_error(rec: np.ndarray) -> str:
    code, what, got, want = (int(x) for x in rec[6:10])
    text = _ERRORS.get(code, f"error {code}")
    return text.format(what=_WHAT[what] if 0 <= what < 2 else "?", got=got, want=want,
                       msg="see that rank's own message")


def _agree(comm, call: _Call, timeout: float | None) -> None:
    """Exchange the records; raise MismatchError on every rank if anything differs."""
    size = comm.Get_size()
    rank = comm.Get_rank()
    if size == 1:
        table = call.record.reshape(1, -1)
    else:
        table = np.empty((size, _Call.FIELDS), dtype=np.int64)
        req = comm.Iallgather(call.record, table)
        deadline = None if timeout is None else time.monotonic() + timeout
        _wait(req, deadline, "the agreement check (count, dtype, op, schedule)", rank)
    errors = np.flatnonzero(table[:, 6])
    if errors.size:
        parts = []
        for r in errors.tolist():
            if r == rank:
                msg = _ERRORS[call.error].format(what=_WHAT[call.what], got=call.got,
                                                 want=call.want, msg=call.detail)
            else:
                msg = _render_error(table[r])
            parts.append(f"rank {r}: {msg}")
        raise MismatchError("collectives.mpi_executor: rejected before any data moved: "
                            + "; ".join(parts))
    keys = [tuple(row[:6].tolist()) for row in table]
    if len(set(keys)) > 1:
        with_schedule = len({k[3:6] for k in keys}) > 1
        groups: dict[str, list[int]] = {}
        for r, row in enumerate(table):
            groups.setdefault(_describe_rank(row, with_schedule), []).append(r)
        what = "count/dtype/op" + ("/schedule" if with_schedule else "")
        parts = [f"rank{'s' if len(rs) > 1 else ''} {_ranges(rs)}: {d}"
                 for d, rs in groups.items()]
        raise MismatchError(f"collectives.mpi_executor: the ranks disagree on {what}, so "
                            f"nothing was sent: " + "; ".join(parts))


# ------------------------------------------------------------------------------------------
# prepared collectives


def _abort(comm, e: Exception):
    """Print the stall and end the whole job: a peer blocked in MPI cannot be woken."""
    sys.stderr.write(f"collectives: {e}; aborting\n")
    sys.stderr.flush()
    time.sleep(0.5)  # let the launcher forward the message before it tears the job down
    try:
        comm.Abort(1)
    finally:
        os._exit(1)  # MPI_Abort may return (MPICH does not always exit at once)


class Prepared:
    """A collective bound to its buffers, run by calling it (like ``MPI_Allreduce_init``).

    ``result`` is the array the result lands in (a view of the caller's buffer where
    possible). Call :meth:`free` to release the persistent requests early.
    """

    def __init__(self, bound: BoundPlan, comm, call: _Call, timeout, abort: bool):
        self.schedule = None
        self.bound = bound
        self.comm = comm
        self.call = call
        self.timeout = timeout
        self.abort = abort

    @property
    def plan(self):
        return self.bound.plan

    @property
    def result(self):
        return self.bound.result

    def __call__(self):
        try:
            return execute(self.bound, self.timeout)
        except StallError as e:
            self._stalled(e)

    def _stalled(self, e: StallError):
        if self.abort:
            _abort(self.comm, e)
        self.free()
        raise e

    def free(self) -> None:
        self.bound.free()


def prepare(schedule: Schedule, sendbuf, recvbuf=None, op: str = "sum", comm=None,
            timeout: float | None = DEFAULT_TIMEOUT, check: bool = True,
            abort: bool = True, *, merge_limit: int = MERGE_LIMIT) -> Prepared:
    """Check the call (see the module docstring), compile and bind it; return a callable.

    ``check=False`` skips the agreement check (only for callers that guarantee agreement, or
    to exercise the stall detector); local argument errors still raise. ``merge_limit``:
    elements up to which independent small steps start together
    (:func:`collectives.plan.step_groups`; 0: one step at a time, as a micro-benchmark of
    one transfer in flight needs).
    """
    return prepare_with(schedule, sendbuf, recvbuf, op, comm, timeout, check, abort,
                        merge_limit=merge_limit)


def prepare_with(schedule, sendbuf, recvbuf, op, comm, timeout, check, abort, *, xp=np,
                 transport_for=None, merge_limit: int = MERGE_LIMIT) -> Prepared:
    """:func:`prepare` for any transport: ``xp`` is the array module of the buffers (numpy,
    cupy) and ``transport_for(comm, timeout)`` gives the transport (default: MPI's)."""
    from mpi4py import MPI

    user = MPI.COMM_WORLD if comm is None else comm
    call = _Call(schedule, sendbuf, recvbuf, op, user.Get_size(), user.Get_rank(), xp)
    try:
        if check:
            _agree(user, call, timeout)
        elif call.error:
            raise MismatchError(
                f"collectives.mpi_executor: rank {user.Get_rank()}: "
                + _ERRORS[call.error].format(what=_WHAT[call.what], got=call.got,
                                             want=call.want, msg=call.detail))
        if transport_for is None:
            _, transport = private_comm(user, timeout)
        else:
            transport = transport_for(user, timeout)
    except StallError as e:
        if abort:
            _abort(user, e)
        raise
    plan = call.plan
    if call.inplace:
        bound = bind(plan, transport, call.op, call.sendbuf.dtype, work=call.sendbuf,
                     merge_limit=merge_limit)
    elif plan.collective == "reducescatter":
        bound = bind(plan, transport, call.op, call.sendbuf.dtype, send=call.sendbuf,
                     out=call.recvbuf, merge_limit=merge_limit)
    else:
        bound = bind(plan, transport, call.op, call.sendbuf.dtype, work=call.recvbuf,
                     send=call.sendbuf, merge_limit=merge_limit)
    return Prepared(bound, user, call, timeout, abort)


_prepared: OrderedDict = OrderedDict()


def _buffer_key(buf):
    if isinstance(buf, np.ndarray):
        return (buf.__array_interface__["data"][0], buf.shape[0] if buf.ndim else -1,
                buf.dtype.str, buf.flags.writeable)
    return (id(buf),)


def run(schedule: Schedule, sendbuf, recvbuf=None, op: str = "sum", comm=None,
        timeout: float | None = DEFAULT_TIMEOUT, check: bool = True, abort: bool = True):
    """Run ``schedule`` on this rank's buffers (see the module docstring); return the result.

    Collective over ``comm`` (default ``COMM_WORLD``; a single process needs no mpiexec).
    Supported dtypes: float16, float32, float64, int32, int64; ops: sum, prod, max, min.
    """
    from mpi4py import MPI

    user = MPI.COMM_WORLD if comm is None else comm
    # keyed on the schedule's identity (hashing a large schedule costs); the entry keeps the
    # schedule alive, so its id cannot be reused while cached
    key = (id(schedule), user.py2f(), str(op).lower(), _buffer_key(sendbuf),
           None if recvbuf is None else _buffer_key(recvbuf), recvbuf is sendbuf)
    prep = _prepared.get(key)
    if prep is None or prep.comm != user or prep.schedule is not schedule:
        prep = prepare(schedule, sendbuf, recvbuf, op, user, timeout, check, abort)
        prep.schedule = schedule
        _prepared[key] = prep
        while len(_prepared) > _CACHE_SIZE:
            _, old = _prepared.popitem(last=False)
            old.free()
    else:
        _prepared.move_to_end(key)
        prep.timeout, prep.abort = timeout, abort
        if check:
            try:
                _agree(user, prep.call, timeout)
            except StallError as e:
                prep._stalled(e)
    return prep()
