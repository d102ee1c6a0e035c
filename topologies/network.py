"""The compiled network: integer link ids, link arrays and vectorised routing.

:func:`compile_network` turns a topology graph into a :class:`Network`, the form the simulator
works on: nodes are indices ``0 .. N-1`` (sorted label order), every undirected edge ``e`` (in
sorted ``(index(u), index(v))`` order, ``index(u) < index(v)``) gives two directed links, ``2e``
from ``u`` to ``v`` and ``2e + 1`` back, each an independent full-duplex resource.

Routing
-------
``net.routes(src, dst)`` returns the paths of many (src, dst) pairs at once as a CSR
``(ptr, links)``. Graphs made by :mod:`topologies.generators` route by formula, with no Python
loop per pair:

* ``fully_connected``: the direct link; ``switch``: up to the switch and down;
* ``ring``, ``torus``: dimension order (dimension 0 first), the shorter way round in each
  dimension; a tie (distance exactly ``n/2``) goes up from even coordinates, down from odd;
* ``fat_tree``: up to the lowest common ancestor and down; the aggregation switch and (between
  pods) the core switch are chosen by ECMP hash;
* ``gpu_cluster``: GPUs of one server talk over the NVLink switch; other pairs go
  GPU -> leaf (-> spine, chosen by hash) -> leaf -> GPU;
* ``dragonfly``: minimal: local, global, local.

Any other graph (no ``family``, e.g. loaded from a file, or ``routing="shortest"``) uses
latency-weighted shortest paths (ties broken by fewer hops); where several next hops are equally
short, the hash of (src, dst) mixed with the current node picks one. Distances are computed per
destination and cached, and finished routes are cached per (src, dst) pair.

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

__all__ = ["Network", "compile_network"]

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
        The generator that made the graph and its arguments (``G.graph``).
    routing : str
        ``"formula"`` or ``"shortest"``.
    graph : networkx.Graph
        The graph it was compiled from (do not modify it afterwards).
    """

    def __init__(self, G, nodes, kinds, eu, ev, bw, lat, routing):
        N = len(nodes)
        self.graph = G
        self.nodes = tuple(nodes)
        self.index = {v: i for i, v in enumerate(nodes)}
        self.nnodes = N
        self.nlinks = 2 * len(eu)
        self.is_endpoint = np.array([kinds[v] == "endpoint" for v in nodes], dtype=bool)
        self.endpoints = np.flatnonzero(self.is_endpoint).astype(np.int64)
        self.family = G.graph.get("family")
        try:
            self.params = _params(G)
        except ValueError:
            self.params = {}
        self.routing = routing
        src = np.empty(self.nlinks, dtype=np.int32)
        dst = np.empty(self.nlinks, dtype=np.int32)
        src[0::2], src[1::2] = eu, ev
        dst[0::2], dst[1::2] = ev, eu
        self.link_src, self.link_dst = src, dst
        self.link_bandwidth = np.repeat(np.asarray(bw, dtype=np.float64), 2)
        self.link_latency = np.repeat(np.asarray(lat, dtype=np.float64), 2)
        keys = src.astype(np.int64) * N + dst
        self._key_order = np.argsort(keys, kind="stable")
        self._keys = keys[self._key_order]
        self._identity = nodes == list(range(N))
        for a in (src, dst, self.link_bandwidth, self.link_latency, self.is_endpoint,
                  self.endpoints, self._key_order, self._keys):
            a.flags.writeable = False
        self._dest_cache: dict = {}
        self._dest_cached = 0
        self._pair_keys = np.empty(0, dtype=np.int64)
        self._pair_ptr = np.zeros(1, dtype=np.int64)
        self._pair_links = np.empty(0, dtype=np.int64)
        self._router = _ROUTERS[self.family] if routing == "formula" else None
        self._layout_cache = None
        self._ltab = None

    def __repr__(self) -> str:
        fam = f"{self.family}, " if self.family else ""
        return (f"Network({fam}{self.nnodes} nodes, {len(self.endpoints)} endpoints, "
                f"{self.nlinks} links, routing={self.routing!r})")

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
        q = (src * self.nnodes + dst).reshape(-1)
        tab_keys, tab_ids, bits = self._link_table()
        h = _fib_slot(q, bits)
        got = tab_keys[h]
        hit = got == q
        if not hit.all():  # collisions: probe on; an empty slot means no such link
            mask = len(tab_keys) - 1
            todo = np.flatnonzero(~hit)
            missing = len(q)
            while len(todo):
                live = tab_keys[h[todo]] >= 0
                if not live.all():
                    missing = min(missing, int(todo[~live].min()))
                    todo = todo[live]
                h[todo] = (h[todo] + 1) & mask
                todo = todo[tab_keys[h[todo]] != q[todo]]
            if missing < len(q):
                u, v = self.nodes[src.flat[missing]], self.nodes[dst.flat[missing]]
                raise ValueError(f"no link from {u!r} to {v!r}")
        return tab_ids[h].reshape(src.shape)

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
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        if not check:
            if self._router is None:
                return self._route_shortest(src, dst)
            return getattr(self, self._router)(src, dst)
        if src.ndim != 1 or src.shape != dst.shape:
            raise ValueError(
                f"routes: src and dst must be 1-D arrays of equal length, got shapes "
                f"{src.shape} and {dst.shape}"
            )
        for name, a in (("src", src), ("dst", dst)):
            if a.size and (a.min() < 0 or a.max() >= self.nnodes):
                raise ValueError(f"routes: {name} holds node indices outside 0..{self.nnodes - 1}")
        if self._router is None:
            return self._route_shortest(src, dst)
        if src.size and not (self.is_endpoint[src].all() and self.is_endpoint[dst].all()):
            raise ValueError("routes: formula routing connects endpoints only; got a switch")
        return getattr(self, self._router)(src, dst)

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
        return ptr, self.link_ids(a, b)

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

    def _route_fat_tree(self, s, d):
        L = self._layout()
        half, H = L.half, L.hosts
        es, ed = s // half, d // half
        ps, pd = es // half, ed // half
        q, a = _umod(pair_hash(s, d), half)
        j = _umod(q, half)[1]
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
        return self._links_csr(K, mask, nhops)

    def _route_gpu_cluster(self, s, d):
        L = self._layout()
        g = L.gpus_per_node
        ns, nd = s // g, d // g
        ls, ld = ns // L.servers_per_leaf, nd // L.servers_per_leaf
        spine = _umod(pair_hash(s, d), max(L.spines, 1))[1]
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
        return self._links_csr(K, mask)

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

    def _walk(self, s: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shortest paths of distinct pairs (no cache lookup), as a CSR."""
        if self._dest_cached > self._CACHE_LIMIT:
            self._dest_cache.clear()
            self._dest_cached = 0
        udest, slot = np.unique(d, return_inverse=True)
        missing = np.array([x for x in udest.tolist() if x not in self._dest_cache], np.int64)
        if len(missing):
            self._next_hops(missing)
        tables = [self._dest_cache[x] for x in udest.tolist()]
        N1 = self.nnodes + 1
        offs = np.cumsum([0] + [len(t[1]) for t in tables[:-1]])
        ptr_all = np.concatenate([t[0] + o for t, o in zip(tables, offs, strict=True)])
        links_all = np.concatenate([t[1] for t in tables])
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
                raise ValueError(
                    f"routes: no path from node {self.nodes[s[i]]!r} to {self.nodes[d[i]]!r}"
                )
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


_ROUTERS = {  # family -> Network method (a name, so that a Network holds no cycle)
    "fully_connected": "_route_fully_connected",
    "switch": "_route_switch",
    "ring": "_route_torus",
    "torus": "_route_torus",
    "fat_tree": "_route_fat_tree",
    "gpu_cluster": "_route_gpu_cluster",
    "dragonfly": "_route_dragonfly",
}


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


def _matches_family(G, nodes, kinds, eu, ev) -> str | None:
    """Why ``G`` cannot be routed by its family's formula, or None if it can."""
    family = G.graph.get("family")
    factory = gen.FAMILIES[family]
    params = _params(G)
    N = len(nodes)
    if family == "fully_connected" and list(params) == ["n"]:
        # cheap: a simple graph on 0..n-1 with n(n-1)/2 links, all endpoints, is complete
        n = params["n"]
        if nodes == list(range(n)) and len(eu) == n * (n - 1) // 2 and not G.is_multigraph() \
                and all(k == "endpoint" for k in kinds.values()):
            return None
        return "it is not the complete graph its params describe"
    try:
        ref = factory(**params)
    except (TypeError, ValueError) as e:
        return f"its params do not rebuild a {family}: {e}"
    if nodes != list(range(N)) or ref.number_of_nodes() != N:
        return f"its nodes are not 0..{ref.number_of_nodes() - 1}"
    if any((kinds[v] == "endpoint") != (k == "endpoint") for v, k in ref.nodes(data="kind")):
        return "its endpoints differ"
    if G.is_multigraph() or ref.number_of_edges() != len(eu):
        return "its links differ"
    r = np.array([(min(u, v), max(u, v)) for u, v in ref.edges()], dtype=np.int64)
    r = r.reshape(-1, 2)
    rk = np.sort(r[:, 0] * N + r[:, 1])
    if not np.array_equal(rk, np.sort(eu * N + ev)):
        return "its links differ"
    return None


def compile_network(G, routing: str = "auto") -> Network:
    """Compile a topology graph into a :class:`Network` (validating it first).

    Parameters
    ----------
    G : networkx.Graph
        A topology (see :mod:`topologies.io` for the conventions).
    routing : {"auto", "shortest"}
        ``"auto"`` routes a generator's graph (``G.graph["family"]`` names one of
        :mod:`topologies.generators`) by its family's formula, after checking that the graph
        is what the family's ``params`` build, and anything else by shortest paths;
        ``"shortest"`` always uses latency-weighted shortest paths.

    Examples
    --------
    >>> from topologies import fat_tree
    >>> net = compile_network(fat_tree(4))
    >>> net
    Network(fat_tree, 36 nodes, 16 endpoints, 96 links, routing='formula')
    >>> ptr, links = net.routes([0, 0], [1, 15])
    >>> (ptr[1:] - ptr[:-1]).tolist(), net.path_latency(ptr, links).round(12).tolist()
    ([2, 6], [2e-06, 6e-06])
    """
    if routing not in ("auto", "shortest"):
        raise ValueError(f"compile_network: routing must be 'auto' or 'shortest', got {routing!r}")
    with gc_paused():
        return _compile(G, routing)


def _compile(G, routing: str) -> Network:
    pairs, bw, lat = checked_links(G)
    nodes = sorted_nodes(G)
    kinds = node_kinds(G)
    if nodes == list(range(len(nodes))):
        uv = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    else:
        index = {v: i for i, v in enumerate(nodes)}
        uv = np.array([(index[u], index[v]) for u, v in pairs], dtype=np.int64).reshape(-1, 2)
    eu, ev = uv.min(axis=1), uv.max(axis=1)
    order = np.lexsort((np.arange(len(eu)), ev, eu))
    eu, ev, bw, lat = eu[order], ev[order], bw[order], lat[order]
    mode = "shortest"
    if routing == "auto" and G.graph.get("family") in gen.FAMILIES:
        why = _matches_family(G, nodes, kinds, eu, ev)
        if why is not None:
            raise ValueError(
                f"compile_network: the graph says family {G.graph.get('family')!r} but {why}; "
                "pass routing='shortest' or delete G.graph['family'] to route by shortest paths"
            )
        mode = "formula"
    return Network(G, nodes, kinds, eu, ev, bw, lat, mode)
