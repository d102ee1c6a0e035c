"""topologies: load, save, validate."""

import json

import networkx as nx
import pytest

import topologies as T

GRAPHS = [
    T.ring(5),
    T.torus((3, 4)),
    T.switch(4),
    T.fat_tree(4, oversubscription=2),
    T.dragonfly(4, 2, 2),
    T.gpu_cluster(3, 4, leaf_radix=8),
    T.fully_connected(3, bandwidth="100Gbps", latency="2us"),
]


def same_graph(a: nx.Graph, b: nx.Graph) -> bool:
    return (
        sorted(a.nodes(data=True)) == sorted(b.nodes(data=True))
        and sorted((min(u, v), max(u, v), d) for u, v, d in a.edges(data=True))
        == sorted((min(u, v), max(u, v), d) for u, v, d in b.edges(data=True))
        and a.graph == b.graph
    )


@pytest.mark.parametrize("suffix", [".json", ".graphml"])
@pytest.mark.parametrize("G", GRAPHS, ids=lambda G: G.graph["family"])
def test_round_trip(G, suffix, tmp_path):
    path = tmp_path / f"topo{suffix}"
    T.save(G, path)
    H = T.load(path)
    assert same_graph(G, H)
    assert all(isinstance(v, int) for v in H)
    # a loaded generator graph still routes by formula, with identical arrays
    a, b = T.compile_network(G), T.compile_network(H)
    assert b.routing == a.routing and b.family == a.family and b._router == a._router
    assert (a.link_src == b.link_src).all() and (a.link_bandwidth == b.link_bandwidth).all()


def write_json(tmp_path, doc, name="t.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def pair(**link):
    return {
        "nodes": [{"id": "a", "kind": "endpoint"}, {"id": "s", "kind": "switch"},
                  {"id": "b", "kind": "endpoint"}],
        "links": [dict({"source": "a", "target": "s", "bandwidth": "100Gbps",
                        "latency": "1us"}),
                  dict({"source": "s", "target": "b", "bandwidth": 1e9, "latency": 0}, **link)],
    }


def test_load_human_units_and_edges_key(tmp_path):
    doc = pair()
    doc["edges"] = doc.pop("links")
    G = T.load(write_json(tmp_path, doc))
    assert type(G) is nx.Graph
    assert G.edges["a", "s"] == {"bandwidth": 12.5e9, "latency": 1e-6}
    net = T.compile_network(G)
    assert net.routing == "shortest" and net.nodes == ("a", "b", "s")
    ptr, links = net.routes([0], [1])
    assert net.path_latency(ptr, links).tolist() == [1e-6]
    assert net.path_bottleneck(ptr, links).tolist() == [1e9]


def test_load_plain_graph_every_node_an_endpoint(tmp_path):
    G = nx.cycle_graph(4)
    nx.set_edge_attributes(G, "10GB/s", "bandwidth")
    nx.set_edge_attributes(G, "500ns", "latency")
    path = tmp_path / "c.graphml"
    nx.write_graphml(G, path)
    H = T.load(path)
    assert sorted(H) == [0, 1, 2, 3] and T.endpoints(H) == [0, 1, 2, 3]
    assert H.edges[0, 1] == {"bandwidth": 1e10, "latency": 5e-7}


@pytest.mark.parametrize(
    "link, match",
    [
        ({"bandwidth": None}, r"link \('s', 'b'\): bandwidth None"),
        ({"latency": -1e-6}, r"link \('s', 'b'\): latency -1e-06.*non-negative"),
        ({"latency": "-2us"}, r"link \('s', 'b'\): latency '-2us'"),
        ({"bandwidth": "fast"}, r"link \('s', 'b'\): bandwidth 'fast'.*100Gbps"),
        ({"bandwidth": 0}, r"link \('s', 'b'\): bandwidth 0"),
    ],
)
def test_bad_link_values(tmp_path, link, match):
    with pytest.raises(ValueError, match=match):
        T.load(write_json(tmp_path, pair(**link)))


def test_missing_bandwidth(tmp_path):
    doc = pair()
    del doc["links"][1]["bandwidth"]
    with pytest.raises(ValueError, match=r"link \('s', 'b'\) has no 'bandwidth' attribute"):
        T.load(write_json(tmp_path, doc))


def test_missing_latency_graphml(tmp_path):
    G = T.switch(2)
    del G.edges[1, 2]["latency"]
    T.save(G, tmp_path / "t.graphml")
    with pytest.raises(ValueError, match=r"link \(1, 2\) has no 'latency' attribute"):
        T.load(tmp_path / "t.graphml")


def test_unknown_kind(tmp_path):
    doc = pair()
    doc["nodes"][1]["kind"] = "router"
    with pytest.raises(ValueError, match=r"node 's' has kind 'router'.*'endpoint' or 'switch'"):
        T.load(write_json(tmp_path, doc))


def test_partial_kind(tmp_path):
    doc = pair()
    del doc["nodes"][1]["kind"]
    with pytest.raises(ValueError, match=r"node 's' has no 'kind' attribute"):
        T.load(write_json(tmp_path, doc))


def test_unreachable_endpoint(tmp_path):
    doc = pair()
    doc["nodes"].append({"id": "c", "kind": "endpoint"})
    with pytest.raises(ValueError, match=r"no route from endpoint 'a' to endpoint 'c': "
                                         "cut off"):
        T.load(write_json(tmp_path, doc))


def test_no_endpoint_self_loop_directed(tmp_path):
    doc = pair()
    for n in doc["nodes"]:
        n["kind"] = "switch"
    with pytest.raises(ValueError, match="no endpoints"):
        T.load(write_json(tmp_path, doc))
    doc = pair()
    doc["links"].append({"source": "s", "target": "s", "bandwidth": 1, "latency": 0})
    with pytest.raises(ValueError, match=r"link \('s', 's'\) is a self-loop"):
        T.load(write_json(tmp_path, doc))
    doc = pair()
    doc["directed"] = True
    with pytest.raises(ValueError, match="undirected"):
        T.load(write_json(tmp_path, doc))
    with pytest.raises(ValueError, match="undirected"):
        T.validate(nx.DiGraph([(0, 1)]))


def test_bad_files(tmp_path):
    (tmp_path / "x.json").write_text("{nope")
    with pytest.raises(ValueError, match="not valid JSON"):
        T.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not node-link JSON"):
        T.load(tmp_path / "y.json")
    (tmp_path / "z.graphml").write_text("<graphml><oops")
    with pytest.raises(ValueError, match="cannot read GraphML"):
        T.load(tmp_path / "z.graphml")
    with pytest.raises(ValueError, match=r"\.json .*\.graphml"):
        T.save(T.ring(3), tmp_path / "r.txt")


def test_multigraph_round_trip(tmp_path):
    G = nx.MultiGraph()
    G.add_nodes_from([0, 1], kind="endpoint")
    G.add_node(2, kind="switch")
    G.add_edge(0, 2, bandwidth=1e9, latency=1e-6)
    G.add_edge(1, 2, bandwidth=1e9, latency=1e-6)
    G.add_edge(1, 2, bandwidth=2e9, latency=1e-6)
    T.save(G, tmp_path / "m.json")
    H = T.load(tmp_path / "m.json")
    assert H.is_multigraph() and H.number_of_edges(1, 2) == 2
