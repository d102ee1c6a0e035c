"""``mpiexec -n N python -m bench calibrate --out model.json``: the Hockney parameters here.

Measured under the conditions the schedules run in: calibrate with the rank count you benchmark
with. ``alpha`` (s) and ``beta`` (s/byte) come from a 2-rank *schedule* run through the
project's MPI executor (:func:`collectives.mpi_executor.prepare`), so ``alpha`` includes the
executor's per-step software overhead; by default (``--pattern exchange``) an all-gather of one
step in which both ranks send at once, the shape of a ring or recursive-doubling step, so that
both directions load the memory system as a collective's step does (``--pattern pingpong``: a
broadcast whose second step sends the chunk back, one direction at a time). With N > 2 ranks
every rank takes part: the ranks run the pattern in disjoint pairs (0<->1, 2<->3, ...) all at
once, so oversubscription (more ranks than cores) and shared memory bandwidth show up as they do
in an N-rank sweep; a size's time per message is the largest over the pairs, each pair's the
fastest of ``--windows`` timed windows (the machine's noise only adds time; the sweep likewise
keeps the fastest of ``--repeat``). ``t(s) = alpha + beta s`` is fitted by least squares over
the sizes, weighted by ``1/t`` so that small and large sizes count alike (relative residuals).
All three patterns are measured, interleaved; the other two are kept for reference, the raw
mpi4py ``Send``/``Recv`` ping-pong's fit also as ``raw_alpha`` and ``raw_beta``. ``gamma``
(s/byte) is the slope of the time of a local reduction ``np.add(a, b, out=a)`` (float32)
against its operand's bytes, timed on every rank at once (the largest over the ranks), over
sizes large enough that the call overhead does not matter.

The model file is JSON with ``alpha``, ``beta`` and ``gamma`` (what
:func:`sim.models.load_model_file` reads) plus metadata: ``method``, ``pattern``, ``ranks``,
``pairs``, ``raw_alpha``, ``raw_beta``, ``residuals``, every pattern's times and fit, library,
host, date. All three parameters are positive: a fit that gives a non-positive value (noise)
falls back to the smallest measured time (alpha) or the largest size's time per byte (beta,
gamma), and says so in ``notes``.
"""

from __future__ import annotations

import json
import time

import numpy as np

from bench._common import Parser, UsageError, environment, header_lines, parse_size

__all__ = ["calibrate", "fit_line", "pingpong_schedule"]

_GAMMA = "; gamma from np.add float32 on every rank at once, largest over the ranks"
_PAIRS = ", all ranks in disjoint pairs at once, largest time over the pairs"
METHOD = {
    "exchange": "exchange schedule (2-rank all-gather, one step 0<->1) through "
                "collectives.mpi_executor.prepare" + _PAIRS + _GAMMA,
    "pingpong": "ping-pong schedule (2-rank broadcast, steps 0->1, 1->0) through "
                "collectives.mpi_executor.prepare" + _PAIRS + _GAMMA,
    "raw": "raw mpi4py Send/Recv ping-pong" + _PAIRS + _GAMMA,
}


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


# ------------------------------------------------------------------------------------------
# one pattern on a pair communicator: make(pair, size) -> (call, free, sequential messages)


def _raw_pingpong(pair, size: int):
    from mpi4py import MPI

    buf = np.zeros(max(size, 1), np.uint8)[:size]
    msg = [buf, MPI.BYTE]
    if pair.Get_rank() == 0:
        def fn():
            pair.Send(msg, 1, 7)
            pair.Recv(msg, 1, 7)
    else:
        def fn():
            pair.Recv(msg, 0, 7)
            pair.Send(msg, 0, 7)
    return fn, None, 2


