"""The simulator against DESIGN.md's closed forms, hand traces and a plain-Python reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collectives import build, make_step
from collectives.ir import Schedule, chunk_bounds
from sim import Contention, Hockney, LogGP, simulate
from sim.maxmin import maxmin_rates
from topologies import compile_network, fat_tree, fully_connected, gpu_cluster, ring, switch

ALPHA, BW, GAMMA = 2e-6, 1e9, 2.5e-10
BETA = 1.0 / BW
PARAMS = Hockney(ALPHA, BETA, GAMMA)
P_ALL = range(1, 65)

CASES = [
    ("allreduce", "ring"), ("allreduce", "rabenseifner"), ("allreduce", "recursive-doubling"),
    ("allreduce", "binomial"), ("reducescatter", "ring"), ("reducescatter", "recursive-halving"),
    ("reducescatter", "pairwise"), ("allgather", "ring"), ("allgather", "recursive-doubling"),
    ("allgather", "bruck"),
]


def closed_form(coll: str, algo: str, p: int, n: float, a=ALPHA, b=BETA, g=GAMMA) -> float:
    """DESIGN.md's tables (the non-power-of-two rows where p is not 2^k)."""
    pof2 = p & (p - 1) == 0
    L = p.bit_length() - 1
    p2 = 1 << L
    c = math.ceil(math.log2(p)) if p > 1 else 0
    f = (p - 1) / p
    if (coll, algo) in (("reducescatter", "ring"), ("reducescatter", "pairwise")):
        return (p - 1) * a + f * n * b + f * n * g
    if (coll, algo) == ("reducescatter", "recursive-halving"):
        if pof2:
            return L * a + f * n * b + f * n * g
        return (L + 2) * a + (1 + (p2 - 1) / p2 + 1 / p) * n * b + (1 + (p2 - 1) / p2) * n * g
    if (coll, algo) == ("allgather", "ring"):
        return (p - 1) * a + f * n * b
    if (coll, algo) == ("allgather", "recursive-doubling"):
        if pof2:
            return L * a + f * n * b
        return (L + 2) * a + (1 / p + f + 1) * n * b  # the builder's docstring
    if (coll, algo) == ("allgather", "bruck"):
        return c * a + f * n * b
    if (coll, algo) == ("allreduce", "ring"):
        return 2 * (p - 1) * a + 2 * f * n * b + f * n * g
    if (coll, algo) == ("allreduce", "rabenseifner"):
        if pof2:
            return 2 * L * a + 2 * f * n * b + f * n * g
        return ((2 * L + 2) * a + (2 * (p2 - 1) / p2 + 2) * n * b
                + (1 + (p2 - 1) / p2) * n * g)
    if (coll, algo) == ("allreduce", "recursive-doubling"):
        if pof2:
            return L * (a + n * b + n * g)
        return (L + 2) * a + (L + 2) * n * b + (L + 1) * n * g
    if (coll, algo) == ("allreduce", "binomial"):
        return 2 * c * (a + n * b) + c * n * g
    raise KeyError((coll, algo))


def exact_uneven(s: Schedule, n: int, a=ALPHA, b=BETA, g=GAMMA) -> float:
    """Exact cost of the folded recursive-halving reduce-scatter / recursive-doubling
    all-gather with rank layout (p not 2^k), from the builders' docstrings: the busiest
    survivor's chunks summed over the halving (doubling) steps, ``S``, replace ``p'-1``."""
    p = s.nranks
    L = p.bit_length() - 1
    S = sum(int(st.run_len.max()) for st in s.steps[1:-1])
    if s.collective == "reducescatter":
        return (L + 2) * a + n * b * (1 + S / p + 1 / p) + n * g * (1 + S / p)
    return (L + 2) * a + n * b * (1 / p + S / p + 1)


def even_n(s: Schedule) -> int:
    """A size that every chunk count of the schedule divides (so rounding plays no part)."""
    return s.nchunks * s.nranks * 96


