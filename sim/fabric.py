"""Ranks placed on a network, and the per-pattern data the cost models need.

A :class:`Fabric` answers, for a step's ``(src, dst)`` rank arrays (a *pattern*), the routes of
its transfers as a CSR of directed link ids, and per model the latency and seconds-per-byte of
every transfer. Patterns are cached by content, so a ring's ``2(p-1)`` steps, which share one
pattern, are routed and (for the contention model) rate-allocated once, and so are the steps of
a sweep over sizes.

Where the steps' patterns differ (Rabenseifner, recursive doubling: a new partner each step)
:meth:`_Fabric.prepare` takes many at once: small patterns are routed in one call, their
permutation checks done in one pass and their rates filled side by side, so that a pattern of a
few hundred transfers costs little more than its share of the work, not a few hundred numpy
calls of its own. The numbers are those of one pattern at a time.

A routing policy that spreads a flow over several paths (``spread``) gives each pattern a
``share`` per route entry (the fraction of the flow crossing that link, from
``Network.weighted_routes``): the contention model's constraint becomes ``sum_f share_fl *
rate_f <= capacity_l``, Hockney's bottleneck ``min_l capacity_l / share_l`` and the latency the
share-weighted sum (every one of the equal-cost paths has that latency). Such patterns are routed
and costed one at a time.

Two fabrics exist: :class:`GraphFabric` (a compiled ``topologies`` network, ranks placed on its
endpoints) and :class:`AnalyticFabric` (``p`` ranks fully connected by identical full-duplex
links, one directed link per ordered pair, whose latency and bandwidth come from the model's
parameters).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from itertools import accumulate

import networkx as nx
import numpy as np

from sim.costs import sharing_weight
from sim.maxmin import maxmin_rates, maxmin_rates_many, maxmin_rates_weighted
from topologies.network import Network

__all__ = ["AnalyticFabric", "GraphFabric", "Pattern", "fabric_for", "figures_key", "pattern_key",
           "with_routing"]

#: Cached pattern transfers per fabric before the oldest patterns are dropped.
PATTERN_CACHE_LIMIT = 8_000_000
#: :meth:`_Fabric.prepare` routes patterns together up to this many transfers per call: small
#: patterns share the per-call overhead, large ones are routed alone (their arrays stay small).
_ROUTE_BATCH = 1 << 13


class Pattern:
    """One ``(src, dst)`` pattern on a fabric: routes and per-model figures (memoised)."""

    __slots__ = ("src", "dst", "m", "ptr", "links", "share", "_unique_src", "_unique_dst",
                 "memo", "_occ", "perm", "_lens", "__weakref__")

    def __init__(self, src: np.ndarray, dst: np.ndarray, ptr: np.ndarray, links: np.ndarray,
                 share: np.ndarray | None = None):
        self.src, self.dst = src, dst
        self.m = len(src)
        self.ptr, self.links = ptr, links
        # fraction of the flow's rate on each route entry (None: 1 everywhere, single paths)
        self.share = share
        self._unique_src = self._unique_dst = None
        self.memo: dict = {}
        self._occ = None
        self.perm = None
        self._lens = None

    @property
    def unique_src(self) -> bool:
        """No rank sends twice."""
        if self._unique_src is None:
            self._unique_src = _unique(self.src)
        return self._unique_src

    @property
    def unique_dst(self) -> bool:
        """No rank receives twice."""
        if self._unique_dst is None:
            self._unique_dst = _unique(self.dst)
        return self._unique_dst

    @property
    def lens(self) -> np.ndarray:
        """Number of links on each transfer's route."""
        if self._lens is None:
            self._lens = self.ptr[1:] - self.ptr[:-1]
        return self._lens

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


