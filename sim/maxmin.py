"""Max-min fair rates of flows over shared links, vectorised.

Progressive filling raises every flow's rate at the same pace and freezes the flows of a link
when it saturates. Done one saturation level at a time that is a loop over levels; this version
freezes many levels per round: a link whose fair share ``remaining / active flows`` is no larger
than the share of any link it shares a flow with (a *local* minimum) saturates at exactly that
share in progressive filling, whatever happens elsewhere (freezing a flow elsewhere at a lower
rate only raises the other links' shares). So each round freezes the flows of every local-minimum
link at its share, charges them to their links and repeats; the global minimum is always local,
so every round makes progress and the rounds are few (the depth of the bottleneck hierarchy).

Three things keep the rounds small and cheap.

* A link that only one flow crosses (a host's own up- and down-link: in most patterns most of
  the entries) never changes anyone else's share: its share is its capacity until its flow
  freezes, so it acts as a *cap* on that flow's rate and leaves the rounds, which run over the
  shared links only. The cap taken is the smallest capacity on the whole path, which changes
  nothing (a link's share never exceeds its capacity, and a shared link whose share reaches its
  capacity has that flow alone left) and, on a fabric of one link speed, is one number.
* A link is a local minimum exactly when none of its flows has a smaller bottleneck elsewhere
  (every flow's bottleneck is at most the share of each of its links): one comparison per
  (flow, link) entry and a scatter, with no per-link minimum.
* Per-flow minima and "any" are ``ufunc.at`` and scatters, not ``reduceat``, which pays a
  fixed cost per segment (a path is a few links).

All give the very numbers the plain rounds give: the same minima, and each link's remaining
capacity charged with the same rates in the same order.

:func:`maxmin_rates_many` solves several independent problems (the patterns of several steps)
on one set of links in one pass: each problem's links are renumbered apart, so the rounds run
side by side and each problem's rates are what it gets alone, with the per-call overhead paid
once per group of small problems.
"""

from __future__ import annotations

from itertools import accumulate

import numpy as np

__all__ = ["maxmin_rates", "maxmin_rates_many"]

#: :func:`maxmin_rates_many` solves problems together up to this many path entries in all ...
_BATCH_ENTRIES = 1 << 14
#: ... and this many link slots (problems x links).
_BATCH_SLOTS = 1 << 14


def maxmin_rates(ptr: np.ndarray, links: np.ndarray, capacity: np.ndarray,
                 share: np.ndarray | None = None) -> np.ndarray:
    """Max-min fair rate of every flow.

    Parameters
    ----------
    ptr, links : numpy.ndarray
        CSR of the flows' paths: flow ``i`` crosses links ``links[ptr[i]:ptr[i+1]]`` (ids into
        ``capacity``; a flow should cross a link at most once).
    capacity : numpy.ndarray
        Bandwidth of every link.
    share : numpy.ndarray, optional
        Per entry of ``links``: the fraction of the flow's rate that crosses that link (a flow
        spread over several paths); the constraint is then ``sum_f share_fl * rate_f <=
        capacity_l``. Default 1 everywhere.

    Returns
    -------
    numpy.ndarray
        Rate of every flow (``inf`` for a flow that crosses no link).

    Examples
    --------
    Two flows share link 0 (capacity 10), the second also crosses link 1 (capacity 2):

    >>> maxmin_rates(np.array([0, 1, 3]), np.array([0, 0, 1]), np.array([10.0, 2.0])).tolist()
    [8.0, 2.0]
    """
    ptr = np.asarray(ptr, dtype=np.int64)
    links = np.asarray(links, dtype=np.int64)[: ptr[-1]]
    cap = np.asarray(capacity, dtype=np.float64)
    if share is not None:
        share = np.asarray(share, dtype=np.float64)[: ptr[-1]]
        if not (share == 1.0).all():
            return _solve_weighted(ptr, links, cap, share)
    return _solve(ptr, links, *_caps(cap, links))


def _solve_weighted(ptr, links, cap, share) -> np.ndarray:
    """Progressive filling with per-entry weights: every unfrozen flow's rate rises at the
    same pace; a link fills when ``sum share * rate`` reaches its capacity, and freezes the
    flows that cross it. One saturation level per round (the plain algorithm)."""
    m = len(ptr) - 1
    flow = np.repeat(np.arange(m), np.diff(ptr))
    keys, local = np.unique(links, return_inverse=True)
    rem = cap[keys].astype(np.float64).copy()
    rate = np.zeros(m)
    active = np.diff(ptr) > 0
    rate[~active] = np.inf
    while active.any():
        on = active[flow]
        w = np.bincount(local[on], weights=share[on], minlength=len(keys))
        used = w > 0
        level = np.full(len(keys), np.inf)
        level[used] = rem[used] / w[used]
        inc = level.min()
        rate[active] += inc
        rem -= w * inc
        full = used & (level <= inc * (1 + 1e-12))
        rem[full] = 0.0
        frozen = np.zeros(m, dtype=bool)
        frozen[flow[on & full[local]]] = True
        active &= ~frozen
    return rate


def _caps(cap: np.ndarray, links: np.ndarray):
    """``(capacity of each entry's link, None)``, or ``(None, the capacity)`` when all the
    links have one capacity."""
    if len(cap) and cap.min() == cap.max():
        return None, cap[0]
    return cap[links], None


