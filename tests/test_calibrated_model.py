"""The calibrated model: closed forms of its per-transfer cost, the simulator through its hook,
the fit from measurements and its errors, model files, bench report's accuracy figures and
warnings, --algorithms auto (with and without MPI), the host topology and step grouping."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from mpi_scripts.launcher import ROOT, launch, needs_mpi

import topologies
from bench.calibrate import CalibrationError, fit_model, model_mismatches, write_model
from bench.report import main as report_main
from collectives import build
from collectives.compose import pipelined
from collectives.plan import compile_plan, step_groups
from sim.api import predict
from sim.engine import simulate
from sim.models import Contention, Hockney, calibrated_cost, load_model_file, model_params

A, B, G = 2e-6, 1e-10, 3e-10
# lone: latency x1 up to 1 KiB, then x2 latency and half the bandwidth; crowd (N = 4): x3
# latency, a quarter of the bandwidth from 0 B
CAL = dict(alpha=A, beta=B, gamma=G, size_factors=((0.0, 1.0, 1.0), (1024.0, 2.0, 0.5)),
           crowd_factors=((0.0, 3.0, 0.25),), crowd_transfers=4, message_overhead=5e-7,
           reduce_overhead=1e-6, reduce_factors=((0.0, 1.0, 1.0),))
H = Hockney(**CAL)


def _lone(b):
    return A * (1 if b < 1024 else 2) + b * B / (1 if b < 1024 else 0.5)


def test_calibrated_cost_closed_forms():
    one = calibrated_cost(H, A, B, np.array([100.0]))
    assert one[0] == pytest.approx(A + 100 * B)
    big = calibrated_cost(H, A, B, np.array([4096.0]))
    assert big[0] == pytest.approx(_lone(4096))
    # n = N = 4 transfers at once: exactly the crowd's line
    four = calibrated_cost(H, A, B, np.full(4, 4096.0), src=[0, 1, 2, 3], dst=[1, 0, 3, 2])
    assert four == pytest.approx(np.full(4, 3 * A + 4096 * B / 0.25))
    # n = 2: the whole time a third of the way from the lone time to the crowd's (never the
    # crowd's latency with the lone slope: lone 2A + 4096 B / 0.5, crowd 3A + 4096 B / 0.25)
    lone, crowd = 2 * A + 4096 * B * 2, 3 * A + 4096 * B * 4
    two = calibrated_cost(H, A, B, np.full(2, 4096.0), src=[0, 1], dst=[1, 0])
    assert two == pytest.approx(np.full(2, lone + (crowd - lone) / 3))
    # n = 3: two thirds of the way
    three = calibrated_cost(H, A, B, np.full(3, 4096.0), src=[0, 1, 2], dst=[1, 2, 0])
    assert three == pytest.approx(np.full(3, lone + (crowd - lone) * 2 / 3))
    # n = 8 (two messages each way per pair): latency stays the crowd's, bytes share on, and
    # every rank posts 4 messages: 2 beyond one send and one receive
    src = [0, 0, 1, 1, 2, 2, 3, 3]
    dst = [1, 1, 0, 0, 3, 3, 2, 2]
    eight = calibrated_cost(H, A, B, np.full(8, 4096.0), src=src, dst=dst)
    assert eight == pytest.approx(np.full(8, 3 * A + 4096 * B * 8 + 2 * 5e-7))
    # beyond N where the crowd's time at b holds more than the step's own cost (its time at
    # 0 B, 3A here): each further round of N transfers pays that part again (a large
    # message's protocol), the step's own cost once. Crowd latency x6 from 1 KiB, N = 2.
    h2 = Hockney(**{**CAL, "crowd_factors": ((0.0, 3.0, 0.25), (1024.0, 6.0, 0.25)),
                    "crowd_transfers": 2})
    whole = 6 * A + 4096 * B / 0.25
    k2 = calibrated_cost(h2, A, B, np.full(4, 4096.0), src=[0, 0, 1, 1], dst=[1, 1, 0, 0])
    assert k2 == pytest.approx(np.full(4, whole + (whole - 3 * A) + 2 * 5e-7))
    # a reduction adds its call overhead and gamma; an empty transfer costs nothing
    red = calibrated_cost(H, A, B, np.array([100.0, 0.0]), reduce=np.array([True, True]),
                          src=[0, 1], dst=[1, 0])
    assert red[0] == pytest.approx(A + 100 * B + 1e-6 + 100 * G) and red[1] == 0.0
    # rank 2 reduces two messages in one step (a binary tree's parent): one after the other,
    # so both of its reducing transfers end after both reductions; rank 1's copy does not wait
    src, dst = [1, 3, 0], [2, 2, 1]
    both = calibrated_cost(H, A, B, np.full(3, 100.0), reduce=np.array([True, True, False]),
                           src=src, dst=dst)
    data = calibrated_cost(H, A, B, np.full(3, 100.0), src=src, dst=dst)
    assert both[:2] == pytest.approx(data[:2] + 2 * (1e-6 + 100 * G))
    assert both[2] == pytest.approx(data[2])


def test_the_engine_uses_the_hook_ring_and_binomial_by_hand():
    n = 8192  # bytes of the whole vector; 2 ranks
    h = n / 2
    # each ring step: two transfers of n/2 bytes at once (N = 4): a third of the way from the
    # lone time (2A + h B / 0.5) to the crowd's (3A + h B / 0.25)
    two = 2 * A + h * B * 2 + (A + h * B * 2) / 3
    ring = predict("allreduce", "ring", 2, n, params=H).time_s
    assert ring == pytest.approx(2 * two + 1e-6 + h * G)
    # binomial on 2 ranks: 1 -> 0 (reduce), then 0 -> 1, one transfer at a time, whole vector
    binomial = predict("allreduce", "binomial", 2, n, params=H).time_s
    assert binomial == pytest.approx(2 * _lone(n) + 1e-6 + n * G)
    # the plain model is untouched
    plain = Hockney(A, B, G)
    assert predict("allreduce", "ring", 2, n, params=plain).time_s == pytest.approx(
        2 * (A + h * B) + h * G)
    # contention on the calibrated host topology: the same figures pass through the hook
    Gh = topologies.host(2, 1 / B, 2 / B, A / 2)
    c = Contention(**CAL)
    res = simulate(build("allreduce", "binomial", 2), Gh, n, params=c)
    assert res.time_s == pytest.approx(binomial)
    # a slow reduction at rank 0 (the only rank that reduces here) scales its gamma term
    slow = simulate(build("allreduce", "binomial", 2), H, n, reduce_scale={0: 3.0}).time_s
    assert slow == pytest.approx(2 * _lone(n) + 1e-6 + 3 * n * G)
    assert simulate(build("allreduce", "binomial", 2), H, n,
                    reduce_scale={1: 3.0}).time_s == pytest.approx(binomial)


def test_no_transfer_is_priced_faster_per_byte_than_in_the_collectives_working_set():
    # a machine whose caches give out at 1 MB: from there each byte moves and reduces at a
    # quarter of the speed (no latency: the rows pass through the origin)
    R = 1e-6
    C = Hockney(alpha=A, beta=B, gamma=G, size_factors=((0.0, 1.0, 1.0), (1e6, 0.0, 0.25)),
                reduce_overhead=R, reduce_factors=((0.0, 1.0, 1.0), (1e6, 0.0, 0.25)))
    b = np.array([1e5])
    assert calibrated_cost(C, A, B, b)[0] == pytest.approx(A + 1e5 * B)
    # in a working set of 4 MB a transfer's buffers are those of the 2 MB benchmark: 4 B/byte
    assert calibrated_cost(replace(C, working_set=4e6), A, B, b)[0] == pytest.approx(1e5 * 4 * B)
    # a reduction's three arrays: 4 MB is the 1.33 MB benchmark's working set
    red = calibrated_cost(replace(C, working_set=4e6), A, B, b, reduce=np.array([True]))
    assert red[0] == pytest.approx(1e5 * 4 * B + 1e5 * 4 * G)
    # the engine sets the working set: input, result and the largest step's scratch
    assert build("allreduce", "ring", 4).most_received_per_step() == 0.25
    assert build("allreduce", "recursive-doubling", 4).most_received_per_step() == 1.0
    n = 800_000
    # recursive doubling on 2 ranks: 2.4 MB; its 0.8 MB exchange at the 1.2 MB rate
    rd = simulate(build("allreduce", "recursive-doubling", 2), None, n, params=C)
    assert rd.time_s == pytest.approx(n * 4 * B + R + n * G)
    assert rd.params.working_set == 0.0  # the result reports the model as given
    # ring on 2 ranks: 2.0 MB; its 0.4 MB halves move at the 1 MB rate, but reduce at their
    # own (2.0 MB is the 0.67 MB reduction's working set, still in cache)
    ring = simulate(build("allreduce", "ring", 2), None, n, params=C)
    assert ring.time_s == pytest.approx(2 * (n / 2) * 4 * B + R + (n / 2) * G)
    # the plain model knows no caches
    assert simulate(build("allreduce", "ring", 2), None, n, params=Hockney(A, B, G)).time_s \
        == pytest.approx(2 * (A + n / 2 * B) + n / 2 * G)
    # the written tables' benchmarks ran out of place (written_buffers 2: an input and a
    # result), each size in twice a clean benchmark's working set: in 3 MB a written transfer
    # of 0.1 MB is priced at the 0.75 MB written figure's rate, not at the 1.5 MB one's
    W = replace(C, working_set=3e6, written_size_factors=((0.0, 2.0, 0.5), (1e6, 0.0, 0.125)))
    one = np.ones(1)
    assert calibrated_cost(W, A, B, b, written=one)[0] == pytest.approx(1e5 * 8 * B)
    at = 2 * A + 0.75e6 * 2 * B
    assert calibrated_cost(replace(W, written_buffers=2.0), A, B, b, written=one)[0] == \
        pytest.approx(max(2 * A + 1e5 * 2 * B, at * 1e5 / 0.75e6))
    assert calibrated_cost(replace(W, working_set=6e6, written_buffers=2.0), A, B, b,
                           written=one)[0] == pytest.approx(1e5 * 8 * B)


def test_with_a_core_per_rank_only_the_working_set_beyond_the_cache_moves_at_its_rate():
    # the machine of the test above, its caches giving out at 1 MB, with 3 MB of cache per
    # rank: in a working set of 4 MB a quarter of a transfer's bytes are not in cache
    C = Hockney(alpha=A, beta=B, gamma=G, size_factors=((0.0, 1.0, 1.0), (1e6, 0.0, 0.25)),
                reduce_overhead=1e-6, reduce_factors=((0.0, 1.0, 1.0), (1e6, 0.0, 0.25)),
                cache_per_rank=3e6, ranks_per_core=1.0)
    b, red = np.array([1e5]), np.array([True])
    own, at_working_set = A + 1e5 * B, 1e5 * 4 * B  # the in-cache rate, the 2 MB one
    t = calibrated_cost(replace(C, working_set=4e6), A, B, b)[0]
    assert t == pytest.approx(own + 0.25 * (at_working_set - own))
    # a working set within the cache: the transfer's own rate; 12 MB: three quarters out
    assert calibrated_cost(replace(C, working_set=2.5e6), A, B, b)[0] == pytest.approx(own)
    assert calibrated_cost(replace(C, working_set=12e6), A, B, b)[0] == pytest.approx(
        own + 0.75 * (at_working_set - own))
    # the reduction keeps its whole working-set rate (reductions priced in part put the
    # 2-rank double binary tree of 8 MiB 40% fast on the AMD VM)
    r = calibrated_cost(replace(C, working_set=4e6), A, B, b, reduce=red)[0]
    assert r - t == pytest.approx(1e5 * 4 * G)
    # ranks sharing cores, or a file without the cache: every byte at the working set's rate
    for shared in (replace(C, ranks_per_core=2.0), replace(C, cache_per_rank=0.0)):
        assert calibrated_cost(replace(shared, working_set=4e6), A, B, b)[0] == \
            pytest.approx(at_working_set)


def test_written_data_is_priced_apart_ring_by_hand():
    # the ring's first step sends input (clean), its second the reduced half (written by the
    # sender): with written tables of twice the clean time, the second step costs that
    n = 8192
    h = n / 2
    W = Hockney(**CAL, written_size_factors=((0.0, 3.0, 0.25),),
                written_crowd_factors=((0.0, 6.0, 0.125),))
    clean = 2 * A + h * B * 2 + (A + h * B * 2) / 3
    lone_w, crowd_w = 3 * A + h * B * 4, 6 * A + h * B * 8
    written = lone_w + (crowd_w - lone_w) / 3
    ring = predict("allreduce", "ring", 2, n, params=W).time_s
    assert ring == pytest.approx(clean + 1e-6 + h * G + written)
    # binomial on 2 ranks: the leaf's send is input, the root's broadcast sends its result
    binomial = predict("allreduce", "binomial", 2, n, params=W).time_s
    assert binomial == pytest.approx(_lone(n) + 1e-6 + n * G + 3 * A + n * B * 4)
    # written tables equal to the clean ones change nothing; without them, nothing either
    same = Hockney(**CAL, written_size_factors=CAL["size_factors"],
                   written_crowd_factors=CAL["crowd_factors"])
    for algorithm in ("ring", "binomial", "double-binary-tree", "rabenseifner"):
        base = predict("allreduce", algorithm, 4, 1 << 16, params=H).time_s
        assert predict("allreduce", algorithm, 4, 1 << 16, params=same).time_s == \
            pytest.approx(base, rel=1e-12)
    # ring on 4 ranks: 6 steps, the first clean, five written (steps sharing arrays but
    # not the written fractions are costed apart)
    r4 = simulate(build("allreduce", "ring", 4), W, 4096)
    r4_clean = simulate(build("allreduce", "ring", 4), H, 4096)
    first = r4.steps.end[0] - r4.steps.start[0]
    assert first == pytest.approx(r4_clean.steps.end[0] - r4_clean.steps.start[0])
    assert r4.time_s > r4_clean.time_s + 4 * A


def test_data_a_reduction_wrote_has_a_crowd_figure_of_its_own_ring_by_hand():
    # the 2-rank ring's second step sends the half its sender reduced in the first: with a
    # reduced crowd table, that step costs the lone written / reduced crowd interpolation
    n = 8192
    h = n / 2
    R = Hockney(**CAL, written_size_factors=((0.0, 3.0, 0.25),),
                written_crowd_factors=((0.0, 6.0, 0.125),),
                reduced_crowd_factors=((0.0, 4.0, 0.5),))
    clean = 2 * A + h * B * 2 + (A + h * B * 2) / 3
    lone_w, crowd_r = 3 * A + h * B * 4, 4 * A + h * B * 2
    ring = predict("allreduce", "ring", 2, n, params=R).time_s
    assert ring == pytest.approx(clean + 1e-6 + h * G + lone_w + (crowd_r - lone_w) / 3)
    # binomial's broadcast is a lone transfer: the written lone figure, as without the table
    W = replace(R, reduced_crowd_factors=())
    for algorithm, nranks in (("binomial", 2), ("binomial", 4)):
        assert predict("allreduce", algorithm, nranks, n, params=R).time_s == pytest.approx(
            predict("allreduce", algorithm, nranks, n, params=W).time_s, rel=1e-12)
    # the 4-rank ring: its all-gather's later steps forward received data (the written crowd
    # figure), so it costs more than with every written step at the reduced figure
    r4 = simulate(build("allreduce", "ring", 4), R, 4096)
    every = simulate(build("allreduce", "ring", 4),
                     replace(R, written_crowd_factors=R.reduced_crowd_factors), 4096)
    without = simulate(build("allreduce", "ring", 4), W, 4096)
    assert every.time_s < r4.time_s < without.time_s
    # a transfer half of whose written data a reduction wrote: halfway between the figures
    b = np.full(2, 4096.0)
    one, half, none = (calibrated_cost(R, A, B, b, written=np.ones(2), reduced=np.full(2, f))
                       for f in (1.0, 0.5, 0.0))
    assert half == pytest.approx((one + none) / 2)
    assert none == pytest.approx(calibrated_cost(W, A, B, b, written=np.ones(2)))


def test_sent_written_kinds_tells_reduced_from_received_data():
    ring = build("allreduce", "ring", 4)
    kinds = ring.sent_written_kinds()
    # reduce-scatter steps 2-3 and the all-gather's first send reduced chunks, its later two
    # forward received ones
    assert [r.tolist() for _, r in kinds] == [[0.0] * 4] + [[1.0] * 4] * 3 + [[0.0] * 4] * 2
    assert [w.tolist() for w, _ in kinds] == [w.tolist() for w in ring.sent_written()]
    # per rank beyond the limit: the kind of the last step a rank received in
    assert [r.tolist() for _, r in ring.sent_written_kinds(limit=1)] == \
        [r.tolist() for _, r in kinds]
    # binomial on 4 ranks: the reduce's second step sends what the sender reduced, and so
    # does the broadcast's first; its second forwards what rank 2 received
    tree = build("allreduce", "binomial", 4)
    assert [r.tolist() for _, r in tree.sent_written_kinds()] == \
        [[0.0, 0.0], [1.0], [1.0], [1.0, 0.0]]


def test_rounds_beyond_the_crowd_are_the_steps_own_mix_of_written_and_clean():
    # N = 2; a step of four transfers (two each way, as a double binary tree's on 2 ranks),
    # one written and one clean each way: each transfer's own round at its own kind, the
    # second round at the step's mix (clean round 0.2 us, written 0.4 us beyond the floor)
    m = Hockney(alpha=A, beta=B, size_factors=((0.0, 1.0, 1.0),),
                crowd_factors=((0.0, 2.0, 0.5),), crowd_transfers=2,
                written_size_factors=((0.0, 1.0, 0.5),),
                written_crowd_factors=((0.0, 2.0, 0.25),))
    b = np.full(4, 1000.0)
    w = np.array([1.0, 0.0, 1.0, 0.0])
    got = calibrated_cost(m, A, B, b, src=[0, 0, 1, 1], dst=[1, 1, 0, 0], written=w)
    assert got == pytest.approx(np.array([4.7e-6, 4.5e-6, 4.7e-6, 4.5e-6]))
    # all written or all clean: the rounds of one kind, as before
    every = calibrated_cost(m, A, B, b, src=[0, 0, 1, 1], dst=[1, 1, 0, 0], written=np.ones(4))
    assert every == pytest.approx(np.full(4, 4.8e-6))
    none = calibrated_cost(m, A, B, b, src=[0, 0, 1, 1], dst=[1, 1, 0, 0], written=np.zeros(4))
    assert none == pytest.approx(np.full(4, 4.4e-6))


def test_sent_written_tracks_chunks_and_falls_back_per_rank():
    ring = build("allreduce", "ring", 4)
    assert [w.tolist() for w in ring.sent_written()] == [[0.0] * 4] + [[1.0] * 4] * 5
    # a two-chunk transfer of which the sender wrote one chunk: one half
    from collectives.ir import Schedule, make_step

    s = Schedule("allgather", "t", 2, 2, (make_step([0], [1], False, run_start=[0]),
                                          make_step([1], [0], False, runs=[[(0, 2)]])),
                 owner=(0, 1))
    assert [w.tolist() for w in s.sent_written()] == [[0.0], [0.5]]
    # beyond the limit: a rank counts as sending written data once it received anything
    assert [w.tolist() for w in s.sent_written(limit=1)] == [[0.0], [1.0]]
    tree = build("allreduce", "binomial", 4)
    exact = tree.sent_written()
    assert [w.tolist() for w in exact] == [[0.0, 0.0], [1.0], [1.0], [1.0, 1.0]]
    assert [w.tolist() for w in tree.sent_written(limit=1)] == [w.tolist() for w in exact]
    # per rank, steps whose transfers are all alike share one read-only array
    per_rank = ring.sent_written(limit=1)
    assert [w.tolist() for w in per_rank] == [w.tolist() for w in ring.sent_written()]
    assert all(w is per_rank[1] for w in per_rank[2:]) and not per_rank[1].flags.writeable


def test_fit_with_written_measurements():
    from bench.calibrate import forward_step_times, relay_transfer_times

    m = _measurements()
    lone_w = [3e-6, 3.4e-6, 20e-6, 300e-6]
    crowd_w = [4e-6, 5e-6, 30e-6, 250e-6]  # below the lone at 1 MiB: raised to it
    doc = fit_model(**m, lone_written=lone_w, crowd_written=crowd_w)
    h = model_params("hockney", **{k: v for k, v in doc.items() if k != "notes"})
    ones = np.ones(1)
    for s, lone, lw, cw in zip(m["sizes"], m["lone"], lone_w, [4e-6, 5e-6, 30e-6, 300e-6],
                               strict=True):
        b = float(s)
        assert calibrated_cost(h, h.alpha, h.beta, np.array([b]))[0] == pytest.approx(lone)
        assert calibrated_cost(h, h.alpha, h.beta, np.array([b]), written=ones)[0] == \
            pytest.approx(lw)
        assert calibrated_cost(h, h.alpha, h.beta, np.full(2, b), written=np.ones(2))[0] == \
            pytest.approx(cw)
    assert any("crowd forward: 1 of 4" in n for n in doc["notes"])
    with pytest.raises(CalibrationError, match="both written-data measurements"):
        fit_model(**m, lone_written=lone_w)
    with pytest.raises(CalibrationError, match=r"lone relay of written data .* 1024 B"):
        fit_model(**m, lone_written=[3e-6, 0.0, 2e-5, 3e-4], crowd_written=crowd_w)
    # the forwarding shift, run out of place: its first step sends the clean input on any
    # rank count; noise below the clean shift leaves half of it
    assert forward_step_times([8e-6], [3e-6], 2) == pytest.approx([5e-6])
    assert forward_step_times([8e-6, 2e-6], [3e-6, 3e-6], 4) == pytest.approx([5e-6, 1e-6])
    # the written relay, out of place: of p transfers the root's first is clean
    assert relay_transfer_times([3e-6], [2e-6], 2) == pytest.approx([4e-6])
    assert relay_transfer_times([3e-6], [1e-6], 3) == pytest.approx([4e-6])
    assert relay_transfer_times([1e-6], [3e-6], 2) == pytest.approx([1e-6])


def test_fit_with_reduced_data_measurements():
    from bench.calibrate import reduced_step_times

    m = _measurements()
    lone_w = [3e-6, 3.4e-6, 20e-6, 300e-6]
    crowd_w = [4e-6, 5e-6, 30e-6, 300e-6]
    # below the written lone figure from 64 KiB (as measured on the AMD VM), below even the
    # clean lone one at 4 B: raised to the clean lone figure only
    crowd_r = [1e-6, 4.5e-6, 12e-6, 200e-6]
    doc = fit_model(**m, lone_written=lone_w, crowd_written=crowd_w, crowd_reduced=crowd_r)
    h = model_params("hockney", **{k: v for k, v in doc.items() if k != "notes"})
    two = np.full(2, 1.0)
    for s, cr in zip(m["sizes"], [max(crowd_r[0], m["lone"][0])] + crowd_r[1:], strict=True):
        b = np.full(2, float(s))
        assert calibrated_cost(h, h.alpha, h.beta, b, written=two, reduced=two)[0] == \
            pytest.approx(cr)
    assert any("crowd forward of reduced data: 1 of 4" in n for n in doc["notes"])
    with pytest.raises(CalibrationError, match="reducing forward needs the written-data"):
        fit_model(**m, crowd_reduced=crowd_r)
    with pytest.raises(CalibrationError, match=r"crowd forward of reduced data .* 1024 B"):
        fit_model(**m, lone_written=lone_w, crowd_written=crowd_w,
                  crowd_reduced=[1e-6, -1.0, 1e-5, 1e-4])
    # the reducing forward less its first step, the reducing shift
    assert reduced_step_times([9e-6, 2e-6], [5e-6, 3e-6]) == pytest.approx([4e-6, 1e-6])


def test_a_reduction_inside_a_step_waits_its_turn():
    # the reducing shift less the shift (multi k = 1) and the np.add call: reduce_wait
    m = _measurements()
    doc = fit_model(**m, reducing_shift=5.5e-6)
    assert doc["reduce_wait"] == pytest.approx(5.5e-6 - 3e-6 - 0.5e-6)
    low = fit_model(**m, reducing_shift=3.2e-6)  # faster than its parts: noise, no wait
    assert low["reduce_wait"] == 0.0 and any("reduce wait" in n for n in low["notes"])
    assert "reduce_wait" not in fit_model(**m)
    with pytest.raises(CalibrationError, match="reducing shift"):
        fit_model(**m, reducing_shift=0.0)
    # once per reducing rank and step, in proportion to the ranks that reduce (of N = 4):
    # rank 2 reduces two messages, rank 1 copies: one rank in four, a quarter of the wait
    w = Hockney(**{**CAL, "reduce_wait": 2e-6})
    src, dst, red = [1, 3, 0], [2, 2, 1], np.array([True, True, False])
    got = calibrated_cost(w, A, B, np.full(3, 100.0), reduce=red, src=src, dst=dst)
    base = calibrated_cost(H, A, B, np.full(3, 100.0), reduce=red, src=src, dst=dst)
    assert got == pytest.approx(base + np.array([0.5e-6, 0.5e-6, 0.0]))
    # recursive doubling on 4 ranks: two steps in which every rank reduces, each 2 us longer
    rd = predict("allreduce", "recursive-doubling", 4, 64, params=w).time_s
    assert rd == pytest.approx(predict("allreduce", "recursive-doubling", 4, 64,
                                       params=H).time_s + 4e-6)


def test_the_reduction_wait_with_one_rank_reducing():
    m = _measurements()
    # the shift with one rank reducing, less the shift and the np.add call: reduce_wait_one
    doc = fit_model(**m, reducing_shift=5.5e-6, reducing_shift_one=4.5e-6)
    assert doc["reduce_wait"] == pytest.approx(2e-6)
    assert doc["reduce_wait_one"] == pytest.approx(4.5e-6 - 3e-6 - 0.5e-6)
    # no slower than its parts: 0, and the older rule (in proportion to the ranks) with a note
    low = fit_model(**m, reducing_shift=5.5e-6, reducing_shift_one=3.4e-6)
    assert low["reduce_wait_one"] == 0.0
    assert any("one rank reducing" in n and "in proportion" in n for n in low["notes"])
    with pytest.raises(CalibrationError, match="needs the one with every rank reducing"):
        fit_model(**m, reducing_shift_one=4.5e-6)
    with pytest.raises(CalibrationError, match="one rank reducing"):
        fit_model(**m, reducing_shift=5.5e-6, reducing_shift_one=float("nan"))
    # N = 4: one reducing rank waits reduce_wait_one, k ranks on the line up to reduce_wait
    w = Hockney(**{**CAL, "reduce_wait": 2e-6, "reduce_wait_one": 1e-6})
    base_w = Hockney(**{**CAL})

    def extra(dst, red):
        src = [(d + 1) % 4 for d in dst]
        n = np.full(len(dst), 100.0)
        return (calibrated_cost(w, A, B, n, reduce=np.array(red), src=src, dst=dst)
                - calibrated_cost(base_w, A, B, n, reduce=np.array(red), src=src, dst=dst))
    assert extra([2, 1], [True, False]) == pytest.approx([1e-6, 0.0])
    assert extra([2, 1], [True, True]) == pytest.approx([1e-6 + 1e-6 / 3] * 2)
    assert extra([0, 1, 2, 3], [True] * 4) == pytest.approx([2e-6] * 4)
    # the 4-rank binomial's reduce steps (two ranks, then one) at 64 B: 4/3 + 1 us of waits
    binomial = predict("allreduce", "binomial", 4, 64, params=w).time_s
    assert binomial == pytest.approx(predict("allreduce", "binomial", 4, 64,
                                             params=base_w).time_s + 1e-6 + 1e-6 / 3 + 1e-6)


def _measurements(**change):
    sizes = [4, 1024, 65536, 1 << 20]
    m = dict(sizes=sizes, lone=[2e-6, 2.2e-6, 12e-6, 160e-6],
             crowd=[3e-6, 3.5e-6, 20e-6, 300e-6], crowd_transfers=2, reduce_sizes=sizes,
             reduce=[0.5e-6, 0.8e-6, 10e-6, 200e-6], multi={1: 3e-6, 2: 4e-6, 4: 7e-6})
    m.update(change)
    return m


def test_fit_reproduces_its_measurements_and_round_trips(tmp_path):
    m = _measurements()
    doc = fit_model(**m)
    assert doc["alpha"] == 2e-6 and doc["beta"] == pytest.approx(148e-6 / ((1 << 20) - 65536))
    h = model_params("hockney", **{k: v for k, v in doc.items() if k != "notes"})
    for s, lone, crowd in zip(m["sizes"], m["lone"], m["crowd"], strict=True):
        assert calibrated_cost(h, h.alpha, h.beta, np.array([float(s)]))[0] == pytest.approx(lone)
        assert calibrated_cost(h, h.alpha, h.beta, np.full(2, float(s)))[0] == pytest.approx(
            crowd)
    # the reduction's last step (64 KiB -> 1 MiB: 20x for 16x the bytes, caches falling off)
    # has no line through both points with a latency >= 0: still every size, the largest
    # included, costs what was measured, and beyond it the time grows in proportion
    for s, red in zip(m["reduce_sizes"], m["reduce"], strict=True):
        one = np.array([float(s)])
        assert (calibrated_cost(h, h.alpha, h.beta, one, reduce=np.array([True]))
                - calibrated_cost(h, h.alpha, h.beta, one))[0] == pytest.approx(red)
    # between the two, at most a few percent below the straight line (the origin line
    # through 64 KiB alone would say 82 us at 512 KiB, the line 99 us)
    mid = np.array([float(1 << 19)])
    line = 10e-6 + (190e-6 / ((1 << 20) - (1 << 16))) * ((1 << 19) - (1 << 16))
    red_mid = (calibrated_cost(h, h.alpha, h.beta, mid, reduce=np.array([True]))
               - calibrated_cost(h, h.alpha, h.beta, mid))[0]
    assert 0.9 * line <= red_mid <= line
    two = np.array([float(2 << 20)])
    assert (calibrated_cost(h, h.alpha, h.beta, two, reduce=np.array([True]))
            - calibrated_cost(h, h.alpha, h.beta, two))[0] == pytest.approx(400e-6)
    # o: k = 2 is 1 us above the crowd's 4 transfers, over 2 extra messages; k = 4: 4 us over 6
    at4 = calibrated_cost(h, h.alpha, h.beta, np.full(4, 4.0))[0]
    at8 = calibrated_cost(h, h.alpha, h.beta, np.full(8, 4.0))[0]
    assert doc["message_overhead"] == pytest.approx(
        np.median([(4e-6 - at4) / 2, (7e-6 - at8) / 6]))
    path = tmp_path / "model.json"
    write_model(path, {**doc, "host": "x"})
    loaded = load_model_file(path)
    assert loaded["size_factors"] == tuple(tuple(r) for r in doc["size_factors"])
    assert loaded["crowd_transfers"] == 2


def test_a_cached_crowd_below_the_lone_time_is_raised_before_the_envelope():
    # the shift's 1 MiB figure (100 us) is below the lone 160 us (its buffers cached): it
    # becomes 160 us, and the envelope no longer carries it down to 64 KiB (whose 20 us stays)
    m = _measurements(crowd=[3e-6, 3.5e-6, 20e-6, 100e-6])
    doc = fit_model(**m)
    h = model_params("hockney", **{k: v for k, v in doc.items() if k != "notes"})
    crowd = [calibrated_cost(h, h.alpha, h.beta, np.full(2, float(s)))[0] for s in m["sizes"]]
    assert crowd == pytest.approx([3e-6, 3.5e-6, 20e-6, 160e-6])
    assert any("1 of 4 figures below the lone ping-pong's raised to it (from 1048576 B)" in n
               for n in doc["notes"])
    # and a relay on 4 ranks is one transfer per step round the ranks
    from bench.calibrate import relay_schedule

    assert [(st.src.tolist(), st.dst.tolist()) for st in relay_schedule(4).steps] == [
        ([0], [1]), ([1], [2]), ([2], [3]), ([3], [0])]


@pytest.mark.parametrize("change, message", [
    (dict(lone=[2e-6, float("nan"), 1e-5, 1e-4]), r"lone ping-pong measurement .* 1024 B \(nan\)"),
    (dict(crowd=[3e-6, -1.0, 1e-5, 1e-4]), r"crowd exchange measurement .* 1024 B \(-1.0\)"),
    (dict(lone=[2e-6, 2e-6, 2e-6, 2e-6]), r"beta from the lone ping-pong is 0 s/B"),
    (dict(reduce=[1e-6] * 4), r"gamma from the reduction is 0 s/B"),
    (dict(multi={1: 3e-6, 2: float("inf")}), r"multi-message exchange measurement .* k=2"),
])
def test_a_calibration_that_cannot_be_fitted_names_the_measurement(change, message):
    with pytest.raises(CalibrationError, match=message):
        fit_model(**_measurements(**change))


def test_bad_calibration_tables_in_a_model_file(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"alpha": 1e-6, "beta": 1e-10,
                               "size_factors": [[0, 1, 1], [8, 1, 0]]}))
    with pytest.raises(ValueError, match="size_factors: .*bandwidth factors > 0"):
        load_model_file(bad)
    bad.write_text(json.dumps({"alpha": 1e-6, "beta": 1e-10,
                               "crowd_factors": [[64, 1, 1], [8, 1, 1]]}))
    with pytest.raises(ValueError, match="increasing min_bytes"):
        load_model_file(bad)


def test_a_bench_results_file_is_a_model_file_of_its_runs_calibration(tmp_path):
    results = tmp_path / "run.json"
    model = {"alpha": 2e-6, "beta": 1e-10, "gamma": 1e-10, "size_factors": [[0, 1, 1]],
             "host": "a", "ranks": 2}
    results.write_text(json.dumps({"format": "collectives.bench/1", "environment": {},
                                   "records": [], "model": model}))
    values = load_model_file(results)
    assert values["alpha"] == 2e-6 and values["size_factors"] == ((0.0, 1.0, 1.0),)
    assert model_mismatches(results, "b", None, 4) == [
        f"model file {str(results)!r} was calibrated on host 'a', not 'b'",
        f"model file {str(results)!r} was calibrated at 2 ranks, used here for 4: "
        f"calibrate at each rank count"]
    results.write_text(json.dumps({"format": "collectives.bench/1", "environment": {},
                                   "records": []}))
    with pytest.raises(ValueError, match=r"run\.json' is a bench results file without a "
                                         r"model: run bench with --calibrate"):
        load_model_file(results)


def test_auto_names_the_sizes_where_the_whole_run_chooses_otherwise():
    from bench.sweep import _whole_run_lines
    from sim.table import make_record

    def auto(size, first, whole):
        r = make_record("allreduce", "auto", 2, size, size // 4, "float", "sum", 1e-5)
        r.extra.update(choice=first, whole_run_choice=whole)
        return r
    same = [auto(8, "recursive-doubling", "recursive-doubling")]
    assert _whole_run_lines(same, 3, "r.json") == []
    records = same + [auto(1 << 20, "recursive-doubling", "ring"),
                      auto(4 << 20, "ring", "double-binary-tree segments=2")]
    assert _whole_run_lines(records, 3, "r.json") == [
        "# auto: this run's whole calibration (3 passes) chooses otherwise at 2 of 3 sizes "
        "(1048576 B: ring, 4194304 B: double-binary-tree segments=2); --model-file r.json "
        "predicts from it"]
    assert "--json FILE, then --model-file FILE" in _whole_run_lines(records, 3, None)[0]


def _records(params, ranks=(2,), host="here", library="MPICH 5.0.2"):
    algos = ("ring", "rabenseifner", "recursive-doubling", "binomial", "double-binary-tree")
    recs = [{"collective": "allreduce", "algorithm": a, "ranks": p, "size": s, "dtype": "float",
             "time_s": predict("allreduce", a, p, s, params=params, itemsize=4).time_s}
            for p in ranks for s in (64, 4096, 1 << 16, 1 << 20) for a in algos]
    recs += [{**r, "algorithm": "auto", "choice": "ring"} for r in recs if r["algorithm"] == "ring"]
    return {"environment": {"host": host, "library": library}, "records": recs}


def test_report_of_records_the_model_made_has_no_error_and_agrees_on_winners(tmp_path, capsys):
    model = tmp_path / "model.json"
    write_model(model, {**CAL, "host": "here", "library": "MPICH 5.0.2", "ranks": 2})
    runs = []
    for i in range(3):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(_records(H)))
        runs.append(str(path))
    assert report_main([*runs, "--model-file", str(model), "--out", str(tmp_path / "r")]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "#    < 64 KiB: median |error|   0.0%, max   0.0% over 10 points" in out
    assert "#   >= 64 KiB: median |error|   0.0%, max   0.0% over 10 points" in out
    assert "within 5% of the measured best at 4 of 4 sizes" in out
    assert "# over 3 runs" in out and "winner within 5% at 100% of sizes [100 .. 100]" in out
    acc = json.loads((tmp_path / "r" / "comparison.json").read_text())["accuracy"]
    assert len(acc) == 3 and all(w["measured"] == w["predicted"] for w in acc[0][0]["winners"])


def test_report_re_predicts_autos_choices_and_names_its_misses(tmp_path, capsys):
    """auto's rows: the schedule each chose, re-predicted by the run's model, and its time over
    the best project algorithm's; a choice measured 1.5x the best is marked off."""
    model = tmp_path / "model.json"
    write_model(model, {**CAL, "host": "here", "library": "MPICH 5.0.2", "ranks": 2})
    doc = _records(H)
    big = 1 << 20
    piped = [r for r in doc["records"] if r["algorithm"] == "auto" and r["size"] == big][0]
    best = min(r["time_s"] for r in doc["records"]
               if r["size"] == big and r["algorithm"] not in ("auto", "native"))
    from collectives.compose import pipelined
    want = simulate(pipelined(build("allreduce", "binomial", 2), 8), None, big, params=H,
                    itemsize=4).time_s
    piped.update(choice="binomial pipelined=8", time_s=1.5 * best)
    unknown = [r for r in doc["records"] if r["algorithm"] == "auto" and r["size"] == 64][0]
    unknown["choice"] = "no-such-schedule"
    # at 64 KiB auto ran the ring, the best's own schedule, and measured 1.2x it: noise
    noisy = [r for r in doc["records"] if r["algorithm"] == "auto" and r["size"] == 65536][0]
    ring = [r for r in doc["records"] if r["algorithm"] == "ring" and r["size"] == 65536][0]
    noisy.update(time_s=1.2 * ring["time_s"], same_as_best=True)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    assert report_main([str(path), "--model-file", str(model), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "# auto's choices, allreduce on 2 ranks (each re-predicted by the run's model):" in out
    # the records' auto ran the ring at every size: the best at 64 KiB only, where it now
    # measured 1.2x the fixed ring: a miss, and one on the best's own schedule
    assert ("#   within 5% of the best project algorithm at 0 of 4 sizes (1 of the 4 misses "
            "ran the best's own schedule, marked =: identical schedules measured apart)") in out
    assert [x for x in out.splitlines() if "65536" in x and "auto" not in x
            and "ring" in x][-1].endswith("1.200  <- off =")
    # the ring's own schedule ran twice at 2 of the 4 sizes (the unknown label and the pipelined
    # binomial have no fixed twin): once 1.2x apart, once identical
    assert ("#   the measurement's own floor: at the 2 sizes where auto ran a fixed algorithm's "
            "schedule, the two times of that one schedule lie more than 5% apart at 1") in out
    line = [x for x in out.splitlines() if "binomial pipelined=8" in x][0]
    assert line.endswith("1.500  <- off")
    auto = json.loads((tmp_path / "r" / "comparison.json").read_text())["auto"][0]
    got = {r["size"]: r for r in auto}
    assert got[big]["predicted_s"] == pytest.approx(want)
    assert got[big]["error_pct"] == pytest.approx(100 * (want - 1.5 * best) / (1.5 * best))
    assert got[4096]["choice"] == "ring" and got[4096]["error_pct"] == pytest.approx(0.0)
    assert got[64]["predicted_s"] is None and got[64]["best"] == "recursive-doubling"
    assert got[65536]["twin"] == "ring" and got[65536]["twin_ratio"] == pytest.approx(1.2)
    assert got[big]["twin"] is None and got[64]["twin_ratio"] is None


def test_report_says_when_a_whole_run_leans_one_way(tmp_path, capsys):
    """Every algorithm measured 25% slower than the model says (a machine that ran the sweep
    slower than its calibration): one line says so; a run without that lean has none."""
    model = tmp_path / "model.json"
    write_model(model, {**CAL, "host": "here", "library": "MPICH 5.0.2", "ranks": 2})
    slow = _records(H)
    for r in slow["records"]:
        r["time_s"] *= 1.25
    paths = []
    for name, doc in (("slow", slow), ("same", _records(H))):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(doc))
    assert report_main([*map(str, paths), "--model-file", str(model), "--fit",
                        "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    lean = [line for line in out.splitlines() if "leans one way" in line]
    # both parts of the slow run, none of the other, and none of the fit (which the slow
    # run's records pull along with them: no calibration to differ from)
    assert len(lean) == 2, out
    assert all("predicted fast at 10 of 10 points (median signed error -20.0%)" in line
               for line in lean)
    assert "# FIT (not a prediction), run 1" in out
    acc = json.loads((tmp_path / "r" / "comparison.json").read_text())["accuracy"]
    assert acc[0][0]["large"]["signed_median"] == pytest.approx(-20.0)
    assert acc[1][0]["large"]["predicted_fast"] == 0
    # the same figures in a fit's block: no such line
    from bench.report import _accuracy_lines
    assert sum("leans one way" in x for x in _accuracy_lines(acc[0], "c")) == 2
    assert not any("leans one way" in x for x in _accuracy_lines(acc[0], "f", lean=False))


def test_report_gives_the_runs_own_spread(tmp_path, capsys):
    # run 2 measured every point 1.5x slower, run 3 1.2x from 64 KiB: the spread says so,
    # below and from 64 KiB, apart from the prediction's error
    runs = []
    for i, (small, large) in enumerate(((1.0, 1.0), (1.5, 1.5), (1.0, 1.2))):
        doc = _records(H)
        for r in doc["records"]:
            r["time_s"] *= small if r["size"] < 1 << 16 else large
            # in the first run, rabenseifner (on 2 ranks ring's very schedule) 1.3x from 64 KiB
            if i == 0 and r["algorithm"] == "rabenseifner" and r["size"] >= 1 << 16:
                r["time_s"] *= 1.3
        doc["model"] = CAL
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(doc))
        runs.append(str(path))
    assert report_main([*runs, "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "# measured repeatability over the 3 runs" in out
    assert "allreduce on 2 ranks: <64K median 1.50x, max 1.50x; >=64K median 1.50x" in out
    doc = json.loads((tmp_path / "r" / "comparison.json").read_text())
    rep = doc["repeatability"]
    assert rep[0]["small"]["points"] == 10 and rep[0]["large"]["points"] == 10
    # identical schedules in one run: 1.0x but where the first run measured them apart
    assert ("allreduce on 2 ranks (ring=rabenseifner): <64K median 1.00x, max 1.00x; >=64K "
            "median 1.00x, max 1.30x") in out
    assert doc["twins"][0]["large"]["points"] == 6
    # one run: nothing to compare
    assert report_main([runs[0], "--out", str(tmp_path / "one")]) == 0
    assert "repeatability" not in capsys.readouterr().out


def test_report_says_when_the_runs_calibrations_disagree_on_written_data(tmp_path, capsys):
    # the forwarding shift's written step (two steps less the shift) against the shift, from
    # 64 KiB: 1.5x in two runs, 5x in the third (a machine that switched speeds)
    def run(i, penalty):
        sizes = [4, 1 << 16, 1 << 20]
        crowd = [1e-6, 1e-5, 1e-4]
        meas = {"sizes": sizes, "crowd_exchange_s": crowd,
                "crowd_forward_s": [c * (1 + penalty) for c in crowd]}
        doc = {**_records(H), "model": {**CAL, "ranks": 2, "inplace": False,
                                        "measurements": meas}}
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(doc))
        return str(path)
    runs = [run(1, 1.5), run(2, 1.5), run(3, 5.0)]
    assert report_main([*runs, "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert ("# the runs' calibrations disagree on data the sender wrote: a crowd step of it "
            "from 64 KiB took 1.5x (run 1), 1.5x (run 2), 5.0x (run 3) the clean one") in out
    # within 2x of each other: nothing to say
    assert report_main([*runs[:2], run(4, 2.5), "--out", str(tmp_path / "s")]) == 0
    assert "disagree on data the sender wrote" not in capsys.readouterr().out


def test_report_warns_about_a_model_from_elsewhere(tmp_path, capsys):
    model = tmp_path / "model.json"
    write_model(model, {**CAL, "host": "there", "library": "Open MPI 5.0.11", "ranks": 4})
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_records(H)))
    assert report_main([str(path), "--model-file", str(model), "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("python -m bench report: warning: model file")
                                 for line in err)
    assert "calibrated on host 'there', not 'here'" in err[0]
    assert "calibrated under Open MPI 5.0.11, not MPICH 5.0.2" in err[1]
    assert "calibrated at 4 ranks, used here for 2" in err[2]


def test_auto_without_mpi_is_one_clear_line(tmp_path):
    fake = tmp_path / "nompi" / "mpi4py"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no MPI here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "bench", "--algorithms", "auto"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "--algorithms auto runs over MPI, and mpi4py is not installed" in lines[0]


@needs_mpi
def test_auto_beside_native_with_a_model_file(tmp_path):
    model = tmp_path / "model.json"
    write_model(model, {**CAL, "host": "elsewhere", "library": "x", "ranks": 2})
    out = tmp_path / "auto.json"
    proc = launch(2, ["-m", "bench", "--algorithms", "auto,native,ring", "-b", "8", "-e", "64K",
                      "-f", "64", "-n", "3", "-w", "1", "--model-file", str(model), "--json",
                      str(out)], timeout=120)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "warning: model file" in proc.stderr and "not 'elsewhere'" not in proc.stderr
    assert "calibrated on host 'elsewhere'" in proc.stderr
    doc = json.loads(out.read_text())
    autos = [r for r in doc["records"] if r["algorithm"] == "auto"]
    assert [r["size"] for r in autos] == [8, 512, 32768]
    assert all(r["wrong"] == 0 and r["choice"] and r["predicted_s"] > 0 for r in autos)
    # the rows say what auto chose, and it is the simulator's fastest candidate
    from bench.auto import choose

    for r in autos:
        assert r["choice"] == choose("allreduce", 2, r["size"], 4, H).label
        assert f"auto chose {r['choice']}" in proc.stdout
    assert all("auto_to_native" in s for s in doc["summary"])
    # whether auto ran the fastest fixed algorithm's schedule (only ring is fixed here: true
    # exactly where auto chose ring, or a schedule identical to it)
    from collectives.plan import movement_digest

    ring = movement_digest(build("allreduce", "ring", 2))
    for r, s in zip(autos, doc["summary"], strict=True):
        same = movement_digest(choose("allreduce", 2, r["size"], 4, H).schedule) == ring
        assert r["same_as_best"] is same and s["auto_same_as_best"] is same
    assert "auto chose the fastest fixed algorithm's schedule at " in proc.stdout


def test_the_clean_relay_is_timed_one_step_at_a_time():
    # no step of the clean relay reads what an earlier one received, so the executor would
    # start small ones together: calibrate binds it with merge_limit 0 (one transfer in flight)
    from bench.calibrate import clean_relay_schedule, relay_schedule

    relay = clean_relay_schedule(4)
    plans = [compile_plan(relay, r, 8, inplace=True) for r in range(4)]
    assert any(len(g) > 1 for plan in plans for g in step_groups(plan))
    assert all(len(g) == 1 for plan in plans for g in step_groups(plan, limit=0))
    # the written relay waits for its data anyway
    assert all(len(g) == 1 for r in range(4)
               for g in step_groups(compile_plan(relay_schedule(4), r, 8, inplace=True)))


def test_step_groups_merge_independent_small_steps_only():
    # binomial on 4 ranks: the root posts both receives of the reduce at once, and both sends
    # of the broadcast; rank 2 forwards, so its steps depend on each other
    plan0 = compile_plan(build("allreduce", "binomial", 4), 0, 8, inplace=False)
    assert [[s.index for s in g] for g in step_groups(plan0)] == [[0, 1], [2, 3]]
    plan2 = compile_plan(build("allreduce", "binomial", 4), 2, 8, inplace=False)
    assert len(step_groups(plan2)) == len(plan2.steps)
    # a ring forwards what it received: never merged; large messages: never merged
    ring = compile_plan(build("allreduce", "ring", 4), 1, 8, inplace=True)
    assert len(step_groups(ring)) == len(ring.steps)
    big = compile_plan(build("allreduce", "binomial", 4), 0, 1 << 20, inplace=False)
    assert len(step_groups(big)) == len(big.steps)


def test_host_topology():
    G = topologies.host(3, "8GB/s", "12GB/s", "1us")
    topologies.validate(G)
    assert G.graph["family"] == "host" and G.nodes[3]["capacity"] == 12e9
    with pytest.raises(ValueError, match="host: nranks must be an integer >= 1"):
        topologies.host(0, 1e9, 1e9)
    with pytest.raises(ValueError, match="host_from_model: the model lacks"):
        topologies.host_from_model({"alpha": 1e-6})


def test_auto_ties_within_the_margin_go_to_the_fewest_steps():
    from bench.auto import candidates, choose
    from sim.engine import simulate

    # 16 MiB on 4 ranks under the calibrated H: the strict fastest (margin 0) is the smallest
    # prediction of all candidates
    times = {label: simulate(s, None, 16 << 20, params=H, itemsize=4).time_s
             for label, s in candidates("allreduce", 4)}
    strict = choose("allreduce", 4, 16 << 20, 4, H, margin=0.0)
    assert strict.predicted_s == min(times.values()) and times[strict.label] == strict.predicted_s
    # every candidate tied (margin 100x): recursive doubling's log2(4) = 2 steps win
    assert len(build("allreduce", "recursive-doubling", 4).steps) == 2
    assert choose("allreduce", 4, 16 << 20, 4, H, margin=100.0).label == "recursive-doubling"
    # a tie only within the margin: the winner is never more than margin above the fastest
    pick = choose("allreduce", 4, 16 << 20, 4, H, margin=0.1)
    assert pick.predicted_s <= 1.1 * strict.predicted_s
    # among the fewest steps the faster prediction wins, whatever the count of transfers: at
    # 64 KiB under H a 25% margin ties Rabenseifner (the fastest, 4 steps, 16 transfers) with
    # the double binary tree in one segment (23% slower, 4 steps, 12 transfers) and leaves
    # recursive doubling (2 steps) out
    t64 = {label: simulate(s, None, 64 << 10, params=H, itemsize=4).time_s
           for label, s in candidates("allreduce", 4)}
    fastest = min(t64.values())
    tied = {lab for lab, t in t64.items() if t <= 1.25 * fastest}
    dbt = build("allreduce", "double-binary-tree", 4, segments=1)
    raben = build("allreduce", "rabenseifner", 4)
    assert {"rabenseifner", "double-binary-tree segments=1"} <= tied
    assert "recursive-doubling" not in tied and t64["rabenseifner"] == fastest
    assert len(dbt.steps) == len(raben.steps) == 4 and dbt.ntransfers < raben.ntransfers
    assert choose("allreduce", 4, 64 << 10, 4, H, margin=0.25).label == "rabenseifner"
    with pytest.raises(ValueError, match="margin must be a fraction >= 0"):
        choose("allreduce", 4, 8, 4, H, margin=-1.0)


def test_with_a_core_per_rank_a_mixed_step_takes_the_longer_of_its_clean_and_written_rounds():
    # the model of the test above, calibrated with a core per rank: the clean rounds of all
    # four messages (4.4 us) or the written rounds of the written ones, whichever is longer
    m = Hockney(alpha=A, beta=B, size_factors=((0.0, 1.0, 1.0),),
                crowd_factors=((0.0, 2.0, 0.5),), crowd_transfers=2,
                written_size_factors=((0.0, 1.0, 0.5),),
                written_crowd_factors=((0.0, 2.0, 0.25),), ranks_per_core=1.0)
    b = np.full(4, 1000.0)
    src, dst = [0, 0, 1, 1], [1, 1, 0, 0]
    one_each = calibrated_cost(m, A, B, b, src=src, dst=dst, written=np.array([1.0, 0, 1, 0]))
    assert one_each == pytest.approx(np.full(4, 4.4e-6))  # one written round: 4.4 us too
    # three written of four: 1.5 written rounds (4.6 us) outlast the clean ones
    three = calibrated_cost(m, A, B, b, src=src, dst=dst, written=np.array([1.0, 1, 1, 0]))
    assert three == pytest.approx(np.full(4, 4.6e-6))
    # all of one kind: the rounds of that kind, as with shared cores
    every = calibrated_cost(m, A, B, b, src=src, dst=dst, written=np.ones(4))
    assert every == pytest.approx(np.full(4, 4.8e-6))
    # ranks sharing cores (or not known, 0): the rounds add up as before
    shared = replace(m, ranks_per_core=2.0)
    got = calibrated_cost(shared, A, B, b, src=src, dst=dst, written=np.array([1.0, 0, 1, 0]))
    assert got == pytest.approx(np.array([4.7e-6, 4.5e-6, 4.7e-6, 4.5e-6]))


def test_the_reduction_wait_per_size():
    """The reducing shift at every size, less the shift and the reduction at each: a wait
    that grows with the bytes reduced, kept where the shift's buffers fit the host's cache."""
    m = _measurements()
    # sizes 4 B, 1 KiB, 64 KiB, 1 MiB: shift 3, 3.5, 20, 300 us; reduction 0.5, 0.8, 10, 200
    shifts = [5.5e-6, 5.8e-6, 40e-6, 560e-6]
    doc = fit_model(**m, reducing_shift=5.5e-6, reducing_shifts=shifts)
    got = [(s, round(w * 1e6, 6)) for s, w in doc["reduce_wait_sizes"]]
    # 1 KiB: 1.5 us, below the 2 us at 4 B: a larger reduction never waits less (envelope)
    assert got == [(4.0, 2.0), (1024.0, 2.0), (65536.0, 10.0), (1048576.0, 60.0)]
    # only up to the largest size whose shift fits the cache, and where that leaves one
    # size, none (with a note)
    cut = fit_model(**m, reducing_shift=5.5e-6, reducing_shifts=shifts,
                    reducing_shifts_fit=100000.0)
    assert [s for s, _ in cut["reduce_wait_sizes"]] == [4.0, 1024.0, 65536.0]
    assert any("up to 65536 B" in n for n in cut["notes"])
    # below it: at the size whose shift fills the cache it measures its buffers falling out
    at = fit_model(**m, reducing_shift=5.5e-6, reducing_shifts=shifts,
                   reducing_shifts_fit=65536.0)
    assert [s for s, _ in at["reduce_wait_sizes"]] == [4.0, 1024.0]
    # a size's figure is the median of it and its neighbours': a lone blip is noise (here
    # 1 KiB at 30 us), which the envelope alone would carry to 64 KiB (2, 30, 30, 60)
    blip = fit_model(**m, reducing_shift=5.5e-6,
                     reducing_shifts=[5.5e-6, 34.3e-6, 40e-6, 560e-6])
    assert [round(w * 1e6, 6) for _, w in blip["reduce_wait_sizes"]] == [2.0, 10.0, 30.0, 60.0]
    # without the 4 B harness (a core per rank: reduce_wait is not used) the rows alone
    alone = fit_model(**m, reducing_shifts=shifts)
    assert "reduce_wait" not in alone
    assert [round(w * 1e6, 6) for _, w in alone["reduce_wait_sizes"]] == [2.0, 2.0, 10.0, 60.0]
    none = fit_model(**m, reducing_shift=5.5e-6, reducing_shifts=shifts,
                     reducing_shifts_fit=0.0)
    assert "reduce_wait_sizes" not in none and any("not used" in n for n in none["notes"])
    with pytest.raises(CalibrationError, match="reducing shift"):
        fit_model(**m, reducing_shift=5.5e-6, reducing_shifts=[5.5e-6, 0.0, 40e-6, 560e-6])
    # priced: a reducing transfer of b bytes waits reduce_wait plus what the rows grow by up
    # to b (linear between rows, the last row's beyond)
    base = Hockney(**{**CAL, "reduce_wait": 2e-6})
    rows = ((4.0, 2e-6), (65536.0, 10e-6), (1048576.0, 60e-6))
    w = replace(base, reduce_wait_sizes=rows)
    src, dst, red = [1, 0], [0, 1], np.array([True, True])
    for b, grown in ((4.0, 0.0), (65536.0, 8e-6), (557056.0, 33e-6), (4 << 20, 58e-6)):
        n = np.full(2, b)
        assert (calibrated_cost(w, A, B, n, reduce=red, src=src, dst=dst)
                - calibrated_cost(base, A, B, n, reduce=red, src=src, dst=dst)
                == pytest.approx([grown, grown]))
    # only while the collective's working set fits the cache per rank, as the shift's did
    n = np.full(2, 65536.0)
    for working_set, grown in ((5e5, 8e-6), (2e6, 0.0)):
        c = replace(w, cache_per_rank=1e6, working_set=working_set)
        assert (calibrated_cost(c, A, B, n, reduce=red, src=src, dst=dst)
                - calibrated_cost(replace(base, working_set=working_set), A, B, n, reduce=red,
                                  src=src, dst=dst) == pytest.approx([grown, grown]))
    # a copy waits nothing
    assert (calibrated_cost(w, A, B, n, src=src, dst=dst)
            == pytest.approx(calibrated_cost(base, A, B, n, src=src, dst=dst)))


def test_with_a_core_per_rank_a_reduction_waits_for_the_other_reducing_ranks():
    """Where each rank had a core of its own the rows are the wait (no reduce_wait), and a
    step in which k of the N ranks reduce waits (k - 1) / (N - 1) of their growth: one rank
    reducing alone waits for no other's reduction."""
    plain = Hockney(**{**CAL, "crowd_transfers": 4, "ranks_per_core": 1.0})
    rows = ((4.0, 0.1e-6), (262144.0, 3.1e-6))
    w = replace(plain, reduce_wait_sizes=rows)
    b = 262144.0
    for dst, grown in (([0, 1, 2, 3], 3e-6), ([0, 0, 2, 2], 1e-6), ([0, 0, 0, 0], 0.0)):
        n, red = np.full(4, b), np.full(4, True)
        src = [1, 2, 3, 0]
        got = (calibrated_cost(w, A, B, n, reduce=red, src=src, dst=dst)
               - calibrated_cost(plain, A, B, n, reduce=red, src=src, dst=dst))
        assert got == pytest.approx(np.full(4, grown)), dst
    # with ranks sharing cores it is every reducing transfer's, whatever k
    shared = replace(w, ranks_per_core=2.0)
    base = replace(plain, ranks_per_core=2.0)
    n, red, src, dst = np.full(4, b), np.full(4, True), [1, 2, 3, 0], [0, 0, 0, 0]
    assert (calibrated_cost(shared, A, B, n, reduce=red, src=src, dst=dst)
            - calibrated_cost(base, A, B, n, reduce=red, src=src, dst=dst)
            == pytest.approx(np.full(4, 3e-6)))
    # but a lone reducing transfer (a binomial tree's, the other ranks idle) grows by none:
    # what idle ranks do to a lone reducer is in its own figure, reduce_one_factors
    one = np.array([b])
    assert (calibrated_cost(shared, A, B, one, reduce=[True], src=[1], dst=[0])
            == pytest.approx(calibrated_cost(base, A, B, one, reduce=[True], src=[1], dst=[0])))


@pytest.mark.parametrize("rows, message", [
    ([[4, 1e-6], [1024, -1e-6]], "finite numbers >= 0"),
    ([[1024, 1e-6], [4, 2e-6]], "increasing bytes"),
    ([[4, 1e-6, 0]], "(bytes, seconds) rows"),
])
def test_a_bad_reduce_wait_table_is_named(tmp_path, rows, message):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"alpha": 1e-6, "beta": 1e-9, "reduce_wait_sizes": rows}))
    with pytest.raises(ValueError, match=rf"reduce_wait_sizes.*{re.escape(message)}"):
        load_model_file(path)


