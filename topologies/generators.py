"""Topology generators, in the shape of ``networkx.generators``.

Every generator returns an undirected ``nx.Graph`` whose nodes are integers: the endpoints (the
GPUs/NICs/hosts that ranks sit on) are ``0 .. E-1``, so sorted node order is endpoint order, and
switches are numbered after them. Node attribute ``kind`` is ``"endpoint"`` or ``"switch"``; edge
attributes are ``bandwidth`` (bytes/s in each direction: links are full duplex) and ``latency``
(seconds). ``G.graph["family"]`` names the generator and ``G.graph["params"]`` holds its
structural arguments, so that :func:`topologies.compile_network` can route by formula.

Bandwidths and latencies accept human units (``"100Gbps"``, ``"2us"``, see
:mod:`topologies.units`).
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import networkx as nx
import numpy as np

from .io import gc_paused
from .units import parse_bandwidth, parse_time

__all__ = [
    "DEFAULT_BANDWIDTH",
    "DEFAULT_LATENCY",
    "dragonfly",
    "fat_tree",
    "fully_connected",
    "gpu_cluster",
    "ring",
    "switch",
    "torus",
]

#: Default link bandwidth, bytes/s per direction (200 Gb/s).
DEFAULT_BANDWIDTH = 25e9
#: Default link latency, seconds.
DEFAULT_LATENCY = 1e-6

ENDPOINT = "endpoint"
SWITCH = "switch"


# --------------------------------------------------------------------------- argument checks


def _int_arg(fname: str, name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{fname}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _link_arg(fname: str, bandwidth, latency, what: str = "") -> tuple[float, float]:
    try:
        bw = parse_bandwidth(bandwidth)
    except ValueError as e:
        raise ValueError(f"{fname}: {what}bandwidth: {e}") from None
    try:
        lat = parse_time(latency)
    except ValueError as e:
        raise ValueError(f"{fname}: {what}latency: {e}") from None
    return bw, lat


def _ratio_arg(fname: str, oversubscription) -> float:
    try:
        r = float(oversubscription)
    except (TypeError, ValueError):
        r = math.nan
    if not (math.isfinite(r) and r >= 1):
        raise ValueError(
            f"{fname}: oversubscription must be a number >= 1 (1 = non-blocking), "
            f"got {oversubscription!r}"
        )
    return r


def _finish(G: nx.Graph, nendpoints: int, family: str, params: dict) -> nx.Graph:
    """Set ``kind`` on every node and the graph's family/params."""
    kind = {v: (ENDPOINT if v < nendpoints else SWITCH) for v in G}
    nx.set_node_attributes(G, kind, "kind")
    G.graph["family"] = family
    G.graph["params"] = params
    return G


def _with_links(G: nx.Graph, bw: float, lat: float) -> nx.Graph:
    nx.set_edge_attributes(G, bw, "bandwidth")
    nx.set_edge_attributes(G, lat, "latency")
    return G


# --------------------------------------------------------------------------- direct networks


@gc_paused()
def fully_connected(
    n: int, bandwidth: float | str = DEFAULT_BANDWIDTH, latency: float | str = DEFAULT_LATENCY
) -> nx.Graph:
    """Return ``n`` endpoints with a direct link between every pair.

    Parameters
    ----------
    n : int
        Number of endpoints, ``>= 1``.
    bandwidth, latency : float or str
        Every link's bandwidth (bytes/s per direction) and latency (s).

    Returns
    -------
    networkx.Graph
        ``nx.complete_graph(n)`` with ``kind``, ``bandwidth`` and ``latency`` attributes.

    Examples
    --------
    >>> G = fully_connected(4, bandwidth="100Gbps")
    >>> G.number_of_edges(), G.edges[0, 3]["bandwidth"]
    (6, 12500000000.0)
    """
    n = _int_arg("fully_connected", "n", n, 1)
    bw, lat = _link_arg("fully_connected", bandwidth, latency)
    G = _with_links(nx.complete_graph(n), bw, lat)
    return _finish(G, n, "fully_connected", {"n": n})


