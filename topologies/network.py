"""The compiled network: integer link ids, link arrays and vectorised routing.

:func:`compile_network` turns a topology graph into a :class:`Network`, the form the simulator
works on: nodes are indices ``0 .. N-1`` (sorted label order), every undirected edge ``e`` (in
sorted ``(index(u), index(v))`` order, ``index(u) < index(v)``) gives two directed links, ``2e``
from ``u`` to ``v`` and ``2e + 1`` back, each an independent full-duplex resource.

Routing
-------
Routing is a named policy (:data:`POLICIES`, ``compile_network(G, routing=...)``; the user
reference is docs/routing.md): ``shortest`` (latency-shortest paths, hashed ECMP among equal-cost
ones), ``spread`` (every equal-cost path, the flow split evenly: :meth:`Network.weighted_routes`
gives each link's share), ``dimension-order`` (tori, rings), ``dmodk`` (fat-trees, GPU
clusters), ``minimal`` (dragonflies) and ``auto``, the structure's natural one.

``net.routes(src, dst)`` returns the paths of many (src, dst) pairs at once as a CSR
``(ptr, links)``. Where the graph has a generator's structure (named by ``G.graph["family"]``
and checked against the links, or recognised from the links alone: a file routes as the
generator's graph does) the structured policies route by formula, with no Python loop per pair:

* ``fully_connected``: the direct link; ``switch``: up to the switch and down;
* ``ring``, ``torus`` (``dimension-order``): dimension 0 first, the shorter way round in each
  dimension; a tie (distance exactly ``n/2``) goes up from even coordinates, down from odd;
* ``fat_tree`` (``shortest``/``dmodk``): up to the lowest common ancestor and down; the
  aggregation and (between pods) core switch chosen by ECMP hash, or by destination mod k;
* ``gpu_cluster``: GPUs of one server talk over the NVLink switch; other pairs go
  GPU -> leaf (-> spine, chosen by hash or destination mod k) -> leaf -> GPU;
* ``dragonfly`` (``minimal``): local, global, local.

Everything else (``shortest`` on rings, tori and dragonflies, or on any graph without a
structure) uses latency-weighted shortest paths (ties broken by fewer hops); where several next
hops are equally short, the hash of (src, dst) mixed with the current node picks one. Distances
are computed per destination and cached, and finished routes are cached per (src, dst) pair.
Where links of a structure are missing (failed links), the formula routes that would cross one
take the next up-port in turn (fat-trees, GPU clusters) or, failing that, a shortest path over
the links that remain.

The ECMP hash is splitmix64 of ``src << 32 | dst`` (node indices): deterministic across runs
and platforms, and it spreads an all-to-all evenly over the equal-cost paths.

``fat_tree`` and ``gpu_cluster`` routes compute link ids by formula too (a few ms for 16384
pairs); the other families find them by binary search in the sorted (src, dst) link keys.
"""

from __future__ import annotations

import json

import numpy as np

from . import generators as gen
from .io import checked_links, gc_paused, node_kinds, sorted_nodes

__all__ = ["POLICIES", "Network", "compile_network"]

