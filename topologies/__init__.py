"""Network topologies for collective communication: generators, placement, files, routing.

A topology is an ``nx.Graph`` whose nodes are endpoints (``kind="endpoint"``: where ranks sit)
and switches (``kind="switch"``), and whose edges are full-duplex links with ``bandwidth``
(bytes/s per direction) and ``latency`` (seconds). :func:`compile_network` turns one into the
integer-indexed, vectorised form the simulator routes on, under a routing policy
(:data:`POLICIES`; docs/routing.md).

>>> from topologies import compile_network, fat_tree, place
>>> G = fat_tree(4)
>>> net = compile_network(G)
>>> ranks = net.index_of(place(G, 16))
>>> ptr, links = net.routes(ranks, (ranks + 1) % 16)
>>> int(ptr[-1])
56
"""

from . import whatif  # noqa: F401  (degrade, fail_links, cut_off_ranks: what-if graphs)
from .generators import (
    DEFAULT_BANDWIDTH,
    DEFAULT_LATENCY,
    dragonfly,
    fat_tree,
    fully_connected,
    gpu_cluster,
    ring,
    switch,
    torus,
)
from .host import host, host_from_model
from .io import load, save, validate
from .network import POLICIES, Network, compile_network
from .placement import endpoints, groups, place
from .units import (
    format_bandwidth,
    format_bytes,
    format_time,
    parse_bandwidth,
    parse_bytes,
    parse_time,
)

__all__ = [
    "DEFAULT_BANDWIDTH",
    "DEFAULT_LATENCY",
    "POLICIES",
    "Network",
    "compile_network",
    "dragonfly",
    "endpoints",
    "fat_tree",
    "format_bandwidth",
    "format_bytes",
    "format_time",
    "fully_connected",
    "gpu_cluster",
    "groups",
    "host",
    "host_from_model",
    "load",
    "parse_bandwidth",
    "parse_bytes",
    "parse_time",
    "place",
    "ring",
    "save",
    "switch",
    "torus",
    "validate",
]
