"""Every builder moves what the library's algorithm moves, in the library's order.

The expected partner sequences and chunks below are traced by hand through the libraries'
code (MPICH ``src/mpi/coll/<coll>/*.c``, Open MPI ``ompi/mca/coll/base/coll_base_*.c``, NCCL
``src/graph/trees.cc``), not computed by our builders' own helpers. Each trace notes the lines
of reasoning that give it.
"""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from collectives import build, execute, variants, verify
from collectives.algorithms.trees import btree_parents, dtree_parents
from sim import Contention, Hockney, simulate


def sends(schedule, rank: int) -> list[list[tuple[int, list[int], str]]]:
    """Per step, what ``rank`` sends: (destination, chunks, "+=" or "<-")."""
    out = []
    for k in range(len(schedule.steps)):
        out.append([(t.dst, list(t.chunks), "+=" if t.op == "reduce" else "<-")
                    for t in schedule.transfers(k) if t.src == rank])
    return out


def partners(schedule, rank: int) -> list[int | None]:
    """The one destination of ``rank`` in each step (None where it sends nothing)."""
    return [s[0][0] if s else None for s in sends(schedule, rank)]


# --------------------------------------------------------------------------- Rabenseifner


def test_rabenseifner_p8_is_mpich_nearest_first():
    """MPIR_Allreduce_intra_reduce_scatter_allgather, p = 8, newrank = rank, cnts all 1.
    mask 1: rank 0 < 1, send_idx = 0 + 8/2 = 4, sends [4, 8) to 1; mask 2: send_idx =
    0 + 8/4 = 2, sends [2, 4) to 2; mask 4: sends [1] to 4. All-gather, mask 4, 2, 1: rank 0
    sends what it has, [0], then [0, 2), then [0, 4)."""
    s = build("allreduce", "rabenseifner", 8)
    assert s.option("order") == "nearest-first"
    assert partners(s, 0) == [1, 2, 4, 4, 2, 1]
    assert sends(s, 0) == [[(1, [4, 5, 6, 7], "+=")], [(2, [2, 3], "+=")], [(4, [1], "+=")],
                           [(4, [0], "<-")], [(2, [0, 1], "<-")], [(1, [0, 1, 2, 3], "<-")]]


def test_rabenseifner_p8_rank3_ends_with_block_bitrev3():
    """newrank 3: mask 1, partner 2, 3 > 2: recv_idx = 0 + 4, sends [0, 4), keeps [4, 8);
    mask 2, partner 1, 3 > 1: recv_idx = 4 + 2 = 6, sends [4, 6), keeps [6, 8); mask 4,
    partner 7, 3 < 7: send_idx = 6 + 1 = 7, sends [7], keeps [6] = bitrev(3)."""
    s = build("allreduce", "rabenseifner", 8)
    assert sends(s, 3)[:3] == [[(2, [0, 1, 2, 3], "+=")], [(1, [4, 5], "+=")],
                               [(7, [7], "+=")]]
    assert sends(s, 3)[3] == [(7, [6], "<-")]  # the all-gather starts from block 6


def test_rabenseifner_farthest_first_is_the_old_order():
    s = build("allreduce", "rabenseifner", 8, order="farthest-first")
    assert partners(s, 0) == [4, 2, 1, 1, 2, 4]
    assert sends(s, 0) == [[(4, [4, 5, 6, 7], "+=")], [(2, [2, 3], "+=")], [(1, [1], "+=")],
                           [(1, [0], "<-")], [(2, [0, 1], "<-")], [(4, [0, 1, 2, 3], "<-")]]


def test_rabenseifner_p16_nearest_partner_gets_half():
    s = build("allreduce", "rabenseifner", 16)
    assert partners(s, 5) == [4, 7, 1, 13, 13, 1, 7, 4]
    sizes = [len(x[0][1]) for x in sends(s, 5)]
    assert sizes == [8, 4, 2, 1, 1, 2, 4, 8]


