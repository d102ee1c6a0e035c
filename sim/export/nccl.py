"""NCCL's example tuner plugin configuration (``nccl_tuner.conf``) and ``NCCL_ALGO``.

The example plugin (``plugins/tuner/example/plugin.c`` in NCCL's sources, loaded with
``NCCL_TUNER_PLUGIN=<its .so>`` and reading ``NCCL_TUNER_CONFIG_FILE``) reads one CSV line per
rule, ``collective_type,min_bytes,max_bytes,algorithm,protocol,channels,nNodes,nRanks`` with
optional ``numPipeOps,regBuff``; lines starting with ``#`` are comments. Names are lowercase
(``allreduce``, ``reducescatter``, ``allgather``; ``ring``, ``tree``, ...; ``ll``, ``ll128``,
``simple``), bounds inclusive, ``-1`` matches any nNodes/nRanks/numPipeOps/regBuff. For a
call of ``nBytes`` (for all-gather and reduce-scatter NCCL passes ``nRanks * count * dtype
size``: the full vector) the first matching line makes its algorithm/protocol pair the
cheapest and sets its channel count, which must be given: the plugin's default is one
channel.

We do not model NCCL's protocols: every line says ``simple`` (the protocol whose cost is the
bandwidth-bound one our models compute). ``NCCL_ALGO`` restricts NCCL to a set of algorithms
but takes no sizes, so the equivalent string lists the algorithms the table uses.
"""

from __future__ import annotations

import textwrap

from sim.export.mapping import candidates
from sim.tune import TuneTable

__all__ = ["NCCL_NAMES", "SIZE_MAX", "nccl_algo", "nccl_csv"]

SIZE_MAX = 2**64 - 1
NCCL_NAMES = {"allreduce": "allreduce", "reducescatter": "reducescatter",
              "allgather": "allgather"}
#: NCCL_ALGO's element names (ncclAlgoStr; NCCL compares them case-insensitively)
_ALGO_ENV = {"tree": "Tree", "ring": "Ring", "collnet_direct": "CollNetDirect",
             "collnet_chain": "CollNetChain", "nvls": "NVLS", "nvls_tree": "NVLSTree",
             "pat": "PAT"}


def _check(table: TuneTable) -> None:
    if table.library != "nccl":
        raise ValueError("an NCCL tuner file needs a table tuned for NCCL's algorithms "
                         "(tune with --format nccl)")


def nccl_csv(table: TuneTable, channels: int, nodes: dict[int, int] | None = None,
             header: str = "") -> str:
    """The tuner CSV: one line per (rank count, band), ``simple`` protocol, ``channels``
    channels, ``nodes[ranks]`` nodes (default one rank per node); the last band ends at
    SIZE_MAX.

    >>> from sim.tune import Band
    >>> t = TuneTable("allreduce", "nccl", (16,), {}, {16: (Band("double-binary-tree", (8,),
    ...               None, None), Band("ring", (1 << 20,), None, None))},
    ...               {16: ("ring", "double-binary-tree")})
    >>> print(nccl_csv(t, 8, {16: 2}), end="")
    allreduce,0,1048575,tree,simple,8,2,16,-1,-1
    allreduce,1048576,18446744073709551615,ring,simple,8,2,16,-1,-1
    """
    _check(table)
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"NCCL channels must be a positive integer, got {channels!r}")
    # the plugin reads lines with fgets into 256 bytes: a longer comment would spill into
    # a second "line" that is parsed as a rule, so comments are wrapped well short of that
    lines = [f"# {part}" for line in header.splitlines() if line.strip()
             for part in textwrap.wrap(line, 120)]
    for p in table.ranks:
        n = (nodes or {}).get(p, p)
        for lo, hi, algorithm in table.boundaries(p):
            name = candidates("nccl", table.collective, p)[algorithm].ident
            lines.append(f"{NCCL_NAMES[table.collective]},{lo},{SIZE_MAX if hi is None else hi},"
                         f"{name},simple,{channels},{n},{p},-1,-1")
    return "\n".join(lines) + "\n"


def nccl_algo(table: TuneTable) -> str:
    """``NCCL_ALGO`` for this collective: the algorithms the table uses, e.g.
    ``allreduce:Tree,Ring``."""
    _check(table)
    used = []
    for p in table.ranks:
        for band in table.bands[p]:
            name = str(candidates("nccl", table.collective, p)[band.algorithm].ident)
            if _ALGO_ENV[name] not in used:
                used.append(_ALGO_ENV[name])
    return f"{NCCL_NAMES[table.collective]}:{','.join(used)}"
