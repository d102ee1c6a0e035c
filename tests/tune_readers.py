"""Readers of each library's tuning-file grammar, written from the libraries' sources, for the
tests of ``python -m sim tune``: what they read back must select the algorithm we chose.

- Open MPI 5.0.x classic rules (``ompi_coll_tuned_read_rules_config_file``,
  ``ompi_coll_base_file_getnext_long``: ``fscanf("%li")`` tokens, ``#`` comments; look-ups
  ``ompi_coll_tuned_get_com_rule_ptr`` / ``get_target_method_params``: nearest not above);
- Open MPI 6 JSON rules (``ompi_coll_tuned_read_rules_json``: first match, inclusive bounds,
  ``"inf"``, integer ``alg`` checked against the collective's algorithm list);
- MPICH csel JSON (``parse_json_tree``, ``validate_tree``, ``prune_tree``,
  ``MPIR_Csel_search``; ``atoi`` numbers);
- NCCL's example tuner CSV (``loadConfig``: ``fgets`` into 256 bytes, ``#`` comments,
  ``strtok`` on commas, 8 to 10 fields; ``pluginGetCollInfo``: first match).

Each reader raises ``ReadError`` where the library would reject the file, abort, or silently
read something other than what was meant (our writers must never rely on a default).
"""

from __future__ import annotations

import json
import re


class ReadError(ValueError):
    """The library would reject this file (or misread it)."""


# ----------------------------------------------------------------------------- Open MPI

OMPI_COLLCOUNT = 22
OMPI_ALGORITHMS = {0: 7, 2: 6, 12: 4}  # coll id -> highest algorithm id (allgather, ...)
OMPI_JSON_NAMES = {  # mca_coll_base_colltype_to_str
    "allgather": 0, "allgatherv": 1, "allreduce": 2, "alltoall": 3, "alltoallv": 4,
    "alltoallw": 5, "barrier": 6, "bcast": 7, "exscan": 8, "gather": 9, "gatherv": 10,
    "reduce": 11, "reduce_scatter": 12, "reduce_scatter_block": 13, "scan": 14,
    "scatter": 15, "scatterv": 16, "neighbor_allgather": 17, "neighbor_allgatherv": 18,
    "neighbor_alltoall": 19, "neighbor_alltoallv": 20, "neighbor_alltoallw": 21}
_LONG = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


class _Scanner:
    """``fscanf(fptr, "%li")`` plus the skip rules of ``ompi_coll_base_file_getnext_long``."""

    def __init__(self, text: str):
        self.s, self.i = text, 0

    def version(self) -> int:
        prefix = "rule-file-version-"
        k = 0
        while k < len(prefix) and self.i + k < len(self.s) and self.s[self.i + k] == prefix[k]:
            k += 1
        self.i += k  # fscanf consumes the literal characters that matched
        if k < len(prefix):
            return 1
        m = re.match(r"[0-9]+", self.s[self.i:])
        if not m:
            return 1
        self.i += m.end()
        return int(m.group())

    def getnext(self) -> int:
        s = self.s
        while True:
            j = self.i
            while j < len(s) and s[j].isspace():
                j += 1
            if j >= len(s):
                raise ReadError("unexpected end of file")
            m = _LONG.match(s, j)
            if m:
                self.i = m.end()
                text = m.group().lstrip("+-")
                sign = -1 if m.group().startswith("-") else 1
                if text[:2].lower() == "0x":
                    return sign * int(text[2:], 16)
                if text.startswith("0"):
                    return sign * int(text, 8)
                return sign * int(text)
            self.i = j + 1  # fread() of one character
            if s[j] == "#":
                nl = s.find("\n", self.i)
                self.i = len(s) if nl < 0 else nl + 1

    def peek_digit(self) -> bool:
        j = self.i
        while j < len(self.s) and self.s[j] in " \t":
            j += 1
        return j < len(self.s) and self.s[j].isdigit()


