"""``mpiexec -n N python -m bench calibrate --out model.json``: a model of this machine.

Micro-benchmarks kept apart from the collectives they will predict, each run through the
project's own MPI executor (:func:`collectives.mpi_executor.prepare`), so that every figure
includes the executor's per-step software cost, and on all N ranks of the job (calibrate with
the rank count you benchmark with: 4 ranks on 2 cores is a different machine from 2 on 2):

``lone``
    one message relayed round all N ranks, one transfer per step (rank i to i+1, the last
    back to 0; on 2 ranks the ping-pong): one transfer in flight on the host, between
    partners that change every step as a tree's do, the other ranks idling the way a
    collective's idle ranks do (polling, yielding their core); time per message, sizes
    ``-b`` .. ``-e`` times ``-f``. Each rank sends its own chunk (clean data); the *written*
    relay forwards one chunk round the ranks, each sending what it has just received (out
    of place, as ``bench`` runs the collectives by default: the root's first transfer sends
    its input, and the clean relay's time is taken off for it; ``--inplace 1``: in place).
``crowd``
    every rank at once, each sending a message to the next rank and receiving one from the
    previous in one step (a ring shift: ``N`` = N ranks transfers in flight; on 2 ranks the
    exchange 0<->1): the ranks share the host's memory bandwidth and cores as in a ring,
    recursive-doubling or Rabenseifner step, and with more ranks than cores no lucky pairing
    of co-scheduled partners can make it look faster than a collective's steps are; time per
    step. The *written* crowd forwards, in a second step, the chunk each rank just received
    (out of place: the first step sends the input, and the clean shift's time is taken off).
    Data a rank wrote itself is read by its peer out of the writer's cache: a collective's
    later steps send such data, its first steps the input (``written_size_factors``,
    ``written_crowd_factors``; :meth:`collectives.ir.Schedule.sent_written` says which). The
    *reduced* crowd does the same with a first step whose receivers reduce the chunk into
    their own, so that the second forwards data a reduction wrote (a ring's reduce-scatter
    and recursive doubling send such data; less that reducing first step, timed alone):
    ``reduced_crowd_factors`` (:meth:`collectives.ir.Schedule.sent_written_kinds`).
``multi``
    the crowd's shift with ``k`` = 1, 2, 4 messages per step to the next rank, at the smallest
    size: the per-message overhead ``o`` of a rank posting several messages in one step
    (LogGP's o; our ranks post all of a step's messages at once, so the gap g is o here).
``reducing``
    the crowd's shift in which every rank reduces the message it receives into its own chunk,
    at the smallest size: less the shift and the reduction, what a reduction costs inside a
    step (the rank waited for its message and must run again before its next step can start;
    with more ranks than cores that is a turn of the scheduler), ``reduce_wait``; and the same
    shift with one rank reducing, ``reduce_wait_one`` (a tree's steps reduce on fewer ranks).
``reduce``
    ``np.add(a, b, out=c)`` (float32, three distinct arrays, as the executor reduces) on every
    rank at once, over the same sizes: call overhead and speed per size (caches matter); and
    on rank 0 alone, the others idling as a collective's idle ranks do (``reduce_one``): out
    of cache the ranks of a host share its memory bandwidth, and a tree's steps reduce on
    fewer ranks than a ring's (2 ranks on the AMD VM: the 8 MiB reduction alone took 0.45-0.8x
    its time on both ranks at once; in cache 1.0x).

Each figure is the fastest of ``--windows`` timed windows (the machine's noise only adds time),
spread over ``--passes`` passes through all sizes (a slow spell of a shared machine spoils one
pass, not every window of a size); a window's time is the largest over the ranks that took
part in it, as a collective's time is (each rank's own fastest window, taken apart, can
come from different windows: with 4 ranks on 2 cores, windows in which other ranks were off
their core). A crowd
figure below the lone one at its size is raised to it: the shift's own buffers stay in cache
(MPICH and Open MPI ran the 2 MiB shift at 43 GB/s against 13 GB/s alone), which no
collective's steps see. ``--buffers`` k cycles each message benchmark through k distinct
buffers (default 1: on this machine 3 buffers slowed the 2-rank ping-pong above 128 KiB
beyond what binomial's transfers cost).
The model (:func:`fit_model`): ``alpha`` is the lone time at the smallest size and ``beta``
the lone slope between the two largest sizes (where that is flat, between the smallest and
the largest);
``size_factors`` and ``crowd_factors`` are SimGrid-style piecewise factors on alpha and beta,
one row per measured size, each row's line passing through that size's and the next size's
measurement (so the model reproduces every calibration point and interpolates linearly between
them); ``crowd_transfers`` is N; ``message_overhead`` is o; ``reduce_overhead``, ``gamma`` and
``reduce_factors`` the same construction for the reduction. :func:`sim.models.calibrated_cost`
says how a prediction uses them. A measurement that is not a positive finite time, or a base
parameter that comes out non-positive, is an error naming the measurement.

The model file (JSON, written whole: a temporary file, then a rename) holds ``alpha``,
``beta``, ``gamma`` and the calibration fields at the top level (what
:func:`sim.models.load_model_file` reads), the machine (``host``, ``cpus``), ``library``,
``ranks``, ``date``, every measurement and ``notes``; docs/calibration.md lists every field.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from bench._common import (
    BenchError,
    Parser,
    UsageError,
    environment,
    header_lines,
    parse_size,
)
from collectives.memory import host_empty
from collectives.plan import MERGE_LIMIT
from sim.models import model_document

__all__ = ["CalibrationError", "Measurements", "calibrate", "calibration_sizes",
           "clean_relay_schedule", "exchange_schedule", "fit_line", "fit_model",
           "forward_schedule", "measure_and_fit", "model_mismatches", "multi_exchange_schedule",
           "pingpong_schedule", "reduced_step_times", "reducing_relay_schedule",
           "relay_reduced_times", "relay_schedule", "relay_transfer_times",
           "shift_schedule", "write_model"]

FORMAT = "collectives.model/3"
MULTI = (1, 2, 4)
#: Rows a factor segment whose time grows faster than its bytes is split into (_segments).
SUBROWS = 4
#: Distinct buffers a message benchmark cycles through (``--buffers``).
BUFFERS = 1
#: Seconds of timed windows per size and measurement (``--time``), and how many (``--windows``).
SECONDS, WINDOWS = 0.2, 40
#: Passes through all sizes that a size's windows are spread over (``--passes``).
PASSES = 3


class CalibrationError(BenchError):
    """The measurements cannot give a model (a non-finite or non-positive figure)."""


def fit_line(x: np.ndarray, y: np.ndarray, relative: bool = True) -> tuple[float, float, dict]:
    """Least-squares ``y = a + b x``; with ``relative``, residuals are weighted by ``1/y``.

    >>> a, b, info = fit_line(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.0]))
    >>> round(a, 9), round(b, 9), info["max_rel_residual"] < 1e-12
    (1.0, 2.0, True)
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    w = 1.0 / y if relative else np.ones_like(y)
    A = np.stack([np.ones_like(x), x], axis=1) * w[:, None]
    (a, b), *_ = np.linalg.lstsq(A, y * w, rcond=None)
    pred = a + b * x
    rel = (y - pred) / y
    return float(a), float(b), {
        "rel_residuals": rel.tolist(),
        "max_rel_residual": float(np.max(np.abs(rel))),
        "rms_rel_residual": float(np.sqrt(np.mean(rel**2))),
    }


def pingpong_schedule():
    """The 2-rank ping-pong as a schedule: a broadcast from rank 0 whose second step sends the
    chunk back (verified: the copy back leaves every rank holding it).

    >>> from collectives.verify import verify
    >>> print(verify(pingpong_schedule()).describe())
    Schedule broadcast/pingpong: 2 ranks, 1 chunks, 2 steps, 2 transfers; busiest rank sends 1/1 of the vector in 1 messages
      step 0: 1 <- 0 chunks [0]
      step 1: 0 <- 1 chunks [0]
    """  # noqa: E501
    from collectives.ir import Schedule, make_step

    steps = (make_step([0], [1], False, run_start=[0]),
             make_step([1], [0], False, run_start=[0]))
    return Schedule("broadcast", "pingpong", 2, 1, steps, owner=(0,))


