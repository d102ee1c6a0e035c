"""Which algorithm of ours is which algorithm of MPICH, Open MPI and NCCL.

Each library's table lists every algorithm that library runs for the collective, in the
library's own names and ids (from its sources: Open MPI 5.0.x ``coll_tuned_<coll>_decision.c``,
MPICH ``src/mpi/coll/coll_algorithms.txt`` and ``csel_container.c``, NCCL
``src/include/nccl_common.h`` and the example tuner plugin), each with the name of our
algorithm that moves the same data in the same order, or ``None`` where we model none.
An algorithm of ours that is in no row is no candidate for that library.

Restrictions that a library enforces itself (a power-of-two rank count for MPICH's recursive
doubling all-gather; Open MPI's recursive doubling all-gather silently running Bruck on other
rank counts) are in ``pow2_only``: such a row is no candidate for other rank counts.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LIBRARIES", "LibraryAlgorithm", "candidates", "library_algorithms", "unmodelled"]

#: library key -> what the user sees
LIBRARIES = {
    "openmpi": "Open MPI 5.0.x coll/tuned",
    "mpich": "MPICH 4.x/5.x collective selection (csel)",
    "nccl": "NCCL (example tuner plugin, NCCL_ALGO)",
}


@dataclass(frozen=True)
class LibraryAlgorithm:
    """One algorithm of a library: its id (Open MPI: the integer; MPICH: the function name;
    NCCL: the lowercase algorithm name), its short name, and ours (``None``: not modelled)."""

    library: str
    collective: str
    ident: int | str
    name: str
    ours: str | None
    pow2_only: bool = False

    @property
    def label(self) -> str:
        """``4 ring`` (Open MPI), ``MPIR_Allreduce_intra_ring`` (MPICH), ``ring`` (NCCL)."""
        return f"{self.ident} {self.name}" if self.library == "openmpi" else str(self.ident)


def _ompi(coll: str, rows) -> list[LibraryAlgorithm]:
    return [LibraryAlgorithm("openmpi", coll, i, n, o, p) for i, n, o, p in rows]


def _mpich(coll: str, prefix: str, rows) -> list[LibraryAlgorithm]:
    return [LibraryAlgorithm("mpich", coll, f"{prefix}_{n}", n, o, p) for n, o, p in rows]


def _nccl(coll: str, rows) -> list[LibraryAlgorithm]:
    return [LibraryAlgorithm("nccl", coll, n, n, o) for n, o in rows]


# src/graph/tuning.cc: all-reduce runs every algorithm but PAT; all-gather and reduce-scatter
# only ring, PAT, NVLS and CollNet Direct
_NCCL_ALLREDUCE_UNMODELLED = ("collnet_direct", "collnet_chain", "nvls", "nvls_tree")
_NCCL_GATHER_UNMODELLED = ("collnet_direct", "nvls", "pat")

_TABLE: dict[str, dict[str, list[LibraryAlgorithm]]] = {
    "openmpi": {
        # coll_tuned_allreduce_decision.c: allreduce_algorithms[]
        "allreduce": _ompi("allreduce", [
            (1, "basic_linear", None, False),
            (2, "nonoverlapping", None, False),
            (3, "recursive_doubling", "recursive-doubling", False),
            (4, "ring", "ring", False),
            (5, "segmented_ring", None, False),
            (6, "rabenseifner", "rabenseifner", False),
        ]),
        # coll_tuned_reduce_scatter_decision.c: reduce_scatter_algorithms[]
        "reducescatter": _ompi("reducescatter", [
            (1, "non-overlapping", None, False),
            (2, "recursive_halving", "recursive-halving", False),
            (3, "ring", "ring", False),
            (4, "butterfly", None, False),
        ]),
        # coll_tuned_allgather_decision.c: allgather_algorithms[]; recursive doubling runs
        # Bruck on a non-power-of-two communicator (coll_base_allgather.c)
        "allgather": _ompi("allgather", [
            (1, "linear", None, False),
            (2, "bruck", "bruck", False),
            (3, "recursive_doubling", "recursive-doubling", True),
            (4, "ring", "ring", False),
            (5, "neighbor", None, False),
            (6, "two_proc", None, False),
            (7, "sparbit", None, False),
        ]),
    },
    "mpich": {
        # coll_algorithms.txt, allreduce-intra
        "allreduce": _mpich("allreduce", "MPIR_Allreduce_intra", [
            ("smp", None, False),
            ("recursive_doubling", "recursive-doubling", False),
            ("recursive_multiplying", None, False),
            ("reduce_scatter_allgather", "rabenseifner", False),
            ("tree", None, False),
            ("recexch", None, False),
            ("ring", "ring", False),
            ("k_reduce_scatter_allgather", None, False),
            ("ccl", None, False),
        ]),
        # reduce_scatter-intra: MPICH has no ring reduce-scatter
        "reducescatter": _mpich("reducescatter", "MPIR_Reduce_scatter_intra", [
            ("noncommutative", None, False),
            ("pairwise", "pairwise", False),
            ("recursive_doubling", None, False),
            ("recursive_halving", "recursive-halving", False),
        ]),
        # allgather-intra; recursive_doubling: "restrictions: power-of-two"
        "allgather": _mpich("allgather", "MPIR_Allgather_intra", [
            ("brucks", "bruck", False),
            ("k_brucks", None, False),
            ("recursive_doubling", "recursive-doubling", True),
            ("ring", "ring", False),
            ("recexch_doubling", None, False),
            ("recexch_halving", None, False),
        ]),
    },
    "nccl": {
        "allreduce": _nccl("allreduce", [("ring", "ring"), ("tree", "double-binary-tree")]
                           + [(n, None) for n in _NCCL_ALLREDUCE_UNMODELLED]),
        "reducescatter": _nccl("reducescatter", [("ring", "ring")]
                               + [(n, None) for n in _NCCL_GATHER_UNMODELLED]),
        "allgather": _nccl("allgather", [("ring", "ring")]
                           + [(n, None) for n in _NCCL_GATHER_UNMODELLED]),
    },
}


def _check(library: str, collective: str) -> list[LibraryAlgorithm]:
    if library not in _TABLE:
        raise ValueError(f"unknown library {library!r}; known: {', '.join(_TABLE)}")
    if collective not in _TABLE[library]:
        raise ValueError(f"{LIBRARIES[library]}: no tuning table for {collective!r}; use "
                         f"{', '.join(_TABLE[library])}")
    return _TABLE[library][collective]


def library_algorithms(library: str, collective: str) -> list[LibraryAlgorithm]:
    """Every algorithm ``library`` runs for ``collective`` (modelled or not).

    >>> [a.label for a in library_algorithms("openmpi", "allreduce")][:3]
    ['1 basic_linear', '2 nonoverlapping', '3 recursive_doubling']
    """
    return list(_check(library, collective))


def candidates(library: str, collective: str, ranks: int) -> dict[str, LibraryAlgorithm]:
    """Our algorithm name -> the library's algorithm, for those the library runs at ``ranks``.

    >>> sorted(candidates("mpich", "allgather", 6))
    ['bruck', 'ring']
    """
    pow2 = ranks > 0 and ranks & (ranks - 1) == 0
    return {a.ours: a for a in _check(library, collective)
            if a.ours is not None and (pow2 or not a.pow2_only)}


def unmodelled(library: str, collective: str) -> list[LibraryAlgorithm]:
    """The library's algorithms for ``collective`` that we do not model."""
    return [a for a in _check(library, collective) if a.ours is None]