@gc_paused()
def ring(
    n: int, bandwidth: float | str = DEFAULT_BANDWIDTH, latency: float | str = DEFAULT_LATENCY
) -> nx.Graph:
    """Return ``n`` endpoints in a cycle, ``i`` linked to ``(i + 1) % n``.

    ``ring(1)`` is a single node without links and ``ring(2)`` a single link.

    Parameters
    ----------
    n : int
        Number of endpoints, ``>= 1``.
    bandwidth, latency : float or str
        Every link's bandwidth (bytes/s per direction) and latency (s).

    Examples
    --------
    >>> G = ring(5)
    >>> sorted(d for _, d in G.degree()), G.graph["family"]
    ([2, 2, 2, 2, 2], 'ring')
    """
    n = _int_arg("ring", "n", n, 1)
    bw, lat = _link_arg("ring", bandwidth, latency)
    G = nx.cycle_graph(n)
    G.remove_edges_from(list(nx.selfloop_edges(G)))
    return _finish(_with_links(G, bw, lat), n, "ring", {"n": n})


@gc_paused()
def torus(
    dims,
    bandwidth: float | str = DEFAULT_BANDWIDTH,
    latency: float | str = DEFAULT_LATENCY,
) -> nx.Graph:
    """Return a torus (periodic grid) of endpoints.

    Node ``i`` has coordinates ``np.unravel_index(i, dims)`` (row-major: the last dimension
    varies fastest) and is linked to its two neighbours in every dimension, with wrap-around.
    A dimension of size 2 gives a single link between its two nodes, one of size 1 none.

    Parameters
    ----------
    dims : int or sequence of int
        Size of each dimension, every one ``>= 1`` (an int gives a 1-D torus, i.e. a ring).
    bandwidth, latency : float or str
        Every link's bandwidth (bytes/s per direction) and latency (s).

    Examples
    --------
    >>> G = torus((4, 4))
    >>> G.number_of_nodes(), G.number_of_edges(), sorted(G[0])
    (16, 32, [1, 3, 4, 12])
    """
    if isinstance(dims, numbers.Integral) and not isinstance(dims, bool):
        dims = (dims,)
    try:
        dims = [_int_arg("torus", "every dimension", d, 1) for d in dims]
    except TypeError:
        raise ValueError(f"torus: dims must be a sequence of integers >= 1, got {dims!r}") from None
    if not dims:
        raise ValueError("torus: dims must name at least one dimension, got an empty sequence")
    bw, lat = _link_arg("torus", bandwidth, latency)
    G = nx.grid_graph(dim=list(dims), periodic=True)
    G.remove_edges_from(list(nx.selfloop_edges(G)))
    # grid_graph's node tuples list the coordinates last dimension first (1-D: plain ints)
    coords = np.array([t[::-1] if isinstance(t, tuple) else (t,) for t in G], dtype=np.int64)
    label = dict(zip(G, np.ravel_multi_index(tuple(coords.T), dims).tolist(), strict=True))
    H = nx.Graph()
    H.add_nodes_from(range(len(label)))
    edges = ((label[u], label[v]) for u, v in G.edges())
    H.add_edges_from(sorted((min(ab), max(ab)) for ab in edges))
    return _finish(_with_links(H, bw, lat), len(H), "torus", {"dims": dims})


# --------------------------------------------------------------------------- switched networks


@gc_paused()
def switch(
    n: int, bandwidth: float | str = DEFAULT_BANDWIDTH, latency: float | str = DEFAULT_LATENCY
) -> nx.Graph:
    """Return a star: endpoints ``0 .. n-1`` each linked to switch ``n``.

    Parameters
    ----------
    n : int
        Number of endpoints, ``>= 1``.
    bandwidth, latency : float or str
        Every link's bandwidth (bytes/s per direction) and latency (s).

    Examples
    --------
    >>> G = switch(8)
    >>> G.degree(8), G.nodes[8]["kind"], G.nodes[0]["kind"]
    (8, 'switch', 'endpoint')
    """
    n = _int_arg("switch", "n", n, 1)
    bw, lat = _link_arg("switch", bandwidth, latency)
    G = nx.Graph()
    G.add_nodes_from(range(n + 1))
    G.add_edges_from((i, n) for i in range(n))
    return _finish(_with_links(G, bw, lat), n, "switch", {"n": n})


