"""What-if studies declared as data (TOML), validated into plain dataclasses.

A study names a collective, algorithms, sizes, a model, and topologies; each topology may
declare variations (``[topology.vary]``): one run per value, the cross product when several
keys vary. Values are data only (numbers and unit strings); nothing in the file is evaluated.

    title = "Inter-node bandwidth what-if"
    collective = "allreduce"
    algorithms = ["ring", "rabenseifner", "double-binary-tree", "hierarchical"]
    sizes = "1K:1G"                   # or a list: ["1K", "64M"]; factor 2 unless "1K:1G:4"
    model = "contention"              # hockney | contention | loggp

    [[topology]]
    name = "4 nodes x 8 GPUs"
    kind = "gpu-cluster"
    nodes = 4
    gpus_per_node = 8
    vary.bandwidth = ["25GB/s", "50GB/s"]

What-ifs are keys of a ``[[topology]]`` table too (see :data:`WHATIF_KEYS` and
docs/studies.md), and vary like any other: ``late = "20us"`` with ``late_rank = 3``,
``vary.late = ["0us", "10us", "100us"]``, ``vary.late_rank = "each"`` (every rank in turn),
``skew = "5us"`` (seeded random arrival skew, ``skew_dist = "normal" | "exponential"``,
``vary.skew_seed = [0, 1, 2]``), ``degrade = 0.5`` with ``degrade_target = "12"`` (a node: a
slow NIC) or ``"12,40"`` (a link), ``fail_link = ["0,1"]``, ``slow_reduce = 2.0`` with
``slow_reduce_rank = 0``. Study-wide ``routing`` and ``sharing`` choose the routing policy and
the contention model's sharing.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

import topologies
from collectives.registry import algorithms as known_algorithms
from collectives.registry import canonical_collective
from topologies.units import parse_bytes, parse_time

__all__ = ["TOPOLOGY_KINDS", "WHATIF_KEYS", "Study", "StudyError", "TopologySpec", "WhatIf",
           "dump_study", "load_study", "parse_sizes", "parse_study"]

TOPOLOGY_KINDS = {
    "fully-connected": topologies.fully_connected,
    "ring": topologies.ring,
    "torus": topologies.torus,
    "switch": topologies.switch,
    "fat-tree": topologies.fat_tree,
    "dragonfly": topologies.dragonfly,
    "gpu-cluster": topologies.gpu_cluster,
}
MODELS = ("hockney", "contention", "loggp")
_STUDY_KEYS = {"title", "collective", "algorithms", "sizes", "model", "topology", "options",
               "map_ranks", "dtype", "routing", "sharing"}
#: What-if keys of a [[topology]] table (each may also be varied: vary.KEY = [values]).
WHATIF_KEYS = {
    "arrival": "per-rank entry times, one per rank: [\"0us\", \"5us\", ...]",
    "late": "lateness of late_rank (a time), or a table {rank = time}",
    "late_rank": "the late rank (default 0); vary.late_rank = \"each\" tries every rank",
    "skew": "random arrival skew: sigma (normal) or mean (exponential), a time",
    "skew_dist": "\"normal\" (default; shifted so the first rank arrives at 0) or "
                 "\"exponential\"",
    "skew_seed": "seed of the skew draw (default 0)",
    "degrade": "bandwidth factor of degrade_target (> 0), or a table {\"NODE\" or "
               "\"U,V\" = factor}",
    "degrade_target": "the node (a slow NIC) or link \"U,V\" that degrade applies to",
    "fail_link": "links removed: \"U,V\" or a list of them",
    "slow_reduce": "factor on gamma at slow_reduce_rank (> 0), or a table {rank = factor}",
    "slow_reduce_rank": "the rank with the slow reduction (default 0)",
}
_SKEWS = ("normal", "exponential")


def _close(name: str, known) -> str:
    """``; did you mean X?`` for a misspelt key, or nothing."""
    got = difflib.get_close_matches(str(name), list(known), n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(got)}?" if got else ""


@dataclass(frozen=True)
class WhatIf:
    """One variation's what-ifs, resolved for ``nranks`` ranks: per-rank arrival times (None:
    all at 0), the gamma factor per rank, and the graph changes (targets as the user wrote
    them, resolved against the graph by :func:`sim.api.whatif_topology`)."""

    arrival: tuple[float, ...] | None = None
    reduce_scale: dict = field(default_factory=dict)
    degrade: dict = field(default_factory=dict)
    fail_links: tuple[str, ...] = ()

    def graph_changes(self, G) -> tuple[dict, list]:
        """``(degrade, fail_links)`` with their targets resolved against ``G``."""
        from topologies.whatif import parse_link, parse_node

        deg = {(parse_link(G, k, "degrade") if "," in str(k) else parse_node(G, k, "degrade")):
               f for k, f in self.degrade.items()}
        return deg, [parse_link(G, t, "fail_link") for t in self.fail_links]


def _time_value(v, where: str) -> float:
    try:
        t = parse_time(v) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        t = math.nan
    if isinstance(v, bool) or not (math.isfinite(t) and t >= 0):
        raise StudyError(f"{where}: expected a time >= 0 such as \"10us\", got {v!r}")
    return t


def _rank_value(v, nranks: int, where: str) -> int:
    try:
        r = int(v) if not isinstance(v, bool | float) else -1
    except (TypeError, ValueError):
        r = -1
    if not 0 <= r < nranks:
        raise StudyError(f"{where}: rank {v!r} out of range 0..{nranks - 1}")
    return r


def _factor_value(v, where: str) -> float:
    try:
        f = float(v) if not isinstance(v, bool) else math.nan
    except (TypeError, ValueError):
        f = math.nan
    if not (math.isfinite(f) and f > 0):
        raise StudyError(f"{where}: expected a factor > 0, got {v!r}")
    return f


def resolve_whatif(values: dict, nranks: int, where: str = "topology") -> WhatIf:
    """The :class:`WhatIf` of one variation's what-if keys (:data:`WHATIF_KEYS`) on ``nranks``
    ranks; every bad value is a :class:`StudyError` naming the key.

    >>> w = resolve_whatif({"late": "10us", "late_rank": 2}, 4)
    >>> w.arrival
    (0.0, 0.0, 1e-05, 0.0)
    >>> resolve_whatif({"skew": "1us", "skew_seed": 3}, 4).arrival[:2] != (0.0, 0.0)
    True
    """
    import numpy as np

    arrival = np.zeros(nranks)
    timed = False
    if values.get("arrival") is not None:
        raw = values["arrival"]
        if not isinstance(raw, list) or len(raw) != nranks:
            raise StudyError(f"{where}.arrival: expected a list of {nranks} times (one per "
                             f"rank), got {raw!r}")
        arrival += [_time_value(v, f"{where}.arrival[{i}]") for i, v in enumerate(raw)]
        timed = True
    skew = values.get("skew")
    if skew is not None:
        scale = _time_value(skew, f"{where}.skew")
        dist = values.get("skew_dist", "normal")
        if dist not in _SKEWS:
            raise StudyError(f"{where}.skew_dist: got {dist!r}; use one of {', '.join(_SKEWS)}")
        seed = values.get("skew_seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise StudyError(f"{where}.skew_seed: expected an integer >= 0, got {seed!r}")
        rng = np.random.default_rng(seed)
        draw = rng.normal(0.0, scale, nranks) if dist == "normal" else \
            rng.exponential(scale, nranks)
        arrival += draw - draw.min() if dist == "normal" else draw
        timed = True
    late = values.get("late")
    if late is not None:
        pairs = late.items() if isinstance(late, dict) else [(values.get("late_rank", 0), late)]
        for r, t in pairs:
            arrival[_rank_value(r, nranks, f"{where}.late_rank")] += \
                _time_value(t, f"{where}.late")
        timed = True
    slow = values.get("slow_reduce")
    scale_of: dict = {}
    if slow is not None:
        pairs = slow.items() if isinstance(slow, dict) else \
            [(values.get("slow_reduce_rank", 0), slow)]
        scale_of = {_rank_value(r, nranks, f"{where}.slow_reduce_rank"):
                    _factor_value(f, f"{where}.slow_reduce") for r, f in pairs}
    deg = values.get("degrade")
    degrade: dict = {}
    if deg is not None:
        if isinstance(deg, dict):
            pairs = deg.items()
        else:
            target = values.get("degrade_target")
            if target is None:
                raise StudyError(f"{where}.degrade: a bare factor needs degrade_target "
                                 f"(\"NODE\" or \"U,V\"), or write a table {{\"NODE\" = "
                                 f"factor}}")
            pairs = [(target, deg)]
        degrade = {str(k): _factor_value(f, f"{where}.degrade") for k, f in pairs}
    fail = values.get("fail_link") or []
    fail = [fail] if isinstance(fail, str) else fail
    if not isinstance(fail, list) or not all(isinstance(t, str) for t in fail):
        raise StudyError(f"{where}.fail_link: expected \"U,V\" or a list of them, got "
                         f"{fail!r}")
    return WhatIf(tuple(arrival.tolist()) if timed else None, scale_of, degrade,
                  tuple(t for t in fail if t.strip()))


class StudyError(ValueError):
    """A study file is malformed; the message names the key and what is accepted."""


def parse_sizes(spec, where: str = "sizes") -> list[int]:
    """``"1K:1G"`` (factor 2), ``"8:64M:4"`` (factor 4), or a list of sizes -> byte counts.

    >>> parse_sizes("1K:8K")
    [1024, 2048, 4096, 8192]
    """
    try:
        if isinstance(spec, str) and ":" in spec:
            parts = spec.split(":")
            if len(parts) not in (2, 3):
                raise ValueError("use MIN:MAX or MIN:MAX:FACTOR")
            lo, hi = parse_bytes(parts[0]), parse_bytes(parts[1])
            factor = int(parts[2]) if len(parts) == 3 else 2
            if factor < 2 or lo < 1 or hi < lo:
                raise ValueError("need 1 <= MIN <= MAX and FACTOR >= 2")
            out = []
            s = lo
            while s <= hi:
                out.append(s)
                s *= factor
            return out
        if isinstance(spec, str):
            spec = spec.split(",")
        if isinstance(spec, int):
            spec = [spec]
        out = [parse_bytes(x) for x in spec]
        if not out:
            raise ValueError("no sizes given")
        return sorted(set(out))
    except (ValueError, TypeError) as e:
        raise StudyError(f"{where}: cannot use {spec!r} ({e}); write \"1K:1G\", \"8:64M:4\" or "
                         f"a list such as [\"1K\", \"64M\"]") from None


@dataclass(frozen=True)
class TopologySpec:
    """One topology and its parameters; ``vary`` lists the values of each varied parameter."""

    name: str
    kind: str
    params: dict
    vary: dict = field(default_factory=dict)
    ranks: int | None = None

    def variations(self) -> list[tuple[str, dict]]:
        """(label, parameters) for every combination of the varied values."""
        if not self.vary:
            return [(self.name, dict(self.params))]
        keys = sorted(self.vary)
        out = []
        for combo in itertools.product(*(self.vary[k] for k in keys)):
            params = {**self.params, **dict(zip(keys, combo, strict=True))}
            label = ", ".join(f"{k}={v}" for k, v in zip(keys, combo, strict=True))
            out.append((f"{self.name} [{label}]", params))
        return out

    def build(self, params: dict | None = None) -> nx.Graph:
        """The topology graph for ``params`` (default: the base parameters; what-if keys are
        not the generator's and are left out: see :meth:`whatif`)."""
        params = self.params if params is None else params
        return TOPOLOGY_KINDS[self.kind](**{k: v for k, v in params.items()
                                            if k not in WHATIF_KEYS})

    def whatif(self, params: dict, nranks: int, where: str | None = None) -> WhatIf:
        """The what-ifs of one variation's ``params`` on ``nranks`` ranks."""
        return resolve_whatif({k: v for k, v in params.items() if k in WHATIF_KEYS}, nranks,
                              where or f"topology {self.name!r}")

    @property
    def varied_whatifs(self) -> list[str]:
        """The what-if keys this topology varies, in :data:`WHATIF_KEYS` order."""
        return [k for k in WHATIF_KEYS if k in self.vary]


@dataclass(frozen=True)
class Study:
    title: str
    collective: str
    algorithms: tuple[str, ...]
    sizes: tuple[int, ...]
    model: str
    topologies: tuple[TopologySpec, ...]
    options: dict = field(default_factory=dict)  # algorithm -> builder options
    map_ranks: tuple[int, ...] = ()
    dtype: str = "float32"
    routing: str | None = None  # routing policy, passed to simulate(routing=...)
    sharing: str | None = None  # "fair" | "rtt": Contention(sharing=...)


def _fail(where: str, msg: str) -> StudyError:
    return StudyError(f"{where}: {msg}")


def _topology(i: int, raw, coll: str) -> TopologySpec:
    where = f"topology[{i}]"
    if not isinstance(raw, dict):
        raise _fail(where, "must be a table ([[topology]])")
    raw = dict(raw)
    kind = raw.pop("kind", None)
    if kind not in TOPOLOGY_KINDS:
        raise _fail(f"{where}.kind", f"got {kind!r}; use one of {', '.join(TOPOLOGY_KINDS)}")
    name = str(raw.pop("name", kind))
    ranks = raw.pop("ranks", None)
    if ranks is not None and (not isinstance(ranks, int) or ranks < 1):
        raise _fail(f"{where}.ranks", f"must be a positive integer, got {ranks!r}")
    vary = raw.pop("vary", {})
    if not isinstance(vary, dict):
        raise _fail(f"{where}.vary", "must be a table of parameter = [values]")
    accepted = list(inspect.signature(TOPOLOGY_KINDS[kind]).parameters)
    for k in [*raw, *vary]:
        if k not in accepted and k not in WHATIF_KEYS:
            known = [*accepted, *WHATIF_KEYS]
            raise _fail(f"{where}{'.vary' if k in vary else ''}.{k}",
                        f"kind {kind!r} takes no parameter {k}"
                        f"{_close(k, known)} (parameters: {', '.join(accepted)}; what-ifs: "
                        f"{', '.join(WHATIF_KEYS)})")
    each_rank = vary.get("late_rank") == "each"
    for k, v in vary.items():
        if (not isinstance(v, list) or not v) and not (k == "late_rank" and each_rank):
            raise _fail(f"{where}.vary.{k}", f"expected a non-empty list of values, got {v!r}"
                        + (' (or "each")' if k == "late_rank" else ""))
    if each_rank:
        n = ranks or sum(1 for _, k in TopologySpec(name, kind, raw).build()
                         .nodes(data="kind") if k == "endpoint")
        vary["late_rank"] = list(range(n))
    spec = TopologySpec(name, kind, raw, {k: list(v) for k, v in vary.items()}, ranks)
    # Build every variation now, so a bad parameter is reported against the file, not mid-run.
    for label, params in spec.variations():
        try:
            G = spec.build(params)
        except TypeError:
            accepted = list(inspect.signature(TOPOLOGY_KINDS[kind]).parameters)
            bad = sorted(set(params) - set(accepted))
            raise _fail(where, f"kind {kind!r} takes no parameter {', '.join(bad) or '?'}; "
                               f"accepted: {', '.join(accepted)}") from None
        except ValueError as e:
            raise _fail(where, f"{label}: {e}") from None
        n_end = sum(1 for _, k in G.nodes(data="kind") if k == "endpoint")
        if ranks is not None and ranks > n_end:
            raise _fail(f"{where}.ranks", f"{ranks} ranks but {label} has {n_end} endpoints")
        if any(k in WHATIF_KEYS for k in params):
            w = spec.whatif(params, ranks or n_end, f"{where} ({label})")
            try:
                w.graph_changes(G)
            except ValueError as e:
                raise _fail(where, f"{label}: {e}") from None
    return spec


def parse_study(data: dict, where: str = "study") -> Study:
    """Validate a parsed TOML document into a :class:`Study`."""
    unknown = sorted(set(data) - _STUDY_KEYS)
    if unknown:
        hint = _close(unknown[0], _STUDY_KEYS)
        if not hint and unknown[0] in WHATIF_KEYS:
            hint = f"; {unknown[0]} is a what-if: put it in a [[topology]] table"
        raise _fail(where, f"unknown key(s) {', '.join(unknown)}{hint} (known: "
                           f"{', '.join(sorted(_STUDY_KEYS))})")
    try:
        coll = canonical_collective(data.get("collective", "allreduce"))
    except ValueError as e:
        raise _fail(f"{where}.collective", str(e)) from None
    algos = data.get("algorithms", known_algorithms(coll))
    if isinstance(algos, str):
        algos = [a.strip() for a in algos.split(",")]
    if not isinstance(algos, list) or not algos:
        raise _fail(f"{where}.algorithms", "expected a non-empty list of algorithm names")
    valid = known_algorithms(coll)
    for a in algos:
        if a not in valid:
            raise _fail(f"{where}.algorithms", f"unknown algorithm {a!r} for {coll}; known: "
                                               f"{', '.join(valid)}")
    sizes = parse_sizes(data.get("sizes", "1K:1G"), f"{where}.sizes")
    model = data.get("model", "contention")
    if model not in MODELS:
        raise _fail(f"{where}.model", f"got {model!r}; use one of {', '.join(MODELS)}")
    raw_topos = data.get("topology")
    if not isinstance(raw_topos, list) or not raw_topos:
        raise _fail(f"{where}.topology", "declare at least one [[topology]] table")
    topos = tuple(_topology(i, t, coll) for i, t in enumerate(raw_topos))
    options = data.get("options", {})
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise _fail(f"{where}.options", "expected tables such as [options.double-binary-tree]")
    for a in options:
        if a not in valid:
            raise _fail(f"{where}.options.{a}", f"not an algorithm of {coll}")
    map_ranks = data.get("map_ranks", [])
    if not isinstance(map_ranks, list) or not all(isinstance(p, int) and p >= 1
                                                  for p in map_ranks):
        raise _fail(f"{where}.map_ranks", f"expected a list of positive integers, got "
                                          f"{map_ranks!r}")
    routing = data.get("routing")
    if routing is not None and not isinstance(routing, str):
        raise _fail(f"{where}.routing", f"expected a routing policy name, got {routing!r}")
    sharing = data.get("sharing")
    if sharing is not None and sharing not in ("fair", "rtt"):
        raise _fail(f"{where}.sharing", f"got {sharing!r}; use \"fair\" or \"rtt\"")
    return Study(str(data.get("title", "What-if study")), coll, tuple(algos), tuple(sizes),
                 model, topos, {a: dict(o) for a, o in options.items()}, tuple(map_ranks),
                 str(data.get("dtype", "float32")), routing, sharing)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(x)}"
                               for k, x in v.items()) + "}"
    raise StudyError(f"cannot write {v!r} to a study file")


