"""topologies: compile_network and routing."""

import time

import networkx as nx
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import topologies as T


def check_csr(net, src, dst, ptr, links):
    """Every path is a contiguous directed walk from src to dst without repeated nodes."""
    src, dst = np.asarray(src), np.asarray(dst)
    assert ptr.shape == (len(src) + 1,) and ptr[0] == 0 and ptr[-1] == len(links)
    n = np.diff(ptr)
    assert (n >= 0).all()
    assert ((n == 0) == (src == dst)).all()
    assert ((links >= 0) & (links < net.nlinks)).all()
    full = n > 0
    assert (net.link_src[links[ptr[:-1][full]]] == src[full]).all()
    assert (net.link_dst[links[ptr[1:][full] - 1]] == dst[full]).all()
    inner = np.ones(len(links), dtype=bool)
    inner[ptr[1:][full] - 1] = False  # last link of each path
    i = np.flatnonzero(inner)
    assert (net.link_dst[links[i]] == net.link_src[links[i + 1]]).all()
    # simple paths: a path's nodes (its sources, then dst) are distinct
    pair = np.repeat(np.arange(len(src)), n)
    key = pair * net.nnodes + net.link_src[links]
    assert len(np.unique(key)) == len(key)
    assert not (net.link_src[links] == dst[pair]).any()


def all_pairs(net):
    E = net.endpoints
    return np.repeat(E, len(E)), np.tile(E, len(E))


def nx_lengths(G, net, src, dst):
    out = np.empty(len(src))
    for u in np.unique(src):
        dist = nx.single_source_dijkstra_path_length(G, net.nodes[u], weight="latency")
        m = src == u
        out[m] = [dist[net.nodes[v]] for v in dst[m]]
    return out


GRAPHS = [
    T.fully_connected(1),
    T.fully_connected(5),
    T.ring(1),
    T.ring(2),
    T.ring(7),
    T.ring(8),
    T.torus((3, 4)),
    T.torus((4, 4)),
    T.torus((2, 3, 4)),
    T.torus((5, 1, 2)),
    T.switch(1),
    T.switch(5),
    T.fat_tree(2),
    T.fat_tree(4),
    T.fat_tree(6, hosts=20),
    T.fat_tree(4, oversubscription=3),
    T.dragonfly(1, 1, 1),
    T.dragonfly(3, 2, 2),
    T.dragonfly(5, 4, 2),
    T.dragonfly(7, 3, 1),
    T.dragonfly(9, 2, 1, global_latency="5us"),
    T.gpu_cluster(1, 1),
    T.gpu_cluster(1, 8),
    T.gpu_cluster(3, 2, leaf_radix=4),
    T.gpu_cluster(5, 4, leaf_radix=16),
    T.gpu_cluster(4, 1, leaf_radix=4),
]
IDS = [f"{G.graph['family']}{G.graph['params']}" for G in GRAPHS]


@pytest.mark.parametrize("G", GRAPHS, ids=IDS)
def test_link_arrays(G):
    net = T.compile_network(G)
    natural = {"torus": "dimension-order", "ring": "dimension-order", "dragonfly": "minimal",
               "fat_tree": "dmodk", "gpu_cluster": "dmodk"}  # auto, per family (docs/routing.md)
    assert net.routing == natural.get(G.graph["family"], "shortest")
    assert net._router is not None and net.family == G.graph["family"]
    assert net.nlinks == 2 * G.number_of_edges() == len(net.link_src)
    assert net.link_src.dtype == np.int32 and net.link_latency.dtype == np.float64
    assert (net.link_src[0::2] == net.link_dst[1::2]).all()
    assert (net.link_src[0::2] < net.link_dst[0::2]).all()
    for link in range(net.nlinks):
        u, v = net.nodes[net.link_src[link]], net.nodes[net.link_dst[link]]
        assert net.link_bandwidth[link] == G.edges[u, v]["bandwidth"]
        assert net.link_latency[link] == G.edges[u, v]["latency"]
    assert net.endpoints.tolist() == T.endpoints(G)
    assert net.link_ids(net.link_src, net.link_dst).tolist() == list(range(net.nlinks))
    with pytest.raises(ValueError):
        net.link_src[0] = 1


