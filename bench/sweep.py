"""``python -m bench [sweep]``: nccl-tests for this project's algorithms, against native MPI.

For every size from ``-b`` to ``-e`` (times ``-f``), every algorithm of ``--collective`` runs
through the MPI executor (:func:`collectives.mpi_executor.prepare`), and ``native`` runs MPI's
own ``Allreduce`` / ``Reduce_scatter_block`` / ``Allgather`` on the same buffers. Each timing is
``-w`` warm-up calls, a Barrier, ``-n`` timed calls, and the largest per-rank mean (as
nccl-tests and the OSU benchmarks report); with ``--repeat R`` every (size, algorithm) is timed
R times, interleaved, and the fastest of the R is kept (the machine's noise only ever adds
time); with ``--passes P`` the whole sweep over the sizes runs P times, its cases built afresh
each pass, and each figure is the fastest over all passes and repeats (a shared machine's slow
spells last seconds: repeats of one size all fall in the same spell, passes do not). With
``--calibrate`` one pass of ``bench calibrate``'s micro-benchmarks runs before each sweep pass
and the fitted model goes into the ``--json`` file (``"model"``), where ``bench report`` reads
it; ``auto`` without ``--model-file`` then predicts from the first of those passes (each auto
record also names the ``whole_run_choice`` of the run's whole calibration). Every
result is then checked once against the exact expected vector (inputs are small integers, so
every dtype and reduction order gives the same exact answer): ``#wrong`` is the number of
differing elements summed over ranks (exact for integers, within 1e-3 relative for floats).

Output (rank 0): ``#`` lines naming the MPI library and the run; one row per (size,
algorithm) through :func:`sim.table.format_table`, the best project algorithm of each size
marked ``*``; then per size the best project algorithm, its time over native's, and the
bandwidth of a plain numpy copy of the same size (the machine's memory speed, the physical
reference); then ``# Avg bus bandwidth`` as nccl-tests prints it.

``--json FILE`` writes ``{"format": "collectives.bench/1", "environment": {...}, "records":
[...], "summary": [...]}``: ``environment`` is :func:`bench._common.environment` (library,
versions, ranks, hosts, date, settings and the command line); each record is
:meth:`sim.table.Record.as_dict` (collective, algorithm, ranks, size, count, dtype, redop,
time_s, algbw, busbw, wrong) plus ``backend``, ``inplace``, ``iters``, ``native_time_s``,
``ratio_to_native``, ``copy_time_s`` and ``best``; each summary entry has size, count, best,
time_s, native_time_s, ratio and copy_bw. ``--csv FILE`` writes the records as rows.
"""

from __future__ import annotations

import csv
import functools
import json
import sys
import time

import numpy as np

from bench._common import (
    DATATYPES,
    OPS,
    BenchError,
    Parser,
    UsageError,
    datatype,
    environment,
    header_lines,
    parse_size,
    redop,
    size_list,
    time_loop,
)
from collectives import algorithms, build, canonical_collective, chunk_bounds
from collectives.memory import host_empty
from collectives.plan import movement_digest
from sim.models import BENCH_RESULTS_FORMAT
from sim.table import Record, format_table, make_record

__all__ = ["copy_bandwidth", "make_parser", "sweep"]

PERIOD = 17
COLLECTIVES = ("allreduce", "reducescatter", "allgather")


