"""Routing policies: a file gives the generator's times, spread, dmodk, failed links, parallel
and half-duplex links, bad input, and ``python -m sim route``."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

import topologies as T
from collectives import build
from sim.cli import main
from sim.engine import simulate
from sim.fabric import fabric_for
from sim.maxmin import maxmin_rates
from sim.models import Contention, Hockney

MiB = 1 << 20
BW, LAT = T.DEFAULT_BANDWIDTH, T.DEFAULT_LATENCY


def _scaled(G, node, factor):
    """A what-if: every link of ``node`` at ``factor`` times its bandwidth."""
    for _, _, d in G.edges(node, data=True):
        d["bandwidth"] *= factor
    return G


#: (generator graph, ranks, the policies that fit it besides auto/shortest/spread)
GENERATORS = [
    (T.ring(16), 16, ["dimension-order"]),
    (T.torus((4, 4)), 16, ["dimension-order"]),
    (T.torus((2, 4, 2)), 16, ["dimension-order"]),
    (T.fully_connected(16), 16, []),
    (T.switch(16), 16, []),
    (T.fat_tree(4), 16, ["dmodk"]),
    (_scaled(T.fat_tree(4, oversubscription=2), 5, 0.5), 16, ["dmodk"]),
    (T.fat_tree(6, hosts=20), 16, ["dmodk"]),
    (T.gpu_cluster(4, 4, leaf_radix=8), 16, ["dmodk"]),
    (T.gpu_cluster(16, 1, leaf_radix=8), 16, ["dmodk"]),
    (T.dragonfly(3, 3, 2), 16, ["minimal"]),
]
GEN_IDS = [f"{G.graph['family']}{G.graph['params']}" + ("-scaled" if i == 6 else "")
           for i, (G, _, _) in enumerate(GENERATORS)]
ALGORITHMS = ["ring", "rabenseifner", "recursive-doubling", "double-binary-tree"]


def via_node_link(G, tmp_path, strip: bool):
    """Written with bare ``nx.node_link_data`` (``strip``: without the graph attributes, as a
    script that builds its own graph writes it), read back with ``topologies.load``."""
    data = nx.node_link_data(G)
    if strip:
        data["graph"] = {}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(data))
    return T.load(path)


def via_graphml(G, tmp_path):
    """Written with bare ``nx.write_graphml`` (which cannot hold the dict ``params``, so the
    graph attributes go), read back with ``topologies.load``."""
    H = G.copy()
    H.graph.clear()
    path = tmp_path / "g.graphml"
    nx.write_graphml(H, path)
    return T.load(path)


@pytest.mark.parametrize(("G", "p", "extra"), GENERATORS, ids=GEN_IDS)
def test_file_gives_the_generators_times(G, p, extra, tmp_path):
    files = {"node-link": via_node_link(G, tmp_path, False),
             "node-link, no graph attributes": via_node_link(G, tmp_path, True),
             "graphml": via_graphml(G, tmp_path)}
    for policy in ["auto", "shortest", "spread", *extra]:
        for algo in ALGORITHMS:
            sch = build("allreduce", algo, p)
            for model, nbytes in (("contention", 64 * MiB), ("hockney", 64 * MiB),
                                  ("contention", 4096)):
                want = simulate(sch, G, nbytes, model, routing=policy).time_s
                for how, H in files.items():
                    got = simulate(sch, H, nbytes, model, routing=policy).time_s
                    assert got == want, (policy, algo, model, nbytes, how)


def test_torus_file_is_dimension_ordered(tmp_path):
    # the case: a 16-rank ring all-reduce at 64 MiB on torus((4, 4)) from a file took
    # shortest-path ECMP routes (10.1 ms) where the generator's took dimension order (5.1 ms)
    H = via_graphml(T.torus((4, 4)), tmp_path)
    sch = build("allreduce", "ring", 16)
    t = simulate(sch, H, 64 * MiB, "contention").time_s
    # the ring's neighbours are one hop apart but for 3->4, 7->8, 11->12 and 15->0, two hops
    # in dimension order (down then across) over links no other transfer uses: every transfer
    # at full speed, 30 steps of n/16 bytes, two of the latency on the longest path
    chunk = 64 * MiB / 16
    assert t == pytest.approx(30 * (2 * LAT + chunk / BW), rel=1e-12)
    assert simulate(sch, H, 64 * MiB, "contention", routing="shortest").time_s > 1.9 * t


def test_recognition_ignores_bandwidth_and_needs_the_links():
    G = _scaled(T.torus((4, 4)), 3, 0.25)
    G.graph.clear()
    assert T.compile_network(G).family == "torus"
    G.remove_edge(0, 1)  # no stored family: a torus less a link is just a graph
    net = T.compile_network(G)
    assert net.family is None and net.routing == "shortest"
    with pytest.raises(ValueError, match="^routing 'dimension-order' needs a torus or ring"):
        T.compile_network(G, routing="dimension-order")


# --------------------------------------------------------------------------- spread


def test_spread_single_flow_on_an_oversubscribed_fat_tree():
    # fat_tree(4) with 2:1 uplinks (edge -> aggregation at BW/2). One flow 0 -> 15 between
    # pods: spread halves it over the two aggregation switches (BW/2 each way up, so each half
    # fits: 0.5 r <= BW/2) and quarters it over the four cores, so r = BW, set by the host
    # link; one path instead is held to BW/2 by its uplink.
    G = T.fat_tree(4, oversubscription=2)
    src, dst = np.array([0]), np.array([15])
    for routing, rate in (("spread", BW), ("shortest", BW / 2), ("dmodk", BW / 2)):
        fab = fabric_for(G, 16, routing=routing)
        pat = fab.pattern(src, dst)
        for model in (Contention(), Hockney()):
            lat, inv = fab.figures(pat, model)
            assert np.asarray(lat).tolist() == pytest.approx([6 * LAT], rel=1e-12)
            assert (1 / np.asarray(inv)).tolist() == pytest.approx([rate], rel=1e-12)
    net = T.compile_network(G, routing="spread")
    ptr, links, share = net.weighted_routes([0], [15])
    load = dict(zip(zip(net.link_src[links].tolist(), net.link_dst[links].tolist(),
                        strict=True), share.tolist(), strict=True))
    assert load[0, 16] == load[23, 15] == 1.0
    assert load[16, 24] == load[16, 25] == load[30, 23] == load[31, 23] == 0.5
    assert [load[a, c] for a, c in ((24, 32), (24, 33), (25, 34), (25, 35))] == [0.25] * 4
    # single-path policies: shares of 1 on the path of routes()
    net1 = T.compile_network(G)
    ptr1, links1, share1 = net1.weighted_routes([0, 3], [15, 9])
    r_ptr, r_links = net1.routes([0, 3], [15, 9])
    assert (ptr1 == r_ptr).all() and (links1 == r_links).all() and (share1 == 1).all()


def test_spread_two_flows_share_the_uplinks():
    # flows 0 -> 15 and 1 -> 14 leave edge switch 16 together: each puts half of its rate on
    # each of the two uplinks (capacity BW/2), so 0.5 r + 0.5 r <= BW/2: r = BW/2 each.
    fab = fabric_for(T.fat_tree(4, oversubscription=2), 16, routing="spread")
    _, inv = fab.figures(fab.pattern(np.array([0, 1]), np.array([15, 14])), Contention())
    assert (1 / inv).tolist() == pytest.approx([BW / 2, BW / 2], rel=1e-12)


def test_spread_conserves_every_flow():
    G = nx.gnm_random_graph(14, 30, seed=5)
    G.add_edges_from(zip(range(13), range(1, 14), strict=True))
    rng = np.random.default_rng(2)
    for u, v in G.edges():
        G.edges[u, v].update(bandwidth=1e9, latency=float(rng.choice([1e-6, 2e-6])))
    net = T.compile_network(G, routing="spread")
    src, dst = np.divmod(np.arange(14 * 14), 14)
    ptr, links, share = net.weighted_routes(src, dst)
    for i in range(len(src)):
        ls, sh = links[ptr[i]:ptr[i + 1]], share[ptr[i]:ptr[i + 1]]
        assert len(set(ls.tolist())) == len(ls)
        net_out = np.bincount(net.link_src[ls], sh, 14) - np.bincount(net.link_dst[ls], sh, 14)
        want = np.zeros(14)
        if src[i] != dst[i]:
            want[src[i]], want[dst[i]] = 1.0, -1.0
        np.testing.assert_allclose(net_out, want, atol=1e-12)
        lat = float(np.dot(sh, net.link_latency[ls]))
        assert lat == pytest.approx(nx.dijkstra_path_length(G, src[i], dst[i], "latency")
                                    if src[i] != dst[i] else 0.0, rel=1e-9)


def test_weighted_maxmin_by_hand():
    # flow 0 puts half its rate on link 0 (capacity 10), flow 1 all of it, plus link 1 (4):
    # flow 1 is capped at 4 by link 1, then flow 0 takes what is left: 0.5 r0 = 10 - 4.
    rates = maxmin_rates(np.array([0, 1, 3]), np.array([0, 0, 1]), np.array([10.0, 4.0]),
                         share=np.array([0.5, 1.0, 1.0]))
    assert rates.tolist() == pytest.approx([12.0, 4.0])
    # all shares equal: 0.5 r + 0.5 r <= 10 on one link
    assert maxmin_rates(np.array([0, 1, 2]), np.array([0, 0]), np.array([10.0]),
                        share=np.array([0.5, 0.5])).tolist() == pytest.approx([10.0, 10.0])


# --------------------------------------------------------------------------- dmodk


def path_nodes(net, src, dst):
    ptr, links = net._directed_routes(np.array([src]), np.array([dst]))
    return [src] + net.link_dst[links].tolist()


def test_dmodk_port_choice_by_hand():
    # fat_tree(4): hosts 0-15, edge switches 16-23, aggregation 24-31 (pod p: 24+2p, 25+2p),
    # cores 32-35 (core 2a+j on aggregation a of every pod). Up to destination d: edge
    # switch port a = d mod 2, aggregation port j = (d div 2) mod 2.
    net = T.compile_network(T.fat_tree(4), routing="dmodk")
    assert path_nodes(net, 0, 15) == [0, 16, 25, 35, 31, 23, 15]  # a=1, j=1: core 3
    assert path_nodes(net, 0, 14) == [0, 16, 24, 33, 30, 23, 14]  # a=0, j=1: core 1
    assert path_nodes(net, 5, 8) == [5, 18, 26, 32, 28, 20, 8]  # pod 1 -> pod 2, core 0
    assert path_nodes(net, 0, 3) == [0, 16, 25, 17, 3]  # same pod: a=1
    # a shift permutation crosses every link at most once (Zahavi's non-blocking property)
    r = np.arange(16)
    for shift in range(1, 16):
        _, links = net.routes(r, (r + shift) % 16)
        assert np.bincount(links).max() == 1, shift
    # gpu cluster: one GPU per server, 4 spines; the leaf goes up spine d mod 4
    G = T.gpu_cluster(16, 1, leaf_radix=8)
    net = T.compile_network(G, routing="dmodk")
    layout = T.generators.gpu_cluster_layout(16, 1, 8)
    assert path_nodes(net, 0, 13)[2] == layout.first_spine + 13 % 4


def test_failed_links_are_routed_around():
    # dmodk picks the next up-port (core first, then aggregation) whose whole path remains
    G = T.fat_tree(4)
    G.remove_edge(16, 25)
    net = T.compile_network(G, routing="dmodk")
    assert net.family == "fat_tree"
    assert path_nodes(net, 0, 15) == [0, 16, 24, 33, 30, 23, 15]
    assert path_nodes(net, 0, 14) == [0, 16, 24, 33, 30, 23, 14]  # unaffected
    # every policy, every pair: never over the failed link, shortest where it detours
    for routing in ("auto", "shortest", "spread", "dmodk"):
        net = T.compile_network(G, routing=routing)
        src, dst = np.divmod(np.arange(256), 16)
        ptr, links, _ = net.weighted_routes(src, dst)
        ends = {(int(a), int(b)) for a, b in zip(net.link_src[links], net.link_dst[links],
                                                 strict=True)}
        assert not ends & {(16, 25), (25, 16)}
    # dimension order falls back to shortest paths for the pairs whose route is cut
    full = T.compile_network(T.torus((4, 4)))
    G = T.torus((4, 4))
    G.remove_edge(0, 4)
    net = T.compile_network(G)
    assert net.routing == "dimension-order"
    for s in range(16):
        for d in range(16):
            want = path_nodes(full, s, d)
            got = path_nodes(net, s, d)
            if {0, 4} <= set(want) and abs(want.index(0) - want.index(4)) == 1:
                # a shortest path of what remains
                assert len(got) - 1 == nx.shortest_path_length(G, s, d)
                assert not any({a, b} == {0, 4} for a, b in zip(got, got[1:], strict=False))
            else:
                assert got == want


def test_a_cut_off_rank_is_named():
    G = T.fat_tree(4)
    G.remove_edge(3, 17)
    with pytest.raises(ValueError, match=r"^no route from endpoint 0 to endpoint 3: cut off"):
        T.compile_network(G)
    with pytest.raises(ValueError, match=r"^no route from endpoint 0 to endpoint 3: cut off"):
        simulate(build("allreduce", "ring", 16), G, 1024)
    # a switch cut off (no endpoint behind it) is allowed; a route to it is not
    H = T.switch(3)
    H.graph.clear()
    H.add_node("spare", kind="switch")
    net = T.compile_network(H)
    with pytest.raises(ValueError, match="^no route from node 0 to node 'spare': no links "):
        net.routes([0], [net.index["spare"]])


# --------------------------------------------------------------------------- links


def two_nodes(**attrs) -> dict:
    link = dict({"source": 0, "target": 1, "bandwidth": 1e9, "latency": 1e-6}, **attrs)
    return {"nodes": [{"id": 0}, {"id": 1}], "links": [link]}


def test_parallel_links_in_node_link_json_are_kept(tmp_path):
    doc = two_nodes()
    doc["links"].append(dict(doc["links"][0]))
    path = tmp_path / "pair.json"
    for flag in ({}, {"multigraph": False}):  # no flag, or one that says otherwise
        path.write_text(json.dumps(dict(doc, **flag)))
        G = T.load(path)
        assert G.is_multigraph() and G.number_of_edges() == 2
    # spread over the two cables: a ring all-reduce on 2 ranks moves n/2 each way in each of
    # its 2 steps at twice the bandwidth: 2 (lat + n/2 / 2 bw)
    n = 8 * MiB
    sch = build("allreduce", "ring", 2)
    want = 2 * (1e-6 + n / 2 / 2e9)
    for model in ("contention", "hockney"):
        assert simulate(sch, G, n, model, routing="spread").time_s == pytest.approx(want)
    (tmp_path / "one.json").write_text(json.dumps(two_nodes()))
    one = T.load(tmp_path / "one.json")
    assert simulate(sch, one, n, "contention", routing="spread").time_s == pytest.approx(
        2 * (1e-6 + n / 2 / 1e9))
    # hashed ECMP puts a pair's flow on one of the cables, and different pairs on both
    M = nx.MultiGraph()
    M.add_nodes_from(range(4), kind="endpoint")
    M.add_nodes_from([4, 5], kind="switch")
    M.add_edges_from([(0, 4), (1, 4), (2, 5), (3, 5), (4, 5), (4, 5)], bandwidth=1e9,
                     latency=1e-6)
    net = T.compile_network(M)
    _, links = net.routes([0, 0, 1, 1], [2, 3, 2, 3])
    trunk = {int(l) for l in links if {int(net.link_src[l]), int(net.link_dst[l])} == {4, 5}}
    assert len(trunk) == 2


def test_half_duplex_halves_a_bidirectional_exchange(tmp_path):
    # ring all-reduce on 2 ranks: each step sends n/2 each way at once. Full duplex: each
    # way has bw: 2 (lat + n/2 / bw); half duplex: the two ways share bw: 2 (lat + n / bw)
    n = 8 * MiB
    sch = build("allreduce", "ring", 2)
    for duplex, t in (("full", 2 * (1e-6 + n / 2 / 1e9)), ("half", 2 * (1e-6 + n / 1e9))):
        path = tmp_path / f"{duplex}.json"
        path.write_text(json.dumps(two_nodes(duplex=duplex)))
        G = T.load(path)
        assert simulate(sch, G, n, "contention").time_s == pytest.approx(t, rel=1e-12)
        # Hockney never shares a link: the same either way
        assert simulate(sch, G, n, "hockney").time_s == pytest.approx(
            2 * (1e-6 + n / 2 / 1e9), rel=1e-12)
    net = T.compile_network(G)
    assert net.routes([0], [1])[1].tolist() == net.routes([1], [0])[1].tolist() == [0]
    # a one-way transfer on a half-duplex link has it all
    fab = fabric_for(G, 2)
    _, inv = fab.figures(fab.pattern(np.array([0]), np.array([1])), Contention())
    assert 1 / inv[0] == pytest.approx(1e9)


# --------------------------------------------------------------------------- bad input


def test_bad_input_one_line(tmp_path, capsys):
    sch = build("allreduce", "ring", 16)
    for call, msg in (
        (lambda: T.compile_network(T.ring(4), routing="ecmp"),
         "unknown routing policy 'ecmp'; known: auto, shortest, spread, dimension-order, "
         "dmodk, minimal"),
        (lambda: simulate(sch, T.fat_tree(4), 1024, routing="dimension-order"),
         "routing 'dimension-order' needs a torus or ring (topologies.torus / ring); this "
         "graph is a fat_tree: use routing 'shortest' or 'spread' (or 'auto')"),
        (lambda: T.compile_network(T.torus((4, 4)), routing="dmodk"),
         "routing 'dmodk' needs a fat-tree or GPU cluster"),
        (lambda: simulate(sch, None, 1024, params=Hockney(1e-6, 1e-9), routing="dmodk"),
         "routing 'dmodk' does not fit the analytic fully connected network"),
    ):
        with pytest.raises(ValueError) as e:
            call()
        assert str(e.value).startswith(msg) and "\n" not in str(e.value)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(two_nodes(duplex="simplex")))
    with pytest.raises(ValueError, match=r"^link \(0, 1\) has duplex 'simplex': duplex must be "
                                         r"'full' .* or 'half'"):
        T.load(path)
    for argv, msg in (
        (["predict", "--routing", "magic"], "unknown routing policy 'magic'; known: auto,"),
        (["predict", "-t", "fat-tree", "-n", "16", "--routing", "dimension-order"],
         "routing 'dimension-order' needs a torus or ring"),
        (["route", "-t", "torus", "-n", "16", "0", "99"], "99 is not a node of this network"),
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, err


# --------------------------------------------------------------------------- python -m sim route


def test_route_cli(tmp_path, capsys):
    assert main(["route", "-t", "fat-tree", "-n", "16", "--routing", "dmodk", "0", "15"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "# route 0 -> 15, routing dmodk, 6 hops"
    hops = [line.split() for line in out[1:-1]]
    assert [(h[0], h[2]) for h in hops] == [("0", "16"), ("16", "25"), ("25", "35"),
                                            ("35", "31"), ("31", "23"), ("23", "15")]
    assert all(h[3:] == ["25GB/s", "1us"] for h in hops)
    assert out[-1] == "# latency 6us, bottleneck 25GB/s"
    # a file (bare node-link JSON of a torus): dimension order, as the generator routes it
    path = tmp_path / "t.json"
    data = nx.node_link_data(T.torus((4, 4), bandwidth="100Gbps"))
    data["graph"] = {}
    path.write_text(json.dumps(data))
    assert main(["route", "--topology", str(path), "0", "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[1:-1]] == ["0", "4", "8", "9"]
    assert out[-1] == "# latency 4us, bottleneck 12.5GB/s"
    # spread shows each hop's share; the bottleneck is min bandwidth / share
    assert main(["route", "-t", "fat-tree", "-n", "16", "--oversubscription", "2",
                 "--routing", "spread", "0", "15"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "# route 0 -> 15, routing spread, 14 hops"
    assert sorted(line.split()[-1] for line in out[1:-1]).count("0.25") == 8
    assert out[-1] == "# latency 6us, bottleneck 25GB/s"


def test_the_documented_example_file(tmp_path):
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "topology-files.md").read_text()
    text = doc.split("```json\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.json"
    path.write_text(text)
    G = T.load(path)
    assert G.is_multigraph() and G.number_of_edges() == 4  # "multigraph": false, two cables
    net = T.compile_network(G, routing="spread")
    assert int(net.half_duplex.sum()) == 2  # the side link, both directions
    ptr, links, share = net.weighted_routes([net.index[1]], [net.index["sw"]])
    assert sorted(share.tolist()) == [0.5, 0.5] and len(set(links.tolist())) == 2


@pytest.mark.parametrize("G", [T.fat_tree(4), T.fat_tree(6, hosts=20),
                               T.gpu_cluster(5, 4, leaf_radix=16),
                               T.gpu_cluster(16, 1, leaf_radix=8)],
                         ids=lambda G: f"{G.graph['family']}{G.graph['params']}")
def test_spread_formula_equals_the_graph_walk(G):
    # fat-trees and GPU clusters spread by formula; the shares are those the walk over all
    # equal-cost paths finds
    net = T.compile_network(G, routing="spread")
    assert net._spreader is not None
    E = len(net.endpoints)
    src, dst = np.divmod(np.arange(E * E), E)
    a, b = net._spread(src, dst), net._route_spread(src, dst)
    assert np.array_equal(a[0], b[0])
    for i in range(E * E):
        x, y = (sorted(zip(c[1][c[0][i]:c[0][i + 1]].tolist(),
                           c[2][c[0][i]:c[0][i + 1]].tolist(), strict=True)) for c in (a, b))
        assert [k for k, _ in x] == [k for k, _ in y]
        np.testing.assert_allclose([f for _, f in x], [f for _, f in y], rtol=1e-12)


def test_routing_reaches_every_entry_point(capsys):
    from sim.api import predict, sweep
    from sim.fabric import with_routing

    G = T.torus((4, 4))
    sch = build("allreduce", "ring", 16)
    dor = simulate(sch, G, 64 * MiB, "contention").time_s
    ecmp = simulate(sch, G, 64 * MiB, "contention", routing="shortest").time_s
    assert ecmp > 1.9 * dor
    assert predict("allreduce", "ring", 16, 64 * MiB, G, "contention",
                   routing="shortest").time_s == ecmp
    recs = sweep("allreduce", ["ring"], 16, [64 * MiB], G, "contention", routing="shortest")
    assert [r.time_s for r in recs] == [ecmp]
    net = with_routing(G, "shortest")
    assert net.routing == "shortest" and with_routing(net, "shortest") is net
    assert simulate(sch, net, 64 * MiB, "contention").time_s == ecmp
    assert fabric_for(G, 16, routing="shortest").net is net  # compiled once per policy
    for routing, t in ((None, dor), ("shortest", ecmp)):
        argv = ["predict", "-t", "torus", "--dims", "4x4", "-n", "16", "-b", "64MiB", "-m",
                "contention", "--json"] + (["--routing", routing] if routing else [])
        assert main(argv) == 0
        assert json.loads(capsys.readouterr().out)["time_s"] == pytest.approx(t, rel=1e-12)
