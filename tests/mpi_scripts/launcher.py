"""How the tests start real MPI jobs: ``mpiexec -n K python ...`` with a hard timeout.

The ``mpiexec`` is the one next to the running Python (the venv's, from the ``mpich`` wheel),
falling back to ``PATH``. The environment is tuned for this project's small, oversubscribed
test machines (more ranks than cores is fine and expected):

``MPIR_CVAR_CH4_PROGRESS_THROTTLE=1``
    MPICH's progress engine sleeps 1 us after 4096 consecutive polls without progress, so a
    rank that waits gives its core to the rank it waits for; measured on 2 cores, the 4-rank
    correctness sweep runs in about 2.5 s instead of 4.5 s.
``COLLECTIVES_POLLS_BEFORE_YIELD``
    not set: the executor's own wait loop already yields the core at every failed poll when
    ``MPI_LOCALNRANKS`` (set by MPICH's launcher) exceeds the cores it may run on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent.parent

ENV = {"MPIR_CVAR_CH4_PROGRESS_THROTTLE": "1"}


def mpiexec() -> str | None:
    """The mpiexec beside ``sys.executable``, else the one on PATH, else None."""
    here = Path(sys.executable).parent / "mpiexec"
    if here.exists():
        return str(here)
    return shutil.which("mpiexec")


def have_mpi() -> str | None:
    """None if real MPI jobs can run here, else the reason they cannot."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install '.[mpi]')"
    if mpiexec() is None:
        return "no mpiexec next to the Python interpreter or on PATH"
    return None


def launch(nranks: int | None, args: list[str], timeout: float = 120,
           env: dict | None = None, cwd: Path | str | None = None) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` under ``mpiexec -n nranks`` (or alone for None); capture output.

    A job that outlives ``timeout`` is killed and reported as a failure by the caller
    (``subprocess.TimeoutExpired``).
    """
    full_env = dict(os.environ)
    full_env.update(ENV)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    if env:
        full_env.update(env)
    cmd = [sys.executable, *args]
    if nranks is not None:
        cmd = [mpiexec(), "-n", str(nranks), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=str(cwd or ROOT))


def script(name: str) -> str:
    return str(SCRIPTS / name)
