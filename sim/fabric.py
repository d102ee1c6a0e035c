"""Ranks placed on a network, and the per-pattern data the cost models need.

A :class:`Fabric` answers, for a step's ``(src, dst)`` rank arrays (a *pattern*), the routes of
its transfers as a CSR of directed link ids, and per model the latency and seconds-per-byte of
every transfer. Patterns are cached by content, so a ring's ``2(p-1)`` steps, which share one
pattern, are routed and (for the contention model) rate-allocated once, and so are the steps of
a sweep over sizes.

Two fabrics exist: :class:`GraphFabric` (a compiled ``topologies`` network, ranks placed on its
endpoints) and :class:`AnalyticFabric` (``p`` ranks fully connected by identical full-duplex
links, one directed link per ordered pair, whose latency and bandwidth come from the model's
parameters).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

import networkx as nx
import numpy as np

from sim.maxmin import maxmin_rates

__all__ = ["AnalyticFabric", "GraphFabric", "Pattern", "fabric_for"]

#: Cached pattern transfers per fabric before the oldest patterns are dropped.
PATTERN_CACHE_LIMIT = 8_000_000


class Pattern:
    """One ``(src, dst)`` pattern on a fabric: routes and per-model figures (memoised)."""

    __slots__ = ("src", "dst", "m", "ptr", "links", "unique_src", "unique_dst", "memo",
                 "_occ", "perm", "__weakref__")

    def __init__(self, src: np.ndarray, dst: np.ndarray, ptr: np.ndarray, links: np.ndarray):
        self.src, self.dst = src, dst
        self.m = len(src)
        self.ptr, self.links = ptr, links
        self.unique_src = _unique(src)
        self.unique_dst = _unique(dst)
        self.memo: dict = {}
        self._occ = None
        self.perm = None

    def permutation(self, nranks: int):
        """When every rank sends exactly once and receives exactly once: ``(inv_src,
        inv_dst)`` (the transfer each rank sends / receives; ``inv_src`` is None when
        ``src`` is ``0..p-1`` in order); else None."""
        if self.perm is None:
            self.perm = False
            if self.m == nranks and self.unique_src and self.unique_dst:
                ident = bool((self.src == np.arange(nranks)).all())
                self.perm = (None if ident else _inverse(self.src), _inverse(self.dst))
        return self.perm or None

    def send_rounds(self) -> list[np.ndarray]:
        """Transfer indices grouped by their position among their sender's sends in this step
        (round 0: every sender's first send, round 1: the second, ...)."""
        if self._occ is None:
            order = np.argsort(self.src, kind="stable")
            s = self.src[order]
            first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
            occ = np.arange(self.m) - np.repeat(first, np.diff(np.r_[first, self.m]))
            self._occ = [order[occ == j] for j in range(int(occ.max()) + 1 if self.m else 0)]
        return self._occ


def _unique(a: np.ndarray) -> bool:
    return len(a) < 2 or int(np.bincount(a).max()) <= 1


def _inverse(perm: np.ndarray) -> np.ndarray:
    inv = np.empty(len(perm), dtype=np.int64)
    inv[perm] = np.arange(len(perm))
    return inv


class _Fabric:
    nranks: int
    description: str

    def __init__(self) -> None:
        self._patterns: OrderedDict = OrderedDict()
        self._cached = 0

    def pattern(self, src: np.ndarray, dst: np.ndarray) -> Pattern:
        """The (cached) pattern of a step's rank arrays."""
        key = (src.tobytes(), dst.tobytes())
        pat = self._patterns.get(key)
        if pat is None:
            pat = self._make(np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64))
            self._patterns[key] = pat
            self._cached += pat.m
            while self._cached > PATTERN_CACHE_LIMIT and len(self._patterns) > 1:
                _, old = self._patterns.popitem(last=False)
                self._cached -= old.m
        return pat

    def _make(self, src, dst) -> Pattern:  # pragma: no cover - abstract
        raise NotImplementedError

    def figures(self, pat: Pattern, model) -> tuple:
        """``(latency, seconds per byte)`` of every transfer under ``model`` (arrays or
        scalars), memoised per pattern."""
        key = (type(model).__name__,) + tuple(
            getattr(model, f) for f in ("alpha", "beta", "L", "G") if hasattr(model, f))
        got = pat.memo.get(key)
        if got is None:
            got = self._figures(pat, model)
            pat.memo[key] = got
        return got

    def _figures(self, pat, model):  # pragma: no cover - abstract
        raise NotImplementedError


def _model_overrides(model) -> tuple[float | None, float | None]:
    """(latency, seconds per byte) fixed by the model's parameters, None where not given."""
    if model.name == "loggp":
        return model.L, model.G
    return model.alpha, model.beta