def make_parser(rank: int = 0, prog: str = "python -m bench [sweep]") -> Parser:
    p = Parser(prog=prog, rank=rank, description=__doc__.split("\n\n")[0].split(": ", 1)[1],
               epilog="other commands: calibrate, copy, report (python -m bench help)")
    p.add_argument("-b", "--minbytes", type=parse_size, default=8, metavar="SIZE",
                   help="smallest size, e.g. 8, 64K, 1M (default 8)")
    p.add_argument("-e", "--maxbytes", type=parse_size, default=64 << 20, metavar="SIZE",
                   help="largest size (default 64M)")
    p.add_argument("-f", "--stepfactor", type=float, default=2.0,
                   help="multiply the size by this (default 2)")
    p.add_argument("-n", "--iters", type=int, default=20, help="timed iterations (20)")
    p.add_argument("-w", "--warmup_iters", type=int, default=5, help="warm-up iterations (5)")
    p.add_argument("-c", "--check", type=int, choices=(0, 1), default=1,
                   help="check every result (1, the default) or not (0)")
    p.add_argument("-d", "--datatype", type=datatype, default="float",
                   help=f"{', '.join(DATATYPES)} (default float)")
    p.add_argument("-o", "--op", type=redop, default="sum", help=f"{', '.join(OPS)} (sum)")
    p.add_argument("--collective", type=canonical_collective, default="allreduce",
                   help=f"{', '.join(COLLECTIVES)} (default allreduce)")
    p.add_argument("--algorithms", default="all",
                   help="comma-separated algorithm names, 'native' and/or 'auto' (the project "
                        "schedule the calibrated simulator predicts fastest per size; default: "
                        "all of the collective's algorithms plus native)")
    p.add_argument("--model-file", metavar="FILE",
                   help="for auto: the model from 'bench calibrate' (default: a short "
                        "calibration first)")
    p.add_argument("--inplace", type=int, choices=(0, 1), default=0,
                   help="time in-place calls (1) instead of out-of-place ones (0)")
    p.add_argument("--repeat", type=int, default=1,
                   help="time each (size, algorithm) this many times, interleaved, and keep "
                        "the fastest (default 1)")
    p.add_argument("--passes", type=int, default=1,
                   help="go through all the sizes this many times (the cases built afresh "
                        "each pass) and keep each (size, algorithm)'s fastest: a slow spell "
                        "of a shared machine (seconds) then spoils one pass, not every repeat "
                        "of a size (default 1)")
    p.add_argument("--calibrate", action="store_true",
                   help="also calibrate in this run: one pass of bench calibrate's "
                        "micro-benchmarks before each sweep pass, the fitted model written "
                        "into the --json file, where 'bench report' reads it (the model and "
                        "the collectives then see the same spells of a shared machine); "
                        "--algorithms auto without --model-file then predicts from the first "
                        "pass, taken before the sweep")
    p.add_argument("--min-time", type=float, default=0.0, metavar="SECONDS",
                   help="raise -n where needed so that each timed loop lasts this long")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds before a stalled run aborts the job (default 60)")
    p.add_argument("--backend", choices=("mpi", "nccl"), default="mpi",
                   help="mpi (numpy buffers) or nccl (CuPy buffers on one GPU per rank)")
    p.add_argument("--json", metavar="FILE", help="write environment + records as JSON")
    p.add_argument("--csv", metavar="FILE", help="write the records as CSV")
    return p


# ------------------------------------------------------------------------------------------
# data: small integers with period PERIOD, so every result is exact and cheap to predict


def _values(op: str, p: int, dtype) -> np.ndarray:
    j = np.arange(PERIOD)[None, :]
    r = np.arange(p)[:, None]
    if op == "prod":
        v = np.where(((j + r) % 13 == 0) & (r < 8), 2, np.where((j * 7 + r) % 5 == 0, -1, 1))
    else:
        v = ((j * 3 + r * 5) % 9) - 4
    return v.astype(dtype)


def _tile(row: np.ndarray, start: int, length: int) -> np.ndarray:
    """``row[(start + k) % PERIOD]`` for k < length."""
    return np.resize(np.roll(row, -(start % PERIOD)), length)


def _owned(schedule, n: int, rank: int) -> list[tuple[int, int]]:
    bounds = chunk_bounds(n, schedule.nchunks)
    return [(int(bounds[c]), int(bounds[c + 1])) for c, o in enumerate(schedule.owner)
            if o == rank]


class _Data:
    """Inputs and expected outputs of one size for this rank."""

    def __init__(self, coll: str, op: str, dtype, n: int, p: int, rank: int):
        from collectives.numpy_executor import reduce_ufunc

        self.coll, self.n, self.p, self.rank, self.dtype = coll, n, p, rank, dtype
        self.values = _values(op, p, dtype)
        self.reduced = reduce_ufunc(op).reduce(self.values, axis=0).astype(dtype)
        self.full_input = _tile(self.values[rank], 0, n)

    def input(self, blocks: list[tuple[int, int]] | None = None) -> np.ndarray:
        """The rank's input: the whole vector, or (all-gather) its blocks concatenated."""
        if blocks is None:
            return self.full_input.copy()
        parts = [self.full_input[a:b] for a, b in blocks]
        return np.concatenate(parts) if parts else np.zeros(0, self.dtype)

    def inplace_gather_input(self, blocks) -> np.ndarray:
        buf = np.zeros(self.n, self.dtype)
        for a, b in blocks:
            buf[a:b] = self.full_input[a:b]
        return buf

    def expected(self, owner_blocks) -> np.ndarray:
        """The rank's correct output; ``owner_blocks(q)`` lists rank q's element ranges."""
        if self.coll == "allreduce":
            return _tile(self.reduced, 0, self.n)
        if self.coll == "reducescatter":
            parts = [_tile(self.reduced, a, b - a) for a, b in owner_blocks(self.rank)]
            return np.concatenate(parts) if parts else np.zeros(0, self.dtype)
        out = np.empty(self.n, self.dtype)
        for q in range(self.p):
            for a, b in owner_blocks(q):
                out[a:b] = _tile(self.values[q], a, b - a)
        return out


