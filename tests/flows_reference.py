"""Reference copy of :func:`sim.flows.simulate_flows` as it was before the event loop was made
incremental (a heap of event times, components found through per-link flow sets): kept only so
that tests/test_flows_regression.py can check that the optimised loop gives the very same
start and end times. Not used by the library.

The original docstring follows.

The flow-level simulation behind the contention model: SimGrid's CM02 semantics with
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
"""

from __future__ import annotations

import numpy as np

from sim.maxmin import maxmin_rates, maxmin_rates_weighted

__all__ = ["simulate_flows"]

#: Events closer than this (relative to the time) are one event.
EVENT_RTOL = 1e-12
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
    lat_end = np.full(m, np.inf)
    pred = np.full(m, np.inf)
    post_end = np.full(m, np.inf)
    rate = np.zeros(m)
    rem = nbytes.copy()
    t_last = np.zeros(m)
    pos = rank_first[:-1].copy()
    cur = np.full(p, -1, dtype=np.int64)  # -1: not arrived yet
    outstanding = np.zeros(p, dtype=np.int64)
    finish = arrival.copy()
    in_lat = np.zeros(0, dtype=np.int64)
    in_bw = np.zeros(0, dtype=np.int64)
    in_post = np.zeros(0, dtype=np.int64)
    arr_order = np.argsort(arrival, kind="stable")
    arr_next = 0
    nlinks = len(cap)
    users = np.zeros(nlinks, dtype=np.int64)  # flows in their bandwidth phase per link
    is_new = np.zeros(m, dtype=bool)

    def enter_group(ranks):
        """Ranks that are done with their current group (or just arrived at ``pos``): set
        their current step; return the transfers that can start now."""
        has = pos[ranks] < rank_first[ranks + 1]
        cur[ranks[~has]] = _DONE
        outstanding[ranks[~has]] = 0
        ranks = ranks[has]
        if not len(ranks):
            return np.zeros(0, dtype=np.int64)
        ps = pos[ranks]
        cur[ranks] = s_sorted[ps]
        cnt = grp_end[ps] - ps
        outstanding[ranks] = cnt
        cand = rt[_ranges(ps, cnt)]
        k = step[cand]
        ok = (state[cand] == _WAIT) & (cur[src[cand]] == k) & (cur[dst[cand]] == k)
        return np.unique(cand[ok])

    while True:
        t_now = np.inf
        if len(in_lat):
            t_now = min(t_now, lat_end[in_lat].min())
        if len(in_bw):
            t_now = min(t_now, pred[in_bw].min())
        if len(in_post):
            t_now = min(t_now, post_end[in_post].min())
        if arr_next < p:
            t_now = min(t_now, arrival[arr_order[arr_next]])
        if not np.isfinite(t_now):
            break
        horizon = t_now + abs(t_now) * EVENT_RTOL
        started_bw = []
        ended_bw = np.zeros(0, dtype=np.int64)
        done = []
        if len(in_lat):
            sel = lat_end[in_lat] <= horizon
            if sel.any():
                started_bw.append(in_lat[sel])
                in_lat = in_lat[~sel]
        if len(in_bw):
            sel = pred[in_bw] <= horizon
            if sel.any():
                ended_bw = in_bw[sel]
                in_bw = in_bw[~sel]
                rate[ended_bw] = 0.0
                rem[ended_bw] = 0.0
                pe = post[ended_bw]
                now_done = pe <= 0
                done.append(ended_bw[now_done])
                later = ended_bw[~now_done]
                if len(later):
                    post_end[later] = t_now + pe[~now_done]
                    state[later] = _POST
                    in_post = np.concatenate((in_post, later))
        if len(in_post):
            sel = post_end[in_post] <= horizon
            if sel.any():
                done.append(in_post[sel])
                in_post = in_post[~sel]
        arrived = []
        while arr_next < p and arrival[arr_order[arr_next]] <= horizon:
            j = arr_next
            while j < p and arrival[arr_order[j]] <= horizon:
                j += 1
            arrived.append(arr_order[arr_next:j])
            arr_next = j
        fresh = []
        if done:
            fin = np.concatenate(done)
            if len(fin):
                state[fin] = _FIN
                end[fin] = t_now
                np.subtract.at(outstanding, src[fin], 1)
                np.subtract.at(outstanding, dst[fin], 1)
                touched = np.unique(np.concatenate((src[fin], dst[fin])))
                free = touched[outstanding[touched] == 0]
                if len(free):
                    finish[free] = t_now
                    pos[free] = grp_end[pos[free]]
                    fresh.append(enter_group(free))
        if arrived:
            ranks = np.concatenate(arrived)
            fresh.append(enter_group(ranks))
        if fresh:
            new = np.unique(np.concatenate(fresh))
            if len(new):
                start[new] = t_now
                lt = lat[new]
                wait = lt > 0
                if wait.any():
                    w = new[wait]
                    state[w] = _LAT
                    lat_end[w] = t_now + lt[wait]
                    in_lat = np.concatenate((in_lat, w))
                started_bw.append(new[~wait])
        newbw = np.concatenate(started_bw) if started_bw else np.zeros(0, dtype=np.int64)
        if len(newbw):
            state[newbw] = _BW
            t_last[newbw] = t_now
            in_bw = np.concatenate((in_bw, newbw))
        if len(ended_bw):
            np.subtract.at(users, links[_ranges(ptr[ended_bw], lens[ended_bw])], 1)
        if len(newbw):
            new_e = links[_ranges(ptr[newbw], lens[newbw])]
            np.add.at(users, new_e, 1)
        if not (len(newbw) or len(ended_bw)) or not len(in_bw):
            continue
        ended_e = links[_ranges(ptr[ended_bw], lens[ended_bw])] if len(ended_bw) else None
        if plain and (ended_e is None or not users[ended_e].any()) and (
                not len(newbw) or (users[new_e] == 1).all()):
            # Nothing else crosses the links that changed: the new flows run alone at their
            # paths' bottleneck, and no other rate moves.
            if len(newbw):
                nz = lens[newbw] > 0
                r = np.full(len(newbw), np.inf)
                if nz.any():
                    r[nz] = np.minimum.reduceat(cap[new_e], _starts(lens[newbw])[nz])
                rate[newbw] = r
                with np.errstate(divide="ignore", invalid="ignore"):
                    pred[newbw] = t_now + np.where(rem[newbw] > 0, rem[newbw] / r, 0.0)
            continue
        # Re-solve the component of the links whose flows changed.
        seed = np.concatenate((newbw, ended_bw))
        mark = np.zeros(nlinks, dtype=bool)
        mark[links[_ranges(ptr[seed], lens[seed])]] = True
        a_len = lens[in_bw]
        e_idx = _ranges(ptr[in_bw], a_len)
        e_link = links[e_idx]
        e_flow = np.repeat(np.arange(len(in_bw)), a_len)
        is_new[newbw] = True
        fm = is_new[in_bw]
        is_new[newbw] = False
        count = -1
        while True:
            fm[e_flow[mark[e_link]]] = True
            c = int(fm.sum())
            if c == count:
                break
            count = c
            mark[e_link[fm[e_flow]]] = True
        comp = in_bw[fm]
        old = comp[t_last[comp] < t_now]
        if len(old):
            rem[old] = np.maximum(rem[old] - rate[old] * (t_now - t_last[old]), 0.0)
            t_last[old] = t_now
        c_len = lens[comp]
        c_ptr = np.zeros(len(comp) + 1, dtype=np.int64)
        np.cumsum(c_len, out=c_ptr[1:])
        c_idx = _ranges(ptr[comp], c_len)
        c_links = links[c_idx]
        if plain:
            r = maxmin_rates(c_ptr, c_links, cap)
        else:
            r = maxmin_rates_weighted(
                c_ptr, c_links, cap, weight=None if weight is None else weight[comp],
                share=None if share is None else share[c_idx],
                bound=None if bound is None else bound[comp])
        rate[comp] = r
        with np.errstate(divide="ignore", invalid="ignore"):
            dt = np.where(rem[comp] > 0, rem[comp] / r, 0.0)
        pred[comp] = t_now + dt
    return start, end, finish
