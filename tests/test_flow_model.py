"""The contention model as a flow-level simulation (SimGrid CM02 semantics): hand-computed
cases, fair vs rtt sharing, the arrival / slow-rank hooks, and the per-step fast path giving
the flow simulation's numbers wherever it is taken."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import sim.fastpath as FP
from collectives import build
from collectives.ir import Schedule, make_step
from sim import Contention, Hockney, LogGP, simulate
from sim.api import make_topology
from sim.maxmin import maxmin_rates, maxmin_rates_weighted
from topologies import fat_tree, fully_connected, torus

MiB = 1 << 20
GBPS = 1e9 / 8  # bytes per second in one Gbit/s


def _star(latency: dict[str, float], bandwidth: dict[str, float], hosts: list[str]) -> nx.Graph:
    """Hosts around one switch ``s``; per-host link latency and bandwidth."""
    G = nx.Graph()
    G.add_node("s", kind="switch")
    for h in hosts:
        G.add_node(h, kind="endpoint")
        G.add_edge(h, "s", bandwidth=bandwidth[h], latency=latency[h])
    return G


def _two_switches(uplink_bw: float, hosts_each: int = 3, host_bw: float = 100 * GBPS):
    """``hosts_each`` hosts under switch a, as many under b, one a-b uplink; no latency."""
    G = nx.Graph()
    for s in ("sa", "sb"):
        G.add_node(s, kind="switch")
    G.add_edge("sa", "sb", bandwidth=uplink_bw, latency=0.0)
    for i in range(2 * hosts_each):
        name = f"h{i}"
        G.add_node(name, kind="endpoint")
        G.add_edge(name, "sa" if i < hosts_each else "sb", bandwidth=host_bw, latency=0.0)
    return G


def _schedule(p: int, nchunks: int, steps: list[list[tuple[int, int, int, int]]]) -> Schedule:
    """Steps of ``(src, dst, first chunk, chunks)`` copies."""
    made = []
    for st in steps:
        made.append(make_step([t[0] for t in st], [t[1] for t in st], False,
                              run_start=[t[2] for t in st], run_len=[t[3] for t in st]))
    return Schedule("allreduce", "hand", p, nchunks, tuple(made))


def _force_flow(monkeypatch):
    monkeypatch.setattr(FP.ExactCheck, "step", lambda *a: False)


# --------------------------------------------------------------------------- hand cases


def test_two_flows_into_one_receiver_reshare_when_the_small_one_ends():
    # a (1 MiB) and b (3 MiB) send to c over the switch's one 10 Gbps link to c; the hosts'
    # own links are 100 Gbps. Both run at 5 Gbps until a's 1 MiB is in: 2 MiB have crossed
    # the link, at 2 MiB / 10 Gbps. Then b has the whole link for its last 2 MiB.
    C = 10 * GBPS
    G = _star({"a": 0.0, "b": 0.0, "c": 0.0}, {"a": 100 * GBPS, "b": 100 * GBPS, "c": C},
              ["a", "b", "c"])
    sch = _schedule(3, 4, [[(0, 2, 0, 1), (1, 2, 1, 3)]])
    r = simulate(sch, G, 4 * MiB, Contention(), timeline=True)
    small_end = 2 * MiB / C
    large_end = small_end + 2 * MiB / C  # = 4 MiB / 10 Gbps: the link never idles
    assert r.timeline.end.tolist() == pytest.approx([small_end, large_end], rel=1e-12)
    assert r.time_s == pytest.approx(4 * MiB / C, rel=1e-12)
    assert r.path == "flow"  # unequal ends: the per-step rates would be wrong
    # the per-step figure (both at 5 Gbps to the end) would give the large one 6 MiB / 10 Gbps
    assert r.time_s < 6 * MiB / C * 0.99


def _latency_pair(sharing: str, X: int):
    # a and b send X bytes each to c; the switch-to-c link (10 Gbps) is shared. Path latency:
    # a 1 us (0.5 + 0.5), b 3 us (2.5 + 0.5).
    C = 10 * GBPS
    G = _star({"a": 0.5e-6, "b": 2.5e-6, "c": 0.5e-6},
              {"a": 100 * GBPS, "b": 100 * GBPS, "c": C}, ["a", "b", "c"])
    sch = _schedule(3, 2, [[(0, 2, 0, 1), (1, 2, 1, 1)]])
    r = simulate(sch, G, 2 * X, Contention(sharing=sharing), timeline=True)
    return r, C


@pytest.mark.parametrize("sharing", ["fair", "rtt"])
def test_unequal_latency_fair_shares_equally_rtt_by_inverse_latency(sharing):
    X = MiB
    r, C = _latency_pair(sharing, X)
    la, lb = 1e-6, 3e-6
    # a's bytes flow from 1 us; alone on the link until b's latency is paid at 3 us
    alone = C * (lb - la)
    # then a gets C/2 (fair) or C * (1/la) / (1/la + 1/lb) = 3/4 C (rtt)
    share_a = 0.5 if sharing == "fair" else (1 / la) / (1 / la + 1 / lb)
    a_end = lb + (X - alone) / (share_a * C)
    b_end = la + 2 * X / C  # the link is busy from 1 us until both are through
    assert r.timeline.end.tolist() == pytest.approx([a_end, b_end], rel=1e-9)
    assert r.timeline.start.tolist() == [0.0, 0.0]


def test_rtt_weights_are_inverse_latency_in_the_solver():
    # one link of 12, latencies 1 and 3: rates 9 and 3 under rtt (SimGrid's penalty = latency)
    from sim.costs import sharing_weight

    w = sharing_weight(np.array([1.0, 3.0]), "rtt")
    rates = maxmin_rates_weighted(np.array([0, 1, 2]), np.array([0, 0]), np.array([12.0]),
                                  weight=w)
    assert rates.tolist() == pytest.approx([9.0, 3.0])
    assert sharing_weight(np.array([0.0, 2.0]), "rtt").tolist() == [1.0, 0.5]
    assert sharing_weight(np.array([1.0]), "fair") is None


def test_three_independent_steps_overlap_on_one_uplink_each_gets_a_third():
    # h0->h3, h1->h4, h2->h5 in steps 0, 1, 2: their ranks are all different, so all three
    # start at 0 (asynchronous progress) and cross the one 20 Gbps uplink together.
    C = 20 * GBPS
    G = _two_switches(C)
    sch = _schedule(6, 3, [[(0, 3, 0, 1)], [(1, 4, 1, 1)], [(2, 5, 2, 1)]])
    X = 8 * MiB
    r = simulate(sch, G, 3 * X, Contention(), timeline=True)
    assert r.timeline.start.tolist() == [0.0, 0.0, 0.0]
    assert r.timeline.end.tolist() == pytest.approx([3 * X / C] * 3, rel=1e-12)
    # Hockney (no sharing) gives each the whole uplink
    h = simulate(sch, G, 3 * X, Hockney(), timeline=True)
    assert h.time_s == pytest.approx(X / C, rel=1e-12)


def test_three_steps_of_64_32_16_mib_water_fill():
    C = 20 * GBPS
    G = _two_switches(C)
    # chunks of 16 MiB: 4, 2 and 1 of them
    sch = _schedule(6, 7, [[(0, 3, 0, 4)], [(1, 4, 4, 2)], [(2, 5, 6, 1)]])
    r = simulate(sch, G, 112 * MiB, Contention(), timeline=True)
    t16 = 3 * 16 * MiB / C           # all three at C/3 until 16 MiB each have crossed
    t32 = t16 + 2 * 16 * MiB / C     # the other two at C/2 for the 32 MiB one's last 16
    t64 = t32 + 32 * MiB / C         # the 64 MiB one alone for its last 32
    assert r.timeline.end.tolist() == pytest.approx([t64, t32, t16], rel=1e-12)
    assert t64 == pytest.approx(112 * MiB / C)


def test_a_rank_waits_for_both_ends_then_pays_latency_before_bandwidth():
    # 0 -> 1 then 1 -> 2: the second starts when the first ends; each costs L + X/B.
    G = fully_connected(3, bandwidth=1e9, latency=2e-6)
    sch = _schedule(3, 2, [[(0, 1, 0, 1)], [(1, 2, 1, 1)]])
    r = simulate(sch, G, 2000, Contention(), timeline=True)
    one = 2e-6 + 1000 / 1e9
    assert r.timeline.start.tolist() == pytest.approx([0.0, one])
    assert r.time_s == pytest.approx(2 * one)


# --------------------------------------------------------------------------- hooks


@pytest.mark.parametrize("model", [Hockney(), Contention(), LogGP(o=1e-7, g=1e-7)])
def test_arrival_delays_a_ranks_first_transfer(model):
    # two ranks exchange once: the exchange starts when the later one arrives
    G = fully_connected(2, bandwidth=1e9, latency=1e-6)
    sch = build("allreduce", "recursive-doubling", 2)
    base = simulate(sch, G, 1000, model)
    late = simulate(sch, G, 1000, model, arrival={1: 5e-6})
    assert late.time_s == pytest.approx(5e-6 + base.time_s)
    assert late.time_from_last_s == pytest.approx(base.time_s)
    seq = simulate(sch, G, 1000, model, arrival=[2e-6, 5e-6])
    assert seq.time_s == pytest.approx(3e-6 + base.time_s)  # from the first arrival


def test_reduce_scale_multiplies_gamma_at_that_rank():
    # recursive doubling on 2 ranks: each reduces n bytes; rank 1 at 3 x gamma
    n, gamma = 1000, 1e-9
    sch = build("allreduce", "recursive-doubling", 2)
    for model in (Hockney(alpha=1e-6, beta=1e-9, gamma=gamma),
                  Contention(alpha=1e-6, beta=1e-9, gamma=gamma)):
        r = simulate(sch, None, n, model, reduce_scale={1: 3.0}, timeline=True)
        # the transfer into rank 1 ends 3 n gamma after its data is in, the other n gamma
        ends = dict(zip(r.timeline.dst.tolist(), r.timeline.end.tolist(), strict=True))
        assert ends[0] == pytest.approx(1e-6 + n * 1e-9 + n * gamma)
        assert ends[1] == pytest.approx(1e-6 + n * 1e-9 + 3 * n * gamma)


@pytest.mark.parametrize("kw, msg", [
    ({"arrival": {5: 1.0}}, "rank 5"),
    ({"arrival": [0.0, -1.0]}, ">= 0"),
    ({"arrival": [0.0]}, "1 entries for 2 ranks"),
    ({"reduce_scale": {0: 0.0}}, "> 0"),
    ({"reduce_scale": {-1: 2.0}}, "rank -1"),
])
def test_bad_hooks_one_clear_line(kw, msg):
    sch = build("allreduce", "ring", 2)
    with pytest.raises(ValueError, match=msg) as e:
        simulate(sch, Hockney(alpha=1e-6, beta=1e-9), 100, **kw)
    assert "\n" not in str(e.value)


def test_a_flow_run_beyond_the_limit_is_refused_in_one_line(monkeypatch):
    import sim.engine as E

    monkeypatch.setattr(E, "FLOW_LIMIT", 10)
    sch = _schedule(6, 3, [[(0, 3, 0, 1)], [(1, 4, 1, 1)], [(2, 5, 2, 1)]] * 4)
    monkeypatch.setattr(E, "FLOW_RATE", 12 / 3600)  # 12 transfers: an hour
    with pytest.raises(ValueError, match="takes at most 10") as e:
        simulate(sch, _two_switches(20 * GBPS), 3 << 20, Contention())
    msg = str(e.value)
    assert "\n" not in msg
    assert "would take about 60 minutes" in msg  # how long, and what to do instead
    assert "--routing dmodk" in msg and "--model hockney" in msg


def test_bad_sharing_is_refused():
    with pytest.raises(ValueError, match="sharing must be one of fair, rtt"):
        Contention(sharing="tcp")


# --------------------------------------------------------------------------- fast == flow

_CASES = [("allreduce", a) for a in ("ring", "rabenseifner", "recursive-doubling", "binomial",
                                     "double-binary-tree", "hierarchical")] + [
    ("reducescatter", "ring"), ("reducescatter", "recursive-halving"),
    ("allgather", "ring"), ("allgather", "recursive-doubling"), ("allgather", "bruck")]


def _topologies():
    return [("fully-connected", fully_connected(8)), ("analytic", None),
            ("fat-tree 2:1", fat_tree(4, oversubscription=2)), ("fat-tree", fat_tree(4)),
            ("torus", torus((4, 4))), ("gpu-cluster", make_topology("gpu-cluster", 16))]


def _compare(a, b):
    assert a.time_s == pytest.approx(b.time_s, rel=1e-9)
    np.testing.assert_allclose(a.timeline.start, b.timeline.start, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(a.timeline.end, b.timeline.end, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(a.steps.end, b.steps.end, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(a.rank_bytes_sent, b.rank_bytes_sent)
    if a.links is not None:
        np.testing.assert_allclose(a.links.bytes, b.links.bytes)


@pytest.mark.parametrize("topo_name, G", _topologies(), ids=[t for t, _ in _topologies()])
def test_fast_path_gives_the_flow_simulation_numbers(topo_name, G, monkeypatch):
    """Every algorithm, several sizes (even and uneven chunks) and rank counts: wherever the
    fast path is taken its numbers are the flow simulation's, and it is taken for the
    symmetric cases it must cover."""
    fast_runs = 0
    for coll, algo in _CASES:
        for p in (4, 6, 8) if G is None or topo_name == "fully-connected" else (6, 8, 16):
            s = build(coll, algo, p)
            for n in (1 << 20, 1_000_003, 5):
                for sharing in ("fair", "rtt"):
                    model = Contention(gamma=1e-10, sharing=sharing,
                                       **({"alpha": 1e-6, "beta": 1e-9} if G is None else {}))
                    with monkeypatch.context() as mp:
                        a = simulate(s, G, n, model, timeline=True)
                        _force_flow(mp)
                        b = simulate(s, G, n, model, timeline=True)
                    assert b.path == "flow"
                    _compare(a, b)
                    fast_runs += a.path == "fast"
    assert fast_runs > 0


def test_fast_path_covers_the_symmetric_closed_form_cases():
    # fully connected, power of two, even chunks: nothing shares a link, every step is exact
    for coll, algo in _CASES:
        r = simulate(build(coll, algo, 8), Contention(alpha=1e-6, beta=1e-9), 1 << 20)
        assert r.path == "fast", (coll, algo)


def test_equal_steps_applied_as_a_translation_give_the_step_by_step_numbers(monkeypatch):
    # a long ring whose steps repeat: the shifted run must match the step-by-step one
    s = build("allreduce", "ring", 64)
    G = fat_tree(8)
    shifts = []
    real_shift = FP.ExactCheck.shift
    monkeypatch.setattr(FP.ExactCheck, "shift",
                        lambda self, ent, by: (shifts.append(by), real_shift(self, ent, by)))
    for model in (Hockney(gamma=1e-10), Contention(gamma=1e-10)):
        quick = simulate(s, G, 1 << 24, model, timeline=False)
        slow = simulate(s, G, 1 << 24, model, timeline=True)  # the timeline turns it off
        assert quick.time_s == pytest.approx(slow.time_s, rel=1e-12)
        np.testing.assert_allclose(quick.steps.start, slow.steps.start, rtol=1e-12)
        np.testing.assert_allclose(quick.steps.end, slow.steps.end, rtol=1e-12)
        np.testing.assert_allclose(quick.rank_finish, slow.rank_finish, rtol=1e-12)
    assert shifts, "the contention run never took the translation"


def test_flow_path_with_no_shared_link_is_hockney(monkeypatch):
    # fully connected: the flow simulation must give Hockney's numbers exactly
    s = build("allreduce", "rabenseifner", 7)
    G = fully_connected(7, bandwidth=1e9, latency=1e-6)
    h = simulate(s, G, 1_000_003, Hockney(gamma=1e-10), timeline=True)
    _force_flow(monkeypatch)
    f = simulate(s, G, 1_000_003, Contention(gamma=1e-10), timeline=True)
    _compare(f, h)


def test_weighted_solver_equals_plain_solver_for_unit_weights():
    rng = np.random.default_rng(7)
    for _ in range(100):
        m, nl = int(rng.integers(1, 30)), int(rng.integers(5, 12))
        lens = rng.integers(0, 5, size=m)
        ptr = np.r_[0, np.cumsum(lens)]
        links = np.concatenate([rng.choice(nl, size=k, replace=False) for k in lens]).astype(int)
        cap = rng.choice([1.0, 2.0, 5.0], size=nl)
        np.testing.assert_allclose(maxmin_rates_weighted(ptr, links, cap),
                                   maxmin_rates(ptr, links, cap), rtol=1e-12)


def test_share_is_a_consumption_weight():
    # one flow split 50/50 over links 0 and 1 (capacity 1 each) and a flow on link 0 alone:
    # 0.5 x + y <= 1 on link 0, 0.5 x <= 1 on link 1; max-min: x = y = 2/3
    rates = maxmin_rates_weighted(np.array([0, 2, 3]), np.array([0, 1, 0]), np.array([1.0, 1.0]),
                                  share=np.array([0.5, 0.5, 1.0]))
    assert rates.tolist() == pytest.approx([2 / 3, 2 / 3])


# --------------------------------------------------------------------------- command line


def _cli(*args):
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, check=False)


def test_cli_sharing_flag():
    import json

    base = ["predict", "--collective", "allreduce", "--algorithm", "ring", "--ranks", "8",
            "--bytes", "1MiB", "--topology", "fat-tree", "--json"]
    got = _cli(*base, "--model", "contention", "--sharing", "rtt")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["params"]["sharing"] == "rtt"
    bad = _cli(*base, "--sharing", "rtt")  # Hockney takes no sharing
    assert bad.returncode != 0
    assert "--sharing applies to --model contention only" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_sim_scale_rows_report_the_path_and_memory():
    import io

    from bench.sim_scale import run

    out = io.StringIO()
    rows = run([(16, "ring"), (16, "rabenseifner", "shortest")], repeat=1, limit=120, out=out)
    assert [r["path"] for r in rows] == ["fast", "flow"]  # hashed ECMP shares an uplink
    assert all(r["peak_rss"] > 0 and r["transfers"] > 0 for r in rows)
    text = out.getvalue()
    assert "fast tr/s" in text and "event tr/s" in text and "peak_mem" in text


def test_list_solver_gives_the_vectorised_solvers_floats():
    # the event loop solves small components in plain Python: the same rounds and sums, so
    # the very same floats (capacities with inexact shares such as 10/3 included)
    from sim.maxmin import maxmin_rates_lists

    rng = np.random.default_rng(11)
    for trial in range(2000):
        m, nl = int(rng.integers(1, 12)), int(rng.integers(2, 10))
        lens = rng.integers(0, min(5, nl) + 1, size=m)
        ptr = np.r_[0, np.cumsum(lens)]
        links = np.concatenate([rng.choice(nl, size=k, replace=False) for k in lens])
        links = links.astype(np.int64)
        cap = rng.choice([1.0, 3.0, 7.0, 10 / 3], size=nl) if trial % 2 else np.full(nl, 2.5)
        paths = [links[ptr[i]:ptr[i + 1]].tolist() for i in range(m)]
        fcap = [float(cap[q].min()) if q else np.inf for q in paths]
        got = maxmin_rates_lists(paths, fcap, cap.tolist())
        assert np.array_equal(np.array(got), maxmin_rates(ptr, links, cap))