def _count_wrong(got, expected: np.ndarray) -> int:
    got = np.asarray(got)
    if got.shape != expected.shape:
        return int(max(got.size, expected.size))
    if np.issubdtype(expected.dtype, np.integer):
        return int(np.count_nonzero(got != expected))
    tol = 1e-3 * np.maximum(np.abs(expected.astype(np.float64)), 1.0)
    bad = ~(np.abs(got.astype(np.float64) - expected) <= tol)  # NaN counts as wrong
    return int(np.count_nonzero(bad))


# ------------------------------------------------------------------------------------------
# backends


class _MPIBackend:
    name = "mpi"

    def __init__(self, comm):
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = comm
        self.native_comm = comm.Dup()
        self.mpi_ops = {"sum": MPI.SUM, "prod": MPI.PROD, "max": MPI.MAX, "min": MPI.MIN}

    def to_device(self, host: np.ndarray):
        return host

    def to_host(self, arr) -> np.ndarray:
        return arr

    def empty(self, n: int, dtype):
        # every case's buffers with the same backing, whatever was allocated and freed before
        # (collectives.memory: identical schedules measured up to 1.4x apart from 4 MiB)
        return host_empty(n, dtype)

    def fill(self, arr, value) -> None:
        arr.fill(value)

    def copy(self, dst, src) -> None:
        np.copyto(dst, src)

    def prepare(self, schedule, send, recv, op, timeout):
        from collectives.mpi_executor import prepare

        return prepare(schedule, send, recv, op, comm=self.comm, timeout=timeout)

    def native(self, coll, send, recv, op, inplace):
        """(callable, result view) for MPI's own collective on these buffers."""
        c, mop, IN_PLACE = self.native_comm, self.mpi_ops[op], self.MPI.IN_PLACE
        p = c.Get_size()
        if coll == "allreduce":
            if inplace:
                return (lambda: c.Allreduce(IN_PLACE, send, mop)), send
            return (lambda: c.Allreduce(send, recv, mop)), recv
        if coll == "reducescatter":
            if inplace:
                m = send.shape[0] // p
                return (lambda: c.Reduce_scatter_block(IN_PLACE, send, mop)), send[:m]
            return (lambda: c.Reduce_scatter_block(send, recv, mop)), recv
        if inplace:
            return (lambda: c.Allgather(IN_PLACE, send)), send
        return (lambda: c.Allgather(send, recv)), recv

    def time(self, fn, iters, warmup, min_time):
        return time_loop(self.comm, fn, iters, warmup, min_time)

    def finish(self) -> None:
        """Wait for everything queued (nothing to wait for with MPI)."""

    def close(self) -> None:
        self.native_comm.Free()


class _NCCLBackend(_MPIBackend):
    """CuPy buffers, the NCCL transport, ncclAllReduce & co. as native, CUDA-event timing."""

    name = "nccl"

    def __init__(self, comm):
        from collectives import nccl_executor

        try:
            nccl_executor.require_nccl()
        except nccl_executor.NCCLUnavailable as e:
            raise BenchError(f"--backend nccl: {e}") from None
        super().__init__(comm)
        import cupy

        self.cp = cupy
        self.nx = nccl_executor
        self.transport = nccl_executor.transport_for(comm)

    def to_device(self, host):
        return self.cp.asarray(host)

    def to_host(self, arr):
        return self.cp.asnumpy(arr)

    def empty(self, n, dtype):
        return self.cp.empty(n, dtype)

    def copy(self, dst, src):
        with self.transport.stream:
            self.cp.copyto(dst, src)

    def fill(self, arr, value):
        with self.transport.stream:
            arr.fill(value)

    def prepare(self, schedule, send, recv, op, timeout):
        # No per-call host wait (timeout None), as for NCCL's own calls; the waits of the
        # timing loop carry the timeout instead.
        self.timeout = timeout
        return self.nx.prepare(schedule, send, recv, op, comm=self.comm, timeout=None)

    def native(self, coll, send, recv, op, inplace):
        return self.nx.native(self.transport, coll, send, None if inplace else recv, op)

    def _sync(self, calls: int) -> None:
        """Wait for the stream, polling; a stall aborts the job after the timeout."""
        done = self.cp.cuda.Event(disable_timing=True)
        done.record(self.transport.stream)
        deadline = time.monotonic() + (getattr(self, "timeout", None) or 60.0) * max(calls, 1)
        while not done.done:
            if time.monotonic() > deadline:
                sys.stderr.write(f"rank {self.comm.Get_rank()}: the NCCL run stalled; "
                                 f"aborting\n")
                sys.stderr.flush()
                self.comm.Abort(1)
            time.sleep(1e-5)

    def finish(self) -> None:
        self._sync(1)

    def time(self, fn, iters, warmup, min_time):
        MPI = self.MPI
        for _ in range(warmup):
            fn()
        self._sync(warmup)
        if min_time > 0 and warmup > 0:
            t0 = time.perf_counter()
            fn()
            self._sync(1)
            per = self.comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
            if per > 0:
                iters = max(iters, min(int(min_time / per), 1_000_000))
        self.comm.Barrier()
        stream = self.transport.stream
        start, stop = self.cp.cuda.Event(), self.cp.cuda.Event()
        start.record(stream)
        for _ in range(iters):
            fn()
        stop.record(stream)
        self._sync(iters)
        mean = self.cp.cuda.get_elapsed_time(start, stop) * 1e-3 / max(iters, 1)
        return self.comm.allreduce(mean, op=MPI.MAX), iters

    def close(self) -> None:
        super().close()