def maxmin_rates_many(ptr: np.ndarray, links: np.ndarray, capacity: np.ndarray,
                      nflows) -> np.ndarray:
    """:func:`maxmin_rates` of several independent problems on the same links, in few passes.

    ``(ptr, links)`` is the CSR of all the problems' flows one problem after the other, and
    ``nflows[j]`` the number of flows of problem ``j``; flows of different problems never share
    a link, even where their link ids are equal. Returns the rates of all the flows, each exactly
    what :func:`maxmin_rates` gives its problem alone.

    >>> cap = np.array([10.0, 2.0])
    >>> maxmin_rates_many(np.array([0, 1, 3, 4]), np.array([0, 0, 1, 0]), cap, [2, 1]).tolist()
    [8.0, 2.0, 10.0]
    """
    ptr = np.asarray(ptr, dtype=np.int64)
    links = np.asarray(links, dtype=np.int64)[: ptr[-1]]
    cap = np.asarray(capacity, dtype=np.float64)
    nl = max(len(cap), 1)
    fo = [0, *accumulate(int(x) for x in nflows)]
    eo = ptr[fo].tolist()
    rate = np.empty(len(ptr) - 1)
    one = len(cap) and cap.min() == cap.max()
    j = 0
    while j < len(nflows):
        # problems j..k-1 go together while they are small: a pass over a few thousand
        # entries costs mostly its call overhead, so small problems share it; but the link
        # counts of merged problems spread over problems x links slots, and once those
        # leave the cache a merged pass is slower than separate ones
        k = j + 1
        while (k < len(nflows) and eo[k + 1] - eo[j] <= _BATCH_ENTRIES
               and (k + 1 - j) * nl <= _BATCH_SLOTS):
            k += 1
        f0, f1, e0, e1 = fo[j], fo[k], eo[j], eo[k]
        lk = links[e0:e1]
        keys = lk
        if k - j > 1:
            keys = lk + np.repeat(np.arange(k - j, dtype=np.int64) * nl,
                                  [b - a for a, b in zip(eo[j:k], eo[j + 1:k + 1], strict=True)])
        rate[f0:f1] = _solve(ptr[f0:f1 + 1] - e0, keys, *((None, cap[0]) if one else
                                                           (cap[lk], None)))
        j = k
    return rate


def _solve(ptr: np.ndarray, keys: np.ndarray, cap_e, cap1) -> np.ndarray:
    """Rates of the flows of CSR ``(ptr, keys)`` (``keys``: non-negative link numbers), where
    ``cap_e`` is the capacity of each entry's link, or None when every link has capacity
    ``cap1``.
    """
    m = len(ptr) - 1
    rate = np.empty(m)
    rate.fill(np.inf)
    if m == 0 or len(keys) == 0:
        return rate
    lens = ptr[1:] - ptr[:-1]
    flow_all = np.arange(m).repeat(lens)
    # The smallest capacity on each path caps its flow (a link's share never exceeds its
    # capacity, so this changes no bottleneck; it stands in for the links used by one flow).
    if cap_e is None:
        lo, uniform = cap1, True
    else:
        lo = cap_e.min()
        uniform = lo == cap_e.max()
    if uniform:  # one capacity (a uniform fabric): no per-path minimum to take
        fcap = lo
        rate[lens > 0] = lo
    else:
        fcap = np.full(m, np.inf)
        np.minimum.at(fcap, flow_all, cap_e)
        rate[:] = fcap
    count = np.bincount(keys)
    many = count > 1
    sidx = many[keys].nonzero()[0]
    if not len(sidx):
        return rate  # no link carries two flows: every flow runs at its cap
    # The rounds run over the links that several flows share.
    sflow = flow_all[sidx]
    first = np.empty(len(sflow), dtype=bool)
    first[0] = True
    np.not_equal(sflow[1:], sflow[:-1], out=first[1:])
    ids = sflow[first]  # the flows crossing a shared link, in order
    flow_of = first.cumsum()
    flow_of -= 1
    capf = fcap if uniform else fcap[ids]
    lut = many.cumsum()  # shared link -> 1..nu
    nu = int(lut[-1])
    links = lut[keys[sidx]]
    links -= 1
    cnt = count[many].astype(np.float64)
    if uniform:
        rem = np.empty(nu)
        rem.fill(lo)
    else:
        rem = np.empty(nu)
        rem[links] = cap_e[sidx]
    share = np.empty(nu)
    held = np.empty(nu, dtype=bool)
    while True:
        n = len(ids)
        # A link that no active flow crosses is never read below: its share does not matter.
        np.divide(rem, cnt, out=share, where=cnt > 0)
        ent_share = share[links]
        if uniform:
            bott = np.empty(n)
            bott.fill(capf)
        else:
            bott = capf.copy()
        np.minimum.at(bott, flow_of, ent_share)
        ent_bott = bott[flow_of]
        # Saturated: no active flow crossing the link has a smaller bottleneck elsewhere (a
        # flow's bottleneck is never above the share of one of its links); a flow held at its
        # cap saturates a link of its own.
        held.fill(False)
        held[links[ent_bott < ent_share]] = True
        frozen = capf <= bott
        frozen[flow_of[~held[links]]] = True
        rate[ids] = bott  # final for the frozen flows; the others get theirs later
        if frozen.all():
            return rate
        gone = frozen[flow_of]
        lg = links[gone]
        rem -= np.bincount(lg, weights=ent_bott[gone], minlength=nu)
        np.maximum(rem, 0.0, out=rem)
        cnt -= np.bincount(lg, minlength=nu)
        keep = ~frozen
        stay = ~gone
        renum = keep.cumsum()
        renum -= 1
        flow_of = renum[flow_of[stay]]
        links = links[stay]
        ids = ids[keep]
        if not uniform:
            capf = capf[keep]
