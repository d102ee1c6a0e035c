"""The per-pattern fast path: what a step's arrays cost when its rates are fixed.

What it owns: the per-call cache of step patterns (:class:`Entry`: routes, latencies, rates,
bytes and durations of a step's transfers, computed once for all the steps that share the
arrays, and ahead of use a window at a time by :func:`prefetch`), the byte totals per rank
and per link (:class:`Totals`), and the proof that the contention model's per-step rates are
exact for a run (:class:`ExactCheck`).

When the per-step rates are exact. The flow model re-shares a link whenever a flow starts or
ends. The max-min rates of a step's transfers, computed once, are the flow model's rates
throughout when (i) the step's transfers that share a link with another of its transfers
(the *contended* ones) all enter their bandwidth phase at the same instant and end it at the
same instant, and (ii) no transfer of another step is moving data on a link of theirs
meanwhile. (ii) is checked per directed link (its last bandwidth-phase end so far must not
pass the next bandwidth-phase start), except on links that every flow crossing them shares a
rank through (a leaf endpoint's own links, every link of the analytic network): a rank's
transfers of different steps never overlap, so nothing can overlap there. Both checks are a
few vectorised operations per step; the first failure sends the whole run to the flow
simulation (:mod:`sim.flows`), so a run's answer is always the flow model's.
"""

from __future__ import annotations

from itertools import accumulate

import numpy as np

from sim.costs import transfer_cost
from sim.fabric import AnalyticFabric, pattern_key
from sim.models import Hockney, calibrated_cost, is_calibrated
from sim.results import LinkStats, Timeline

#: Figures of a latency-plus-bandwidth phase alone (no overheads, no reduction).
_FAIR_HOCKNEY = Hockney()

#: Per-call pattern transfers accumulated before their bytes are folded into the totals.
FLUSH_LIMIT = 4_000_000
#: Distinct (src, dst) pairs beyond which the analytic network keeps no per-link figures.
ANALYTIC_LINK_LIMIT = 16_000_000
#: Transfers of upcoming new steps whose patterns are routed and costed together, ahead of use.
PREFETCH = 1 << 18
#: Steps of at most this many transfers have their durations computed, and their first start /
#: last end taken, in batches (of up to SMALL_HELD transfers: small enough to stay in cache);
#: a larger step pays the per-call overhead alone.
SMALL_STEP = 512
SMALL_HELD = 1 << 15


class Entry:
    """Per-call cache for one set of step arrays: its pattern and what follows from it."""

    __slots__ = ("pat", "src", "dst", "reduce", "any_reduce", "single_run", "tb", "cost",
                 "total", "acc", "uses", "lat", "inv", "owner", "perm", "gscale", "bwcost",
                 "check", "written")

    def __init__(self, step, pat, fabric, params, fkey, rscale=None, written=None):
        self.pat = pat
        # per transfer, the fraction of its data its sender wrote earlier and the part of it
        # a reduction wrote (None: not costed; Schedule.sent_written_kinds)
        self.written = written
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
        # a slow rank's reductions: gamma times its factor (None: every factor 1)
        self.gscale = rscale[self.dst] if rscale is not None and self.any_reduce else None
        self.tb = self.cost = self.total = self.bwcost = self.check = None
        self.acc = None
        self.uses = 0

    def bandwidth_cost(self, tb) -> np.ndarray:
        """Latency plus bandwidth phase of every transfer (its duration less the reduction),
        cached with the bytes when they are the entry's own."""
        if not self.any_reduce:
            return self.cost if tb is self.tb else transfer_cost(
                self.lat, self.inv, None, False, tb, _FAIR_HOCKNEY)
        if tb is self.tb and self.bwcost is not None:
            return self.bwcost
        got = transfer_cost(self.lat, self.inv, None, False, tb, _FAIR_HOCKNEY)
        if tb is self.tb:
            self.bwcost = got
        return got


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


def step_key(st) -> tuple:
    """Identity of a step's arrays (steps that share them, like a ring's, share an entry)."""
    return (id(st.src), id(st.dst), id(st.reduce), id(st.run_ptr), id(st.run_len))


def prefetch(steps, k, entries, fabric, params, fkey, size, rscale=None, keys=None,
             written=None) -> tuple[int, int]:
    """Make the entries of the steps from ``k`` on that have none, up to ``PREFETCH``
    transfers: their patterns are routed and costed together and, when every chunk has
    ``size`` bytes (``size`` None otherwise), their bytes and durations computed together.

    ``keys`` are the steps' entry keys where they are not :func:`step_key` (a calibrated cost
    of written data tells steps apart by ``written``, each step's pair of fractions of
    :meth:`collectives.ir.Schedule.sent_written_kinds`, the second None where not priced).

    Returns the index of the first step not looked at and the transfers of the new entries.
    Batching changes no number: every figure is elementwise, and per-step byte totals are
    sums of whole numbers.
    """
    fresh: dict = {}
    total = 0
    n = len(steps)
    while k < n and total < PREFETCH:
        st = steps[k]
        key = step_key(st) if keys is None else keys[k]
        k += 1
        if key in entries or key in fresh or not len(st):
            continue
        fresh[key] = (st, pattern_key(st.src, st.dst), None if written is None else written[k - 1])
        total += len(st)
    if len(fresh) > 1:
        pats = fabric.prepare([(pk, st.src, st.dst) for st, pk, _ in fresh.values()], params,
                              fkey)
    else:
        pats = [fabric.pattern(st.src, st.dst, pk) for st, pk, _ in fresh.values()]
    made = []
    for (key, (st, _, w)), pat in zip(fresh.items(), pats, strict=True):
        ent = entries[key] = Entry(st, pat, fabric, params, fkey, rscale, w)
        if size is not None and ent.single_run and len(st) <= SMALL_STEP \
                and not is_calibrated(params):  # a calibrated cost needs its whole step
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
    gs = None
    if any_reduce and any(e.gscale is not None for e in ents):
        gs = np.concatenate([e.gscale if e.gscale is not None else np.ones(len(e.src))
                             for e in ents])
    cost = transfer_cost(_flat([e.lat for e in ents], sizes), _flat([e.inv for e in ents], sizes),
                         red, any_reduce, tb, params, gs)
    offs = [0, *accumulate(sizes)]
    totals = np.add.reduceat(tb, offs[:-1]).tolist()
    for i, ent in enumerate(ents):
        a, b = offs[i], offs[i + 1]
        ent.tb = ent.acc = tb[a:b]
        ent.cost, ent.total, ent.uses = cost[a:b], totals[i], 0


