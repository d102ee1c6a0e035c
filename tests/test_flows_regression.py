"""The optimised event loop of :mod:`sim.flows` gives exactly (bit for bit) the start and end
times of the loop it replaced (kept in tests/flows_reference.py), on schedules that exercise
every phase: latency, re-sharing, reductions, late arrivals, multipath shares and rtt weights."""

from __future__ import annotations

import numpy as np
import pytest
from flows_reference import simulate_flows as reference_simulate_flows

import sim.engine as E
import sim.fastpath as FP
from collectives import build
from sim import Contention, simulate
from sim.api import make_topology
from topologies import fat_tree, torus

_CASES = [("allreduce", "rabenseifner"), ("allreduce", "ring"), ("allreduce", "binomial"),
          ("allreduce", "double-binary-tree"), ("allreduce", "hierarchical"),
          ("reducescatter", "recursive-halving"), ("allgather", "bruck")]


def _both(monkeypatch):
    """Make the flow path run both loops; return the list of (new, reference) results."""
    got = []
    real = E.simulate_flows

    def twice(*a, **k):
        new = real(*a, **k)
        got.append((new, reference_simulate_flows(*a, **k)))
        return new

    monkeypatch.setattr(E, "simulate_flows", twice)
    monkeypatch.setattr(FP.ExactCheck, "step", lambda *a: False)  # always the flow path
    return got


@pytest.mark.parametrize("topo", ["fat-tree 2:1", "fat-tree", "torus", "gpu-cluster"])
def test_event_loop_matches_the_reference_bit_for_bit(topo, monkeypatch):
    G = {"fat-tree 2:1": fat_tree(4, oversubscription=2), "fat-tree": make_topology("fat-tree", 54),
         "torus": torus((4, 4)), "gpu-cluster": make_topology("gpu-cluster", 16)}[topo]
    p_list = (12, 54) if topo == "fat-tree" else (6, 16)
    got = _both(monkeypatch)
    for coll, algo in _CASES:
        for p in p_list:
            for n, sharing, arrival in ((1 << 20, "fair", None), (1_000_003, "rtt", None),
                                        (1 << 20, "fair", {1: 3e-6, 4: 1e-5})):
                simulate(build(coll, algo, p), G, n, Contention(gamma=1e-10, sharing=sharing),
                         arrival=arrival)
    if topo.startswith("fat-tree"):  # multipath: flows with shares
        for p in p_list:
            simulate(build("allreduce", "rabenseifner", p), G, 1 << 20, Contention(),
                     routing="spread")
    assert len(got) > 20
    for new, ref in got:
        for a, b in zip(new, ref, strict=True):  # start, end, finish
            assert np.array_equal(a, b, equal_nan=True)


def test_event_loop_matches_the_reference_at_scale(monkeypatch):
    # 256 ranks under hashed ECMP: many components of many sizes, events at equal times
    got = _both(monkeypatch)
    r = simulate(build("allreduce", "rabenseifner", 256), make_topology("fat-tree", 256),
                 1 << 30, Contention())
    assert r.path == "flow"
    (new, ref), = got
    for a, b in zip(new, ref, strict=True):
        assert np.array_equal(a, b, equal_nan=True)
