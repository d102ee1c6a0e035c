"""Pieces shared by the bench commands: the argument parser, nccl-tests names, sizes, the
environment header and the timing loop."""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import socket
import sys
import time

import numpy as np

__all__ = [
    "DATATYPES",
    "OPS",
    "BenchError",
    "Parser",
    "UsageError",
    "environment",
    "header_lines",
    "library_name",
    "parse_size",
    "size_list",
    "time_loop",
]

# nccl-tests datatype names -> numpy dtypes (numpy's names are accepted as aliases)
DATATYPES = {
    "float": np.float32,
    "double": np.float64,
    "half": np.float16,
    "int32": np.int32,
    "int64": np.int64,
}
_ALIASES = {"float32": "float", "float64": "double", "float16": "half", "fp32": "float",
            "fp64": "double", "fp16": "half", "int": "int32"}
OPS = ("sum", "prod", "max", "min")


class UsageError(ValueError):
    """A bad command line: ``python -m bench`` prints it as one line and exits with 2."""


class BenchError(RuntimeError):
    """A benchmark cannot run here (e.g. no GPU for --backend nccl): one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of exiting, and prints help only on
    rank 0 (every rank parses the same command line)."""

    def __init__(self, *args, rank: int = 0, **kw):
        kw.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kw)
        self._rank = rank

    def error(self, message):
        raise UsageError(message)

    def _print_message(self, message, file=None):
        if self._rank == 0 and message:
            (file or sys.stdout).write(message)


def datatype(name: str) -> str:
    """argparse type for ``-d``: the nccl-tests name."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATATYPES:
        raise argparse.ArgumentTypeError(
            f"unknown datatype {name!r}; use one of {', '.join(DATATYPES)}")
    return key


def redop(name: str) -> str:
    key = str(name).strip().lower()
    if key not in OPS:
        raise argparse.ArgumentTypeError(f"unknown op {name!r}; use one of {', '.join(OPS)}")
    return key


def parse_size(text) -> int:
    """``8``, ``64K``, ``64M`` (powers of 1024, as in nccl-tests), ``1MiB``, ``2KB`` (1000s)."""
    try:
        from topologies.units import parse_bytes
    except ImportError:  # pragma: no cover - the units module is optional here
        parse_bytes = _parse_bytes
    try:
        return parse_bytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parse_bytes(text) -> int:
    s = str(text).strip()
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    s2 = s.upper().removesuffix("B").removesuffix("I")
    unit = s2[-1:] if s2[-1:] in units and s2[-1:] else ""
    number = s2[: len(s2) - len(unit)]
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise ValueError(f"cannot parse size {text!r}: use a number of bytes or 64K, 64M, "
                         f"1G") from None
    if value < 0 or value != int(value):
        raise ValueError(f"cannot parse size {text!r}: not a whole number of bytes")
    return int(value)


def size_list(minbytes: int, maxbytes: int, stepfactor: float) -> list[int]:
    """nccl-tests' sweep: ``minbytes``, times ``stepfactor`` while <= ``maxbytes``."""
    if minbytes < 0 or maxbytes < minbytes:
        raise UsageError(f"sizes: need 0 <= minbytes <= maxbytes, got -b {minbytes} "
                         f"-e {maxbytes}")
    if stepfactor <= 1 and minbytes != maxbytes:
        raise UsageError(f"-f/--stepfactor must be > 1, got {stepfactor}")
    sizes = [minbytes]
    while True:
        nxt = int(sizes[-1] * stepfactor) if sizes[-1] else 1
        if nxt > maxbytes or minbytes == maxbytes:
            break
        sizes.append(nxt)
    return sizes


def library_name(version_text: str) -> str:
    """``"MPICH 5.0.2"`` or ``"Open MPI 5.0.11"`` from ``MPI.Get_library_version()``; the
    first line as it is for any other library.

    >>> library_name("MPICH Version:      5.0.2\\nMPICH Release date: ...")
    'MPICH 5.0.2'
    >>> library_name("Open MPI v5.0.11, package: Open MPI user@localhost Distribution, ...")
    'Open MPI 5.0.11'
    """
    import re

    text = version_text.strip()
    m = re.match(r"MPICH Version:\s*(\S+)", text)
    if m:
        return f"MPICH {m.group(1)}"
    m = re.match(r"Open MPI v(\S+?),", text)
    if m:
        return f"Open MPI {m.group(1)}"
    return text.splitlines()[0].strip() if text else "unknown"


def environment(comm=None, **extra) -> dict:
    """Where and with what a benchmark ran (JSON-friendly)."""
    env = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    if comm is not None:
        import mpi4py
        from mpi4py import MPI

        lib = MPI.Get_library_version().strip()
        env.update({
            "library": library_name(lib),
            "library_version": lib,
            "mpi_standard": "{}.{}".format(*MPI.Get_version()),
            "mpi4py": mpi4py.__version__,
            "ranks": comm.Get_size(),
            "hosts": sorted(set(comm.allgather(MPI.Get_processor_name()))),
        })
    settings = {k: v for k, v in os.environ.items()
                if k.startswith(("MPIR_CVAR_", "COLLECTIVES_", "UCX_", "FI_", "NCCL_", "OMPI_MCA_",
                                 "PRTE_MCA_"))}
    if settings:
        env["settings"] = settings
    env.update(extra)
    return env


def header_lines(env: dict, keys: tuple[str, ...] = ()) -> list[str]:
    """``#`` lines: the MPI library first, then the run's settings."""
    lines = [f"# {env.get('library', 'no MPI library')}"]
    if "mpi4py" in env:
        lines.append(f"# MPI {env.get('mpi_standard')}, mpi4py {env['mpi4py']}, numpy "
                     f"{env['numpy']}, Python {env['python']}")
    if "ranks" in env:
        lines.append(f"# ranks: {env['ranks']} on {', '.join(env['hosts'])} "
                     f"({env['cpus']} CPUs)")
    shown = [f"{k}: {env[k]}" for k in keys if k in env]
    if shown:
        lines.append("# " + ", ".join(shown))
    if env.get("settings"):
        lines.append("# settings: " + " ".join(f"{k}={v}" for k, v in
                                                sorted(env["settings"].items())))
    return lines


def time_loop(comm, fn, iters: int, warmup: int, min_time: float = 0.0) -> tuple[float, int]:
    """Warm up, Barrier, time ``iters`` calls; return (max over ranks of the mean, iters).

    With ``min_time``, the warm-up's duration (agreed across ranks) raises ``iters`` so that
    the timed loop lasts about that long.
    """
    from mpi4py import MPI

    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
    if min_time > 0 and warmup > 0:
        per = comm.allreduce((time.perf_counter() - t0) / warmup, op=MPI.MAX)
        if per > 0:
            iters = max(iters, min(int(min_time / per), 1_000_000))
    comm.Barrier()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    mean = (time.perf_counter() - t0) / max(iters, 1)
    return comm.allreduce(mean, op=MPI.MAX), iters
