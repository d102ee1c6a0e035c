"""MPICH collective-selection JSON (``MPIR_CVAR_COLL_SELECTION_TUNING_JSON_FILE``) and the
``MPIR_CVAR_<COLL>_INTRA_ALGORITHM`` setting.

MPICH reads the file at ``MPI_Init`` in place of its built-in tree (``csel.c``,
``MPIR_Csel_create_from_file``): nothing of the built-in tree is kept, and a collective the
file lacks, or a path through the tree that ends without an ``algorithm=`` leaf, aborts the
first call of that collective. So the file written here is MPICH's own default tree with one
subtree replaced: ``collective=X`` -> ``comm_type=intra`` becomes our chain of communicator
sizes, each holding a chain of message sizes ending in ``algorithm=MPIR_<Coll>_intra_<alg>``
leaves. The default tree comes from the MPICH library installed here (the JSON that MPICH
compiles in, read out of ``libmpi``), or from a file (``maint/tuning/coll/mpir/generic.json``
of your MPICH) given as ``defaults``.

Grammar, from ``parse_json_tree``: keys are tried in order, the first whose test passes is
taken; ``comm_size<N`` and ``comm_size<=N`` test the communicator size, ``avg_msg_size<=N``
(allreduce: ``count * dtype size``) and ``total_msg_size<=N`` (allgather: ``recvcount * comm
size * dtype size``; reduce_scatter: ``sum(recvcounts) * dtype size``) the message, and a key
ending in ``=any`` always passes. Every number is read with ``atoi``: a 32-bit ``int``, so no
bound above 2147483647 can be written. Leaves carry MPICH's own restrictions as guards:
``reduce_scatter_allgather`` needs a built-in op and ``count >= pof2(comm size)``, ``ring``
and the reduce-scatters a commutative op; otherwise the guard selects MPICH's general
algorithm (recursive doubling).

MPICH's device layer (ch4) runs its own selection before this tree; with
``MPIR_CVAR_DEVICE_COLLECTIVES=none`` every call goes through this file.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

from sim.export.mapping import candidates
from sim.tune import TuneTable

__all__ = ["INT_MAX", "MESSAGE_KEY", "MPICH_NAMES", "cvar_line", "mpich_default_tree",
           "mpich_json"]

INT_MAX = 2**31 - 1
#: our collective -> MPICH's csel collective name
MPICH_NAMES = {"allreduce": "allreduce", "reducescatter": "reduce_scatter",
               "allgather": "allgather"}
#: our collective -> the message-size key MPICH's own tree uses for it
MESSAGE_KEY = {"allreduce": "avg_msg_size", "reducescatter": "total_msg_size",
               "allgather": "total_msg_size"}
_FALLBACK = {"allreduce": "MPIR_Allreduce_intra_recursive_doubling",
             "reducescatter": "MPIR_Reduce_scatter_intra_recursive_doubling",
             "allgather": None}
_COMMUTATIVE_ONLY = {"MPIR_Allreduce_intra_ring", "MPIR_Reduce_scatter_intra_pairwise",
                     "MPIR_Reduce_scatter_intra_recursive_halving"}


def _libraries() -> list[Path]:
    lib = Path(sys.prefix) / "lib"
    return sorted(p for p in lib.glob("libmpi*.so*") if p.is_file() and not p.is_symlink())


def mpich_default_tree(defaults: str | Path | None = None) -> dict:
    """MPICH's default selection tree (its compiled-in ``MPII_coll_generic_json``), from
    ``defaults`` (a JSON file) or out of the installed MPICH library; ``ValueError`` if
    neither is there."""
    if defaults is not None:
        path = Path(defaults)
        try:
            tree = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ValueError(f"cannot read MPICH defaults {str(path)!r}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"MPICH defaults {str(path)!r} are not JSON: {e}") from None
        if not isinstance(tree, dict) or not any(k.startswith("collective=") for k in tree):
            raise ValueError(f"MPICH defaults {str(path)!r}: expected an object of "
                             f"'collective=...' keys (maint/tuning/coll/mpir/generic.json)")
        return tree
    best: dict | None = None
    for lib in _libraries():
        data = lib.read_bytes()
        if b"MPIR_Allreduce_intra_" not in data:
            continue
        for m in re.finditer(rb'\{\s*"collective=', data):
            end = data.find(b"\0", m.start())
            try:
                tree = json.loads(data[m.start():end].decode())
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if "algorithm=MPIR_Allreduce_intra" in json.dumps(tree) and (
                    best is None or len(tree) > len(best)):
                best = tree
    if best is None:
        raise ValueError(
            "--format mpich keeps MPICH's defaults for the collectives it does not tune and "
            "needs MPICH's default tree: install MPICH here (pip install mpich) or pass "
            "--mpich-defaults FILE (maint/tuning/coll/mpir/generic.json of your MPICH)")
    return best


def _leaf(table: TuneTable, ranks: int, algorithm: str) -> dict:
    name = str(candidates("mpich", table.collective, ranks)[algorithm].ident)
    leaf = {f"algorithm={name}": {}}
    fallback = _FALLBACK[table.collective]
    if name == "MPIR_Allreduce_intra_reduce_scatter_allgather":
        rd = {f"algorithm={fallback}": {}}
        return {"is_op_built_in=yes": {"count<pow2": rd, "count=any": leaf},
                "is_op_built_in=any": rd}
    if name in _COMMUTATIVE_ONLY:
        return {"is_commutative=yes": leaf, "is_commutative=any": {f"algorithm={fallback}": {}}}
    return leaf


def _size_chain(table: TuneTable, ranks: int) -> dict:
    key = MESSAGE_KEY[table.collective]
    chain = {}
    for lo, hi, algorithm in table.boundaries(ranks):
        if hi is None:
            chain[f"{key}=any"] = _leaf(table, ranks, algorithm)
        else:
            if hi > INT_MAX:
                raise ValueError(
                    f"MPICH reads message sizes as 32-bit ints: the band from {lo} B for "
                    f"{ranks} ranks would end at {hi} B > {INT_MAX}; tune sizes up to 2G "
                    f"(the last band is open-ended)")
            chain[f"{key}<={hi}"] = _leaf(table, ranks, algorithm)
    return chain


def mpich_json(table: TuneTable, defaults: str | Path | dict | None = None) -> str:
    """The complete selection tree as JSON text (see the module docstring): MPICH's defaults
    with ``collective=X/comm_type=intra`` replaced by ``comm_size<NEXT`` blocks (the last
    ``comm_size=any``), each a chain of ``<msg key><=HI`` leaves (the last ``=any``)."""
    if table.library != "mpich":
        raise ValueError("an MPICH selection file needs a table tuned for MPICH's algorithms "
                         "(tune with --format mpich)")
    base = defaults if isinstance(defaults, dict) else mpich_default_tree(defaults)
    tree = copy.deepcopy(base)
    ckey = f"collective={MPICH_NAMES[table.collective]}"
    if ckey not in tree or not isinstance(tree[ckey], dict):
        raise ValueError(f"MPICH's default tree has no {ckey!r} entry to tune")
    chain = {}
    for i, p in enumerate(table.ranks):
        if p > INT_MAX:
            raise ValueError(f"MPICH reads communicator sizes as 32-bit ints: {p} is too large")
        key = (f"comm_size<{table.ranks[i + 1]}" if i + 1 < len(table.ranks)
               else "comm_size=any")
        chain[key] = _size_chain(table, p)
    subtree = dict(tree[ckey])
    if "comm_type=intra" in subtree:
        subtree["comm_type=intra"] = chain
        tree[ckey] = subtree
    else:  # a default without the intra/inter split: ours first, the default after it
        tree[ckey] = {"comm_type=intra": chain, "comm_type=any": subtree}
    return json.dumps(tree, indent=1) + "\n"


def cvar_line(table: TuneTable, ranks: int, size: int) -> str:
    """``MPIR_CVAR_<COLL>_INTRA_ALGORITHM=<name>`` for one rank count and size.

    >>> from sim.tune import Band
    >>> t = TuneTable("allreduce", "mpich", (4,), {}, {4: (Band("ring", (8,), None, None),)},
    ...               {4: ("ring",)})
    >>> cvar_line(t, 4, 8)
    'MPIR_CVAR_ALLREDUCE_INTRA_ALGORITHM=ring'
    """
    algorithm = table.select(ranks, size)
    lib = candidates("mpich", table.collective, table.rank_block(ranks))[algorithm]
    return f"MPIR_CVAR_{MPICH_NAMES[table.collective].upper()}_INTRA_ALGORITHM={lib.name}"
