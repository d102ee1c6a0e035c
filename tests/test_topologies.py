"""topologies: units, generators, placement and groups."""

from collections import Counter

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import topologies as T
from topologies import (
    dragonfly,
    fat_tree,
    fully_connected,
    gpu_cluster,
    ring,
    switch,
    torus,
)

# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    "text, value",
    [
        ("64MiB", 64 * 2**20),
        ("1K", 1024),
        ("1k", 1024),
        ("64M", 64 * 2**20),
        ("1G", 2**30),
        ("512", 512),
        ("512B", 512),
        ("2KB", 2000),
        ("2kB", 2000),
        ("1.5MiB", 1572864),
        (" 8 KiB ", 8192),
        ("0", 0),
        (4096, 4096),
        (4096.0, 4096),
        (np.int64(7), 7),
    ],
)
def test_parse_bytes(text, value):
    out = T.parse_bytes(text)
    assert out == value and isinstance(out, int)


@pytest.mark.parametrize("bad", ["10 furlongs", "1.5", "-1K", "K", "", "1Kb", 1.5, -3, True, None])
def test_parse_bytes_rejects(bad):
    with pytest.raises(ValueError, match="size") as e:
        T.parse_bytes(bad)
    assert repr(bad) in str(e.value) or str(bad) in str(e.value)


@pytest.mark.parametrize(
    "text, value",
    [
        ("100Gbps", 12.5e9),
        ("400Gb/s", 50e9),
        ("25GB/s", 25e9),
        ("25GiB/s", 25 * 2**30),
        ("1e9", 1e9),
        ("800 Mbit/s", 1e8),
        ("1TB/s", 1e12),
        (25e9, 25e9),
        (3, 3.0),
    ],
)
def test_parse_bandwidth(text, value):
    assert T.parse_bandwidth(text) == pytest.approx(value, rel=1e-15)


def test_parse_bandwidth_message_quotes_value_and_forms():
    with pytest.raises(ValueError) as e:
        T.parse_bandwidth("10 furlongs")
    msg = str(e.value)
    assert "'10 furlongs'" in msg and "100Gbps" in msg and "25GB/s" in msg and "25GiB/s" in msg


@pytest.mark.parametrize(
    "bad", ["0", 0, -1.0, "-5GB/s", "0Gbps", "inf", float("nan"), "fast", "5 GHz"]
)
def test_parse_bandwidth_rejects(bad):
    with pytest.raises(ValueError, match="bandwidth"):
        T.parse_bandwidth(bad)


@pytest.mark.parametrize(
    "text, value",
    [
        ("2us", 2e-6),
        ("2µs", 2e-6),
        ("2μs", 2e-6),
        ("1.5ms", 1.5e-3),
        ("100ns", 1e-7),
        ("1s", 1.0),
        ("3e-6", 3e-6),
        ("0", 0.0),
        (3e-6, 3e-6),
    ],
)
def test_parse_time(text, value):
    assert T.parse_time(text) == value


@pytest.mark.parametrize("bad", ["-1us", "2 fortnights", "us", -1e-6, "nan", None])
def test_parse_time_rejects(bad):
    with pytest.raises(ValueError, match="time"):
        T.parse_time(bad)


def test_formats():
    assert T.format_bytes(64 * 2**20) == "64MiB"
    assert T.format_bytes(1000) == "1000B"
    assert T.format_bandwidth(12.5e9) == "12.5GB/s"
    assert T.format_time(2e-6) == "2us"
    assert T.format_time(0) == "0s"


@given(st.integers(min_value=0, max_value=2**50))
def test_bytes_round_trip(n):
    back = T.parse_bytes(T.format_bytes(n))
    assert abs(back - n) <= 5e-4 * n + 0.5


@given(st.floats(min_value=1.0, max_value=1e15))
def test_bandwidth_round_trip(x):
    assert T.parse_bandwidth(T.format_bandwidth(x)) == pytest.approx(x, rel=1e-3)


@given(st.floats(min_value=1e-10, max_value=1e3))
def test_time_round_trip(x):
    assert T.parse_time(T.format_time(x)) == pytest.approx(x, rel=1e-3)


# --------------------------------------------------------------------------- generators

