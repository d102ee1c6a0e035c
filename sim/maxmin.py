"""Max-min fair rates of flows over shared links, vectorised.

Progressive filling raises every flow's rate at the same pace and freezes the flows of a link
when it saturates. Done one saturation level at a time that is a loop over levels; this version
freezes many levels per round: a link whose fair share ``remaining / active flows`` is no larger
than the share of any link it shares a flow with (a *local* minimum) saturates at exactly that
share in progressive filling, whatever happens elsewhere (freezing a flow elsewhere at a lower
rate only raises the other links' shares). So each round freezes the flows of every local-minimum
link at its share, charges them to their links and repeats; the global minimum is always local,
so every round makes progress and the rounds are few (the depth of the bottleneck hierarchy).
"""

from __future__ import annotations

import numpy as np

__all__ = ["maxmin_rates"]


def maxmin_rates(ptr: np.ndarray, links: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Max-min fair rate of every flow.

    Parameters
    ----------
    ptr, links : numpy.ndarray
        CSR of the flows' paths: flow ``i`` crosses links ``links[ptr[i]:ptr[i+1]]`` (ids into
        ``capacity``; a flow should cross a link at most once).
    capacity : numpy.ndarray
        Bandwidth of every link.

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
    m = len(ptr) - 1
    rate = np.full(m, np.inf)
    lens = np.diff(ptr)
    if m == 0 or len(links) == 0:
        return rate
    # Renumber the links in use 0..nu-1 (a lookup table, no sort).
    count = np.bincount(links)
    used = np.flatnonzero(count)
    nu = len(used)
    lut = np.empty(len(count), dtype=np.int64)
    lut[used] = np.arange(nu)
    links = lut[links]
    count = count[used].astype(np.float64)
    rem = np.asarray(capacity, dtype=np.float64)[used].copy()
    share = np.empty(nu)
    # The still-active flows (ids, path lengths) and their entries, in flow order.
    ids = np.flatnonzero(lens > 0)
    lens = lens[ids]
    while True:
        starts = np.zeros(len(ids), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        flow_of = np.repeat(np.arange(len(ids)), lens)
        # A link that no active flow crosses is never read below: its share does not matter.
        np.divide(rem, count, out=share, where=count > 0)
        ent_share = share[links]
        bott = np.minimum.reduceat(ent_share, starts)
        ent_bott = bott[flow_of]
        # Saturated: no active flow crossing the link has a smaller bottleneck elsewhere.
        link_min = np.full(nu, np.inf)
        np.minimum.at(link_min, links, ent_bott)
        frozen = np.logical_or.reduceat(ent_share <= link_min[links], starts)
        rate[ids[frozen]] = bott[frozen]
        if frozen.all():
            return rate
        gone = frozen[flow_of]
        rem -= np.bincount(links[gone], weights=ent_bott[gone], minlength=nu)
        np.maximum(rem, 0.0, out=rem)
        count -= np.bincount(links[gone], minlength=nu)
        keep = ~frozen
        ids, lens, links = ids[keep], lens[keep], links[~gone]
