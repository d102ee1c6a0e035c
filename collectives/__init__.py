"""collectives: composable collective-communication schedules and their engines.

>>> import collectives
>>> s = collectives.build("allreduce", "ring", 8)
>>> collectives.verify(s).nranks
8
"""

from collectives.algorithms.bruck import bruck_all_gather
from collectives.algorithms.halving_doubling import (
    recursive_doubling_all_gather,
    recursive_doubling_allreduce,
    recursive_halving_reduce_scatter,
)
from collectives.algorithms.pairwise import pairwise_reduce_scatter
from collectives.algorithms.ring import ring_all_gather, ring_reduce_scatter
from collectives.algorithms.trees import (
    binomial_broadcast,
    binomial_reduce,
    double_binary_tree,
)
from collectives.compose import compose, hierarchical, pipelined
from collectives.ir import (
    COLLECTIVES,
    Condition,
    Op,
    Schedule,
    ScheduleError,
    Step,
    Transfer,
    chunk_bounds,
    make_step,
)
from collectives.numpy_executor import REDUCE_OPS, execute
from collectives.registry import (
    LibraryAlgorithm,
    algorithms,
    binomial_allreduce,
    build,
    canonical_collective,
    double_binary_tree_allreduce,
    hierarchical_allreduce,
    library,
    rabenseifner_allreduce,
    ring_allreduce,
    variants,
)
from collectives.verify import verify

__all__ = [
    "COLLECTIVES",
    "REDUCE_OPS",
    "Condition",
    "LibraryAlgorithm",
    "Op",
    "Schedule",
    "ScheduleError",
    "Step",
    "Transfer",
    "algorithms",
    "binomial_allreduce",
    "binomial_broadcast",
    "binomial_reduce",
    "bruck_all_gather",
    "build",
    "canonical_collective",
    "chunk_bounds",
    "compose",
    "double_binary_tree",
    "double_binary_tree_allreduce",
    "execute",
    "hierarchical",
    "hierarchical_allreduce",
    "library",
    "make_step",
    "pairwise_reduce_scatter",
    "pipelined",
    "rabenseifner_allreduce",
    "recursive_doubling_all_gather",
    "recursive_doubling_allreduce",
    "recursive_halving_reduce_scatter",
    "ring_all_gather",
    "ring_allreduce",
    "ring_reduce_scatter",
    "variants",
    "verify",
]

# Real-process engines, imported on first use so that ``import collectives`` never loads
# mpi4py or CuPy: ``collectives.run_mpi(schedule, sendbuf, recvbuf)`` and friends.
_LAZY = {
    "run_mpi": ("collectives.mpi_executor", "run"),
    "prepare_mpi": ("collectives.mpi_executor", "prepare"),
    "run_nccl": ("collectives.nccl_executor", "run"),
    "compile_plan": ("collectives.plan", "compile_plan"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'collectives' has no attribute {name!r}")