SMALL = [
    fully_connected(1),
    fully_connected(6),
    ring(1),
    ring(2),
    ring(9),
    torus(5),
    torus((4, 4)),
    torus((2, 3, 4)),
    switch(1),
    switch(7),
    fat_tree(2),
    fat_tree(4),
    fat_tree(6, hosts=20),
    fat_tree(4, oversubscription=2),
    dragonfly(1, 1, 1),
    dragonfly(5, 4, 2),
    dragonfly(7, 3, 1),
    gpu_cluster(1, 1),
    gpu_cluster(2),
    gpu_cluster(5, 4, leaf_radix=16),
    gpu_cluster(4, 1, leaf_radix=4),
]
IDS = [f"{G.graph['family']}{G.graph['params']}" for G in SMALL]


@pytest.mark.parametrize("G", SMALL, ids=IDS)
def test_generator_conventions(G):
    assert type(G) is nx.Graph
    nodes = sorted(G)
    assert nodes == list(range(len(G)))
    kinds = [G.nodes[v]["kind"] for v in nodes]
    assert set(kinds) <= {"endpoint", "switch"}
    ne = kinds.count("endpoint")
    assert kinds == ["endpoint"] * ne + ["switch"] * (len(G) - ne)  # endpoints first
    assert T.endpoints(G) == list(range(ne))
    for _, _, data in G.edges(data=True):
        assert data["bandwidth"] > 0 and data["latency"] >= 0
    assert nx.number_of_selfloops(G) == 0
    assert isinstance(G.graph["family"], str) and isinstance(G.graph["params"], dict)
    T.validate(G)


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_fully_connected_is_complete(n):
    G = fully_connected(n)
    assert nx.is_isomorphic(G, nx.complete_graph(n))
    assert all(G.nodes[v]["kind"] == "endpoint" for v in G)


@pytest.mark.parametrize("n", [2, 3, 4, 9])
def test_ring_and_1d_torus_are_cycles(n):
    assert nx.is_isomorphic(ring(n), nx.cycle_graph(n))
    assert nx.is_isomorphic(torus(n), nx.cycle_graph(n))
    assert nx.is_isomorphic(torus([n]), ring(n))


def test_ring_of_one_has_no_links():
    assert ring(1).number_of_edges() == 0 and len(ring(1)) == 1


@pytest.mark.parametrize("dims", [(3, 4), (4, 4, 4), (2, 3, 5), (5, 1)])
def test_torus_row_major_neighbours(dims):
    G = torus(dims)
    ref = nx.grid_graph(list(dims), periodic=True)
    ref.remove_edges_from(list(nx.selfloop_edges(ref)))
    assert nx.is_isomorphic(G, ref)
    for u, v in G.edges():
        cu, cv = np.unravel_index(u, dims), np.unravel_index(v, dims)
        diff = [(a - b) % n for a, b, n in zip(cu, cv, dims, strict=True)]
        assert sum(x != 0 for x in diff) == 1
        i = next(i for i, x in enumerate(diff) if x)
        assert diff[i] in (1, dims[i] - 1)


def test_torus_degrees():
    assert nx.degree_histogram(torus((4, 5, 6))) == [0] * 6 + [120]
    assert Counter(d for _, d in torus((2, 5)).degree()) == {3: 10}


def test_switch_star():
    G = switch(6)
    assert nx.is_isomorphic(G, nx.star_graph(6))
    assert G.nodes[6]["kind"] == "switch" and G.degree(6) == 6


