"""The one way to get a schedule by name: ``build(collective, algorithm, nranks, **options)``."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import NamedTuple

from collectives.algorithms.bruck import bruck_all_gather
from collectives.algorithms.halving_doubling import (
    rabenseifner_steps,
    recursive_doubling_all_gather,
    recursive_doubling_allreduce,
    recursive_halving_reduce_scatter,
)
from collectives.algorithms.pairwise import pairwise_reduce_scatter
from collectives.algorithms.ring import ring_all_gather, ring_reduce_scatter
from collectives.algorithms.trees import binomial_broadcast, binomial_reduce, double_binary_tree
from collectives.compose import compose, hierarchical, pipelined
from collectives.ir import Schedule

__all__ = ["LibraryAlgorithm", "algorithms", "build", "canonical_collective", "library",
           "variants"]


def ring_allreduce(nranks: int) -> Schedule:
    """Ring all-reduce = ring reduce-scatter then ring all-gather.

    Mirrors MPICH's ``MPIR_Allreduce_intra_ring`` (and its ``MPIR_Allgatherv_intra_ring``):
    rank r sends to r+1; in reduce-scatter step k it sends chunk ``r-1-k``, so it ends owning
    chunk r, and the all-gather starts with that chunk. Open MPI's
    ``ompi_coll_base_allreduce_intra_ring`` (coll/tuned allreduce algorithm 4) has the same
    direction but sends chunk ``r-k`` first (ending with chunk ``r+1``): the same bytes on the
    same links, chunks renamed. NCCL's ring all-reduce moves the same data (its ring order
    comes from the topology search). Difference: MPICH sizes chunks ``ceil(n/p)`` with a short
    last one, ours ``[c n/p, (c+1) n/p)``.

    ``2(p-1) alpha + 2(p-1)/p n beta + (p-1)/p n gamma``: bandwidth-optimal.
    """
    return compose(ring_reduce_scatter(nranks), ring_all_gather(nranks), algorithm="ring")


def rabenseifner_allreduce(nranks: int, order: str = "nearest-first",
                           fold: str = "mpich") -> Schedule:
    """Rabenseifner all-reduce = recursive-halving reduce-scatter then recursive-doubling
    all-gather, both over the ``p'`` survivors of the fold.

    Mirrors MPICH's ``MPIR_Allreduce_intra_reduce_scatter_allgather`` (and SimGrid's ``rab``):
    ``order="nearest-first"`` (default) halves with partners at distance ``1, 2, ..., p'/2``,
    sending the larger share of the vector to the nearest partner (new rank i ends with block
    ``bitrev(i)``), and the all-gather mirrors it (``p'/2, ..., 1``). For p = 8, rank 0's
    partners are 1, 2, 4 then 4, 2, 1. ``order="farthest-first"`` is the other valid variant
    (``p'/2, ..., 1`` then ``1, ..., p'/2``): the largest message crosses the longest distance,
    slower wherever distant ranks sit behind thinner links.

    ``fold="mpich"`` (default): the even ranks below ``2r`` reduce their whole vector into
    rank+1 and idle; the odd ones survive. ``fold="openmpi"``: as Open MPI's
    ``ompi_coll_base_allreduce_intra_redscat_allgather`` (coll/tuned allreduce algorithm 6):
    each pair swaps halves and reduces, the odd rank hands its reduced half to the even rank,
    and the even ranks survive (one more message, half the fold's reduction).

    Differences from the libraries: chunk ``c`` is elements ``[c n/p', (c+1) n/p')`` where
    MPICH gives the first ``n mod p'`` blocks one element more, and Open MPI halves each
    window as ``floor/ceil`` elements; the schedule is the same for ``n`` a multiple of ``p'``.

    ``p = 2^k``: ``2 lg p alpha + 2(p-1)/p n beta + (p-1)/p n gamma``, either order; otherwise
    (MPICH fold) ``(2L+2) alpha + (2(p'-1)/p' + 2) n beta + (1 + (p'-1)/p') n gamma``; with
    ``fold="openmpi"`` ``(2L+3) alpha + (2(p'-1)/p' + 2) n beta + (1/2 + (p'-1)/p') n gamma``.
    """
    if fold not in ("mpich", "openmpi"):
        raise ValueError(f"rabenseifner: unknown fold {fold!r}; use 'mpich' (odd ranks "
                         f"survive) or 'openmpi' (even ranks survive, halves swapped)")
    C, steps = rabenseifner_steps(nranks, order, "odd" if fold == "mpich" else "even")
    return Schedule("allreduce", "rabenseifner", nranks, C, steps,
                    options=(("order", order), ("fold", fold)))


def binomial_allreduce(nranks: int, root: int = 0, order: str = "farthest-first") -> Schedule:
    """Binomial reduce to ``root`` then binomial broadcast from it (``order`` is the
    broadcast's: ``farthest-first`` as MPICH, ``nearest-first`` as Open MPI).

    Open MPI's ``ompi_coll_base_allreduce_intra_nonoverlapping`` (coll/tuned allreduce
    algorithm 2) is this shape: a reduce to rank 0, then a broadcast, each by whatever its own
    decision picks; MPICH's nearest is ``MPIR_Allreduce_intra_tree`` (reduce up, broadcast
    down a k-ary or k-nomial tree, pipelined in chunks), whose trees are numbered in pre-order
    (its 2-nomial root has children 1, 5, 7 at p = 8), not as this binomial tree.

    ``2 ceil(lg p)(alpha + n beta) + ceil(lg p) n gamma``.
    """
    return compose(binomial_reduce(nranks, root), binomial_broadcast(nranks, root, order),
                   algorithm="binomial")


def double_binary_tree_allreduce(nranks: int, segments: int = 8) -> Schedule:
    """NCCL's double binary tree (``ncclGetDtree``), each tree carrying half the vector,
    pipelined over ``segments`` pieces per half (see :func:`double_binary_tree`)."""
    return pipelined(double_binary_tree(nranks), segments)


def _default_group_size(p: int) -> int:
    if p % 8 == 0 and p > 8:
        return 8
    best = 1
    for d in range(1, math.isqrt(p) + 1):
        if p % d == 0:
            best = d
    return best


def hierarchical_allreduce(nranks: int, group_size: int | None = None, intra: str = "ring",
                           inter: str = "ring") -> Schedule:
    """Reduce-scatter inside groups of ``group_size`` consecutive ranks (one node), all-reduce
    across groups on the shards, all-gather inside the groups.

    This is the shape of NCCL's hierarchical (CollNet-less, multi-node) all-reduce and of
    Open MPI's coll/han reduce-scatter/allreduce/allgather path; MPICH's
    ``MPIR_Allreduce_intra_smp`` instead reduces to one leader per node, all-reduces among
    the leaders and broadcasts inside the node, which ours does not build.

    Cost ``RS_L(n) + AR_{p/L}(n/L) + AG_L(n)`` with the chosen intra and inter algorithms. The
    default group size is 8 (a GPU node) when it divides p, else the largest divisor of p at most
    ``sqrt(p)``.
    """
    L = _default_group_size(nranks) if group_size is None else group_size
    if not isinstance(L, int) or L < 1 or nranks % L:
        raise ValueError(
            f"hierarchical: group_size must be a positive divisor of nranks={nranks}, got {L!r}"
        )
    groups = [list(range(g * L, (g + 1) * L)) for g in range(nranks // L)]
    pairs = {"ring": "ring", "recursive-halving": "recursive-doubling",
             "rabenseifner": "recursive-doubling", "pairwise": "ring"}
    rs_name = "recursive-halving" if intra == "rabenseifner" else intra
    if rs_name not in pairs:
        raise ValueError(
            f"hierarchical: unknown intra algorithm {intra!r}; use one of "
            f"ring, rabenseifner, recursive-halving"
        )
    rs = build("reducescatter", rs_name, L)
    ag = build("allgather", pairs[rs_name], L)
    ar = build("allreduce", inter, nranks // L)
    return hierarchical(rs, ar, ag, groups)


_BUILDERS: dict[str, dict[str, Callable[..., Schedule]]] = {
    "allreduce": {
        "ring": ring_allreduce,
        "rabenseifner": rabenseifner_allreduce,
        "recursive-doubling": recursive_doubling_allreduce,
        "binomial": binomial_allreduce,
        "double-binary-tree": double_binary_tree_allreduce,
        "hierarchical": hierarchical_allreduce,
    },
    "reducescatter": {
        "ring": ring_reduce_scatter,
        "recursive-halving": recursive_halving_reduce_scatter,
        "pairwise": pairwise_reduce_scatter,
    },
    "allgather": {
        "ring": ring_all_gather,
        "recursive-doubling": recursive_doubling_all_gather,
        "bruck": bruck_all_gather,
    },
    "reduce": {"binomial": binomial_reduce},
    "broadcast": {"binomial": binomial_broadcast},
}

# The non-default option sets worth listing: the other library's variant of an algorithm.
_VARIANTS: dict[tuple[str, str], tuple[dict, ...]] = {
    ("allreduce", "rabenseifner"): ({"order": "farthest-first"}, {"fold": "openmpi"}),
    ("allreduce", "binomial"): ({"order": "nearest-first"},),
    ("broadcast", "binomial"): ({"order": "nearest-first"},),
}



class LibraryAlgorithm(NamedTuple):
    """Where one of our algorithms lives in MPICH, Open MPI and NCCL (None: no counterpart).

    ``mpich_cvar`` is the value of ``MPIR_CVAR_<COLL>_INTRA_ALGORITHM`` that forces it;
    ``openmpi_id`` the coll/tuned algorithm number (``coll_tuned_<coll>_algorithm``);
    ``nccl`` the ``NCCL_ALGO`` name. Read from the libraries' sources (see docs/algorithms.md).
    """

    mpich: str | None
    mpich_cvar: str | None
    openmpi: str | None
    openmpi_id: int | None
    nccl: str | None


_LIBRARY: dict[tuple[str, str], LibraryAlgorithm] = {
    ("allreduce", "ring"): LibraryAlgorithm(
        "MPIR_Allreduce_intra_ring", "ring", "ompi_coll_base_allreduce_intra_ring", 4, "Ring"),
    ("allreduce", "rabenseifner"): LibraryAlgorithm(
        "MPIR_Allreduce_intra_reduce_scatter_allgather", "reduce_scatter_allgather",
        "ompi_coll_base_allreduce_intra_redscat_allgather", 6, None),
    ("allreduce", "recursive-doubling"): LibraryAlgorithm(
        "MPIR_Allreduce_intra_recursive_doubling", "recursive_doubling",
        "ompi_coll_base_allreduce_intra_recursivedoubling", 3, None),
    ("allreduce", "binomial"): LibraryAlgorithm(
        None, None, "ompi_coll_base_allreduce_intra_nonoverlapping", 2, None),
    ("allreduce", "double-binary-tree"): LibraryAlgorithm(None, None, None, None, "Tree"),
    ("allreduce", "hierarchical"): LibraryAlgorithm(None, None, None, None, None),
    ("reducescatter", "ring"): LibraryAlgorithm(
        None, None, "ompi_coll_base_reduce_scatter_intra_ring", 3, "Ring"),
    ("reducescatter", "recursive-halving"): LibraryAlgorithm(
        "MPIR_Reduce_scatter_intra_recursive_halving", "recursive_halving",
        "ompi_coll_base_reduce_scatter_intra_basic_recursivehalving", 2, None),
    ("reducescatter", "pairwise"): LibraryAlgorithm(
        "MPIR_Reduce_scatter_intra_pairwise", "pairwise", None, None, None),
    ("allgather", "ring"): LibraryAlgorithm(
        "MPIR_Allgather_intra_ring", "ring", "ompi_coll_base_allgather_intra_ring", 4, "Ring"),
    ("allgather", "recursive-doubling"): LibraryAlgorithm(
        "MPIR_Allgather_intra_recursive_doubling", "recursive_doubling",
        "ompi_coll_base_allgather_intra_recursivedoubling", 3, None),
    ("allgather", "bruck"): LibraryAlgorithm(
        "MPIR_Allgather_intra_brucks", "brucks", "ompi_coll_base_allgather_intra_k_bruck", 2,
        None),
    ("reduce", "binomial"): LibraryAlgorithm(
        "MPIR_Reduce_intra_binomial", "binomial", "ompi_coll_base_reduce_intra_binomial", 5,
        None),
    ("broadcast", "binomial"): LibraryAlgorithm(
        "MPIR_Bcast_intra_binomial", "binomial", "ompi_coll_base_bcast_intra_binomial", 6, None),
}


def library(collective: str, algorithm: str) -> LibraryAlgorithm:
    """The MPICH / Open MPI / NCCL counterparts of ``algorithm`` (our defaults follow MPICH).

    >>> library("allreduce", "rabenseifner").openmpi_id
    6
    """
    coll = canonical_collective(collective)
    algo = str(algorithm).strip().lower().replace("_", "-")
    if (coll, algo) not in _LIBRARY:
        raise ValueError(f"unknown algorithm {algorithm!r} for {coll}; known for {coll}: "
                         f"{', '.join(_BUILDERS[coll])}")
    return _LIBRARY[coll, algo]


_ALIASES = {
    "all-reduce": "allreduce", "all_reduce": "allreduce",
    "reduce-scatter": "reducescatter", "reduce_scatter": "reducescatter",
    "all-gather": "allgather", "all_gather": "allgather",
    "bcast": "broadcast",
}


def canonical_collective(name: str) -> str:
    """``"reduce-scatter"`` -> ``"reducescatter"``; raises ValueError listing the known ones."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _BUILDERS:
        raise ValueError(
            f"unknown collective {name!r}; known: {', '.join(_BUILDERS)}"
        )
    return key


def algorithms(collective: str | None = None) -> dict[str, list[str]] | list[str]:
    """The algorithm names per collective, or for one collective.

    >>> algorithms("allgather")
    ['ring', 'recursive-doubling', 'bruck']
    """
    if collective is None:
        return {c: list(b) for c, b in _BUILDERS.items()}
    return list(_BUILDERS[canonical_collective(collective)])


def variants(collective: str, algorithm: str) -> list[dict]:
    """The option sets of ``algorithm`` worth comparing: ``{}`` (the defaults, which follow
    MPICH) first, then each other library's variant.

    >>> variants("allreduce", "rabenseifner")
    [{}, {'order': 'farthest-first'}, {'fold': 'openmpi'}]
    """
    coll = canonical_collective(collective)
    return [{}] + [dict(v) for v in _VARIANTS.get((coll, algorithm), ())]


def build(collective: str, algorithm: str, nranks: int, **options) -> Schedule:
    """Build the schedule of ``algorithm`` for ``collective`` on ``nranks`` ranks.

    >>> print(build("allreduce", "ring", 4))
    Schedule allreduce/ring: 4 ranks, 4 chunks, 6 steps, 24 transfers; busiest rank sends 6/4 of the vector in 6 messages
    """  # noqa: E501
    coll = canonical_collective(collective)
    table = _BUILDERS[coll]
    algo = str(algorithm).strip().lower().replace("_", "-")
    if algo not in table:
        where = [c for c, t in _BUILDERS.items() if algo in t]
        hint = f" ({algorithm!r} exists for {', '.join(where)})" if where else ""
        raise ValueError(
            f"unknown algorithm {algorithm!r} for {coll}{hint}; known for {coll}: "
            f"{', '.join(table)}"
        )
    if isinstance(nranks, bool) or not isinstance(nranks, int) or nranks < 1:
        raise ValueError(f"nranks must be a positive integer, got {nranks!r}")
    fn = table[algo]
    params = inspect.signature(fn).parameters
    unknown = [k for k in options if k not in params or k == "nranks"]
    if unknown:
        accepted = [k for k in params if k != "nranks"]
        raise ValueError(
            f"{coll}/{algo} takes no option {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(accepted) or 'none'}"
        )
    return fn(nranks, **options)