_GRAPHS: dict[int, object] = {}


def fc_graph(p: int):
    if p not in _GRAPHS:
        _GRAPHS[p] = fully_connected(p, bandwidth=BW, latency=ALPHA)
    return _GRAPHS[p]


def rel(x: float, y: float) -> float:
    return abs(x - y) / abs(y) if y else abs(x)


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("coll,algo", CASES, ids=[f"{c}-{a}" for c, a in CASES])
def test_hockney_matches_closed_forms_p1_to_64(coll, algo):
    """Analytic fully connected network and a fully connected graph of identical links:
    the closed form to 1e-9 for every p in 1..64 (the two uneven-block rows: the exact cost
    their schedule implies, checked against the approximation below)."""
    for p in P_ALL:
        s = build(coll, algo, p)
        n = even_n(s)
        uneven = (p & (p - 1)) and (coll, algo) in (("reducescatter", "recursive-halving"),
                                                    ("allgather", "recursive-doubling"))
        want = exact_uneven(s, n) if uneven else closed_form(coll, algo, p, n)
        got = simulate(s, PARAMS, n).time_s
        assert rel(got, want) < 1e-9, (p, got, want)
        on_graph = simulate(s, fc_graph(p), n, params=Hockney(gamma=GAMMA)).time_s
        assert rel(on_graph, want) < 1e-9, (p, on_graph, want)


@pytest.mark.parametrize("coll,algo", [("reducescatter", "recursive-halving"),
                                       ("allgather", "recursive-doubling")])
def test_uneven_fold_is_close_to_design_approximation(coll, algo):
    """p not 2^k: survivors halve/double over uneven blocks (survivor i < r holds two
    chunks), so the busiest survivor moves a little more than (p'-1)/p' of the vector; the
    exact cost is at least DESIGN's approximation and within 20% of it."""
    for p in P_ALL:
        if p & (p - 1) == 0:
            continue
        s = build(coll, algo, p)
        n = even_n(s)
        got = simulate(s, PARAMS, n).time_s
        approx = closed_form(coll, algo, p, n)
        assert approx * (1 - 1e-12) <= got <= 1.2 * approx, (p, got, approx)


def test_closed_form_with_uneven_chunks_is_close():
    """1 MiB on 7 ranks does not split evenly; the time stays within 1e-5 of the formula."""
    s = build("allreduce", "ring", 7)
    got = simulate(s, PARAMS, 1 << 20).time_s
    assert rel(got, closed_form("allreduce", "ring", 7, 1 << 20)) < 1e-5


def test_itemsize_counts_elements():
    s = build("allreduce", "ring", 4)
    a = simulate(s, PARAMS, 4096, itemsize=4).time_s
    assert a == pytest.approx(closed_form("allreduce", "ring", 4, 4096), rel=1e-12)


# --------------------------------------------------------------------------- contention


@pytest.mark.parametrize("coll,algo", CASES, ids=[f"{c}-{a}" for c, a in CASES])
def test_contention_equals_hockney_when_nothing_is_shared(coll, algo):
    for p in (2, 5, 8, 13):
        s = build(coll, algo, p)
        n = even_n(s) + 7  # uneven chunks too
        h = simulate(s, fc_graph(p), n, "hockney", params=Hockney(gamma=GAMMA))
        c = simulate(s, fc_graph(p), n, "contention", params=Contention(gamma=GAMMA))
        assert c.time_s == pytest.approx(h.time_s, rel=1e-12)
        analytic = simulate(s, None, n, params=Contention(ALPHA, BETA, GAMMA))
        assert analytic.time_s == pytest.approx(h.time_s, rel=1e-12)