def transfer_bytes(step, ent, nchunks, prefix2, size):
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


def entry_cost(ent, tb, params):
    """Duration of every transfer of an entry, given its bytes."""
    if is_calibrated(params):  # a calibrated machine (bench calibrate): the one hook
        w, r = ent.written if ent.written is not None else (None, None)
        return calibrated_cost(params, ent.lat, ent.inv, tb, ent.reduce, ent.src, ent.dst,
                               ent.gscale, w, r)
    return transfer_cost(ent.lat, ent.inv, ent.reduce, ent.any_reduce, tb, params, ent.gscale)


class Totals:
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
                if pat.share is not None:  # a split flow puts its share of the bytes on a link
                    per_entry = np.repeat(a, pat.lens) * pat.share[: pat.ptr[-1]]
                    self.link_bytes += np.bincount(pat.links[: pat.ptr[-1]], weights=per_entry,
                                                   minlength=nl)
                elif pat.m > SMALL_STEP and a.min() == a.max():
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
            if self.nkeys > 4 * ANALYTIC_LINK_LIMIT:
                self._compact()
                if self.nkeys > ANALYTIC_LINK_LIMIT:
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


def step_extremes(held, s_start, s_end) -> int:
    """Fill in the first start and last end of the held steps (``held``: their indices,
    start and end arrays, emptied); return 0, the transfers now held."""
    ks, starts, ends = held
    offs = [0, *accumulate(len(a) for a in starts[:-1])]
    s_start[ks] = np.minimum.reduceat(np.concatenate(starts), offs)
    s_end[ks] = np.maximum.reduceat(np.concatenate(ends), offs)
    for lst in held:
        lst.clear()
    return 0


def make_timeline(parts) -> Timeline:
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


def _at(x, idx):
    """``x[idx]`` for an array, ``x`` itself for a scalar (a figure shared by all)."""
    return x[idx] if isinstance(x, np.ndarray) and x.ndim else x


class ExactCheck:
    """Proof, step by step, that a contention run's per-step rates are the flow model's (see
    the module docstring): :meth:`step` returns False at the first step where they might not
    be, and the run goes to :mod:`sim.flows`."""

    def __init__(self, fabric):
        # links a flow of another step could share: None where there are none
        self.open_links = fabric.open_links()
        self.busy = None
        if self.open_links is not None and self.open_links.any():
            self.busy = np.full(len(self.open_links), -np.inf)

    def _info(self, ent):
        if ent.check is None:
            pat = ent.pat
            links = pat.links[: pat.ptr[-1]]
            flow_of = np.repeat(np.arange(pat.m), pat.lens)
            contended = np.zeros(0, dtype=np.int64)
            if not len(links):
                pass
            elif self.open_links is not None:  # link ids are small: count them
                many = np.bincount(links, minlength=len(self.open_links))[links] > 1
                if many.any():
                    contended = np.unique(flow_of[many])
            elif not (pat.unique_src or pat.unique_dst):
                # analytic: a link is an ordered pair, shared only by a repeated pair
                _, inv, cnt = np.unique(links, return_inverse=True, return_counts=True)
                contended = np.unique(flow_of[cnt[inv.ravel()] > 1])
            chk_f = chk_l = None
            if self.busy is not None:
                sel = self.open_links[links]
                if sel.any():
                    chk_f, chk_l = flow_of[sel], links[sel]
            ent.check = (contended, chk_f, chk_l)
        return ent.check

    def step(self, ent, start, tb) -> bool:
        """Whether the step whose transfers start at ``start`` (``tb`` bytes) keeps the
        per-step rates exact; records its links' busy times."""
        contended, chk_f, chk_l = self._info(ent)
        if not len(contended) and chk_f is None:
            return True
        bwc = ent.bandwidth_cost(tb)
        if len(contended):
            bs = start[contended] + _at(ent.lat, contended)
            be = start[contended] + bwc[contended]
            if bs.min() != bs.max() or be.min() != be.max():
                return False
        if chk_f is not None:
            bs = start[chk_f] + _at(ent.lat, chk_f)
            old = self.busy[chk_l]
            if (old > bs).any():
                return False
            self.busy[chk_l] = np.maximum(old, start[chk_f] + bwc[chk_f])
        return True

    def shift(self, ent, by: float) -> None:
        """The entry's step repeated with every time later by ``by``: its links' busy times
        move with it."""
        _, chk_f, chk_l = self._info(ent)
        if chk_f is not None:
            self.busy[chk_l] += by
