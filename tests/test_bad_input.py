"""Bad input gets a clear ValueError naming the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from collectives import Schedule, build, execute, make_step


@pytest.mark.parametrize("p", [0, -1, -8])
def test_non_positive_rank_counts(p):
    with pytest.raises(ValueError, match="nranks must be a positive integer"):
        build("allreduce", "ring", p)


@pytest.mark.parametrize("p", [2.5, "8", True, None])
def test_non_integer_rank_counts(p):
    with pytest.raises(ValueError, match="nranks must be a positive integer"):
        build("allreduce", "ring", p)


def test_unknown_collective_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown collective 'alltoall'.*allreduce.*allgather"):
        build("alltoall", "ring", 4)


def test_unknown_algorithm_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown algorithm 'magic'.*ring.*rabenseifner"):
        build("allreduce", "magic", 4)


def test_algorithm_of_another_collective_says_where_it_exists():
    with pytest.raises(ValueError, match="'bruck' exists for allgather"):
        build("allreduce", "bruck", 4)
    with pytest.raises(ValueError, match="recursive-halving.*reducescatter"):
        build("allgather", "recursive-halving", 4)


def test_aliases_and_case():
    assert build("Reduce-Scatter", "RING", 3).collective == "reducescatter"
    assert build("all_gather", "recursive_doubling", 3).algorithm == "recursive-doubling"


def test_unknown_option_lists_accepted_ones():
    with pytest.raises(ValueError, match="takes no option 'segmets'.*segments"):
        build("allreduce", "double-binary-tree", 4, segmets=3)
    with pytest.raises(ValueError, match="root must be a rank in 0..3"):
        build("reduce", "binomial", 4, root=4)


def test_schedule_validates_its_declaration():
    with pytest.raises(ValueError, match="unknown collective"):
        Schedule("gossip", "x", 2, 1, ())
    with pytest.raises(ValueError, match="needs an owner for each of its 2 chunks"):
        Schedule("reducescatter", "x", 2, 2, (), owner=(0,))
    with pytest.raises(ValueError, match="at least one rank"):
        Schedule("allreduce", "x", 0, 1, ())
    with pytest.raises(ValueError, match="one entry per transfer"):
        make_step([0, 1], [1], True, run_start=[0, 0])


def test_execute_rejects_mismatched_inputs():
    s = build("allreduce", "ring", 3)
    with pytest.raises(ValueError, match="3 ranks but 2 inputs"):
        execute(s, [np.zeros(4)] * 2)
    with pytest.raises(ValueError, match="rank 1's input has 5 elements"):
        execute(s, [np.zeros(4), np.zeros(5), np.zeros(4)])
    with pytest.raises(ValueError, match="rank 2's input is int64 but rank 0's is float64"):
        execute(s, [np.zeros(4), np.zeros(4), np.zeros(4, dtype=np.int64)])
    with pytest.raises(ValueError, match="unknown reduction 'avg'"):
        execute(s, [np.zeros(4)] * 3, op="avg")
    with pytest.raises(ValueError, match="one-dimensional"):
        execute(s, [np.zeros((2, 2))] * 3)
    ag = build("allgather", "ring", 3)
    with pytest.raises(ValueError, match="all-gather block has 2 elements"):
        execute(ag, [np.zeros(1), np.zeros(2), np.zeros(1)])
