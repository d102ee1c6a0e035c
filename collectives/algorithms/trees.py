"""Tree algorithms: binomial reduce and broadcast, NCCL's double binary tree."""

from __future__ import annotations

import numpy as np

from collectives.ir import Schedule, Step, make_step

__all__ = [
    "binomial_broadcast",
    "binomial_reduce",
    "btree_parents",
    "double_binary_tree",
    "dtree_parents",
]


def _check_root(name: str, p: int, root: int) -> None:
    if not isinstance(root, int | np.integer) or not 0 <= root < p:
        raise ValueError(f"{name}: root must be a rank in 0..{p - 1}, got {root!r}")


def binomial_reduce(nranks: int, root: int = 0) -> Schedule:
    """Binomial-tree reduce to ``root``, one chunk.

    Mirrors MPICH's ``MPIR_Reduce_intra_binomial`` (commutative case) and Open MPI's
    ``ompi_coll_base_reduce_intra_binomial`` (coll/tuned reduce algorithm 5, over its in-order
    binomial tree), unsegmented: with ``v`` the distance from the root, rank ``v`` receives from
    its children ``v + 1, v + 2, v + 4, ...`` (nearest first) and then reduces into its parent
    ``v - lowbit(v)``. So in step k every rank with ``v mod 2^(k+1) == 2^k`` reduces the whole
    vector into rank ``v - 2^k``. Differences: Open MPI pipelines segments through the tree
    (``pipelined`` does that here); MPICH, for a non-commutative op, reduces to rank 0 and
    sends to the root, which ours never does.
    Hockney cost: ``ceil(lg p) (alpha + n beta + n gamma)``.
    """
    p = nranks
    _check_root("binomial_reduce", p, root)
    v = np.arange(p)
    steps = []
    d = 1
    while d < p:
        send = v[v % (2 * d) == d]
        steps.append(make_step((send + root) % p, (send - d + root) % p, True,
                               run_start=np.zeros_like(send)))
        d *= 2
    return Schedule("reduce", "binomial", p, 1, tuple(steps), owner=(root,),
                    options=(("root", root),))


def binomial_broadcast(nranks: int, root: int = 0, order: str = "farthest-first") -> Schedule:
    """Binomial-tree broadcast from ``root``, one chunk.

    ``order="farthest-first"`` (default) mirrors MPICH's ``MPIR_Bcast_intra_binomial``: with
    ``v`` the distance from the root, rank ``v`` receives from ``v - lowbit(v)`` and sends to
    ``v + 2^j`` for ``2^j < lowbit(v)``, largest first; the root's first message goes to
    ``2^(ceil(lg p) - 1)``. That is the reduce's steps reversed, copying downwards.
    ``order="nearest-first"`` mirrors Open MPI's ``ompi_coll_base_bcast_intra_binomial``
    (coll/tuned bcast algorithm 6) over its binomial tree (``ompi_coll_base_topo_build_bmtree``):
    rank ``v`` receives from ``v`` with its highest bit cleared and sends to ``v + 1, v + 2,
    v + 4, ...`` above that bit, nearest first, so in step k every ``v < 2^k`` sends to
    ``v + 2^k``. Open MPI segments the message (``pipelined`` does that here).
    Hockney cost, either order: ``ceil(lg p) (alpha + n beta)``.
    """
    p = nranks
    _check_root("binomial_broadcast", p, root)
    if order not in ("farthest-first", "nearest-first"):
        raise ValueError(f"binomial_broadcast: unknown order {order!r}; use 'farthest-first' "
                         f"(MPICH) or 'nearest-first' (Open MPI)")
    v = np.arange(p)
    steps = []
    if order == "nearest-first":
        d = 1
        while d < p:
            send = v[(v < d) & (v + d < p)]
            steps.append(make_step((send + root) % p, (send + d + root) % p, False,
                                   run_start=np.zeros_like(send)))
            d *= 2
    else:
        d = 1 << max(p - 1, 0).bit_length() >> 1
        while d >= 1:
            send = v[(v % (2 * d) == 0) & (v + d < p)]
            steps.append(make_step((send + root) % p, (send + d + root) % p, False,
                                   run_start=np.zeros_like(send)))
            d //= 2
    return Schedule("broadcast", "binomial", p, 1, tuple(steps), owner=(root,),
                    options=(("root", root), ("order", order)))