@pytest.mark.parametrize("routing", ["auto", "shortest"])
@pytest.mark.parametrize("G", GRAPHS, ids=IDS)
def test_routes_are_shortest_paths(G, routing):
    net = T.compile_network(G, routing=routing)
    src, dst = all_pairs(net)
    ptr, links = net.routes(src, dst)
    check_csr(net, src, dst, ptr, links)
    lat = net.path_latency(ptr, links)
    np.testing.assert_allclose(lat, nx_lengths(G, net, src, dst), rtol=1e-12)
    assert (net.path_bottleneck(ptr, links)[src == dst] == np.inf).all()
    # deterministic, and a permuted query gives the same paths
    ptr2, links2 = net.routes(src, dst)
    assert (ptr2 == ptr).all() and (links2 == links).all()
    perm = np.random.default_rng(1).permutation(len(src))
    ptr3, links3 = net.routes(src[perm], dst[perm])
    for k in range(0, len(perm), max(1, len(perm) // 50)):
        i = perm[k]
        assert (links3[ptr3[k]:ptr3[k + 1]] == links[ptr[i]:ptr[i + 1]]).all()


def test_route_shapes_and_errors():
    net = T.compile_network(T.fat_tree(4))
    ptr, links = net.routes([], [])
    assert ptr.tolist() == [0] and links.size == 0
    assert net.path_latency(ptr, links).size == 0
    with pytest.raises(ValueError, match="equal length"):
        net.routes([0, 1], [2])
    with pytest.raises(ValueError, match="outside"):
        net.routes([0], [99])
    with pytest.raises(ValueError, match="endpoints only"):
        net.routes([0], [20])
    with pytest.raises(ValueError, match="unknown routing policy 'magic'; known: auto, "
                                         "shortest, spread, dimension-order, dmodk"):
        T.compile_network(T.ring(3), routing="magic")


def test_path_reductions_with_empty_paths():
    net = T.compile_network(T.fat_tree(4, oversubscription=2, bandwidth=8e9))
    src = np.array([3, 0, 0, 5, 0])
    dst = np.array([3, 1, 2, 5, 15])
    ptr, links = net.routes(src, dst)
    assert np.diff(ptr).tolist() == [0, 2, 4, 0, 6]
    np.testing.assert_allclose(net.path_latency(ptr, links), [0, 2e-6, 4e-6, 0, 6e-6])
    assert net.path_bottleneck(ptr, links).tolist() == [np.inf, 8e9, 4e9, np.inf, 4e9]


def test_fat_tree_ecmp_spreads():
    G = T.fat_tree(8)
    net = T.compile_network(G)
    src, dst = all_pairs(net)
    ptr, links = net.routes(src, dst)
    layer = nx.get_node_attributes(G, "layer")
    up_core = [l for l in range(net.nlinks) if layer.get(int(net.link_dst[l])) == "core"]
    load = np.bincount(links, minlength=net.nlinks)[up_core]
    assert (load > 0).all()  # every aggregation -> core link carries traffic
    assert load.max() <= 1.5 * load.mean()
    # shortest-path routing on the same graph spreads too
    net2 = T.compile_network(T.fat_tree(4), routing="shortest")
    _, links2 = net2.routes(*all_pairs(net2))
    cores = {16 + 8 + 8 + i for i in range(4)}
    used = {int(l) for l in links2 if int(net2.link_dst[l]) in cores}
    assert len(used) > 1


def test_gpu_cluster_intra_node_stays_on_nvlink():
    G = T.gpu_cluster(nodes=6, gpus_per_node=8, leaf_radix=32)
    layer = nx.get_node_attributes(G, "layer")
    for routing in ("auto", "shortest"):
        net = T.compile_network(G, routing=routing)
        src, dst = all_pairs(net)
        ptr, links = net.routes(src, dst)
        pair = np.repeat(np.arange(len(src)), np.diff(ptr))
        same = (src // 8 == dst // 8)[pair]
        ends = [{layer.get(int(net.link_src[l])), layer.get(int(net.link_dst[l]))}
                for l in links]
        for on_nvlink, e in zip(same, ends, strict=True):
            assert ("nvswitch" in e) == bool(on_nvlink)
        spines = {int(v) for v in net.link_dst[links] if layer.get(int(v)) == "spine"}
        assert len(spines) > 1  # ECMP over the spines


def test_torus_dimension_order_and_tie_break():
    net = T.compile_network(T.torus((4, 6)))
    # 0 = (0, 0) -> 14 = (2, 2): dimension 0 first, ties (distance 2 of 4) go up from even
    ptr, links = net.routes([0], [14])
    nodes = [0] + net.link_dst[links].tolist()
    assert nodes == [0, 6, 12, 13, 14]
    ptr, links = net.routes([6], [18])  # (1, 0) -> (3, 0): odd coordinate goes down
    assert [6] + net.link_dst[links].tolist() == [6, 0, 18]


def test_generic_routing_multigraph_and_zero_latency():
    G = nx.MultiGraph()
    G.add_nodes_from(range(8), kind="endpoint")
    G.add_nodes_from(["s1", "s2"], kind="switch")
    for i in range(4):
        G.add_edge(i, "s1", bandwidth=1e9, latency=0.0)
        G.add_edge(i + 4, "s2", bandwidth=1e9, latency=0.0)
    G.add_edge("s1", "s2", bandwidth=1e9, latency=0.0)
    G.add_edge("s1", "s2", bandwidth=2e9, latency=0.0)
    net = T.compile_network(G)
    assert net.routing == "shortest" and net._router is None and net.nlinks == 20
    src, dst = all_pairs(net)
    ptr, links = net.routes(src, dst)
    check_csr(net, src, dst, ptr, links)
    assert np.diff(ptr).max() == 3
    trunk = [l for l in range(net.nlinks) if {net.link_src[l], net.link_dst[l]} == {8, 9}]
    assert len(trunk) == 4 and len(set(links.tolist()) & set(trunk)) == 4  # both, both ways


def test_family_mismatch():
    G = T.fat_tree(4)
    G.remove_edge(0, 16)
    G.add_edge(0, 17, bandwidth=1e9, latency=1e-6)
    with pytest.raises(ValueError, match="family 'fat_tree' but its links differ.*shortest"):
        T.compile_network(G)
    net = T.compile_network(G, routing="shortest")
    src, dst = all_pairs(net)
    ptr, links = net.routes(src, dst)
    check_csr(net, src, dst, ptr, links)


def test_index_of_and_placement():
    G = T.gpu_cluster(4, 4, leaf_radix=8)
    net = T.compile_network(G)
    ranks = net.index_of(T.place(G, 8, "spread"))
    assert ranks.tolist() == [0, 4, 8, 12, 1, 5, 9, 13]
    with pytest.raises(ValueError):
        net.index_of([10_000])


def test_large_structured_routing_is_fast():
    G = T.fat_tree(42, hosts=16384)
    t0 = time.perf_counter()
    net = T.compile_network(G)
    t_compile = time.perf_counter() - t0
    r = np.arange(16384)
    perm = np.random.default_rng(0).permutation(16384)
    net.routes(r, perm)
    t0 = time.perf_counter()
    ptr, links = net.routes(r, perm)
    t_routes = time.perf_counter() - t0
    check_csr(net, r, perm, ptr, links)
    assert t_compile < 10 and t_routes < 0.5  # typically ~0.7 s and ~2 ms
    # an 8x16x16 torus, one ring step and a far shift
    net = T.compile_network(T.torus((8, 16, 16)))
    r = np.arange(2048)
    for shift in (1, 1032):
        ptr, links = net.routes(r, (r + shift) % 2048)
        check_csr(net, r, (r + shift) % 2048, ptr, links)
        delta = np.abs(np.array(np.unravel_index(r, (8, 16, 16)))
                       - np.array(np.unravel_index((r + shift) % 2048, (8, 16, 16))))
        dist = np.minimum(delta, np.array([[8], [16], [16]]) - delta).sum(axis=0)
        assert (np.diff(ptr) == dist).all()


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 12),
    p=st.floats(0.0, 0.6),
    seed=st.integers(0, 2**16),
    lats=st.lists(st.sampled_from([0.0, 3e-7, 1e-6, 2e-6]), min_size=1, max_size=4),
)
# K4 with zero-latency links: the two-hop detour beats the direct link
@example(n=4, p=0.5, seed=4, lats=[0.0, 3e-7])
def test_shortest_paths_on_random_graphs(n, p, seed, lats):
    rng = np.random.default_rng(seed)
    G = nx.gnp_random_graph(n, p, seed=seed)
    G.add_edges_from(zip(range(n - 1), range(1, n), strict=True))  # connected
    for u, v in G.edges():
        G.edges[u, v]["latency"] = float(rng.choice(lats))
        G.edges[u, v]["bandwidth"] = float(rng.choice([1e9, 2e9]))
    # shortest explicitly: auto routes a graph that happens to be a generator's (a triangle is
    # ring(3)) as that generator's graph, whatever its latencies
    net = T.compile_network(G, routing="shortest")
    src, dst = all_pairs(net)
    half = src < n // 2
    net.routes(src[half], dst[half])  # the pair cache then holds half of the pairs
    ptr, links = net.routes(src, dst)
    check_csr(net, src, dst, ptr, links)
    np.testing.assert_allclose(net.path_latency(ptr, links), nx_lengths(G, net, src, dst),
                               rtol=1e-9, atol=1e-18)
    fresh = T.compile_network(G, routing="shortest")
    ptr2, links2 = fresh.routes(src, dst)
    assert (ptr2 == ptr).all() and (links2 == links).all()


def test_unknown_family_routes_by_shortest_paths():
    G = T.switch(3)
    G.graph["family"] = "my-cluster"
    net = T.compile_network(G)  # recognised from its links: a star
    assert net.routing == "shortest" and net.family == "switch"


def _link_ids_by_search(net, src, dst):
    """The binary search over sorted (src, dst) keys that the link hash table replaced."""
    keys = net.link_src.astype(np.int64) * net.nnodes + net.link_dst
    order = np.argsort(keys, kind="stable")
    skeys = keys[order]
    q = np.asarray(src, dtype=np.int64) * net.nnodes + np.asarray(dst, dtype=np.int64)
    if not len(skeys):
        return np.zeros(q.shape, dtype=np.int64), np.zeros(q.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(skeys, q), len(skeys) - 1)
    return order[pos], skeys[pos] == q


@pytest.mark.parametrize("G", GRAPHS + [nx.gnm_random_graph(60, 300, seed=3)],
                         ids=IDS + ["random"])
def test_link_table_equals_binary_search(G):
    if "family" not in G.graph:
        nx.set_node_attributes(G, "endpoint", "kind")
        nx.set_edge_attributes(G, 1e9, "bandwidth")
        nx.set_edge_attributes(G, 1e-6, "latency")
    net = T.compile_network(G)
    rng = np.random.default_rng(0)
    u, v = net.link_src.astype(np.int64), net.link_dst.astype(np.int64)
    want, _ = _link_ids_by_search(net, u, v)
    perm = rng.permutation(len(u))  # any order, repeats included
    for s, d, w in ((u, v, want), (u[perm], v[perm], want[perm]),
                    (np.tile(u, 3), np.tile(v, 3), np.tile(want, 3))):
        assert np.array_equal(net.link_ids(s, d), w)
    assert net.link_ids(u.reshape(-1, 2), v.reshape(-1, 2)).shape == (len(u) // 2, 2)
    # pairs that are not all linked: the error names the first missing one, as before
    for _ in range(20):
        s, d = rng.integers(0, net.nnodes, 40), rng.integers(0, net.nnodes, 40)
        w, ok = _link_ids_by_search(net, s, d)
        if ok.all():
            assert np.array_equal(net.link_ids(s, d), w)
            continue
        i = int(np.flatnonzero(~ok)[0])
        with pytest.raises(ValueError, match=f"no link from {net.nodes[s[i]]!r} to "
                                             f"{net.nodes[d[i]]!r}$"):
            net.link_ids(s, d)


def test_link_table_parallel_links_and_empty():
    M = nx.MultiGraph()
    M.add_nodes_from(range(3), kind="endpoint")
    for u, v in ((0, 1), (0, 1), (1, 2), (0, 1)):
        M.add_edge(u, v, bandwidth=1e9, latency=1e-6)
    net = T.compile_network(M)
    want, _ = _link_ids_by_search(net, [0, 1, 1, 2], [1, 0, 2, 1])
    assert net.link_ids([0, 1, 1, 2], [1, 0, 2, 1]).tolist() == want.tolist() == [0, 1, 6, 7]
    assert net.link_ids([], []).tolist() == []
    lone = nx.Graph()
    lone.add_node(0, kind="endpoint")
    with pytest.raises(ValueError, match="no link from 0 to 0"):
        T.compile_network(lone).link_ids([0], [0])


@pytest.mark.parametrize("G", GRAPHS, ids=IDS)
def test_unchecked_routes_equal_checked(G):
    net = T.compile_network(G)
    src, dst = all_pairs(net)
    for a, b in zip(net.routes(src, dst), net.routes(src, dst, check=False), strict=True):
        assert np.array_equal(a, b)