def test_rabenseifner_mpich_fold_p6():
    """p = 6: pof2 4, rem 2. Ranks 0 and 2 (even, < 4) send everything to 1 and 3 and idle;
    newrank of 1, 3, 4, 5 is 0, 1, 2, 3; dst = newdst*2+1 if newdst < rem else newdst + rem.
    Rank 1 (newrank 0): mask 1 -> newdst 1 = rank 3, sends [2, 4); mask 2 -> newdst 2 =
    rank 4, sends [1]. All-gather: 4 then 3; at the end 1 -> 0 and 3 -> 2, the whole vector."""
    s = build("allreduce", "rabenseifner", 6)
    assert sends(s, 0)[0] == [(1, [0, 1, 2, 3], "+=")]
    assert sends(s, 2)[0] == [(3, [0, 1, 2, 3], "+=")]
    assert all(not x for x in sends(s, 0)[1:-1])  # folded away until the end
    assert partners(s, 1) == [None, 3, 4, 4, 3, 0]
    assert sends(s, 1)[1:3] == [[(3, [2, 3], "+=")], [(4, [1], "+=")]]
    assert sends(s, 1)[-1] == [(0, [0, 1, 2, 3], "<-")]
    assert sends(s, 3)[-1] == [(2, [0, 1, 2, 3], "<-")]
    assert partners(s, 4) == [None, 5, 1, 1, 5, None]


def test_rabenseifner_reduce_scatter_half_block_owners_p6():
    """Which survivor holds which reduced block after MPICH's reduce-scatter half, p = 6
    (pof2 4): newrank 1 (rank 3): mask 1, partner 0, 1 > 0: recv_idx = 0 + 2, keeps [2, 4);
    mask 2, partner 3, 1 < 3: send_idx = 2 + 1, keeps [2]. newrank 2 (rank 4) keeps [0, 2)
    then [1]. So blocks 0, 1, 2, 3 end on ranks 1, 4, 3, 5."""
    rs = build("reducescatter", "recursive-halving", 6, layout="survivors",
               order="nearest-first")
    assert rs.owner == (1, 4, 3, 5)
    far = build("reducescatter", "recursive-halving", 6, layout="survivors")
    assert far.owner == (1, 3, 4, 5)


def test_rabenseifner_openmpi_fold_p6():
    """ompi_coll_base_allreduce_intra_redscat_allgather, p = 6: nprocs_rem = 2. Even rank 0
    sends the right half [2, 4) to 1 and receives the left half from it (both reduce), then
    receives 1's reduced right half; vrank = rank / 2. dest = vdest*2 if vdest < rem else
    vdest + rem: rank 0 (vrank 0) meets rank 2 (vdest 1), then rank 4 (vdest 2). Finally
    0 -> 1 and 2 -> 3, the whole vector."""
    s = build("allreduce", "rabenseifner", 6, fold="openmpi")
    verify(s)
    assert sends(s, 0)[0] == [(1, [2, 3], "+=")]
    assert sends(s, 1)[:2] == [[(0, [0, 1], "+=")], [(0, [2, 3], "<-")]]
    assert partners(s, 0) == [1, None, 2, 4, 4, 2, 1]
    assert sends(s, 0)[2:4] == [[(2, [2, 3], "+=")], [(4, [1], "+=")]]
    assert sends(s, 2)[-1] == [(3, [0, 1, 2, 3], "<-")]
    assert all(not x for x in sends(s, 1)[2:])


def test_openmpi_fold_hockney_cost():
    """One message more, half the fold's reduction:
    (2L+3) a + (2(p'-1)/p' + 2) n b + (1/2 + (p'-1)/p') n g."""
    a, b, g = 2e-6, 1e-9, 2.5e-10
    for p in (3, 6, 12, 23):
        L = p.bit_length() - 1
        p2 = 1 << L
        s = build("allreduce", "rabenseifner", p, fold="openmpi")
        n = p2 * 4096
        want = ((2 * L + 3) * a + (2 * (p2 - 1) / p2 + 2) * n * b
                + (0.5 + (p2 - 1) / p2) * n * g)
        assert simulate(s, Hockney(a, b, g), n).time_s == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("order", ["nearest-first", "farthest-first"])
def test_both_orders_meet_the_hockney_closed_form(order):
    a, b, g = 2e-6, 1e-9, 2.5e-10
    for p in (2, 4, 8, 16, 32, 5, 12, 24):
        L = p.bit_length() - 1
        p2 = 1 << L
        n = p2 * 4096
        if p == p2:
            want = 2 * L * a + 2 * (p - 1) / p * n * b + (p - 1) / p * n * g
        else:
            want = ((2 * L + 2) * a + (2 * (p2 - 1) / p2 + 2) * n * b
                    + (1 + (p2 - 1) / p2) * n * g)
        s = build("allreduce", "rabenseifner", p, order=order)
        assert simulate(s, Hockney(a, b, g), n).time_s == pytest.approx(want, rel=1e-12)