# ------------------------------------------------------------------------------------------
# the sweep


def _algorithm_list(text: str, coll: str) -> list[str]:
    known = algorithms(coll)
    if text.strip().lower() == "all":
        return [*known, "native"]
    names = [a.strip().lower().replace("_", "-") for a in text.split(",") if a.strip()]
    if "all" in names:
        names = [n for a in names for n in ([*known, "native"] if a == "all" else [a])]
    bad = [a for a in names if a not in known and a not in ("native", "auto")]
    if bad or not names:
        raise UsageError(f"argument --algorithms: unknown {coll} algorithm(s) "
                         f"{', '.join(map(repr, bad)) or '(none given)'}; use "
                         f"{', '.join(known)}, native, auto or all")
    return list(dict.fromkeys(names))


def _count_for(coll: str, size: int, itemsize: int, p: int) -> int:
    count = size // itemsize
    if coll != "allreduce":
        count -= count % p  # nccl-tests: equal blocks per rank
    return count


class _Case:
    """One algorithm at one size: its callable, result and expected output."""

    def __init__(self, name, fn, result, reset, expected, free, choice=None, schedule=None):
        self.name, self.fn, self.result, self.reset = name, fn, result, reset
        self.expected, self.free = expected, free
        self.choice = choice  # auto's bench.auto.Choice
        self.schedule = schedule  # None for native
        self.times: list[float] = []
        self.iters = 0


def _cases(backend, a, names, data: _Data, p: int, rank: int) -> list[_Case]:
    coll, n, dtype, op = a.collective, data.n, DATATYPES[a.datatype], a.op
    inplace = bool(a.inplace)
    sentinel = np.nan if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min
    cases = []
    m = n // p

    def equal_blocks(q):
        return [(q * m, (q + 1) * m)]

    for name in names:
        choice = None
        if name == "native":
            blocks = equal_blocks
        elif name == "auto":
            from bench.auto import choose

            choice = choose(coll, p, n * np.dtype(dtype).itemsize, np.dtype(dtype).itemsize,
                            a.auto_params)
            schedule = choice.schedule

            def blocks(q, s=schedule):
                return _owned(s, n, q)
        else:
            try:
                schedule = build(coll, name, p)
            except ValueError as e:
                if rank == 0 and a.verbose:
                    print(f"# skipped {name}: {e}", flush=True)
                continue

            def blocks(q, s=schedule):
                return _owned(s, n, q)
        if coll == "allgather":
            host_in = (data.inplace_gather_input(blocks(rank)) if inplace
                       else data.input(blocks(rank)))
        else:
            host_in = data.input()
        # a buffer of the backend's own (host_in stays pristine for reset())
        send = backend.empty(len(host_in), dtype)
        backend.copy(send, backend.to_device(host_in))
        out_count = len(data.expected(blocks)) if coll == "reducescatter" else n
        recv = None if inplace else backend.empty(out_count, dtype)
        if name == "native":
            fn, result = backend.native(coll, send, recv, op, inplace)
            free = schedule = None
        else:
            prep = backend.prepare(schedule, send, recv, op, a.timeout)
            fn, result, free = prep, prep.result, prep.free

        def reset(send=send, recv=recv, host_in=host_in):
            if recv is None:
                backend.copy(send, backend.to_device(host_in))
            else:
                backend.fill(recv, sentinel)

        cases.append(_Case(name, fn, result, reset, data.expected(blocks), free, choice,
                           schedule))
    return cases


