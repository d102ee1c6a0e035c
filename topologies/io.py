"""Load, save and validate topology graphs.

A topology file is a graph in node-link JSON (``.json``, as written by ``nx.node_link_data``;
the link list may be called ``"links"`` or ``"edges"``) or GraphML (``.graphml``) that follows
the conventions of :mod:`topologies.generators`:

* every link has ``bandwidth`` (bytes/s per direction, > 0) and ``latency`` (s, >= 0); human
  units such as ``"100Gbps"`` or ``"2us"`` are accepted and converted to numbers on load;
* every node has ``kind`` ``"endpoint"`` (ranks sit on it) or ``"switch"``. A graph where *no*
  node has a ``kind`` is a direct network: every node is an endpoint. A graph where some nodes
  have a ``kind`` must give it to all of them;
* a link may carry ``duplex``: ``"full"`` (the default: each direction has the whole
  ``bandwidth``) or ``"half"`` (both directions share one ``bandwidth``, as a shared bus or
  SimGrid's SHARED links);
* the graph is undirected and every endpoint reaches every other;
* parallel links are separate cables: a ``nx.MultiGraph``, or in node-link JSON the same
  pair listed twice (read as a multigraph whether or not the file says
  ``"multigraph": true``; GraphML with parallel edges reads as one too).

See ``docs/topology-files.md`` for the whole format.

Node ids that look like integers (GraphML stores every id as a string) are loaded as ints.
"""

from __future__ import annotations

import contextlib
import gc
import json
import numbers
import re
from pathlib import Path

import networkx as nx
import numpy as np

from .units import parse_bandwidth, parse_time

__all__ = ["load", "save", "validate"]

KINDS = ("endpoint", "switch")
_INT = re.compile(r"^[+-]?\d+$")


def sorted_nodes(nodes) -> list:
    """Node labels (a graph or an iterable of labels) in sorted order; labels of mixed types
    sort by type name, then ``str``."""
    nodes = list(nodes)
    try:
        return sorted(nodes)
    except TypeError:
        return sorted(nodes, key=lambda v: (type(v).__name__, str(v)))


def node_kinds(G: nx.Graph) -> dict:
    """``{node: kind}`` with the default rule applied; raises ``ValueError`` on a bad kind."""
    kinds = dict(G.nodes(data="kind"))
    if all(k is None for k in kinds.values()):
        return dict.fromkeys(kinds, "endpoint")
    for v, k in kinds.items():
        if k is None:
            raise ValueError(
                f"node {v!r} has no 'kind' attribute: set kind='endpoint' (ranks sit on it) "
                "or kind='switch' (only a graph where no node has a kind makes every node an "
                "endpoint)"
            )
        if k not in KINDS:
            raise ValueError(
                f"node {v!r} has kind {k!r}: kind must be 'endpoint' or 'switch'"
            )
    return kinds


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector: building millions of small tuples next to a big
    graph otherwise triggers full collections that walk every dict of the graph."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _edges(G: nx.Graph) -> list:
    """``[(u, v, data), ...]``, each link once (each parallel link of a multigraph), in
    adjacency order; faster than ``G.edges(data=True)`` on big graphs."""
    order = {v: i for i, v in enumerate(G)}
    adj = G._adj  # the plain dict-of-dicts: G.adj's read-only views are ~10x slower to walk
    if G.is_multigraph():
        return [(u, v, d) for u, nbrs in adj.items() for v, keyed in nbrs.items()
                if order[v] >= order[u] for d in keyed.values()]
    return [(u, v, d) for u, nbrs in adj.items() for v, d in nbrs.items()
            if order[v] >= order[u]]


def link_value(u, v, data: dict, attr: str) -> float:
    """A link's ``bandwidth`` or ``latency`` as a float, with an error that names the link."""
    if attr not in data:
        example = "bandwidth=25e9 or '200Gbps'" if attr == "bandwidth" else "latency=1e-6 or '1us'"
        unit = "bytes/s per direction" if attr == "bandwidth" else "seconds"
        raise ValueError(
            f"link ({u!r}, {v!r}) has no {attr!r} attribute: give it {unit}, e.g. {example}"
        )
    try:
        return (parse_bandwidth if attr == "bandwidth" else parse_time)(data[attr])
    except ValueError as e:
        raise ValueError(f"link ({u!r}, {v!r}): {attr} {data[attr]!r}: {e}") from None


