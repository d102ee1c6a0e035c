"""The simulator: cost a :class:`~collectives.ir.Schedule` on a network under a cost model.

What it owns: :func:`simulate` (argument checks, the arrival and slow-rank hooks) and the
stepping loop that runs a schedule step by step with rates fixed per step. The result types
live in :mod:`sim.results`, the per-pattern machinery and the exactness proof in
:mod:`sim.fastpath`, the flow simulation in :mod:`sim.flows`, the per-transfer figures in
:mod:`sim.costs`; docs/models.md states every model's semantics.

Asynchronous progress
---------------------
Ranks do not meet at a barrier between steps. ``ready[r]`` is the time at which rank ``r`` has
finished every transfer it sends or receives in the steps processed so far (its arrival time
before the first; a rank with nothing to do in a step keeps its value). A transfer
``src -> dst`` of step ``k`` starts at ``max(ready[src], ready[dst])`` and ends ``cost`` later;
after the step ``ready[r] = max(ready[r], end of every step-k transfer of r)``. The collective
ends at ``max(ready)``. Every transfer of a step reads the state before the step (the IR's
snapshot rule), so several transfers of one rank in one step run concurrently (multi-port),
except that under LogGP a rank's sends are spaced by the gap.

Why this reproduces the closed forms. Let every transfer of step ``k`` cost the same ``T_k``.
(i) By induction ``ready[r] <= T_0 + ... + T_k`` after step ``k`` for every rank, since a start
is a max of earlier readies. (ii) If some rank takes part in every step, its ``ready`` gains
``T_k`` in step ``k``. So the time is exactly ``sum_k T_k``, and summing the per-step Hockney
costs of each schedule gives the tables of docs/models.md.

The models
----------
* Hockney: ``cost = latency + bytes * beta (+ bytes * gamma if reduce)``; transfers never slow
  each other.
* Contention: the flow model of :mod:`sim.flows` (SimGrid CM02). The stepping loop runs it
  with each step's max-min rates fixed (the fast path) and :class:`sim.fastpath.ExactCheck`
  proves, step by step, that nothing re-shares a link meanwhile; at the first step it cannot
  prove that, the whole run goes to the event-driven flow simulation. Either way the answer is
  the flow model's; ``SimResult.path`` says which way it came.
* LogGP: ``cost = o + L + max(bytes-1, 0) * G + o (+ bytes * gamma)``; besides the rule above,
  a send starts no earlier than ``max(g, o + (k-1) G)`` after the previous send of the same
  rank (``k`` its bytes), within a step in transfer order and across steps.

Speed. What depends only on a step's arrays is computed once (:mod:`sim.fastpath`). A run of
steps with the same arrays in which every rank's ready time moved by the same amount (a ring
once its pipeline is full) is a translation: the rest of the run is applied in one go, so such
a step costs O(1), not O(p). The cyclic garbage collector is paused during a call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from collectives.ir import Schedule, chunk_bounds
from sim import fastpath as _fp
from sim.costs import flow_figures
from sim.fabric import fabric_for, figures_key, with_routing
from sim.fastpath import (
    Entry,
    ExactCheck,
    Totals,
    entry_cost,
    make_timeline,
    prefetch,
    step_extremes,
    step_key,
    transfer_bytes,
)
from sim.flows import simulate_flows
from sim.models import (
    MODELS,
    Contention,
    Hockney,
    LogGP,
    is_calibrated,
    model_params,
    prices_reduced_data,
)
from sim.results import LinkStats, SimResult, StepStats, Timeline
from topologies.io import gc_paused

__all__ = ["LinkStats", "SimResult", "StepStats", "Timeline", "simulate"]

#: Above this many transfers the per-transfer timeline is off unless asked for.
TIMELINE_LIMIT = 1_000_000
#: The most transfers the event-driven flow simulation takes on: beyond it a contention run that
#: needs it is refused with a clear message rather than left running for hours.
FLOW_LIMIT = 4_000_000
#: About how many transfers a second the event-driven flow simulation handles (2-3 x 10^4 on a
#: hashed-ECMP fat-tree, bench/sim_scale.py; the fast path does 10^6 - 10^9): for the estimate
#: in the refusal.
FLOW_RATE = 2e4
_min, _max = np.minimum.reduce, np.maximum.reduce


# --------------------------------------------------------------------------- set-up helpers


def _canonical_model(model) -> str:
    name = str(model).strip().lower()
    if name not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    return name


def _resolve(topology, model, params):
    """-> (graph-or-None, model params instance)."""
    kinds = (Hockney, Contention, LogGP)
    if isinstance(topology, kinds):
        if params is not None and params is not topology:
            raise ValueError("simulate: give the model parameters once (as topology or params)")
        params, topology = topology, None
    if isinstance(model, kinds):
        if params is not None and params is not model:
            raise ValueError("simulate: give the model parameters once (as model or params)")
        params, model = model, None
    name = None if model is None else _canonical_model(model)
    if isinstance(params, dict):
        params = model_params(name or "hockney", **params)
    if params is None:
        return topology, MODELS[name or "hockney"]()
    if not isinstance(params, kinds):
        raise TypeError(
            f"simulate: params must be Hockney, Contention, LogGP or a dict, got "
            f"{type(params).__name__}"
        )
    if name is not None and name != params.name:
        raise ValueError(
            f"simulate: model {name!r} takes {MODELS[name].__name__} parameters, got "
            f"{type(params).__name__}"
        )
    return topology, params


def _per_rank(values, p: int, what: str, default: float, positive: bool) -> np.ndarray | None:
    """A per-rank sequence (length ``p``) or mapping rank -> number as an array (None when
    ``values`` is None); one clear ValueError for a bad rank or number."""
    if values is None:
        return None
    need = "> 0" if positive else ">= 0"
    if isinstance(values, Mapping):
        out = np.full(p, default, dtype=np.float64)
        items = values.items()
    else:
        try:
            seq = list(values)
        except TypeError:
            raise ValueError(f"simulate: {what} must be a sequence of {p} numbers or a mapping "
                             f"rank -> number, got {type(values).__name__}") from None
        if len(seq) != p:
            raise ValueError(f"simulate: {what} has {len(seq)} entries for {p} ranks; give one "
                             f"per rank or a mapping rank -> number")
        out = np.empty(p, dtype=np.float64)
        items = enumerate(seq)
    for rank, v in items:
        if isinstance(rank, bool) or not isinstance(rank, int | np.integer) or not 0 <= rank < p:
            raise ValueError(f"simulate: {what} names rank {rank!r}; ranks are 0..{p - 1}")
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) \
                or not np.isfinite(v) or (v <= 0 if positive else v < 0):
            raise ValueError(f"simulate: {what} of rank {rank} must be a finite number {need}, "
                             f"got {v!r}")
        out[rank] = float(v)
    return out


def simulate(schedule: Schedule, topology=None, nbytes: int = 0, model=None, *,
             placement=None, params=None, itemsize: int = 1, timeline: bool | None = None,
             routing: str | None = None, arrival=None, reduce_scale=None) -> SimResult:
    """Simulate ``schedule`` moving a vector of ``nbytes`` bytes and return a :class:`SimResult`.

    Parameters
    ----------
    schedule : collectives.ir.Schedule
        What to run (``collectives.build(...)``).
    topology : networkx.Graph, topologies.Network, model parameters or None
        A topology graph (compiled once per graph object and cached), an already compiled
        network, or ``None``/a parameter object for the analytic fully connected network of
        identical links whose latency and bandwidth are the model's ``alpha`` and ``1/beta``.
    nbytes : int
        Size of the full vector in bytes (for all-gather: the gathered output). Chunk ``c`` of
        ``C`` holds elements ``[c*n//C, (c+1)*n//C)`` of ``n = nbytes // itemsize`` elements.
    model : {"hockney", "contention", "loggp"} or a parameter object, optional
        The cost model (see :mod:`sim.models`, docs/models.md); default: the kind of
        ``params`` (or of a parameter object given as ``topology``), else Hockney.
    placement : optional
        Rank -> endpoint placement, as :func:`topologies.place` takes it.
    params : Hockney, Contention, LogGP or dict, optional
        The model's parameters (default: everything from the network, gamma 0).
    itemsize : int
        Bytes per element (1 by default: ``nbytes`` elements of one byte).
    timeline : bool, optional
        Keep every transfer's start and end; default on up to a million transfers.
    routing : str, optional
        Routing policy (``topologies.POLICIES``; docs/routing.md); default the network's own.
    arrival : sequence of p numbers or mapping rank -> seconds, optional
        When each rank enters the collective (default 0 for all): no transfer of a rank starts
        before it. ``time_s`` counts from the first arrival, ``time_from_last_s`` from the last.
    reduce_scale : mapping rank -> factor (or a sequence of p factors), optional
        Multiplies ``gamma`` for the reductions done at that rank (a slow rank); factors > 0.

    Examples
    --------
    >>> from collectives import build
    >>> r = simulate(build("allreduce", "ring", 4), Hockney(alpha=1e-6, beta=1e-9), 4000)
    >>> round(r.time_s * 1e6, 6)  # 2(p-1) alpha + 2(p-1)/p n beta
    12.0
    """
    # The loop allocates small objects (keys, entries) next to big graphs: with the collector
    # on, its full collections walk every dict of the graphs (several ms at 1024 ranks).
    topology = with_routing(topology, routing)
    with gc_paused():
        return _simulate(schedule, topology, nbytes, model, placement, params, itemsize,
                         timeline, arrival, reduce_scale)


class _Run:
    """What one call works on (set up once, read by both paths)."""

    def __init__(self, schedule, fabric, params, nbytes, itemsize, keep, arrival, rscale):
        self.schedule, self.fabric, self.params = schedule, fabric, params
        self.p = schedule.nranks
        self.keep = keep
        self.arrival = arrival
        self.rscale = rscale
        C = self.nchunks = schedule.nchunks
        n_elems = nbytes // itemsize
        # Chunk c holds elements [c n / C, (c + 1) n / C): all the same size when C divides n.
        self.uniform = n_elems % C == 0
        self.size = self.prefix2 = None
        if self.uniform:
            self.size = np.float64(n_elems // C) * itemsize
        else:
            sizes = np.diff(chunk_bounds(n_elems, C)).astype(np.float64) * itemsize
            self.prefix2 = np.concatenate(([0.0], np.cumsum(np.concatenate((sizes, sizes)))))


def _simulate(schedule, topology, nbytes, model, placement, params, itemsize, timeline,
              arrival, reduce_scale) -> SimResult:
    topology, params = _resolve(topology, model, params)
    p = schedule.nranks
    if isinstance(itemsize, bool) or not isinstance(itemsize, int) or itemsize < 1:
        raise ValueError(f"simulate: itemsize must be a positive integer, got {itemsize!r}")
    if isinstance(nbytes, bool) or not isinstance(nbytes, int | np.integer) or nbytes < 0:
        raise ValueError(f"simulate: nbytes must be a non-negative integer, got {nbytes!r}")
    nbytes = int(nbytes)
    given = params  # what the result reports
    if is_calibrated(params):
        # a calibrated machine prices each transfer in the caches this call works in: each
        # rank's input and result vectors and the scratch of its largest step
        params = replace(params, working_set=float(nbytes) * (
            2.0 + schedule.most_received_per_step()))
    arr = _per_rank(arrival, p, "arrival", 0.0, positive=False)
    rscale = _per_rank(reduce_scale, p, "reduce_scale", 1.0, positive=True)
    if rscale is not None and (rscale == 1.0).all():
        rscale = None
    fabric = fabric_for(topology, p, placement)
    ntransfers = schedule.ntransfers
    keep = ntransfers <= TIMELINE_LIMIT if timeline is None else bool(timeline)
    run = _Run(schedule, fabric, params, nbytes, itemsize, keep,
               np.zeros(p) if arr is None else arr, rscale)
    path = "none"
    if params.name == "contention" and not is_calibrated(params):
        # (a calibrated machine's cost already holds how its transfers share the host: it is
        # costed step by step, as Hockney is)
        out = _step_loop(run, ExactCheck(fabric))
        path = "fast"
        if out is None:
            if ntransfers > FLOW_LIMIT:
                raise ValueError(
                    f"contention: {ntransfers} transfers re-share links (flows that start or "
                    f"end apart): the event-driven flow simulation would take about "
                    f"{_duration(ntransfers / FLOW_RATE)} and takes at most {FLOW_LIMIT}; use "
                    f"--routing dmodk (a fat-tree with a power-of-two number of up-ports keeps "
                    f"recursive halving/doubling free of shared links), fewer ranks, or "
                    f"--model hockney")
            out = _flow_path(run)
            path = "flow"
    else:
        out = _step_loop(run, None)
    ready, s_start, s_end, s_bytes, s_count, timeline_obj, totals = out
    completion = float(ready.max()) if p else 0.0
    first = float(run.arrival.min()) if p else 0.0
    last = float(run.arrival.max()) if p else 0.0
    time_s = completion - first
    return SimResult(
        collective=schedule.collective, algorithm=schedule.algorithm, nranks=p, nbytes=nbytes,
        itemsize=itemsize, model=params.name, params=given, topology=fabric.description,
        time_s=time_s, nsteps=len(schedule.steps), ntransfers=ntransfers,
        steps=StepStats(s_start, s_end, s_bytes, s_count), rank_finish=ready,
        rank_bytes_sent=totals.sent, rank_bytes_received=totals.received,
        timeline=timeline_obj, links=totals.link_stats(params, time_s),
        time_from_last_s=completion - last, path=path,
    )


def _duration(seconds: float) -> str:
    """``seconds`` in words: "40 minutes", "3.5 hours"."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


def _run_ends(keys: list) -> list[int]:
    """``ends[k]``: the first step after ``k`` whose arrays differ from step ``k``'s."""
    n = len(keys)
    ends = [n] * n
    for k in range(n - 2, -1, -1):
        ends[k] = ends[k + 1] if keys[k + 1] == keys[k] else k + 1
    return ends


def _step_loop(run, check):
    """Run the schedule step by step with per-step rates; None when ``check`` (contention)
    cannot prove a step exact."""
    schedule, fabric, params = run.schedule, run.fabric, run.params
    p, keep, uniform, size, prefix2 = run.p, run.keep, run.uniform, run.size, run.prefix2
    C = run.nchunks
    steps = schedule.steps
    nsteps = len(steps)
    loggp = params.name == "loggp"
    ready = run.arrival.copy()
    next_send = np.zeros(p) if loggp else None
    s_start = np.zeros(nsteps)
    s_end = np.zeros(nsteps)
    s_bytes = np.zeros(nsteps)
    s_count = np.zeros(nsteps, dtype=np.int64)
    tl: list = []
    entries: dict = {}
    scanned = 0
    fkey = figures_key(params)
    pending = 0
    totals = Totals(fabric, p)
    # a calibrated machine prices data a sender wrote itself apart (Schedule.sent_written):
    # steps that share arrays but not those fractions (a ring's first step) are apart too
    # (with a crowd figure of its own for data a reduction wrote: Schedule.sent_written_kinds)
    written = None
    if is_calibrated(params) and params.written_size_factors:
        written = schedule.sent_written_kinds()
        if not prices_reduced_data(params):  # not priced: steps need not differ by it
            written = [(w, None) for w, _ in written]
    if written is None:
        keys = [step_key(st) for st in steps]
    else:
        digests: dict = {}  # per written array (steps often share one): a 16-byte digest

        def tag(w) -> bytes:
            if w is None:
                return b""
            got = digests.get(id(w))
            if got is None:
                got = digests[id(w)] = hashlib.blake2b(w.tobytes(), digest_size=16).digest()
            return got
        keys = [(*step_key(st), tag(w), tag(r)) for st, (w, r) in zip(steps, written,
                                                                         strict=True)]
    # A run of equal steps may be applied as a translation (module docstring): not where the
    # timeline is kept or LogGP's send gaps carry state, and only with bytes fixed per entry.
    can_shift = not keep and not loggp and uniform
    ends = _run_ends(keys) if can_shift else None

    # Small steps' first start and last end are taken in batches (two calls per step less).
    held = ([], [], [])
    held_n = 0
    k = 0
    while k < nsteps:
        st = steps[k]
        m = len(st)
        s_count[k] = m
        if m == 0:
            if held_n:
                held_n = step_extremes(held, s_start, s_end)
            s_start[k] = s_end[k] = s_end[k - 1] if k else 0.0
            k += 1
            continue
        key = keys[k]
        ent = entries.get(key)
        if ent is None:
            if pending > _fp.FLUSH_LIMIT:
                totals.fold(entries.values())
                entries.clear()
                pending = 0
            if k >= scanned:
                scanned, added = prefetch(steps, k, entries, fabric, params, fkey, size,
                                          run.rscale, None if written is None else keys,
                                          written)
                pending += added
                ent = entries[key]
            else:  # its prefetched entry went with a flush
                ent = entries[key] = Entry(st, fabric.pattern(st.src, st.dst), fabric, params,
                                           fkey, run.rscale,
                                           None if written is None else written[k])
                pending += m
        src, dst = ent.src, ent.dst
        if uniform and ent.cost is not None:
            tb, cost, total = ent.tb, ent.cost, ent.total
            ent.uses += 1  # the first use of a prefetched entry makes it 1
        else:
            tb = transfer_bytes(st, ent, C, prefix2, size)
            cost = entry_cost(ent, tb, params)
            total = float(tb.sum())
            if uniform:
                ent.tb, ent.cost, ent.total, ent.acc, ent.uses = tb, cost, total, tb, 1
            else:
                ent.acc = tb.copy() if ent.acc is None else ent.acc + tb
                ent.uses = 1
        # a translation needs this step's move of every rank: keep the state before it
        shift_run = (can_shift and k > 0 and keys[k - 1] == key and ends[k] > k + 1)
        before = ready.copy() if shift_run else None
        perm = ent.perm
        if perm is not None and not loggp:
            # Every rank sends once and receives once: ready_new[r] is the later of the ends
            # of its send and its receive (both >= ready[r]), with no scatter.
            inv_src, inv_dst = perm
            start = np.maximum(ready if inv_src is None else ready[src], ready[dst])
            end = start + cost
            ready = np.maximum(end if inv_src is None else end[inv_src], end[inv_dst])
        else:
            start = np.maximum(ready[src], ready[dst])
            if loggp:
                gap = np.maximum(params.g, params.o + np.maximum(tb - 1.0, 0.0) * ent.inv)
                gap = np.broadcast_to(gap, tb.shape)
                if ent.pat.unique_src:
                    start = np.maximum(start, next_send[src])
                    next_send[src] = start + gap
                else:
                    for sel in ent.pat.send_rounds():
                        s_sel = src[sel]
                        start[sel] = np.maximum(start[sel], next_send[s_sel])
                        next_send[s_sel] = start[sel] + gap[sel]
            end = start + cost
            if ent.pat.unique_src and ent.pat.unique_dst:
                ready[src] = end  # end >= ready[src]: start is at least that
                ready[dst] = np.maximum(ready[dst], end)
            else:
                np.maximum.at(ready, src, end)
                np.maximum.at(ready, dst, end)
        if check is not None and not check.step(ent, start, tb):
            return None
        s_bytes[k] = total
        if keep:
            tl.append((k, st, tb, start, end))
        if shift_run:
            moved = ready - before
            delta = moved[0]
            if _min(moved) == delta == _max(moved):
                # Every rank moved by delta: each later step of the run moves it by delta
                # again (a step commutes with a uniform translation of the ready times).
                first, last = _min(start), _max(end)
                n = ends[k] - k - 1
                by = np.arange(0, n + 1, dtype=np.float64) * delta
                s_start[k:k + n + 1] = first + by
                s_end[k:k + n + 1] = last + by
                s_bytes[k + 1:k + n + 1] = total
                s_count[k + 1:k + n + 1] = m
                ready = ready + n * delta
                ent.uses += n
                if check is not None:
                    check.shift(ent, n * delta)
                k += n + 1
                continue
        if m > _fp.SMALL_STEP:
            s_start[k] = _min(start)
            s_end[k] = _max(end)
        else:
            held[0].append(k)
            held[1].append(start)
            held[2].append(end)
            held_n += m
            if held_n > _fp.SMALL_HELD:
                held_n = step_extremes(held, s_start, s_end)
        k += 1

    if held_n:
        step_extremes(held, s_start, s_end)
    totals.fold(entries.values())
    return (ready, s_start, s_end, s_bytes, s_count, make_timeline(tl) if keep else None,
            totals)


def _flow_path(run):
    """Run the whole schedule through the flow simulation (:mod:`sim.flows`)."""
    schedule, fabric, params = run.schedule, run.fabric, run.params
    p, C = run.p, run.nchunks
    steps = schedule.steps
    nsteps = len(steps)
    # Latency and bottleneck of each path: Hockney's figures under the same overrides.
    plain = Hockney(alpha=params.alpha, beta=params.beta, gamma=params.gamma)
    fkey = figures_key(plain)
    entries: dict = {}
    parts = []
    s_count = np.zeros(nsteps, dtype=np.int64)
    s_bytes = np.zeros(nsteps)
    for k, st in enumerate(steps):
        m = s_count[k] = len(st)
        if not m:
            continue
        key = step_key(st)
        ent = entries.get(key)
        if ent is None:
            ent = entries[key] = Entry(st, fabric.pattern(st.src, st.dst), fabric, plain, fkey,
                                       run.rscale)
        tb = transfer_bytes(st, ent, C, run.prefix2, run.size)
        ent.acc = tb.copy() if ent.acc is None else ent.acc + tb
        ent.uses = 1
        s_bytes[k] = float(tb.sum())
        parts.append((k, st, ent, tb))
    totals = Totals(fabric, p)
    totals.fold(entries.values())
    if not parts:
        z = np.zeros(nsteps)
        return (run.arrival.copy(), z, z.copy(), s_bytes, s_count,
                make_timeline([]) if run.keep else None, totals)

    def cat(get):
        return np.concatenate([np.broadcast_to(np.asarray(get(k, st, ent, tb),
                                                          dtype=np.float64), (len(st),))
                               for k, st, ent, tb in parts])

    step = np.concatenate([np.full(len(st), k, dtype=np.int64) for k, st, _, _ in parts])
    src = np.concatenate([ent.src for _, _, ent, _ in parts]).astype(np.int64)
    dst = np.concatenate([ent.dst for _, _, ent, _ in parts]).astype(np.int64)
    tb = np.concatenate([tb for *_, tb in parts])
    reduce = np.concatenate([ent.reduce for _, _, ent, _ in parts])
    lat = cat(lambda k, st, ent, tb: ent.lat)
    with np.errstate(divide="ignore"):
        bound = 1.0 / cat(lambda k, st, ent, tb: ent.inv)
    lens = np.concatenate([ent.pat.lens for _, _, ent, _ in parts])
    ptr = np.zeros(len(step) + 1, dtype=np.int64)
    np.cumsum(lens, out=ptr[1:])
    links = np.concatenate([ent.pat.links[: ent.pat.ptr[-1]] for _, _, ent, _ in parts])
    share = None
    if any(ent.pat.share is not None for _, _, ent, _ in parts):
        share = np.concatenate([ent.pat.share if ent.pat.share is not None
                                else np.ones(ent.pat.ptr[-1]) for _, _, ent, _ in parts])
    links, cap = fabric.capacities(links, params)
    gscale = None if run.rscale is None else run.rscale[dst]
    # the bound (the path's bottleneck) is implied by the link capacities here; a
    # message-size bandwidth factor (sim.costs) would make it a constraint of its own
    lat, bound, post, weight = flow_figures(lat, bound, reduce, tb, params, gscale)
    start, end, finish = simulate_flows(step, src, dst, tb, lat, post, ptr, links, cap,
                                        nranks=p, arrival=run.arrival, share=share,
                                        weight=weight)
    s_start = np.zeros(nsteps)
    s_end = np.zeros(nsteps)
    ks = np.array([k for k, *_ in parts])
    offs = np.r_[0, np.cumsum([len(st) for _, st, _, _ in parts])[:-1]]
    s_start[ks] = np.minimum.reduceat(start, offs)
    s_end[ks] = np.maximum.reduceat(end, offs)
    last = 0.0
    for k in range(nsteps):  # an empty step sits at the end of the one before
        if s_count[k]:
            last = s_end[k]
        else:
            s_start[k] = s_end[k] = last
    timeline_obj = None
    if run.keep:
        timeline_obj = Timeline(step, src, dst, tb, reduce.astype(bool), start, end)
    return finish, s_start, s_end, s_bytes, s_count, timeline_obj, totals
