"""The simulator: cost a :class:`~collectives.ir.Schedule` on a network under a cost model.

Asynchronous progress
---------------------
Ranks do not meet at a barrier between steps. ``ready[r]`` is the time at which rank ``r`` has
finished every transfer it sends or receives in the steps processed so far (0 before the first;
a rank with nothing to do in a step keeps its value). A transfer ``src -> dst`` of step ``k``
starts at ``max(ready[src], ready[dst])`` (both ends are done with steps ``< k``; the sender
then holds the data it forwards, the receiver's buffer is free) and ends ``cost`` later; after
the step ``ready[r] = max(ready[r], end of every step-k transfer of r)``. The collective ends
at ``max(ready)``. Every transfer of a step reads the state before the step (the IR's snapshot
rule), so several transfers of one rank in one step run concurrently (multi-port), except that
under LogGP a rank's sends are spaced by the gap.

Why this reproduces the closed forms. Let every transfer of step ``k`` cost the same ``T_k``.
(i) By induction ``ready[r] <= T_0 + ... + T_k`` after step ``k`` for every rank, since a start
is a max of earlier readies. (ii) If some rank takes part in every step (every rank of a ring,
pairwise or Bruck; the root of a binomial tree; new rank 0 = old rank 1 in MPICH's fold, which
folds in, halves/doubles and folds out), its ``ready`` gains ``T_k`` in step ``k``: its transfer
starts no earlier than its own ready and lasts ``T_k``. So the time is exactly ``sum_k T_k``,
and summing the per-step Hockney costs of each schedule gives the tables of DESIGN.md. Where
the transfers of a step differ in size (uneven blocks) the result is the true critical path,
which can be below the sum of the per-step maxima.

The models
----------
* Hockney: ``cost = latency + bytes * beta (+ bytes * gamma if reduce)``, with the path's
  latency and ``1 / bottleneck bandwidth`` unless ``alpha``/``beta`` are given. Transfers are
  independent: a rank that sends two messages in one step (double binary tree) sends both at
  full speed.
* Contention: the same with ``beta = 1 / fair rate``. The rates are the max-min fair
  allocation (:func:`sim.maxmin.maxmin_rates`) of the directed links among *all* the
  transfers of the step, routed by ``topologies.Network.routes``. The approximation: every
  transfer of a step is assumed to overlap every other for its whole duration; rates are not
  re-shared when a transfer finishes early, and transfers of different steps that overlap in
  time (asynchronous progress) do not slow each other. Rates depend on the pattern only, so
  they are computed once per pattern. With no shared link this is exactly Hockney.
* LogGP: ``cost = o + L + max(bytes-1, 0) * G + o (+ bytes * gamma)``; besides the rule above,
  a send starts no earlier than ``max(g, o + (k-1) G)`` after the previous send of the same
  rank (``k`` its bytes), within a step in transfer order and across steps.

Per step, the work is a handful of numpy operations on the step's arrays; what depends only on
the step's pattern (routes, fair rates, transfer sizes when chunks are even) is computed once
and reused, so a 16384-rank ring (32766 steps sharing one pattern) costs a few seconds. Steps
with arrays of their own (Rabenseifner's) are looked at ahead, a window at a time: their
patterns are routed and costed together (:meth:`sim.fabric._Fabric.prepare`) and, for small
steps, their durations computed and their first start / last end taken together, which changes
no number. The cyclic garbage collector is paused during a call: its full collections would
walk every dict of the topology graphs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np

from collectives.ir import Schedule, chunk_bounds
from collectives.metrics import algbw as _algbw
from collectives.metrics import busbw as _busbw
from sim.fabric import AnalyticFabric, fabric_for, figures_key, pattern_key
from sim.models import MODELS, Contention, Hockney, LogGP, model_params
from sim.table import Record, make_record
from topologies.io import gc_paused

__all__ = ["LinkStats", "SimResult", "StepStats", "Timeline", "simulate"]

#: Above this many transfers the per-transfer timeline is off unless asked for.
TIMELINE_LIMIT = 1_000_000
#: Per-call pattern transfers accumulated before their bytes are folded into the totals.
_FLUSH_LIMIT = 4_000_000
#: Distinct (src, dst) pairs beyond which the analytic network keeps no per-link figures.
_ANALYTIC_LINK_LIMIT = 16_000_000
#: Transfers of upcoming new steps whose patterns are routed and costed together, ahead of use.
_PREFETCH = 1 << 18
#: Steps of at most this many transfers have their durations computed, and their first start /
#: last end taken, in batches (of up to _SMALL_HELD transfers: small enough to stay in cache);
#: a larger step pays the per-call overhead alone.
_SMALL_STEP = 512
_SMALL_HELD = 1 << 15


@dataclass(frozen=True, eq=False)
class StepStats:
    """Per step: first start, last end, bytes moved and number of transfers (arrays)."""

    start: np.ndarray
    end: np.ndarray
    bytes: np.ndarray
    transfers: np.ndarray

    @property
    def duration(self) -> np.ndarray:
        return self.end - self.start


@dataclass(frozen=True, eq=False)
class Timeline:
    """Every transfer, in schedule order: step, src, dst, bytes, reduce, start, end (arrays)."""

    step: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    bytes: np.ndarray
    reduce: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.step)

    def of_rank(self, rank: int) -> Timeline:
        """The transfers that ``rank`` sends or receives."""
        sel = (self.src == rank) | (self.dst == rank)
        return Timeline(*(getattr(self, f)[sel] for f in
                          ("step", "src", "dst", "bytes", "reduce", "start", "end")))


class LinkStats:
    """Per directed link that carried data: its ends (``names``: node labels, or ranks on the
    analytic network), bytes carried, bandwidth, busy time (``bytes / bandwidth``: the time the
    link needs at full rate for what it carried) and utilisation (busy time / collective time).

    ``ids`` are the links' ids in the compiled network (pair keys ``src * p + dst`` on the
    analytic network); ``names`` is built on first use. Under Hockney, which ignores sharing,
    a utilisation above 1 flags a link asked to carry more than it can in the time.
    """

    def __init__(self, ids, nbytes, bandwidth, time_s, namer):
        self.ids = ids
        self.bytes = nbytes
        self.bandwidth = bandwidth
        self.busy_s = nbytes / bandwidth if len(nbytes) else np.zeros(0)
        self.utilisation = self.busy_s / time_s if time_s > 0 else np.zeros_like(self.busy_s)
        self._namer = namer
        self._names = None

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        top = f", busiest {self.names[int(np.argmax(self.busy_s))]}" if len(self) else ""
        return f"LinkStats({len(self)} links{top})"

    @property
    def names(self) -> list[tuple]:
        if self._names is None:
            self._names = self._namer(self.ids) if len(self.ids) else []
        return self._names

    def as_dict(self) -> dict[tuple, float]:
        """``{(u, v): utilisation}``, as :func:`sim.plots.plot_link_utilisation` takes it."""
        return dict(zip(self.names, self.utilisation.tolist(), strict=True))

    def busiest(self, count: int = 5) -> list[tuple[tuple, float, float]]:
        """The ``count`` busiest links as ``(link, bytes, utilisation)``."""
        order = np.argsort(-self.busy_s, kind="stable")[:count]
        names = self._namer(self.ids[order]) if len(order) else []
        return [(names[j], float(self.bytes[i]), float(self.utilisation[i]))
                for j, i in enumerate(order)]


@dataclass(frozen=True, eq=False)
class SimResult:
    """What :func:`simulate` computed.

    ``time_s`` is the collective's completion time; ``steps`` the per-step breakdown;
    ``rank_finish``/``rank_bytes_sent``/``rank_bytes_received`` per rank; ``timeline`` every
    transfer's start and end (None when not kept); ``links`` the per-link figures (None on an
    analytic network too large to list).
    """

    collective: str
    algorithm: str
    nranks: int
    nbytes: int
    itemsize: int
    model: str
    params: object
    topology: str
    time_s: float
    nsteps: int
    ntransfers: int
    steps: StepStats
    rank_finish: np.ndarray
    rank_bytes_sent: np.ndarray
    rank_bytes_received: np.ndarray
    timeline: Timeline | None = field(default=None, repr=False)
    links: LinkStats | None = field(default=None, repr=False)

    @property
    def algbw(self) -> float:
        """Bytes of the full vector per second of collective time (nccl-tests' algbw)."""
        return _algbw(self.nbytes, self.time_s)

    @property
    def busbw(self) -> float:
        """algbw times nccl-tests' bus factor for the collective."""
        return _busbw(self.collective, self.nranks, self.nbytes, self.time_s)

    def record(self, dtype: str = "uint8", redop: str = "sum", **extra) -> Record:
        """The result as a :class:`sim.table.Record` (for the shared table printer)."""
        return make_record(self.collective, self.algorithm, self.nranks, self.nbytes,
                           self.nbytes // self.itemsize, dtype,
                           redop if self.collective != "allgather" else "none",
                           self.time_s, None, **extra)

    def as_dict(self) -> dict:
        """Headline figures as plain JSON-able values."""
        from dataclasses import asdict

        return {
            "collective": self.collective, "algorithm": self.algorithm, "ranks": self.nranks,
            "bytes": self.nbytes, "time_s": self.time_s, "algbw": self.algbw,
            "busbw": self.busbw, "model": self.model, "params": asdict(self.params),
            "topology": self.topology, "steps": self.nsteps, "transfers": self.ntransfers,
        }

    def summary(self, links: int = 3) -> str:
        """A few readable lines: the headline, the slowest steps and the busiest links."""
        from topologies.units import format_bandwidth, format_bytes, format_time

        lines = [
            f"{self.collective}/{self.algorithm} on {self.nranks} ranks, "
            f"{format_bytes(self.nbytes)}, {self.model} on {self.topology}: "
            f"{format_time(self.time_s)}, algbw {format_bandwidth(self.algbw)}, "
            f"busbw {format_bandwidth(self.busbw)} ({self.nsteps} steps, "
            f"{self.ntransfers} transfers)"
        ]
        if self.links is not None and links:
            for name, b, u in self.links.busiest(links):
                lines.append(f"  link {name}: {format_bytes(b)}, utilisation {u:.1%}")
        return "\n".join(lines)


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


class _Entry:
    """Per-call cache for one set of step arrays: its pattern and what follows from it."""

    __slots__ = ("pat", "src", "dst", "reduce", "any_reduce", "single_run", "tb", "cost",
                 "total", "acc", "uses", "lat", "inv", "owner", "perm")

    def __init__(self, step, pat, fabric, params, fkey):
        self.pat = pat
        self.src, self.dst = step.src, step.dst
        red = step.reduce
        self.reduce = red if red.dtype == np.bool_ else np.asarray(red, dtype=bool)
        # only read where a reduction costs something
        self.any_reduce = bool(params.gamma) and bool(self.reduce.any())
        m = len(step)
        # one run per transfer: run_ptr is 0..m (compared as bytes: one memcmp, no ufuncs)
        self.single_run = len(step.run_len) == m and step.run_ptr.tobytes() == _iota_bytes(m + 1)
        self.owner = None if self.single_run else step.run_owner()
        self.lat, self.inv = fabric.figures(pat, params, fkey)
        self.perm = pat.permutation(fabric.nranks)
        self.tb = self.cost = self.total = None
        self.acc = None
        self.uses = 0


_IOTA: dict = {}
_min, _max = np.minimum.reduce, np.maximum.reduce


def _iota_bytes(n: int) -> bytes:
    """``np.arange(n, dtype=np.int64).tobytes()`` (the last few sizes kept)."""
    got = _IOTA.get(n)
    if got is None:
        if len(_IOTA) > 16:
            _IOTA.clear()
        got = _IOTA[n] = np.arange(n, dtype=np.int64).tobytes()
    return got


def _step_key(st) -> tuple:
    """Identity of a step's arrays (steps that share them, like a ring's, share an entry)."""
    return (id(st.src), id(st.dst), id(st.reduce), id(st.run_ptr), id(st.run_len))


def _prefetch(steps, k, entries, fabric, params, fkey, size) -> tuple[int, int]:
    """Make the entries of the steps from ``k`` on that have none, up to ``_PREFETCH``
    transfers: their patterns are routed and costed together and, when every chunk has
    ``size`` bytes (``size`` None otherwise), their bytes and durations computed together.

    Returns the index of the first step not looked at and the transfers of the new entries.
    Batching changes no number: every figure is elementwise, and per-step byte totals are
    sums of whole numbers.
    """
    fresh: dict = {}
    total = 0
    n = len(steps)
    while k < n and total < _PREFETCH:
        st = steps[k]
        k += 1
        key = _step_key(st)
        if key in entries or key in fresh or not len(st):
            continue
        fresh[key] = (st, pattern_key(st.src, st.dst))
        total += len(st)
    if len(fresh) > 1:
        pats = fabric.prepare([(pk, st.src, st.dst) for st, pk in fresh.values()], params, fkey)
    else:
        pats = [fabric.pattern(st.src, st.dst, pk) for st, pk in fresh.values()]
    made = []
    for (key, (st, _)), pat in zip(fresh.items(), pats, strict=True):
        ent = entries[key] = _Entry(st, pat, fabric, params, fkey)
        if size is not None and ent.single_run and len(st) <= _SMALL_STEP \
                and not getattr(params, "size_factors", ()):  # calibrated: per step, _cost
            made.append((st, ent))
    if len(made) > 1:
        _batch_costs(made, size, params)
    return k, total


def _flat(values, sizes):
    """Per-entry figures (arrays, or scalars for every transfer) as one array, or one scalar
    when all are the same scalar."""
    if not any(isinstance(v, np.ndarray) for v in values) and len(set(map(float, values))) == 1:
        return values[0]
    return np.concatenate([v if isinstance(v, np.ndarray) else np.full(m, v, dtype=np.float64)
                           for v, m in zip(values, sizes, strict=True)])


def _batch_costs(made, size, params) -> None:
    """Bytes, durations and byte totals of single-run entries under uniform chunks, in one pass;
    the entries keep slices (first use still to come: ``uses`` 0)."""
    sizes = [len(st) for st, _ in made]
    tb = np.concatenate([st.run_len for st, _ in made]) * size
    ents = [ent for _, ent in made]
    any_reduce = any(ent.any_reduce for ent in ents)
    red = np.concatenate([ent.reduce for ent in ents]) if any_reduce else None
    cost = _cost_of(_flat([e.lat for e in ents], sizes), _flat([e.inv for e in ents], sizes),
                    red, any_reduce, tb, params)
    offs = [0, *accumulate(sizes)]
    totals = np.add.reduceat(tb, offs[:-1]).tolist()
    for i, ent in enumerate(ents):
        a, b = offs[i], offs[i + 1]
        ent.tb = ent.acc = tb[a:b]
        ent.cost, ent.total, ent.uses = cost[a:b], totals[i], 0


def _transfer_bytes(step, ent, nchunks, prefix2, size):
    """Bytes of every transfer of ``step``: runs of ``size``-byte chunks, or (``size`` None)
    a prefix-sum difference."""
    m = len(step)
    if size is not None:
        rb = step.run_len * size
    else:
        a = step.starts(nchunks)
        rb = prefix2[a + step.run_len] - prefix2[a]
    if ent.single_run:
        return rb if rb.dtype == np.float64 else rb.astype(np.float64)
    return np.bincount(ent.owner, weights=rb, minlength=m)


def _cost(ent, tb, params):
    """Duration of every transfer of an entry, given its bytes."""
    if getattr(params, "size_factors", ()):  # a calibrated machine: the one hook
        from sim.models import calibrated_cost

        return calibrated_cost(params, ent.lat, ent.inv, tb, ent.reduce, ent.src, ent.dst)
    return _cost_of(ent.lat, ent.inv, ent.reduce, ent.any_reduce, tb, params)


def _cost_of(lat, inv, reduce, any_reduce, tb, params):
    if params.name == "loggp":
        cost = 2.0 * params.o + lat + np.maximum(tb - 1.0, 0.0) * inv
    else:
        cost = lat + tb * inv
    if any_reduce:
        cost = cost + np.where(reduce, tb * params.gamma, 0.0)
    if getattr(cost, "shape", None) != tb.shape or cost.dtype != np.float64:
        cost = np.broadcast_to(np.asarray(cost, dtype=np.float64), tb.shape)
    return cost


class _Totals:
    """Bytes per rank and per link, folded in from the per-call entries."""

    def __init__(self, fabric, nranks):
        self.fabric = fabric
        self.sent = np.zeros(nranks)
        self.received = np.zeros(nranks)
        analytic = isinstance(fabric, AnalyticFabric)
        self.link_bytes = None if analytic else np.zeros(fabric.net.nlinks)
        self.keys: list = [] if analytic else None
        self.key_bytes: list = []
        self.nkeys = 0

    def fold(self, entries):
        # Entries of one pattern (a Rabenseifner all-gather step and its reduce-scatter
        # mirror) are summed first: the bytes are whole numbers, so the order is immaterial.
        acc_of: dict = {}
        for ent in entries:
            if ent.acc is None or not ent.uses:
                continue
            acc = ent.acc * ent.uses if ent.uses > 1 else ent.acc
            got = acc_of.get(id(ent.pat))
            acc_of[id(ent.pat)] = (ent.pat, acc if got is None else got[1] + acc)
        if not acc_of:
            return
        pats = [pat for pat, _ in acc_of.values()]
        acc = np.concatenate([a for _, a in acc_of.values()])
        p = len(self.sent)
        self.sent += np.bincount(np.concatenate([pat.src for pat in pats]), weights=acc,
                                 minlength=p)
        self.received += np.bincount(np.concatenate([pat.dst for pat in pats]), weights=acc,
                                     minlength=p)
        if self.link_bytes is not None:
            nl = len(self.link_bytes)
            rest = []
            for pat, a in acc_of.values():
                if pat.m > _SMALL_STEP and a.min() == a.max():
                    # every transfer of a large pattern carries the same bytes: count the
                    # links' uses instead of weighting every entry
                    self.link_bytes += np.bincount(pat.links[: pat.ptr[-1]], minlength=nl) * a[0]
                else:
                    rest.append((pat, a))
            if rest:
                links = np.concatenate([pat.links[: pat.ptr[-1]] for pat, _ in rest])
                per_link = np.repeat(np.concatenate([a for _, a in rest]),
                                     np.concatenate([pat.lens for pat, _ in rest]))
                self.link_bytes += np.bincount(links, weights=per_link, minlength=nl)
            return
        links = np.concatenate([pat.links[: pat.ptr[-1]] for pat in pats])
        per_link = np.repeat(acc, np.concatenate([pat.lens for pat in pats]))
        if self.keys is not None:
            self.keys.append(links)
            self.key_bytes.append(per_link)
            self.nkeys += len(links)
            if self.nkeys > 4 * _ANALYTIC_LINK_LIMIT:
                self._compact()
                if self.nkeys > _ANALYTIC_LINK_LIMIT:
                    self.keys = None
                    self.key_bytes = []

    def _compact(self):
        if self.keys:
            keys, inv = np.unique(np.concatenate(self.keys), return_inverse=True)
            self.key_bytes = [np.bincount(inv, weights=np.concatenate(self.key_bytes))]
            self.keys = [keys]
            self.nkeys = len(keys)

    def link_stats(self, params, time_s) -> LinkStats | None:
        fab = self.fabric
        inv = params.G if params.name == "loggp" else params.beta
        # beta = 0 is an infinitely fast link: it carries bytes but is never busy.
        rate = None if inv is None else (1.0 / inv if inv > 0 else np.inf)
        if self.link_bytes is not None:
            ids = np.flatnonzero(self.link_bytes > 0)
            b = self.link_bytes[ids]
            bw = fab.net.link_bandwidth[ids] if rate is None else np.full(len(ids), rate)
        elif self.keys is not None:
            self._compact()
            ids = self.keys[0] if self.keys else np.zeros(0, dtype=np.int64)
            b = self.key_bytes[0] if self.keys else np.zeros(0)
            nz = b > 0
            ids, b = ids[nz], b[nz]
            bw = np.full(len(ids), rate)
        else:
            return None
        return LinkStats(ids, b, bw, time_s, fab.link_names)


# --------------------------------------------------------------------------- the simulator


def simulate(schedule: Schedule, topology=None, nbytes: int = 0, model=None, *,
             placement=None, params=None, itemsize: int = 1, timeline: bool | None = None,
             ) -> SimResult:
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
        The cost model (see :mod:`sim.models`); default: the kind of ``params`` (or of a
        parameter object given as ``topology``), else Hockney.
    placement : optional
        Rank -> endpoint placement, as :func:`topologies.place` takes it.
    params : Hockney, Contention, LogGP or dict, optional
        The model's parameters (default: everything from the network, gamma 0).
    itemsize : int
        Bytes per element (1 by default: ``nbytes`` elements of one byte).
    timeline : bool, optional
        Keep every transfer's start and end; default on up to a million transfers.

    Examples
    --------
    >>> from collectives import build
    >>> r = simulate(build("allreduce", "ring", 4), Hockney(alpha=1e-6, beta=1e-9), 4000)
    >>> round(r.time_s * 1e6, 6)  # 2(p-1) alpha + 2(p-1)/p n beta
    12.0
    """
    # The loop allocates small objects (keys, entries) next to big graphs: with the collector
    # on, its full collections walk every dict of the graphs (several ms at 1024 ranks).
    with gc_paused():
        return _simulate(schedule, topology, nbytes, model, placement, params, itemsize,
                         timeline)


def _simulate(schedule, topology, nbytes, model, placement, params, itemsize, timeline
              ) -> SimResult:
    topology, params = _resolve(topology, model, params)
    p = schedule.nranks
    if isinstance(itemsize, bool) or not isinstance(itemsize, int) or itemsize < 1:
        raise ValueError(f"simulate: itemsize must be a positive integer, got {itemsize!r}")
    if isinstance(nbytes, bool) or not isinstance(nbytes, int | np.integer) or nbytes < 0:
        raise ValueError(f"simulate: nbytes must be a non-negative integer, got {nbytes!r}")
    nbytes = int(nbytes)
    fabric = fabric_for(topology, p, placement)
    C = schedule.nchunks
    n_elems = nbytes // itemsize
    # Chunk c holds elements [c n / C, (c + 1) n / C): all the same size when C divides n.
    uniform = n_elems % C == 0
    size = prefix2 = None
    if uniform:
        size = np.float64(n_elems // C) * itemsize
    else:
        sizes = np.diff(chunk_bounds(n_elems, C)).astype(np.float64) * itemsize
        prefix2 = np.concatenate(([0.0], np.cumsum(np.concatenate((sizes, sizes)))))
    nsteps = len(schedule.steps)
    ntransfers = schedule.ntransfers
    keep = ntransfers <= TIMELINE_LIMIT if timeline is None else bool(timeline)
    loggp = params.name == "loggp"

    ready = np.zeros(p)
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
    totals = _Totals(fabric, p)

    # Small steps' first start and last end are taken in batches (two calls per step less).
    held = ([], [], [])
    held_n = 0
    for k, st in enumerate(schedule.steps):
        m = len(st)
        s_count[k] = m
        if m == 0:
            if held_n:
                held_n = _step_extremes(held, s_start, s_end)
            s_start[k] = s_end[k] = s_end[k - 1] if k else 0.0
            continue
        key = _step_key(st)
        ent = entries.get(key)
        if ent is None:
            if pending > _FLUSH_LIMIT:
                totals.fold(entries.values())
                entries.clear()
                pending = 0
            if k >= scanned:
                scanned, added = _prefetch(schedule.steps, k, entries, fabric, params, fkey,
                                           size)
                pending += added
                ent = entries[key]
            else:  # its prefetched entry went with a flush
                ent = entries[key] = _Entry(st, fabric.pattern(st.src, st.dst), fabric, params,
                                            fkey)
                pending += m
        src, dst = ent.src, ent.dst
        if uniform and ent.cost is not None:
            tb, cost, total = ent.tb, ent.cost, ent.total
            ent.uses += 1  # the first use of a prefetched entry makes it 1
        else:
            tb = _transfer_bytes(st, ent, C, prefix2, size)
            cost = _cost(ent, tb, params)
            total = float(tb.sum())
            if uniform:
                ent.tb, ent.cost, ent.total, ent.acc, ent.uses = tb, cost, total, tb, 1
            else:
                ent.acc = tb.copy() if ent.acc is None else ent.acc + tb
                ent.uses = 1
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
        if m > _SMALL_STEP:
            s_start[k] = _min(start)
            s_end[k] = _max(end)
        else:
            held[0].append(k)
            held[1].append(start)
            held[2].append(end)
            held_n += m
            if held_n > _SMALL_HELD:
                held_n = _step_extremes(held, s_start, s_end)
        s_bytes[k] = total
        if keep:
            tl.append((k, st, tb, start, end))

    if held_n:
        _step_extremes(held, s_start, s_end)
    totals.fold(entries.values())
    time_s = float(ready.max()) if p else 0.0
    timeline_obj = None
    if keep:
        timeline_obj = _timeline(tl)
    return SimResult(
        collective=schedule.collective, algorithm=schedule.algorithm, nranks=p, nbytes=nbytes,
        itemsize=itemsize, model=params.name, params=params, topology=fabric.description,
        time_s=time_s, nsteps=nsteps, ntransfers=ntransfers,
        steps=StepStats(s_start, s_end, s_bytes, s_count), rank_finish=ready,
        rank_bytes_sent=totals.sent, rank_bytes_received=totals.received,
        timeline=timeline_obj, links=totals.link_stats(params, time_s),
    )


def _step_extremes(held, s_start, s_end) -> int:
    """Fill in the first start and last end of the held steps (``held``: their indices,
    start and end arrays, emptied); return 0, the transfers now held."""
    ks, starts, ends = held
    offs = [0, *accumulate(len(a) for a in starts[:-1])]
    s_start[ks] = np.minimum.reduceat(np.concatenate(starts), offs)
    s_end[ks] = np.maximum.reduceat(np.concatenate(ends), offs)
    for lst in held:
        lst.clear()
    return 0


def _timeline(parts) -> Timeline:
    if not parts:
        z = np.zeros(0)
        zi = np.zeros(0, dtype=np.int64)
        return Timeline(zi, zi, zi, z, np.zeros(0, dtype=bool), z, z)
    return Timeline(
        np.concatenate([np.full(len(st), k, dtype=np.int64) for k, st, *_ in parts]),
        np.concatenate([st.src for _, st, *_ in parts]).astype(np.int64),
        np.concatenate([st.dst for _, st, *_ in parts]).astype(np.int64),
        np.concatenate([np.asarray(tb, dtype=np.float64) for _, _, tb, _, _ in parts]),
        np.concatenate([np.asarray(st.reduce, dtype=bool) for _, st, *_ in parts]),
        np.concatenate([s for *_, s, _ in parts]),
        np.concatenate([e for *_, e in parts]),
    )
