"""One host: its ranks' links into a shared memory node (the topology of a calibrated machine).

On one machine, ranks exchange messages through memory: each rank's link into the host's
memory node has the bandwidth one transfer gets when it is alone (``rank_bandwidth``), and the
memory node itself has a capacity (``memory_bandwidth``, bytes/s) that all transfers in flight
share. :func:`host` builds that graph (a star, like :func:`topologies.switch`, whose centre is
``kind="switch"`` with ``role="memory"`` and ``capacity``); :func:`host_from_model` takes both
figures from a model file of ``python -m bench calibrate``.

The routing of the contention model shares links, not nodes: the memory node's capacity is
recorded on the node and in ``G.graph["params"]`` for reading, what-if edits and a sharing rule
that honours node capacities; the calibrated model applies the same sharing itself (its crowd
factors, :func:`sim.models.calibrated_cost`), so predictions on the analytic network already
include it.
"""

from __future__ import annotations

import networkx as nx

from topologies.generators import _finish, _int_arg, _link_arg, _with_links
from topologies.units import parse_bandwidth

__all__ = ["host", "host_from_model"]


def host(nranks: int, rank_bandwidth, memory_bandwidth, latency=0.0) -> nx.Graph:
    """Return one host: endpoints ``0 .. nranks-1`` (the ranks) each linked to the memory node
    ``nranks``.

    Parameters
    ----------
    nranks : int
        Ranks on the host, ``>= 1``.
    rank_bandwidth : float or str
        Each rank's link (bytes/s per direction): what one transfer alone gets.
    memory_bandwidth : float or str
        The memory node's capacity (bytes/s), shared by every transfer in flight.
    latency : float or str
        Each link's latency (s); a rank-to-rank path crosses two links.

    Examples
    --------
    >>> G = host(4, "10GB/s", "16GB/s", "1us")
    >>> G.nodes[4]["role"], G.nodes[4]["capacity"], G.degree(4), G.edges[0, 4]["bandwidth"]
    ('memory', 16000000000.0, 4, 10000000000.0)
    """
    n = _int_arg("host", "nranks", nranks, 1)
    bw, lat = _link_arg("host", rank_bandwidth, latency, "rank ")
    try:
        mem = parse_bandwidth(memory_bandwidth)
    except ValueError as e:
        raise ValueError(f"host: memory_bandwidth: {e}") from None
    if not mem > 0 or not bw > 0:
        raise ValueError(f"host: rank_bandwidth and memory_bandwidth must be > 0, got "
                         f"{rank_bandwidth!r} and {memory_bandwidth!r}")
    G = nx.Graph()
    G.add_nodes_from(range(n + 1))
    G.add_edges_from((i, n) for i in range(n))
    G = _finish(_with_links(G, bw, lat), n, "host",
                {"nranks": n, "rank_bandwidth": bw, "memory_bandwidth": mem})
    G.nodes[n]["role"] = "memory"
    G.nodes[n]["capacity"] = mem
    return G


def host_from_model(model: dict, nranks: int | None = None) -> nx.Graph:
    """:func:`host` with the figures of a calibrated model (``bench calibrate``): a rank's link
    is the lone transfer's bandwidth at the largest calibrated size, the memory node's
    capacity what ``crowd_transfers`` transfers at once moved there together, the latency half
    of ``alpha`` per link.

    >>> m = {"alpha": 2e-6, "beta": 1e-10, "crowd_transfers": 4, "ranks": 4,
    ...      "measurements": {"sizes": [8, 1024], "lone_pingpong_s": [2e-6, 2.1e-6],
    ...                       "crowd_exchange_s": [3e-6, 4.096e-6]}}
    >>> G = host_from_model(m)
    >>> round(G.edges[0, 4]["bandwidth"] / 1e6), round(G.nodes[4]["capacity"] / 1e6)
    (488, 1000)
    """
    try:
        meas = model["measurements"]
        size = float(meas["sizes"][-1])
        lone = float(meas["lone_pingpong_s"][-1])
        crowd = float(meas["crowd_exchange_s"][-1])
        N = int(model["crowd_transfers"])
        alpha = float(model["alpha"])
    except (KeyError, TypeError, ValueError, IndexError):
        raise ValueError("host_from_model: the model lacks the calibration measurements; write "
                         "it with 'python -m bench calibrate --out FILE'") from None
    n = int(nranks if nranks is not None else model.get("ranks", N))
    return host(n, size / lone, N * size / crowd, alpha / 2)
