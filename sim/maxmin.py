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

__all__ = ["maxmin_rates", "maxmin_rates_lists", "maxmin_rates_many", "maxmin_rates_weighted"]

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
            return maxmin_rates_weighted(ptr, links, cap, share=share)
    return _solve(ptr, links, *_caps(cap, links))


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


def maxmin_rates_weighted(ptr: np.ndarray, links: np.ndarray, capacity: np.ndarray,
                          weight: np.ndarray | None = None, share: np.ndarray | None = None,
                          bound: np.ndarray | None = None) -> np.ndarray:
    """Weighted max-min fair rates, as SimGrid's lmm solves them.

    Flow ``f`` has weight ``w_f`` (``1 / sharing penalty`` in lmm's terms; default 1) and
    uses a fraction ``share_e`` of its rate on each of its path entries ``e`` (lmm's
    *consumption weight*; default 1), so link ``l`` is bound by
    ``sum_{e on l} share_e * rate_f <= capacity_l``; ``bound_f`` (default none) caps a flow.
    Progressive filling raises a common level ``theta`` with ``rate_f = w_f * theta`` until
    a link saturates or a flow meets its bound; those flows freeze and the rest go on. Each
    round freezes every link that is a local minimum of ``remaining / sum(share * w)``,
    exactly as :func:`maxmin_rates` does for unit weights and shares (which it equals).

    >>> # two flows on one link of 12, weights 1 and 2 (latencies 2 and 1 under rtt)
    >>> maxmin_rates_weighted(np.array([0, 1, 2]), np.array([0, 0]), np.array([12.0]),
    ...                       weight=np.array([1.0, 2.0])).tolist()
    [4.0, 8.0]
    """
    ptr = np.asarray(ptr, dtype=np.int64)
    m = len(ptr) - 1
    links = np.asarray(links, dtype=np.int64)[: ptr[-1]]
    cap = np.asarray(capacity, dtype=np.float64)
    w = np.ones(m) if weight is None else np.asarray(weight, dtype=np.float64)
    lens = ptr[1:] - ptr[:-1]
    flow_of = np.repeat(np.arange(m), lens)
    a = np.ones(len(links)) if share is None else np.asarray(share, dtype=np.float64)[: ptr[-1]]
    theta_cap = np.full(m, np.inf)
    if bound is not None:
        theta_cap = np.asarray(bound, dtype=np.float64) / w
    rate = np.full(m, np.inf)
    if m == 0:
        return rate
    # links renumbered 0..nu-1 over the links used
    used, lk = np.unique(links, return_inverse=True)
    nu = len(used)
    rem = cap[used].copy()
    coef = a * w[flow_of]
    load = np.bincount(lk, weights=coef, minlength=nu)
    active = np.ones(m, dtype=bool)
    if not len(links):
        fin = np.isfinite(theta_cap)
        rate[fin] = (theta_cap * w)[fin]
        return rate
    ent_on = np.ones(len(links), dtype=bool)
    level = np.empty(nu)
    while active.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(rem, load, out=level)
        level[load <= 0] = np.inf
        ent_level = level[lk]
        theta = theta_cap.copy()
        sel = ent_on
        np.minimum.at(theta, flow_of[sel], ent_level[sel])
        theta[~active] = np.inf
        # a link is a local minimum when no active flow on it has a smaller level elsewhere
        lower = np.zeros(nu, dtype=bool)
        ent_theta = theta[flow_of]
        lower[lk[sel & (ent_theta < ent_level)]] = True
        sat_link = ~lower & np.isfinite(level)
        frozen = active & (theta_cap <= theta)
        hit = sel & sat_link[lk] & (ent_level == ent_theta)
        frozen[flow_of[hit]] = True
        frozen &= active
        if not frozen.any():  # only unbounded flows on unconstrained links remain
            break
        rate[frozen] = theta[frozen] * w[frozen]
        gone = ent_on & frozen[flow_of]
        rem -= np.bincount(lk[gone], weights=(coef * theta[flow_of])[gone], minlength=nu)
        np.maximum(rem, 0.0, out=rem)
        load -= np.bincount(lk[gone], weights=coef[gone], minlength=nu)
        load[np.abs(load) < 1e-300] = 0.0
        ent_on &= ~gone
        active &= ~frozen
    return rate


def maxmin_rates_lists(paths: list, fcap: list, capacity: list) -> list:
    """:func:`maxmin_rates` of a small problem held in Python lists, in plain Python (a
    problem of a few flows costs less so than the fixed cost of the vectorised rounds).

    ``paths[i]`` lists the links flow ``i`` crosses that another flow may cross too (links
    only it crosses may be left out), ``fcap[i]`` is the smallest capacity on its whole path
    (``inf`` for an empty path) and ``capacity[l]`` link ``l``'s. Every capacity must be
    finite. The rounds, and the order in which each link's frozen rates are summed, are
    :func:`maxmin_rates`' own, so the rates are the very same floats.

    >>> maxmin_rates_lists([[0], [0, 1]], [10.0, 2.0], [10.0, 2.0])
    [8.0, 2.0]
    """
    count: dict = {}
    for links in paths:
        for link in links:
            count[link] = count.get(link, 0) + 1
    rate = list(fcap)
    active = []
    for i, links in enumerate(paths):
        mine = [link for link in links if count[link] > 1]
        if mine:
            active.append((i, mine))
    if not active:
        return rate
    rem = {link: capacity[link] for link, c in count.items() if c > 1}
    cnt = {link: float(count[link]) for link in rem}
    while True:
        share = {link: rem[link] / c for link, c in cnt.items() if c > 0}
        botts = []
        held = set()
        for i, links in active:
            b = fcap[i]
            for link in links:
                x = share[link]
                if x < b:
                    b = x
            botts.append(b)
            for link in links:
                if b < share[link]:
                    held.add(link)
        keep = []
        sub: dict = {}
        for (i, links), b in zip(active, botts, strict=True):
            rate[i] = b
            if fcap[i] <= b or any(link not in held for link in links):
                for link in links:  # summed in flow order, as np.bincount does
                    sub[link] = sub.get(link, 0.0) + b
                    cnt[link] -= 1.0
            else:
                keep.append((i, links))
        if not keep:
            return rate
        for link, x in sub.items():
            y = rem[link] - x
            rem[link] = y if y > 0.0 else 0.0
        active = keep
