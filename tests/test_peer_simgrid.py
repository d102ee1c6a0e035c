"""bench.peer_simgrid: the platform export, the SMPI algorithm map and config, the CLI's errors,
and (where SimGrid's smpirun is installed) a smoke run against closed forms."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import topologies as T
from bench import peer_simgrid as peer
from collectives import build
from topologies import compile_network

ROOT = Path(__file__).resolve().parents[1]
needs_smpi = pytest.mark.skipif(not peer.smpi_available(),
                                reason="SimGrid's smpirun/smpicc not installed")


def _parse(xml: str) -> ET.Element:
    root = ET.fromstring(xml.split("\n", 2)[2])  # past the XML declaration and DOCTYPE
    assert root.tag == "platform" and root.get("version") == "4.1"
    return root


def test_platform_routes_are_exactly_ours_on_fat_tree():
    G = T.fat_tree(4)
    net = compile_network(G)
    nodes = net.index_of(T.place(G, 16))
    zone = _parse(peer.platform_xml(net, nodes)).find("zone")
    assert zone.get("routing") == "Full"
    hosts = zone.findall("host")
    assert [h.get("id") for h in hosts] == [f"rank{r}" for r in range(16)]
    assert len(zone.findall("router")) == 20  # 8 edge + 8 aggregation + 4 core switches
    links = {ln.get("id"): ln for ln in zone.findall("link")}
    routes = zone.findall("route")
    assert len(routes) == 16 * 15
    used = set()
    for rt in routes:
        s, d = int(rt.get("src")[4:]), int(rt.get("dst")[4:])
        assert rt.get("symmetrical") == "NO"
        ptr, ids = net.routes(nodes[[s]], nodes[[d]])
        want = [f"link{i}" for i in ids[ptr[0]:ptr[1]]]
        assert [c.get("id") for c in rt.findall("link_ctn")] == want
        used.update(want)
    assert set(links) == used
    for name, ln in links.items():
        i = int(name[4:])
        assert float(ln.get("bandwidth").removesuffix("Bps")) == net.link_bandwidth[i]
        assert float(ln.get("latency").removesuffix("s")) == net.link_latency[i]
        assert ln.get("sharing_policy") == "SHARED"


def test_platform_keeps_the_two_directions_apart():
    net = compile_network(T.fully_connected(2, bandwidth=1e9, latency=3e-6))
    zone = _parse(peer.platform_xml(net, net.endpoints)).find("zone")
    fwd, back = zone.findall("route")
    assert fwd.find("link_ctn").get("id") != back.find("link_ctn").get("id")
    assert {ln.get("bandwidth") for ln in zone.findall("link")} == {"1000000000Bps"}


def test_ranks_on_one_endpoint_are_refused():
    net = compile_network(T.switch(4))
    with pytest.raises(peer.PeerError, match="share an endpoint"):
        peer.rank_routes(net, np.array([0, 0, 1]))


def test_two_level_tree_is_a_2_to_1_tree():
    G = peer.two_level_tree(4, 4, 2.0, bandwidth=10e9, latency=1e-6)
    assert nx.is_tree(G)
    hosts = [v for v, k in G.nodes(data="kind") if k == "endpoint"]
    assert hosts == list(range(16))
    ups = [d["bandwidth"] for u, v, d in G.edges(data=True) if u >= 16 and v >= 16]
    assert ups == [20e9] * 4  # 4 hosts of 10 GB/s share 20 GB/s up: 2:1


def _first_distance(schedule) -> int:
    """Partner distance of the last rank in the first step (power-of-two p: no fold)."""
    st = schedule.steps[0]
    src, dst = np.asarray(st.src), np.asarray(st.dst)
    p = schedule.nranks
    return abs(int(dst[src == p - 1][0]) - (p - 1))


def test_algorithm_map_follows_the_schedules_partner_order():
    assert peer.smpi_algorithm("allreduce", "ring", build("allreduce", "ring", 8)).label == "lr"
    assert peer.smpi_algorithm("all-gather", "ring",
                               build("allgather", "ring", 8)).settings == {"allgather": "NTSLR"}
    rab = build("allreduce", "rabenseifner", 16)
    got = peer.smpi_algorithm("allreduce", "rabenseifner", rab)
    want = "rab_rdb" if _first_distance(rab) == 1 else "rab1+allgather:rdb"
    assert got.label == want
    rh = build("reducescatter", "recursive-halving", 16)
    got = peer.smpi_algorithm("reducescatter", "recursive-halving", rh).label
    assert got == ("mpich_noncomm" if _first_distance(rh) == 1
                   else "ompi_basic_recursivehalving")
    rd = build("allreduce", "recursive-doubling", 16)
    assert _first_distance(rd) == 1  # MPICH's order, SMPI rdb
    assert peer.smpi_algorithm("allreduce", "recursive-doubling", rd).label == "rdb"


def test_algorithm_without_smpi_equivalent_is_refused():
    with pytest.raises(peer.PeerError, match="no SMPI algorithm matches allreduce 'binomial'"):
        peer.smpi_algorithm("allreduce", "binomial", build("allreduce", "binomial", 8))


def test_config_gives_cm02_without_factors_and_solver_per_sharing():
    rtt = peer.smpi_config("rtt")
    for flag in ("--cfg=network/model:CM02", "--cfg=network/crosstraffic:0",
                 "--cfg=smpi/simulate-computation:no", "--cfg=smpi/bw-factor:0:1",
                 "--cfg=smpi/lat-factor:0:1", "--cfg=network/weight-S:0"):
        assert flag in rtt
    assert not any("solver" in f for f in rtt)
    assert peer.smpi_config("fair") == rtt + ["--cfg=network/solver:fairbottleneck"]
    with pytest.raises(peer.PeerError, match="sharing must be"):
        peer.smpi_config("tcp")


def test_missing_smpirun_is_one_line(tmp_path):
    env = {"PATH": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bench.peer_simgrid", "-t", "tree", "-n", "4"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "smpirun" in lines[0] and "libsimgrid-dev" in lines[0]


@pytest.mark.parametrize("argv, message", [
    (["--sharing", "tcp"], "argument --sharing"),
    (["-t", "tree", "-n", "4", "-b", "1000"], "positive multiple of 16"),
    (["-t", "tree", "-a", "binomial"], "no SMPI algorithm matches allreduce 'binomial'"),
    (["-c", "broadcast", "-t", "tree"], "SMPI comparison covers"),
    (["-t", "moebius"], "unknown topology 'moebius'"),
    (["-t", "tree", "-n", "6", "-b", "6MiB"], "do not fill leaves of 4 hosts"),
    (["-t", "tree", "--smpi", "allgather:rdb"], "--smpi wants NAME"),
    (["-t", "tree", "--option", "order"], "--option wants KEY=VALUE"),
])
def test_bad_arguments_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        peer.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@needs_smpi
def test_smoke_ring_on_a_switch_matches_closed_form_and_us(tmp_path):
    # 4 ranks on one switch (every route two links, unique): ring all-reduce of n = 1 MiB is
    # 2(p-1) steps, each one n/p-byte transfer per rank over its own two links.
    bw, lat, p, n = 25e9, 1e-6, 4, 1 << 20
    want = 2 * (p - 1) * (2 * lat + (n / p) / bw)
    exe = peer._compile(tmp_path)
    sc = peer.Scenario("allreduce", "ring", p, n, "switch", T.switch(p, bw, lat))
    row = peer.run_scenario(sc, exe, tmp_path)
    assert row.smpi_label == "lr"
    for s in ("rtt", "fair"):
        assert row.simgrid[s] == pytest.approx(want, rel=1e-4)
    for mode, t in row.ours.items():
        assert t == pytest.approx(want, rel=1e-9)
        assert row.ratio(mode) == pytest.approx(1.0, abs=1e-4)


@needs_smpi
def test_smoke_rabenseifner_on_a_2_to_1_tree_agrees(capsys):
    # 8 ranks, 2 leaves of 4 under one spine: unique routes, the same algorithm on both sides.
    assert peer.main(["-t", "tree", "-n", "8", "-a", "rabenseifner", "-b", "1MiB",
                      "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip())
    assert rec["smpi_algorithm"] in ("rab_rdb", "rab1+allgather:rdb")
    for ratio in rec["ratio"].values():
        assert ratio == pytest.approx(1.0, abs=2e-3)


@needs_smpi
def test_smoke_rtt_and_fair_sharing_part_where_route_latencies_differ(tmp_path):
    # 8 ranks, 2 leaves of 4; hosts 0, 3, 6 have 50/100/50 us NIC links. Recursive doubling
    # at 16 MiB crosses the 2:1 uplinks with flows of unequal latency: CM02 gives the short
    # ones more (rate ~ 1/latency), the fair solver gives each the same, and the makespans
    # part by about 5%. Where our contention model has both modes, each matches its solver.
    exe = peer._compile(tmp_path)
    G = peer.mixed_latency_tree(2, 4)
    assert sorted(d["latency"] for _, _, d in G.edges(data=True))[-3:] == [50e-6, 50e-6, 1e-4]
    sc = peer.Scenario("allreduce", "recursive-doubling", 8, 16 << 20, "mixed", G)
    row = peer.run_scenario(sc, exe, tmp_path)
    assert row.simgrid["rtt"] > 1.02 * row.simgrid["fair"]
    for mode in ("rtt", "fair"):
        if mode in row.ours:
            assert row.ratio(mode) == pytest.approx(1.0, abs=1e-3)
