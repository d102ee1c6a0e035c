"""What-if transforms of a topology: slower links (a slow NIC, a degraded cable) and failed links.

Each function returns a NEW graph and never touches the one it is given, so a study can derive
many damaged machines from one healthy one. Nodes and links are named as the graph names them
(integers for the generators' graphs); a name that does not exist is a one-line ``ValueError``
that suggests the closest names.

* :func:`degrade` multiplies the bandwidth of links: every link of a node (a slow NIC: factor
  0.5 halves everything the node sends and receives) or one link ``(u, v)``.
* :func:`fail_links` removes links; traffic then takes the routes the routing policy finds on
  what is left. :func:`cut_off_ranks` names the ranks a failure isolated, so callers can refuse
  to simulate a collective that cannot complete.
* :func:`parse_node` and :func:`parse_link` read the command line's and study files' spelling
  (``"NODE"``, ``"U,V"``, ``"U,V,KEY"`` for one cable of a multigraph).

The new graph records what was done in ``G.graph["whatif"]`` (a list of plain strings), so a
report can say which machine it simulated.

>>> from topologies import switch
>>> G = switch(4, bandwidth=10e9)
>>> H = degrade(G, {0: 0.5})
>>> H[0][4]["bandwidth"], G[0][4]["bandwidth"], H[1][4]["bandwidth"]
(5000000000.0, 10000000000.0, 10000000000.0)
>>> fail_links(G, [(0, 4)]).has_edge(0, 4)
False
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence

import networkx as nx

from .io import link_value

__all__ = ["cut_off_ranks", "degrade", "fail_links", "parse_link", "parse_node"]


def _suggest(text: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(text, list(names), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _node(G: nx.Graph, name, where: str):
    """The node of ``G`` called ``name`` (the node itself, or its label written as text)."""
    try:
        if name in G:
            return name
    except TypeError:  # unhashable
        pass
    text = str(name).strip()
    by_text = {str(v): v for v in G}
    if text in by_text:
        return by_text[text]
    raise ValueError(f"{where}: no node {text!r} in the topology ({G.number_of_nodes()} nodes"
                     f"{', e.g. ' + ', '.join(list(by_text)[:3]) if by_text else ''})"
                     f"{_suggest(text, by_text)}")


def _cables(G: nx.Graph, link: Sequence, where: str) -> list[tuple]:
    """The edges (``(u, v)`` or ``(u, v, key)``) a link names; a multigraph link with several
    cables must say which (a third element, the edge key)."""
    if isinstance(link, str) or not isinstance(link, Sequence) or len(link) not in (2, 3):
        raise ValueError(f"{where}: a link is (U, V) or (U, V, KEY), got {link!r}")
    u, v = _node(G, link[0], where), _node(G, link[1], where)
    if not G.has_edge(u, v):
        near = [f"{u},{w}" for w in G[u]] + [f"{w},{v}" for w in G[v]]
        raise ValueError(f"{where}: no link {u},{v} in the topology{_suggest(f'{u},{v}', near)}"
                         if near else f"{where}: no link {u},{v} in the topology")
    if not G.is_multigraph():
        if len(link) == 3:
            raise ValueError(f"{where}: {u},{v} is a single link; drop the cable key "
                             f"{link[2]!r}")
        return [(u, v)]
    keys = list(G[u][v])
    if len(link) == 3:
        key = next((k for k in keys if k == link[2] or str(k) == str(link[2]).strip()), None)
        if key is None:
            raise ValueError(f"{where}: link {u},{v} has cables {', '.join(map(str, keys))}, "
                             f"not {link[2]!r}")
        return [(u, v, key)]
    if len(keys) > 1:
        raise ValueError(f"{where}: {u},{v} has {len(keys)} parallel cables (keys "
                         f"{', '.join(map(str, keys))}); name one as {u},{v},KEY")
    return [(u, v, keys[0])]


def _factor(value, where: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = math.nan
    if isinstance(value, bool) or not (math.isfinite(f) and f > 0):
        raise ValueError(f"{where}: the factor must be a number > 0 (0.5 = half the "
                         f"bandwidth), got {value!r}")
    return f


def _copy(G: nx.Graph, note: str) -> nx.Graph:
    H = G.copy()  # fresh attribute dicts: changing H's never changes G's
    H.graph = dict(G.graph)
    H.graph["whatif"] = [*G.graph.get("whatif", []), note]
    return H


def degrade(G: nx.Graph, factors: Mapping) -> nx.Graph:
    """A copy of ``G`` with slower (or faster) links: ``{node: f}`` multiplies the bandwidth of
    every link of ``node`` by ``f`` (a slow NIC or switch port group), ``{(u, v): f}`` one link
    (``(u, v, key)``: one cable of a multigraph). Factors multiply where targets overlap.

    Cost: one pass over the named nodes' links; the copy is ``O(nodes + links)``.
    """
    if not isinstance(factors, Mapping):
        raise ValueError(f"degrade: expected a mapping node_or_link -> factor, got "
                         f"{type(factors).__name__}")
    scale: dict[tuple, float] = {}
    notes = []
    for target, value in factors.items():
        f = _factor(value, f"degrade {target!r}")
        if isinstance(target, tuple) and target not in G:
            cables = _cables(G, target, "degrade")
            notes.append(f"link {','.join(map(str, target))} x{f:g}")
        else:
            node = _node(G, target, "degrade")
            cables = list(G.edges(node, keys=True)) if G.is_multigraph() else \
                list(G.edges(node))
            notes.append(f"node {node} x{f:g}")
        for c in cables:
            scale[c] = scale.get(c, 1.0) * f
    H = _copy(G, "degrade " + ", ".join(notes))
    for c, f in scale.items():
        data = H.edges[c]
        data["bandwidth"] = link_value(c[0], c[1], data, "bandwidth") * f
    return H


def fail_links(G: nx.Graph, links: Iterable[Sequence]) -> nx.Graph:
    """A copy of ``G`` without ``links`` (each ``(u, v)``, or ``(u, v, key)`` for one cable of a
    multigraph). Routing then goes around them; see :func:`cut_off_ranks` for what it isolates.

    Cost: the copy, ``O(nodes + links)``.
    """
    gone = []
    for link in links:
        for c in _cables(G, link, "fail_links"):
            if c not in gone:
                gone.append(c)
    H = _copy(G, "fail " + ", ".join(",".join(map(str, c)) for c in gone))
    H.remove_edges_from(gone)
    return H


def cut_off_ranks(G: nx.Graph, rank_nodes: Sequence) -> list[int]:
    """Ranks whose node (``rank_nodes[r]``, as :func:`topologies.place` gives them) cannot reach
    rank 0's: the ones a failure isolated. Empty when every rank is reachable.

    Cost: one connected-components pass, ``O(nodes + links)``.
    """
    if not len(rank_nodes):
        return []
    home = nx.node_connected_component(G, rank_nodes[0])
    return [r for r, v in enumerate(rank_nodes) if v not in home]


def parse_node(G: nx.Graph, text: str, where: str = "node"):
    """The node of ``G`` that ``text`` names (a node label as printed, e.g. ``"12"``)."""
    return _node(G, text, where)


def parse_link(G: nx.Graph, text: str, where: str = "link") -> tuple:
    """``"U,V"`` (or ``"U,V,KEY"`` for one cable of a multigraph) -> the link's node tuple."""
    parts = [t.strip() for t in str(text).split(",")]
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"{where}: expected U,V (two node names, comma-separated), got "
                         f"{text!r}")
    u, v = _node(G, parts[0], where), _node(G, parts[1], where)
    link = (u, v) if len(parts) == 2 else (u, v, parts[2])
    _cables(G, link, where)  # exists, and names one cable
    return link
