"""What-ifs against closed forms worked by hand: late ranks, a slow NIC, a slow reduction, a
failed link, and the one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

import topologies
from collectives import build
from sim import Contention, Hockney, simulate
from sim.api import whatif_topology
from topologies.whatif import cut_off_ranks, degrade, fail_links, parse_link, parse_node

ROOT = Path(__file__).resolve().parents[1]
A, B, G = 2e-6, 1e-9, 2.5e-10  # alpha, beta, gamma


def _ring_allreduce(p, n):
    return 2 * (p - 1) * A + 2 * (p - 1) / p * n * B + (p - 1) / p * n * G


def _rabenseifner(p, n):
    lg = p.bit_length() - 1
    return 2 * lg * A + 2 * (p - 1) / p * n * B + (p - 1) / p * n * G


@pytest.mark.parametrize(("algo", "p", "closed"), [("ring", 6, _ring_allreduce),
                                                   ("rabenseifner", 8, _rabenseifner)])
@pytest.mark.parametrize("late_rank", [0, 3])
def test_one_late_rank_adds_exactly_its_lateness(algo, p, closed, late_rank):
    # Every rank takes part in every step of these all-reduces, so the late rank's whole chain
    # of steps starts `late` later and everyone waits on it: time = late + the closed form.
    n, late = 6 * 8 * 1024, 37e-6
    sch = build("allreduce", algo, p)
    h = Hockney(A, B, G)
    on_time = simulate(sch, h, n)
    assert on_time.time_s == pytest.approx(closed(p, n), rel=1e-12)
    res = simulate(sch, h, n, arrival={late_rank: late})
    assert res.time_s == pytest.approx(late + closed(p, n), rel=1e-12)
    assert res.time_from_last_s == pytest.approx(closed(p, n), rel=1e-12)
    # The same as a full arrival list, and every rank finishes after the late one arrives.
    arr = [0.0] * p
    arr[late_rank] = late
    assert simulate(sch, h, n, arrival=arr).time_s == res.time_s
    assert res.rank_finish.min() > late


def test_arrival_counts_from_the_first_rank():
    # All ranks 5 us late is no lateness at all: both times are the on-time result.
    sch = build("allreduce", "ring", 4)
    h = Hockney(A, B, G)
    res = simulate(sch, h, 4096, arrival=[5e-6] * 4)
    assert res.time_s == pytest.approx(_ring_allreduce(4, 4096), rel=1e-12)
    assert res.time_from_last_s == pytest.approx(res.time_s, rel=1e-12)


@pytest.mark.parametrize("model", ["hockney", "contention"])
@pytest.mark.parametrize("factor", [1.0, 0.5, 0.1])
def test_slow_nic_on_a_star_gives_the_closed_form(model, factor):
    # Star of p hosts, links of bandwidth bw and latency lat. A ring all-reduce step sends n/p
    # bytes host -> switch -> host (2 lat); each host's one link per direction carries one
    # flow (no sharing). The slow host's link runs at factor * bw, and it sends and receives
    # in every one of the 2(p-1) steps: time = 2(p-1) (2 lat + n / (p factor bw)).
    p, n, bw, lat, slow = 8, 8 << 20, 10e9, 1e-6, 5
    star = topologies.switch(p, bandwidth=bw, latency=lat)
    H = degrade(star, {slow: factor})
    res = simulate(build("allreduce", "ring", p), H, n, model)
    assert res.time_s == pytest.approx(2 * (p - 1) * (2 * lat + n / (p * factor * bw)),
                                       rel=1e-12)
    # the node's link, named as a link, is the same what-if on a star
    same = simulate(build("allreduce", "ring", p), degrade(star, {(slow, p): factor}), n, model)
    assert same.time_s == res.time_s
    assert star[slow][p]["bandwidth"] == bw  # the user's graph is untouched


def test_slow_reduction_on_one_rank_gives_the_closed_form():
    # Ring reduce-scatter: in each of its p-1 steps every rank receives and reduces n/p bytes;
    # rank 2 reduces at 4 gamma and takes part in every step: (p-1)(A + n/p B + 4 n/p G).
    p, n = 5, 5 * 4096
    res = simulate(build("reducescatter", "ring", p), Hockney(A, B, G), n,
                   reduce_scale={2: 4.0})
    assert res.time_s == pytest.approx((p - 1) * (A + n / p * B + 4 * n / p * G), rel=1e-12)


def _plain_torus(dims):
    """A torus routed by latency-shortest paths (no generator structure to route by)."""
    T = topologies.torus(dims, bandwidth=10e9, latency=1e-6)
    del T.graph["family"]
    return T


@pytest.mark.parametrize("model", ["hockney", "contention"])
@pytest.mark.parametrize("link", [(0, 1), (5, 9), (0, 12)])
def test_a_failed_torus_link_reroutes_and_is_never_faster(model, link):
    T = _plain_torus((4, 4))
    H = fail_links(T, [link])
    assert T.has_edge(*link) and not H.has_edge(*link)
    for algo in ("ring", "rabenseifner"):
        sch = build("allreduce", algo, 16)
        healthy = simulate(sch, T, 4 << 20, model)
        damaged = simulate(sch, H, 4 << 20, model)
        assert damaged.time_s >= healthy.time_s * (1 - 1e-12), algo
        used = set(damaged.links.names)
        assert link not in used and link[::-1] not in used  # nothing crosses the dead link
    # the ring's neighbour exchange 0 <-> 1 needed that link: it now takes 3 hops, not 1
    if link == (0, 1):
        ring = build("allreduce", "ring", 16)
        assert simulate(ring, H, 4 << 20, model).time_s > \
            simulate(ring, T, 4 << 20, model).time_s


def test_a_failed_link_on_a_generator_graph_routes_by_shortest_paths():
    T = topologies.torus((4, 4))
    H = whatif_topology(T, 16, fail_links=[(0, 1)])
    assert "family" in T.graph and not H.has_edge(0, 1)
    res = simulate(build("allreduce", "ring", 16), H, 1 << 20, "contention")
    base = simulate(build("allreduce", "ring", 16), T, 1 << 20, "contention")
    assert res.time_s > base.time_s


def test_a_cut_off_rank_is_one_clear_error():
    R = topologies.ring(6)
    H = fail_links(R, [(0, 1), (1, 2)])
    assert cut_off_ranks(H, topologies.place(H, 6)) == [1]
    with pytest.raises(ValueError, match=r"cut off rank 1 \(node 1\) from rank 0"):
        whatif_topology(R, 6, fail_links=[(0, 1), (1, 2)])
    proc = subprocess.run([sys.executable, "-m", "sim", "predict", "-t", "ring", "-n", "6",
                           "--fail-link", "0,1", "--fail-link", "1,2"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "cut off rank 1" in proc.stderr


def test_transforms_return_new_graphs_and_name_cables():
    M = nx.MultiGraph()
    M.add_edge(0, 1, bandwidth=1e9, latency=1e-6)
    M.add_edge(0, 1, bandwidth=1e9, latency=1e-6)
    with pytest.raises(ValueError, match=r"2 parallel cables \(keys 0, 1\); name one as 0,1,KEY"):
        fail_links(M, [(0, 1)])
    H = fail_links(M, [parse_link(M, "0,1,1")])
    assert H.number_of_edges() == 1 and M.number_of_edges() == 2
    D = degrade(M, {(0, 1, 0): 0.25})
    assert [d["bandwidth"] for *_, d in D.edges(data=True)] == [0.25e9, 1e9]
    assert [d["bandwidth"] for *_, d in M.edges(data=True)] == [1e9, 1e9]
    # factors multiply where a node and one of its links are both degraded
    S = topologies.switch(3, bandwidth=8e9)
    assert degrade(S, {0: 0.5, (0, 3): 0.5})[0][3]["bandwidth"] == 2e9


@pytest.mark.parametrize(("call", "message"), [
    (lambda: degrade(topologies.switch(4), {"44": 0.5}), r"no node '44'.*did you mean 4"),
    (lambda: degrade(topologies.switch(4), {1: 0}), r"factor must be a number > 0"),
    (lambda: degrade(topologies.switch(4), {1: -2}), r"factor must be a number > 0"),
    (lambda: fail_links(topologies.switch(4), [(0, 1)]), r"no link 0,1.*did you mean .*0,4"),
    (lambda: parse_node(topologies.switch(4), "sw"), r"no node 'sw'"),
    (lambda: parse_link(topologies.switch(4), "0-4"), r"expected U,V"),
    (lambda: simulate(build("allreduce", "ring", 4), Hockney(A, B), 64, arrival={4: 1e-6}),
     r"arrival names rank 4; ranks are 0..3"),
    (lambda: simulate(build("allreduce", "ring", 4), Hockney(A, B), 64, arrival=[0, -1, 0, 0]),
     r"arrival of rank 1 must be a finite number >= 0, got -1"),
    (lambda: simulate(build("allreduce", "ring", 4), Hockney(A, B), 64, arrival=[0, 1]),
     r"arrival has 2 entries for 4 ranks"),
    (lambda: simulate(build("allreduce", "ring", 4), Hockney(A, B), 64,
                      reduce_scale={0: 0.0}),
     r"reduce_scale of rank 0 must be a finite number > 0"),
    (lambda: whatif_topology(None, 4, degrade={0: 0.5}), r"fully-connected network is analytic"),
])
def test_bad_what_ifs_are_one_line(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("flags", "message"), [
    (["--late", "8=1us"], "argument --late: rank '8' out of range 0..7"),
    (["--late", "3=-1us"], "argument --late: time must be finite and non-negative"),
    (["--late", "3"], "argument --late: expected RANK=TIME"),
    (["--slow-reduce", "1=0"], "argument --slow-reduce: rank 1 has 0; use a factor > 0"),
    (["-t", "switch", "--degrade", "80=0.5"], "argument --degrade: no node '80'"),
    (["-t", "switch", "--degrade", "3=0"], "factor must be a number > 0"),
    (["-t", "switch", "--fail-link", "3,4"], "argument --fail-link: no link 3,4"),
    (["--degrade", "3=0.5"], "fully-connected network is analytic"),
])
def test_bad_what_if_flags_are_one_line(flags, message):
    proc = subprocess.run([sys.executable, "-m", "sim", "predict", "-n", "8", *flags],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2, proc.stdout
    assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def test_predict_reports_both_times():
    import json

    proc = subprocess.run([sys.executable, "-m", "sim", "predict", "-n", "6", "--bytes", "6K",
                           "--alpha", "2us", "--beta", "1ns", "--gamma", "2.5e-10",
                           "--late", "2=37us", "--late", "4=10us", "--json"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["time_s"] == pytest.approx(37e-6 + _ring_allreduce(6, 6144), rel=1e-9)
    assert out["time_from_last_s"] == pytest.approx(_ring_allreduce(6, 6144), rel=1e-9)
    table = subprocess.run([sys.executable, "-m", "sim", "predict", "-n", "6", "-t", "switch",
                            "--late", "2=37us", "--degrade", "3=0.5", "--slow-reduce", "1=2",
                            "--gamma", "1e-10"],
                           capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert table.returncode == 0, table.stderr
    assert "# time from the first arrival" in table.stdout and "from the last" in table.stdout


def test_contention_sharing_model_takes_what_ifs():
    # a slow NIC under contention on a fat-tree still completes and is slower
    F = topologies.fat_tree(4)
    sch = build("allreduce", "rabenseifner", 16)
    base = simulate(sch, F, 1 << 22, Contention())
    slow = simulate(sch, degrade(F, {3: 0.25}), 1 << 22, Contention())
    assert slow.time_s > base.time_s


def _colour_share(png, rgb, tol=0.06):
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(png)[..., :3]
    return float((np.abs(img - np.array(rgb)).max(axis=2) < tol).mean())


def test_wait_timeline_shows_the_late_rank_and_the_waits(tmp_path):
    from sim import plots

    p, late = 8, 200e-6
    arr = [0.0] * p
    arr[3] = late
    res = simulate(build("allreduce", "ring", p), topologies.switch(p), 1 << 20, "contention",
                   arrival=arr, timeline=True)
    tl = res.timeline
    png = plots.plot_rank_waits(tl.src, tl.dst, tl.start, tl.end, arr, tmp_path / "w", "w")
    assert png.exists() and png.with_suffix(".svg").exists()
    # the ranks wait on rank 3 for about as long as it is late: a good share of red, and the
    # grey of rank 3 not yet there
    assert _colour_share(png, (0.84, 0.15, 0.16)) > 0.05
    assert _colour_share(png, (0.73, 0.73, 0.73)) > 0.005
    assert _colour_share(png, (0.12, 0.47, 0.71)) > 0.05


def test_whatif_figure_lines_per_algorithm(tmp_path):
    from sim import plots
    from sim.api import predict

    recs = []
    for late in (0.0, 20e-6, 80e-6):
        for algo in ("ring", "recursive-doubling"):
            r = predict("allreduce", algo, 8, 1 << 16, params=Hockney(A, B, G),
                        arrival={5: late})
            r.extra["late"] = late
            recs.append(r)
    png = plots.plot_whatif(recs, lambda r: r.extra["late"] * 1e6, "lateness (us)",
                            tmp_path / "wi", "late rank", baseline=0.0)
    assert _colour_share(png, (1, 1, 1)) < 0.97  # something drawn
    # both algorithms add exactly the lateness here (every rank waits on rank 5)
    by = {(r.algorithm, r.extra["late"]): r.time_s for r in recs}
    for algo in ("ring", "recursive-doubling"):
        assert by[(algo, 80e-6)] - by[(algo, 0.0)] == pytest.approx(80e-6, rel=1e-9)