def dump_study(study: Study) -> str:
    """The study as TOML that :func:`parse_study` reads back to an equal :class:`Study`."""
    lines = [f"title = {_toml_value(study.title)}",
             f"collective = {_toml_value(study.collective)}",
             f"algorithms = {_toml_value(list(study.algorithms))}",
             f"sizes = {_toml_value(list(study.sizes))}",
             f"model = {_toml_value(study.model)}",
             f"dtype = {_toml_value(study.dtype)}"]
    if study.map_ranks:
        lines.append(f"map_ranks = {_toml_value(list(study.map_ranks))}")
    lines += [f"{k} = {_toml_value(getattr(study, k))}" for k in ("routing", "sharing")
              if getattr(study, k) is not None]
    for algo, opts in study.options.items():
        lines.append(f"\n[options.{algo}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in opts.items()]
    for t in study.topologies:
        lines += ["\n[[topology]]", f"name = {_toml_value(t.name)}",
                  f"kind = {_toml_value(t.kind)}"]
        if t.ranks is not None:
            lines.append(f"ranks = {t.ranks}")
        lines += [f"{k} = {_toml_value(v)}" for k, v in t.params.items()]
        lines += [f"vary.{k} = {_toml_value(v)}" for k, v in t.vary.items()]
    return "\n".join(lines) + "\n"


def load_study(path: str | Path) -> Study:
    """Read and validate a study file (TOML)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise StudyError(f"{path}: no such study file") from None
    except tomllib.TOMLDecodeError as e:
        raise StudyError(f"{path}: not valid TOML: {e}") from None
    return parse_study(data, where=str(path))
