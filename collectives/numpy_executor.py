"""The numpy reference executor: runs a Schedule in-process, one buffer per rank."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from collectives.ir import Condition, Schedule, chunk_bounds

__all__ = ["REDUCE_OPS", "execute", "reduce_ufunc", "run_slices"]

REDUCE_OPS = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}


def reduce_ufunc(op: str) -> np.ufunc:
    """The numpy ufunc for a reduction name (sum, prod, max, min)."""
    try:
        return REDUCE_OPS[str(op).lower()]
    except KeyError:
        raise ValueError(f"unknown reduction {op!r}; use one of {', '.join(REDUCE_OPS)}") from None


def run_slices(bounds: np.ndarray, start: int, length: int) -> list[slice]:
    """Element slices of the chunk run ``(start, length)`` (two when it wraps)."""
    C = bounds.shape[0] - 1
    end = start + length
    if end <= C:
        return [slice(int(bounds[start]), int(bounds[end]))]
    return [slice(int(bounds[start]), int(bounds[C])), slice(0, int(bounds[end - C]))]


def _owned(schedule: Schedule) -> list[list[int]]:
    owned: list[list[int]] = [[] for _ in range(schedule.nranks)]
    for c, r in enumerate(schedule.owner):
        owned[r].append(c)
    return owned


def _block(bounds: np.ndarray, chunks: list[int]) -> np.ndarray:
    """Element indices of a rank's owned chunks, in chunk order."""
    if not chunks:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(bounds[c], bounds[c + 1]) for c in chunks])


def execute(schedule: Schedule, inputs: Sequence[np.ndarray | None], op: str = "sum",
            inplace: bool = False) -> list[np.ndarray | None]:
    """Run ``schedule`` on one numpy buffer per rank and return each rank's result.

    ``inputs[r]`` is rank r's vector of n elements, except for an out-of-place all-gather where
    it is rank r's block (its owned chunks, concatenated) and for a broadcast where only the
    root's matters (others may be None). Results: all-reduce, all-gather and broadcast give every
    rank the full vector; reduce-scatter gives rank r its owned chunks; reduce gives the root the
    vector and None elsewhere. Out of place, ``inputs`` are never modified; in place, they are
    the working buffers and hold the results.
    """
    ufunc = reduce_ufunc(op)
    p, C = schedule.nranks, schedule.nchunks
    if len(inputs) != p:
        raise ValueError(f"execute: the schedule has {p} ranks but {len(inputs)} inputs were given")
    owned = _owned(schedule) if schedule.owner else []
    gather_in = schedule.precondition is Condition.OWNED and schedule.collective == "allgather"
    root = schedule.owner[0] if schedule.collective in ("reduce", "broadcast") else None
    arrays = [None if x is None else np.asarray(x) for x in inputs]
    present = [a for a in arrays if a is not None]
    if not present:
        raise ValueError("execute: no input arrays given")
    dtype = present[0].dtype
    for r, a in enumerate(arrays):
        if a is None:
            if schedule.collective != "broadcast" or r == root:
                raise ValueError(f"execute: rank {r} has no input (only broadcast non-roots may)")
            continue
        if a.ndim != 1:
            raise ValueError(f"execute: rank {r}'s input must be one-dimensional, got {a.shape}")
        if a.dtype != dtype:
            raise ValueError(
                f"execute: rank {r}'s input is {a.dtype} but rank 0's is {dtype}; all ranks "
                f"must use one dtype"
            )
        if inplace and not (a.flags.writeable and isinstance(inputs[r], np.ndarray)):
            raise ValueError(f"execute: in-place needs writable numpy arrays (rank {r})")
    if gather_in and not inplace:
        n = sum(a.shape[0] for a in arrays)
    else:
        n = (arrays[root] if root is not None else present[0]).shape[0]
    bounds = chunk_bounds(n, C)
    if gather_in and not inplace:
        for r, a in enumerate(arrays):
            want = int(sum(bounds[c + 1] - bounds[c] for c in owned[r]))
            if a.shape[0] != want:
                raise ValueError(
                    f"execute: rank {r}'s all-gather block has {a.shape[0]} elements but the "
                    f"chunk layout of a {n}-element result gives it {want}; use equal blocks "
                    f"(n divisible by {C})"
                )
    else:
        for r, a in enumerate(arrays):
            if a is not None and a.shape[0] != n:
                raise ValueError(
                    f"execute: rank {r}'s input has {a.shape[0]} elements, rank "
                    f"{root if root is not None else 0}'s has {n}; counts must match"
                )

    # Working buffers.
    if inplace:
        bufs = []
        for r, a in enumerate(arrays):
            bufs.append(inputs[r] if a is not None else np.zeros(n, dtype=dtype))
    else:
        bufs = []
        for r, a in enumerate(arrays):
            buf = np.zeros(n, dtype=dtype)
            if a is not None:
                if gather_in:
                    buf[_block(bounds, owned[r])] = a
                else:
                    buf[:] = a
            bufs.append(buf)

    for step in schedule.steps:
        starts = step.starts(C)
        pending = []
        for i in range(len(step)):
            src, dst = int(step.src[i]), int(step.dst[i])
            for j in range(int(step.run_ptr[i]), int(step.run_ptr[i + 1])):
                for sl in run_slices(bounds, int(starts[j]), int(step.run_len[j])):
                    # Copy now: every source is read as it was when the step began.
                    pending.append((dst, sl, bufs[src][sl].copy(), bool(step.reduce[i])))
        for dst, sl, data, red in pending:
            if red:
                ufunc(bufs[dst][sl], data, out=bufs[dst][sl])
            else:
                bufs[dst][sl] = data

    if schedule.collective == "reducescatter":
        out = []
        for r in range(p):
            idx = _block(bounds, owned[r])
            contiguous = idx.size and idx[-1] - idx[0] + 1 == idx.size
            if inplace and contiguous:
                out.append(bufs[r][idx[0] : idx[-1] + 1])
            else:
                out.append(bufs[r][idx])
        return out
    if schedule.collective == "reduce":
        return [bufs[r] if r == root else None for r in range(p)]
    return bufs