def test_every_variant_verifies_for_p_1_to_64():
    for coll, algo in (("allreduce", "rabenseifner"), ("allreduce", "binomial"),
                       ("broadcast", "binomial")):
        for opts in variants(coll, algo):
            for p in range(1, 65):
                verify(build(coll, algo, p, **opts))
    for p in range(1, 65):
        for order in ("nearest-first", "farthest-first"):
            verify(build("reducescatter", "recursive-halving", p, layout="survivors",
                         order=order))
            verify(build("allgather", "recursive-doubling", p, layout="survivors",
                         order=order))


@pytest.mark.parametrize("p", [1, 2, 3, 5, 6, 8, 12, 16])
def test_every_variant_computes_the_sum(p):
    """The numpy executor on real values: each variant's all-reduce gives every rank the sum
    (also for n not a multiple of the chunk count), its broadcast the root's vector."""
    rng = np.random.default_rng(p)
    for n in (37, 1000):
        xs = [rng.integers(-50, 50, n) for _ in range(p)]
        for coll, algo in (("allreduce", "rabenseifner"), ("allreduce", "binomial")):
            for opts in variants(coll, algo):
                for r, got in enumerate(execute(build(coll, algo, p, **opts), xs)):
                    np.testing.assert_array_equal(got, np.sum(xs, axis=0), err_msg=f"{opts} {r}")
        for opts in variants("broadcast", "binomial"):
            out = execute(build("broadcast", "binomial", p, root=p - 1, **opts),
                          [None] * (p - 1) + [xs[-1]])
            for got in out:
                np.testing.assert_array_equal(got, xs[-1])


def test_bad_orders_and_folds_are_one_clear_line():
    with pytest.raises(ValueError, match="unknown order 'sideways'.*nearest-first"):
        build("allreduce", "rabenseifner", 8, order="sideways")
    with pytest.raises(ValueError, match="unknown fold 'intel'.*mpich.*openmpi"):
        build("allreduce", "rabenseifner", 8, fold="intel")
    with pytest.raises(ValueError, match="bitrev.*layout='survivors'"):
        build("reducescatter", "recursive-halving", 8, order="nearest-first")
    with pytest.raises(ValueError, match="bitrev.*layout='survivors'"):
        build("allgather", "recursive-doubling", 8, order="farthest-first")
    with pytest.raises(ValueError, match="unknown order 'up'"):
        build("broadcast", "binomial", 8, order="up")
    with pytest.raises(ValueError, match="takes no option 'order'"):
        build("allreduce", "ring", 8, order="nearest-first")


# --------------------------------------------------------------------------- the other builders


def test_recursive_halving_reduce_scatter_is_mpich_farthest_first():
    """MPIR_Reduce_scatter_intra_recursive_halving, p = 8: mask = pof2 >> 1 = 4 first; rank 0
    (newrank 0 < 4) send_idx = 0 + 4: sends blocks [4, 8) to 4, then [2, 4) to 2, then [1]."""
    s = build("reducescatter", "recursive-halving", 8)
    assert sends(s, 0) == [[(4, [4, 5, 6, 7], "+=")], [(2, [2, 3], "+=")], [(1, [1], "+=")]]
    assert s.owner == tuple(range(8))


def test_recursive_halving_reduce_scatter_fold_p6():
    """p = 6, rem 2: 0 -> 1 and 2 -> 3 (everything). newcnts: newrank 0 (rank 1) holds old
    ranks 0, 1 = chunks {0, 1}; newrank 1 (rank 3) {2, 3}; newrank 2 (rank 4) {4}; newrank 3
    (rank 5) {5}. mask 2: rank 1 sends newcnts[2..4) = chunks 4, 5 to rank 4; mask 1: block 1
    = chunks 2, 3 to rank 3; then rank 1 sends chunk 0 (recvcounts[rank-1]) to rank 0."""
    s = build("reducescatter", "recursive-halving", 6)
    assert sends(s, 0)[0] == [(1, [0, 1, 2, 3, 4, 5], "+=")]
    assert sends(s, 1) == [[], [(4, [4, 5], "+=")], [(3, [2, 3], "+=")], [(0, [0], "<-")]]
    assert sends(s, 4) == [[], [(1, [0, 1, 2, 3], "+=")], [(5, [5], "+=")], []]