def test_ring_on_ring_topology_uses_each_link_once_per_step():
    p, n = 6, 6 * 1000
    G = ring(p, bandwidth=BW, latency=ALPHA)
    s = build("allreduce", "ring", p)
    h = simulate(s, G, n, "hockney")
    c = simulate(s, G, n, "contention")
    assert c.time_s == pytest.approx(h.time_s)
    assert h.time_s == pytest.approx(closed_form("allreduce", "ring", p, n, g=0.0))
    # 2(p-1) chunks of n/p bytes cross every clockwise link, none the other way
    assert len(c.links) == p
    assert np.allclose(c.links.bytes, 2 * (p - 1) * n / p)
    assert np.allclose(c.links.utilisation, c.links.bytes / BW / c.time_s)


def _one_step(p: int, src, dst) -> Schedule:
    step = make_step(src, dst, False, run_start=np.zeros(len(src), dtype=np.int64))
    return Schedule("broadcast", "custom", p, 1, (step,), owner=(0,))


def test_two_sends_share_the_senders_link_on_a_switch():
    """Rank 0 sends to 1 and 2 at once: its link to the switch is shared, half bandwidth."""
    G = switch(4, bandwidth=BW, latency=1e-6)
    n = 10**6
    s = _one_step(4, [0, 0], [1, 2])
    h = simulate(s, G, n, "hockney")
    c = simulate(s, G, n, "contention")
    assert h.time_s == pytest.approx(2e-6 + n / BW)
    assert c.time_s == pytest.approx(2e-6 + n / (BW / 2))


