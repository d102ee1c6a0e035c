"""Exporters of tuned tables (:mod:`sim.tune`) in the grammar each library reads.

=============  ============  ======================================================
format         library       what it writes
=============  ============  ======================================================
table          (any)         the text table with margins (:func:`sim.tune.format_tune_table`)
openmpi        openmpi       coll/tuned classic rules file (:mod:`sim.export.openmpi`)
openmpi-json   openmpi       Open MPI 6 JSON rules
mpich          mpich         complete csel JSON tree (:mod:`sim.export.mpich`)
nccl           nccl          example tuner plugin CSV (:mod:`sim.export.nccl`)
=============  ============  ======================================================

:func:`write_atomic` writes a file whole or not at all (a temporary file in the same
directory, then ``os.replace``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["FORMATS", "check_format", "write_atomic"]

#: format -> the library whose algorithms compete (None: all of ours)
FORMATS = {"table": None, "openmpi": "openmpi", "openmpi-json": "openmpi", "mpich": "mpich",
           "nccl": "nccl"}


def check_format(name: str) -> str:
    """The format key for ``name``; ``ValueError`` listing the known ones."""
    key = str(name).strip().lower()
    if key not in FORMATS:
        raise ValueError(f"unknown format {name!r}; use one of {', '.join(FORMATS)}")
    return key


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all; returns the path.

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "rules.txt")
    >>> write_atomic(p, "1\\n").read_text()
    '1\\n'
    >>> mask = os.umask(0); _ = os.umask(mask)
    >>> os.stat(p).st_mode & 0o777 == 0o666 & ~mask   # a plain open's mode, not mkstemp's
    True
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ValueError(f"cannot write {str(path)!r}: no directory {str(directory)!r}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600): give it the mode a plain open would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