def test_recursive_doubling_allreduce_is_mpich_and_openmpi():
    """Both libraries: even ranks below 2r send to rank+1 and idle; partners 1, 2, 4 in new
    ranks; p = 6: rank 1 (newrank 0) meets 3 (newrank 1), then 4 (newrank 2)."""
    assert partners(build("allreduce", "recursive-doubling", 8), 0) == [1, 2, 4]
    s = build("allreduce", "recursive-doubling", 6)
    assert partners(s, 0) == [1, None, None, None]
    assert partners(s, 1) == [None, 3, 4, 0]
    assert partners(s, 5) == [None, 4, 3, None]


def test_recursive_doubling_all_gather_is_mpich():
    """MPIR_Allgather_intra_recursive_doubling, p = 8: mask 1, 2, 4; rank 0 sends curr_cnt =
    1, 2, 4 blocks from my_tree_root = 0."""
    s = build("allgather", "recursive-doubling", 8)
    assert sends(s, 0) == [[(1, [0], "<-")], [(2, [0, 1], "<-")], [(4, [0, 1, 2, 3], "<-")]]
    assert sends(s, 5) == [[(4, [5], "<-")], [(7, [4, 5], "<-")], [(1, [4, 5, 6, 7], "<-")]]


def test_bruck_is_mpich_and_openmpi():
    """MPIR_Allgather_intra_brucks, p = 7: dst = rank - pof2; rank 0 sends curr_cnt = 1, 2
    blocks (its own, then 0 and 1), then rem = 7 - 4 = 3 blocks (0, 1, 2) to rank 3."""
    s = build("allgather", "bruck", 7)
    assert sends(s, 0) == [[(6, [0], "<-")], [(5, [0, 1], "<-")], [(3, [0, 1, 2], "<-")]]
    assert sends(s, 4) == [[(3, [4], "<-")], [(2, [4, 5], "<-")], [(0, [4, 5, 6], "<-")]]


def test_ring_allreduce_is_mpich():
    """MPIR_Allreduce_intra_ring, p = 4: dst = rank + 1, send_rank = (p + rank - 1 - i) % p:
    rank 0 sends chunks 3, 2, 1; the all-gatherv ring then sends j = rank first: 0, 3, 2."""
    s = build("allreduce", "ring", 4)
    assert sends(s, 0) == [[(1, [3], "+=")], [(1, [2], "+=")], [(1, [1], "+=")],
                           [(1, [0], "<-")], [(1, [3], "<-")], [(1, [2], "<-")]]
    assert sends(s, 2)[0] == [(3, [1], "+=")]


def test_ring_all_gather_and_reduce_scatter():
    """Allgather ring (both libraries): rank r sends block r first, to r+1. Reduce-scatter
    ring (Open MPI): step 0 rank r sends block r-1 to r+1."""
    ag = build("allgather", "ring", 5)
    assert sends(ag, 2) == [[(3, [c], "<-")] for c in (2, 1, 0, 4)]
    rs = build("reducescatter", "ring", 5)
    assert sends(rs, 2) == [[(3, [c], "+=")] for c in (1, 0, 4, 3)]


def test_pairwise_reduce_scatter_is_mpich():
    """MPIR_Reduce_scatter_intra_pairwise: step i, dst = rank + i, sending block dst."""
    s = build("reducescatter", "pairwise", 5)
    assert sends(s, 3) == [[(4, [4], "+=")], [(0, [0], "+=")], [(1, [1], "+=")],
                           [(2, [2], "+=")]]


def test_binomial_reduce_is_mpich():
    """MPIR_Reduce_intra_binomial, p = 8, root 0: mask 1: odd relranks send to relrank - 1;
    mask 2: 2 -> 0, 6 -> 4; mask 4: 4 -> 0. Root 3: relrank = rank - 3 (mod 8), so mask 2 is
    relrank 2 -> 0 (rank 5 -> 3) and 6 -> 4 (rank 1 -> 7), mask 4 relrank 4 -> 0 (7 -> 3)."""
    s = build("reduce", "binomial", 8)
    assert [sorted((t.src, t.dst) for t in s.transfers(k)) for k in range(3)] == [
        [(1, 0), (3, 2), (5, 4), (7, 6)], [(2, 0), (6, 4)], [(4, 0)]]
    s3 = build("reduce", "binomial", 8, root=3)
    assert [sorted((t.src, t.dst) for t in s3.transfers(k)) for k in range(3)] == [
        [(0, 7), (2, 1), (4, 3), (6, 5)], [(1, 7), (5, 3)], [(7, 3)]]