def test_a_reduction_on_fewer_ranks_shares_the_hosts_memory_with_fewer(tmp_path):
    """The reduction on one rank alone beside every rank's at once: k reducing ranks of N on
    the line between, so a binomial tree's lone reduction is priced at the lone figure."""
    m = _measurements()
    # every rank at once 0.5, 0.8, 10, 200 us; alone: 1 KiB above the crowd's (noise)
    alone = [0.5e-6, 0.9e-6, 9e-6, 100e-6]
    doc = fit_model(**m, reduce_one=alone)
    assert any("reduction on one rank: 1 of 4 figures above" in n for n in doc["notes"])
    h = model_params("hockney", **{k: v for k, v in doc.items() if k != "notes"})
    plain = model_params("hockney", **{k: v for k, v in fit_model(**m).items()
                                       if k != "notes"})

    def reduced(params, b, dst):
        n = np.full(len(dst), float(b))
        src = [(d + 1) % 2 for d in dst]
        red = np.ones(len(dst), dtype=bool)
        return (calibrated_cost(params, params.alpha, params.beta, n, reduce=red, src=src,
                                dst=dst)
                - calibrated_cost(params, params.alpha, params.beta, n, src=src, dst=dst))
    for s, crowd, one in zip(m["sizes"], m["reduce"], [0.5e-6, 0.8e-6, 9e-6, 100e-6],
                             strict=True):
        assert reduced(h, s, [0]) == pytest.approx([one])  # one rank reduces: alone
        assert reduced(h, s, [0, 1]) == pytest.approx([crowd, crowd])  # both: N = 2 at once
        assert reduced(plain, s, [0]) == pytest.approx([crowd])  # without the table as before
    # N = 4: k reducing ranks on the line from the lone time to the crowd's
    w = Hockney(**{**CAL, "reduce_one_factors": ((0.0, 1.0, 2.0),)})
    n = np.full(4, 4096.0)
    src, dst = [1, 2, 3, 0], [0, 1, 2, 3]
    copy = calibrated_cost(w, A, B, n, src=src, dst=dst)
    for k in (1, 2, 3, 4):
        red = np.arange(4) < k
        got = calibrated_cost(w, A, B, n, reduce=red, src=src, dst=dst) - copy
        crowd, one = 1e-6 + 4096 * G, 1e-6 + 4096 * G / 2
        assert got[:k] == pytest.approx([one + (crowd - one) * (k - 1) / 3] * k)
    # the 2-rank binomial tree's one reducing step: its reduction at the lone figure
    tree = predict("allreduce", "binomial", 2, 1 << 20, params=h).time_s
    assert tree == pytest.approx(predict("allreduce", "binomial", 2, 1 << 20,
                                         params=plain).time_s - 100e-6)
    with pytest.raises(CalibrationError, match=r"reduction on one rank measurement .* 1024 B"):
        fit_model(**m, reduce_one=[0.5e-6, float("nan"), 9e-6, 100e-6])
    bad = {"alpha": 1e-6, "beta": 1e-9, "reduce_one_factors": [[0, 1, 0]]}
    path = tmp_path / "model.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="reduce_one_factors: .*bandwidth factors > 0"):
        load_model_file(path)


