"""Convenience entry points: topologies by name, :func:`predict` and :func:`sweep`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import numpy as np

from collectives.registry import build, canonical_collective
from sim.engine import simulate
from sim.models import Hockney  # noqa: F401  (doctests)
from sim.table import Record

__all__ = ["TOPOLOGIES", "best_per_size", "build_schedule", "make_topology", "predict", "sweep",
           "whatif_topology"]

#: Topology names the CLI and :func:`make_topology` accept, with what they build.
TOPOLOGIES = {
    "fully-connected": "every rank linked to every other (analytic: alpha/beta or latency/"
                       "bandwidth)",
    "ring": "ranks in a cycle",
    "torus": "periodic grid, --dims 4x4 (default: the squarest 2-D grid)",
    "fat-tree": "3-tier k-ary fat-tree, --k (default: smallest that fits), --oversubscription",
    "dragonfly": "groups of all-to-all routers, --routers, --hosts-per-router, --groups",
    "switch": "one switch, every rank one hop away",
    "gpu-cluster": "GPU servers (NVLink inside, InfiniBand leaf/spine), --gpus-per-node",
}


def _squarest(p: int) -> list[int]:
    d = max(x for x in range(1, math.isqrt(p) + 1) if p % x == 0)
    return [d, p // d] if d > 1 else [p]


def make_topology(name: str, nranks: int, *, bandwidth=None, latency=None, k=None,
                  oversubscription=1.0, dims=None, gpus_per_node=8, intra_bandwidth=None,
                  intra_latency=None, routers=None, hosts_per_router=None, groups=None,
                  global_bandwidth=None, global_latency=None):
    """A topology graph named ``name`` with room for ``nranks`` ranks, or ``None`` for
    ``"fully-connected"`` (the analytic network: it needs no graph, and a complete graph of
    16384 nodes would hold 134M links).

    Unset link figures take the generators' defaults. Raises ``ValueError`` naming the bad
    argument.

    >>> G = make_topology("fat-tree", 20)
    >>> G.graph["params"]["k"], G.graph["params"]["hosts"]
    (6, 20)
    """
    import topologies as T

    key = str(name).strip().lower().replace("_", "-")
    if key not in TOPOLOGIES:
        raise ValueError(f"unknown topology {name!r}; known: {', '.join(TOPOLOGIES)}")
    link = {}
    if bandwidth is not None:
        link["bandwidth"] = bandwidth
    if latency is not None:
        link["latency"] = latency
    p = nranks
    if key == "fully-connected":
        return None
    if key == "ring":
        return T.ring(p, **link)
    if key == "switch":
        return T.switch(p, **link)
    if key == "torus":
        shape = list(dims) if dims is not None else _squarest(p)
        if int(np.prod(shape)) < p:
            raise ValueError(
                f"torus dims {'x'.join(map(str, shape))} hold {int(np.prod(shape))} endpoints, "
                f"fewer than {p} ranks"
            )
        return T.torus(shape, **link)
    if key == "fat-tree":
        if k is None:
            k = 2
            while k**3 // 4 < p:
                k += 2
        return T.fat_tree(k, oversubscription=oversubscription, hosts=p, **link)
    if key == "dragonfly":
        a = routers or 4
        h = hosts_per_router or 2
        g = groups or max(1, -(-p // (a * h)))
        extra = {}
        if global_bandwidth is not None:
            extra["global_bandwidth"] = global_bandwidth
        if global_latency is not None:
            extra["global_latency"] = global_latency
        if g * a * h < p:
            raise ValueError(
                f"dragonfly with {g} groups x {a} routers x {h} hosts holds {g * a * h} "
                f"endpoints, fewer than {p} ranks"
            )
        return T.dragonfly(g, a, h, **link, **extra)
    # gpu-cluster
    g = gpus_per_node
    extra = {"oversubscription": oversubscription}
    if intra_bandwidth is not None:
        extra["intra_bandwidth"] = intra_bandwidth
    if intra_latency is not None:
        extra["intra_latency"] = intra_latency
    radix = max(64, 2 * g)
    return T.gpu_cluster(-(-p // g), g, leaf_radix=radix, **link, **extra)


def build_schedule(collective: str, algorithm: str, ranks: int, options: dict | None = None):
    """``collectives.build`` with ``options`` passed to the builder (see the registry)."""
    return build(collective, algorithm, ranks, **(options or {}))


def whatif_topology(G, nranks: int, *, degrade=None, fail_links=None, placement=None):
    """``G`` with the what-ifs applied (a new graph; ``G`` is left alone): ``degrade``
    (``{node_or_(u, v): factor}``, :func:`topologies.whatif.degrade`), then ``fail_links``
    (``[(u, v), ...]``, :func:`topologies.whatif.fail_links`). A failure that cuts ranks off
    from rank 0 is a ``ValueError`` naming them.

    The routing policy then routes around a removed link (docs/routing.md).

    >>> import topologies
    >>> H = whatif_topology(topologies.ring(4), 4, fail_links=[(0, 1)])
    >>> H.has_edge(0, 1), H.graph["whatif"]
    (False, ['fail 0,1'])
    >>> whatif_topology(topologies.ring(4), 4, fail_links=[(0, 1), (2, 3)])
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: failed links 0,1; 2,3 cut off ranks 1, 2 (nodes 1, 2) from rank 0; ...
    """
    from topologies import place
    from topologies import whatif as W

    if not degrade and not fail_links:
        return G
    if G is None:
        raise ValueError("degrade/fail-link need a topology graph; the fully-connected network "
                         "is analytic: use --topology switch, a generator or a file")
    H = W.degrade(G, degrade) if degrade else G
    if fail_links:
        links = list(fail_links)
        H = W.fail_links(H, links)
        nodes = place(H, nranks, placement)
        lost = W.cut_off_ranks(H, nodes)
        if lost:
            names = "; ".join(",".join(map(str, link)) for link in links)
            raise ValueError(
                f"failed links {names} cut off rank{'s' if len(lost) > 1 else ''} "
                f"{', '.join(map(str, lost[:8]))}{' ...' if len(lost) > 8 else ''} (node"
                f"{'s' if len(lost) > 1 else ''} {', '.join(str(nodes[r]) for r in lost[:8])}"
                f") from rank 0; fail fewer links or place the ranks elsewhere")
    return H


def _what_if_kwargs(arrival, reduce_scale) -> dict:
    """simulate() keyword arguments for the what-ifs actually given."""
    kw = {}
    if arrival is not None:
        kw["arrival"] = arrival
    if reduce_scale:
        kw["reduce_scale"] = reduce_scale
    return kw


def predict(collective: str, algorithm: str, ranks: int, nbytes: int, topology=None,
            model=None, *, params=None, placement=None, itemsize: int = 1,
            dtype: str = "uint8", options: dict | None = None, arrival=None,
            reduce_scale=None, routing: str | None = None) -> Record:
    """Predicted time of one collective: build ``algorithm`` for ``collective`` on ``ranks``
    ranks, simulate it moving ``nbytes`` bytes on ``topology`` (a graph, or ``None`` for the
    analytic fully connected network given by ``params``) and return a
    :class:`sim.table.Record` (time_s, algbw, busbw; extra: model, topology, steps,
    transfers, time_from_last_s). ``arrival``, ``reduce_scale`` and ``routing`` go to
    :func:`sim.simulate`.

    >>> r = predict("allreduce", "ring", 7, 1 << 20, params=Hockney(2e-6, 1e-9, 2.5e-10))
    >>> round(r.time_s * 1e6, 3), round(r.busbw / 1e9, 3)
    (2046.26, 0.878)
    """
    schedule = build_schedule(collective, algorithm, ranks, options)
    res = simulate(schedule, topology, nbytes, model, params=params, placement=placement,
                   itemsize=itemsize, routing=routing,
                   **_what_if_kwargs(arrival, reduce_scale))
    return _record(res, algorithm, dtype)


def _record(res, algorithm: str, dtype: str) -> Record:
    """The result as a record named by the registry's ``algorithm`` (the schedule's own name,
    e.g. ``hierarchical(ring/ring)``, goes in ``extra["schedule"]``)."""
    rec = res.record(dtype, model=res.model, topology=res.topology, steps=res.nsteps,
                     transfers=res.ntransfers, schedule=res.algorithm,
                     time_from_last_s=res.time_from_last_s)
    name = str(algorithm).strip().lower().replace("_", "-")
    return rec if rec.algorithm == name else replace(rec, algorithm=name)


def _schedules(collective, algorithms, ranks, options):
    """Build every algorithm once; ``options`` go to the builders that take them."""
    out, used, first_err = {}, set(), None
    for algo in algorithms:
        try:
            out[algo] = build_schedule(collective, algo, ranks, options)
            used.update(options or {})
        except ValueError as e:
            if options and "takes no option" in str(e):
                first_err = first_err or e
                out[algo] = build_schedule(collective, algo, ranks, None)
            else:
                raise
    if options and not used and first_err is not None:
        raise first_err
    return out


def sweep(collective: str, algorithms: Sequence[str], ranks: int, sizes: Iterable[int],
          topology=None, model=None, *, params=None, placement=None, itemsize: int = 1,
          dtype: str = "uint8", options: dict | None = None,
          progress: Callable[[int, int], None] | None = None, arrival=None,
          reduce_scale=None, routing: str | None = None) -> list[Record]:
    """Predicted records for every (size, algorithm): each schedule is built once and
    simulated at every size (routes and fair rates are cached across sizes).

    Records come size by size, algorithms in the given order. ``options`` go to the
    algorithms whose builders accept them. ``progress(done, total)`` is called after each
    simulation. ``arrival``, ``reduce_scale`` and ``routing`` go to :func:`sim.simulate`.

    >>> recs = sweep("allreduce", ["ring", "recursive-doubling"], 8, [1024, 1 << 20],
    ...              params=Hockney(2e-6, 1e-9))
    >>> [(r.size, r.algorithm) for r in recs if (r.size, r.algorithm) in best_per_size(recs)]
    [(1024, 'recursive-doubling'), (1048576, 'ring')]
    """
    coll = canonical_collective(collective)
    scheds = _schedules(coll, list(algorithms), ranks, options)
    sizes = list(sizes)
    total = len(sizes) * len(scheds)
    out: list[Record] = []
    done = 0
    if routing is not None:  # compiled once for the whole sweep
        from sim.fabric import with_routing

        topology = with_routing(topology, routing)
    what_if = _what_if_kwargs(arrival, reduce_scale)
    for size in sizes:
        for algo, sch in scheds.items():
            res = simulate(sch, topology, size, model, params=params, placement=placement,
                           itemsize=itemsize, **what_if)
            out.append(_record(res, algo, dtype))
            done += 1
            if progress is not None:
                progress(done, total)
    return out


def best_per_size(records: Iterable[Record]) -> list[tuple[int, str]]:
    """``(size, algorithm)`` of the fastest record at every size (first one on a tie)."""
    best: dict[int, Record] = {}
    for r in records:
        if r.size not in best or r.time_s < best[r.size].time_s:
            best[r.size] = r
    return [(s, r.algorithm) for s, r in best.items()]
