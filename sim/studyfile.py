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
"""

from __future__ import annotations

import inspect
import itertools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

import topologies
from collectives.registry import algorithms as known_algorithms
from collectives.registry import canonical_collective
from topologies.units import parse_bytes

__all__ = ["TOPOLOGY_KINDS", "Study", "StudyError", "TopologySpec", "dump_study", "load_study",
           "parse_sizes", "parse_study"]

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
               "map_ranks", "dtype"}


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
        """The topology graph for ``params`` (default: the base parameters)."""
        return TOPOLOGY_KINDS[self.kind](**(self.params if params is None else params))


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
    for k, v in vary.items():
        if not isinstance(v, list) or not v:
            raise _fail(f"{where}.vary.{k}", f"expected a non-empty list of values, got {v!r}")
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
    return spec


def parse_study(data: dict, where: str = "study") -> Study:
    """Validate a parsed TOML document into a :class:`Study`."""
    unknown = sorted(set(data) - _STUDY_KEYS)
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(unknown)}; known: "
                           f"{', '.join(sorted(_STUDY_KEYS))}")
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
    return Study(str(data.get("title", "What-if study")), coll, tuple(algos), tuple(sizes),
                 model, topos, {a: dict(o) for a, o in options.items()}, tuple(map_ranks),
                 str(data.get("dtype", "float32")))


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
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