def _auto_params(comm, a, p: int, say: bool):
    """The calibrated model auto predicts with: ``--model-file`` (a warning per mismatch with
    this run), else a short calibration on this job's ranks."""
    from sim.models import load_model_file, model_params

    if a.model_file:
        from bench._common import library_name
        from bench.calibrate import model_mismatches

        try:
            values = load_model_file(a.model_file)
        except ValueError as e:
            raise UsageError(f"argument --model-file: {e}") from None
        if say:
            import socket

            from mpi4py import MPI

            for line in model_mismatches(a.model_file, socket.gethostname(),
                                         library_name(MPI.Get_library_version()), p,
                                         bool(a.inplace)):
                print(f"python -m bench: warning: {line}", file=sys.stderr, flush=True)
        return model_params("hockney", **values), f"model file {a.model_file}"
    if p < 2:
        raise UsageError("--algorithms auto without --model-file calibrates first, which needs "
                         "at least 2 ranks; give --model-file FILE")
    from bench.calibrate import calibration_sizes, measure_and_fit

    t0 = time.perf_counter()
    sizes = calibration_sizes(4, max(16 << 20, a.maxbytes), 4.0)
    doc = measure_and_fit(comm, sizes, 0.02, 3, inplace=bool(a.inplace))
    return _model_of(doc), (f"short calibration on {p} ranks "
                            f"({time.perf_counter() - t0:.1f} s)")


def _model_of(doc: dict):
    """The calibrated :class:`sim.models.Hockney` of a model document (bench calibrate's)."""
    from sim.models import model_params, model_values

    return model_params("hockney", **model_values(doc, "the calibration"))