def test_binomial_broadcast_mpich_and_openmpi_orders():
    """MPICH (MPIR_Bcast_intra_binomial), p = 8: root sends to 4, 2, 1 (mask descending);
    rank 4 to 6 then 5. Open MPI (bmtree): children of v are v + 2^j above v's highest bit,
    ascending: root to 1, 2, 4; rank 1 to 3 then 5; rank 3 (parent 3 ^ 2 = 1) to 7."""
    mp = build("broadcast", "binomial", 8)
    assert partners(mp, 0) == [4, 2, 1]
    assert partners(mp, 4) == [None, 6, 5]
    om = build("broadcast", "binomial", 8, order="nearest-first")
    assert partners(om, 0) == [1, 2, 4]
    assert partners(om, 1) == [None, 3, 5]
    assert partners(om, 3) == [None, None, 7]
    assert [sorted((t.src, t.dst) for t in om.transfers(2))] == [[(0, 4), (1, 5), (2, 6),
                                                                   (3, 7)]]


def test_double_binary_tree_is_nccls():
    """NCCL's trees.cc illustrations: the 14-rank btree (0-8, 8: 4 12, 4: 2 6, 12: 10 13, ...),
    the 12-rank mirror tree (root 11, 11: 3, 3: 1 7, 7: 5 9, ...) and the 13-rank shifted
    tree (root 1, 1: 9, 9: 5 0, 5: 3 7, 0: 11, ...)."""
    assert btree_parents(14).tolist() == [-1, 2, 4, 2, 8, 6, 4, 6, 0, 10, 12, 10, 8, 12]
    second_12 = dtree_parents(12)[1]
    assert second_12.tolist() == [1, 3, 1, 11, 5, 7, 5, 3, 9, 7, 9, -1]
    second_13 = dtree_parents(13)[1]
    assert second_13.tolist() == [9, -1, 3, 5, 3, 9, 7, 5, 7, 1, 11, 0, 11]


# --------------------------------------------------------------------------- 2:1 two-level tree


BW, LAT = 12.5e9, 1e-6  # 100 Gb/s host links, 1 us per link


