"""The flow-level simulation behind the contention model: SimGrid's CM02 semantics with
cross-traffic off, driven by events.

What it owns: given every transfer of a schedule (its step, ranks, bytes, path latency, route
as a CSR of link ids with optional per-entry shares, rate bound, sharing weight and the time
of the reduction that follows it), when each transfer starts and ends.

* A transfer of step ``k`` becomes a flow when both its ranks have arrived and are done with
  every transfer of theirs of a step ``< k`` (asynchronous progress; the IR's rule). Its start
  is that moment.
* It first pays its path latency, using no bandwidth (CM02's latency phase: a variable of
  penalty 0), then moves its bytes.
* Whenever a flow enters or leaves its bandwidth phase, the rates of the flows then moving
  data are their weighted max-min fair allocation (:func:`sim.maxmin.maxmin_rates_weighted`):
  ``sum share * rate <= capacity`` on every directed link, a rate never above the flow's
  bound (its path's bottleneck), each flow's level scaled by its weight. Only the connected
  component (flows linked by shared links) of the flows that started or ended is solved
  again; the others keep their rates. Events at equal times (to 1e-12 relative) are taken
  together.
* When its bytes are in, a reducing transfer spends its reduction time at the receiver (no
  bandwidth), then the transfer is done for both ranks (as in :mod:`sim.engine`'s other
  models, so that the closed forms hold).

Every figure a flow needs is computed by :func:`sim.costs.flow_figures`; this module only
schedules.

Cost. Work is per event and per flow whose rate is re-solved, never per active flow: the next
event time comes from a heap (entries made stale by a re-solve are skipped when they surface);
each link that can carry two flows at once keeps the set of flows moving data on it, and the
component of the changed links is a walk over those sets (a link whose transfers all share a
sender, or a receiver, one per step, never carries two flows at once and is left out); a
component of few route entries is solved in plain Python by
:func:`sim.maxmin.maxmin_rates_lists`, a larger one by the vectorised solver. A component's
flows reach the solver in the order they entered their bandwidth phase, and the solvers sum
each link's rates in that order, so the times are the same floats however the component was
found (tests/test_flows_regression.py checks them against the plain loop bit for bit).
"""

from __future__ import annotations

import heapq

import numpy as np

from sim.maxmin import maxmin_rates, maxmin_rates_lists, maxmin_rates_weighted

__all__ = ["simulate_flows"]

#: Events closer than this (relative to the time) are one event.
EVENT_RTOL = 1e-12
#: A component of at most this many route entries (on links others may cross) is solved in
#: plain Python (:func:`sim.maxmin.maxmin_rates_lists`): below it that is cheaper than the
#: vectorised rounds' fixed cost, and it gives the same floats.
SMALL_COMPONENT = 96
#: Transfers ending at one instant up to this many are booked on Python ints, not arrays.
SMALL_BATCH = 16
_DONE = np.iinfo(np.int64).max
_WAIT, _LAT, _BW, _POST, _FIN = 0, 1, 2, 3, 4


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + c)`` for every pair (vectorised)."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offs = np.cumsum(counts) - counts
    return np.repeat(starts - offs, counts) + np.arange(total)


def _starts(counts: np.ndarray) -> np.ndarray:
    """Offsets of consecutive segments of the given lengths."""
    out = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=out[1:])
    return out


def _shared_routes(step, src, dst, ptr, links, nlinks):
    """The routes less the links that never carry two flows at once, as a CSR ``(ptr,
    links)``: a link is left out when every transfer crossing it has one sender, or one
    receiver, and no two of them are of one step. A rank's transfers of different steps never
    overlap (it finishes one step before it starts the next), so such a link only ever has
    one flow and joins no flows into a component."""
    lens = ptr[1:] - ptr[:-1]
    e_link = links[: ptr[-1]]
    e_tr = np.repeat(np.arange(len(lens)), lens)
    n = max(nlinks, 1)
    one_end = np.zeros(n, dtype=bool)
    for who in (src, dst):
        w = who[e_tr]
        lo = np.full(n, np.iinfo(np.int64).max)
        hi = np.full(n, -1)
        np.minimum.at(lo, e_link, w)
        np.maximum.at(hi, e_link, w)
        one_end |= lo == hi
    # ... and one transfer per step: no (link, step) pair twice
    e_step = step[e_tr]
    order = np.lexsort((e_step, e_link))
    sl, ss = e_link[order], e_step[order]
    twice = (sl[1:] == sl[:-1]) & (ss[1:] == ss[:-1])
    one_end[sl[1:][twice]] = False
    keep = ~one_end[e_link]
    kept = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(keep, out=kept[1:])
    return kept[ptr], e_link[keep]