def relay_schedule(nranks: int):
    """One chunk relayed round all ``nranks`` ranks, one transfer per step (rank i to rank
    i+1, the last back to rank 0): one transfer in flight at a time, between partners that
    change every step as a binomial's or a tree's do; on 2 ranks the ping-pong. ``bench
    calibrate`` runs it out of place (but with ``--inplace 1``): the root sends its input,
    every other rank forwards what it received (data it wrote), and the root receives into
    its result buffer (:func:`relay_transfer_times`).

    >>> from collectives.verify import verify
    >>> s = relay_schedule(3)
    >>> [(st.src.tolist(), st.dst.tolist()) for st in verify(s).steps]
    [([0], [1]), ([1], [2]), ([2], [0])]
    >>> relay_schedule(2).steps == pingpong_schedule().steps
    True
    """
    from collectives.ir import Schedule, make_step

    steps = tuple(make_step([r], [(r + 1) % nranks], False, run_start=[0])
                  for r in range(nranks))
    return Schedule("broadcast", f"relay-{nranks}", nranks, 1, steps, owner=(0,))


def clean_relay_schedule(nranks: int):
    """The relay of :func:`relay_schedule` with clean data: in step ``r`` rank ``r`` sends its
    own chunk ``r`` to rank ``r + 1``, which never sends it on, so that no rank sends data it
    wrote itself (run in place, a relay's forwarded chunk was written by the receive before
    it; this one's never is): one transfer in flight at a time, as the relay.

    >>> from collectives.verify import verify
    >>> s = clean_relay_schedule(3)
    >>> [(st.src.tolist(), st.dst.tolist(), st.run_start.tolist()) for st in s.steps]
    [([0], [1], [0]), ([1], [2], [1]), ([2], [0], [2])]
    >>> [w.tolist() for w in s.sent_written()]
    [[0.0], [0.0], [0.0]]
    """
    from collectives.ir import Schedule, make_step

    p = nranks
    steps = tuple(make_step([r], [(r + 1) % p], False, run_start=[r]) for r in range(p))
    return Schedule("reduce", f"relay-clean-{p}", p, p, steps,
                    owner=tuple((c + 1) % p for c in range(p)))


def reducing_relay_schedule(nranks: int):
    """The relay of :func:`relay_schedule` in which each receiver but the root reduces the
    chunk into its own and sends the sum on (a chain reduce, the last sum copied back to the
    root): after the root's first transfer, every transfer sends data a reduction wrote, one
    transfer in flight at a time, as a tree's or a binomial's lone transfers send it.
    ``bench calibrate`` runs it out of place (but with ``--inplace 1``), where the root sends
    its input (:func:`relay_reduced_times`).

    >>> s = reducing_relay_schedule(3)
    >>> [(st.src.tolist(), st.dst.tolist(), st.reduce.tolist()) for st in s.steps]
    [([0], [1], [True]), ([1], [2], [True]), ([2], [0], [False])]
    >>> [r.tolist() for _, r in s.sent_written_kinds()]
    [[0.0], [1.0], [1.0]]
    """
    from collectives.ir import Schedule, make_step

    p = nranks
    steps = tuple(make_step([r], [(r + 1) % p], r < p - 1, run_start=[0]) for r in range(p))
    return Schedule("reduce", f"reducing-relay-{p}", p, 1, steps, owner=(0,))


def forward_schedule(nranks: int, reduce: bool = False):
    """Two crowd shifts: every rank sends its own chunk to the next rank, then forwards the
    chunk it just received to the next rank (a ring's later steps, which send what the rank
    received or reduced): the second step sends data its sender wrote; with ``reduce`` the
    first step's receivers reduce the chunk into their own (a ring's reduce-scatter), so that
    the second sends data a reduction wrote. ``bench calibrate`` runs it out of place (but
    with ``--inplace 1``), as ``bench`` runs the collectives by default: the first step sends
    the input and every receive lands in the result buffer.
    Run in place on 2 ranks, each rank would receive its own chunk back into the place its
    peer had just read it from, and on a 2-vCPU AMD EPYC VM that step cost 0.4-1.5x what a
    2-rank ring's forwarding step costs from 256 KiB to 2 MiB (over in some jobs, under in
    others), while in a job of the slow kind the out-of-place step less the clean shift
    matched the ring to 6% from 64 KiB to 4 MiB (:func:`forward_step_times`;
    docs/calibration.md).

    >>> s = forward_schedule(3)
    >>> [w.tolist() for w in s.sent_written()]
    [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    >>> [r.tolist() for _, r in forward_schedule(3, reduce=True).sent_written_kinds()]
    [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    """
    from collectives.ir import Schedule, make_step

    p = nranks
    nxt = [(r + 1) % p for r in range(p)]
    first = make_step(list(range(p)), nxt, reduce, run_start=list(range(p)))
    second = make_step(list(range(p)), nxt, False, run_start=[(r - 1) % p for r in range(p)])
    return Schedule("reduce", f"{'reducing-' if reduce else ''}forward-{p}", p, p,
                    (first, second), owner=tuple((c + 2) % p for c in range(p)))


def exchange_schedule():
    """The 2-rank exchange as a schedule: an all-gather in one step, each rank sending its
    chunk to the other at once (a step of a ring or recursive doubling, seen from one pair).

    >>> from collectives.verify import verify
    >>> print(verify(exchange_schedule()).describe())
    Schedule allgather/exchange: 2 ranks, 2 chunks, 1 steps, 2 transfers; busiest rank sends 1/2 of the vector in 1 messages
      step 0: 1 <- 0 chunks [0]
      step 0: 0 <- 1 chunks [1]
    """  # noqa: E501
    from collectives.ir import Schedule, make_step

    return Schedule("allgather", "exchange", 2, 2,
                    (make_step([0, 1], [1, 0], False, run_start=[0, 1]),), owner=(0, 1))


def multi_exchange_schedule(k: int):
    """The 2-rank exchange with ``k`` messages each way in one step (an all-gather of ``2k``
    chunks, one transfer per chunk).

    >>> from collectives.verify import verify
    >>> verify(multi_exchange_schedule(2)).ntransfers
    4
    """
    from collectives.ir import Schedule, make_step

    step = make_step([0] * k + [1] * k, [1] * k + [0] * k, False, run_start=list(range(2 * k)))
    return Schedule("allgather", f"exchange-x{k}", 2, 2 * k, (step,),
                    owner=(0,) * k + (1,) * k)


def shift_schedule(nranks: int, k: int = 1, reduce: bool = False,
                   reducers: int | None = None):
    """One step in which every rank sends ``k`` messages (one chunk each) to the next rank
    and receives ``k`` from the previous: a measurement pattern, written as a ``reduce``-type
    schedule whose copies (``reduce``: reductions; with ``reducers``, only ranks ``0 ..
    reducers-1`` reduce, the others copy) land on the chunks the receiver owns (so that it
    compiles for the executor; it is no collective).

    >>> s = shift_schedule(4, 2)
    >>> s.nchunks, len(s.steps[0]), s.steps[0].src.tolist(), s.steps[0].dst.tolist()
    (8, 8, [0, 0, 1, 1, 2, 2, 3, 3], [1, 1, 2, 2, 3, 3, 0, 0])
    >>> shift_schedule(4, reduce=True, reducers=1).steps[0].reduce.tolist()
    [False, False, False, True]
    """
    from collectives.ir import Schedule, make_step

    p = nranks
    src = [r for r in range(p) for _ in range(k)]
    dst = [(r + 1) % p for r in src]
    red = reduce if reducers is None else [reduce and d < reducers for d in dst]
    step = make_step(src, dst, red, run_start=list(range(p * k)))
    name = (f"{'reducing-' if reduce else ''}shift-x{k}"
            + (f"-{reducers}-reducing" if reduce and reducers is not None else ""))
    return Schedule("reduce", name, p, p * k, (step,), owner=tuple(dst))


# ------------------------------------------------------------------------------------------
# timing


def _idle(comm, meanwhile=os.sched_yield) -> None:
    """Wait for every rank as a collective's idle rank waits: polling, yielding the core (or
    calling ``meanwhile`` between polls: a rank busy with other work)."""
    req = comm.Ibarrier()
    while not req.Test():
        meanwhile()


def _window(fn, iters: int) -> float:
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters


def _timed(comm, fn, per_call: int, seconds: float, windows: int,
           meanwhile=os.sched_yield) -> float:
    """Time per message of ``fn`` (None: this rank idles, or calls ``meanwhile`` until the
    window is over), run by its ranks at once: the fastest of ``windows`` windows, each the
    largest over the ranks that ran it."""
    from mpi4py import MPI

    probe = 0.0
    if fn is not None:
        fn()
        probe = _window(fn, 2)
    probe = comm.allreduce(probe, op=MPI.MAX)
    iters = int(min(max(seconds / windows / max(probe, 1e-7), 3), 20000))
    best = math.inf
    for _ in range(windows):
        comm.Barrier()
        t = _window(fn, iters) / per_call if fn is not None else -1.0
        _idle(comm, os.sched_yield if fn is not None else meanwhile)
        best = min(best, comm.allreduce(t, op=MPI.MAX))
    return float(best)