def sweep(comm=None, args=None, verbose: bool = True) -> list[Record]:
    """Run the sweep (see the module docstring) and return its records (on every rank)."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD if comm is None else comm
    rank, p = comm.Get_rank(), comm.Get_size()
    a = make_parser(rank).parse_args(args)
    a.verbose = verbose
    if a.collective not in COLLECTIVES:
        raise UsageError(f"argument --collective: {a.collective} is not benchmarked; use "
                         f"{', '.join(COLLECTIVES)}")
    for flag, value in (("-n/--iters", a.iters), ("--repeat", a.repeat),
                        ("--passes", a.passes)):
        if value < 1:
            raise UsageError(f"argument {flag}: must be >= 1, got {value}")
    if a.calibrate and (a.backend != "mpi" or p < 2):
        raise UsageError("--calibrate: needs --backend mpi and at least 2 ranks")
    if a.warmup_iters < 0:
        raise UsageError(f"argument -w/--warmup_iters: must be >= 0, got {a.warmup_iters}")
    names = _algorithm_list(a.algorithms, a.collective)
    sizes = size_list(a.minbytes, a.maxbytes, a.stepfactor)
    dtype = DATATYPES[a.datatype]
    itemsize = np.dtype(dtype).itemsize
    say = verbose and rank == 0
    calibration = None
    if a.calibrate:
        from bench.calibrate import (
            PASSES,
            SECONDS,
            WINDOWS,
            Measurements,
            calibration_sizes,
        )

        # at least up to 64 KiB: below it a reduction costs its call, and a sweep to 4 KiB
        # left its per-byte cost to noise (one CI run: 0.673 us at 2 and at 4 KiB, no fit)
        calibration = Measurements(comm, calibration_sizes(4, max(a.maxbytes, 64 << 10), 2.0),
                                   SECONDS / PASSES, max(1, -(-WINDOWS // PASSES)),
                                   inplace=bool(a.inplace))
    a.auto_params = None
    auto_first_pass = False  # auto predicts from the first calibration pass of this run
    if "auto" in names:
        if a.backend != "mpi":
            raise UsageError("--algorithms auto: only with --backend mpi (the model is "
                             "calibrated over MPI)")
        if calibration is not None and not a.model_file:
            # the run calibrates anyway: auto predicts from its first pass, taken now
            from bench.calibrate import CalibrationError

            t0 = time.perf_counter()
            calibration.one_pass()
            try:
                a.auto_params = _model_of(calibration.fit())
            except CalibrationError as e:
                raise UsageError(f"--algorithms auto: the first calibration pass cannot be "
                                 f"fitted ({e}); give --model-file FILE") from None
            auto_first_pass = True
            auto_source = (f"first pass of this run's calibration "
                           f"({time.perf_counter() - t0:.1f} s)")
        else:
            a.auto_params, auto_source = _auto_params(comm, a, p, say)
        if say:
            print(f"# auto: the project schedule the simulator predicts fastest, from the "
                  f"{auto_source}", flush=True)
    backend = _NCCLBackend(comm) if a.backend == "nccl" else _MPIBackend(comm)
    env = environment(comm, backend=backend.name, collective=a.collective, dtype=a.datatype,
                      op=a.op, inplace=a.inplace, iters=a.iters, warmup=a.warmup_iters,
                      repeat=a.repeat, passes=a.passes, command=list(sys.argv))
    if say:
        for line in header_lines(env, ("backend", "collective", "dtype", "op", "inplace",
                                       "iters", "warmup", "repeat", "passes")):
            print(line)
        print(format_table([]), flush=True)

    records: list[Record] = []
    summary: list[dict] = []
    seen = set()
    counts = []
    for size in sizes:
        n = _count_for(a.collective, size, itemsize, p)
        if n not in seen:
            seen.add(n)
            counts.append(n)
    # earlier passes' times per (count, algorithm): the last pass keeps the fastest of all
    earlier: dict[tuple[int, str], list[float]] = {}

    def calibrated_up_to(k):
        """One calibration pass before sweep pass ``k`` (0-based), unless auto took it."""
        while calibration is not None and calibration.passes <= k:
            calibration.one_pass()

    def timed(n):
        """The cases of count ``n``, built afresh and timed ``--repeat`` times."""
        data = _Data(a.collective, a.op, dtype, n, p, rank)
        cases = _cases(backend, a, names, data, p, rank)
        _time_cases(backend, a, cases)
        return data, cases

    try:
        for k in range(a.passes - 1):
            if say:
                print(f"# pass {k + 1} of {a.passes}", flush=True)
            calibrated_up_to(k)
            for n in counts:
                data, cases = timed(n)
                for c in cases:
                    earlier.setdefault((n, c.name), []).extend(c.times)
                    if c.free is not None:
                        c.free()
                del cases, data
        if say and a.passes > 1:
            print(f"# pass {a.passes} of {a.passes} (each figure: the fastest over the "
                  f"passes)", flush=True)
        calibrated_up_to(a.passes - 1)
        for n in counts:
            data, cases = timed(n)
            for c in cases:
                c.times += earlier.pop((n, c.name), [])
            for c in cases:
                wrong = None
                if a.check:
                    c.reset()
                    c.fn()
                    backend.finish()
                    wrong = comm.allreduce(_count_wrong(backend.to_host(c.result), c.expected))
                c.wrong = wrong
            copy_t = _copy_time(backend, n, dtype, a)
            group = _records(a, cases, n * itemsize, n, p, copy_t)
            records += group
            entry = _summary_entry(group, n * itemsize, n, copy_t)
            if entry:
                summary.append(entry)
            if say:
                best = [(r.size, r.algorithm) for r in group if r.extra.get("best")]
                print("\n".join(format_table(group, best=best).splitlines()[2:]), flush=True)
                for r in group:
                    if r.algorithm == "auto":
                        print(f"#   auto chose {r.extra['choice']} (predicted "
                              f"{r.extra['predicted_s'] * 1e6:.2f} us)", flush=True)
            for c in cases:
                if c.free is not None:
                    c.free()
            del cases, data
    finally:
        backend.close()
    model = None
    if calibration is not None:
        from bench.calibrate import CalibrationError

        try:
            model = calibration.fit()
        except CalibrationError as e:
            if say:
                print(f"python -m bench: warning: --calibrate: {e}; no model in the results",
                      file=sys.stderr, flush=True)
    if auto_first_pass and model is not None and calibration.passes > 1:
        _whole_run_choices(records, a.collective, p, itemsize, model)
    if say:
        for line in _summary_lines(records, summary):
            print(line)
        for line in _whole_run_lines(records, calibration.passes if calibration else 0,
                                     a.json):
            print(line)
        if model is not None:
            print(f"# calibrated in this run ({calibration.passes} pass(es) of bench "
                  f"calibrate's micro-benchmarks): alpha {model['alpha'] * 1e6:.2f} us, beta "
                  f"{model['beta'] * 1e9:.3f} ns/B, gamma {model['gamma'] * 1e9:.3f} ns/B",
                  flush=True)
    if rank == 0:
        _write(a, env, records, summary, model)
    return records


def _time_cases(backend, a, cases) -> None:
    """Time every case ``--repeat`` times, interleaved, appending to its ``times``."""
    # in place, the timed calls reduce their own results again: overflow is expected
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(a.repeat):
            for c in cases:
                t, c.iters = backend.time(c.fn, a.iters, a.warmup_iters, a.min_time)
                c.times.append(t)


def _copy_time(backend, n, dtype, a) -> float:
    src = backend.empty(n, dtype)
    dst = backend.empty(n, dtype)
    backend.fill(src, 1)
    fn = functools.partial(backend.copy, dst, src)
    return min(backend.time(fn, a.iters, a.warmup_iters, a.min_time)[0]
               for _ in range(getattr(a, "repeat", 1)))


def _records(a, cases, size, n, p, copy_t) -> list[Record]:
    native = next((min(c.times) for c in cases if c.name == "native"), None)
    project = [c for c in cases if c.name not in ("native", "auto")]
    best_case = min(project, key=lambda c: min(c.times)) if project else None
    best = best_case.name if best_case else None
    out = []
    for c in cases:
        t = min(c.times)
        out.append(make_record(
            a.collective, c.name, p, size, n, a.datatype, a.op, t, c.wrong,
            backend=a.backend, inplace=bool(a.inplace), iters=c.iters,
            native_time_s=native,
            ratio_to_native=(t / native if native and c.name != "native" else None),
            copy_time_s=copy_t, best=c.name == best,
            **({"choice": c.choice.label, "predicted_s": c.choice.predicted_s,
                # the schedule the fastest fixed algorithm ran: auto then chose right, and
                # any gap between the two is the machine's noise between identical runs
                "same_as_best": best_case is not None
                and movement_digest(c.choice.schedule) == movement_digest(best_case.schedule)}
               if c.choice is not None else {})))
    return out


def _summary_entry(group, size, n, copy_t) -> dict | None:
    best = next((r for r in group if r.extra.get("best")), None)
    native = next((r for r in group if r.algorithm == "native"), None)
    auto = next((r for r in group if r.algorithm == "auto"), None)
    if best is None and native is None:
        return None
    extra = {}
    if auto is not None:
        extra = {"auto": auto.extra["choice"], "auto_time_s": auto.time_s,
                 "auto_same_as_best": auto.extra["same_as_best"],
                 "auto_to_native": auto.time_s / native.time_s if native else None,
                 "auto_to_best": auto.time_s / best.time_s if best else None}
    return {
        **extra,
        "size": size,
        "count": n,
        "best": best.algorithm if best else None,
        "time_s": best.time_s if best else None,
        "native_time_s": native.time_s if native else None,
        "ratio": (best.time_s / native.time_s if best and native and native.time_s > 0
                  else None),
        "copy_time_s": copy_t,
        "copy_bw": size / copy_t if copy_t > 0 else 0.0,
    }


def _whole_run_choices(records, collective: str, p: int, itemsize: int, model: dict) -> None:
    """Add to each auto record what the run's whole calibration (every pass, the model the
    results file carries) chooses (``whole_run_choice``): auto chose from the first pass,
    which a slow spell of a shared machine may spoil alone (on the AMD VM, first passes
    priced data a peer wrote 3-6x the later passes' and chose recursive doubling over the
    ring at 2 ranks from 1 MiB)."""
    from bench.auto import choose

    params = _model_of(model)
    for r in records:
        if r.algorithm == "auto":
            r.extra["whole_run_choice"] = choose(collective, p, r.size, itemsize,
                                                 params).label


def _whole_run_lines(records, passes: int, json_path) -> list[str]:
    """``#`` lines naming the sizes where the run's whole calibration (``passes`` passes)
    chooses otherwise than auto's first pass did, and how to predict from it."""
    autos = [r for r in records if "whole_run_choice" in r.extra]
    other = [r for r in autos if r.extra["whole_run_choice"] != r.extra["choice"]]
    if not other:
        return []
    where = ", ".join(f"{r.size} B: {r.extra['whole_run_choice']}" for r in other)
    rerun = (f"--model-file {json_path}" if json_path else "--json FILE, then --model-file "
             "FILE")
    return [f"# auto: this run's whole calibration ({passes} passes) chooses "
            f"otherwise at {len(other)} of {len(autos)} sizes ({where}); {rerun} predicts "
            f"from it"]