class _PatternKey(int):
    """What :meth:`_Fabric.pattern` caches a step's rank arrays by: their contents (compared
    in full), hashed on a sample of them (hashing all of a 16384-rank pattern's bytes costs
    more than routing it anew would save at small sizes; equal contents still hash equal).
    The value is the hash, so that dicts hash it in C."""

    def __new__(cls, src: np.ndarray, dst: np.ndarray):
        m = len(src)
        step = m // _KEY_SAMPLE + 1
        self = int.__new__(cls, hash((m, src[::step].tobytes(), dst[::step].tobytes(),
                                      src[-1:].tobytes(), dst[-1:].tobytes())))
        self.data = (src.tobytes(), dst.tobytes())
        return self

    __hash__ = int.__hash__

    def __eq__(self, other) -> bool:
        return isinstance(other, _PatternKey) and self.data == other.data

    def __ne__(self, other) -> bool:
        return not self == other


#: Elements of each rank array that a pattern key hashes.
_KEY_SAMPLE = 32


def pattern_key(src: np.ndarray, dst: np.ndarray) -> _PatternKey:
    """What :meth:`_Fabric.pattern` caches a step's rank arrays by (their contents)."""
    return _PatternKey(src, dst)


def figures_key(model) -> tuple:
    """What a pattern memoises a model's figures by: the parameters that figures depend on."""
    return (type(model).__name__,) + tuple(
        getattr(model, f) for f in ("alpha", "beta", "L", "G", "sharing") if hasattr(model, f))


def _groups(sizes):
    """``(i, j)`` ranges of consecutive patterns of at most ``_ROUTE_BATCH`` transfers in all
    (a larger pattern alone)."""
    i = 0
    while i < len(sizes):
        j, total = i + 1, sizes[i]
        while j < len(sizes) and total + sizes[j] <= _ROUTE_BATCH:
            total += sizes[j]
            j += 1
        yield i, j
        i = j