def _executor(schedule, messages: int, chunks: int):
    def make(pair, size: int):
        from collectives.mpi_executor import prepare

        # the executor takes no uint8: whole int32 elements, each chunk ``size`` bytes
        buf = np.ones(chunks * max(size // 4, 1), np.int32)
        prep = prepare(schedule, buf, None, "sum", comm=pair, timeout=60.0)
        return prep, prep.free, messages
    return make


PATTERNS = {
    "pingpong": lambda: _executor(pingpong_schedule(), 2, 1),
    "exchange": lambda: _executor(exchange_schedule(), 1, 2),
    "raw": lambda: _raw_pingpong,
}


def _mean_time(fn, iters: int) -> float:
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters


def _concurrent_message_time(comm, pair, make, size: int, seconds: float,
                             windows: int) -> tuple[float, list[float]]:
    """Time per message of ``make(pair, size)``, run in every pair at once: (largest over the
    pairs, per pair), each pair's figure the fastest of ``windows`` timed windows."""
    from mpi4py import MPI

    fn = free = None
    messages = 1
    if pair is not None:
        fn, free, messages = make(pair, size)
    try:
        probe = 0.0
        if fn is not None:
            fn()  # warm-up
            probe = _mean_time(fn, 3)
        probe = comm.allreduce(probe, op=MPI.MAX)
        # every pair runs the same count, so all pairs are busy over the same stretch of time
        iters = int(min(max(seconds / windows / max(probe, 1e-7), 3), 20000))
        results = []
        for _ in range(windows):
            comm.Barrier()
            if fn is not None:
                results.append(_mean_time(fn, iters) / messages)
        mine = float(min(results)) if results and pair.Get_rank() == 0 else None
    finally:
        if free is not None:
            free()
    per_pair = [t for t in comm.allgather(mine) if t is not None]
    return max(per_pair), per_pair


def _reduce_time(nbytes: int, iters: int) -> float:
    n = max(nbytes // 4, 1)
    a = np.ones(n, np.float32)
    b = np.ones(n, np.float32)
    for _ in range(2):
        np.add(a, b, out=a)
    best = float("inf")
    for _ in range(3):  # best of three: noise only adds time
        t0 = time.perf_counter()
        for _ in range(iters):
            np.add(a, b, out=a)
        best = min(best, (time.perf_counter() - t0) / iters)
    return best


def _concurrent_reduce_time(comm, nbytes: int) -> float:
    """``np.add`` of ``nbytes`` timed on every rank at once; the largest over the ranks."""
    from mpi4py import MPI

    probe = comm.allreduce(_reduce_time(nbytes, 1), op=MPI.MAX)
    iters = int(min(max(0.02 / probe, 3), 1000))
    comm.Barrier()
    return comm.allreduce(_reduce_time(nbytes, iters), op=MPI.MAX)


def _fit_positive(sizes, times, what: str, notes: list) -> tuple[float, float, dict]:
    alpha, beta, fit = fit_line(np.array(sizes), np.array(times))
    if alpha <= 0:
        alpha = float(min(times))
        notes.append(f"{what}: alpha from the fit was not positive; using the smallest "
                     f"measured time")
    if beta <= 0:
        beta = float(times[-1] / sizes[-1])
        notes.append(f"{what}: beta from the fit was not positive; using the largest size's "
                     f"time/byte")
    return alpha, beta, fit


def _pair_comm(comm):
    """This rank's pair communicator (ranks 2k, 2k+1), or None for a last odd rank."""
    from mpi4py import MPI

    rank, size = comm.Get_rank(), comm.Get_size()
    in_pair = rank < size - size % 2
    pair = comm.Split(rank // 2 if in_pair else MPI.UNDEFINED, rank)
    return (pair if in_pair else None), size // 2


def calibrate(comm=None, args=None, verbose: bool = True) -> dict:
    """Measure and fit; write ``--out`` on rank 0; return the model dict (on every rank)."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD if comm is None else comm
    rank = comm.Get_rank()
    p = Parser(prog="python -m bench calibrate", rank=rank,
               description=__doc__.split("\n\n")[1])
    p.add_argument("--out", metavar="FILE", help="write the model as JSON here")
    p.add_argument("-b", "--minbytes", type=parse_size, default=8)
    p.add_argument("-e", "--maxbytes", type=parse_size, default=4 << 20)
    p.add_argument("-f", "--stepfactor", type=float, default=4.0)
    p.add_argument("--pattern", choices=tuple(PATTERNS), default="exchange",
                   help="which measurement gives alpha and beta (default exchange); all "
                        "three are measured and kept in the model file")
    p.add_argument("--time", type=float, default=0.1,
                   help="seconds of ping-pong per size and pattern (default 0.1)")
    p.add_argument("--windows", type=int, default=5,
                   help="timed windows per size and pattern; the fastest is kept (default 5)")
    p.add_argument("--reduce-sizes", default="1M,4M,16M",
                   help="operand sizes for the gamma fit (default 1M,4M,16M)")
    a = p.parse_args(args)
    if comm.Get_size() < 2:
        raise UsageError("calibrate needs at least 2 ranks (mpiexec -n 2 python -m bench "
                         "calibrate)")
    if a.stepfactor <= 1 or a.minbytes < 1 or a.maxbytes < a.minbytes:
        raise UsageError("calibrate: need 1 <= -b <= -e and -f > 1")
    if not a.time > 0:
        raise UsageError("argument --time: must be > 0")
    if a.windows < 1:
        raise UsageError("argument --windows: must be >= 1")
    try:
        reduce_sizes = [parse_size(s) for s in a.reduce_sizes.split(",") if s.strip()]
    except Exception as e:
        raise UsageError(f"argument --reduce-sizes: {e}") from None
    if len(reduce_sizes) < 2:
        raise UsageError("argument --reduce-sizes: give at least two sizes")

    sizes = []
    s = a.minbytes
    while s <= a.maxbytes:
        # whole int32 elements for the executor (at least one)
        size = max(4, (int(s) + 3) // 4 * 4)
        if not sizes or size > sizes[-1]:
            sizes.append(size)
        s = int(s * a.stepfactor)
    pair, npairs = _pair_comm(comm)
    kinds = [a.pattern, *(k for k in PATTERNS if k != a.pattern)]
    times: dict[str, list[float]] = {k: [] for k in kinds}
    per_pair: list[list[float]] = []
    try:
        for size in sizes:
            for k in kinds:  # interleaved, so that a slow spell of the machine hits all alike
                t, each = _concurrent_message_time(comm, pair, PATTERNS[k](), size,
                                                   a.time, a.windows)
                times[k].append(t)
                if k == a.pattern:
                    per_pair.append(each)
    finally:
        if pair is not None:
            pair.Free()
    notes: list[str] = []
    fits = {k: _fit_positive(sizes, times[k], k, notes) for k in kinds}
    alpha, beta, fit = fits[a.pattern]
    raw_alpha, raw_beta, raw_fit = fits["raw"]

    red_times = [_concurrent_reduce_time(comm, nbytes) for nbytes in reduce_sizes]
    g0, gamma, gfit = fit_line(np.array(reduce_sizes), np.array(red_times))
    if gamma <= 0:
        gamma = float(red_times[-1] / reduce_sizes[-1])
        notes.append("gamma from the fit was not positive; using the largest size's time/byte")

    env = environment(comm)

    def brief(info):
        return {k: info[k] for k in ("max_rel_residual", "rms_rel_residual")}

    model = {
        "alpha": alpha,
        "beta": beta,
        "gamma": gamma,
        "units": {"alpha": "s", "beta": "s/byte", "gamma": "s/byte"},
        "method": METHOD[a.pattern],
        "pattern": a.pattern,
        "ranks": comm.Get_size(),
        "pairs": npairs,
        "raw_alpha": raw_alpha,
        "raw_beta": raw_beta,
        "residuals": {**{k: brief(fits[k][2]) for k in kinds}, "reduction": brief(gfit)},
        "library": env.get("library"),
        "library_version": env.get("library_version"),
        "host": env["host"],
        "hosts": env.get("hosts"),
        "date": env["date"],
        "environment": env,
        "sizes": sizes,
        "patterns": {k: {"method": METHOD[k], "alpha": fits[k][0], "beta": fits[k][1],
                         "time_per_message_s": times[k], "fit": fits[k][2]} for k in kinds},
        "per_pair_s": per_pair,
        "reduction": {"op": "np.add float32", "sizes": reduce_sizes, "time_s": red_times,
                      "concurrent_ranks": comm.Get_size(), "intercept_s": g0, "fit": gfit},
        "notes": notes,
    }
    if verbose and rank == 0:
        for line in header_lines(env):
            print(line)
        print(f"# time per message, {npairs} pair(s) at once, largest over the pairs; "
              f"alpha, beta from '{a.pattern}'")
        print(f"#{'size(B)':>11}" + "".join(f" {k + '(us)':>14} {'fit':>9}" for k in kinds))
        for i, size in enumerate(sizes):
            print(f"{size:>12}" + "".join(
                f" {times[k][i] * 1e6:>14.2f} {(fits[k][0] + fits[k][1] * size) * 1e6:>9.2f}"
                for k in kinds))
        print(f"# alpha = {alpha * 1e6:.3f} us, beta = {beta * 1e9:.4f} ns/B "
              f"({1 / beta / 1e9:.2f} GB/s), gamma = {gamma * 1e9:.4f} ns/B "
              f"({1 / gamma / 1e9:.2f} GB/s); max relative residual "
              f"{fit['max_rel_residual']:.2f}")
        for k in kinds[1:]:
            ka, kb, kf = fits[k]
            print(f"# {k}: alpha = {ka * 1e6:.3f} us, beta = {kb * 1e9:.4f} ns/B "
                  f"({1 / kb / 1e9:.2f} GB/s); max relative residual "
                  f"{kf['max_rel_residual']:.2f}")
        for note in notes:
            print(f"# note: {note}")
    if rank == 0 and a.out:
        with open(a.out, "w") as f:
            json.dump(model, f, indent=1)
            f.write("\n")
        if verbose:
            print(f"# wrote {a.out}", flush=True)
    return model