def _summary_lines(records, summary) -> list[str]:
    lines = ["#", "# best project algorithm per size against native (ratio = its time / "
             "native's); numpy copy of the same size for reference"]
    lines.append(f"#{'size(B)':>11} {'best':>26} {'time(us)':>12} {'native(us)':>12} "
                 f"{'ratio':>7} {'copy(GB/s)':>11}")
    for s in summary:
        t = "-" if s["time_s"] is None else f"{s['time_s'] * 1e6:.2f}"
        nt = "-" if s["native_time_s"] is None else f"{s['native_time_s'] * 1e6:.2f}"
        ratio = "-" if s["ratio"] is None else f"{s['ratio']:.2f}"
        lines.append(f"#{s['size']:>11} {s['best'] or '-':>26} {t:>12} {nt:>12} {ratio:>7} "
                     f"{s['copy_bw'] / 1e9:>11.3f}")
    if any("auto" in s for s in summary):
        lines.append("# auto (the simulator's pick) against native and the best fixed project "
                     "algorithm")
        lines.append(f"#{'size(B)':>11} {'auto chose':>32} {'auto(us)':>10} {'/native':>8} "
                     f"{'/best':>7}  (=: the best's own schedule)")
        for s in summary:
            if "auto" in s:
                rn = "-" if s["auto_to_native"] is None else f"{s['auto_to_native']:.2f}"
                rb = "-" if s["auto_to_best"] is None else f"{s['auto_to_best']:.2f}"
                same = " =" if s["auto_same_as_best"] else ""
                lines.append(f"#{s['size']:>11} {s['auto']:>32} {s['auto_time_s'] * 1e6:>10.2f} "
                             f"{rn:>8} {rb:>7}{same}")
        picked = [s for s in summary if "auto" in s]
        lines.append(f"# auto chose the fastest fixed algorithm's schedule at "
                     f"{sum(s['auto_same_as_best'] for s in picked)} of {len(picked)} sizes")
    wrong = sum(r.wrong or 0 for r in records)
    checked = any(r.wrong is not None for r in records)
    lines.append(f"# Out of bounds values : {wrong} {'OK' if wrong == 0 else 'FAILED'}"
                 if checked else "# Out of bounds values : not checked")
    best = [r.busbw for r in records if r.extra.get("best")]
    native = [r.busbw for r in records if r.algorithm == "native"]
    if best:
        lines.append(f"# Avg bus bandwidth    : {np.mean(best) / 1e9:.6g} "
                     f"(best project algorithm per size, GB/s)")
    if native:
        lines.append(f"# Avg bus bandwidth    : {np.mean(native) / 1e9:.6g} (native, GB/s)")
    lines.append("#")
    return lines