def _batch_flags(pats: list[Pattern], nranks: int) -> None:
    """Find, for many patterns at once, which are permutations (every rank sends once and
    receives once), with their inverses: what :meth:`Pattern.permutation` finds for each.

    A pattern of ``nranks`` transfers is one when scattering ``t`` to ``inv[src[t]]`` and
    reading back gives ``inv[src[t]] == t`` for every ``t`` (a repeated rank keeps one ``t``
    only), and likewise for ``dst``.
    """
    cand = [p for p in pats if p.m == nranks]
    for p in pats:
        p.perm = False
    if not cand or nranks == 0:
        return
    n = len(cand)
    iota = np.arange(nranks, dtype=np.int64)
    ident = (np.concatenate([p.src for p in cand]).reshape(n, nranks) == iota).all(axis=1)
    ident = ident.tolist()
    ok = np.ones(n, dtype=bool)
    inv = {}
    for side in ("src", "dst"):
        rows = [i for i in range(n) if side == "dst" or not ident[i]]  # 0..p-1 is one
        if not rows:
            continue
        k = len(rows)
        ranks = np.concatenate([getattr(cand[i], side) for i in rows]).reshape(k, nranks)
        r = np.arange(k)[:, None]
        flat = np.empty((k, nranks), dtype=np.int64)
        flat[r, ranks] = iota
        ok[rows] &= (flat[r, ranks] == iota).all(axis=1)
        for j, i in enumerate(rows):
            inv[side, i] = flat[j]
    for i, p in enumerate(cand):
        if ok[i]:
            p._unique_src = p._unique_dst = True
            p.perm = (None if ident[i] else inv["src", i], inv["dst", i])


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

    def pattern(self, src: np.ndarray, dst: np.ndarray, key: tuple | None = None) -> Pattern:
        """The (cached) pattern of a step's rank arrays (``key``: :func:`pattern_key` of them,
        when the caller has it)."""
        if key is None:
            key = pattern_key(src, dst)
        pat = self._patterns.get(key)
        if pat is None:
            pat = self._make(np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64))
            self._insert(key, pat)
        return pat

    def _insert(self, key, pat) -> None:
        self._patterns[key] = pat
        self._cached += pat.m
        while self._cached > PATTERN_CACHE_LIMIT and len(self._patterns) > 1:
            _, old = self._patterns.popitem(last=False)
            self._cached -= old.m

    def prepare(self, pairs, model, fkey: tuple | None = None) -> list[Pattern]:
        """The patterns of many steps, routed and costed under ``model`` together.

        ``pairs`` holds ``(key, src, dst)`` per step (``key``: :func:`pattern_key`); returns
        their patterns, in order, cached and with their figures memoised (``fkey``:
        :func:`figures_key` of the model). The patterns not cached yet are routed together
        and their figures computed together (small patterns in one call: a Rabenseifner step
        of a few hundred ranks costs little more than the call overhead). The results are
        those of one pattern at a time.
        """
        if fkey is None:
            fkey = figures_key(model)
        found: dict = {}
        new, stale = [], []
        for key, src, dst in pairs:
            if key in found:
                continue
            pat = found[key] = self._patterns.get(key)
            if pat is None:
                new.append((key, np.asarray(src, dtype=np.int64),
                            np.asarray(dst, dtype=np.int64)))
            elif fkey not in pat.memo:
                stale.append(pat)
        made = self._make_many([(s, d) for _, s, d in new], model, fkey) if new else []
        for (key, _, _), pat in zip(new, made, strict=True):
            self._insert(key, pat)
            found[key] = pat
        todo = stale + [pat for pat in made if fkey not in pat.memo]
        if todo:
            for pat, got in zip(todo, self._figures_many(todo, model), strict=True):
                pat.memo[fkey] = got
        return [found[key] for key, _, _ in pairs]

    def _make_many(self, pairs, model=None, fkey=None) -> list[Pattern]:
        """The patterns of ``pairs``; those whose figures under ``model`` come out of the same
        pass have them memoised under ``fkey``."""
        return [self._make(s, d) for s, d in pairs]

    def _figures_many(self, pats, model) -> list[tuple]:
        return [self._figures(p, model) for p in pats]

    def _make(self, src, dst) -> Pattern:  # pragma: no cover - abstract
        raise NotImplementedError

    def figures(self, pat: Pattern, model, key: tuple | None = None) -> tuple:
        """``(latency, seconds per byte)`` of every transfer under ``model`` (arrays or
        scalars), memoised per pattern (``key``: :func:`figures_key` of the model, when the
        caller has it)."""
        if key is None:
            key = figures_key(model)
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
                cap = np.full(len(keys), 1.0 / inv)
                weight = sharing_weight(np.full(pat.m, lat), model.sharing)
                if weight is None:
                    rate = maxmin_rates(pat.ptr, local, cap)
                else:
                    rate = maxmin_rates_weighted(pat.ptr, local, cap, weight=weight)
                return lat, 1.0 / rate
        return lat, inv

    def link_names(self, keys: np.ndarray) -> list[tuple]:
        return list(zip((keys // self.nranks).tolist(), (keys % self.nranks).tolist(),
                        strict=True))

    def open_links(self) -> None:
        """None: every link joins one ordered pair of ranks, so flows that share no rank
        never share a link (see :class:`sim.fastpath.ExactCheck`)."""
        return None

    def capacities(self, links: np.ndarray, model) -> tuple[np.ndarray, np.ndarray]:
        """``(links renumbered 0..L-1, capacity 1 / beta of each)`` for the flow simulation."""
        keys, local = np.unique(links, return_inverse=True)
        beta = _model_overrides(model)[1]
        with np.errstate(divide="ignore"):
            cap = np.full(len(keys), 1.0 / beta if beta else np.inf)
        return local.ravel().astype(np.int64), cap


class GraphFabric(_Fabric):
    """Ranks placed on the endpoints of a compiled ``topologies.Network``."""

    def __init__(self, net, rank_nodes: np.ndarray, description: str):
        super().__init__()
        self.net = net
        self.rank_nodes = np.asarray(rank_nodes, dtype=np.int64)
        self.nranks = len(self.rank_nodes)
        self.description = description
        self._hop_latency = None

    def _routes(self, src, dst):
        """Routes between ranks (placed on endpoints already: no need to check them) as
        ``(ptr, links, share)``; ``share`` is None where every flow takes one path."""
        a, b = self.rank_nodes[src], self.rank_nodes[dst]
        if self.multipath:  # a share of the rate per route entry
            ptr, links, share = self.net.weighted_routes(a, b, check=False)
            share = np.asarray(share, dtype=np.float64)
            return ptr, links, (None if (share == 1.0).all() else share)
        if isinstance(self.net, Network):
            return (*self.net.routes(a, b, check=False), None)
        return (*self.net.routes(a, b), None)

    @property
    def multipath(self) -> bool:
        """The network splits flows over several paths (patterns carry shares)."""
        return bool(getattr(self.net, "multipath", False))

    def _make(self, src, dst):
        ptr, links, share = self._routes(src, dst)
        return Pattern(src, dst, np.asarray(ptr, dtype=np.int64),
                       np.asarray(links, dtype=np.int64), share)

    def _make_many(self, pairs, model=None, fkey=None):
        out: list[Pattern] = []
        for i, j in _groups([len(s) for s, _ in pairs]):
            if j == i + 1 or self.multipath:
                out.extend(self._make(*pr) for pr in pairs[i:j])
                continue
            # One routing call and one figures pass for the group; each pattern's arrays are
            # slices of the group's.
            group = pairs[i:j]
            src = np.concatenate([s for s, _ in group])
            dst = np.concatenate([d for _, d in group])
            ptr, links, share = self._routes(src, dst)
            ptr = np.asarray(ptr, dtype=np.int64)
            links = np.asarray(links, dtype=np.int64)
            sizes = [len(s) for s, _ in group]
            made = []
            f = 0
            for (s, d), m in zip(group, sizes, strict=True):
                p = ptr[f:f + m + 1]
                made.append(Pattern(s, d, p - p[0], links[p[0]:p[-1]],
                                    None if share is None else share[p[0]:p[-1]]))
                f += m
            _batch_flags(made, self.nranks)
            if model is not None:
                figs = self._figures_csr(ptr, links, model, sizes, share)
                for pat, got in zip(made, self._split(figs, sizes), strict=True):
                    pat.memo[fkey] = got
            out.extend(made)
        return out

    @staticmethod
    def _split(figs, sizes):
        """Per pattern ``(latency, seconds per byte)`` of figures computed for a group."""
        offs = [0, *accumulate(sizes)]
        return [tuple(x[a:b] if isinstance(x, np.ndarray) else x for x in figs)
                for a, b in zip(offs[:-1], offs[1:], strict=True)]

    @staticmethod
    def _reduce(ufunc, values, ptr, links, empty):
        out = np.full(len(ptr) - 1, empty, dtype=np.float64)
        nonempty = ptr[1:] > ptr[:-1]
        if nonempty.any():
            out[nonempty] = ufunc.reduceat(values[links], ptr[:-1][nonempty])
        return out

    def _path_latency(self, ptr, links):
        """Sum of the link latencies along each path of a CSR (0 for none)."""
        net = self.net
        if self._hop_latency is None:
            lat = net.link_latency
            self._hop_latency = (len(lat) > 0 and lat.min() == lat.max(), [0.0])
        uniform, table = self._hop_latency
        if not uniform:
            return self._reduce(np.add, net.link_latency, ptr, links, 0.0)
        # Every link has the same latency: a path's depends on its hop count only. The table
        # holds, per count, the very sum that add.reduceat makes of that many latencies.
        lens = ptr[1:] - ptr[:-1]
        most = int(lens.max()) if len(lens) else 0
        if most >= len(table):
            seg = np.arange(1, most + 1)
            starts = np.concatenate(([0], np.cumsum(seg)[:-1]))
            vals = np.full(int(seg.sum()), net.link_latency[0])
            table[:] = [0.0] + np.add.reduceat(vals, starts).tolist()
        return np.asarray(table)[lens]

    def _figures(self, pat, model):
        return self._figures_csr(pat.ptr, pat.links, model, None, pat.share)

    def _figures_many(self, pats, model):
        out: list[tuple] = []
        for i, j in _groups([p.m for p in pats]):
            if j == i + 1 or self.multipath:
                out.extend(self._figures(p, model) for p in pats[i:j])
                continue
            group = pats[i:j]
            sizes = [p.m for p in group]
            ptr = np.zeros(sum(sizes) + 1, dtype=np.int64)
            np.cumsum(np.concatenate([p.lens for p in group]), out=ptr[1:])
            links = np.concatenate([p.links[: p.ptr[-1]] for p in group])
            share = None
            if any(p.share is not None for p in group):
                share = np.concatenate([p.share if p.share is not None else np.ones(p.ptr[-1])
                                        for p in group])
            out.extend(self._split(self._figures_csr(ptr, links, model, sizes, share), sizes))
        return out

    def _figures_csr(self, ptr, links, model, sizes, share=None):
        """Figures of the transfers of a CSR (``sizes``: transfers per pattern when it holds
        several, whose contention is computed apart; ``share``: per-entry rate fractions)."""
        lat, inv = _model_overrides(model)
        if lat is None and share is None:
            lat = self._path_latency(ptr, links)
        elif lat is None:  # a split flow's latency: the mean of its paths' (share-weighted)
            lat = self._reduce(np.add, self.net.link_latency[links] * share, ptr,
                               np.arange(len(links)), 0.0)
        if model.name == "contention":
            cap = self.net.link_bandwidth if inv is None else np.full(self.net.nlinks, 1.0 / inv)
            weight = sharing_weight(np.broadcast_to(lat, (len(ptr) - 1,)), model.sharing)
            if weight is not None or share is not None:
                rate = _weighted_many(ptr, links, cap, sizes, weight, share)
            elif sizes is None:
                rate = maxmin_rates(ptr, links, cap)
            else:
                rate = maxmin_rates_many(ptr, links, cap, sizes)
            with np.errstate(divide="ignore"):
                return lat, 1.0 / rate
        if inv is None:
            bw = self.net.link_bandwidth
            with np.errstate(divide="ignore"):
                if share is None:
                    inv = 1.0 / self._reduce(np.minimum, bw, ptr, links, np.inf)
                else:  # a split flow's bottleneck: the least capacity per unit of its rate
                    per = bw[links] / share
                    inv = 1.0 / self._reduce(np.minimum, per, ptr, np.arange(len(links)),
                                             np.inf)
        return lat, inv

    def open_links(self) -> np.ndarray:
        """Per link: whether flows that share no rank can cross it (see
        :class:`sim.fastpath.ExactCheck`). A link is closed when one of its ends is a leaf (one
        neighbour: no flow passes through it) that holds exactly one rank: every flow on it
        starts or ends at that rank."""
        net = self.net
        n = net.nnodes
        u = net.link_src.astype(np.int64)
        v = net.link_dst.astype(np.int64)
        ends = np.concatenate((u, v))
        other = np.concatenate((v, u))
        lo = np.full(n, np.iinfo(np.int64).max)
        hi = np.full(n, -1)
        np.minimum.at(lo, ends, other)
        np.maximum.at(hi, ends, other)
        ranks_on = np.bincount(self.rank_nodes, minlength=n)
        owned = (lo == hi) & (ranks_on == 1)
        return ~(owned[u] | owned[v])

    def capacities(self, links: np.ndarray, model) -> tuple[np.ndarray, np.ndarray]:
        """``(links, capacity)`` for the flow simulation: link ids and their bandwidth (all
        ``1 / beta`` when the model fixes it)."""
        beta = _model_overrides(model)[1]
        if beta is None:
            return links, self.net.link_bandwidth
        with np.errstate(divide="ignore"):
            return links, np.full(self.net.nlinks, 1.0 / beta if beta > 0 else np.inf)

    def link_names(self, ids: np.ndarray) -> list[tuple]:
        nodes = self.net.nodes
        return [(nodes[u], nodes[v]) for u, v in zip(self.net.link_src[ids].tolist(),
                                                     self.net.link_dst[ids].tolist(),
                                                     strict=True)]


def _weighted_many(ptr, links, cap, sizes, weight, share):
    """Weighted max-min rates of the patterns of a CSR (``sizes``: flows per pattern, None for
    one), each pattern solved alone."""
    if sizes is None:
        sizes = [len(ptr) - 1]
    out = np.empty(len(ptr) - 1)
    f = 0
    for m in sizes:
        e0, e1 = ptr[f], ptr[f + m]
        out[f:f + m] = maxmin_rates_weighted(
            ptr[f:f + m + 1] - e0, links[e0:e1], cap,
            weight=None if weight is None else weight[f:f + m],
            share=None if share is None else share[e0:e1])
        f += m
    return out


# --------------------------------------------------------------------------- fabric cache

_NETWORKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_NET_FABRICS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ANALYTIC: OrderedDict = OrderedDict()


def _signature(G: nx.Graph) -> tuple:
    # O(1): a graph must not be modified after it was simulated on (as for compile_network);
    # a change of node count or of its generator parameters is caught all the same.
    return (G.number_of_nodes(), G.graph.get("family"), repr(G.graph.get("params")))


def _compiled(G: nx.Graph, routing: str = "auto"):
    """The compiled network of ``G`` under ``routing`` and a per-network fabric cache
    (rebuilt if ``G`` changed its node count or parameters)."""
    from topologies import compile_network

    sig = _signature(G)
    per_graph = _NETWORKS.get(G)
    if per_graph is None or per_graph[0] != sig:
        per_graph = _NETWORKS[G] = (sig, {})
    hit = per_graph[1].get(routing)
    if hit is None:
        hit = per_graph[1][routing] = (compile_network(G, routing), {})
    return hit


def _describe(G) -> str:
    """``fat_tree(k=8, hosts=64, ...)`` for a generator's graph, else ``graph(N nodes)``."""
    if not isinstance(G, nx.Graph):
        return "network"
    fam = G.graph.get("family")
    if fam:
        args = ", ".join(f"{k}={v}" for k, v in (G.graph.get("params") or {}).items())
        return f"{fam}({args})"
    return f"graph({G.number_of_nodes()} nodes)"


def with_routing(topology, routing: str | None):
    """``topology`` routed by the policy ``routing`` (see ``topologies.POLICIES``): a graph
    becomes its compiled network under that policy (cached per graph and policy), a compiled
    network is recompiled from its graph; ``None`` (the analytic fully connected network,
    one direct link per pair) takes ``auto``, ``shortest`` and ``spread``. ``routing=None``
    returns ``topology`` as it is."""
    from topologies.network import POLICIES

    if routing is None:
        return topology
    if routing not in POLICIES:
        raise ValueError(f"unknown routing policy {routing!r}; known: {', '.join(POLICIES)}")
    if isinstance(topology, Network):
        return topology if topology.routing == routing else _compiled(topology.graph,
                                                                       routing)[0]
    if isinstance(topology, nx.Graph):
        return _compiled(topology, routing)[0]
    if routing not in ("auto", "shortest", "spread"):
        raise ValueError(
            f"routing {routing!r} does not fit the analytic fully connected network (one "
            "direct link per pair): use 'auto', 'shortest' or 'spread', or give a topology"
        )
    return topology


def fabric_for(topology, nranks: int, placement=None, routing: str | None = None) -> _Fabric:
    """The fabric of ``nranks`` ranks on ``topology``: an ``nx.Graph`` (compiled once per
    graph object and routing policy), a compiled ``topologies.Network``, or ``None`` for the
    analytic fully connected network. ``routing`` names the policy (default: the network's
    own, ``auto`` for a graph). Fabrics (and their pattern caches) are reused per
    (network, nranks, placement) when the placement is ``None`` or a string."""
    from topologies import place

    topology = with_routing(topology, routing)
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
        net, G = topology, topology.graph
        fabrics = _NET_FABRICS.setdefault(net, {}) if isinstance(net, Network) else None
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