class AnalyticFabric(_Fabric):
    """``nranks`` ranks fully connected by identical links (one directed link per ordered pair);
    latency and bandwidth are the model's ``alpha``/``beta`` (``L``/``G`` for LogGP)."""

    def __init__(self, nranks: int):
        super().__init__()
        self.nranks = nranks
        self.description = f"fully-connected({nranks}, analytic)"

    def _make(self, src, dst):
        return Pattern(src, dst, np.arange(len(src) + 1, dtype=np.int64),
                       src * self.nranks + dst)

    def _figures(self, pat, model):
        lat, inv = _model_overrides(model)
        if lat is None or inv is None:
            need = "L and G" if model.name == "loggp" else "alpha and beta"
            raise ValueError(
                f"the analytic fully connected network takes its latency and bandwidth from the "
                f"model: give {type(model).__name__} {need} (or simulate on a topology graph)"
            )
        if model.name == "contention" and not (pat.unique_src or pat.unique_dst):
            # Only transfers over the same ordered pair share a link here.
            keys, local = np.unique(pat.links, return_inverse=True)
            if len(keys) < pat.m:
                rate = maxmin_rates(pat.ptr, local, np.full(len(keys), 1.0 / inv))
                return lat, 1.0 / rate
        return lat, inv

    def link_names(self, keys: np.ndarray) -> list[tuple]:
        return list(zip((keys // self.nranks).tolist(), (keys % self.nranks).tolist(),
                        strict=True))


class GraphFabric(_Fabric):
    """Ranks placed on the endpoints of a compiled ``topologies.Network``."""

    def __init__(self, net, rank_nodes: np.ndarray, description: str):
        super().__init__()
        self.net = net
        self.rank_nodes = np.asarray(rank_nodes, dtype=np.int64)
        self.nranks = len(self.rank_nodes)
        self.description = description

    def _make(self, src, dst):
        ptr, links = self.net.routes(self.rank_nodes[src], self.rank_nodes[dst])
        return Pattern(src, dst, np.asarray(ptr, dtype=np.int64),
                       np.asarray(links, dtype=np.int64))

    def _reduce(self, ufunc, values, pat, empty):
        out = np.full(pat.m, empty, dtype=np.float64)
        nonempty = pat.ptr[1:] > pat.ptr[:-1]
        if nonempty.any():
            out[nonempty] = ufunc.reduceat(values[pat.links], pat.ptr[:-1][nonempty])
        return out

    def _figures(self, pat, model):
        lat, inv = _model_overrides(model)
        if lat is None:
            lat = self._reduce(np.add, self.net.link_latency, pat, 0.0)
        if model.name == "contention":
            cap = self.net.link_bandwidth if inv is None else np.full(self.net.nlinks, 1.0 / inv)
            rate = maxmin_rates(pat.ptr, pat.links, cap)
            with np.errstate(divide="ignore"):
                return lat, 1.0 / rate
        if inv is None:
            with np.errstate(divide="ignore"):
                inv = 1.0 / self._reduce(np.minimum, self.net.link_bandwidth, pat, np.inf)
        return lat, inv

    def link_names(self, ids: np.ndarray) -> list[tuple]:
        nodes = self.net.nodes
        return [(nodes[u], nodes[v]) for u, v in zip(self.net.link_src[ids].tolist(),
                                                     self.net.link_dst[ids].tolist(),
                                                     strict=True)]


# --------------------------------------------------------------------------- fabric cache

_NETWORKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ANALYTIC: OrderedDict = OrderedDict()


def _signature(G: nx.Graph) -> tuple:
    # O(1): a graph must not be modified after it was simulated on (as for compile_network);
    # a change of node count or of its generator parameters is caught all the same.
    return (G.number_of_nodes(), G.graph.get("family"), repr(G.graph.get("params")))


def _compiled(G: nx.Graph):
    """The compiled network of ``G`` and a per-graph fabric cache (rebuilt if ``G`` changed
    its node count or parameters)."""
    from topologies import compile_network

    sig = _signature(G)
    hit = _NETWORKS.get(G)
    if hit is None or hit[0] != sig:
        hit = (sig, compile_network(G), {})
        _NETWORKS[G] = hit
    return hit[1], hit[2]


def _describe(G) -> str:
    """``fat_tree(k=8, hosts=64, ...)`` for a generator's graph, else ``graph(N nodes)``."""
    if not isinstance(G, nx.Graph):
        return "network"
    fam = G.graph.get("family")
    if fam:
        args = ", ".join(f"{k}={v}" for k, v in (G.graph.get("params") or {}).items())
        return f"{fam}({args})"
    return f"graph({G.number_of_nodes()} nodes)"


def fabric_for(topology, nranks: int, placement=None) -> _Fabric:
    """The fabric of ``nranks`` ranks on ``topology``: an ``nx.Graph`` (compiled once per
    graph object), a compiled ``topologies.Network``, or ``None`` for the analytic fully
    connected network. Fabrics (and their pattern caches) are reused per
    (graph, nranks, placement) when the placement is ``None`` or a string."""
    from topologies import place

    if topology is None:
        hit = _ANALYTIC.get(nranks)
        if hit is None:
            hit = _ANALYTIC[nranks] = AnalyticFabric(nranks)
            while len(_ANALYTIC) > 8:
                _ANALYTIC.popitem(last=False)
        return hit
    if isinstance(topology, nx.Graph):
        net, fabrics = _compiled(topology)
        G = topology
    elif hasattr(topology, "routes") and hasattr(topology, "link_bandwidth"):
        net, fabrics, G = topology, None, topology.graph
    else:
        raise TypeError(
            f"topology must be a networkx Graph, a compiled topologies.Network or None "
            f"(analytic fully connected), got {type(topology).__name__}"
        )
    key = (nranks, placement) if placement is None or isinstance(placement, str) else None
    if fabrics is not None and key is not None and key in fabrics:
        return fabrics[key]
    nodes = net.index_of(place(G, nranks, placement))
    fab = GraphFabric(net, nodes, _describe(G))
    if fabrics is not None and key is not None:
        fabrics[key] = fab
    return fab