def test_a_reduction_beside_copying_ranks_is_priced_from_its_own_figure(tmp_path):
    """A step where one rank reduces while the others only copy (the 2-rank binomial tree
    pipelined): the reduction at the figure measured beside copies, not the lone one; each
    copying rank adds its share of the way from the lone figure to it, never beyond every
    rank's at once; fixed schedules whose steps reduce everywhere or nowhere are unchanged."""
    m = _measurements()
    alone = [0.5e-6, 0.8e-6, 9e-6, 100e-6]
    # beside copies: 0.4 us at 4 B is below the one rank's (noise, raised to it), 300 us at
    # the top above every rank's at once (lowered to it)
    beside = [0.4e-6, 0.8e-6, 9.5e-6, 300e-6]
    doc = fit_model(**m, reduce_one=alone, reduce_beside_copies=beside)
    assert any("reduction beside copies: 2 of 4 figures outside" in n for n in doc["notes"])
    h = model_params("hockney", **{k: v for k, v in doc.items() if k != "notes"})
    without = model_params("hockney", **{k: v for k, v in fit_model(**m, reduce_one=alone)
                                         .items() if k != "notes"})

    def reduction(params, b, red):
        n = np.full(2, float(b))
        src, dst = [1, 0], [0, 1]
        return (calibrated_cost(params, params.alpha, params.beta, n, reduce=red, src=src,
                                dst=dst)
                - calibrated_cost(params, params.alpha, params.beta, n, src=src, dst=dst))
    for s, crowd, one, by in zip(m["sizes"], m["reduce"], alone,
                                 [0.5e-6, 0.8e-6, 9.5e-6, 200e-6], strict=True):
        # rank 0 reduces, rank 1 copies: the figure beside copies (within its bounds)
        assert reduction(h, s, [True, False])[0] == pytest.approx(by)
        assert reduction(without, s, [True, False])[0] == pytest.approx(one)
        assert reduction(h, s, [True, True]) == pytest.approx([crowd, crowd])
    # a lone reducing transfer (the other rank idle) stays at the one rank's figure
    lone = calibrated_cost(h, h.alpha, h.beta, np.array([4096.0]), reduce=[True],
                           src=[1], dst=[0])
    assert lone == pytest.approx(calibrated_cost(without, h.alpha, h.beta, np.array([4096.0]),
                                                 reduce=[True], src=[1], dst=[0]))
    # N = 4: one rank reducing beside c copying ones, c / 3 of the way to the beside figure
    w = Hockney(**{**CAL, "reduce_one_factors": ((0.0, 1.0, 2.0),),
                   "reduce_copy_factors": ((0.0, 1.0, 1.25),)})
    one, by = 1e-6 + 4096 * G / 2, 1e-6 + 4096 * G / 1.25
    for c in (1, 2, 3):
        n = np.full(1 + c, 4096.0)
        src, dst = [(d + 1) % 4 for d in range(1 + c)], list(range(1 + c))
        red = np.arange(1 + c) == 0
        got = (calibrated_cost(w, A, B, n, reduce=red, src=src, dst=dst)
               - calibrated_cost(w, A, B, n, src=src, dst=dst))
        assert got[0] == pytest.approx(one + (by - one) * c / 3)
    # fixed 2-rank schedules never reduce beside a copy: their predictions do not move
    for alg in ("ring", "binomial", "recursive-doubling", "double-binary-tree"):
        assert (predict("allreduce", alg, 2, 1 << 22, params=h).time_s
                == predict("allreduce", alg, 2, 1 << 22, params=without).time_s)
    # the binomial tree pipelined reduces beside a copy in every middle step
    piped = pipelined(build("allreduce", "binomial", 2), 4)
    assert (simulate(piped, None, 1 << 22, params=h, itemsize=4).time_s
            > simulate(piped, None, 1 << 22, params=without, itemsize=4).time_s)
    with pytest.raises(CalibrationError, match="beside copies needs the reduction on one"):
        fit_model(**m, reduce_beside_copies=beside)
    with pytest.raises(CalibrationError, match=r"reduction beside copies measurement .* 1024 B"):
        fit_model(**m, reduce_one=alone, reduce_beside_copies=[1e-6, -1.0, 9e-6, 100e-6])
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"alpha": 1e-6, "beta": 1e-9,
                                "reduce_copy_factors": [[0, 1, 0]]}))
    with pytest.raises(ValueError, match="reduce_copy_factors: .*bandwidth factors > 0"):
        load_model_file(path)