def _ranks_on_this_host(comm) -> int:
    from mpi4py import MPI

    names = comm.allgather(MPI.Get_processor_name())
    return names.count(MPI.Get_processor_name())


def _cpu_count(cpu_list: str) -> int:
    """The CPUs of a sysfs CPU list.

    >>> _cpu_count("0-3,8")
    5
    """
    n = 0
    for part in filter(None, cpu_list.split(",")):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


def _host_cache_bytes() -> int:
    """This host's last-level CPU cache in bytes, all its instances together (Linux sysfs:
    the largest cache of cpu0 times the CPUs over those sharing it); 0 where unknown."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    best, share = 0, 1
    for index in base.glob("index*"):
        try:
            text = (index / "size").read_text().strip().upper()
            shared = (index / "shared_cpu_list").read_text().strip()
        except OSError:
            continue
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if not digits.isdigit() or int(digits) * unit <= best:
            continue
        best = int(digits) * unit
        share = _cpu_count(shared)
    return best * max((os.cpu_count() or 1) // max(share, 1), 1) if best else 0


def _ones(n: int, dtype) -> np.ndarray:
    a = host_empty(n, dtype)
    a.fill(1)
    return a


def _prepared(schedule, chunk_bytes: int, comm, buffers: int = 1,
              merge_limit: int = MERGE_LIMIT, out_of_place: bool = False):
    """The schedule bound to ``buffers`` distinct buffers, run in turn: a collective's steps
    touch a working set several times a message's size (input, result, scratch), and one
    buffer sent back and forth stays in cache and measures a copy faster than any collective
    of that message size sees (Open MPI's 2 MiB shift: 3x the lone ping-pong's rate).
    ``merge_limit`` 0 runs the steps one at a time (see :func:`collectives.plan.step_groups`);
    ``out_of_place`` binds an input and a separate result buffer, as ``bench`` runs the
    collectives (the written benchmarks: see :func:`forward_schedule`)."""
    from collectives.mpi_executor import prepare

    # the executor takes no uint8: whole int32 elements, each chunk ``chunk_bytes`` bytes;
    # buffers backed as the benchmarked collectives' are (collectives.memory)
    n = schedule.nchunks * max(chunk_bytes // 4, 1)
    preps = [prepare(schedule, _ones(n, np.int32), _ones(n, np.int32) if out_of_place else None,
                     "sum", comm=comm, timeout=60.0, merge_limit=merge_limit)
             for _ in range(max(buffers, 1))]
    if len(preps) == 1:
        return preps[0]
    turn = iter(range(1 << 62))

    def run():
        preps[next(turn) % len(preps)]()
    run.free = lambda: [q.free() for q in preps]
    return run


def _pattern_time(comm, run_comm, schedule, nbytes, per_call, seconds, windows, buffers=1,
                  merge_limit=MERGE_LIMIT, out_of_place=False):
    prep = _prepared(schedule, nbytes, run_comm, buffers, merge_limit, out_of_place)
    try:
        return _timed(comm, prep, per_call, seconds, windows)
    finally:
        prep.free()


def _reduce_time(comm, nbytes: int, seconds: float, windows: int, alone: bool = False,
                 beside_copies: bool = False) -> float:
    """The reduction's time on every rank at once, or (``alone``) on rank 0 while the others
    idle as a collective's idle ranks do, or (``beside_copies``) while the others copy as
    many bytes over and over, as a step's copying receivers do beside its reducing one."""
    n = max(nbytes // 4, 1)
    a, b, c = (_ones(n, np.float32) for _ in range(3))

    def fn():
        np.add(a, b, c)

    def copy():
        np.copyto(c, a)
    one = alone or beside_copies
    return _timed(comm, None if one and comm.Get_rank() != 0 else fn, 1, seconds, windows,
                  copy if beside_copies else os.sched_yield)


# ------------------------------------------------------------------------------------------
# the model


def _positive(name: str, values, sizes) -> None:
    bad = [(s, v) for s, v in zip(sizes, values, strict=True)
           if not (isinstance(v, int | float) and math.isfinite(v) and v > 0)]
    if bad:
        raise CalibrationError(
            f"cannot fit a model: the {name} measurement gave no positive finite time at "
            + ", ".join(f"{s} B ({v!r})" for s, v in bad[:4])
            + "; rerun 'bench calibrate' (more --time, fewer other jobs on the machine)")


def _slope(sizes, times) -> float:
    """Seconds per byte between the two largest sizes, or (flat there) between the smallest
    and the largest."""
    last = (times[-1] - times[-2]) / (sizes[-1] - sizes[-2])
    return last if last > 0 else (times[-1] - times[0]) / (sizes[-1] - sizes[0])


def _envelope(times, what: str, notes: list) -> list[float]:
    out = list(np.minimum.accumulate(np.asarray(times, float)[::-1])[::-1])
    lowered = sum(1 for a, b in zip(times, out, strict=True) if b < a)
    if lowered:
        notes.append(f"{what}: {lowered} of {len(times)} figures lowered to a larger size's "
                     f"(noise: a larger message measured faster)")
    return [float(x) for x in out]


def _at_least_lone(sizes, crowd, lone, what: str, lone_what: str, notes: list) -> list:
    """``crowd`` with every figure below ``lone``'s at its size raised to it (N transfers at
    once never take less than one alone), noted in ``notes``."""
    floor = [max(c, lo) for c, lo in zip(crowd, lone, strict=True)]
    raised = [s for s, c, f in zip(sizes, crowd, floor, strict=True) if f > c]
    if raised:
        notes.append(f"{what}: {len(raised)} of {len(sizes)} figures below the {lone_what}'s "
                     f"raised to it (from {raised[0]} B)")
    return floor


def _segments(sizes, times, base_lat: float, base_inv: float, notes: list, what: str):
    """SimGrid-style rows ``(min_bytes, lat factor, bw factor)``: row i's line
    ``base_lat * lf + b * base_inv / bf`` passes through measurements i and i+1 (the first row
    from 0 bytes, the last line extended beyond the largest size). Where that line would need
    a negative latency (time growing faster than the bytes: caches falling off), the segment
    becomes :data:`SUBROWS` rows at sizes evenly spaced in log between the two, each from the
    origin through the straight line's value at its start (no factor is negative, and a size
    between the two is priced at most a few percent below the line rather than at the
    smaller size's rate); such a last segment gets one more row from the largest size on,
    through its measurement (no next row takes over there).

    >>> rows = _segments([1, 2, 4], [1.0, 2.0, 8.0], 1.0, 1.0, [], "t")
    >>> [(round(s, 3), lf, round(bf, 3)) for s, lf, bf in rows][1:5]
    [(2.0, 0.0, 1.0), (2.378, 0.0, 0.759), (2.828, 0.0, 0.631), (3.364, 0.0, 0.552)]
    >>> rows[0], rows[-1]
    ((0.0, 0.0, 1.0), (4.0, 0.0, 0.5))
    >>> round(3.0 / 0.631, 2)  # 3 B: 4.75 s, the straight line 5 s (the origin line: 3 s)
    4.75
    """
    rows = []
    floor = base_inv * 1e-3
    for i in range(len(sizes) - 1):
        s0, s1, t0, t1 = sizes[i], sizes[i + 1], times[i], times[i + 1]
        slope = (t1 - t0) / (s1 - s0)
        slope = max(slope, floor)  # flat (the envelope): a near-free byte, never a negative
        lat = t0 - slope * s0
        if lat < 0:  # the line through both points would cross zero above 0 B
            for j in range(SUBROWS):
                sj = s0 * (s1 / s0) ** (j / SUBROWS)
                tj = t0 + slope * (sj - s0)
                rows.append((0.0 if i == 0 and j == 0 else float(sj), 0.0,
                             base_inv * sj / tj))
            continue
        rows.append((0.0 if i == 0 else float(s0), lat / base_lat, base_inv / slope))
    if rows and rows[-1][1] == 0.0:
        # no next row takes over at the largest size: where the last line was bent through
        # the origin, it would price that size (and all beyond) below its measurement,
        # while caches fall off there (this VM's 16 MiB reduction: 3.3x the 8 MiB one, not
        # 2x); a row from the largest size on passes through its measurement from the origin
        rows.append((float(sizes[-1]), 0.0, base_inv * sizes[-1] / times[-1]))
    return tuple(rows)


def _reduce_wait_rows(sizes, reducing_shifts, shifts, reductions, wait, fit: float,
                      notes: list[str]) -> dict:
    """``{"reduce_wait_sizes": rows}`` (or nothing, with a note): the reducing shift less the
    shift and the reduction at each size below ``fit``, out of place as the collectives run.

    With ranks sharing cores it grows with the bytes reduced (4 ranks on 2 cores: 0.7-3.6 us
    up to 64 KiB, 33-40 at 1 MiB), with a core per rank from 256 KiB (2 ranks: 0-0.5 us up to
    128 KiB, 1.4-3.3 from 256 KiB), which one figure at the smallest size leaves out. Each
    size's figure is the median of it and its neighbours' (a difference of three fastest
    times is off either way by a few tenths of a us: on 2 ranks a lone 0.5 us at 128 B,
    kept, priced a 64 KiB double binary tree's 16 reducing steps 4 us slow), not below
    ``wait`` (the 4 B figure of the harness measuring it, where there is one) at the first,
    and never falling with size (a larger reduction waits no less). Only sizes below ``fit``,
    where the shift's buffers fit the host's cache: at it the shift measures its own buffers
    falling out of cache (2 ranks, 4 MiB: 2-141 us against 1.3-2 at 1 MiB; kept, it made the
    largest 2-rank errors worse, 27.7 -> 42.3%).

    >>> notes = []
    >>> rows = _reduce_wait_rows([4, 8, 16, 32], [3e-6, 9e-6, 3.4e-6, 5e-6], [2e-6] * 4,
    ...                          [1e-6] * 4, None, 32, notes)["reduce_wait_sizes"]
    >>> [(s, round(w * 1e6, 6)) for s, w in rows]  # 8 B: its 6 us is a lone blip
    [(4.0, 0.0), (8.0, 0.4), (16.0, 0.4)]
    >>> print(notes[0])
    reduce wait per size: up to 16 B, where the reducing shift's buffers fit the host's cache
    """
    per = [max(float(r) - float(c) - float(g), 0.0)
           for r, c, g in zip(reducing_shifts, shifts, reductions, strict=True)]
    n = sum(1 for s in sizes if s < fit)
    if n < 2:
        notes.append("reduce wait per size: not used (the host's cache size is unknown or "
                     "too small for the reducing shift's buffers)")
        return {}
    per = per[:n]
    per = [per[0], *(float(np.median(per[i - 1:i + 2])) for i in range(1, n - 1)), per[-1]]
    if wait is not None:
        per[0] = max(per[0], float(wait))
    per = np.maximum.accumulate(per)
    if n < len(sizes):
        notes.append(f"reduce wait per size: up to {int(sizes[n - 1])} B, where the reducing "
                     f"shift's buffers fit the host's cache")
    return {"reduce_wait_sizes": [[float(s), float(w)]
                                  for s, w in zip(sizes[:n], per, strict=True)]}


def fit_model(sizes, lone, crowd, crowd_transfers, reduce_sizes, reduce, multi,
              lone_written=None, crowd_written=None, reducing_shift=None,
              crowd_reduced=None, reducing_shift_one=None, reducing_shifts=None,
              reducing_shifts_fit: float = math.inf, reduce_one=None,
              lone_reduced=None, reduce_beside_copies=None) -> dict:
    """The calibrated model from the measurements (see the module docstring).

    ``lone``, ``crowd`` and ``reduce`` are times per size (seconds), ``multi`` maps k to the
    crowd's step time with k messages each way at ``sizes[0]``; ``lone_written`` and
    ``crowd_written`` (both or neither) the lone and crowd times of data the sender wrote
    itself (the relay, the forwarding shift), which give ``written_size_factors`` and
    ``written_crowd_factors``; ``lone`` and ``crowd`` are then clean data's.
    ``crowd_reduced`` (with the written ones) the crowd's time of data a reduction wrote (the
    reducing forward) gives ``reduced_crowd_factors``: it is raised to the clean lone figure
    where below, not to the written one (on the AMD VM such a crowd step cost about the clean
    one, a lone transfer of written data 2.5x it at 512 KiB whoever wrote it).
    ``reducing_shift`` (the shift with a reduction at ``sizes[0]``) less ``multi[1]`` and the
    reduction gives ``reduce_wait``, ``reducing_shift_one`` (with it: the same shift in which
    one rank reduces) ``reduce_wait_one``; ``reducing_shifts`` (the reducing shift at every
    size, out of place) less the shift and the reduction at each size gives
    ``reduce_wait_sizes``, ``[bytes, seconds]`` rows never falling with size,
    below ``reducing_shifts_fit`` (the message whose shift fills the host's cache; see
    :func:`_reduce_wait_rows`).
    ``reduce_one`` (the reduction on one rank alone, at ``reduce_sizes``) gives
    ``reduce_one_factors``, on the same ``reduce_overhead`` and ``gamma``; a figure above
    the crowd's at its size is lowered to it. ``lone_reduced`` (with the written ones) the
    lone time of data a reduction wrote (the reducing relay) gives ``reduced_size_factors``,
    raised to the clean lone figure where below. ``reduce_beside_copies`` (with
    ``reduce_one``: the reduction on one rank while the others copy as many bytes) gives
    ``reduce_copy_factors``, each figure between the one alone and every rank's at once.
    Raises :class:`CalibrationError` naming the
    measurement where a figure cannot be used.

    >>> m = fit_model([4, 1024, 4096], [2e-6, 3e-6, 6e-6], [4e-6, 5e-6, 14e-6], 2,
    ...               [4, 1024, 4096], [1e-6, 1.5e-6, 3e-6], {1: 4e-6, 2: 6e-6})
    >>> round(m["alpha"] * 1e6, 6), round(m["beta"] * 1e12, 3), round(m["gamma"] * 1e12, 3)
    (2.0, 976.562, 488.281)
    >>> round(m["message_overhead"] * 1e6, 2)
    1.0
    """
    from sim.models import Hockney, calibrated_cost

    if len(sizes) < 2 or len(reduce_sizes) < 2:
        raise CalibrationError("cannot fit a model: need at least two sizes (-b < -e)")
    _positive("lone ping-pong", lone, sizes)
    _positive("crowd exchange", crowd, sizes)
    _positive("reduction", reduce, reduce_sizes)
    if reduce_one is not None:
        _positive("reduction on one rank", reduce_one, reduce_sizes)
    if reduce_beside_copies is not None:
        if reduce_one is None:
            raise CalibrationError("cannot fit a model: the reduction beside copies needs the "
                                   "reduction on one rank alone")
        _positive("reduction beside copies", reduce_beside_copies, reduce_sizes)
    _positive("multi-message exchange", list(multi.values()), [f"k={k}" for k in multi])
    if (lone_written is None) != (crowd_written is None):
        raise CalibrationError("cannot fit a model: give both written-data measurements "
                               "(lone and crowd) or neither")
    if reducing_shift is not None:
        _positive("reducing shift", [reducing_shift], [sizes[0]])
    if reducing_shift_one is not None:
        if reducing_shift is None:
            raise CalibrationError("cannot fit a model: the shift with one rank reducing "
                                   "needs the one with every rank reducing")
        _positive("reducing shift with one rank reducing", [reducing_shift_one], [sizes[0]])
    if lone_written is not None:
        _positive("lone relay of written data", lone_written, sizes)
        _positive("crowd forward of written data", crowd_written, sizes)
    if crowd_reduced is not None:
        if lone_written is None:
            raise CalibrationError("cannot fit a model: the reducing forward needs the "
                                   "written-data measurements (lone and crowd) too")
        _positive("crowd forward of reduced data", crowd_reduced, sizes)
    if lone_reduced is not None:
        if lone_written is None:
            raise CalibrationError("cannot fit a model: the reducing relay needs the "
                                   "written-data measurements (lone and crowd) too")
        _positive("lone relay of reduced data", lone_reduced, sizes)
    notes: list[str] = []
    # n transfers at once share the host's memory and cores: a crowd figure below the lone
    # one at its size is the shift's own buffers staying hot, which no collective's steps
    # see; it becomes the lone figure, clean to clean and written to written (before the
    # envelope below, which would carry a large size's figure down to the smaller sizes)
    # the reducing shifts' twins, as measured in the same harness (before the raising below)
    shift_measured, reduce_measured = list(crowd), list(reduce)
    crowd = _at_least_lone(sizes, crowd, lone, "crowd exchange", "lone ping-pong", notes)
    if lone_written is not None:
        crowd_written = _at_least_lone(sizes, crowd_written, lone_written, "crowd forward",
                                       "lone relay", notes)
        lone_written = _envelope(lone_written, "lone relay of written data", notes)
        crowd_written = _envelope(crowd_written, "crowd forward of written data", notes)
    if crowd_reduced is not None:
        crowd_reduced = _at_least_lone(sizes, crowd_reduced, lone, "crowd forward of reduced "
                                       "data", "lone ping-pong", notes)
        crowd_reduced = _envelope(crowd_reduced, "crowd forward of reduced data", notes)
    if lone_reduced is not None:
        lone_reduced = _at_least_lone(sizes, lone_reduced, lone, "lone relay of reduced data",
                                      "lone ping-pong", notes)
        lone_reduced = _envelope(lone_reduced, "lone relay of reduced data", notes)
    # Noise only adds time, and a larger message never takes less: each figure becomes the
    # smallest measured at its size or any larger one (a right-to-left running minimum).
    lone = _envelope(lone, "lone ping-pong", notes)
    crowd = _envelope(crowd, "crowd exchange", notes)
    reduce = _envelope(reduce, "reduction", notes)
    if reduce_one is not None:
        # one rank alone never reduces slower than every rank at once: a figure above the
        # crowd's is noise, and becomes the crowd's (before its own envelope)
        above = sum(o > c for o, c in zip(reduce_one, reduce, strict=True))
        if above:
            notes.append(f"reduction on one rank: {above} of {len(reduce)} figures above every "
                         f"rank's at once lowered to it")
        reduce_one = _envelope([min(o, c) for o, c in zip(reduce_one, reduce, strict=True)],
                               "reduction on one rank", notes)
    if reduce_beside_copies is not None:
        # between one rank alone and every rank reducing at once: outside is noise
        out = sum(not o <= b <= c for b, o, c in zip(reduce_beside_copies, reduce_one, reduce,
                                                     strict=True))
        if out:
            notes.append(f"reduction beside copies: {out} of {len(reduce)} figures outside the "
                         f"one rank's and every rank's brought to the nearer")
        reduce_beside_copies = _envelope(
            [min(max(b, o), c) for b, o, c in zip(reduce_beside_copies, reduce_one, reduce,
                                                  strict=True)],
            "reduction beside copies", notes)
    multi = dict(zip(sorted(multi), _envelope([multi[k] for k in sorted(multi)],
                                              "multi-message exchange", notes), strict=True))
    alpha = float(lone[0])
    beta = _slope(sizes, lone)
    if not beta > 0:
        raise CalibrationError(
            f"cannot fit a model: beta from the lone ping-pong is {beta:.3g} s/B (the time at "
            f"{sizes[-2]} B is {lone[-2]:.3g} s, at {sizes[-1]} B {lone[-1]:.3g} s); rerun with "
            f"a larger -e or more --time")
    r0 = float(reduce[0])
    gamma = _slope(reduce_sizes, reduce)
    if not gamma > 0:
        raise CalibrationError(
            f"cannot fit a model: gamma from the reduction is {gamma:.3g} s/B (the time at "
            f"{reduce_sizes[-2]} B is {reduce[-2]:.3g} s, at {reduce_sizes[-1]} B "
            f"{reduce[-1]:.3g} s); rerun with more --time")
    model = {
        "alpha": alpha,
        "beta": float(beta),
        "gamma": float(gamma),
        "size_factors": _segments(sizes, lone, alpha, beta, notes, "lone ping-pong"),
        "crowd_factors": _segments(sizes, crowd, alpha, beta, notes, "crowd exchange"),
        "crowd_transfers": int(crowd_transfers),
        "message_overhead": 0.0,
        "reduce_overhead": r0,
        "reduce_factors": _segments(reduce_sizes, reduce, r0, gamma, notes, "reduction"),
    }
    if reduce_one is not None:
        model["reduce_one_factors"] = _segments(reduce_sizes, reduce_one, r0, gamma, notes,
                                                "reduction on one rank")
    if reduce_beside_copies is not None:
        model["reduce_copy_factors"] = _segments(reduce_sizes, reduce_beside_copies, r0, gamma,
                                                 notes, "reduction beside copies")
    if lone_written is not None:
        model["written_size_factors"] = _segments(sizes, lone_written, alpha, beta, notes,
                                                  "lone relay of written data")
        model["written_crowd_factors"] = _segments(sizes, crowd_written, alpha, beta, notes,
                                                   "crowd forward of written data")
    if crowd_reduced is not None:
        model["reduced_crowd_factors"] = _segments(sizes, crowd_reduced, alpha, beta, notes,
                                                   "crowd forward of reduced data")
    if lone_reduced is not None:
        model["reduced_size_factors"] = _segments(sizes, lone_reduced, alpha, beta, notes,
                                                  "lone relay of reduced data")
    # o: the k-message exchange against the same model without o, per extra message posted
    h = Hockney(alpha, beta, gamma, **{k: v for k, v in model.items()
                                       if k not in ("alpha", "beta", "gamma")})
    per = []
    for k, t in sorted(multi.items()):
        if k < 2:
            continue
        n = k * crowd_transfers
        base = float(calibrated_cost(h, alpha, beta, np.full(n, float(sizes[0])))[0])
        per.append((t - base) / (2 * k - 2))
    if per:
        o = float(np.median(per))
        if o < 0:
            notes.append(f"message overhead: the multi-message exchange is no slower than the "
                         f"crowd's line predicts ({o * 1e6:.2f} us per message); o = 0")
            o = 0.0
        model["message_overhead"] = o
    if reducing_shift is not None and 1 in multi:
        # both shifts measured at sizes[0] in one harness: what their difference holds beyond
        # the np.add call is the reduction's turn inside a step
        wait = float(reducing_shift) - float(multi[1]) - r0
        if wait < 0:
            notes.append(f"reduce wait: the reducing shift is no slower than the shift and the "
                         f"reduction ({wait * 1e6:.2f} us); 0")
            wait = 0.0
        model["reduce_wait"] = wait
        if reducing_shift_one is not None:
            one = float(reducing_shift_one) - float(multi[1]) - r0
            if one <= 0:
                notes.append(f"reduce wait with one rank reducing: no slower than the shift and "
                             f"the reduction ({one * 1e6:.2f} us); the wait is shared in "
                             f"proportion to the reducing ranks")
                one = 0.0
            model["reduce_wait_one"] = one
    if reducing_shifts is not None and list(reduce_sizes) == list(sizes):
        _positive("reducing shift", reducing_shifts, sizes)
        model.update(_reduce_wait_rows(sizes, reducing_shifts, shift_measured, reduce_measured,
                                       model.get("reduce_wait"), reducing_shifts_fit, notes))
    for key in ("alpha", "beta", "gamma", "reduce_overhead", "message_overhead"):
        if not (math.isfinite(model[key]) and model[key] >= 0):
            raise CalibrationError(f"cannot fit a model: {key} = {model[key]!r}")
    model["notes"] = notes
    return model


def forward_step_times(forward, crowd, nranks: int, inplace: bool = False) -> list[float]:
    """The crowd's step time with written data from the forwarding shift's two-step times
    (:func:`forward_schedule`): less the clean shift's time (its first step sends the input,
    clean data), but for 2 ranks run ``inplace``, where both steps send written data (each
    rank's chunk came back in the step before) and it is half; where noise leaves the
    difference below nothing, half too.

    >>> forward_step_times([10.0, 30.0], [4.0, 10.0], 2), forward_step_times([3.0], [4.0], 3)
    ([6.0, 20.0], [1.5])
    >>> forward_step_times([10.0], [4.0], 2, inplace=True)
    [5.0]
    """
    if inplace and nranks == 2:
        return [f / 2 for f in forward]
    return [f - c if f - c > 0 else f / 2 for f, c in zip(forward, crowd, strict=True)]


def reduced_step_times(forward, reducing_shift) -> list[float]:
    """The crowd's step time with data a reduction wrote, from the reducing forward's two-step
    times (:func:`forward_schedule` with ``reduce``): less its first step's, the reducing
    shift (:func:`shift_schedule` with ``reduce``, out of place as the forward); where noise
    leaves the difference below nothing, half.

    >>> reduced_step_times([30.0, 8.0], [15.0, 9.0])
    [15.0, 4.0]
    """
    return [f - r if f - r > 0 else f / 2 for f, r in zip(forward, reducing_shift, strict=True)]


def relay_reduced_times(relay, first, reduce_one, nranks: int) -> list[float]:
    """The lone transfer time of data a reduction wrote from the reducing relay's time per
    transfer (:func:`reducing_relay_schedule`): of its ``nranks`` transfers the root's
    first sends its input (``first``: the clean lone time out of place, the written one in
    place) and ``nranks - 1`` receivers reduce, one at a time (``reduce_one``: the reduction
    on one rank alone); the other ``nranks - 1`` transfers send what a reduction wrote.
    Where noise leaves that below nothing, the relay's own time.

    >>> relay_reduced_times([10.0, 2.0], [4.0, 3.0], [2.0, 2.0], 2)
    [14.0, 2.0]
    """
    out = []
    for r, c, g in zip(relay, first, reduce_one, strict=True):
        t = (nranks * r - c - (nranks - 1) * g) / (nranks - 1)
        out.append(t if t > 0 else r)
    return out


def relay_transfer_times(relay, lone, nranks: int, inplace: bool = False) -> list[float]:
    """The lone transfer time of written data from the written relay's time per transfer
    (:func:`relay_schedule`): out of place, of its ``nranks`` transfers the root's first
    sends the input (clean, the ``lone`` time) and the others forward what they received;
    where noise leaves that below nothing, the relay's own time. Run ``inplace``, every
    transfer sends written data (the root's chunk came back the call before): the relay's.

    >>> relay_transfer_times([3.0, 2.0], [2.0, 6.0], 2), relay_transfer_times([3.0], [1.5], 4)
    ([4.0, 2.0], [3.5])
    >>> relay_transfer_times([3.0], [2.0], 2, inplace=True)
    [3.0]
    """
    if inplace:
        return list(relay)
    p = max(int(nranks), 2)
    out = []
    for t, c in zip(relay, lone, strict=True):
        w = (p * t - c) / (p - 1)
        out.append(w if w > 0 else t)
    return out


def write_model(path, doc: dict) -> None:
    """Write ``doc`` as JSON to ``path`` whole: a temporary file beside it, then a rename."""
    from sim.export import write_atomic

    write_atomic(path, json.dumps(doc, indent=1) + "\n")


def model_mismatches(path, host: str | None, library: str | None, ranks,
                     inplace=None) -> list[str]:
    """One line per way the model file at ``path`` was calibrated elsewhere than where it is
    used: another machine (host), MPI library, rank count (``ranks`` an int or a set) or
    placement of the result (``inplace`` a bool or a set of them; None: not checked).

    >>> import json, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "m.json")
    >>> with open(p, "w") as f:
    ...     json.dump({"host": "a", "library": "MPICH 5.0.2", "ranks": 2,
    ...                "size_factors": [[0, 1, 1]]}, f)
    >>> model_mismatches(p, "a", "MPICH 5.0.2", 2)
    []
    >>> for line in model_mismatches(p, "b", "Open MPI 5.0.11", {2, 4}):  # doctest: +ELLIPSIS
    ...     print(line)
    model file ...m.json' was calibrated on host 'a', not 'b'
    model file ...m.json' was calibrated under MPICH 5.0.2, not Open MPI 5.0.11
    model file ...m.json' was calibrated at 2 ranks, used here for 4: calibrate at each rank count
    >>> with open(p, "w") as f:
    ...     json.dump({"inplace": False, "size_factors": [[0, 1, 1]]}, f)
    >>> print(*model_mismatches(p, None, None, 2, inplace=True))  # doctest: +ELLIPSIS
    model file ...m.json' was calibrated for out-of-place collectives, used here in place: ...
    """
    try:
        doc = model_document(json.loads(Path(path).read_text()))
    except (OSError, ValueError):
        return []  # load_model_file reports an unreadable file
    if not isinstance(doc, dict):
        return []
    name = f"model file {str(path)!r}"
    out = []
    if doc.get("host") and host and doc["host"] != host:
        out.append(f"{name} was calibrated on host {doc['host']!r}, not {host!r}")
    if doc.get("library") and library and doc["library"] != library:
        out.append(f"{name} was calibrated under {doc['library']}, not {library}")
    used = {ranks} if isinstance(ranks, int) else set(ranks or ())
    if isinstance(doc.get("ranks"), int) and used - {doc["ranks"]}:
        out.append(f"{name} was calibrated at {doc['ranks']} ranks, used here for "
                   f"{', '.join(map(str, sorted(used - {doc['ranks']})))}: calibrate at each "
                   f"rank count")
    used_inplace = {inplace} if isinstance(inplace, bool) else set(inplace or ())
    if isinstance(doc.get("inplace"), bool) and used_inplace - {doc["inplace"]}:
        was, now = ("in-place", "out of place") if doc["inplace"] else ("out-of-place", "in place")
        out.append(f"{name} was calibrated for {was} collectives, used here {now}: calibrate "
                   f"with --inplace {int(not doc['inplace'])}")
    if not doc.get("size_factors"):
        out.append(f"{name} has no calibrated size factors (an alpha/beta/gamma file): "
                   f"predictions use the plain Hockney model")
    return out


# ------------------------------------------------------------------------------------------
# the command


def calibration_sizes(lo: int, hi: int, factor: float) -> list[int]:
    """Message sizes from ``lo`` to ``hi`` bytes, each ``factor`` times the last, rounded up
    to whole int32 elements (at least one), without repeats."""
    out = []
    s = lo
    while s <= hi:
        size = max(4, (int(s) + 3) // 4 * 4)  # whole int32 elements for the executor
        if not out or size > out[-1]:
            out.append(size)
        s = s * factor
    return out


def calibrate(comm=None, args=None, verbose: bool = True) -> dict:
    """Measure and fit; write ``--out`` on rank 0; return the model document (every rank)."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD if comm is None else comm
    rank = comm.Get_rank()
    p = Parser(prog="python -m bench calibrate", rank=rank,
               description=__doc__.split("\n\n")[1])
    p.add_argument("--out", metavar="FILE", help="write the model as JSON here")
    p.add_argument("-b", "--minbytes", type=parse_size, default=4)
    p.add_argument("-e", "--maxbytes", type=parse_size, default=16 << 20)
    p.add_argument("-f", "--stepfactor", type=float, default=2.0)
    p.add_argument("--time", type=float, default=SECONDS,
                   help="seconds per size and measurement (default 0.2)")
    p.add_argument("--windows", type=int, default=WINDOWS,
                   help=f"timed windows per size and measurement; the fastest is kept ({WINDOWS})")
    p.add_argument("--buffers", type=int, default=BUFFERS,
                   help="distinct buffers each message benchmark cycles through, so that a "
                        f"message is not sent from and to a cached buffer ({BUFFERS})")
    p.add_argument("--passes", type=int, default=PASSES,
                   help="passes through all sizes that each size's --time and --windows are "
                        f"spread over, so that a slow spell spoils one pass only ({PASSES})")
    p.add_argument("--inplace", type=int, choices=(0, 1), default=0,
                   help="calibrate for in-place collectives (bench --inplace 1): the "
                        "written-data benchmarks run in place (default 0: out of place, as "
                        "bench runs them by default)")
    a = p.parse_args(args)
    if a.passes < 1:
        raise UsageError("argument --passes: must be >= 1")
    if a.buffers < 1:
        raise UsageError("argument --buffers: must be >= 1")
    if comm.Get_size() < 2:
        raise UsageError("calibrate needs at least 2 ranks (mpiexec -n 2 python -m bench "
                         "calibrate)")
    if a.stepfactor <= 1 or a.minbytes < 1 or a.maxbytes <= a.minbytes:
        raise UsageError("calibrate: need 1 <= -b < -e and -f > 1")
    if not a.time > 0:
        raise UsageError("argument --time: must be > 0")
    if a.windows < 1:
        raise UsageError("argument --windows: must be >= 1")
    sizes = calibration_sizes(a.minbytes, a.maxbytes, a.stepfactor)
    if len(sizes) < 2:
        raise UsageError("calibrate: -b .. -e with -f gives fewer than two sizes")
    model = measure_and_fit(comm, sizes, a.time, a.windows, a.buffers, a.passes,
                            bool(a.inplace))
    env = model["environment"]
    if verbose and rank == 0:
        for line in header_lines(env):
            print(line)
        _print(model)
    if rank == 0 and a.out:
        write_model(a.out, model)
        if verbose:
            print(f"# wrote {a.out}", flush=True)
    return model


def measure_and_fit(comm, sizes: list[int], seconds: float, windows: int,
                    buffers: int = BUFFERS, passes: int = PASSES, inplace: bool = False) -> dict:
    """Run every micro-benchmark on ``comm`` (all its ranks) and fit; the model document.
    ``buffers``: distinct buffers each message benchmark cycles through (see ``_prepared``);
    ``seconds`` and ``windows`` per size are spread over ``passes`` passes through the sizes;
    ``inplace``: the written-data benchmarks run in place (for in-place collectives)."""
    # the windows of one size are spread over ``passes`` passes through all sizes, so that a
    # slow spell of the shared machine (another job's burst, seconds long) spoils one pass's
    # figure of a size and not all of them; each figure is the fastest over the passes
    m = Measurements(comm, sizes, seconds / passes, max(1, math.ceil(windows / passes)),
                     buffers, inplace)
    for _ in range(passes):
        m.one_pass()
    return m.fit()


class Measurements:
    """The micro-benchmarks' figures, the fastest over the passes run so far.

    Each :meth:`one_pass` times every benchmark at every size once (``seconds`` and
    ``windows`` per size); :meth:`fit` turns the figures into the model document. ``bench
    --calibrate`` runs one pass before each of its sweep passes, so that the model and the
    collectives it predicts are measured in the same spells of a shared machine.
    """

    def __init__(self, comm, sizes: list[int], seconds: float, windows: int,
                 buffers: int = BUFFERS, inplace: bool = False):
        self.comm, self.sizes, self.seconds, self.windows = comm, sizes, seconds, windows
        self.buffers, self.passes = buffers, 0
        # the written benchmarks run as the predicted collectives will (see forward_schedule)
        self.inplace = bool(inplace)
        p = comm.Get_size()
        # the lone transfer relays round every rank, not between two fixed partners: with
        # more ranks than cores a fixed pair keeps both cores while the others sleep, and no
        # collective's single transfers (a tree's, a binomial's) are that lucky
        self.relay, self.shift = relay_schedule(p), shift_schedule(p)
        # each once with data the sender wrote itself (a relay forwards what it received)
        # and once with clean data: a rank's writes are read out of its cache by the peer
        self.clean_relay, self.forward = clean_relay_schedule(p), forward_schedule(p)
        # and, where every rank has a core of its own, once with data a reduction wrote:
        # cheaper to forward in a crowd than received data on the AMD VM; with ranks sharing
        # cores the step cannot be told from its first step's reductions (4 ranks on 2 cores:
        # the reducing shift of 2 MiB took 552 us, the shift and the reduction 264), and a
        # step of reduced data is priced as one of received data
        from mpi4py import MPI

        from collectives.transport import cores

        self.ranks_per_core = comm.allreduce(_ranks_on_this_host(comm) / cores(), op=MPI.MAX)
        self.reducing_forward = (forward_schedule(p, reduce=True)
                                 if self.ranks_per_core <= 1 else None)
        # and the lone relay of data a reduction wrote, a tree's lone transfers (2 ranks on
        # the AMD VM, in a job of the slow kind: 45 us at 256 KiB against 21 for received
        # data and 7 for clean; the 2-rank binomial tree was priced 34-46% fast without it)
        self.reducing_relay = (reducing_relay_schedule(p)
                               if self.ranks_per_core <= 1 else None)
        # its first step alone, taken off it: the shift and the reduction benchmark add up to
        # less than that step from 4 MiB (2 ranks: 308-343 against 358-543 us), which would
        # leave the difference in the reduced step; at the smallest size it is also the
        # reducing shift of reduce_wait (in place there, as the shift it is compared with)
        self.reducing_shift = shift_schedule(p, reduce=True)
        # and with one rank reducing: how the wait grows with the reducing ranks is the
        # library's (4 ranks on 2 cores: MPICH's hardly, Open MPI's about in proportion)
        self.one_reducing_shift = shift_schedule(p, reduce=True, reducers=1)
        self.lone, self.crowd = [math.inf] * len(sizes), [math.inf] * len(sizes)
        self.relay_s, self.forward_s = [math.inf] * len(sizes), [math.inf] * len(sizes)
        self.reducing_forward_s = [math.inf] * len(sizes)
        self.reducing_relay_s = [math.inf] * len(sizes)
        self.reducing_shift_s = [math.inf] * len(sizes)
        self.multi = dict.fromkeys(MULTI, math.inf)
        self.reducing = self.reducing_one = math.inf
        self.reduce = [math.inf] * len(sizes)
        self.reduce_one = [math.inf] * len(sizes)
        # with a core per rank: the reduction on rank 0 beside the others copying (on the AMD
        # VM with both vCPUs on one L3, 8 MiB: 244-272 us alone, 441-461 beside a copy,
        # 727-767 beside another reduction; with them on two, 244-288 whatever the other did)
        self.reduce_copy = ([math.inf] * len(sizes)
                            if 0.0 < self.ranks_per_core <= 1.0 and p > 1 else None)
        self.by_pass: list[dict[str, list[float]]] = []

    def one_pass(self) -> None:
        comm, p, share, per = self.comm, self.comm.Get_size(), self.seconds, self.windows

        def timed(schedule, size, per_call, merge_limit=MERGE_LIMIT, out_of_place=False):
            return _pattern_time(comm, comm, schedule, size, per_call, share, per,
                                 buffers=self.buffers, merge_limit=merge_limit,
                                 out_of_place=out_of_place)
        # the written benchmarks in place or out of place, as the collectives run (see
        # forward_schedule)
        oop = not self.inplace
        # this pass's own figures, kept beside the fastest over the passes (the model file's
        # measurements["by_pass"]): a machine that changes speed within a run shows there
        now: dict[str, list[float]] = {}

        def keep(name: str, series: list, i: int, value: float) -> None:
            series[i] = min(series[i], value)
            now.setdefault(name, []).append(value)
        for i, size in enumerate(self.sizes):  # interleaved: a slow spell hits all alike
            # one step at a time: no step of the clean relay waits for data of an earlier
            # one, and the executor would start small ones together (no lone transfer then)
            keep("lone_pingpong_s", self.lone, i,
                 timed(self.clean_relay, size, p, merge_limit=0))
            keep("lone_relay_s", self.relay_s, i, timed(self.relay, size, p, out_of_place=oop))
            keep("crowd_exchange_s", self.crowd, i, timed(self.shift, size, 1))
            keep("crowd_forward_s", self.forward_s, i,
                 timed(self.forward, size, 1, out_of_place=oop))
            if self.reducing_forward is not None:
                keep("crowd_reducing_forward_s", self.reducing_forward_s, i,
                     timed(self.reducing_forward, size, 1, out_of_place=oop))
            if self.reducing_relay is not None:
                keep("lone_reducing_relay_s", self.reducing_relay_s, i,
                     timed(self.reducing_relay, size, p, out_of_place=oop))
            # every size: the reduction's wait per size (reduce_wait_sizes), and with a core
            # per rank the first step the reduced crowd forward is less
            keep("crowd_reducing_shift_s", self.reducing_shift_s, i,
                 timed(self.reducing_shift, size, 1, out_of_place=oop))
        for k in MULTI:
            self.multi[k] = min(self.multi[k], _pattern_time(
                comm, comm, shift_schedule(p, k), self.sizes[0], 1, share, per))
        self.reducing = min(self.reducing, _pattern_time(
            comm, comm, self.reducing_shift, self.sizes[0], 1, share, per))
        self.reducing_one = min(self.reducing_one, _pattern_time(
            comm, comm, self.one_reducing_shift, self.sizes[0], 1, share, per))
        for i, size in enumerate(self.sizes):
            keep("reduce_s", self.reduce, i, _reduce_time(comm, size, share, per))
            keep("reduce_one_s", self.reduce_one, i,
                 _reduce_time(comm, size, share, per, alone=True))
            if self.reduce_copy is not None:
                keep("reduce_beside_copies_s", self.reduce_copy, i,
                     _reduce_time(comm, size, share, per, beside_copies=True))
        self.by_pass.append(now)
        self.passes += 1

    def _cache_per_rank(self) -> float:
        """The host's last-level cache over the job's ranks on it, in bytes (0: unknown)."""
        return _host_cache_bytes() / _ranks_on_this_host(self.comm)

    def _reducing_shift_fits(self, cache_per_rank: float) -> float:
        """The message of the reducing shift whose buffers fill ``cache_per_rank`` (its rows
        are kept below it): the shift holds ``p`` chunks per rank, twice out of place, so from
        there on it measures its own working set falling out of cache, p times a message's
        (on the AMD VM, 4 ranks: the wait past the shift and the reduction 33-40 us at 1 MiB,
        57-159 at 2 MiB, 333-727 at 4 MiB), which the reduction benchmark at a collective's
        own working set already prices."""
        return cache_per_rank / (self.comm.Get_size() * (1 if self.inplace else 2))

    def fit(self) -> dict:
        comm, sizes, buffers = self.comm, self.sizes, self.buffers
        p = comm.Get_size()
        env = environment(comm)
        # the reduction's turn is the scheduler's: only where a host runs more ranks than it
        # has cores (on 2 ranks on 2 cores the difference measured 0.36 us, which the
        # collectives did not show: it priced them 14-21% slow below 8 KiB)
        ranks_per_core = self.ranks_per_core
        shares = ranks_per_core > 1
        cache = self._cache_per_rank()
        lone_written = relay_transfer_times(self.relay_s, self.lone, p, self.inplace)
        crowd_written = forward_step_times(self.forward_s, self.crowd, p, self.inplace)
        crowd_reduced = (None if self.reducing_forward is None else
                         reduced_step_times(self.reducing_forward_s, self.reducing_shift_s))
        lone_reduced = (None if self.reducing_relay is None else relay_reduced_times(
            self.reducing_relay_s, lone_written if self.inplace else self.lone,
            self.reduce_one, p))
        fitted = fit_model(sizes, self.lone, self.crowd, p, sizes, self.reduce, self.multi,
                           lone_written, crowd_written, self.reducing if shares else None,
                           crowd_reduced, self.reducing_one if shares else None,
                           self.reducing_shift_s, self._reducing_shift_fits(cache),
                           self.reduce_one, lone_reduced, self.reduce_copy)
        fitted["ranks_per_core"] = float(ranks_per_core)
        if cache > 0:
            # the reduce_wait_sizes rows hold for a collective whose working set fits the cache
            # as the shift's did; beyond, the reduction's own benchmark at that working set
            # prices it (with the rows as well, the 4-rank ring of 4 MiB was priced 14 points
            # slower still); and with a core per rank only the part of a collective's working
            # set beyond it moves at the working set's rate (sim.models.calibrated_cost)
            fitted["cache_per_rank"] = cache
        # out of place, the written benchmarks hold an input and a result per chunk: their
        # sizes reach a collective's working set at half the size (sim.models.calibrated_cost).
        # Only where every rank has a core of its own: re-predicting stored 4-rank runs on 2
        # cores with it, the median error from 64 KiB rose (Open MPI 8.3 -> 12.0%, 11.6 ->
        # 15.0%; MPICH mixed), where on 2 ranks it fell (docs/calibration.md)
        fitted["written_buffers"] = 2.0 if not self.inplace and not shares else 1.0
        if not shares:
            fitted["notes"].append(
                f"reduce wait: at {sizes[0]} B not used, every rank has a core of its own (the "
                f"reducing shift took {(self.reducing - self.multi[1]) * 1e6:.2f} us over the "
                f"shift); what it grows by with the size is used, for the other reducing ranks")
        else:
            fitted["notes"].append(
                "reduced data: priced as received data, ranks share cores (no reducing forward)")
        return {
            "format": FORMAT,
            **fitted,
            "units": {"alpha": "s", "beta": "s/byte", "gamma": "s/byte",
                      "message_overhead": "s", "reduce_overhead": "s",
                      "factors": "rows (min_bytes, latency factor, bandwidth factor)"},
            "host": env["host"],
            "cpus": env["cpus"],
            "library": env.get("library"),
            "library_version": env.get("library_version"),
            "ranks": p,
            "inplace": self.inplace,
            "date": env["date"],
            "method": "micro-benchmarks through collectives.mpi_executor.prepare on every "
                      "rank: lone relay (one transfer at a time round every rank) of clean, "
                      "of forwarded and of reduced data, crowd shift (every rank to the next) "
                      "of clean data and forwarding (of received and of reduced data, the "
                      "forwarded data "
                      f"{'in place' if self.inplace else 'out of place'}), multi-message "
                      "shift, reducing shift (every rank and one rank reducing), np.add on every "
                      "rank, on one rank alone and on one rank beside copies; "
                      f"{buffers} buffers in turn; piecewise factors through the measured "
                      "points (bench/calibrate.py)",
            "measurements": {
                "sizes": sizes,
                "lone_pingpong_s": list(self.lone),
                "crowd_exchange_s": list(self.crowd),
                "lone_relay_s": list(self.relay_s),
                "lone_written_s": lone_written,
                "crowd_forward_s": list(self.forward_s),
                "crowd_reducing_forward_s": (None if self.reducing_forward is None
                                             else list(self.reducing_forward_s)),
                "crowd_reducing_shift_s": list(self.reducing_shift_s),
                "lone_reducing_relay_s": (None if self.reducing_relay is None
                                          else list(self.reducing_relay_s)),
                "lone_reduced_s": lone_reduced,
                "multi_exchange_bytes": sizes[0],
                "multi_exchange_s": {str(k): v for k, v in self.multi.items()},
                "reducing_shift_s": self.reducing,
                "reducing_shift_one_s": self.reducing_one,
                "reduce_sizes": sizes,
                "reduce_s": list(self.reduce),
                "reduce_one_s": list(self.reduce_one),
                "reduce_beside_copies_s": (None if self.reduce_copy is None
                                           else list(self.reduce_copy)),
                "seconds_per_point": self.seconds * self.passes,
                "windows": self.windows * self.passes,
                "buffers": buffers,
                "passes": self.passes,
                "by_pass": self.by_pass,
            },
            "environment": env,
        }


def _print(model: dict) -> None:
    m = model["measurements"]
    print(f"# lone: one message relayed round the ranks; crowd: all {model['ranks']} ranks "
          f"send to the next ({model['crowd_transfers']} transfers at once); written: the "
          f"same forwarding data the sender received; reduce: np.add on every rank (alone: on "
          f"rank 0 alone; beside: on rank 0 while the others copy)")
    print(f"#{'size(B)':>11} {'lone(us)':>10} {'crowd(us)':>10} {'lone w(us)':>11} "
          f"{'crowd w(us)':>11} {'reduce(us)':>11} {'alone(us)':>10} {'beside(us)':>11} "
          f"{'lone GB/s':>10} "
          f"{'crowd GB/s':>11}")
    nw = [math.nan] * len(m["sizes"])
    lw = m.get("lone_written_s", nw)
    cw = (forward_step_times(m["crowd_forward_s"], m["crowd_exchange_s"], model["ranks"])
          if "crowd_forward_s" in m else nw)
    alone = m.get("reduce_one_s") or nw
    beside = m.get("reduce_beside_copies_s") or nw
    for i, size in enumerate(m["sizes"]):
        lo, cr, rd = m["lone_pingpong_s"][i], m["crowd_exchange_s"][i], m["reduce_s"][i]
        print(f"{size:>12} {lo * 1e6:>10.2f} {cr * 1e6:>10.2f} {lw[i] * 1e6:>11.2f} "
              f"{cw[i] * 1e6:>11.2f} {rd * 1e6:>11.2f} {alone[i] * 1e6:>10.2f} "
              f"{beside[i] * 1e6:>11.2f} "
              f"{size / lo / 1e9:>10.3f} {size / cr / 1e9:>11.3f}")
    multi = ", ".join(f"k={k}: {t * 1e6:.2f} us" for k, t in m["multi_exchange_s"].items())
    print(f"# multi-message shift at {m['multi_exchange_bytes']} B: {multi}")
    if "reducing_shift_s" in m:
        print(f"# reducing shift at {m['multi_exchange_bytes']} B: "
              f"{m['reducing_shift_s'] * 1e6:.2f} us (reduce wait "
              f"{model.get('reduce_wait', 0.0) * 1e6:.2f} us)")
    if "reducing_shift_one_s" in m:
        print(f"# the same with one rank reducing: {m['reducing_shift_one_s'] * 1e6:.2f} us "
              f"(reduce wait {model.get('reduce_wait_one', 0.0) * 1e6:.2f} us)")
    print(f"# alpha = {model['alpha'] * 1e6:.3f} us, beta = {model['beta'] * 1e9:.4f} ns/B "
          f"({1 / model['beta'] / 1e9:.2f} GB/s), gamma = {model['gamma'] * 1e9:.4f} ns/B, "
          f"reduce overhead = {model['reduce_overhead'] * 1e6:.2f} us, message overhead o = "
          f"{model['message_overhead'] * 1e6:.2f} us")
    for note in model["notes"]:
        print(f"# note: {note}")