def two_level_tree() -> nx.Graph:
    """4 leaf switches x 4 hosts under one spine; each leaf's uplink carries 2 BW, half its
    hosts' 4 BW (2:1 oversubscribed). Hosts 0..15, host h on leaf 16 + h // 4, spine 20."""
    G = nx.Graph()
    G.add_nodes_from(range(16), kind="endpoint")
    G.add_nodes_from(range(16, 21), kind="switch")
    G.add_edges_from(((h, 16 + h // 4) for h in range(16)), bandwidth=BW, latency=LAT)
    G.add_edges_from(((16 + leaf, 20) for leaf in range(4)), bandwidth=2 * BW, latency=LAT)
    return G


def nearest_first_by_hand(n: int) -> float:
    """p = 16, ranks 4 per leaf. Reduce-scatter masks 1, 2 stay in the leaf (2 links, 2 LAT;
    one flow per host link: BW) carrying n/2, n/4; masks 4, 8 cross the spine (4 links,
    4 LAT; 4 flows share each leaf uplink of 2 BW: BW/2 each) carrying n/8, n/16. The
    all-gather repeats the same four steps in reverse."""
    rs = ((2 * LAT + (n / 2) / BW) + (2 * LAT + (n / 4) / BW)
          + (4 * LAT + (n / 8) / (BW / 2)) + (4 * LAT + (n / 16) / (BW / 2)))
    return 2 * rs  # = 24 LAT + 2.25 n / BW


def farthest_first_by_hand(n: int) -> float:
    """Masks 8, 4 (across the spine, BW/2) carry n/2, n/4; masks 2, 1 (in the leaf) n/8, n/16."""
    rs = ((4 * LAT + (n / 2) / (BW / 2)) + (4 * LAT + (n / 4) / (BW / 2))
          + (2 * LAT + (n / 8) / BW) + (2 * LAT + (n / 16) / BW))
    return 2 * rs  # = 24 LAT + 3.375 n / BW


@pytest.mark.parametrize("n", [1 << 20, 64 << 20])
def test_rabenseifner_on_a_2_to_1_two_level_tree(n):
    G = two_level_tree()
    near = simulate(build("allreduce", "rabenseifner", 16), G, n, Contention()).time_s
    far = simulate(build("allreduce", "rabenseifner", 16, order="farthest-first"), G, n,
                   Contention()).time_s
    assert near == pytest.approx(nearest_first_by_hand(n), rel=1e-12)
    assert far == pytest.approx(farthest_first_by_hand(n), rel=1e-12)
    assert far > near * 1.4  # 44% slower at 1 MiB, 50% as n grows
    # Hockney ignores the shared uplinks: both orders cost the same there.
    h_near = simulate(build("allreduce", "rabenseifner", 16), G, n, Hockney()).time_s
    h_far = simulate(build("allreduce", "rabenseifner", 16, order="farthest-first"), G, n,
                     Hockney()).time_s
    assert h_near == pytest.approx(h_far, rel=1e-12)


def test_default_order_is_never_slower_on_a_fat_tree_with_oversubscription():
    from topologies import fat_tree

    G = fat_tree(4, oversubscription=2, bandwidth=BW, latency=LAT)
    for n in (1 << 20, 64 << 20):
        near = simulate(build("allreduce", "rabenseifner", 16), G, n, Contention()).time_s
        far = simulate(build("allreduce", "rabenseifner", 16, order="farthest-first"), G, n,
                       Contention()).time_s
        assert near < far
    assert np.isfinite(near)


# --------------------------------------------------------------------------- the command lines


def test_collectives_table_lists_variants_and_partners(capsys):
    from collectives.__main__ import main

    assert main(["table", "--ranks", "8"]) == 0
    rows = capsys.readouterr().out.splitlines()
    rab = [r.split() for r in rows if r.split()[:2] == ["allreduce", "rabenseifner"]]
    assert [(r[2], r[-1]) for r in rab] == [("-", "1,2,4,4,2,1"),
                                            ("order=farthest-first", "4,2,1,1,2,4"),
                                            ("fold=openmpi", "1,2,4,4,2,1")]
    bcast = [r.split() for r in rows if r.split()[:2] == ["broadcast", "binomial"]]
    assert [(r[2], r[-1]) for r in bcast] == [("-", "4,2,1"), ("order=nearest-first", "1,2,4")]


def test_collectives_show_takes_options_and_rejects_bad_ones(capsys):
    from collectives.__main__ import main

    assert main(["show", "allreduce", "rabenseifner", "4", "--option",
                 "order=farthest-first"]) == 0
    assert "step 0: 2 += 0 chunks [2, 3]" in capsys.readouterr().out
    assert main(["show", "allreduce", "rabenseifner", "4", "--option", "order=up"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown order 'up'" in err
    assert main(["table", "--ranks", "4,x"]) == 2
    assert "--ranks expects comma-separated integers" in capsys.readouterr().err


def test_sim_predict_option_order(capsys):
    from sim.cli import main

    times = {}
    for extra in ([], ["--option", "order=farthest-first"]):
        assert main(["predict", "--collective", "allreduce", "--algorithm", "rabenseifner",
                     "--ranks", "16", "--bytes", "64MiB", "--topology", "fat-tree",
                     "--oversubscription", "2", "--model", "contention", "--json", *extra]) == 0
        rec = json.loads(capsys.readouterr().out)
        times[tuple(extra)] = rec["time_s"]
    assert times[()] < times[("--option", "order=farthest-first")]


def test_every_algorithm_names_its_library_counterparts():
    """coll/tuned ids as Open MPI's coll_tuned_<coll>_decision.c enumerates them (allreduce:
    3 recursive_doubling, 4 ring, 6 rabenseifner; allgather: 2 bruck-k-fanout, 3
    recursive_doubling, 4 ring; reduce_scatter: 2 recursive_halving, 3 ring; bcast 6 binomial;
    reduce 5 binomial)."""
    from collectives import algorithms, library

    for coll, algs in algorithms().items():
        for algo in algs:
            library(coll, algo)
    ids = {(c, a): library(c, a).openmpi_id for c, a in [
        ("allreduce", "recursive-doubling"), ("allreduce", "ring"), ("allreduce", "rabenseifner"),
        ("allgather", "bruck"), ("allgather", "recursive-doubling"), ("allgather", "ring"),
        ("reducescatter", "recursive-halving"), ("reducescatter", "ring"),
        ("broadcast", "binomial"), ("reduce", "binomial")]}
    assert list(ids.values()) == [3, 4, 6, 2, 3, 4, 2, 3, 6, 5]
    assert library("allreduce", "rabenseifner").mpich_cvar == "reduce_scatter_allgather"
    assert library("allreduce", "double-binary-tree").nccl == "Tree"
    with pytest.raises(ValueError, match="unknown algorithm 'zigzag' for allreduce"):
        library("allreduce", "zigzag")