class FatTreeLayout(NamedTuple):
    """Node numbering of :func:`fat_tree` (computed, never stored)."""

    k: int
    half: int  # k / 2: hosts per edge switch, edge/aggregation switches per pod
    hosts: int  # endpoints 0 .. hosts-1; host h sits on edge switch h // half
    edges: int  # edge switches in use: first_edge + e, pod e // half
    pods: int  # pods in use, each with `half` aggregation switches
    first_edge: int
    first_agg: int  # aggregation switch a of pod p: first_agg + p * half + a
    first_core: int  # core switch c = a * half + j links aggregation switch a of every pod
    nodes: int


def fat_tree_layout(k: int, hosts: int | None = None) -> FatTreeLayout:
    half = k // 2
    hosts = k**3 // 4 if hosts is None else hosts
    edges = -(-hosts // half)
    pods = -(-edges // half)
    first_edge = hosts
    first_agg = first_edge + edges
    first_core = first_agg + pods * half
    return FatTreeLayout(k, half, hosts, edges, pods, first_edge, first_agg, first_core,
                         first_core + half * half)


@gc_paused()
def fat_tree(
    k: int,
    oversubscription: float = 1.0,
    hosts: int | None = None,
    bandwidth: float | str = DEFAULT_BANDWIDTH,
    latency: float | str = DEFAULT_LATENCY,
) -> nx.Graph:
    """Return a three-tier k-ary fat-tree (Al-Fares et al., SIGCOMM 2008).

    ``k`` pods, each with ``k/2`` edge and ``k/2`` aggregation switches; every edge switch
    serves ``k/2`` hosts and links every aggregation switch of its pod; ``(k/2)**2`` core
    switches, core ``c = a*(k/2) + j`` linking aggregation switch ``a`` of every pod. That is
    ``k**3/4`` hosts and ``5*k**2/4`` switches of radix ``k``.

    Numbering: hosts ``0 .. H-1`` (host ``h`` on edge switch ``h // (k/2)``), then edge switches,
    then aggregation switches pod by pod, then core switches. Switches carry a ``layer``
    attribute (``"edge"``, ``"aggregation"``, ``"core"``).

    Parameters
    ----------
    k : int
        Switch radix, an even integer ``>= 2``.
    oversubscription : float
        Ratio ``r >= 1``: the edge -> aggregation links get ``bandwidth / r``, so an edge
        switch's uplink capacity is ``1/r`` of its host capacity. 1 is non-blocking.
    hosts : int, optional
        Keep only the first ``hosts`` endpoints (default all ``k**3/4``). Edge switches left
        without hosts and pods left without edge switches are dropped; the core is kept whole,
        so routes between the remaining hosts are those of the full tree.
    bandwidth, latency : float or str
        Every link's bandwidth (bytes/s per direction, before oversubscription) and latency.

    Examples
    --------
    >>> G = fat_tree(4)
    >>> G.number_of_nodes(), G.number_of_edges(), G.graph["params"]["hosts"]
    (36, 48, 16)
    >>> fat_tree(42, hosts=16384).number_of_nodes()  # 16384 hosts and 2020 switches
    18404
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2 or k % 2:
        raise ValueError(f"fat_tree: k must be an even integer >= 2, got {k!r}")
    k = int(k)
    full = k**3 // 4
    if hosts is None:
        hosts = full
    elif (isinstance(hosts, bool) or not isinstance(hosts, numbers.Integral)
          or not 1 <= hosts <= full):
        raise ValueError(
            f"fat_tree: hosts must be an integer in 1..{full} (k**3/4 for k={k}), got {hosts!r};"
            " use a larger k for more hosts"
        )
    hosts = int(hosts)
    r = _ratio_arg("fat_tree", oversubscription)
    bw, lat = _link_arg("fat_tree", bandwidth, latency)
    L = fat_tree_layout(k, hosts)
    G = nx.Graph()
    G.add_nodes_from(range(L.nodes))
    G.add_edges_from(((h, L.first_edge + h // L.half) for h in range(hosts)),
                     bandwidth=bw, latency=lat)
    G.add_edges_from(
        ((L.first_edge + e, L.first_agg + (e // L.half) * L.half + a)
         for e in range(L.edges) for a in range(L.half)),
        bandwidth=bw / r, latency=lat,
    )
    G.add_edges_from(
        ((L.first_agg + p * L.half + a, L.first_core + a * L.half + j)
         for p in range(L.pods) for a in range(L.half) for j in range(L.half)),
        bandwidth=bw, latency=lat,
    )
    _finish(G, hosts, "fat_tree", {"k": k, "hosts": hosts, "oversubscription": r})
    layer = {v: "edge" for v in range(L.first_edge, L.first_agg)}
    layer.update({v: "aggregation" for v in range(L.first_agg, L.first_core)})
    layer.update({v: "core" for v in range(L.first_core, L.nodes)})
    nx.set_node_attributes(G, layer, "layer")
    return G


class DragonflyLayout(NamedTuple):
    """Node numbering of :func:`dragonfly`."""

    groups: int
    routers: int  # per group
    hosts: int  # per router
    ports: int  # global links per router (at most): ceil((groups - 1) / routers)
    first_router: int  # router r of group g: first_router + g * routers + r


def dragonfly_layout(groups: int, routers: int, hosts: int) -> DragonflyLayout:
    ports = max(1, -(-(groups - 1) // routers))
    return DragonflyLayout(groups, routers, hosts, ports, groups * routers * hosts)


def dragonfly_global_router(layout: DragonflyLayout, g1, g2):
    """Router (within group ``g1``) holding the global link from group ``g1`` to ``g2``.

    Works elementwise on integer arrays.
    """
    j = g2 - (g2 > g1)
    return j // layout.ports


@gc_paused()
def dragonfly(
    groups: int,
    routers: int,
    hosts: int,
    bandwidth: float | str = DEFAULT_BANDWIDTH,
    latency: float | str = DEFAULT_LATENCY,
    global_bandwidth: float | str | None = None,
    global_latency: float | str | None = None,
) -> nx.Graph:
    """Return a dragonfly (Kim, Dally, Scott & Abts, ISCA 2008) with one global link per pair
    of groups.

    Each group has ``routers`` routers linked all-to-all (local links); each router serves
    ``hosts`` endpoints. Groups are linked all-to-all by exactly one global link per pair, in
    the *consecutive* arrangement: in group ``g`` the other groups, in increasing order, get
    global link slots ``0 .. groups-2`` and slot ``j`` sits on router ``j // h`` with
    ``h = ceil((groups-1) / routers)`` global ports per router (balanced when
    ``groups = routers * h + 1``).

    Numbering: host ``i`` of router ``r`` of group ``g`` is ``(g*routers + r)*hosts + i``;
    router ``r`` of group ``g`` is ``E + g*routers + r`` with ``E = groups*routers*hosts``.
    Routers carry ``layer="router"`` and ``group``; links carry ``scope`` (``"host"``,
    ``"local"``, ``"global"``).

    Routing (see :func:`topologies.compile_network`) is minimal: local, global, local. That is
    also the latency-shortest path whenever ``global_latency >= 2 * latency`` (the default).

    Parameters
    ----------
    groups, routers, hosts : int
        Number of groups, routers per group and endpoints per router, each ``>= 1``.
    bandwidth, latency : float or str
        Host and local links.
    global_bandwidth, global_latency : float or str, optional
        Global links; default ``bandwidth`` and ``2 * latency``.

    Examples
    --------
    >>> G = dragonfly(groups=5, routers=4, hosts=2)
    >>> G.number_of_nodes(), G.number_of_edges()
    (60, 80)
    """
    groups = _int_arg("dragonfly", "groups", groups, 1)
    routers = _int_arg("dragonfly", "routers", routers, 1)
    hosts = _int_arg("dragonfly", "hosts", hosts, 1)
    bw, lat = _link_arg("dragonfly", bandwidth, latency)
    gbw, glat = _link_arg(
        "dragonfly",
        bw if global_bandwidth is None else global_bandwidth,
        2 * lat if global_latency is None else global_latency,
        what="global_",
    )
    L = dragonfly_layout(groups, routers, hosts)
    R0 = L.first_router
    G = nx.Graph()
    G.add_nodes_from(range(R0 + groups * routers))
    G.add_edges_from(((h, R0 + h // hosts) for h in range(R0)),
                     bandwidth=bw, latency=lat, scope="host")
    G.add_edges_from(
        ((R0 + g * routers + r1, R0 + g * routers + r2)
         for g in range(groups) for r1 in range(routers) for r2 in range(r1 + 1, routers)),
        bandwidth=bw, latency=lat, scope="local",
    )
    G.add_edges_from(
        ((R0 + g1 * routers + int(dragonfly_global_router(L, g1, g2)),
          R0 + g2 * routers + int(dragonfly_global_router(L, g2, g1)))
         for g1 in range(groups) for g2 in range(g1 + 1, groups)),
        bandwidth=gbw, latency=glat, scope="global",
    )
    _finish(G, R0, "dragonfly", {"groups": groups, "routers": routers, "hosts": hosts})
    nx.set_node_attributes(G, {R0 + i: "router" for i in range(groups * routers)}, "layer")
    nx.set_node_attributes(G, {R0 + i: i // routers for i in range(groups * routers)}, "group")
    return G


class GpuClusterLayout(NamedTuple):
    """Node numbering of :func:`gpu_cluster`."""

    nodes: int  # servers
    gpus_per_node: int
    gpus: int  # endpoints 0 .. gpus-1; GPU i of server n is n * gpus_per_node + i
    servers_per_leaf: int  # server n's NICs all sit on leaf n // servers_per_leaf
    leaves: int
    spines: int  # 0 when a single leaf suffices
    first_nvswitch: int  # NVLink switch of server n: first_nvswitch + n (none if 1 GPU/node)
    first_leaf: int
    first_spine: int
    total: int


def gpu_cluster_layout(nodes: int, gpus_per_node: int, leaf_radix: int) -> GpuClusterLayout:
    down = leaf_radix // 2
    spl = down // gpus_per_node
    leaves = -(-nodes // spl)
    spines = leaf_radix - down if leaves > 1 else 0
    gpus = nodes * gpus_per_node
    nvs = nodes if gpus_per_node > 1 else 0
    first_leaf = gpus + nvs
    first_spine = first_leaf + leaves
    return GpuClusterLayout(nodes, gpus_per_node, gpus, spl, leaves, spines, gpus,
                            first_leaf, first_spine, first_spine + spines)


@gc_paused()
def gpu_cluster(
    nodes: int,
    gpus_per_node: int = 8,
    bandwidth: float | str = 50e9,
    latency: float | str = 1e-6,
    intra_bandwidth: float | str = 450e9,
    intra_latency: float | str = 2.5e-7,
    oversubscription: float = 1.0,
    leaf_radix: int = 64,
) -> nx.Graph:
    """Return GPU servers with an NVLink switch inside and an InfiniBand leaf/spine fabric.

    Inside server ``n`` its GPUs link one NVLink switch (``intra_bandwidth``,
    ``intra_latency``; the defaults are H100 NVLink 4: 900 GB/s bidirectional, i.e. 450 GB/s
    per direction). Every GPU also has its own NIC link (``bandwidth``, ``latency``; default
    400 Gb/s NDR, i.e. 50 GB/s) to a leaf switch. A leaf has ``leaf_radix`` ports: half face
    GPUs, whole servers only (``(leaf_radix // 2) // gpus_per_node`` servers per leaf, so a
    server never straddles two leaves), and the other half go up, one link to each of the
    ``leaf_radix - leaf_radix // 2`` spine switches, each at ``bandwidth / oversubscription``.
    Spines are logical: spine ``j`` stands for the ``j``-th spine plane, whatever its radix.
    A cluster that fits one leaf has no spines.

    Numbering: GPU ``i`` of server ``n`` is ``n*gpus_per_node + i`` and carries the node
    attribute ``server=n``; then the NVLink switches (one per server, none when
    ``gpus_per_node == 1``), then the leaves, then the spines. Switches carry ``layer``
    (``"nvswitch"``, ``"leaf"``, ``"spine"``); the NVLink switch also carries ``server``.

    Routing keeps traffic between GPUs of one server on NVLink and sends the rest
    GPU -> leaf (-> spine -> leaf) -> GPU; ``intra_latency < latency`` makes that the
    latency-shortest path too.

    Parameters
    ----------
    nodes : int
        Number of servers, ``>= 1``.
    gpus_per_node : int
        GPUs per server, ``1 <= gpus_per_node <= leaf_radix // 2``.
    bandwidth, latency : float or str
        InfiniBand links (NIC -> leaf, and leaf -> spine before oversubscription).
    intra_bandwidth, intra_latency : float or str
        NVLink links (GPU -> NVLink switch).
    oversubscription : float
        Ratio ``r >= 1`` dividing the leaf -> spine link bandwidth.
    leaf_radix : int
        Leaf switch ports, ``>= 2`` (default 64, as NDR Quantum-2).

    Examples
    --------
    >>> G = gpu_cluster(nodes=16, gpus_per_node=8)
    >>> len([v for v, k in G.nodes(data="kind") if k == "endpoint"]), G.nodes[9]["server"]
    (128, 1)
    >>> sorted(G.nodes[v]["layer"] for v in G[0])
    ['leaf', 'nvswitch']
    """
    f = "gpu_cluster"
    nodes = _int_arg(f, "nodes", nodes, 1)
    gpus_per_node = _int_arg(f, "gpus_per_node", gpus_per_node, 1)
    leaf_radix = _int_arg(f, "leaf_radix", leaf_radix, 2)
    if gpus_per_node > leaf_radix // 2:
        raise ValueError(
            f"{f}: a leaf gives GPUs leaf_radix // 2 = {leaf_radix // 2} ports, fewer than "
            f"gpus_per_node = {gpus_per_node}; use leaf_radix >= {2 * gpus_per_node}"
        )
    r = _ratio_arg(f, oversubscription)
    bw, lat = _link_arg(f, bandwidth, latency)
    ibw, ilat = _link_arg(f, intra_bandwidth, intra_latency, what="intra_")
    L = gpu_cluster_layout(nodes, gpus_per_node, leaf_radix)
    g = gpus_per_node
    G = nx.Graph()
    G.add_nodes_from(range(L.total))
    if g > 1:
        G.add_edges_from(((v, L.first_nvswitch + v // g) for v in range(L.gpus)),
                         bandwidth=ibw, latency=ilat)
    G.add_edges_from(((v, L.first_leaf + v // g // L.servers_per_leaf) for v in range(L.gpus)),
                     bandwidth=bw, latency=lat)
    G.add_edges_from(
        ((L.first_leaf + i, L.first_spine + j) for i in range(L.leaves) for j in range(L.spines)),
        bandwidth=bw / r, latency=lat,
    )
    params = {"nodes": nodes, "gpus_per_node": g, "leaf_radix": leaf_radix,
              "oversubscription": r}
    _finish(G, L.gpus, f, params)
    server = {v: v // g for v in range(L.gpus)}
    layer = {}
    if g > 1:
        server.update({L.first_nvswitch + n: n for n in range(nodes)})
        layer.update({L.first_nvswitch + n: "nvswitch" for n in range(nodes)})
    layer.update({v: "leaf" for v in range(L.first_leaf, L.first_spine)})
    layer.update({v: "spine" for v in range(L.first_spine, L.total)})
    nx.set_node_attributes(G, server, "server")
    nx.set_node_attributes(G, layer, "layer")
    return G


#: family name -> generator, for rebuilding a graph from ``G.graph["params"]``.
FAMILIES = {
    "dragonfly": dragonfly,
    "fat_tree": fat_tree,
    "fully_connected": fully_connected,
    "gpu_cluster": gpu_cluster,
    "ring": ring,
    "switch": switch,
    "torus": torus,
}