@pytest.mark.parametrize("k", [2, 4, 6, 8])
def test_fat_tree_counts(k):
    G = fat_tree(k)
    hosts = k**3 // 4
    assert len(G) == hosts + 5 * k * k // 4
    assert G.number_of_edges() == 3 * k**3 // 4
    hist = Counter(d for _, d in G.degree())
    assert hist == ({1: hosts, k: 5 * k * k // 4} if k > 1 else hist)
    layers = Counter(G.nodes[v].get("layer") for v in G)
    assert layers == {None: hosts, "edge": k * k // 2, "aggregation": k * k // 2,
                      "core": k * k // 4}


def test_fat_tree_hosts_trim():
    G = fat_tree(42, hosts=16384)
    ends = T.endpoints(G)
    assert len(ends) == 16384 and ends[-1] == 16383
    # every switch has a link, every host one, and the tree reaches all hosts
    assert min(d for _, d in G.degree()) >= 1
    assert all(G.degree(h) == 1 for h in ends)
    assert Counter(nx.get_node_attributes(G, "layer").values()) == {
        "edge": 781, "aggregation": 38 * 21, "core": 21 * 21}


def test_fat_tree_oversubscription():
    G = fat_tree(4, oversubscription=4, bandwidth="100Gbps")
    layer = nx.get_node_attributes(G, "layer")
    by = Counter()
    for u, v, bw in G.edges(data="bandwidth"):
        by[(layer.get(u, "host"), layer.get(v, "host"), bw)] += 1
    assert by == {("host", "edge", 12.5e9): 16, ("edge", "aggregation", 12.5e9 / 4): 16,
                  ("aggregation", "core", 12.5e9): 16}


def test_dragonfly_structure():
    G = dragonfly(groups=5, routers=4, hosts=2, global_bandwidth="50GB/s",
                  global_latency="3us")
    routers = [v for v in G if G.nodes[v]["kind"] == "switch"]
    assert len(routers) == 20 and len(T.endpoints(G)) == 40
    assert Counter(d for _, d in G.degree(routers)) == {2 + 3 + 1: 20}
    scope = Counter(s for _, _, s in G.edges(data="scope"))
    assert scope == {"host": 40, "local": 30, "global": 10}
    group = nx.get_node_attributes(G, "group")
    pairs = Counter()
    for u, v, data in G.edges(data=True):
        if data["scope"] == "global":
            assert data["bandwidth"] == 50e9 and data["latency"] == 3e-6
            pairs[frozenset((group[u], group[v]))] += 1
        else:
            assert data["bandwidth"] == 25e9
    assert len(pairs) == 10 and set(pairs.values()) == {1}  # one link per pair of groups


def test_dragonfly_unbalanced():
    G = dragonfly(groups=9, routers=2, hosts=1)  # 4 global ports per router
    group = nx.get_node_attributes(G, "group")
    glob = [(u, v) for u, v, s in G.edges(data="scope") if s == "global"]
    assert len({frozenset((group[u], group[v])) for u, v in glob}) == 36 == len(glob)
    routers = [v for v in G if G.nodes[v]["kind"] == "switch"]
    assert max(sum(1 for u in G[r] if u in group and group[u] != group[r]) for r in routers) == 4


def test_gpu_cluster_structure():
    G = gpu_cluster(nodes=10, gpus_per_node=8, leaf_radix=32)  # 2 servers per leaf
    layer = nx.get_node_attributes(G, "layer")
    assert Counter(layer.values()) == {"nvswitch": 10, "leaf": 5, "spine": 16}
    ends = T.endpoints(G)
    assert ends == list(range(80))
    for v in ends:
        assert G.nodes[v]["server"] == v // 8
        assert sorted(layer[u] for u in G[v]) == ["leaf", "nvswitch"]
        nv = next(u for u in G[v] if layer[u] == "nvswitch")
        assert G.nodes[nv]["server"] == v // 8
        assert G.edges[v, nv]["bandwidth"] == 450e9
        assert G.edges[v, nv]["latency"] < min(lat for _, _, lat in G.edges(v, data="latency")
                                               if lat != G.edges[v, nv]["latency"])
    hist = Counter((layer[v], d) for v, d in G.degree() if v in layer)
    assert hist == {("nvswitch", 8): 10, ("leaf", 16 + 16): 5, ("spine", 5): 16}


def test_gpu_cluster_small_has_no_spine():
    G = gpu_cluster(nodes=2, gpus_per_node=8)
    assert Counter(nx.get_node_attributes(G, "layer").values()) == {"nvswitch": 2, "leaf": 1}


def test_gpu_cluster_oversubscription_and_units():
    G = gpu_cluster(nodes=4, gpus_per_node=4, leaf_radix=8, oversubscription=2,
                    bandwidth="400Gbps", intra_bandwidth="900GB/s", intra_latency="100ns")
    layer = nx.get_node_attributes(G, "layer")
    for u, v, d in G.edges(data=True):
        kinds = {layer.get(u, "gpu"), layer.get(v, "gpu")}
        expect = {frozenset({"gpu", "nvswitch"}): 900e9, frozenset({"gpu", "leaf"}): 50e9,
                  frozenset({"leaf", "spine"}): 25e9}[frozenset(kinds)]
        assert d["bandwidth"] == expect


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: fat_tree(3), r"fat_tree: k must be an even integer >= 2, got 3"),
        (lambda: fat_tree(0), "fat_tree: k"),
        (lambda: fat_tree(4.0), "fat_tree: k"),
        (lambda: fat_tree(4, hosts=17), "fat_tree: hosts must be an integer in 1..16"),
        (lambda: fat_tree(4, oversubscription=0.5), "fat_tree: oversubscription"),
        (lambda: ring(0), "ring: n must be an integer >= 1, got 0"),
        (lambda: ring(2.5), "ring: n"),
        (lambda: ring(True), "ring: n"),
        (lambda: torus([]), "torus: dims"),
        (lambda: torus([3, 0]), "torus: every dimension"),
        (lambda: torus("ab"), "torus"),
        (lambda: switch(0), "switch: n"),
        (lambda: fully_connected(3, bandwidth="10 furlongs"), "fully_connected: bandw.*furlongs"),
        (lambda: fully_connected(3, latency=-1), "fully_connected: latency"),
        (lambda: dragonfly(0, 1, 1), "dragonfly: groups"),
        (lambda: dragonfly(2, 2, 2, global_bandwidth=0), "dragonfly: global_bandwidth"),
        (lambda: gpu_cluster(0), "gpu_cluster: nodes"),
        (lambda: gpu_cluster(2, 8, leaf_radix=8), "gpu_cluster: .*leaf_radix >= 16"),
        (lambda: gpu_cluster(2, intra_latency="soon"), "gpu_cluster: intra_latency"),
    ],
)
def test_generator_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- placement


