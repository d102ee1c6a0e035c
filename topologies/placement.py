"""Rank placement: which endpoint each rank sits on, and which ranks share a server."""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import networkx as nx
import numpy as np

from .io import node_kinds, sorted_nodes

__all__ = ["endpoints", "groups", "place"]

_FORMS = "'linear', 'round-robin' (or 'spread'), 'random:SEED', or a sequence/dict rank -> node"


def endpoints(G: nx.Graph) -> list:
    """Endpoint nodes in sorted order: rank ``r`` sits on the ``r``-th by default.

    Examples
    --------
    >>> from topologies import switch
    >>> endpoints(switch(4))
    [0, 1, 2, 3]
    """
    kinds = node_kinds(G)
    return [v for v in sorted_nodes(G) if kinds[v] == "endpoint"]


def _group_keys(G: nx.Graph, ends: list) -> list:
    """Group of each endpoint: its ``server`` attribute if it has one, else its lowest
    switch neighbour (the edge/leaf switch or router it hangs off), else itself."""
    kinds = node_kinds(G)
    keys = []
    for v in ends:
        server = G.nodes[v].get("server")
        if server is not None:
            keys.append(("server", server))
            continue
        switches = sorted_nodes(u for u in G[v] if kinds[u] == "switch")
        keys.append(("switch", switches[0]) if switches else ("node", v))
    return keys


def place(G: nx.Graph, nranks: int, placement=None) -> np.ndarray:
    """Return the endpoint node of each rank (an array indexed by rank).

    Parameters
    ----------
    G : networkx.Graph
        A topology.
    nranks : int
        Number of ranks, at most the number of endpoints.
    placement : str, sequence or dict, optional
        ``None`` or ``"linear"``: rank ``r`` on the ``r``-th endpoint in sorted order.
        ``"round-robin"`` or ``"spread"``: deal ranks across servers (``server`` attribute) or,
        without one, across the switches endpoints hang off: rank 0 on the first endpoint of
        the first group, rank 1 on the first of the second group, and so on, wrapping around.
        ``"random:SEED"`` (or ``"random"``, seed 0): a seeded random choice of endpoints.
        A sequence of nodes (rank ``r`` on ``placement[r]``) or a dict ``{rank: node}``.

    Returns
    -------
    numpy.ndarray
        Node labels, one per rank (integers for the generators' graphs).

    Examples
    --------
    >>> from topologies import gpu_cluster
    >>> G = gpu_cluster(nodes=4, gpus_per_node=2)
    >>> place(G, 4).tolist(), place(G, 4, "spread").tolist()
    ([0, 1, 2, 3], [0, 2, 4, 6])
    """
    if isinstance(nranks, bool) or not isinstance(nranks, numbers.Integral) or nranks < 1:
        raise ValueError(f"place: nranks must be an integer >= 1, got {nranks!r}")
    ends = endpoints(G)
    if nranks > len(ends):
        raise ValueError(
            f"place: {nranks} ranks but the topology has only {len(ends)} endpoints; "
            "use a larger topology"
        )
    if placement is None or isinstance(placement, str):
        mode = "linear" if placement is None else placement.strip().lower()
        if mode == "linear":
            nodes = ends[:nranks]
        elif mode in ("round-robin", "roundrobin", "spread"):
            keys = _group_keys(G, ends)
            first, seen = {}, {}
            for i, key in enumerate(keys):
                first.setdefault(key, len(first))
                seen[key] = seen.get(key, -1) + 1
                keys[i] = (seen[key], first[key], i)
            nodes = [ends[i] for _, _, i in sorted(keys)[:nranks]]
        elif mode == "random" or mode.startswith("random:"):
            try:
                seed = int(mode.partition(":")[2] or 0)
            except ValueError:
                raise ValueError(
                    f"place: bad seed in {placement!r}; use e.g. 'random:42'"
                ) from None
            perm = np.random.default_rng(seed).permutation(len(ends))[:nranks]
            nodes = [ends[i] for i in perm]
        else:
            raise ValueError(f"place: unknown placement {placement!r}; use {_FORMS}")
    else:
        if isinstance(placement, Mapping):
            if sorted(placement) != list(range(nranks)):
                raise ValueError(
                    f"place: a placement dict must map every rank 0..{nranks - 1} to a node, "
                    f"got keys {sorted(placement)[:8]}..."
                )
            nodes = [placement[r] for r in range(nranks)]
        else:
            nodes = list(np.asarray(placement).tolist()) if isinstance(
                placement, np.ndarray) else list(placement)
            if len(nodes) != nranks:
                raise ValueError(
                    f"place: placement lists {len(nodes)} nodes for {nranks} ranks; give one "
                    "node per rank"
                )
        is_end = set(ends)
        owner = {}
        for r, v in enumerate(nodes):
            if v not in is_end:
                what = "not a node" if v not in G else f"a {G.nodes[v].get('kind')}"
                raise ValueError(
                    f"place: rank {r} placed on {v!r}, which is {what}; ranks sit on endpoints"
                )
            if v in owner:
                raise ValueError(
                    f"place: ranks {owner[v]} and {r} both placed on node {v!r}; one rank per "
                    "endpoint"
                )
            owner[v] = r
    return np.asarray(nodes)


def groups(G: nx.Graph, nranks: int | None = None, placement=None) -> list[list[int]]:
    """Ranks grouped by server (``gpu_cluster``) or by the switch their endpoint hangs off
    (``fat_tree``: edge switch; ``dragonfly``: router; ``switch``: all in one).

    Endpoints without a switch (``ring``, ``torus``, ``fully_connected``) are groups of one.
    Groups are listed by their lowest rank, ranks in increasing order; use them to build
    hierarchical schedules.

    Parameters
    ----------
    G : networkx.Graph
        A topology.
    nranks : int, optional
        Number of ranks (default: one per endpoint).
    placement : optional
        As for :func:`place`.

    Examples
    --------
    >>> from topologies import gpu_cluster
    >>> groups(gpu_cluster(nodes=3, gpus_per_node=2))
    [[0, 1], [2, 3], [4, 5]]
    >>> groups(gpu_cluster(nodes=3, gpus_per_node=2), 4, "spread")
    [[0, 3], [1], [2]]
    """
    ends = endpoints(G)
    if nranks is None:
        nranks = len(ends)
    nodes = place(G, nranks, placement).tolist()
    key_of = dict(zip(ends, _group_keys(G, ends), strict=True))
    out: dict = {}
    for r, v in enumerate(nodes):
        out.setdefault(key_of[v], []).append(r)
    return list(out.values())