def test_oversubscribed_fat_tree_halves_bandwidth_of_a_shared_uplink():
    """k=4 fat-tree with 2:1 oversubscription: edge->aggregation links carry BW/2. Hosts 0 and
    1 share edge switch 0; pick destinations in another pod whose ECMP routes take the same
    uplink: the two flows split it, BW/4 each, twice Hockney's transfer time. Destinations
    whose routes take different uplinks get BW/2 each, as Hockney says."""
    G = fat_tree(4, oversubscription=2, bandwidth=BW, latency=1e-6)
    net = compile_network(G)
    n = 10**6

    def uplink(s, d):
        ptr, links = net.routes([s], [d])
        return int(links[1])  # host -> edge, edge -> aggregation, ...

    far = range(4, 16)
    shared = next((d0, d1) for d0 in far for d1 in far
                  if d0 != d1 and uplink(0, d0) == uplink(1, d1))
    apart = next((d0, d1) for d0 in far for d1 in far
                 if d0 != d1 and uplink(0, d0) != uplink(1, d1)
                 and len({uplink(0, d0), uplink(1, d1)}) == 2
                 and d0 // 2 != d1 // 2)
    lat = 6e-6  # host, edge, aggregation, core, aggregation, edge, host: 6 links
    for (d0, d1), factor in ((shared, 2), (apart, 1)):
        s = _one_step(16, [0, 1], [d0, d1])
        h = simulate(s, G, n, "hockney")
        c = simulate(s, G, n, "contention")
        assert h.time_s == pytest.approx(lat + n / (BW / 2))
        assert c.time_s == pytest.approx(lat + factor * n / (BW / 2))


def test_maxmin_hand_cases():
    # three flows on link 0 (cap 9); flow 2 also on link 1 (cap 1): 1 for flow 2, 4 for others
    r = maxmin_rates(np.array([0, 1, 2, 4]), np.array([0, 0, 0, 1]), np.array([9.0, 1.0]))
    assert r.tolist() == pytest.approx([4.0, 4.0, 1.0])
    # a chain: f0 on A (cap 2), f1 on A and B (cap 10), f2 on B: f0 = f1 = 1, f2 = 9
    r = maxmin_rates(np.array([0, 1, 3, 4]), np.array([0, 0, 1, 1]), np.array([2.0, 10.0]))
    assert r.tolist() == pytest.approx([1.0, 1.0, 9.0])
    # a flow with no links is unconstrained
    assert maxmin_rates(np.array([0, 0]), np.zeros(0, dtype=np.int64), np.ones(1))[0] == np.inf


def test_maxmin_matches_slow_progressive_filling():
    rng = np.random.default_rng(1)
    for _ in range(20):
        nl, m = 12, 30
        cap = rng.uniform(1, 5, nl)
        paths = [rng.choice(nl, size=rng.integers(1, 4), replace=False) for _ in range(m)]
        ptr = np.concatenate(([0], np.cumsum([len(x) for x in paths])))
        links = np.concatenate(paths)
        fast = maxmin_rates(ptr, links, cap)
        # one level at a time
        rate = np.zeros(m)
        active = np.ones(m, bool)
        rem = cap.copy()
        while active.any():
            cnt = np.zeros(nl)
            for i in np.flatnonzero(active):
                cnt[paths[i]] += 1
            share = np.where(cnt > 0, rem / np.maximum(cnt, 1), np.inf)
            lvl = share.min()
            hit = [i for i in np.flatnonzero(active) if share[paths[i]].min() <= lvl * (1 + 1e-12)]
            for i in hit:
                rate[i] = lvl
                rem[paths[i]] -= lvl
                active[i] = False
        assert fast == pytest.approx(rate, rel=1e-9)


# --------------------------------------------------------------------------- LogGP


def test_loggp_binomial_broadcast_hand_trace():
    """p=4, one chunk of k=1001 bytes; L=5us, o=1us, G=1ns: a message takes
    o + L + (k-1)G + o = 8us. Step 0: 0->2 [0, 8]. Step 1: 0->1 and 2->3 start at 8 (g=3us
    since 0's last send start is over), end 16. With g=10us rank 0's second send waits for
    0 + 10: [10, 18]."""
    s = build("broadcast", "binomial", 4)
    r = simulate(s, LogGP(L=5e-6, o=1e-6, g=3e-6, G=1e-9), 1001)
    assert r.time_s == pytest.approx(16e-6)
    tl = r.timeline
    assert tl.start.tolist() == pytest.approx([0, 8e-6, 8e-6])
    assert tl.end.tolist() == pytest.approx([8e-6, 16e-6, 16e-6])
    r = simulate(s, LogGP(L=5e-6, o=1e-6, g=10e-6, G=1e-9), 1001)
    assert r.time_s == pytest.approx(18e-6)
    assert r.steps.start.tolist() == pytest.approx([0, 8e-6])


def test_loggp_sends_of_one_rank_in_one_step_are_spaced():
    """Rank 0 sends 1001 bytes to 1, 2, 3 in one step: starts max(g, o + (k-1)G) apart."""
    s = _one_step(4, [0, 0, 0], [1, 2, 3])
    r = simulate(s, LogGP(L=5e-6, o=1e-6, g=3e-6, G=1e-9), 1001)
    assert r.timeline.start.tolist() == pytest.approx([0, 3e-6, 6e-6])
    assert r.time_s == pytest.approx(14e-6)
    r = simulate(s, LogGP(L=5e-6, o=1e-6, g=1e-6, G=1e-9), 1001)  # injection binds: 2us
    assert r.timeline.start.tolist() == pytest.approx([0, 2e-6, 4e-6])


def test_loggp_with_no_overheads_is_hockney_minus_one_byte():
    s = build("allreduce", "ring", 8)
    n = 8 * 4096
    lg = simulate(s, LogGP(L=ALPHA, G=BETA), n).time_s
    steps = 2 * 7
    assert lg == pytest.approx(closed_form("allreduce", "ring", 8, n, g=0.0) - steps * BETA)


# --------------------------------------------------------------------------- async progress


def test_async_progress_beats_a_barrier():
    """Step 0: 0->1 carries 3 chunks, 2->3 one. Step 1: 2->3 again. Without a barrier rank 2
    and 3 go on at once: time = max(3, 2) transfers of a chunk, not 3 + 1."""
    big = make_step([0, 2], [1, 3], False, runs=[[(0, 3)], [(3, 1)]])
    small = make_step([2], [3], False, run_start=[3])
    s = Schedule("broadcast", "custom", 4, 4, (big, small), owner=(0, 0, 0, 0))
    r = simulate(s, Hockney(0.0, 1.0), 4)
    assert r.time_s == pytest.approx(3.0)
    assert r.steps.start.tolist() == [0.0, 1.0]
    assert r.rank_finish.tolist() == [3.0, 3.0, 2.0, 2.0]
    assert r.rank_bytes_sent.tolist() == [3.0, 0.0, 2.0, 0.0]


def _reference(s: Schedule, n: int, params, itemsize: int = 1) -> float:
    """Per-transfer Python loop with the same rules (the oracle for the vectorised engine)."""
    bounds = chunk_bounds(n // itemsize, s.nchunks)
    ready = [0.0] * s.nranks
    next_send = [0.0] * s.nranks
    loggp = isinstance(params, LogGP)
    for k in range(len(s.steps)):
        before = list(ready)
        ends = []
        for t in s.transfers(k):
            b = float(sum(int(bounds[c + 1] - bounds[c]) for c in t.chunks) * itemsize)
            start = max(before[t.src], before[t.dst])
            if loggp:
                cost = 2 * params.o + params.L + max(b - 1, 0) * params.G
                start = max(start, next_send[t.src])
                next_send[t.src] = start + max(params.g, params.o + max(b - 1, 0) * params.G)
            else:
                cost = params.alpha + b * params.beta
            if t.op == "reduce":
                cost += params.gamma * b
            ends.append((t.src, t.dst, start + cost))
        for a, d, e in ends:
            ready[a] = max(ready[a], e)
            ready[d] = max(ready[d], e)
    return max(ready)


@pytest.mark.parametrize("model", [PARAMS, LogGP(L=3e-6, o=5e-7, g=4e-6, G=2e-9, gamma=1e-10)],
                         ids=["hockney", "loggp"])
def test_engine_matches_reference_loop(model):
    from collectives.registry import algorithms

    for coll, algos in algorithms().items():
        for algo in algos:
            for p in (1, 2, 3, 6, 8, 12):
                if algo == "hierarchical" and p in (3,):
                    continue
                s = build(coll, algo, p)
                for n in (0, 5, 1000003):
                    got = simulate(s, model, n).time_s
                    assert got == pytest.approx(_reference(s, n, model), rel=1e-12, abs=1e-18), (
                        coll, algo, p, n)


# --------------------------------------------------------------------------- other algorithms


def test_double_binary_tree_and_hierarchical_run_and_order_sensibly():
    G = gpu_cluster(nodes=4, gpus_per_node=8, bandwidth="100Gbps", intra_bandwidth="450GB/s")
    p, n = 32, 256 << 20
    times = {}
    for algo in ("ring", "hierarchical", "double-binary-tree", "rabenseifner"):
        for model in ("hockney", "contention"):
            r = simulate(build("allreduce", algo, p), G, n, model)
            assert r.time_s > 0 and np.isfinite(r.time_s)
            times[algo, model] = r.time_s
    for model in ("hockney", "contention"):
        assert times["hierarchical", model] < times["ring", model]
        assert times["hierarchical", model] < times["double-binary-tree", model]
    # small messages: few steps win over the 2(p-1) steps of a ring
    small = {a: simulate(build("allreduce", a, p), G, 1024).time_s
             for a in ("ring", "double-binary-tree", "recursive-doubling")}
    assert small["recursive-doubling"] < small["ring"]
    assert small["double-binary-tree"] < small["ring"]


def test_result_breakdown_is_consistent():
    G = fat_tree(4, bandwidth=BW, latency=1e-6)
    s = build("allreduce", "rabenseifner", 16)
    r = simulate(s, G, 1 << 20, "contention")
    tl = r.timeline
    assert len(tl) == r.ntransfers
    assert tl.end.max() == pytest.approx(r.time_s) == pytest.approx(r.steps.end.max())
    assert r.steps.bytes.sum() == pytest.approx(tl.bytes.sum())
    assert r.rank_bytes_sent.sum() == pytest.approx(tl.bytes.sum())
    assert np.all(r.links.utilisation <= 1 + 1e-9)
    mine = tl.of_rank(3)
    assert np.all((mine.src == 3) | (mine.dst == 3))
    assert r.algbw == pytest.approx((1 << 20) / r.time_s)
    assert r.busbw == pytest.approx(r.algbw * 2 * 15 / 16)
    assert "allreduce/rabenseifner" in r.summary()
    rec = r.record()
    assert rec.time_s == r.time_s and rec.wrong is None
    assert simulate(s, G, 1 << 20, "contention", timeline=False).timeline is None


def test_bad_arguments():
    s = build("allreduce", "ring", 4)
    with pytest.raises(ValueError, match="unknown model"):
        simulate(s, None, 10, "nope", params=None)
    with pytest.raises(ValueError, match="alpha and beta"):
        simulate(s, None, 10)
    with pytest.raises(ValueError, match="takes Contention"):
        simulate(s, None, 10, "contention", params=Hockney(1e-6, 1e-9))
    with pytest.raises(ValueError, match="nbytes"):
        simulate(s, PARAMS, -1)
    with pytest.raises(ValueError, match="finite number"):
        Hockney(alpha=-1.0)


def test_api_predict_sweep_and_network_cache():
    from sim import predict, sweep
    from sim.api import best_per_size
    from sim.fabric import _compiled

    G = fat_tree(4, bandwidth=BW, latency=1e-6)
    assert _compiled(G)[0] is _compiled(G)[0]  # compiled once per graph object
    r = predict("allreduce", "hierarchical", 16, 1 << 20, G, "contention")
    assert r.algorithm == "hierarchical" and r.extra["schedule"].startswith("hierarchical(")
    assert r.extra["steps"] > 0 and r.time_s > 0 and r.wrong is None
    recs = sweep("reducescatter", ["ring", "pairwise", "recursive-halving"], 8,
                 [64, 1 << 20], params=PARAMS)
    assert [x.size for x in recs] == [64] * 3 + [1 << 20] * 3
    best = dict(best_per_size(recs))
    assert best[64] == "recursive-halving"  # lg p messages beat p-1 at small sizes
    assert recs[0].busbw == pytest.approx(recs[0].algbw * 7 / 8)


def test_zero_beta_means_latency_only():
    # beta = 0 (infinitely fast links) is a valid model: only alpha remains.
    import sim

    r = sim.predict("allreduce", "ring", 4, 1 << 20, params=sim.Hockney(1e-6, 0.0))
    assert r.time_s == pytest.approx(2 * 3 * 1e-6, rel=1e-12)


# --------------------------------------------------------------------------- fast paths


def _maxmin_plain(ptr, links, capacity):
    """The rounds without the fast paths (every link, reduceat per flow, a lookup table of the
    links in use): what maxmin_rates computed before them, number for number."""
    ptr = np.asarray(ptr, dtype=np.int64)
    links = np.asarray(links, dtype=np.int64)[: ptr[-1]]
    m = len(ptr) - 1
    rate = np.full(m, np.inf)
    lens = np.diff(ptr)
    if m == 0 or len(links) == 0:
        return rate
    count = np.bincount(links)
    used = np.flatnonzero(count)
    lut = np.empty(len(count), dtype=np.int64)
    lut[used] = np.arange(len(used))
    links = lut[links]
    count = count[used].astype(np.float64)
    rem = np.asarray(capacity, dtype=np.float64)[used].copy()
    share = np.empty(len(used))
    ids = np.flatnonzero(lens > 0)
    lens = lens[ids]
    while True:
        starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
        flow_of = np.repeat(np.arange(len(ids)), lens)
        np.divide(rem, count, out=share, where=count > 0)
        ent_share = share[links]
        bott = np.minimum.reduceat(ent_share, starts)
        ent_bott = bott[flow_of]
        link_min = np.full(len(used), np.inf)
        np.minimum.at(link_min, links, ent_bott)
        frozen = np.logical_or.reduceat(ent_share <= link_min[links], starts)
        rate[ids[frozen]] = bott[frozen]
        if frozen.all():
            return rate
        gone = frozen[flow_of]
        rem -= np.bincount(links[gone], weights=ent_bott[gone], minlength=len(used))
        np.maximum(rem, 0.0, out=rem)
        count -= np.bincount(links[gone], minlength=len(used))
        ids, lens, links = ids[~frozen], lens[~frozen], links[~gone]


def _random_problems(rng, n, nl):
    out = []
    for _ in range(n):
        m = int(rng.integers(0, 40))
        paths = [rng.choice(nl, size=int(rng.integers(0, min(nl, 5) + 1)), replace=False)
                 for _ in range(m)]
        ptr = np.concatenate(([0], np.cumsum([len(x) for x in paths]))).astype(np.int64)
        links = np.concatenate(paths + [np.zeros(0, dtype=np.int64)]).astype(np.int64)
        out.append((ptr, links))
    return out


def _side_by_side(probs):
    """One CSR of several problems, one after the other, and their flow counts."""
    offs = np.cumsum([0] + [p[-1] for p, _ in probs])
    ptr = np.concatenate([[0]] + [p[1:] + o for (p, _), o in zip(probs, offs[:-1], strict=True)])
    return ptr, np.concatenate([lk for _, lk in probs]), [len(p) - 1 for p, _ in probs]


def test_maxmin_fast_paths_give_the_plain_rounds_numbers_exactly():
    from sim.maxmin import maxmin_rates_many

    rng = np.random.default_rng(7)
    for caps in ("uniform", "few", "spread"):
        for _ in range(30):
            nl = int(rng.integers(1, 30))
            cap = {"uniform": np.full(nl, 2.5), "few": rng.choice([0.5, 1.0, 3.0, 10.0], nl),
                   "spread": rng.uniform(0.5, 5.0, nl)}[caps]
            probs = _random_problems(rng, 6, nl)
            want = [_maxmin_plain(p, lk, cap) for p, lk in probs]
            for (p, lk), w in zip(probs, want, strict=True):
                assert np.array_equal(maxmin_rates(p, lk, cap), w)
            # the same problems solved side by side
            ptr, links, nfl = _side_by_side(probs)
            assert np.array_equal(maxmin_rates_many(ptr, links, cap, nfl), np.concatenate(want))


def test_maxmin_many_groups_any_way(monkeypatch):
    import sim.maxmin as M

    rng = np.random.default_rng(3)
    cap = rng.uniform(1.0, 4.0, 12)
    probs = _random_problems(rng, 25, 12)
    ptr, links, nfl = _side_by_side(probs)
    want = np.concatenate([_maxmin_plain(p, lk, cap) for p, lk in probs])
    for entries, slots in ((1, 1), (30, 1 << 20), (1 << 20, 40), (1 << 20, 1 << 20)):
        monkeypatch.setattr(M, "_BATCH_ENTRIES", entries)
        monkeypatch.setattr(M, "_BATCH_SLOTS", slots)
        assert np.array_equal(M.maxmin_rates_many(ptr, links, cap, nfl), want)


def _result_arrays(r):
    tl = r.timeline
    return [r.time_s, r.rank_finish, r.steps.start, r.steps.end, r.steps.bytes,
            r.rank_bytes_sent, r.rank_bytes_received, r.links.ids, r.links.bytes,
            r.links.utilisation] + ([] if tl is None else [tl.start, tl.end, tl.bytes])


def test_batched_patterns_and_steps_change_no_number(monkeypatch):
    """Routing and costing the patterns of many steps together, computing the durations of
    many steps together and taking their first start / last end together give what one step
    at a time gives, bit for bit."""
    import sim.fabric as F
    import sim.fastpath as E
    import sim.maxmin as M
    from collectives.registry import algorithms

    tops = [fat_tree(4), fat_tree(4, oversubscription=3), ring(12),
            gpu_cluster(3, 4, leaf_radix=8)]
    models = [Contention(), LogGP(o=1e-7, g=3e-7), Contention(alpha=1e-6, gamma=1e-10)]
    cases = [(c, a) for c, algos in algorithms().items() for a in algos]

    def run_all():
        out = []
        for G in tops:
            for coll, algo in cases:
                for p in (6, 12):
                    s = build(coll, algo, p)
                    for model in models:
                        for n in (4096, 1000003):
                            F._NETWORKS.clear()  # fresh pattern caches
                            out.append(_result_arrays(simulate(s, G, n, model, timeline=True)))
        return out

    batched = run_all()
    monkeypatch.setattr(E, "PREFETCH", 1)  # one step at a time: no prepare
    monkeypatch.setattr(E, "SMALL_STEP", 0)  # no batched durations nor extremes
    monkeypatch.setattr(F, "_ROUTE_BATCH", 1)
    monkeypatch.setattr(M, "_BATCH_ENTRIES", 1)
    single = run_all()
    monkeypatch.setattr(E, "PREFETCH", 50)  # small windows, flushes, tiny groups
    monkeypatch.setattr(E, "SMALL_STEP", 8)
    monkeypatch.setattr(E, "SMALL_HELD", 20)
    monkeypatch.setattr(E, "FLUSH_LIMIT", 40)
    monkeypatch.setattr(F, "_ROUTE_BATCH", 30)
    monkeypatch.setattr(M, "_BATCH_ENTRIES", 60)
    tiny = run_all()
    for a, b, c in zip(batched, single, tiny, strict=True):
        for x, y, z in zip(a, b, c, strict=True):
            assert np.array_equal(x, y) and np.array_equal(x, z)


def test_batch_permutation_flags_match_one_pattern_at_a_time():
    from sim.fabric import GraphFabric, Pattern, _batch_flags

    rng = np.random.default_rng(5)
    p = 8
    pairs = [(np.arange(p), rng.permutation(p)), (rng.permutation(p), rng.permutation(p)),
             (np.arange(p), np.arange(p)), (np.arange(p), (np.arange(p) + 1) % p),
             (np.arange(p), np.zeros(p, dtype=np.int64)), (np.arange(p - 1), np.arange(1, p)),
             (rng.permutation(p), np.arange(p)), (np.array([0, 0, 1, 2, 3, 4, 5, 6]),
                                                  rng.permutation(p))]
    fab = GraphFabric(compile_network(fat_tree(4)), np.arange(p), "x")
    batch = fab._make_many([(s.astype(np.int64), d.astype(np.int64)) for s, d in pairs])
    for pat, (s, d) in zip(batch, pairs, strict=True):
        alone = Pattern(s.astype(np.int64), d.astype(np.int64), pat.ptr, pat.links)
        want, got = alone.permutation(p), pat.permutation(p)
        assert (want is None) == (got is None)
        if want is not None:
            assert (want[0] is None) == (got[0] is None)
            assert all(x is None or np.array_equal(x, y)
                       for x, y in zip(want, got, strict=True))
        assert (pat.unique_src, pat.unique_dst) == (alone.unique_src, alone.unique_dst)
    _batch_flags([], p)


def test_pattern_cache_keys_by_contents():
    from sim.fabric import GraphFabric

    p = 4096
    fab = GraphFabric(compile_network(fat_tree(32)), compile_network(fat_tree(32)).endpoints,
                      "x")
    src = np.arange(p)
    a = fab.pattern(src, (src + 1) % p)
    assert fab.pattern(src.copy(), ((src + 1) % p).copy()) is a
    # differs only where the key's sample does not look: still a pattern of its own
    d = (src + 1) % p
    d[[1, 2]] = d[[2, 1]]
    b = fab.pattern(src, d)
    assert b is not a and np.array_equal(b.dst, d)
    assert fab.pattern(src, d.copy()) is b