_U = np.uint64
_M1, _M2 = _U(0xBF58476D1CE4E5B9), _U(0x94D049BB133111EB)
_GOLDEN = _U(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, elementwise on a uint64 array (which it overwrites: pass a
    temporary)."""
    x ^= x >> _U(30)
    x *= _M1
    x ^= x >> _U(27)
    x *= _M2
    x ^= x >> _U(31)
    return x


def pair_hash(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Deterministic 64-bit hash of each (src, dst) pair of node indices (uint64 array)."""
    x = np.asarray(src).astype(_U)
    x <<= _U(32)
    d = np.asarray(dst)
    x |= d.view(_U) if d.dtype == np.int64 else d.astype(_U)  # same bits, no copy
    return _mix(x)


def _fib_slot(keys: np.ndarray, bits: int) -> np.ndarray:
    """Fibonacci hashing of non-negative int64 keys to slots ``0 .. 2**bits - 1``."""
    x = keys.astype(_U)
    x *= _GOLDEN
    x >>= _U(64 - bits)
    return x.astype(np.int64)


def _umod(h: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(h // n, h % n)`` of a uint64 array (the remainder as int64): ``//`` by a scalar is
    vectorised, ``%`` is not, so the remainder is taken as ``h - (h // n) * n``."""
    q = h // _U(n)
    return q, (h - q * _U(n)).astype(np.int64)


def _segments(ptr: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gather CSR rows ``which``: return (new ptr, positions into the old value array)."""
    start = ptr[which]
    length = ptr[which + 1] - start
    nptr = np.zeros(len(which) + 1, dtype=np.int64)
    np.cumsum(length, out=nptr[1:])
    pos = np.repeat(start - nptr[:-1], length) + np.arange(nptr[-1], dtype=np.int64)
    return nptr, pos


class Network:
    """A topology compiled for the simulator; build it with :func:`compile_network`.

    Attributes
    ----------
    nodes : tuple
        Node labels; index ``i`` is label ``nodes[i]`` (sorted order).
    index : dict
        Label -> index.
    nnodes, nlinks : int
        Number of nodes and of directed links (twice the number of edges).
    link_src, link_dst : numpy.ndarray of int32
        Node indices at the two ends of each directed link.
    link_bandwidth, link_latency : numpy.ndarray of float64
        Bytes/s and seconds of each directed link.
    is_endpoint : numpy.ndarray of bool
        Per node.
    endpoints : numpy.ndarray of int64
        Indices of the endpoint nodes, in order (rank ``r`` sits on ``endpoints[r]`` under the
        default placement).
    family, params : str or None, dict
        The structure the graph is routed as: the generator named by ``G.graph`` (checked),
        or the one recognised from its links; None and ``{}`` for a plain graph.
    routing : str
        The policy in force (``"auto"`` resolved: ``"dimension-order"``, ``"shortest"``,
        ...; see :data:`POLICIES`).
    multipath : bool
        The policy splits flows over several paths (``spread`` with more than one path):
        use :meth:`weighted_routes` for the shares.
    half_duplex : numpy.ndarray of bool
        Per directed link: half duplex (its reverse direction reports the same resource id,
        ``2e``, in routes).
    graph : networkx.Graph
        The graph it was compiled from (do not modify it afterwards).
    """

    def __init__(self, G, nodes, kinds, eu, ev, bw, lat, routing, structure=None, half=None):
        N = len(nodes)
        self.graph = G
        self.nodes = tuple(nodes)
        self.index = {v: i for i, v in enumerate(nodes)}
        self.nnodes = N
        self.nlinks = 2 * len(eu)
        self.is_endpoint = np.array([kinds[v] == "endpoint" for v in nodes], dtype=bool)
        self.endpoints = np.flatnonzero(self.is_endpoint).astype(np.int64)
        family, params, ref_links = structure if structure is not None else (None, {}, None)
        self.family = family
        self.params = dict(params)
        self.routing = routing
        src = np.empty(self.nlinks, dtype=np.int32)
        dst = np.empty(self.nlinks, dtype=np.int32)
        src[0::2], src[1::2] = eu, ev
        dst[0::2], dst[1::2] = ev, eu
        self.link_src, self.link_dst = src, dst
        self.link_bandwidth = np.repeat(np.asarray(bw, dtype=np.float64), 2)
        self.link_latency = np.repeat(np.asarray(lat, dtype=np.float64), 2)
        # A half-duplex edge e is one resource: both directions report link 2e.
        half = np.zeros(len(eu), dtype=bool) if half is None else np.asarray(half, dtype=bool)
        self.half_duplex = np.repeat(half, 2)
        self._resource = None
        if half.any():
            res = np.arange(self.nlinks, dtype=np.int64)
            res[1::2][half] -= 1
            self._resource = res
        keys = src.astype(np.int64) * N + dst
        self._key_order = np.argsort(keys, kind="stable")
        self._keys = keys[self._key_order]
        self._identity = nodes == list(range(N))
        for a in (src, dst, self.link_bandwidth, self.link_latency, self.is_endpoint,
                  self.endpoints, self._key_order, self._keys, self.half_duplex):
            a.flags.writeable = False
        self._dest_cache: dict = {}
        self._dest_cached = 0
        self._count_cache: dict = {}
        self._pair_keys = np.empty(0, dtype=np.int64)
        self._pair_ptr = np.zeros(1, dtype=np.int64)
        self._pair_links = np.empty(0, dtype=np.int64)
        self._router = _FORMULA.get((family, routing))
        if (self._router == "_route_fully_connected"
                and self.link_latency.size
                and self.link_latency.max() > self.link_latency.min()):
            # the direct link is the latency-shortest path only where every link has one
            # latency: with mixed latencies a two-hop detour can be shorter
            self._router = None
        #: the policy splits a flow over several paths (see :meth:`weighted_routes`)
        self.multipath = routing == "spread" and self._router is None
        # ref_links: the generator's directed link id -> ours (-1: a failed link), when
        # links of the structure are missing; formula routes then detour (see _repair)
        self._ref_links = ref_links
        self._partial = ref_links is not None
        # spread on an intact fat-tree / GPU cluster: every up/down path, by formula
        self._spreader = None if self._partial or not self.multipath else _SPREAD.get(family)
        self._layout_cache = None
        self._ltab = None

    def __repr__(self) -> str:
        fam = f"{self.family}, " if self.family else ""
        return (f"Network({fam}{self.nnodes} nodes, {len(self.endpoints)} endpoints, "
                f"{self.nlinks} links, routing={self.routing!r})")

    def resource_ids(self, links: np.ndarray) -> np.ndarray:
        """The capacity each directed link id draws on: itself, or for the reverse direction
        of a half-duplex link the forward link ``2e`` (both directions share one capacity)."""
        return links if self._resource is None else self._resource[links]

    # ------------------------------------------------------------------- lookups

    def index_of(self, labels) -> np.ndarray:
        """Node indices (int64 array) of an array-like of node labels.

        Examples
        --------
        >>> from topologies import ring
        >>> compile_network(ring(4)).index_of([3, 0]).tolist()
        [3, 0]
        """
        if self._identity:
            idx = np.asarray(labels, dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= self.nnodes):
                raise ValueError(f"node labels out of range 0..{self.nnodes - 1}")
            return idx
        try:
            return np.array([self.index[v] for v in labels], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"{e.args[0]!r} is not a node of this network") from None

    def link_ids(self, src, dst) -> np.ndarray:
        """Directed link id from each ``src[i]`` to ``dst[i]`` (node indices), vectorised.

        A hash table of the links (built on first use) answers each pair in constant
        expected time, a probe or two, where a binary search over all the links took
        ``log2(links)`` dependent reads. Where parallel links join a pair, the one with
        the lowest id is returned.

        Raises ``ValueError`` if some pair is not linked.

        Examples
        --------
        >>> from topologies import ring
        >>> net = compile_network(ring(4))
        >>> net.link_ids([0, 1], [1, 0]).tolist()
        [0, 1]
        """
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        ids = self._find_links(src, dst)
        if ids.size and ids.min() < 0:
            i = int(np.flatnonzero(ids.reshape(-1) < 0)[0])
            u, v = self.nodes[src.flat[i]], self.nodes[dst.flat[i]]
            raise ValueError(f"no link from {u!r} to {v!r}")
        return ids

    def _find_links(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """:meth:`link_ids` with -1 where a pair is not linked (a failed link)."""
        q = (src * self.nnodes + dst).reshape(-1)
        tab_keys, tab_ids, bits = self._link_table()
        h = _fib_slot(q, bits)
        got = tab_keys[h]
        hit = got == q
        out = tab_ids[h]
        if hit.all():  # the common case: every key in its own slot
            return out.reshape(src.shape)
        out[~hit] = -1
        mask = len(tab_keys) - 1
        todo = np.flatnonzero(~hit & (got >= 0))
        h[todo] = (h[todo] + 1) & mask
        while len(todo):  # linear probing; an empty slot means no such link
            got = tab_keys[h[todo]]
            hit = got == q[todo]
            out[todo[hit]] = tab_ids[h[todo[hit]]]
            todo = todo[~hit & (got >= 0)]
            h[todo] = (h[todo] + 1) & mask
        return out.reshape(src.shape)

    def _link_table(self):
        """``(keys, link ids, bits)``: the links in an open-addressing table of ``2**bits``
        slots (linear probing), keyed ``src * nnodes + dst``; -1 marks an empty slot."""
        if self._ltab is None:
            keys, ids = self._keys, self._key_order  # sorted: parallel links in id order
            E = len(keys)
            bits = max(1, (2 * E - 1).bit_length())  # at most half full
            tab_keys = np.full(1 << bits, -1, dtype=np.int64)
            tab_ids = np.zeros(1 << bits, dtype=np.int64)
            slot = _fib_slot(keys, bits)
            todo = np.arange(E)
            while len(todo):
                # every waiting key tries its slot; the first (lowest) of those that want
                # the same free slot takes it, the others move one slot on
                at = slot[todo]
                free = tab_keys[at] < 0
                cand = todo[free]
                won, first = np.unique(at[free], return_index=True)
                tab_keys[won] = keys[cand[first]]
                tab_ids[won] = ids[cand[first]]
                placed = np.zeros(E, dtype=bool)
                placed[cand[first]] = True
                todo = todo[~placed[todo]]
                slot[todo] = (slot[todo] + 1) & ((1 << bits) - 1)
            self._ltab = (tab_keys, tab_ids, bits)
        return self._ltab

    # ------------------------------------------------------------------- routing

    def routes(self, src, dst, check: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Paths of many pairs at once.

        Parameters
        ----------
        src, dst : array_like of int
            Node indices (equal-length 1-D).
        check : bool
            Validate the indices (in range; endpoints, under formula routing). ``False`` is
            for callers that already know them valid (the simulator's placed ranks).

        Returns
        -------
        ptr : numpy.ndarray of int64, shape (m + 1,)
        links : numpy.ndarray of int64
            ``links[ptr[i]:ptr[i+1]]`` are the directed link ids from ``src[i]`` to ``dst[i]``
            in path order (none when ``src[i] == dst[i]``).

        Examples
        --------
        >>> from topologies import switch
        >>> net = compile_network(switch(4))
        >>> ptr, links = net.routes([0, 1], [2, 1])
        >>> ptr.tolist(), net.link_src[links].tolist(), net.link_dst[links].tolist()
        ([0, 2, 2], [0, 4], [4, 2])
        """
        src, dst = self._checked(src, dst, check, "routes")
        ptr, links = self._directed_routes(src, dst)
        return ptr, self.resource_ids(links)

    def weighted_routes(self, src, dst, check: bool = True
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Routes with the fraction of each flow that crosses each link.

        Returns ``(ptr, links, share)``: ``links[ptr[i]:ptr[i+1]]`` are the links that the
        flow ``src[i] -> dst[i]`` uses (each once) and ``share`` (float64, one per entry) the
        fraction of the flow's rate that crosses that link. Single-path policies give the
        path of :meth:`routes` with shares 1. ``spread`` gives every link of every
        equal-cost path, each path carrying ``1/k`` of the flow (``k`` paths; shares summed
        where paths share a link), so a link's load is ``sum_f share_fl * rate_f``. Links
        are resource ids as in :meth:`routes` (half duplex: both directions one id).

        Examples
        --------
        >>> from topologies import fat_tree
        >>> net = compile_network(fat_tree(4), routing="spread")
        >>> ptr, links, share = net.weighted_routes([0], [15])  # other pod: 4 paths
        >>> ptr.tolist(), sorted(share.tolist())[::4]
        ([0, 14], [0.25, 0.25, 0.5, 1.0])
        """
        src, dst = self._checked(src, dst, check, "weighted_routes")
        if self.multipath:
            ptr, links, share = self._spread(src, dst)
        else:
            ptr, links = self._directed_routes(src, dst)
            share = np.ones(len(links), dtype=np.float64)
        return ptr, self.resource_ids(links), share

    def _spread(self, src, dst):
        if self._spreader is not None and (
                not src.size or (self.is_endpoint[src].all() and self.is_endpoint[dst].all())):
            return getattr(self, self._spreader)(src, dst)
        return self._route_spread(src, dst)

    def _checked(self, src, dst, check: bool, what: str) -> tuple[np.ndarray, np.ndarray]:
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        if not check:
            return src, dst
        if src.ndim != 1 or src.shape != dst.shape:
            raise ValueError(
                f"{what}: src and dst must be 1-D arrays of equal length, got shapes "
                f"{src.shape} and {dst.shape}"
            )
        for name, a in (("src", src), ("dst", dst)):
            if a.size and (a.min() < 0 or a.max() >= self.nnodes):
                raise ValueError(f"{what}: {name} holds node indices outside "
                                 f"0..{self.nnodes - 1}")
        if self._router is not None and src.size and not (
                self.is_endpoint[src].all() and self.is_endpoint[dst].all()):
            raise ValueError(f"{what}: {self.routing!r} routing on a {self.family} connects "
                             "endpoints only; got a switch")
        return src, dst

    def _directed_routes(self, src, dst) -> tuple[np.ndarray, np.ndarray]:
        """Single paths as directed link ids (before half-duplex links are merged)."""
        if self._router is None:
            return self._route_shortest(src, dst)
        ptr, links = getattr(self, self._router)(src, dst)
        if self._partial:
            ptr, links = self._repair(src, dst, ptr, links)
        return ptr, links

    def _repair(self, src, dst, ptr, links) -> tuple[np.ndarray, np.ndarray]:
        """Formula routes that cross a failed link (-1) replaced by shortest paths over the
        links that remain."""
        bad_entry = links < 0
        if not bad_entry.any():
            return ptr, links
        bad = np.zeros(len(src), dtype=bool)
        bad[np.searchsorted(ptr, np.flatnonzero(bad_entry), side="right") - 1] = True
        rows = np.flatnonzero(bad)
        gptr, glinks = self._route_shortest(src[rows], dst[rows])
        lens = np.diff(ptr)
        lens[rows] = np.diff(gptr)
        nptr = np.zeros(len(src) + 1, dtype=np.int64)
        np.cumsum(lens, out=nptr[1:])
        out = np.empty(nptr[-1], dtype=np.int64)
        good = np.flatnonzero(~bad)
        _, gpos = _segments(ptr, good)
        _, dpos = _segments(nptr, good)
        out[dpos] = links[gpos]
        _, dpos = _segments(nptr, rows)
        out[dpos] = glinks
        return nptr, out

    def route_table(self, src, dst) -> dict:
        """One route spelled out, for people: ``{"hops": [{"from", "to", "link",
        "bandwidth", "latency", "share"}, ...], "latency": s, "bottleneck": bytes/s}``.

        ``src``, ``dst`` are node labels. ``latency`` is the path latency (for ``spread``,
        that of every one of the equal-cost paths); ``bottleneck`` the smallest
        ``bandwidth / share`` over the hops (the rate one flow alone gets).

        Examples
        --------
        >>> from topologies import torus
        >>> t = compile_network(torus((4, 4))).route_table(0, 5)
        >>> [(h["from"], h["to"]) for h in t["hops"]], round(t["latency"] * 1e6, 9)
        ([(0, 4), (4, 5)], 2.0)
        """
        for v in (src, dst):
            if v not in self.index:
                raise ValueError(f"{v!r} is not a node of this network")
        s = np.array([self.index[src]])
        d = np.array([self.index[dst]])
        s, d = self._checked(s, d, True, "route")
        if self.multipath:
            ptr, links, share = self._spread(s, d)
        else:
            ptr, links = self._directed_routes(s, d)
            share = np.ones(len(links))
        hops = [{"from": self.nodes[self.link_src[k]], "to": self.nodes[self.link_dst[k]],
                 "link": int(self.resource_ids(np.array([k]))[0]),
                 "bandwidth": float(self.link_bandwidth[k]),
                 "latency": float(self.link_latency[k]), "share": float(f)}
                for k, f in zip(links.tolist(), share.tolist(), strict=True)]
        lat = float(np.dot(share, self.link_latency[links])) if len(links) else 0.0
        neck = float(np.min(self.link_bandwidth[links] / share)) if len(links) else np.inf
        return {"hops": hops, "latency": lat, "bottleneck": neck, "routing": self.routing}

    def path_latency(self, ptr, links) -> np.ndarray:
        """Sum of link latencies along each path of a CSR (0 for an empty path)."""
        return self._reduce(np.add, self.link_latency, ptr, links, 0.0)

    def path_bottleneck(self, ptr, links) -> np.ndarray:
        """Smallest link bandwidth along each path of a CSR (``inf`` for an empty path)."""
        return self._reduce(np.minimum, self.link_bandwidth, ptr, links, np.inf)

    @staticmethod
    def _reduce(ufunc, values, ptr, links, empty) -> np.ndarray:
        ptr = np.asarray(ptr, dtype=np.int64)
        out = np.full(len(ptr) - 1, empty, dtype=np.float64)
        nonempty = ptr[1:] > ptr[:-1]
        if nonempty.any():
            vals = values[np.asarray(links, dtype=np.int64)[: ptr[-1]]]
            out[nonempty] = ufunc.reduceat(vals, ptr[:-1][nonempty])
        return out

    # ------------------------------------------------------------------- formula routers

    def _csr(self, a, b, nhops) -> tuple[np.ndarray, np.ndarray]:
        ptr = np.zeros(len(nhops) + 1, dtype=np.int64)
        np.cumsum(nhops, out=ptr[1:])
        # with failed links, a missing hop is -1 and the route detours (_repair)
        return ptr, (self._find_links(a, b) if self._partial else self.link_ids(a, b))

    def _compact(self, M: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``M`` (node indices, one path per row) restricted to ``mask`` -> CSR."""
        counts = mask.sum(axis=1)
        flat = M.reshape(-1)[np.flatnonzero(mask.reshape(-1))]  # M[mask], faster
        keep = np.ones(max(len(flat) - 1, 0), dtype=bool)
        ends = np.cumsum(counts)[:-1]
        keep[ends - 1] = False  # the pair (last of a row, first of the next) is no hop
        return self._csr(flat[:-1][keep], flat[1:][keep], counts - 1)

    def _route_fully_connected(self, s, d):
        M = np.stack([s, d], axis=1)
        mask = np.stack([np.ones_like(s, dtype=bool), s != d], axis=1)
        return self._compact(M, mask)

    def _route_switch(self, s, d):
        hub = np.full_like(s, self.params["n"])
        M = np.stack([s, hub, d], axis=1)
        diff = s != d
        return self._compact(M, np.stack([np.ones_like(diff), diff, diff], axis=1))

    def _route_torus(self, s, d):
        dims = [self.params["n"]] if self.family == "ring" else list(self.params["dims"])
        strides = np.cumprod([1] + dims[::-1])[:-1][::-1].tolist()
        cs = [(s // st) % n for st, n in zip(strides, dims, strict=True)]
        cd = [(d // st) % n for st, n in zip(strides, dims, strict=True)]
        steps, sign = [], []
        for i, n in enumerate(dims):
            fwd = (cd[i] - cs[i]) % n
            up = (2 * fwd < n) | ((2 * fwd == n) & (cs[i] % 2 == 0))
            steps.append(np.where(up, fwd, n - fwd))
            sign.append(np.where(up, 1, -1))
        steps = np.stack(steps, axis=1)  # (m, D)
        nhops = steps.sum(axis=1)
        total = int(nhops.sum())
        pair = np.repeat(np.arange(len(s)), nhops)
        start = np.zeros(len(s), dtype=np.int64)
        np.cumsum(nhops[:-1], out=start[1:])
        k = np.arange(total, dtype=np.int64) - start[pair]  # hop number within its path
        cum = np.cumsum(steps, axis=1)
        a = np.empty(total, dtype=np.int64)
        b = np.empty(total, dtype=np.int64)
        before = np.zeros(total, dtype=np.int64)
        for i, n in enumerate(dims):
            here = (k >= before) & (k < cum[pair, i])
            p = pair[here]
            t = k[here] - before[here]
            # dimensions < i already at the destination, dimensions > i still at the source
            base = (s[p] + sum((cd[j][p] - cs[j][p]) * strides[j] for j in range(i))
                    - cs[i][p] * strides[i])
            c0 = (cs[i][p] + sign[i][p] * t) % n
            c1 = (c0 + sign[i][p]) % n
            a[here] = base + c0 * strides[i]
            b[here] = base + c1 * strides[i]
            before = cum[pair, i]
        return self._csr(a, b, nhops)

    @staticmethod
    def _links_csr(K: np.ndarray, mask: np.ndarray, nhops=None) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``K`` (link ids, one path per row) restricted to ``mask`` -> CSR
        (``nhops``: the row counts of ``mask``, when the caller knows them)."""
        ptr = np.zeros(len(K) + 1, dtype=np.int64)
        np.cumsum(mask.sum(axis=1) if nhops is None else nhops, out=ptr[1:])
        # K[mask], but a gather at the kept positions is several times faster
        return ptr, K.reshape(-1)[np.flatnonzero(mask.reshape(-1))]

    # fat_tree and gpu_cluster compute link ids directly from the edge order that compile
    # produces (and _matches_family guarantees): edge e = sorted (u < v) position, link 2e
    # goes up (u -> v), 2e + 1 down.

    def _layout(self):
        """The generator's layout of this network (fat_tree, gpu_cluster, dragonfly), cached."""
        if self._layout_cache is None:
            P, fam = self.params, self.family
            if fam == "fat_tree":
                self._layout_cache = gen.fat_tree_layout(P["k"], P["hosts"])
            elif fam == "gpu_cluster":
                self._layout_cache = gen.gpu_cluster_layout(P["nodes"], P["gpus_per_node"],
                                                            P["leaf_radix"])
            else:
                self._layout_cache = gen.dragonfly_layout(P["groups"], P["routers"], P["hosts"])
        return self._layout_cache

    def _ref(self, K: np.ndarray) -> np.ndarray:
        """Formula link ids (the generator's numbering) -> ours; -1 for a failed link."""
        return K if self._ref_links is None else self._ref_links[K]

    def _route_fat_tree(self, s, d):
        L = self._layout()
        half = L.half
        if self.routing == "dmodk":
            # destination-mod-k (Zahavi; SimGrid's FatTreeZone, InfiniBand's ftree/updn
            # managers): an edge switch goes up port d mod k/2, an aggregation switch port
            # (d div k/2) mod k/2, d the destination host
            a = d % half
            j = (d // half) % half
        else:  # hashed ECMP: one hash picks the aggregation and core switch
            q, a = _umod(pair_hash(s, d), half)
            j = _umod(q, half)[1]
        K, mask, nhops = self._fat_tree_links(L, s, d, a, j)
        if self._partial:  # a failed link on the way: the next up-ports, core first
            bad = ((K < 0) & mask).any(axis=1)
            for t in range(1, half * half):
                if not bad.any():
                    break
                rows = np.flatnonzero(bad)
                a2 = (a[rows] + t // half) % half
                j2 = (j[rows] + t % half) % half
                K2, _, _ = self._fat_tree_links(L, s[rows], d[rows], a2, j2)
                ok = ~((K2 < 0) & mask[rows]).any(axis=1)
                K[rows[ok]] = K2[ok]
                bad[rows[ok]] = False
        return self._links_csr(K, mask, nhops)

    def _fat_tree_links(self, L, s, d, a, j):
        half, H = L.half, L.hosts
        es, ed = s // half, d // half
        ps, pd = es // half, ed // half
        agg_core = H + L.edges * half  # first aggregation -> core edge
        K = np.stack([
            2 * s,  # host -> edge switch
            2 * (H + es * half + a),  # edge -> aggregation
            2 * (agg_core + (ps * half + a) * half + j),  # aggregation -> core
            2 * (agg_core + (pd * half + a) * half + j) + 1,  # core -> aggregation
            2 * (H + ed * half + a) + 1,  # aggregation -> edge
            2 * d + 1,  # edge switch -> host
        ], axis=1)
        diff, other_edge, other_pod = s != d, es != ed, ps != pd
        mask = np.stack([diff, other_edge, other_pod, other_pod, other_edge, diff], axis=1)
        nhops = 2 * (diff.view(np.int8) + other_edge.view(np.int8) + other_pod.view(np.int8))
        return self._ref(K), mask, nhops

    def _route_gpu_cluster(self, s, d):
        L = self._layout()
        nsp = max(L.spines, 1)
        # dmodk: a leaf goes up port d mod (spines); else by hash
        spine = d % nsp if self.routing == "dmodk" else _umod(pair_hash(s, d), nsp)[1]
        K, mask = self._gpu_cluster_links(L, s, d, spine)
        if self._partial:  # a failed link on the way: the next spines in turn
            bad = ((K < 0) & mask).any(axis=1)
            for t in range(1, nsp):
                if not bad.any():
                    break
                rows = np.flatnonzero(bad)
                K2, _ = self._gpu_cluster_links(L, s[rows], d[rows], (spine[rows] + t) % nsp)
                ok = ~((K2 < 0) & mask[rows]).any(axis=1)
                K[rows[ok]] = K2[ok]
                bad[rows[ok]] = False
        return self._links_csr(K, mask)

    def _gpu_cluster_links(self, L, s, d, spine):
        g = L.gpus_per_node
        ns, nd = s // g, d // g
        ls, ld = ns // L.servers_per_leaf, nd // L.servers_per_leaf
        if g > 1:  # GPU v: edge 2v to its NVLink switch, 2v + 1 to its leaf
            nic_s, nic_d, leaf_spine = 2 * s + 1, 2 * d + 1, 2 * L.gpus
        else:
            nic_s, nic_d, leaf_spine = s, d, L.gpus
        K = np.stack([
            4 * s,  # GPU -> NVLink switch (edge 2s)
            4 * d + 1,  # NVLink switch -> GPU
            2 * nic_s,  # GPU -> leaf
            2 * (leaf_spine + ls * L.spines + spine),  # leaf -> spine
            2 * (leaf_spine + ld * L.spines + spine) + 1,  # spine -> leaf
            2 * nic_d + 1,  # leaf -> GPU
        ], axis=1)
        diff = s != d
        same_server = diff & (ns == nd)
        other_server = ns != nd
        other_leaf = ls != ld
        mask = np.stack([same_server, same_server, other_server, other_leaf, other_leaf,
                         other_server], axis=1)
        if self._ref_links is not None:  # masked-off entries may index past the table
            K = np.where(mask, K, 0)
        return self._ref(K), mask

    @staticmethod
    def _spread_csr(K, S, mask):
        """Rows of link ids ``K`` with shares ``S`` restricted to ``mask`` -> weighted CSR."""
        ptr = np.zeros(len(K) + 1, dtype=np.int64)
        np.cumsum(mask.sum(axis=1), out=ptr[1:])
        at = np.flatnonzero(mask.reshape(-1))
        return ptr, K.reshape(-1)[at], np.broadcast_to(S, K.shape).reshape(-1)[at]

    def _spread_fat_tree(self, s, d):
        """``spread`` on a fat-tree: every up/down path. Between pods the flow halves over
        the ``k/2`` aggregation switches and again over their ``k/2`` cores each; within a pod
        it splits over the aggregation switches."""
        L = self._layout()
        half, H = L.half, L.hosts
        es, ed = s // half, d // half
        ps, pd = es // half, ed // half
        agg_core = H + L.edges * half
        a = np.arange(half)
        aj = np.arange(half * half)  # a * half + j
        col = lambda x: x[:, None]  # noqa: E731
        K = np.concatenate([
            col(2 * s),
            2 * (H + col(es) * half + a),
            2 * (agg_core + col(ps) * half * half + aj),
            2 * (agg_core + col(pd) * half * half + aj) + 1,
            2 * (H + col(ed) * half + a) + 1,
            col(2 * d + 1),
        ], axis=1)
        h2 = half * half
        S = np.concatenate([[1.0], np.full(half, 1.0 / half), np.full(2 * h2, 1.0 / h2),
                            np.full(half, 1.0 / half), [1.0]])
        diff, other_edge, other_pod = s != d, es != ed, ps != pd
        mask = np.concatenate([col(diff), np.repeat(col(other_edge), half, axis=1),
                               np.repeat(col(other_pod), 2 * h2, axis=1),
                               np.repeat(col(other_edge), half, axis=1), col(diff)], axis=1)
        return self._spread_csr(K, S, mask)

    def _spread_gpu_cluster(self, s, d):
        """``spread`` on a GPU cluster: between leaves the flow splits over every spine."""
        L = self._layout()
        g, nsp = L.gpus_per_node, L.spines
        ns, nd = s // g, d // g
        ls, ld = ns // L.servers_per_leaf, nd // L.servers_per_leaf
        if g > 1:
            nic_s, nic_d, leaf_spine = 2 * s + 1, 2 * d + 1, 2 * L.gpus
        else:
            nic_s, nic_d, leaf_spine = s, d, L.gpus
        sp = np.arange(nsp)
        col = lambda x: x[:, None]  # noqa: E731
        K = np.concatenate([
            col(4 * s), col(4 * d + 1), col(2 * nic_s),
            2 * (leaf_spine + col(ls) * nsp + sp),
            2 * (leaf_spine + col(ld) * nsp + sp) + 1,
            col(2 * nic_d + 1),
        ], axis=1)
        S = np.concatenate([[1.0, 1.0, 1.0], np.full(2 * nsp, 1.0 / max(nsp, 1)), [1.0]])
        diff = s != d
        same_server = diff & (ns == nd)
        other_server = ns != nd
        other_leaf = ls != ld
        mask = np.concatenate([col(same_server), col(same_server), col(other_server),
                               np.repeat(col(other_leaf), 2 * nsp, axis=1),
                               col(other_server)], axis=1)
        return self._spread_csr(K, S, mask)

    def _route_dragonfly(self, s, d):
        L = self._layout()
        rs, rd = s // L.hosts, d // L.hosts  # global router numbers
        gs, gd = rs // L.routers, rd // L.routers
        x = gs * L.routers + gen.dragonfly_global_router(L, gs, gd)
        y = gd * L.routers + gen.dragonfly_global_router(L, gd, gs)
        R0 = L.first_router
        M = np.stack([s, R0 + rs, R0 + x, R0 + y, R0 + rd, d], axis=1)
        diff = s != d
        other_group = gs != gd
        mask = np.stack([
            np.ones_like(diff),
            diff,
            other_group & (x != rs),
            other_group,
            diff & np.where(other_group, rd != y, rd != rs),
            diff,
        ], axis=1)
        return self._compact(M, mask)

    # ------------------------------------------------------------------- shortest paths

    _CACHE_LIMIT = 50_000_000  # entries kept in each cache before it is dropped

    def _next_hops(self, dests: np.ndarray) -> None:
        """Fill the per-destination cache: for each node, its equal-cost next-hop links."""
        N = self.nnodes
        order = np.argsort(self.link_src, kind="stable")  # links grouped by source node
        src_o = self.link_src[order].astype(np.int64)
        dst_o = self.link_dst[order].astype(np.int64)
        lat_o = self.link_latency[order]
        out_nodes, starts = np.unique(src_o, return_index=True)
        batch = max(1, int(4_000_000 // max(len(order), 1)))
        for b0 in range(0, len(dests), batch):
            ds = dests[b0:b0 + batch]
            D, rows = len(ds), np.arange(len(ds))
            dist = np.full((D, N), np.inf)
            dist[rows, ds] = 0.0
            if len(order):
                while True:  # Bellman-Ford, all destinations of the batch at once
                    best = np.minimum.reduceat(dist[:, dst_o] + lat_o, starts, axis=1)
                    new = np.minimum(dist[:, out_nodes], best)
                    if np.array_equal(new, dist[:, out_nodes]):
                        break
                    dist[:, out_nodes] = new
            du = dist[:, src_o]
            with np.errstate(invalid="ignore"):  # inf - inf where a node cannot reach
                tight = np.abs(du - (lat_o + dist[:, dst_o])) <= 1e-9 * du
            big = N + 1
            hops = np.full((D, N), big, dtype=np.int64)
            hops[rows, ds] = 0
            if len(order):
                while True:  # hop counts within the shortest-path subgraph
                    cand = np.where(tight, hops[:, dst_o] + 1, big)
                    new = np.minimum(hops[:, out_nodes], np.minimum.reduceat(cand, starts, axis=1))
                    if np.array_equal(new, hops[:, out_nodes]):
                        break
                    hops[:, out_nodes] = new
            ok = tight & (hops[:, src_o] == hops[:, dst_o] + 1)
            for r, dest in enumerate(ds.tolist()):
                sel = ok[r]
                ptr = np.zeros(N + 1, dtype=np.int64)
                np.cumsum(np.bincount(src_o[sel], minlength=N), out=ptr[1:])
                self._dest_cache[dest] = (ptr, order[sel].astype(np.int64))
                self._dest_cached += N + int(sel.sum())

    def _tables(self, d: np.ndarray):
        """The next-hop tables of the destinations ``d``, stacked: ``(slot, ptr_all,
        links_all, udest)``; row ``slot[i] * (N + 1) + node`` of ``ptr_all`` bounds the
        equal-cost next-hop links from ``node`` towards ``d[i]``."""
        if self._dest_cached > self._CACHE_LIMIT:
            self._dest_cache.clear()
            self._count_cache.clear()
            self._dest_cached = 0
        udest, slot = np.unique(d, return_inverse=True)
        missing = np.array([x for x in udest.tolist() if x not in self._dest_cache], np.int64)
        if len(missing):
            self._next_hops(missing)
        tables = [self._dest_cache[x] for x in udest.tolist()]
        offs = np.cumsum([0] + [len(t[1]) for t in tables[:-1]])
        ptr_all = np.concatenate([t[0] + o for t, o in zip(tables, offs, strict=True)])
        links_all = np.concatenate([t[1] for t in tables])
        return slot, ptr_all, links_all, udest

    def _no_path(self, s, d) -> ValueError:
        return ValueError(
            f"no route from node {self.nodes[s]!r} to node {self.nodes[d]!r}: no links join "
            "them (a failed or missing link cut one off); add a link or drop the rank"
        )

    def _walk(self, s: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shortest paths of distinct pairs (no cache lookup), as a CSR."""
        slot, ptr_all, links_all, _ = self._tables(d)
        N1 = self.nnodes + 1
        h = pair_hash(s, d)
        cur = s.copy()
        idx = np.arange(len(s))
        out_pair, out_link = [], []
        while len(idx):
            act = cur[idx] != d[idx]
            idx = idx[act]
            if not len(idx):
                break
            c = cur[idx]
            row = slot[idx] * N1 + c
            start = ptr_all[row]
            cnt = ptr_all[row + 1] - start
            if (cnt == 0).any():
                i = idx[np.flatnonzero(cnt == 0)[0]]
                raise self._no_path(s[i], d[i])
            pick = _mix(h[idx] ^ (c.astype(_U) * _GOLDEN)) % cnt.astype(_U)
            link = links_all[start + pick.astype(np.int64)]
            out_pair.append(idx)
            out_link.append(link)
            cur[idx] = self.link_dst[link]
        nh = np.zeros(len(s), dtype=np.int64)
        ptr = np.zeros(len(s) + 1, dtype=np.int64)
        if out_pair:
            pairs = np.concatenate(out_pair)
            links = np.concatenate(out_link)
            order = np.argsort(pairs, kind="stable")
            links = links[order]
            nh = np.bincount(pairs, minlength=len(s))
        else:
            links = np.empty(0, dtype=np.int64)
        np.cumsum(nh, out=ptr[1:])
        return ptr, links

    def _path_counts(self, udest) -> np.ndarray:
        """Per destination (stacked rows of ``N``): the number of equal-cost paths from
        every node to it (float64; 0 where it is unreachable)."""
        N = self.nnodes
        rows = []
        for x in udest.tolist():
            cnt = self._count_cache.get(x)
            if cnt is None:
                ptr, links = self._dest_cache[x]
                frm = np.repeat(np.arange(N), np.diff(ptr))
                to = self.link_dst[links]
                cnt = np.zeros(N)
                cnt[x] = 1.0
                while True:  # paths from u = sum over its next hops v of paths from v
                    new = np.bincount(frm, weights=cnt[to], minlength=N)
                    new[x] = 1.0
                    if np.array_equal(new, cnt):
                        break
                    cnt = new
                self._count_cache[x] = cnt
            rows.append(cnt)
        return np.concatenate(rows) if rows else np.zeros(0)

    def _route_spread(self, src, dst) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every equal-cost path of each pair, each carrying an equal part of the flow.

        A node passes its part on to its next hops in proportion to the number of paths
        onward from each, which gives every path the same ``1/k``; the parts arriving at a
        node by several links merge. All the paths of a pair have the same hop count, so the
        pairs advance in lock step, one hop per round, all pairs at once.
        """
        N = self.nnodes
        m = len(src)
        if m == 0:
            return np.zeros(1, np.int64), np.empty(0, np.int64), np.empty(0)
        slot, ptr_all, links_all, udest = self._tables(dst)
        counts = self._path_counts(udest)
        N1 = N + 1
        pair, node, frac = np.arange(m), src.copy(), np.ones(m)
        out_p, out_l, out_f = [], [], []
        while True:
            act = node != dst[pair]
            pair, node, frac = pair[act], node[act], frac[act]
            if not len(pair):
                break
            row = slot[pair] * N1 + node
            start = ptr_all[row]
            cnt = ptr_all[row + 1] - start
            if (cnt == 0).any():
                i = pair[np.flatnonzero(cnt == 0)[0]]
                raise self._no_path(src[i], dst[i])
            rep = np.repeat(np.arange(len(pair)), cnt)
            first = np.zeros(len(cnt), dtype=np.int64)
            np.cumsum(cnt[:-1], out=first[1:])
            lk = links_all[np.repeat(start - first, cnt) + np.arange(int(cnt.sum()))]
            p2 = pair[rep]
            nxt = self.link_dst[lk].astype(np.int64)
            base = slot[p2] * N
            part = frac[rep] * counts[base + nxt] / counts[base + node[rep]]
            out_p.append(p2)
            out_l.append(lk)
            out_f.append(part)
            key, inv = np.unique(p2 * N + nxt, return_inverse=True)
            pair, node = key // N, key % N
            frac = np.bincount(inv, weights=part)
        pairs = np.concatenate(out_p) if out_p else np.empty(0, np.int64)
        order = np.argsort(pairs, kind="stable")
        links = np.concatenate(out_l)[order] if out_l else np.empty(0, np.int64)
        share = np.concatenate(out_f)[order] if out_f else np.empty(0)
        ptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(np.bincount(pairs, minlength=m), out=ptr[1:])
        return ptr, links, share

    def _route_shortest(self, src, dst):
        N = self.nnodes
        keys, inv = np.unique(src * N + dst, return_inverse=True)
        pos = np.searchsorted(self._pair_keys, keys)
        pos_c = np.minimum(pos, max(len(self._pair_keys) - 1, 0))
        hit = (self._pair_keys[pos_c] == keys) if len(self._pair_keys) else np.zeros(
            len(keys), bool)
        if not hit.all():
            new = keys[~hit]
            nptr, nlinks = self._walk(new // N, new % N)
            if len(self._pair_links) + len(nlinks) > self._CACHE_LIMIT:
                self._pair_keys = np.empty(0, dtype=np.int64)
                self._pair_ptr = np.zeros(1, dtype=np.int64)
                self._pair_links = np.empty(0, dtype=np.int64)
            allkeys = np.concatenate([self._pair_keys, new])
            allptr = np.concatenate([self._pair_ptr, nptr[1:] + self._pair_ptr[-1]])
            alllinks = np.concatenate([self._pair_links, nlinks])
            order = np.argsort(allkeys, kind="stable")
            ptr, at = _segments(allptr, order)
            self._pair_keys, self._pair_ptr, self._pair_links = allkeys[order], ptr, alllinks[at]
            pos = np.searchsorted(self._pair_keys, keys)
        ptr, at = _segments(self._pair_ptr, pos[inv])
        return ptr, self._pair_links[at]


#: Routing policies :func:`compile_network` takes (see docs/routing.md).
POLICIES = {
    "auto": "the structure's natural policy (dimension-order on tori and rings, dmodk on "
            "fat-trees and GPU clusters, minimal on dragonflies, shortest elsewhere)",
    "shortest": "latency-shortest paths, one per (src, dst) chosen by hash among equal-cost "
                "ones (static ECMP switches)",
    "spread": "every flow split evenly over all its equal-cost paths (adaptive routing, "
              "packet spraying)",
    "dimension-order": "tori and rings: dimension 0 first, the shorter way round",
    "dmodk": "fat-trees and GPU clusters: up-port = destination mod k (InfiniBand, SimGrid)",
    "minimal": "dragonflies: local, global, local",
}

#: (family, policy) -> the Network method routing it by formula; a pair not listed routes
#: over the graph (shortest paths, or all of them for spread).
_FORMULA = {
    ("fully_connected", "shortest"): "_route_fully_connected",
    ("fully_connected", "spread"): "_route_fully_connected",
    ("switch", "shortest"): "_route_switch",
    ("switch", "spread"): "_route_switch",
    ("ring", "dimension-order"): "_route_torus",
    ("torus", "dimension-order"): "_route_torus",
    ("fat_tree", "shortest"): "_route_fat_tree",
    ("fat_tree", "dmodk"): "_route_fat_tree",
    ("gpu_cluster", "shortest"): "_route_gpu_cluster",
    ("gpu_cluster", "dmodk"): "_route_gpu_cluster",
    ("dragonfly", "minimal"): "_route_dragonfly",
}
#: family -> the Network method spreading flows by formula (intact graphs only)
_SPREAD = {"fat_tree": "_spread_fat_tree", "gpu_cluster": "_spread_gpu_cluster"}
_NATURAL = {"ring": "dimension-order", "torus": "dimension-order", "dragonfly": "minimal",
            "fat_tree": "dmodk", "gpu_cluster": "dmodk", "switch": "shortest",
            "fully_connected": "shortest"}
#: policies that need a structure, and the families that have it
_NEEDS = {"dimension-order": ("ring", "torus"), "dmodk": ("fat_tree", "gpu_cluster"),
          "minimal": ("dragonfly",)}
_NEEDS_WHAT = {"dimension-order": "a torus or ring (topologies.torus / ring)",
               "dmodk": "a fat-tree or GPU cluster (topologies.fat_tree / gpu_cluster)",
               "minimal": "a dragonfly (topologies.dragonfly)"}


def _params(G) -> dict:
    params = G.graph.get("params") or {}
    if isinstance(params, str):  # GraphML read without topologies.load
        try:
            params = json.loads(params)
        except ValueError:
            params = None
    if not isinstance(params, dict):
        raise ValueError(
            f"G.graph['params'] must be a dict of the generator's arguments, got {params!r}"
        )
    return dict(params)


def _sorted_keys(G, N: int) -> np.ndarray:
    r = np.array([(min(u, v), max(u, v)) for u, v in G.edges()], dtype=np.int64)
    r = r.reshape(-1, 2)
    return np.sort(r[:, 0] * N + r[:, 1])


def _matches(family, params, nodes, kinds, eu, ev, multigraph, subset: bool):
    """``(why not, ref_links)``: why the graph is not what ``family(**params)`` builds (None
    if it is), and where ``subset`` allows some of its links to be missing (failed) and some
    are, the map from the generator's directed link ids to ours (-1: missing)."""
    N = len(nodes)
    if family == "fully_connected" and list(params) == ["n"]:
        # cheap: a simple graph on 0..n-1 with n(n-1)/2 links, all endpoints, is complete
        n = params["n"]
        if nodes == list(range(n)) and len(eu) == n * (n - 1) // 2 and not multigraph \
                and all(k == "endpoint" for k in kinds.values()):
            return None, None
        if not subset or len(eu) > n * (n - 1) // 2:
            return "it is not the complete graph its params describe", None
    try:
        ref = gen.FAMILIES[family](**params)
    except (TypeError, ValueError) as e:
        return f"its params do not rebuild a {family}: {e}", None
    if nodes != list(range(N)) or ref.number_of_nodes() != N:
        return f"its nodes are not 0..{ref.number_of_nodes() - 1}", None
    if any((kinds[v] == "endpoint") != (k == "endpoint") for v, k in ref.nodes(data="kind")):
        return "its endpoints differ", None
    if multigraph or ref.number_of_edges() < len(eu) or (
            not subset and ref.number_of_edges() != len(eu)):
        return "its links differ", None
    rk = _sorted_keys(ref, N)
    ak = eu * N + ev  # sorted: compile orders the edges so
    if len(rk) == len(ak):
        return (None, None) if np.array_equal(rk, ak) else ("its links differ", None)
    pos = np.searchsorted(rk, ak)
    if len(ak) and (pos.max() >= len(rk) or not np.array_equal(rk[pos], ak)):
        return "its links differ (not just some missing)", None
    emap = np.full(len(rk), -1, dtype=np.int64)
    emap[pos] = np.arange(len(ak))
    ref_links = np.full(2 * len(rk), -1, dtype=np.int64)
    ref_links[0::2] = np.where(emap >= 0, 2 * emap, -1)
    ref_links[1::2] = np.where(emap >= 0, 2 * emap + 1, -1)
    return None, ref_links


def _divisors(n: int) -> list[int]:
    return [x for x in range(1, n + 1) if n % x == 0]


def _torus_dims(E: int, nbrs0: set, m: int):
    """Torus dims (each >= 2, at least two) whose torus has ``m`` links and gives node 0
    the neighbours ``nbrs0``."""
    def factorisations(n, depth):
        if n == 1:
            yield []
            return
        if depth == 0:
            return
        for f in _divisors(n)[1:]:
            for rest in factorisations(n // f, depth - 1):
                yield [f, *rest]

    if E > 1 << 24:
        return
    # node 0 has one or two neighbours per dimension of size >= 2: at most that many dims
    for dims in factorisations(E, min(len(nbrs0), 8)):
        if len(dims) < 2:
            continue
        links = sum(E if d >= 3 else E // 2 for d in dims)
        strides = np.cumprod([1] + dims[::-1])[:-1][::-1].tolist()
        want = {st for st in strides} | {(d - 1) * st for d, st in zip(dims, strides,
                                                                       strict=True)}
        if links == m and want == nbrs0:
            yield dims


def _candidates(G, nodes, kinds, m: int):
    """``(family, params)`` that a graph without a stored family may be, cheapest checks
    first; each still has to be verified against the generator's graph."""
    N = len(nodes)
    E = sum(1 for k in kinds.values() if k == "endpoint")
    S = N - E
    if nodes != list(range(N)) or E == 0 or any(kinds[v] != "endpoint" for v in range(E)):
        return
    adj = G._adj
    if S == 0:
        yield "ring", {"n": E}
        yield from (("torus", {"dims": dims}) for dims in _torus_dims(E, set(adj[0]), m))
        if m == E * (E - 1) // 2:
            yield "fully_connected", {"n": E}
        return
    if S == 1:
        yield "switch", {"n": E}
    up = [v for v in adj[0] if kinds[v] == "switch"]
    k = 2
    while True:  # fat-trees of E hosts, growing k until they outgrow the graph
        if k ** 3 // 4 >= E:
            L = gen.fat_tree_layout(k, E)
            if L.nodes == N:
                yield "fat_tree", {"k": k, "hosts": E}
            if L.first_core > N:
                break
        k += 2
    # GPU cluster: an NVLink switch links endpoints only; the leaf's switch links are spines
    nvs = [v for v in up if all(kinds[w] == "endpoint" for w in adj[v])]
    g = len(adj[nvs[0]]) if nvs else 1
    leaf = [v for v in up if v not in nvs]
    if leaf and E % g == 0:
        spines = sum(1 for w in adj[leaf[0]] if kinds[w] == "switch")
        radices = [2 * spines, 2 * spines - 1] if spines else [2 * E]
        for r in radices:
            if r >= 2 * g:
                yield "gpu_cluster", {"nodes": E // g, "gpus_per_node": g, "leaf_radix": r}
    # dragonfly: h endpoints per router, groups x routers = S
    if len(up) == 1:
        h = sum(1 for w in adj[up[0]] if kinds[w] == "endpoint")
        for a in _divisors(S):
            if (S // a) * a * h == E:
                yield "dragonfly", {"groups": S // a, "routers": a, "hosts": h}


def _structure(G, nodes, kinds, eu, ev, policy: str):
    """``(family, params, ref_links)`` the graph is routed as, or None: the stored family
    (``G.graph["family"]``, failed links allowed), else the first generator whose graph it
    is, exactly, and that has the policy."""
    multi = G.is_multigraph()
    stored = G.graph.get("family")
    if stored in gen.FAMILIES:
        params = _params(G)
        why, ref_links = _matches(stored, params, nodes, kinds, eu, ev, multi, subset=True)
        if why is None:
            return stored, params, ref_links
        if policy in ("auto", *_NEEDS):
            raise ValueError(
                f"compile_network: the graph says family {stored!r} but {why}; pass "
                "routing='shortest' or 'spread', or delete G.graph['family'] to route over "
                "the graph"
            )
        return None
    if multi:  # parallel links: the formulas know one link per pair
        return None
    for family, params in _candidates(G, nodes, kinds, len(eu)):
        if policy in _NEEDS and family not in _NEEDS[policy]:
            continue
        why, _ = _matches(family, params, nodes, kinds, eu, ev, False, subset=False)
        if why is None:
            return family, params, None
    return None


def compile_network(G, routing: str = "auto") -> Network:
    """Compile a topology graph into a :class:`Network` (validating it first).

    Parameters
    ----------
    G : networkx.Graph
        A topology (see :mod:`topologies.io` for the conventions).
    routing : str
        A policy of :data:`POLICIES`: ``"auto"`` (default), ``"shortest"``, ``"spread"``,
        ``"dimension-order"``, ``"dmodk"`` or ``"minimal"`` (docs/routing.md). The
        structure a policy needs (and ``"auto"`` reads) is the generator's: named by
        ``G.graph["family"]``/``["params"]`` and checked against the links (some may be
        missing: failed links), or, where the graph names none (a file written by a
        script), recognised from the links themselves, so a file routes as the generator's
        graph does.

    Examples
    --------
    >>> from topologies import fat_tree
    >>> net = compile_network(fat_tree(4))
    >>> net
    Network(fat_tree, 36 nodes, 16 endpoints, 96 links, routing='dmodk')
    >>> ptr, links = net.routes([0, 0], [1, 15])
    >>> (ptr[1:] - ptr[:-1]).tolist(), net.path_latency(ptr, links).round(12).tolist()
    ([2, 6], [2e-06, 6e-06])
    """
    if routing not in POLICIES:
        raise ValueError(f"unknown routing policy {routing!r}; known: {', '.join(POLICIES)}")
    with gc_paused():
        return _compile(G, routing)


def _compile(G, routing: str) -> Network:
    pairs, bw, lat, half = checked_links(G)
    nodes = sorted_nodes(G)
    kinds = node_kinds(G)
    if nodes == list(range(len(nodes))):
        uv = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    else:
        index = {v: i for i, v in enumerate(nodes)}
        uv = np.array([(index[u], index[v]) for u, v in pairs], dtype=np.int64).reshape(-1, 2)
    eu, ev = uv.min(axis=1), uv.max(axis=1)
    order = np.lexsort((np.arange(len(eu)), ev, eu))
    eu, ev, bw, lat, half = eu[order], ev[order], bw[order], lat[order], half[order]
    structure = _structure(G, nodes, kinds, eu, ev, routing)
    family = structure[0] if structure else None
    policy = (_NATURAL[family] if family else "shortest") if routing == "auto" else routing
    if policy in _NEEDS and family not in _NEEDS[policy]:
        what = f"a {family}" if family else (
            "not a generator's graph (parallel links)" if G.is_multigraph()
            else "not recognised as a generator's graph")
        raise ValueError(
            f"routing {policy!r} needs {_NEEDS_WHAT[policy]}; this graph is {what}: use "
            "routing 'shortest' or 'spread' (or 'auto')"
        )
    return Network(G, nodes, kinds, eu, ev, bw, lat, policy, structure, half)