def test_place_linear_default():
    G = fat_tree(4)
    assert T.place(G, 5).tolist() == [0, 1, 2, 3, 4]
    assert T.place(G, 5, "linear").tolist() == [0, 1, 2, 3, 4]
    assert T.place(G, 16).dtype.kind == "i"


def test_place_spread():
    G = gpu_cluster(nodes=4, gpus_per_node=4, leaf_radix=8)
    assert T.place(G, 6, "spread").tolist() == [0, 4, 8, 12, 1, 5]
    assert T.place(G, 6, "round-robin").tolist() == [0, 4, 8, 12, 1, 5]
    assert sorted(T.place(G, 16, "spread").tolist()) == list(range(16))
    # fat-tree: across edge switches (2 hosts each for k=4)
    assert T.place(fat_tree(4), 4, "spread").tolist() == [0, 2, 4, 6]
    # no switches: spread is linear
    assert T.place(ring(5), 3, "spread").tolist() == [0, 1, 2]


def test_place_explicit_and_random():
    G = switch(6)
    assert T.place(G, 3, [5, 0, 2]).tolist() == [5, 0, 2]
    assert T.place(G, 3, np.array([5, 0, 2])).tolist() == [5, 0, 2]
    assert T.place(G, 2, {1: 4, 0: 3}).tolist() == [3, 4]
    a = T.place(G, 6, "random:7")
    assert sorted(a.tolist()) == list(range(6))
    assert a.tolist() == T.place(G, 6, "random:7").tolist()
    assert a.tolist() != list(range(6))
    assert T.place(G, 6, "random").tolist() == T.place(G, 6, "random:0").tolist()


@pytest.mark.parametrize(
    "nranks, placement, match",
    [
        (7, None, r"7 ranks but the topology has only 6 endpoints; use a larger topology"),
        (2, [0, 6], r"rank 1 placed on 6, which is a switch"),
        (2, [0, 99], r"rank 1 placed on 99, which is not a node"),
        (2, [3, 3], r"ranks 0 and 1 both placed on node 3"),
        (2, [0, 1, 2], "3 nodes for 2 ranks"),
        (2, {0: 1, 2: 3}, "every rank 0..1"),
        (2, "diagonal", "unknown placement 'diagonal'"),
        (2, "random:x", "bad seed"),
        (0, None, "nranks must be an integer >= 1"),
    ],
)
def test_place_errors(nranks, placement, match):
    with pytest.raises(ValueError, match=match):
        T.place(switch(6), nranks, placement)


def test_groups():
    G = gpu_cluster(nodes=3, gpus_per_node=4, leaf_radix=8)
    assert T.groups(G) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert T.groups(G, 6) == [[0, 1, 2, 3], [4, 5]]
    assert T.groups(G, 6, "spread") == [[0, 3], [1, 4], [2, 5]]
    assert T.groups(fat_tree(4), 8) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert T.groups(switch(3)) == [[0, 1, 2]]
    assert T.groups(ring(3)) == [[0], [1], [2]]
    assert T.groups(dragonfly(2, 2, 2)) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert T.groups(gpu_cluster(2, 1, leaf_radix=4)) == [[0], [1]]