def read_openmpi_classic(text: str) -> dict[int, list[tuple[int, list[tuple]]]]:
    """``{coll id: [(comm size, [(msg size, alg, faninout, segsize, maxreq), ...]), ...]}``."""
    sc = _Scanner(text)
    version = sc.version()
    ncol = sc.getnext()
    if ncol < 0 or ncol > OMPI_COLLCOUNT:
        raise ReadError(f"bad number of collectives {ncol}")
    rules: dict[int, list] = {}
    for _ in range(ncol):
        colid = sc.getnext()
        if colid < 0 or colid >= OMPI_COLLCOUNT:
            raise ReadError(f"bad collective id {colid}")
        ncomsizes = sc.getnext()
        if ncomsizes < 0:
            raise ReadError("negative communicator count")
        coms = []
        for _ in range(ncomsizes):
            comsize = sc.getnext()
            nmsg = sc.getnext()
            if comsize < 0 or nmsg < 0:
                raise ReadError("negative communicator size or rule count")
            msgs = []
            for nms in range(nmsg):
                vals = [sc.getnext() for _ in range(4)]
                if min(vals) < 0:
                    raise ReadError(f"negative value in rule {vals}")
                maxreq = None
                if version > 1 and sc.peek_digit():
                    maxreq = sc.getnext()
                if nms == 0 and vals[0] != 0:
                    raise ReadError("the first rule of a communicator size must be for "
                                    "message size 0")
                msgs.append((*vals, maxreq))
            coms.append((comsize, msgs))
        rules[colid] = coms
    return rules


def select_openmpi_classic(rules, colid: int, comm_size: int, msg_size: int) -> int:
    """The algorithm id Open MPI 5.0.x takes (0: its fixed decision)."""
    coms = rules.get(colid) or []
    if not coms:
        return 0
    best = coms[0]
    for com in coms:
        if com[0] > comm_size:
            break
        best = com
    msgs = best[1]
    if not msgs:
        return 0
    chosen = msgs[0]
    for rule in msgs:
        if rule[0] > msg_size:
            break
        chosen = rule
    return chosen[1]


def _reject_constant(name):
    raise ReadError(f"{name} is not JSON")


