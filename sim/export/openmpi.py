"""Open MPI ``coll/tuned`` rules files: the classic text format and Open MPI 6's JSON.

Loaded with ``--mca coll_tuned_use_dynamic_rules 1 --mca coll_tuned_dynamic_rules_filename F``
(or ``OMPI_MCA_coll_tuned_use_dynamic_rules=1 OMPI_MCA_coll_tuned_dynamic_rules_filename=F``).

Classic format, as ``ompi_coll_tuned_read_rules_config_file`` (5.0.x,
``coll_tuned_dynamic_file.c``) reads it: whitespace-separated integers read with
``fscanf("%li")`` (so never zero-padded: ``010`` would be octal 8), ``#`` starts a comment
to the end of the line. The number of collectives; per collective its id (``COLLTYPE``:
allgather 0, allreduce 2, reduce_scatter 12), the number of communicator sizes, and per
communicator size the size, the number of message-size rules and per rule
``message_size algorithm faninout segsize``. The first rule of every communicator size must be
for message size 0. Open MPI uses the block of the largest communicator size not above the
communicator's (the first block below that) and, within it, the rule of the largest message
size not above the call's. The message size is, for all three collectives, the bytes of the
full vector: allreduce ``count * dtype size``, reduce_scatter ``sum(recvcounts) * dtype
size``, allgather ``comm size * send count * dtype size``.

JSON (Open MPI 6, ``ompi_coll_tuned_read_rules_json``): ``{"rule_file_version": 3, "module":
"tuned", "collectives": {"allreduce": [{"comm_size_min", "comm_size_max", "rules": [
{"msg_size_min", "msg_size_max", "alg"}]}]}}``, bounds inclusive, ``"inf"`` for no message
bound (communicator bounds are ``int``: an ``"inf"`` there would truncate to -1, so the last
block leaves ``comm_size_max`` out), the first matching entry wins; collective keys are Open
MPI's names (``reduce_scatter``).
"""

from __future__ import annotations

import json

from sim.export.mapping import candidates
from sim.tune import TuneTable

__all__ = ["COLLECTIVE_IDS", "COLLECTIVE_KEYS", "openmpi_classic", "openmpi_json"]

#: our collective -> Open MPI's COLLTYPE id (coll_base_functions.h)
COLLECTIVE_IDS = {"allgather": 0, "allreduce": 2, "reducescatter": 12}
#: our collective -> Open MPI's name (mca_coll_base_colltype_to_str)
COLLECTIVE_KEYS = {"allgather": "allgather", "allreduce": "allreduce",
                   "reducescatter": "reduce_scatter"}


def _alg(table: TuneTable, ranks: int, algorithm: str) -> int:
    return int(candidates("openmpi", table.collective, ranks)[algorithm].ident)


def _check(table: TuneTable) -> None:
    if table.library != "openmpi":
        raise ValueError("an Open MPI rules file needs a table tuned for Open MPI's "
                         "algorithms (tune with --format openmpi or openmpi-json)")
    if table.collective not in COLLECTIVE_IDS:
        raise ValueError(f"Open MPI rules: no collective id for {table.collective!r}")


def openmpi_classic(table: TuneTable, header: str = "") -> str:
    """The classic rules file text (see the module docstring): one collective, one block per
    tuned rank count, one rule per band; ``faninout`` and ``segsize`` 0 (the algorithms we
    model take neither).

    >>> from sim.tune import Band
    >>> t = TuneTable("allreduce", "openmpi", (4,), {}, {4: (Band("recursive-doubling",
    ...               (8,), None, None), Band("ring", (65536,), 3.0, "rabenseifner"))},
    ...               {4: ("recursive-doubling", "ring")})
    >>> print(openmpi_classic(t), end="")
    1 # collectives
    2 # collective id: allreduce
    1 # communicator sizes
    4 # communicator size
    2 # message sizes
    0 3 0 0 # from 0 B: 3 recursive_doubling
    65536 4 0 0 # from 65536 B: 4 ring (runner-up rabenseifner 3.0% slower)
    """
    _check(table)
    lines = [f"# {line}" for line in header.splitlines() if line.strip()]
    lines += ["1 # collectives",
              f"{COLLECTIVE_IDS[table.collective]} # collective id: "
              f"{COLLECTIVE_KEYS[table.collective]}",
              f"{len(table.ranks)} # communicator sizes"]
    for p in table.ranks:
        bounds = table.boundaries(p)
        lines.append(f"{p} # communicator size")
        lines.append(f"{len(bounds)} # message sizes")
        for band, (lo, _hi, algo) in zip(table.bands[p], bounds, strict=True):
            a = candidates("openmpi", table.collective, p)[algo]
            note = (f" (runner-up {band.runner_up} {band.margin:.1f}% slower)"
                    if band.margin is not None else "")
            lines.append(f"{lo} {a.ident} 0 0 # from {lo} B: {a.label}{note}")
    return "\n".join(lines) + "\n"


def openmpi_json(table: TuneTable) -> str:
    """The Open MPI 6 JSON rules (strict JSON, integer ``alg``, inclusive bounds); the
    communicator-size ranges reproduce the classic file's choice for every size."""
    _check(table)
    blocks = []
    for i, p in enumerate(table.ranks):
        rules = [{"msg_size_min": lo, "msg_size_max": "inf" if hi is None else hi,
                  "alg": _alg(table, p, algo)} for lo, hi, algo in table.boundaries(p)]
        block = {"comm_size_min": 0 if i == 0 else p}
        if i + 1 < len(table.ranks):
            # no "inf" here: Open MPI stores the communicator bounds in an int, and its "inf"
            # (SSIZE_MAX) truncates to -1 there; left out, the bound is INT_MAX
            block["comm_size_max"] = table.ranks[i + 1] - 1
        block["rules"] = rules
        blocks.append(block)
    doc = {"rule_file_version": 3, "module": "tuned",
           "collectives": {COLLECTIVE_KEYS[table.collective]: blocks}}
    return json.dumps(doc, indent=2) + "\n"
