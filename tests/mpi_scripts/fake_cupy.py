"""A CPU stand-in for CuPy + NCCL, to exercise the NCCL executor's code where no GPU is.

:func:`install` writes a package named ``cupy`` into a directory; put that directory first on
``PYTHONPATH`` of an ``mpiexec`` job and ``collectives.nccl_executor`` runs on it: arrays are
numpy arrays whose ``.data.ptr`` is their address, streams and events are no-ops (everything
is synchronous), and the NCCL communicator does its point-to-point groups and collectives with
MPI on raw memory. It checks the plumbing (groups, events, pointers, byte counts, in-place
conventions, the bench backend), not GPU behaviour. This module only holds the source as
text, so importing it (pytest's doctest collection does) installs nothing.
"""

from __future__ import annotations

from pathlib import Path

SOURCE = r'''
"""Fake CuPy for tests (see tests/mpi_scripts/fake_cupy.py). Not a GPU."""
import ctypes
import sys
import time
import types

import numpy as np

FAKE = True
dtype = np.dtype
float16, float32, float64, int32, int64 = (np.float16, np.float32, np.float64, np.int32,
                                           np.int64)
add, multiply, maximum, minimum = np.add, np.multiply, np.maximum, np.minimum
may_share_memory = np.may_share_memory


class _Ptr:
    def __init__(self, ptr):
        self.ptr = ptr


class ndarray(np.ndarray):
    @property
    def data(self):
        return _Ptr(self.__array_interface__["data"][0])


def _wrap(a):
    return np.ascontiguousarray(a).view(ndarray)


def empty(n, dtype=np.float64):
    return np.empty(n, dtype).view(ndarray)


def full(n, value, dtype=np.float64):
    return np.full(n, value, dtype).view(ndarray)


def asarray(a):
    return _wrap(np.array(a))


def asnumpy(a):
    return np.array(a).view(np.ndarray)


def copyto(dst, src):
    np.copyto(dst, src)


# cupy.cuda -------------------------------------------------------------------------------
cuda = types.ModuleType("cupy.cuda")
runtime = types.ModuleType("cupy.cuda.runtime")
runtime.getDeviceCount = lambda: 1
cuda.runtime = runtime


class Stream:
    def __init__(self, non_blocking=False):
        self.ptr = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self):
        pass


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.t = None

    def record(self, stream=None):
        self.t = time.perf_counter()

    @property
    def done(self):
        return True

    def synchronize(self):
        pass


class Device:
    def __init__(self, i=0):
        self.id = i

    def use(self):
        pass

    def synchronize(self):
        pass


cuda.Stream, cuda.Event, cuda.Device = Stream, Event, Device
cuda.get_elapsed_time = lambda a, b: (b.t - a.t) * 1e3

# cupy.cuda.nccl over MPI -----------------------------------------------------------------
nccl = types.ModuleType("cupy.cuda.nccl")
(nccl.NCCL_INT8, nccl.NCCL_UINT8, nccl.NCCL_INT32, nccl.NCCL_UINT32, nccl.NCCL_INT64,
 nccl.NCCL_UINT64, nccl.NCCL_FLOAT16, nccl.NCCL_FLOAT32, nccl.NCCL_FLOAT64) = range(9)
_TYPES = {0: np.int8, 1: np.uint8, 2: np.int32, 3: np.uint32, 4: np.int64, 5: np.uint64,
          6: np.float16, 7: np.float32, 8: np.float64}
nccl.NCCL_SUM, nccl.NCCL_PROD, nccl.NCCL_MAX, nccl.NCCL_MIN = range(4)
_group = []
_depth = [0]


def _view(ptr, count, t):
    dt = np.dtype(_TYPES[t])
    if count == 0:
        return np.zeros(0, dt)
    raw = (ctypes.c_char * (count * dt.itemsize)).from_address(ptr)
    return np.frombuffer(raw, dtype=dt)


def get_unique_id():
    return tuple(range(8))


def groupStart():
    _depth[0] += 1


def groupEnd():
    from mpi4py import MPI

    _depth[0] -= 1
    if _depth[0]:
        return
    ops, _group[:] = list(_group), []
    reqs = []
    for kind, comm, buf, peer in ops:
        if kind == "send":
            reqs.append(comm.mpi.Isend([buf, MPI.BYTE], peer, 5))
        else:
            reqs.append(comm.mpi.Irecv([buf, MPI.BYTE], peer, 5))
    MPI.Request.Waitall(reqs)


class NcclCommunicator:
    def __init__(self, n, uid, rank):
        from mpi4py import MPI

        self.mpi = MPI.COMM_WORLD.Dup()
        assert self.mpi.Get_size() == n and self.mpi.Get_rank() == rank
        self._ops = {0: MPI.SUM, 1: MPI.PROD, 2: MPI.MAX, 3: MPI.MIN}

    def send(self, ptr, count, t, peer, stream):
        assert _depth[0] > 0, "fake NCCL: send outside a group"
        _group.append(("send", self, _view(ptr, count, t).view(np.uint8), peer))

    def recv(self, ptr, count, t, peer, stream):
        assert _depth[0] > 0, "fake NCCL: recv outside a group"
        _group.append(("recv", self, _view(ptr, count, t).view(np.uint8), peer))

    def allReduce(self, sptr, rptr, count, t, op, stream):
        from mpi4py import MPI

        r = _view(rptr, count, t)
        if sptr == rptr:
            self.mpi.Allreduce(MPI.IN_PLACE, r, self._ops[op])
        else:
            self.mpi.Allreduce(_view(sptr, count, t), r, self._ops[op])

    def reduceScatter(self, sptr, rptr, count, t, op, stream):
        p, rank = self.mpi.Get_size(), self.mpi.Get_rank()
        s = _view(sptr, count * p, t)
        out = np.empty(count, s.dtype)
        self.mpi.Reduce_scatter_block(s, out, self._ops[op])
        _view(rptr, count, t)[:] = out

    def allGather(self, sptr, rptr, count, t, stream):
        from mpi4py import MPI

        p, rank = self.mpi.Get_size(), self.mpi.Get_rank()
        r = _view(rptr, count * p, t)
        itemsize = r.dtype.itemsize
        if sptr == rptr + rank * count * itemsize:
            self.mpi.Allgather(MPI.IN_PLACE, r)
        else:
            self.mpi.Allgather(_view(sptr, count, t), r)

    def abort(self):
        pass


nccl.get_unique_id, nccl.groupStart, nccl.groupEnd = get_unique_id, groupStart, groupEnd
nccl.NcclCommunicator = NcclCommunicator
cuda.nccl = nccl
sys.modules["cupy.cuda"] = cuda
sys.modules["cupy.cuda.runtime"] = runtime
sys.modules["cupy.cuda.nccl"] = nccl
'''


def install(directory: str | Path) -> Path:
    """Write the fake ``cupy`` package under ``directory``; return ``directory``."""
    pkg = Path(directory) / "cupy"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(SOURCE)
    return Path(directory)
