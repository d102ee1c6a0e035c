"""Peer comparison with SimGrid SMPI: one collective on one network, timed by SimGrid and by us.

``python -m bench.peer_simgrid`` (no arguments) runs a fixed list of scenarios; with
``--collective/--algorithm/--ranks/--bytes/--topology`` it runs one. Each scenario is

1. exported as a SimGrid platform (:func:`platform_xml`): one host per rank, one link per
   directed link of our compiled network (so full-duplex links are two independent links and
   a link that both directions share stays one), and an explicit route for every ordered pair
   of ranks listing exactly the links our routing chose, so that both simulators route alike;
2. run under ``smpirun`` with a small C program (:data:`C_PROGRAM`, compiled with ``smpicc``
   into a temporary directory) that times one call of ``MPI_Allreduce``,
   ``MPI_Reduce_scatter_block`` or ``MPI_Allgather``, all ranks starting at the same simulated
   instant, under the SMPI algorithm that moves what our schedule moves
   (:func:`smpi_algorithm`) and a configuration that gives SimGrid our flow-level semantics
   (:func:`smpi_config`);
3. simulated by us on the same compiled network with the contention model (every sharing
   mode the installed simulator offers), and the times compared.

This module owns the export, the SMPI side and the comparison table; it reads the simulator
and the topologies and changes nothing in them. Nothing here runs in ``make test`` beyond
``tests/test_peer_simgrid.py`` (which skips its SimGrid runs where ``smpirun`` is missing).
See ``docs/simgrid.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import networkx as nx
import numpy as np

__all__ = [
    "C_PROGRAM",
    "Comparison",
    "PeerError",
    "SmpiChoice",
    "default_scenarios",
    "main",
    "mixed_latency_tree",
    "ours_sharing_modes",
    "ours_time",
    "platform_xml",
    "rank_routes",
    "run_scenario",
    "smpi_algorithm",
    "smpi_available",
    "smpi_config",
    "smpi_time",
    "two_level_tree",
]


class PeerError(ValueError):
    """A scenario that cannot be compared (bad input, no SMPI equivalent, SMPI failed)."""


# --------------------------------------------------------------------------- the C program

#: The MPI program SMPI runs: ``coll COLLECTIVE COUNT ITERATIONS`` on MPI_FLOAT (COUNT floats
#: of the full vector; reduce-scatter and all-gather move COUNT / p per rank). Each iteration
#: aligns every rank on one simulated instant (barrier, the latest clock, a sleep up to a
#: common start) so that, as in our simulator, all ranks start together; it prints
#: ``PEER_TIME`` = the smallest over iterations of (last rank's end - first rank's start).
C_PROGRAM = r"""
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, p;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &p);
  if (argc != 4) {
    if (rank == 0) fprintf(stderr, "usage: coll allreduce|reducescatter|allgather COUNT ITERS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const char *coll = argv[1];
  long count = atol(argv[2]);
  int iters = atoi(argv[3]);
  /* shared: SMPI keeps one copy for all ranks and skips copying it (values do not matter) */
  float *sbuf = SMPI_SHARED_MALLOC(count * sizeof(float));
  float *rbuf = SMPI_SHARED_MALLOC(count * sizeof(float));
  double best = 1e300;
  for (int it = 0; it < iters; it++) {
    double now, latest, end, begin;
    MPI_Barrier(MPI_COMM_WORLD);
    now = MPI_Wtime();
    MPI_Allreduce(&now, &latest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    double wait = latest + 1e-3 - MPI_Wtime();  /* 1 ms: more than any rank's skew */
    if (wait > 0) {
      struct timespec ts;
      ts.tv_sec = (time_t)wait;
      ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
      nanosleep(&ts, NULL);
    }
    double t0 = MPI_Wtime();
    if (!strcmp(coll, "allreduce"))
      MPI_Allreduce(sbuf, rbuf, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    else if (!strcmp(coll, "reducescatter"))
      MPI_Reduce_scatter_block(sbuf, rbuf, (int)(count / p), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    else
      MPI_Allgather(sbuf, (int)(count / p), MPI_FLOAT, rbuf, (int)(count / p), MPI_FLOAT,
                    MPI_COMM_WORLD);
    double t1 = MPI_Wtime();
    MPI_Reduce(&t1, &end, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&t0, &begin, 1, MPI_DOUBLE, MPI_MIN, 0, MPI_COMM_WORLD);
    if (rank == 0 && end - begin < best) best = end - begin;
  }
  if (rank == 0) printf("PEER_TIME %.17g\n", best);
  SMPI_SHARED_FREE(sbuf);
  SMPI_SHARED_FREE(rbuf);
  MPI_Finalize();
  return 0;
}
"""

#: Bytes per element of the program's MPI_FLOAT vectors (our ``itemsize``).
ITEMSIZE = 4


def smpi_available() -> bool:
    """Whether ``smpirun`` and ``smpicc`` are on ``PATH``."""
    return shutil.which("smpirun") is not None and shutil.which("smpicc") is not None


def _compile(directory: Path) -> Path:
    """The C program compiled with ``smpicc`` in ``directory``; raises PeerError if it fails."""
    src = directory / "peer_coll.c"
    exe = directory / "peer_coll"
    src.write_text(C_PROGRAM)
    proc = subprocess.run(["smpicc", "-O2", "-o", str(exe), str(src)], capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PeerError(f"smpicc failed to compile the peer program: {tail[0]}")
    return exe


# --------------------------------------------------------------------------- algorithm map

#: Our (collective, algorithm) -> the SMPI collective setting and algorithm that moves the same
#: messages in the same order. Rabenseifner and recursive halving come in two partner orders;
#: :func:`smpi_algorithm` reads the order off the schedule.
SMPI_NAMES = {
    ("allreduce", "ring"): {"allreduce": "lr"},
    ("allreduce", "recursive-doubling"): {"allreduce": "rdb"},
    ("allreduce", "rabenseifner", "nearest-first"): {"allreduce": "rab_rdb"},
    ("allreduce", "rabenseifner", "farthest-first"): {"allreduce": "rab1", "allgather": "rdb"},
    ("reducescatter", "ring"): {"reduce_scatter": "ompi_ring"},
    ("reducescatter", "pairwise"): {"reduce_scatter": "mpich_pair"},
    ("reducescatter", "recursive-halving", "nearest-first"): {"reduce_scatter": "mpich_noncomm"},
    ("reducescatter", "recursive-halving", "farthest-first"):
        {"reduce_scatter": "ompi_basic_recursivehalving"},
    ("allgather", "ring"): {"allgather": "NTSLR"},
    ("allgather", "recursive-doubling"): {"allgather": "rdb"},
    ("allgather", "bruck"): {"allgather": "bruck"},
}


@dataclass(frozen=True)
class SmpiChoice:
    """The SMPI settings for one of our schedules: ``settings`` maps an SMPI collective
    (``allreduce``, ``reduce_scatter``, ``allgather``) to an algorithm name, passed as
    ``--cfg=smpi/COLLECTIVE:NAME``; ``note`` says where the two may still differ."""

    settings: dict
    note: str = ""

    @property
    def label(self) -> str:
        """``rab1+allgather:rdb`` style: the algorithm, then any helper collective's."""
        items = list(self.settings.items())
        return "+".join([items[0][1]] + [f"{k}:{v}" for k, v in items[1:]])


def _partner_order(schedule) -> str:
    """``"nearest-first"`` or ``"farthest-first"``: the partner distance of the last rank in
    the first step where every surviving rank of the power-of-two core exchanges."""
    p = schedule.nranks
    core = 1 << (p.bit_length() - 1)
    for st in schedule.steps:
        if len(st.src) >= core:
            src, dst = np.asarray(st.src), np.asarray(st.dst)
            mine = np.flatnonzero(src == p - 1)
            if len(mine):
                return "nearest-first" if abs(int(dst[mine[0]]) - (p - 1)) == 1 \
                    else "farthest-first"
    return "nearest-first"


def smpi_algorithm(collective: str, algorithm: str, schedule) -> SmpiChoice:
    """The SMPI algorithm(s) matching our ``schedule`` of ``algorithm`` for ``collective``.

    Rabenseifner and recursive halving are matched on the partner order the schedule
    actually has (its first full exchange step): nearest-first is MPICH's order (SMPI
    ``rab_rdb``, ``mpich_noncomm``), farthest-first Open MPI's basic recursive halving (SMPI
    ``rab1`` with a recursive-doubling all-gather, ``ompi_basic_recursivehalving``). Raises
    :class:`PeerError` for an algorithm SMPI has no equivalent of.

    >>> from collectives import build
    >>> smpi_algorithm("allreduce", "ring", build("allreduce", "ring", 8)).label
    'lr'
    """
    from collectives.registry import canonical_collective

    coll = canonical_collective(collective)
    algo = str(algorithm).strip().lower().replace("_", "-")
    p = schedule.nranks
    pow2 = p & (p - 1) == 0
    note = ""
    if (coll, algo) in SMPI_NAMES:
        settings = SMPI_NAMES[coll, algo]
    else:
        order = _partner_order(schedule)
        key = (coll, algo, order)
        if key not in SMPI_NAMES:
            known = sorted({f"{c} {a}" for c, a, *_ in SMPI_NAMES})
            raise PeerError(f"no SMPI algorithm matches {coll} {algo!r}; comparable: "
                            f"{', '.join(known)}")
        settings = SMPI_NAMES[key]
        note = order
        if not pow2 and key == ("reducescatter", "recursive-halving", "nearest-first"):
            raise PeerError(f"SMPI's mpich_noncomm (nearest-first recursive halving) needs a "
                            f"power-of-two rank count, got {p}")
        fold = dict(getattr(schedule, "options", ()) or ()).get("fold", "mpich")
        if not pow2 and fold != "mpich":
            raise PeerError(f"SMPI folds {p} ranks as MPICH does (even ranks below 2r hand "
                            f"over to rank+1); this schedule folds {fold!r}")
        if not pow2 and key == ("allreduce", "rabenseifner", "farthest-first"):
            raise PeerError(f"SMPI's rab1 (farthest-first Rabenseifner) needs a power-of-two "
                            f"rank count, got {p}")
    return SmpiChoice(dict(settings), note)


# --------------------------------------------------------------------------- SMPI config

def smpi_config(sharing: str = "rtt") -> list[str]:
    """``smpirun`` flags that give SimGrid the contention model's semantics.

    CM02 flow model (``network/model:CM02``): a message is a flow that pays its route latency,
    then shares every link of its route max-min with the flows active at that moment,
    re-shared whenever one starts or ends. ``network/crosstraffic:0``: no reverse (ACK) flow
    on full-duplex links. ``network/TCP-gamma`` huge: no TCP window bound
    (``gamma / (2 latency)``) on a flow's rate. The SMPI message-size factors are 1, the
    per-message overheads 0 (their default), reductions and ``MPI_Wtime`` cost nothing
    (``smpi/simulate-computation:no``, ``smpi/wtime:0``) and every send is a rendezvous
    (``smpi/send-is-detached-thresh:0``, ``smpi/async-small-thresh:0``): a flow starts when
    both ends are there. ``network/loopback-*`` makes a rank's copy to itself free.

    ``sharing="rtt"`` keeps CM02's max-min solver, which weights a flow's share by the
    inverse of its route latency (the penalty of a flow is its latency, with
    ``network/weight-S:0``); ``sharing="fair"`` switches to the ``fairbottleneck`` solver,
    which shares per flow whatever its latency.
    """
    if sharing not in ("rtt", "fair"):
        raise PeerError(f"sharing must be 'rtt' or 'fair', got {sharing!r}")
    cfg = {
        "network/model": "CM02",
        "network/crosstraffic": "0",
        "network/TCP-gamma": "1e30",
        "network/weight-S": "0",
        "network/latency-factor": "1",
        "network/bandwidth-factor": "1",
        "network/loopback-bw": "1e30",
        "network/loopback-lat": "0",
        "smpi/bw-factor": "0:1",
        "smpi/lat-factor": "0:1",
        "smpi/simulate-computation": "no",
        "smpi/host-speed": "1Tf",
        "smpi/wtime": "0",
        "smpi/send-is-detached-thresh": "0",
        "smpi/async-small-thresh": "0",
        "smpi/privatization": "no",
        "surf/precision": "1e-12",
    }
    if sharing == "fair":
        cfg["network/solver"] = "fairbottleneck"
    return [f"--cfg={k}:{v}" for k, v in cfg.items()]


# --------------------------------------------------------------------------- platform export

def _placed(net, G, nranks: int, placement=None) -> np.ndarray:
    from topologies import place

    return net.index_of(place(G, nranks, placement))


def rank_routes(net, rank_nodes: np.ndarray) -> dict[tuple[int, int], list[int]]:
    """Our route (directed link ids, in path order) for every ordered pair of distinct ranks,
    from the compiled network's own router. Raises PeerError where ranks share a node or a
    route is not one path."""
    rank_nodes = np.asarray(rank_nodes, dtype=np.int64)
    p = len(rank_nodes)
    if len(set(rank_nodes.tolist())) < p:
        raise PeerError("two ranks share an endpoint; SimGrid needs one host per rank "
                        "(place the ranks on distinct endpoints)")
    if getattr(net, "multipath", False):
        raise PeerError(f"routing {getattr(net, 'routing', '?')!r} splits a flow over several "
                        "paths; SimGrid routes each pair on one path (use a single-path policy)")
    a, b = np.divmod(np.arange(p * p), p)
    keep = a != b
    a, b = a[keep], b[keep]
    got = net.routes(rank_nodes[a], rank_nodes[b])
    if not isinstance(got, tuple) or len(got) != 2:
        raise PeerError("this routing policy splits a flow over several paths; SimGrid routes "
                        "each pair on one path (use a single-path routing policy)")
    ptr, links = (np.asarray(x, dtype=np.int64) for x in got)
    out = {}
    for i, (s, d) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        path = links[ptr[i]:ptr[i + 1]].tolist()
        # (a half-duplex link is one id for both directions: either of its ends may lead)
        ends = (net.link_src, net.link_dst)
        if not path or rank_nodes[s] not in (e[path[0]] for e in ends) \
                or rank_nodes[d] not in (e[path[-1]] for e in ends):
            raise PeerError(f"route from rank {s} to rank {d} is not one path between their "
                            f"endpoints")
        if not float(np.sum(net.link_latency[path])) > 0:
            raise PeerError(f"route from rank {s} to rank {d} has zero latency; SimGrid's CM02 "
                            "weights a flow by its route latency, so every route needs some")
        out[s, d] = path
    return out


def _num(x: float) -> str:
    return f"{float(x):.17g}"


def platform_xml(net, rank_nodes: np.ndarray, routes: dict | None = None) -> str:
    """A SimGrid platform (XML, version 4.1) of the ranks on ``net`` (a compiled
    ``topologies.Network``; rank ``r`` on node index ``rank_nodes[r]``).

    One ``Full`` zone: host ``rank{r}`` per rank (1 Tflop/s: computation is negligible), a
    router per switch, a ``SHARED`` link ``link{i}`` per directed link ``i`` that some route
    uses (its bandwidth in bytes/s and latency in seconds), and a one-way route per ordered
    pair of ranks listing our route's links (``routes``: :func:`rank_routes`, computed when
    not given). Size: ``p (p - 1)`` routes.

    >>> from topologies import compile_network, switch
    >>> net = compile_network(switch(2))
    >>> xml = platform_xml(net, net.endpoints)
    >>> xml.count("<route "), xml.count("<link ")
    (2, 4)
    """
    if routes is None:
        routes = rank_routes(net, rank_nodes)
    used = sorted({i for path in routes.values() for i in path})
    nodes = net.nodes
    lines = [
        "<?xml version='1.0'?>",
        '<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">',
        '<platform version="4.1">',
        '<zone id="peer" routing="Full">',
    ]
    for r, node in enumerate(np.asarray(rank_nodes).tolist()):
        lines.append(f'  <host id="rank{r}" speed="1Tf"><prop id="node" '
                     f'value={quoteattr(str(nodes[node]))}/></host>')
    for v in np.flatnonzero(~net.is_endpoint).tolist():
        lines.append(f'  <router id="switch{v}"/>')
    for i in used:
        u, v = nodes[int(net.link_src[i])], nodes[int(net.link_dst[i])]
        lines.append(f'  <link id="link{i}" bandwidth="{_num(net.link_bandwidth[i])}Bps" '
                     f'latency="{_num(net.link_latency[i])}s" sharing_policy="SHARED">'
                     f'<prop id="from" value={quoteattr(str(u))}/>'
                     f'<prop id="to" value={quoteattr(str(v))}/></link>')
    for (s, d), path in sorted(routes.items()):
        ctn = "".join(f'<link_ctn id="link{i}"/>' for i in path)
        lines.append(f'  <route src="rank{s}" dst="rank{d}" symmetrical="NO">{ctn}</route>')
    lines += ["</zone>", "</platform>", ""]
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    """Write ``text`` whole (temp file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the two sides

def smpi_time(collective: str, choice: SmpiChoice, nranks: int, nbytes: int, platform: Path,
              hostfile: Path, exe: Path, *, sharing: str = "rtt", iterations: int = 1,
              timeout: float = 600.0) -> float:
    """Simulated seconds of one ``collective`` of ``nbytes`` (the full vector) on ``nranks``
    ranks under SMPI with ``choice``'s algorithm, :func:`smpi_config` ``(sharing)``.
    Raises PeerError (one line) if smpirun fails or prints no time."""
    count = nbytes // ITEMSIZE
    cmd = ["smpirun", "-np", str(nranks), "-platform", str(platform), "-hostfile",
           str(hostfile), *smpi_config(sharing),
           *[f"--cfg=smpi/{k}:{v}" for k, v in choice.settings.items()],
           "--log=root.thres:warning", str(exe), collective, str(count), str(iterations)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=exe.parent)
    except subprocess.TimeoutExpired:
        raise PeerError(f"smpirun took longer than {timeout:g} s") from None
    m = re.search(r"^PEER_TIME (\S+)$", proc.stdout, re.M)
    if proc.returncode != 0 or m is None:
        lines = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()
        raise PeerError(f"smpirun failed (status {proc.returncode}): {lines[-1]}")
    return float(m.group(1))


def ours_sharing_modes() -> list[str | None]:
    """The contention model's sharing modes in the installed simulator: ``["fair", "rtt"]``
    where ``Contention`` takes ``sharing``, else ``[None]`` (one per-step max-min model)."""
    from sim.models import Contention

    if "sharing" in {f.name for f in dataclasses.fields(Contention)}:
        return ["fair", "rtt"]
    return [None]


def ours_time(schedule, net, nbytes: int, sharing: str | None = None,
              placement=None) -> float:
    """Our contention model's time of ``schedule`` moving ``nbytes`` on the compiled network
    ``net`` (gamma 0, path latencies, link bandwidths), with ``sharing`` where it exists."""
    from sim.engine import simulate
    from sim.models import Contention

    params = Contention() if sharing is None else Contention(sharing=sharing)
    return float(simulate(schedule, net, nbytes, params, placement=placement,
                          itemsize=ITEMSIZE).time_s)


# --------------------------------------------------------------------------- scenarios

def two_level_tree(leaves: int = 4, hosts_per_leaf: int = 4, oversubscription: float = 2.0,
                   bandwidth: float | None = None, latency: float | None = None) -> nx.Graph:
    """``leaves`` leaf switches of ``hosts_per_leaf`` hosts under one spine; each uplink
    carries ``hosts_per_leaf / oversubscription`` host links' bandwidth (2:1 by default).
    A tree: every route is unique. Hosts are ``0..leaves*hosts_per_leaf-1``."""
    from topologies import DEFAULT_BANDWIDTH, DEFAULT_LATENCY

    bw = DEFAULT_BANDWIDTH if bandwidth is None else bandwidth
    lat = DEFAULT_LATENCY if latency is None else latency
    h = leaves * hosts_per_leaf
    G = nx.Graph()
    G.add_nodes_from(range(h), kind="endpoint")
    spine = h + leaves
    G.add_node(spine, kind="switch")
    up = bw * hosts_per_leaf / oversubscription
    for j in range(leaves):
        G.add_node(h + j, kind="switch")
        G.add_edge(h + j, spine, bandwidth=up, latency=lat)
        for i in range(hosts_per_leaf):
            G.add_edge(j * hosts_per_leaf + i, h + j, bandwidth=bw, latency=lat)
    return G


def mixed_latency_tree(leaves: int = 4, hosts_per_leaf: int = 4,
                       slow: float = 50e-6) -> nx.Graph:
    """:func:`two_level_tree` (2:1) where every third host (``h % 3 == 0``) has a slow NIC
    link: latency ``slow`` for even ``h``, ``2 slow`` for odd. Flows of unequal route latency
    then meet on the uplinks, the case where latency-weighted (``rtt``) and per-flow
    (``fair``) sharing part."""
    G = two_level_tree(leaves, hosts_per_leaf, 2.0)
    h = leaves * hosts_per_leaf
    for v in range(0, h, 3):
        G[v][h + v // hosts_per_leaf]["latency"] = slow * (1 + v % 2)
    return G


def _topology(name: str, nranks: int, args=None) -> tuple[nx.Graph, str]:
    """(graph, description) of a named topology, a topology file, or ``tree`` (2:1)."""
    import topologies as T
    from sim.api import TOPOLOGIES, make_topology

    get = (lambda k, d=None: getattr(args, k, d)) if args is not None else (lambda k, d=None: d)
    key = name.strip().lower().replace("_", "-")
    bw, lat = get("bandwidth"), get("latency")
    if key == "tree":
        per = get("hosts_per_leaf") or 4
        if nranks % per:
            raise PeerError(f"tree: {nranks} ranks do not fill leaves of {per} hosts")
        ratio = get("oversubscription") or 2.0
        return (two_level_tree(nranks // per, per, ratio, bw, lat),
                f"tree({nranks // per}x{per}, {ratio:g}:1)")
    if key == "mixed-tree":
        per = get("hosts_per_leaf") or 4
        if nranks % per:
            raise PeerError(f"mixed-tree: {nranks} ranks do not fill leaves of {per} hosts")
        return mixed_latency_tree(nranks // per, per), f"mixed-tree({nranks // per}x{per})"
    if key == "fully-connected":
        link = {k: v for k, v in (("bandwidth", bw), ("latency", lat)) if v is not None}
        return T.fully_connected(nranks, **link), f"fully_connected({nranks})"
    if key in TOPOLOGIES:
        over = get("oversubscription")
        G = make_topology(key, nranks, bandwidth=bw, latency=lat, k=get("k"),
                          oversubscription=1.0 if over is None else over, dims=get("dims"),
                          gpus_per_node=get("gpus_per_node") or 8)
        return G, key
    path = Path(name)
    if path.suffix.lower() in (".json", ".graphml"):
        if not path.is_file():
            raise PeerError(f"no such topology file {name!r}")
        return T.load(path), path.name
    raise PeerError(f"unknown topology {name!r}; known: tree, mixed-tree, "
                    f"{', '.join(TOPOLOGIES)}, or a .json/.graphml file")


def _compile_net(G: nx.Graph, routing: str | None):
    """``compile_network(G)``, with ``routing=`` when given (a policy name where the
    installed ``compile_network`` knows policies)."""
    from topologies import compile_network

    if routing is None:
        return compile_network(G)
    if "routing" not in inspect.signature(compile_network).parameters:
        raise PeerError("this simulator's compile_network takes no routing policy")
    return compile_network(G, routing=routing)


@dataclass(frozen=True)
class Scenario:
    """One comparison: a collective, our algorithm, ranks, bytes and a topology."""

    collective: str
    algorithm: str
    nranks: int
    nbytes: int
    topology: str
    graph: nx.Graph = field(compare=False, repr=False)
    options: dict = field(default_factory=dict, compare=False)
    smpi: SmpiChoice | None = field(default=None, compare=False)


@dataclass
class Comparison:
    """The result of one scenario: SimGrid's time per sharing mode and ours per mode."""

    scenario: Scenario
    smpi_label: str
    simgrid: dict            # "rtt" / "fair" -> seconds
    ours: dict               # our sharing mode (None: per-step model) -> seconds
    note: str = ""

    def ratio(self, mode: str | None) -> float:
        """Ours / SimGrid's for our ``mode``, against SimGrid's matching solver (``rtt``: CM02
        max-min; ``fair`` and the per-step model: fair bottleneck)."""
        ref = self.simgrid.get("rtt" if mode == "rtt" else "fair")
        if ref is None:
            ref = next(iter(self.simgrid.values()))
        return self.ours[mode] / ref

    def as_dict(self) -> dict:
        """Plain JSON-able record."""
        s = self.scenario
        return {"collective": s.collective, "algorithm": s.algorithm, "ranks": s.nranks,
                "bytes": s.nbytes, "topology": s.topology, "smpi_algorithm": self.smpi_label,
                "simgrid_s": self.simgrid,
                "ours_s": {str(k) if k else "step": v for k, v in self.ours.items()},
                "ratio": {str(k) if k else "step": self.ratio(k) for k in self.ours},
                "note": self.note}


def _check_bytes(nbytes: int, nranks: int) -> None:
    if nbytes <= 0 or nbytes % (ITEMSIZE * nranks):
        raise PeerError(f"--bytes must be a positive multiple of {ITEMSIZE * nranks} ("
                        f"{nranks} blocks of float32), got {nbytes}")


def run_scenario(sc: Scenario, exe: Path, workdir: Path, *, sharings=("rtt", "fair"),
                 routing: str | None = None, placement=None, iterations: int = 1,
                 timeout: float = 600.0) -> Comparison:
    """Export ``sc`` as a platform in ``workdir``, time it under SMPI for each of
    ``sharings`` and under our contention model for each mode the simulator has."""
    from collectives.registry import build

    p, n = sc.nranks, sc.nbytes
    _check_bytes(n, p)
    try:
        schedule = build(sc.collective, sc.algorithm, p, **sc.options)
    except (TypeError, ValueError) as e:
        raise PeerError(str(e).splitlines()[0]) from None
    choice = sc.smpi or smpi_algorithm(sc.collective, sc.algorithm, schedule)
    net = _compile_net(sc.graph, routing)
    nodes = _placed(net, sc.graph, p, placement)
    platform = workdir / "platform.xml"
    hostfile = workdir / "hostfile"
    _write(platform, platform_xml(net, nodes))
    _write(hostfile, "".join(f"rank{r}\n" for r in range(p)))
    simgrid = {s: smpi_time(schedule.collective, choice, p, n, platform, hostfile, exe,
                            sharing=s, iterations=iterations, timeout=timeout)
               for s in sharings}
    ours = {m: ours_time(schedule, net, n, m, placement) for m in ours_sharing_modes()}
    return Comparison(sc, choice.label, simgrid, ours, choice.note)


def default_scenarios() -> list[Scenario]:
    """16 ranks on: fully connected, a 2:1 two-level tree (4 leaves of 4), a 4x4 torus,
    fat_tree(4), a GPU cluster (4 servers of 4 GPUs, 2 leaves) and the 2:1 tree with some
    slow NIC links (:func:`mixed_latency_tree`: where sharing modes part); all-reduce by ring,
    Rabenseifner and recursive doubling; 1 MiB and 64 MiB."""
    import topologies as T

    p = 16
    nets = [
        ("fully-connected", T.fully_connected(p)),
        ("tree 2:1", two_level_tree(4, 4, 2.0)),
        ("torus 4x4", T.torus([4, 4])),
        ("fat_tree(4)", T.fat_tree(4)),
        ("gpu_cluster 4x4", T.gpu_cluster(4, 4, leaf_radix=16)),
        ("tree mixed lat", mixed_latency_tree(4, 4)),
    ]
    return [Scenario("allreduce", algo, p, size, name, G)
            for name, G in nets
            for algo in ("ring", "rabenseifner", "recursive-doubling")
            for size in (1 << 20, 64 << 20)]


# --------------------------------------------------------------------------- table + CLI

def _fmt_time(s: float) -> str:
    return f"{s * 1e3:10.4f}"


def format_table(rows: list[Comparison]) -> str:
    """The comparison table: scenario, SMPI algorithm, SimGrid ms per solver, ours ms per
    sharing mode with its ratio to SimGrid's matching solver."""
    if not rows:
        return ""
    sg_modes = list(rows[0].simgrid)
    our_modes = list(rows[0].ours)
    name = {None: "step", "fair": "fair", "rtt": "rtt"}
    sg_name = {"rtt": "CM02", "fair": "fairbn"}
    head = [f"{'topology':<16} {'algorithm':<18} {'bytes':>6} {'smpi':<28}"]
    head += [f"{'SG ' + sg_name[m] + ' ms':>10}" for m in sg_modes]
    for m in our_modes:
        head += [f"{'ours ' + name[m] + ' ms':>11}", f"{'ratio':>7}"]
    out = [" ".join(head)]
    for r in rows:
        s = r.scenario
        size = f"{s.nbytes >> 20}MiB" if s.nbytes % (1 << 20) == 0 else str(s.nbytes)
        cells = [f"{s.topology:<16} {s.algorithm:<18} {size:>6} {r.smpi_label:<28}"]
        cells += [_fmt_time(r.simgrid[m]) for m in sg_modes]
        for m in our_modes:
            cells += [f"{r.ours[m] * 1e3:11.4f}", f"{r.ratio(m):7.4f}"]
        out.append(" ".join(cells))
    notes = [f"  {r.scenario.topology} {r.scenario.algorithm}: {r.note}" for r in rows
             if r.note and r.note not in ("nearest-first", "farthest-first")]
    if notes:
        out += ["notes:"] + sorted(set(notes))
    return "\n".join(out)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    from topologies.units import parse_bandwidth, parse_bytes, parse_time

    def unit(parse, what):
        def convert(text):
            try:
                return parse(text)
            except ValueError as e:
                raise argparse.ArgumentTypeError(str(e)) from None
        convert.__name__ = what
        return convert

    def dims(text):
        try:
            return [int(x) for x in text.lower().split("x")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"dims must look like 4x4, got {text!r}") from None

    p = _Parser(prog="python -m bench.peer_simgrid",
                description="Time a collective under SimGrid SMPI and under our contention "
                            "model on the same network and routes. With no scenario flags: "
                            "the default scenario list (16 ranks, five networks, ring / "
                            "rabenseifner / recursive-doubling all-reduce, 1 MiB and 64 MiB).")
    p.add_argument("--collective", "-c", default=None,
                   help="allreduce, reducescatter or allgather (default allreduce)")
    p.add_argument("--algorithm", "-a", default=None, help="our algorithm name")
    p.add_argument("--ranks", "-n", type=int, default=16)
    p.add_argument("--bytes", "-b", type=unit(parse_bytes, "size"), default=None,
                   help="full vector size: 64MiB (default 1MiB)")
    p.add_argument("--topology", "-t", default=None,
                   help="tree (2:1 two-level), mixed-tree (the same, some slow NICs), "
                        "fully-connected, torus, fat-tree, gpu-cluster, ..., or a "
                        ".json/.graphml file")
    p.add_argument("--bandwidth", type=unit(parse_bandwidth, "bandwidth"), default=None)
    p.add_argument("--latency", type=unit(parse_time, "time"), default=None)
    p.add_argument("--k", type=int, default=None, help="fat-tree arity")
    p.add_argument("--oversubscription", type=float, default=None)
    p.add_argument("--dims", type=dims, default=None, help="torus dimensions: 4x4")
    p.add_argument("--gpus-per-node", type=int, default=None)
    p.add_argument("--hosts-per-leaf", type=int, default=None, help="tree: hosts per leaf")
    p.add_argument("--placement", default=None, help="rank placement (topologies.place)")
    p.add_argument("--routing", default=None,
                   help="routing policy passed to compile_network (default: the simulator's)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="builder option for our schedule, e.g. order=farthest-first")
    p.add_argument("--smpi", default=None, metavar="NAME[,COLL:NAME]",
                   help="force SMPI's algorithm instead of the matching one, e.g. rab_rdb or "
                        "rab1,allgather:rdb (to see what a different order costs)")
    p.add_argument("--sharing", default="rtt,fair",
                   help="SimGrid solvers to run: rtt (CM02 max-min), fair (fairbottleneck)")
    p.add_argument("--iterations", type=int, default=1)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per smpirun")
    p.add_argument("--keep", metavar="DIR", default=None,
                   help="write the platform, hostfile and program into DIR and keep them")
    p.add_argument("--json", action="store_true", help="print one JSON record per line")
    return p


def _options(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PeerError(f"--option wants KEY=VALUE, got {item!r}")
        value = value.strip()
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def _scenarios(args) -> list[Scenario]:
    given = [args.collective, args.algorithm, args.bytes, args.topology]
    if all(v is None for v in given) and not args.option and args.smpi is None:
        return default_scenarios()
    from collectives.registry import canonical_collective

    coll = canonical_collective(args.collective or "allreduce")
    if args.ranks < 2:
        raise PeerError(f"--ranks must be at least 2, got {args.ranks}")
    nbytes = args.bytes or (1 << 20)
    _check_bytes(nbytes, args.ranks)
    G, desc = _topology(args.topology or "tree", args.ranks, args)
    if coll not in SMPI_COLLECTIVES:
        raise PeerError(f"SMPI comparison covers {', '.join(SMPI_COLLECTIVES)}, not {coll}")
    algo = args.algorithm or "ring"
    options = _options(args.option)
    if args.smpi is None:  # fail now, before any SMPI run, if nothing in SMPI matches
        from collectives.registry import build

        try:
            schedule = build(coll, algo, args.ranks, **options)
        except (TypeError, ValueError) as e:
            raise PeerError(str(e).splitlines()[0]) from None
        smpi_algorithm(coll, algo, schedule)
    return [Scenario(coll, algo, args.ranks, nbytes, desc, G, options,
                     _forced(coll, args.smpi))]


#: Our collective names -> SMPI's configuration keys.
SMPI_COLLECTIVES = {"allreduce": "allreduce", "reducescatter": "reduce_scatter",
                    "allgather": "allgather"}


def _forced(collective: str, text: str | None) -> SmpiChoice | None:
    """``--smpi NAME[,COLL:NAME]`` as a choice (None when not given)."""
    if text is None:
        return None
    if collective not in SMPI_COLLECTIVES:
        raise PeerError(f"SMPI comparison covers {', '.join(SMPI_COLLECTIVES)}, not "
                        f"{collective}")
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items or ":" in items[0]:
        raise PeerError(f"--smpi wants NAME[,COLL:NAME], got {text!r}")
    settings = {SMPI_COLLECTIVES[collective]: items[0]}
    for item in items[1:]:
        key, sep, name = item.partition(":")
        if not sep or key not in SMPI_COLLECTIVES.values() or not name:
            raise PeerError(f"--smpi: {item!r} is not COLL:NAME with COLL one of "
                            f"{', '.join(SMPI_COLLECTIVES.values())}")
        settings[key] = name
    return SmpiChoice(settings, "forced with --smpi")


def main(argv=None) -> int:
    """The CLI; returns the exit status (0; 1 when SimGrid is missing or a run failed; 2 for
    bad arguments)."""
    parser = _parser()
    args = parser.parse_args(argv)
    prog = parser.prog
    sharings = [s.strip() for s in args.sharing.split(",") if s.strip()]
    bad = [s for s in sharings if s not in ("rtt", "fair")]
    if bad or not sharings:
        parser.error(f"argument --sharing: use rtt, fair or rtt,fair, got {args.sharing!r}")
    if args.iterations < 1:
        parser.error(f"argument --iterations: must be at least 1, got {args.iterations}")
    try:
        scenarios = _scenarios(args)
    except ValueError as e:
        parser.error(str(e).splitlines()[0])
    if not smpi_available():
        print(f"{prog}: smpirun/smpicc not found: install SimGrid (Debian package "
              "libsimgrid-dev) to compare against SMPI", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="peer_simgrid_") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        rows = []
        try:
            exe = _compile(workdir)
            for i, sc in enumerate(scenarios):
                if not args.json and len(scenarios) > 1:
                    print(f"[{i + 1}/{len(scenarios)}] {sc.topology} {sc.algorithm} "
                          f"{sc.nbytes} B", file=sys.stderr, flush=True)
                row = run_scenario(sc, exe, workdir, sharings=sharings, routing=args.routing,
                                   placement=args.placement, iterations=args.iterations,
                                   timeout=args.timeout)
                rows.append(row)
                if args.json:
                    print(json.dumps(row.as_dict()), flush=True)
        except (PeerError, ValueError) as e:
            print(f"{prog}: error: {str(e).splitlines()[0]}", file=sys.stderr)
            return 1
    if not args.json:
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