def simulate_flows(step, src, dst, nbytes, lat, post, ptr, links, capacity, *, nranks: int,
                   arrival=None, share=None, bound=None, weight=None):
    """Start and end of every transfer under the flow model; returns ``(start, end, finish)``
    (arrays per transfer, and each rank's finish time).

    Parameters are per transfer (``step`` non-decreasing, as in a schedule) except ``ptr,
    links`` (the routes: transfer ``t`` crosses ``links[ptr[t]:ptr[t+1]]``, compact ids into
    ``capacity``), ``share`` (per route entry: the fraction of the flow's rate on that link),
    ``arrival`` (per rank). ``post`` is the reduction time after the data is in; ``bound``
    caps a flow's rate; ``weight`` scales its share (1 / sharing penalty).
    """
    m = len(step)
    p = int(nranks)
    step = np.asarray(step, dtype=np.int64)
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    nbytes = np.asarray(nbytes, dtype=np.float64)
    lat = np.broadcast_to(np.asarray(lat, dtype=np.float64), (m,))
    post = np.broadcast_to(np.asarray(post, dtype=np.float64), (m,))
    ptr = np.asarray(ptr, dtype=np.int64)
    links = np.asarray(links, dtype=np.int64)
    cap = np.asarray(capacity, dtype=np.float64)
    lens = ptr[1:] - ptr[:-1]
    arrival = np.zeros(p) if arrival is None else np.asarray(arrival, dtype=np.float64)
    plain = share is None and weight is None and bound is None
    if share is not None:
        share = np.asarray(share, dtype=np.float64)
    if weight is not None:
        weight = np.broadcast_to(np.asarray(weight, dtype=np.float64), (m,))
    if bound is not None:
        bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), (m,))

    # Each rank's transfers in schedule order, grouped by step.
    r_all = np.concatenate((src, dst))
    t_all = np.concatenate((np.arange(m), np.arange(m)))
    order = np.lexsort((t_all, r_all))
    rt = t_all[order]
    r_sorted = r_all[order]
    s_sorted = step[rt]
    n_e = len(rt)
    rank_first = np.searchsorted(r_sorted, np.arange(p + 1))
    if n_e:
        new_grp = np.r_[True, (r_sorted[1:] != r_sorted[:-1]) | (s_sorted[1:] != s_sorted[:-1])]
        heads = np.flatnonzero(new_grp)
        grp_end = np.repeat(np.r_[heads[1:], n_e], np.diff(np.r_[heads, n_e]))
    else:
        grp_end = np.zeros(0, dtype=np.int64)

    state = np.zeros(m, dtype=np.int8)
    start = np.full(m, np.nan)
    end = np.full(m, np.nan)
    rate = np.zeros(m)
    rem = nbytes.copy()
    t_last = np.zeros(m)
    # Each flow's next event (the end of its latency, bandwidth or reduction phase) is tev[f]
    # and an entry (time, f) of the heap; an entry whose time is no longer tev[f] is stale.
    # tev[f] is inf while f has no event pending or is being handled.
    tev = [np.inf] * m
    heap: list = []
    # Order of entry into the latency and the bandwidth phase: a component's flows go to the
    # solver in bandwidth-entry order (the order in which each link's rates are summed).
    lat_seq = np.zeros(m, dtype=np.int64)
    bw_order = [0] * m
    n_lat = n_bw = n_moving = 0
    on_link: dict = {}  # link -> the flows in their bandwidth phase that cross it
    route: dict = {}  # flow in its bandwidth phase -> its links that others may cross
    sh_ptr, sh_links = _shared_routes(step, src, dst, ptr, links, len(cap))
    # small components go to the plain-Python solver (unweighted, finite capacities)
    small_ok = plain and bool(np.isfinite(cap).all())
    fcap_l = cap_l = None
    if small_ok:
        fcap = np.full(m, np.inf)
        nz = lens > 0
        if nz.any():
            fcap[nz] = np.minimum.reduceat(cap[links[: ptr[-1]]], ptr[:-1][nz])
        fcap_l, cap_l = fcap.tolist(), cap.tolist()
    pos = rank_first[:-1].copy()
    cur = np.full(p, -1, dtype=np.int64)  # -1: not arrived yet
    outstanding = np.zeros(p, dtype=np.int64)
    finish = arrival.copy()
    arr_order = np.argsort(arrival, kind="stable")
    arr_t = arrival[arr_order].tolist()
    arr_next = 0
    empty = np.zeros(0, dtype=np.int64)
    src_l, dst_l = src.tolist(), dst.tolist()
    heappush, heappop = heapq.heappush, heapq.heappop

    def enter_group(ranks):
        """Ranks that are done with their current group (or just arrived at ``pos``): set
        their current step; return the transfers that can start now."""
        has = pos[ranks] < rank_first[ranks + 1]
        if not has.all():
            cur[ranks[~has]] = _DONE
            outstanding[ranks[~has]] = 0
            ranks = ranks[has]
        if not len(ranks):
            return empty
        ps = pos[ranks]
        cur[ranks] = s_sorted[ps]
        cnt = grp_end[ps] - ps
        outstanding[ranks] = cnt
        cand = rt[_ranges(ps, cnt)]
        k = step[cand]
        ok = (state[cand] == _WAIT) & (cur[src[cand]] == k) & (cur[dst[cand]] == k)
        return np.unique(cand[ok])

    def enter_few(ranks):
        """:func:`enter_group` for a few ranks (sorted) that are done with their current
        group, on Python ints; returns the same array."""
        for r in ranks:
            pos[r] = grp_end[pos[r]]
        for r in ranks:
            ps = int(pos[r])
            if ps < rank_first[r + 1]:
                cur[r] = s_sorted[ps]
                outstanding[r] = grp_end[ps] - ps
            else:
                cur[r] = _DONE
                outstanding[r] = 0
        cand = set()
        for r in ranks:
            ps = int(pos[r])
            if ps >= rank_first[r + 1]:
                continue
            k = cur[r]
            for t in rt[ps:grp_end[ps]].tolist():
                if state[t] == _WAIT and cur[src_l[t]] == k and cur[dst_l[t]] == k:
                    cand.add(t)
        return np.array(sorted(cand), dtype=np.int64)

    def push(flows, times):
        """Set the flows' next event times; an unchanged time keeps its heap entry."""
        for t, f in zip(times.tolist(), flows.tolist(), strict=True):
            if tev[f] != t:
                tev[f] = t
                heappush(heap, (t, f))

    while True:
        while heap and tev[heap[0][1]] != heap[0][0]:
            heappop(heap)
        t_now = heap[0][0] if heap else np.inf
        if arr_next < p and arr_t[arr_next] < t_now:
            t_now = arr_t[arr_next]
        if t_now == np.inf:
            break
        horizon = t_now + abs(t_now) * EVENT_RTOL
        due = []
        while heap and heap[0][0] <= horizon:
            t, f = heappop(heap)
            if tev[f] == t:
                tev[f] = np.inf
                due.append(f)
        lat_done = ended_bw = post_done = empty
        if due:
            due = np.array(due, dtype=np.int64)
            st = state[due]
            lat_done = due[st == _LAT]
            if len(lat_done) > 1:  # in the order they entered the latency phase
                lat_done = lat_done[np.argsort(lat_seq[lat_done], kind="stable")]
            ended_bw = due[st == _BW]
            post_done = due[st == _POST]
        started_bw = [lat_done]
        done = [post_done]
        if len(ended_bw):
            n_moving -= len(ended_bw)
            rate[ended_bw] = 0.0
            rem[ended_bw] = 0.0
            pe = post[ended_bw]
            now_done = pe <= 0
            done.append(ended_bw[now_done])
            later = ended_bw[~now_done]
            if len(later):
                pe_end = t_now + pe[~now_done]
                soon = pe_end <= horizon  # within this instant: done now
                done.append(later[soon])
                state[later] = _POST
                if not soon.all():
                    push(later[~soon], pe_end[~soon])
        fresh = []
        fin = np.concatenate(done) if len(done) > 1 else done[0]
        if len(fin):
            state[fin] = _FIN
            end[fin] = t_now
            if len(fin) > SMALL_BATCH:
                np.subtract.at(outstanding, src[fin], 1)
                np.subtract.at(outstanding, dst[fin], 1)
                touched = np.unique(np.concatenate((src[fin], dst[fin])))
                free = touched[outstanding[touched] == 0]
                if len(free):
                    finish[free] = t_now
                    pos[free] = grp_end[pos[free]]
                    fresh.append(enter_group(free))
            else:  # a few transfers: the same steps on Python ints
                freed = []
                for f in fin.tolist():
                    for r in (src_l[f], dst_l[f]):
                        left = outstanding[r] - 1
                        outstanding[r] = left
                        if not left:
                            freed.append(r)
                if freed:
                    freed.sort()
                    free = np.array(freed, dtype=np.int64)
                    finish[free] = t_now
                    fresh.append(enter_few(freed))
        if arr_next < p and arr_t[arr_next] <= horizon:
            j = arr_next
            while j < p and arr_t[j] <= horizon:
                j += 1
            fresh.append(enter_group(arr_order[arr_next:j]))
            arr_next = j
        if fresh:
            new = np.unique(np.concatenate(fresh)) if len(fresh) > 1 else fresh[0]
            if len(new):
                start[new] = t_now
                lt = lat[new]
                wait = lt > 0
                if wait.any():
                    w = new[wait]
                    state[w] = _LAT
                    lat_seq[w] = np.arange(n_lat, n_lat + len(w))
                    n_lat += len(w)
                    push(w, t_now + lt[wait])
                    started_bw.append(new[~wait])
                else:
                    started_bw.append(new)
        newbw = np.concatenate(started_bw) if len(started_bw) > 1 else started_bw[0]
        seed_links: list = []
        for f in ended_bw.tolist():
            rl = route.pop(f)
            seed_links += rl
            for link in rl:
                fl = on_link[link]
                fl.discard(f)
                if not fl:
                    del on_link[link]
        ended_links = len(seed_links)
        lone = True  # every changed link now has at most the one new flow on it
        if len(newbw):
            state[newbw] = _BW
            t_last[newbw] = t_now
            n_moving += len(newbw)
            for f in newbw.tolist():
                bw_order[f] = n_bw
                n_bw += 1
                rl = sh_links[sh_ptr[f]:sh_ptr[f + 1]].tolist()
                route[f] = rl
                seed_links += rl
                for link in rl:
                    fl = on_link.get(link)
                    if fl is None:
                        on_link[link] = {f}
                    else:
                        fl.add(f)
                        lone = False
        if not (len(newbw) or len(ended_bw)) or not n_moving:
            continue
        if lone and len(ended_bw):
            lone = not any(link in on_link for link in seed_links[:ended_links])
        if plain and lone:
            # Nothing else crosses the links that changed: the new flows run alone at their
            # paths' bottleneck, and no other rate moves.
            if len(newbw):
                nl_new = lens[newbw]
                new_e = links[_ranges(ptr[newbw], nl_new)]
                nz = nl_new > 0
                r = np.full(len(newbw), np.inf)
                if nz.any():
                    r[nz] = np.minimum.reduceat(cap[new_e], _starts(nl_new)[nz])
                rate[newbw] = r
                with np.errstate(divide="ignore", invalid="ignore"):
                    pr = t_now + np.where(rem[newbw] > 0, rem[newbw] / r, 0.0)
                push(newbw, pr)
            continue
        # Re-solve the component (flows joined by shared links) of the links that changed.
        comp_set = set(newbw.tolist())  # a new flow may have no link others can cross
        seen = set(seed_links)
        todo = list(seen)
        while todo:
            fl = on_link.get(todo.pop())
            if fl is None:
                continue
            for f in fl:
                if f not in comp_set:
                    comp_set.add(f)
                    for link in route[f]:
                        if link not in seen:
                            seen.add(link)
                            todo.append(link)
        comp_l = sorted(comp_set, key=bw_order.__getitem__)
        comp = np.array(comp_l, dtype=np.int64)
        old = comp[t_last[comp] < t_now]
        if len(old):
            rem[old] = np.maximum(rem[old] - rate[old] * (t_now - t_last[old]), 0.0)
            t_last[old] = t_now
        paths = None
        if small_ok:
            paths = [route[f] for f in comp_l]
            if sum(map(len, paths)) > SMALL_COMPONENT:
                paths = None
        if paths is not None:
            r = np.array(maxmin_rates_lists(paths, [fcap_l[f] for f in comp_l], cap_l))
        elif plain:
            c_len = lens[comp]
            c_ptr = np.zeros(len(comp) + 1, dtype=np.int64)
            np.cumsum(c_len, out=c_ptr[1:])
            c_links = links[_ranges(ptr[comp], c_len)]
            r = maxmin_rates(c_ptr, c_links, cap)
        else:
            c_len = lens[comp]
            c_ptr = np.zeros(len(comp) + 1, dtype=np.int64)
            np.cumsum(c_len, out=c_ptr[1:])
            c_idx = _ranges(ptr[comp], c_len)
            c_links = links[c_idx]
            r = maxmin_rates_weighted(
                c_ptr, c_links, cap, weight=None if weight is None else weight[comp],
                share=None if share is None else share[c_idx],
                bound=None if bound is None else bound[comp])
        rate[comp] = r
        with np.errstate(divide="ignore", invalid="ignore"):
            pr = t_now + np.where(rem[comp] > 0, rem[comp] / r, 0.0)
        push(comp, pr)
    return start, end, finish