def test_a_lone_transfer_of_data_a_reduction_wrote_has_its_own_figure():
    """The reducing relay (a chain reduce round the ranks) gives reduced_size_factors: a tree's
    lone transfer of a sum it has just reduced, priced apart from one of received data."""
    from bench.calibrate import reducing_relay_schedule, relay_reduced_times

    m = _measurements()
    lone_w = [3e-6, 3.4e-6, 20e-6, 300e-6]
    crowd_w = [4e-6, 5e-6, 30e-6, 300e-6]
    # below the clean lone figure at 4 B (raised to it), twice the written one from 64 KiB
    lone_r = [1e-6, 4e-6, 40e-6, 600e-6]
    doc = fit_model(**m, lone_written=lone_w, crowd_written=crowd_w, lone_reduced=lone_r)
    assert any("lone relay of reduced data: 1 of 4" in n for n in doc["notes"])
    h = model_params("hockney", **{k: v for k, v in doc.items() if k != "notes"})
    one, zero = np.array([1.0]), np.array([0.0])
    for s, lr, lw in zip(m["sizes"], [2e-6] + lone_r[1:], lone_w, strict=True):
        b = np.array([float(s)])
        assert calibrated_cost(h, h.alpha, h.beta, b, written=one, reduced=one)[0] == \
            pytest.approx(lr)
        # received data keeps the written relay's figure
        assert calibrated_cost(h, h.alpha, h.beta, b, written=one, reduced=zero)[0] == \
            pytest.approx(lw)
    # the 2-rank binomial tree: its second transfer sends the sum, at the reduced figure
    plain = model_params("hockney", **{k: v for k, v in fit_model(
        **m, lone_written=lone_w, crowd_written=crowd_w).items() if k != "notes"})
    tree = predict("allreduce", "binomial", 2, 1 << 20, params=h).time_s
    assert tree == pytest.approx(predict("allreduce", "binomial", 2, 1 << 20,
                                         params=plain).time_s + 300e-6)
    with pytest.raises(CalibrationError, match="reducing relay needs the written-data"):
        fit_model(**m, lone_reduced=lone_r)
    with pytest.raises(CalibrationError, match=r"lone relay of reduced data .* 1024 B"):
        fit_model(**m, lone_written=lone_w, crowd_written=crowd_w,
                  lone_reduced=[1e-6, -1.0, 1e-5, 1e-4])
    # per transfer: p times the relay's, less the root's first (clean) and p - 1 lone
    # reductions, over the p - 1 transfers of reduced data
    assert relay_reduced_times([10e-6], [3e-6], [1e-6], 4) == pytest.approx([(40 - 3 - 3) / 3
                                                                             * 1e-6])
    s = reducing_relay_schedule(4)
    assert [st.reduce.tolist() for st in s.steps] == [[True], [True], [True], [False]]
