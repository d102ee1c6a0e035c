"""``mpiexec -n 2 python -m bench calibrate --out model.json``: the Hockney parameters here.

``alpha`` (s) and ``beta`` (s/byte) are fitted by least squares to the half round-trip time of a
ping-pong between ranks 0 and 1 over a range of sizes: ``t(s) = alpha + beta s``, weighted by
``1/t`` so that small and large sizes count alike (relative residuals). ``gamma`` (s/byte) is
the slope of the time of a local reduction ``np.add(a, b, out=a)`` (float32) against its
operand's bytes, fitted over sizes large enough that the call overhead does not matter. The
model file is JSON with ``alpha``, ``beta`` and ``gamma`` plus metadata: library, host, date,
ranks, the measured sizes and times and the fits' residuals. Ranks beyond the first two only
wait. All three parameters are positive: a fit that gives a non-positive value (noise) falls
back to the smallest measured latency (alpha) or the largest size's time per byte (beta,
gamma), and says so in ``notes``.
"""

from __future__ import annotations

import json
import time

import numpy as np

from bench._common import Parser, UsageError, environment, header_lines, parse_size

__all__ = ["calibrate", "fit_line"]


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


def _pingpong(comm, size: int, iters: int, warmup: int) -> float:
    from mpi4py import MPI

    rank = comm.Get_rank()
    buf = np.zeros(max(size, 1), np.uint8)[:size]
    msg = [buf, MPI.BYTE]
    comm.Barrier()
    t0 = 0.0
    for i in range(warmup + iters):
        if i == warmup:
            t0 = time.perf_counter()
        if rank == 0:
            comm.Send(msg, 1, 7)
            comm.Recv(msg, 1, 7)
        elif rank == 1:
            comm.Recv(msg, 0, 7)
            comm.Send(msg, 0, 7)
    half = (time.perf_counter() - t0) / (2 * iters)
    return comm.bcast(half if rank == 0 else None, root=0)


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
    p.add_argument("--time", type=float, default=0.05,
                   help="seconds of ping-pong per size (default 0.05)")
    p.add_argument("--reduce-sizes", default="1M,4M,16M",
                   help="operand sizes for the gamma fit (default 1M,4M,16M)")
    a = p.parse_args(args)
    if comm.Get_size() < 2:
        raise UsageError("calibrate needs at least 2 ranks (mpiexec -n 2 python -m bench "
                         "calibrate)")
    if a.stepfactor <= 1 or a.minbytes < 1 or a.maxbytes < a.minbytes:
        raise UsageError("calibrate: need 1 <= -b <= -e and -f > 1")
    try:
        reduce_sizes = [parse_size(s) for s in a.reduce_sizes.split(",") if s.strip()]
    except Exception as e:
        raise UsageError(f"argument --reduce-sizes: {e}") from None
    if len(reduce_sizes) < 2:
        raise UsageError("argument --reduce-sizes: give at least two sizes")

    sizes = []
    s = a.minbytes
    while s <= a.maxbytes:
        sizes.append(int(s))
        s = int(s * a.stepfactor)
    times = []
    for size in sizes:
        probe = _pingpong(comm, size, 3, 1)
        iters = int(min(max(a.time / max(probe, 1e-7) / 2, 5), 20000))
        times.append(_pingpong(comm, size, iters, max(iters // 10, 1)))
    notes = []
    alpha, beta, fit = fit_line(np.array(sizes), np.array(times))
    if alpha <= 0:
        alpha = float(min(times))
        notes.append("alpha from the fit was not positive; using the smallest measured time")
    if beta <= 0:
        beta = float(times[-1] / sizes[-1])
        notes.append("beta from the fit was not positive; using the largest size's time/byte")

    red_times = []
    if rank == 0:
        for nbytes in reduce_sizes:
            probe = _reduce_time(nbytes, 1)
            red_times.append(_reduce_time(nbytes, int(min(max(0.02 / probe, 3), 1000))))
    red_times = comm.bcast(red_times, root=0)
    g0, gamma, gfit = fit_line(np.array(reduce_sizes), np.array(red_times))
    if gamma <= 0:
        gamma = float(red_times[-1] / reduce_sizes[-1])
        notes.append("gamma from the fit was not positive; using the largest size's time/byte")

    env = environment(comm)
    model = {
        "alpha": alpha,
        "beta": beta,
        "gamma": gamma,
        "units": {"alpha": "s", "beta": "s/byte", "gamma": "s/byte"},
        "library": env.get("library"),
        "library_version": env.get("library_version"),
        "host": env["host"],
        "hosts": env.get("hosts"),
        "date": env["date"],
        "ranks": env.get("ranks"),
        "environment": env,
        "pingpong": {"sizes": sizes, "half_round_trip_s": times, "fit": fit},
        "reduction": {"op": "np.add float32", "sizes": reduce_sizes, "time_s": red_times,
                      "intercept_s": g0, "fit": gfit},
        "notes": notes,
    }
    if verbose and rank == 0:
        for line in header_lines(env):
            print(line)
        print(f"#{'size(B)':>11} {'half RTT(us)':>13} {'fit(us)':>9}")
        for size, t in zip(sizes, times, strict=True):
            print(f"{size:>12} {t * 1e6:>13.2f} {(alpha + beta * size) * 1e6:>9.2f}")
        print(f"# alpha = {alpha * 1e6:.3f} us, beta = {beta * 1e9:.4f} ns/B "
              f"({1 / beta / 1e9:.2f} GB/s), gamma = {gamma * 1e9:.4f} ns/B "
              f"({1 / gamma / 1e9:.2f} GB/s); max relative residual "
              f"{fit['max_rel_residual']:.2f}")
        for note in notes:
            print(f"# note: {note}")
    if rank == 0 and a.out:
        with open(a.out, "w") as f:
            json.dump(model, f, indent=1)
            f.write("\n")
        if verbose:
            print(f"# wrote {a.out}", flush=True)
    return model