def _write(a, env, records, summary, model=None) -> None:
    from sim.export import write_atomic

    if a.json:
        doc = {"format": BENCH_RESULTS_FORMAT, "environment": env,
               "records": [r.as_dict() for r in records], "summary": summary}
        if model is not None:
            doc["model"] = model
        write_atomic(a.json, json.dumps(doc, indent=1, default=_jsonable) + "\n")
    if a.csv:
        rows = [r.as_dict() for r in records]
        fields = list(dict.fromkeys(k for row in rows for k in row))
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


# ------------------------------------------------------------------------------------------
# the physical reference on its own


def copy_bandwidth(comm=None, args=None, verbose: bool = True) -> list[dict]:
    """``python -m bench copy``: numpy copy bandwidth per size, every rank copying at once."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD if comm is None else comm
    rank = comm.Get_rank()
    p = Parser(prog="python -m bench copy", rank=rank,
               description="numpy copy (np.copyto) bandwidth per size, all ranks at once")
    p.add_argument("-b", "--minbytes", type=parse_size, default=8)
    p.add_argument("-e", "--maxbytes", type=parse_size, default=64 << 20)
    p.add_argument("-f", "--stepfactor", type=float, default=2.0)
    p.add_argument("-n", "--iters", type=int, default=20)
    p.add_argument("-w", "--warmup_iters", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.0)
    a = p.parse_args(args)
    a.backend = "mpi"
    backend = _MPIBackend(comm)
    rows = []
    try:
        env = environment(comm)  # collective (it gathers the hosts): every rank
        if verbose and rank == 0:
            for line in header_lines(env):
                print(line)
            print(f"#{'size(B)':>11} {'time(us)':>12} {'GB/s':>9}")
        for size in size_list(a.minbytes, a.maxbytes, a.stepfactor):
            t = _copy_time(backend, size, np.uint8, a)
            rows.append({"size": size, "time_s": t, "bandwidth": size / t if t > 0 else 0.0})
            if verbose and rank == 0:
                print(f"{size:>12} {t * 1e6:>12.2f} {rows[-1]['bandwidth'] / 1e9:>9.3f}",
                      flush=True)
    finally:
        backend.close()
    return rows