def btree_parents(nranks: int) -> np.ndarray:
    """NCCL's binary tree over ranks (root 0): the parent of every rank, -1 for the root.

    The parent rule of NCCL's ``ncclGetBtree`` (src/graph/trees.cc).

    Rank r with lowest set bit b hangs under ``(r ^ b) | 2b``, or under ``r ^ b`` when that is
    out of range, so leaves and inner nodes alternate (every odd rank is a leaf).

    >>> btree_parents(6).tolist()
    [-1, 2, 4, 2, 0, 4]
    """
    r = np.arange(nranks)
    bit = r & -r
    up = (r ^ bit) | (bit << 1)
    up = np.where(up >= nranks, r ^ bit, up)
    up[0] = -1
    return up


def dtree_parents(nranks: int) -> tuple[np.ndarray, np.ndarray]:
    """NCCL's double binary tree: parents of the first tree and of its complement.

    The second tree mirrors the first (rank r -> p-1-r) when p is even and shifts it by one
    when p is odd, so that (almost) every inner node of one tree is a leaf of the other: NCCL's
    ``ncclGetDtree`` (src/graph/trees.cc).

    >>> [t.tolist() for t in dtree_parents(4)]
    [[-1, 2, 0, 2], [1, 3, 1, -1]]
    """
    p = nranks
    first = btree_parents(p)
    r = np.arange(p)
    if p % 2 == 0:
        up = first[p - 1 - r]
        second = np.where(up < 0, -1, p - 1 - up)
    else:
        up = first[(r - 1) % p]
        second = np.where(up < 0, -1, (up + 1) % p)
    return first, second


def _heights_depths(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = parent.shape[0]
    depth = np.full(p, -1)
    children: list[list[int]] = [[] for _ in range(p)]
    root = -1
    for r, u in enumerate(parent.tolist()):
        if u < 0:
            root = r
        else:
            children[u].append(r)
    order = [root]
    depth[root] = 0
    for node in order:  # breadth-first; grows while walking
        for c in children[node]:
            depth[c] = depth[node] + 1
            order.append(c)
    height = np.zeros(p, dtype=np.int64)
    for node in reversed(order):
        for c in children[node]:
            height[node] = max(height[node], height[c] + 1)
    return height, depth


def double_binary_tree(nranks: int) -> Schedule:
    """NCCL's double binary tree all-reduce, unsegmented: two chunks, one per tree.

    Mirrors NCCL's tree all-reduce (``ncclGetDtree`` in src/graph/trees.cc, the reduce-up then
    broadcast-down kernels), with these differences: NCCL builds the trees over nodes and runs
    a chain inside each node, where ours builds them over ranks; NCCL splits the vector
    between the trees by channel and pipelines it in chunks as data arrives, where ours gives
    each tree half the vector and, unsegmented, moves each half in lock-step by height.

    Tree t reduces chunk t up to its root (a node at height h sends in step h) and broadcasts
    it back down (a node at depth d sends in step ``H_t + d``), both trees in the same steps.
    Every rank sends each half at most twice (up once, down to at most two children), so per
    rank about ``n beta`` up and ``n beta`` down; with the trees' heights ``H = ceil(lg p)``-ish:
    ``2H alpha + 2H (n/2) beta`` unpipelined. Pipeline it with
    ``collectives.pipelined(double_binary_tree(p), segments)`` (the registry does this) for
    ``(2H + S - 1) (alpha + n/(2S) beta)``-like costs.
    """
    p = nranks
    per_step: dict[int, list[tuple[int, int, int, bool]]] = {}
    for t, parent in enumerate(dtree_parents(p)):
        if p == 1:
            break
        height, depth = _heights_depths(parent)
        H = int(height.max())
        for r in range(p):
            u = int(parent[r])
            if u >= 0:
                per_step.setdefault(int(height[r]), []).append((r, u, t, True))
                per_step.setdefault(H + int(depth[u]), []).append((u, r, t, False))
    steps: list[Step] = []
    for k in sorted(per_step):
        src, dst, chunk, red = zip(*per_step[k], strict=True)
        steps.append(make_step(src, dst, red, run_start=chunk))
    return Schedule("allreduce", "double-binary-tree", p, 2, tuple(steps))