def _json_int(value, what: str, inf: int) -> int:
    if isinstance(value, bool):
        raise ReadError(f"{what}: {value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value[:3] in ("inf", "Inf", "INF"):
        return inf
    raise ReadError(f"{what}: {value!r} is not an integer or 'inf'")


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def read_openmpi_json(text: str) -> dict[int, list[dict]]:
    """``{coll id: [{"min", "max", "rules": [{"min", "max", "alg"}]}]}`` (disabled rules
    have min > max, as Open MPI marks an unknown algorithm)."""
    inf = 2**64 - 1
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ReadError(f"not strict JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("collectives"), dict):
        raise ReadError("required top-level field 'collectives' (an object) is missing")
    out = {}
    for name, comm_rules in doc["collectives"].items():
        if name not in OMPI_JSON_NAMES:
            raise ReadError(f"unrecognized collective {name!r}")
        colid = OMPI_JSON_NAMES[name]
        if not isinstance(comm_rules, list):
            raise ReadError(f"{name}: expected an array of communicator rules")
        blocks = []
        for cr in comm_rules:
            if not isinstance(cr, dict) or not isinstance(cr.get("rules"), list):
                raise ReadError(f"{name}: a communicator rule needs a 'rules' array")
            # the communicator bounds are C ints: "inf" (SSIZE_MAX) truncates to -1
            block = {"min": _int32(_json_int(cr.get("comm_size_min", 0), "comm_size_min",
                                             2**63 - 1)),
                     "max": _int32(_json_int(cr.get("comm_size_max", 2**31 - 1),
                                             "comm_size_max", 2**63 - 1)), "rules": []}
            for r in cr["rules"]:
                if "alg" not in r:
                    raise ReadError(f"{name}: the 'alg' field is required")
                for key in ("faninout", "seg_size", "reqs"):
                    if key in r:
                        _json_int(r[key], key, inf)
                lo = _json_int(r.get("msg_size_min", 0), "msg_size_min", inf)
                hi = _json_int(r.get("msg_size_max", inf), "msg_size_max", inf)
                alg = r["alg"]
                if isinstance(alg, bool) or not isinstance(alg, int):
                    raise ReadError(f"{name}: 'alg' must be an integer here, got {alg!r}")
                if colid in OMPI_ALGORITHMS and not 0 <= alg <= OMPI_ALGORITHMS[colid]:
                    lo, hi = inf, 0  # Open MPI ignores the rule
                block["rules"].append({"min": lo, "max": hi, "alg": alg})
            blocks.append(block)
        out[colid] = blocks
    return out


def select_openmpi_json(rules, colid: int, comm_size: int, msg_size: int) -> int:
    """First matching communicator rule, first matching message rule; 0: fixed decision."""
    for block in rules.get(colid, []):
        if block["min"] <= comm_size <= block["max"]:
            for r in block["rules"]:
                if r["min"] <= msg_size <= r["max"]:
                    return r["alg"]
            return 0
    return 0


# ----------------------------------------------------------------------------- MPICH

MPICH_COLLECTIVES = {  # csel.c: "collective=" names
    "allgather", "allgatherv", "allreduce", "alltoall", "alltoallv", "alltoallw", "barrier",
    "bcast", "exscan", "gather", "gatherv", "iallgather", "iallgatherv", "iallreduce",
    "ialltoall", "ialltoallv", "ialltoallw", "ibarrier", "ibcast", "iexscan", "igather",
    "igatherv", "ineighbor_allgather", "ineighbor_allgatherv", "ineighbor_alltoall",
    "ineighbor_alltoallv", "ineighbor_alltoallw", "ireduce", "ireduce_scatter",
    "ireduce_scatter_block", "iscan", "iscatter", "iscatterv", "neighbor_allgather",
    "neighbor_allgatherv", "neighbor_alltoall", "neighbor_alltoallv", "neighbor_alltoallw",
    "reduce", "reduce_scatter", "reduce_scatter_block", "scan", "scatter", "scatterv"}
_BOOL = {  # key -> (kind, value); these may lack a failure path
    "is_multi_threaded=yes": ("threaded", True), "is_multi_threaded=no": ("threaded", False),
    "comm_type=intra": ("intra", True), "comm_type=inter": ("inter", True),
    "is_commutative=yes": ("commutative", True), "is_commutative=no": ("commutative", False),
    "is_sendbuf_inplace=yes": ("inplace", True), "is_sendbuf_inplace=no": ("inplace", False),
    "is_op_built_in=yes": ("builtin", True), "is_op_built_in=no": ("builtin", False),
    "is_block_regular=yes": ("regular", True), "is_block_regular=no": ("regular", False),
    "is_node_consecutive=yes": ("consecutive", True),
    "is_node_consecutive=no": ("consecutive", False),
    "comm_hierarchy=parent": ("parent", True), "comm_hierarchy=node_roots": ("parent", False),
    "comm_hierarchy=node": ("parent", False), "comm_hierarchy=flat": ("parent", False)}
_EXACT = {"comm_size=pow2": "comm_pow2", "comm_size=node_comm_size": "node_comm",
          "count<pow2": "count_lt_pow2"}
_NUMERIC = [("comm_size<=", "comm_le"), ("comm_size<", "comm_lt"), ("count<=", "count_le"),
            ("avg_msg_size<=", "avg_le"), ("avg_msg_size<", "avg_lt"),
            ("total_msg_size<=", "total_le"), ("total_msg_size<", "total_lt"),
            ("comm_avg_ppn<=", "ppn_le"), ("comm_avg_ppn<", "ppn_lt")]
_COMM_KINDS = {"intra", "inter", "comm_le", "comm_lt", "comm_pow2", "node_comm", "parent",
               "consecutive", "ppn_le", "ppn_lt", "any"}


def _atoi(text: str) -> int:
    m = re.match(r"\s*[+-]?[0-9]+", text)
    if not m or m.end() != len(text):
        raise ReadError(f"{text!r} is not a plain integer (MPICH reads it with atoi)")
    value = int(m.group())
    if not -(2**31) <= value < 2**31:
        raise ReadError(f"{value} does not fit MPICH's int (atoi)")
    return value


def _parse(obj) -> dict | None:
    """One node chain, as parse_json_tree links it (success = the value, failure = next)."""
    if not isinstance(obj, dict):
        raise ReadError(f"expected an object, got {obj!r}")
    head = prev = None
    for key, val in obj.items():
        if not isinstance(val, dict):
            raise ReadError(f"the value of {key!r} must be an object")
        ckey = key.replace(" ", "")
        if ckey.startswith(("algorithm=", "composition=")):
            return {"kind": "container", "name": ckey.split("=", 1)[1],
                    "params": list(val)}
        node = {"kind": None, "val": None, "success": _parse(val), "failure": None}
        if ckey in _BOOL:
            node["kind"], node["val"] = _BOOL[ckey]
        elif ckey.startswith("collective="):
            name = ckey.split("=", 1)[1]
            if name not in MPICH_COLLECTIVES:
                raise ReadError(f"unknown collective {name!r}")
            node["kind"], node["val"] = "collective", name
        elif ckey in _EXACT:
            node["kind"] = _EXACT[ckey]
        elif any(ckey.startswith(p) for p, _ in _NUMERIC):
            prefix, kind = next((p, k) for p, k in _NUMERIC if ckey.startswith(p))
            node["kind"], node["val"] = kind, _atoi(ckey[len(prefix):])
        elif ckey == "any" or ckey.endswith("=any"):
            node["kind"] = "any"
        else:
            raise ReadError(f"unknown key {key!r}")
        if head is None:
            head = node
        else:
            prev["failure"] = node
        prev = node
    return head


def _validate(node) -> None:
    if node["kind"] == "container":
        return
    if node["success"] is None:
        raise ReadError("a key with an empty object: NULL success path (MPICH aborts)")
    _validate(node["success"])
    if node["kind"] == "any":
        if node["failure"] is not None:
            raise ReadError("an '=any' key must be the last of its object")
    elif (node["kind"] not in {k for k, _ in _BOOL.values()} | {"collective"}
          and node["failure"] is None):
        raise ReadError(f"a {node['kind']} test without a following key: NULL failure "
                        f"path (MPICH aborts)")
    if node["failure"] is not None:
        _validate(node["failure"])


def read_mpich(text: str) -> dict:
    """The parsed tree (nodes as dicts); raises where MPICH would abort at load."""
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ReadError(f"not JSON: {e}") from None
    tree = _parse(doc)
    if tree is None:
        raise ReadError("empty selection tree")
    _validate(tree)
    return tree


def _test(node, comm: dict, call: dict | None) -> bool | None:
    """The outcome of one operator node (None: not decidable without a call)."""
    k, v, p = node["kind"], node["val"], comm["size"]
    nodes = comm.get("nodes", 1)
    comm_tests = {
        "intra": lambda: True, "inter": lambda: False, "comm_le": lambda: p <= v,
        "comm_lt": lambda: p < v, "comm_pow2": lambda: p & (p - 1) == 0,
        "node_comm": lambda: nodes == 1, "parent": lambda: comm.get("parent", True) == v,
        "consecutive": lambda: v, "any": lambda: True, "ppn_le": lambda: p <= v * nodes,
        "ppn_lt": lambda: p < v * nodes}
    if k in comm_tests:
        return comm_tests[k]()
    if call is None:
        return None
    if k == "collective":
        return call["collective"] == v
    if k == "threaded":
        return v is False
    pof2 = 1 << (p.bit_length() - 1)
    tests = {"avg_le": lambda: call["avg"] <= v, "avg_lt": lambda: call["avg"] < v,
             "total_le": lambda: call["total"] <= v, "total_lt": lambda: call["total"] < v,
             "count_le": lambda: call["count"] <= v,
             "count_lt_pow2": lambda: call["count"] < pof2,
             "commutative": lambda: call.get("commutative", True) == v,
             "builtin": lambda: call.get("builtin", True) == v,
             "inplace": lambda: call.get("inplace", False) == v, "regular": lambda: bool(v)}
    return tests[k]()


def select_mpich(tree, comm_size: int, collective: str, nbytes: int, itemsize: int = 4,
                 commutative: bool = True, builtin: bool = True) -> str:
    """The container MPICH's search reaches for a call of ``collective`` on ``nbytes`` (the
    full vector) on an intra communicator of ``comm_size`` ranks; ReadError where MPICH
    would find none (it asserts)."""
    comm = {"size": comm_size}
    count_total = nbytes // itemsize
    count = {"allreduce": count_total, "allgather": count_total // comm_size,
             "reduce_scatter": count_total}.get(collective, count_total)
    call = {"collective": collective, "avg": nbytes if collective == "allreduce"
            else nbytes // comm_size, "total": nbytes, "count": count,
            "commutative": commutative, "builtin": builtin}
    node = tree
    while node is not None and node["kind"] != "container":
        node = node["success"] if _test(node, comm, call) else node["failure"]
    if node is None:
        raise ReadError(f"no algorithm for {collective} on {comm_size} ranks, {nbytes} B "
                        f"(MPICH asserts)")
    return node["name"]


def mpich_collectives(tree) -> list[str]:
    """The collectives a communicator's pruned tree covers, as MPIR_Csel_prune finds them."""
    comm = {"size": 4}
    node = tree
    while node is not None and node["kind"] in _COMM_KINDS:
        node = node["success"] if _test(node, comm, None) else node["failure"]
    out = []
    while node is not None:
        if node["kind"] != "collective":
            raise ReadError(f"expected a collective= key after pruning, got {node['kind']}")
        out.append(node["val"])
        node = node["failure"]
    return out


# ----------------------------------------------------------------------------- NCCL

NCCL_COLLS = ("broadcast", "reduce", "allgather", "reducescatter", "allreduce")
NCCL_ALGOS = ("tree", "ring", "collnet_direct", "collnet_chain", "nvls", "nvls_tree", "pat")
NCCL_PROTOS = ("ll", "ll128", "simple")


def read_nccl(text: str) -> list[dict]:
    """The example plugin's configs, in file order; a name the plugin would silently replace
    by its default (allreduce, ring, simple) is a ReadError here."""
    configs = []
    raw = text.encode()
    pos = 0
    while pos < len(raw):  # fgets(line, 256, file)
        nl = raw.find(b"\n", pos)
        end = len(raw) if nl < 0 else nl + 1
        end = min(end, pos + 255)
        line = raw[pos:end].decode()
        pos = end
        if line.startswith("#") or line.startswith("\n"):
            continue
        line = line.split("\n")[0]
        if not line:
            continue
        tokens = [t.strip(" \t") for t in line.split(",") if t != ""][:10]  # strtok
        if not 8 <= len(tokens) <= 10:
            continue  # the plugin skips such a line
        coll, lo, hi, algo, proto = tokens[:5]
        if coll not in NCCL_COLLS or algo not in NCCL_ALGOS or proto not in NCCL_PROTOS:
            raise ReadError(f"name the plugin does not know in {line!r}")
        if not (lo.isdigit() and hi.isdigit()):
            raise ReadError(f"bounds must be unsigned integers: {line!r}")
        configs.append({"coll": coll, "min": int(lo), "max": min(int(hi), 2**64 - 1),
                        "algorithm": algo, "protocol": proto, "channels": int(tokens[5]),
                        "nodes": int(tokens[6]), "ranks": int(tokens[7]),
                        "pipeops": int(tokens[8]) if len(tokens) > 8 else -1,
                        "regbuff": int(tokens[9]) if len(tokens) > 9 else -1})
    return configs


def select_nccl(configs, coll: str, nbytes: int, nranks: int, nnodes: int) -> dict | None:
    """The first config matching the call (pluginGetCollInfo), or None."""
    for c in configs:
        if (c["coll"] == coll and c["min"] <= nbytes <= c["max"]
                and c["nodes"] in (-1, nnodes) and c["ranks"] in (-1, nranks)):
            return c
    return None