def validate(G: nx.Graph) -> None:
    """Check that ``G`` is a usable topology; raise ``ValueError`` naming what is wrong.

    Checks: undirected; every node's ``kind`` (see the module docstring); at least one
    endpoint; no self-loops; every link has a positive ``bandwidth`` and a non-negative
    ``latency`` (numbers or human-unit strings); every endpoint reaches every other.

    Examples
    --------
    >>> import networkx as nx
    >>> G = nx.path_graph(3)
    >>> nx.set_edge_attributes(G, 1e9, "bandwidth")
    >>> validate(G)
    Traceback (most recent call last):
    ...
    ValueError: link (0, 1) has no 'latency' attribute: give it seconds, e.g. latency=1e-6 or '1us'
    """
    with gc_paused():
        checked_links(G)


def _link_values(edges: list, attr: str) -> np.ndarray:
    raw = [d.get(attr) for _, _, d in edges]
    if all(type(x) is float or type(x) is int for x in raw):  # the common case, vectorised
        values = np.array(raw, dtype=np.float64)
        ok = np.isfinite(values) & ((values > 0) if attr == "bandwidth" else (values >= 0))
        if ok.all():
            return values
        u, v, data = edges[int(np.flatnonzero(~ok)[0])]
        link_value(u, v, data, attr)  # raises with the link named
    return np.array([link_value(u, v, d, attr) for u, v, d in edges], dtype=np.float64)


DUPLEX = ("full", "half")


def _half_duplex(edges: list) -> np.ndarray:
    """Per link: is it half duplex? Raises ``ValueError`` naming a link whose ``duplex`` is
    neither ``"full"`` nor ``"half"``."""
    half = np.zeros(len(edges), dtype=bool)
    for i, (u, v, d) in enumerate(edges):
        x = d.get("duplex")
        if x is None or x == "full":
            continue
        if x != "half":
            raise ValueError(
                f"link ({u!r}, {v!r}) has duplex {x!r}: duplex must be 'full' (each direction "
                "has the whole bandwidth, the default) or 'half' (both directions share it)"
            )
        half[i] = True
    return half


def checked_links(G: nx.Graph) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`validate` ``G`` and return its links: ``[(u, v), ...]`` (multigraph: one per
    parallel link), bandwidths and latencies as float arrays, and a bool array marking the
    half-duplex links."""
    if not isinstance(G, nx.Graph):
        raise ValueError(f"a topology is a networkx Graph, got {type(G).__name__}")
    if G.is_directed():
        raise ValueError(
            "topology graphs are undirected (each link is full duplex): use nx.Graph, "
            'or "directed": false in node-link JSON / edgedefault="undirected" in GraphML'
        )
    kinds = node_kinds(G)
    ends = [v for v in sorted_nodes(G) if kinds[v] == "endpoint"]
    if not ends:
        raise ValueError("topology has no endpoints: mark the nodes ranks sit on kind='endpoint'")
    loop = next(iter(nx.selfloop_edges(G)), None)
    if loop is not None:
        raise ValueError(f"link ({loop[0]!r}, {loop[1]!r}) is a self-loop: remove it")
    edges = _edges(G)
    bandwidth = _link_values(edges, "bandwidth")
    latency = _link_values(edges, "latency")
    half = _half_duplex(edges) if any("duplex" in d for _, _, d in edges) else np.zeros(
        len(edges), dtype=bool)
    reach = nx.node_connected_component(G, ends[0])
    if len(reach) < len(G) and any(v not in reach for v in ends):
        # name the endpoints outside the part that holds most of them
        kind_end = set(ends)
        main = max(nx.connected_components(G), key=lambda c: len(kind_end & c))
        first = next(v for v in ends if v in main)
        cut = [v for v in ends if v not in main]
        names = ", ".join(map(repr, cut[:8])) + (f" and {len(cut) - 8} more"
                                                 if len(cut) > 8 else "")
        raise ValueError(
            f"no route from endpoint {first!r} to endpoint{'s' if len(cut) > 1 else ''} "
            f"{names}: cut off (a failed or missing link); every endpoint must reach every "
            "other: add a link or remove the endpoint"
        )
    return [(u, v) for u, v, _ in edges], bandwidth, latency, half


# --------------------------------------------------------------------------- files


def _normalize(G: nx.Graph) -> nx.Graph:
    """Int-like ids to ints, unit strings to numbers, JSON-encoded graph attributes decoded."""
    mapping = {v: int(v) for v in G if isinstance(v, str) and _INT.match(v.strip())}
    if mapping:
        if len(set(mapping.values())) < len(mapping) or any(
            m in G and m not in mapping for m in mapping.values()
        ):
            raise ValueError("node ids clash once read as integers (e.g. '1' and '01')")
        G = nx.relabel_nodes(G, mapping, copy=True)
    for u, v, data in _edges(G):
        for attr in ("bandwidth", "latency"):
            if isinstance(data.get(attr), str):
                data[attr] = link_value(u, v, data, attr)
    for key, value in list(G.graph.items()):
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                G.graph[key] = json.loads(value)
    return G


def _node_link_graph(data: dict, edges: str) -> nx.Graph:
    # A pair listed twice is two cables: read it as a multigraph, whatever "multigraph"
    # says, rather than let a plain Graph merge them into one (half the capacity, no word).
    multi = bool(data.get("multigraph")) or _has_parallel(data[edges])
    data = dict(data, multigraph=multi)  # the file's own "multigraph" would win otherwise
    try:
        return nx.node_link_graph(data, directed=False, multigraph=multi, edges=edges)
    except TypeError:  # networkx < 3.4
        return nx.node_link_graph(data, directed=False, multigraph=multi, link=edges)


def _has_parallel(links) -> bool:
    """Does a node-link link list name some unordered pair twice?"""
    seen = set()
    for e in links:
        if not isinstance(e, dict) or "source" not in e or "target" not in e:
            return False  # malformed: node_link_graph says what is wrong
        a, b = e["source"], e["target"]
        try:
            pair = frozenset((json.dumps(a, sort_keys=True), json.dumps(b, sort_keys=True)))
        except TypeError:
            return False
        if pair in seen:
            return True
        seen.add(pair)
    return False


def _node_link_data(G: nx.Graph) -> dict:
    try:
        return nx.node_link_data(G, edges="links")
    except TypeError:  # networkx < 3.4
        return nx.node_link_data(G, link="links")


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"cannot write {type(x).__name__} {x!r} to JSON")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".json", ".graphml"):
        raise ValueError(
            f"cannot tell the format of {str(path)!r}: use a .json (node-link) or .graphml file"
        )
    return suffix


def load(path) -> nx.Graph:
    """Read a topology from node-link JSON (``.json``) or GraphML (``.graphml``) and validate it.

    Human-unit strings in ``bandwidth``/``latency`` become numbers, node ids that look like
    integers become ints, and ``G.graph["params"]`` stored as a JSON string is decoded.

    Examples
    --------
    >>> import json, os, tempfile
    >>> doc = {"nodes": [{"id": 0}, {"id": 1}],
    ...        "links": [{"source": 0, "target": 1, "bandwidth": "100Gbps", "latency": "2us"}]}
    >>> path = os.path.join(tempfile.mkdtemp(), "pair.json")
    >>> with open(path, "w") as f:
    ...     json.dump(doc, f)
    >>> G = load(path)
    >>> G.edges[0, 1]
    {'bandwidth': 12500000000.0, 'latency': 2e-06}
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".json":
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{str(path)!r} is not valid JSON: {e}") from None
        if not isinstance(data, dict) or "nodes" not in data:
            raise ValueError(
                f"{str(path)!r} is not node-link JSON: expected an object with \"nodes\" and "
                '"links" (or "edges") lists, as written by networkx.node_link_data'
            )
        if data.get("directed"):
            validate(nx.DiGraph())  # raises the undirected-graph error
        key = "edges" if "edges" in data and "links" not in data else "links"
        data = dict(data)
        data.setdefault(key, [])
        try:
            G = _node_link_graph(data, key)
        except (KeyError, TypeError, nx.NetworkXError) as e:
            raise ValueError(f"{str(path)!r}: malformed node-link JSON ({e!r})") from None
    else:
        try:
            G = nx.read_graphml(path)
        except Exception as e:  # ElementTree and networkx raise a zoo of types
            raise ValueError(f"{str(path)!r}: cannot read GraphML ({e})") from None
        for key in ("node_default", "edge_default"):  # added by read_graphml
            if G.graph.get(key) == {}:
                del G.graph[key]
    G = _normalize(G)
    validate(G)
    return G


def save(G: nx.Graph, path) -> None:
    """Write ``G`` as node-link JSON (``.json``) or GraphML (``.graphml``).

    GraphML holds only scalar graph attributes, so others (``params``) are stored as JSON
    strings, which :func:`load` decodes. A generator's ``family`` and ``params`` travel with
    the file, so the loaded graph routes as the generator's does (a file without them has its
    structure recognised from its links: docs/topology-files.md).

    Examples
    --------
    >>> import os, tempfile
    >>> from topologies import ring
    >>> path = os.path.join(tempfile.mkdtemp(), "ring.graphml")
    >>> save(ring(4), path)
    >>> load(path).graph
    {'family': 'ring', 'params': {'n': 4}}
    """
    path = Path(path)
    if _suffix(path) == ".json":
        with open(path, "w", encoding="utf-8") as f:
            json.dump(_node_link_data(G), f, indent=1, default=_json_default)
            f.write("\n")
        return
    H = G.copy()
    for key, value in G.graph.items():
        if not isinstance(value, str | numbers.Number):
            H.graph[key] = json.dumps(value, default=_json_default)
    nx.write_graphml(H, path)
