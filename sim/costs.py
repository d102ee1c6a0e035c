"""Per-transfer cost figures: the one place where a transfer's latency, rate and reduction
time become seconds.

Both ways the simulator runs go through here: :func:`transfer_cost` gives the duration of a
transfer whose rate is fixed for its whole life (Hockney, LogGP and the contention model's
per-step fast path); :func:`flow_figures` gives what the flow simulation needs for a flow
(latency, rate bound, sharing weight, reduction time). A message-size dependent correction
(SimGrid SMPI's piecewise bandwidth and latency factors) belongs in these two functions and
nowhere else: scale ``lat`` by the latency factor and the rate (``1 / inv``, ``bound``) by the
bandwidth factor, each a function of ``tb``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["flow_figures", "reduce_time", "sharing_weight", "transfer_cost"]


def reduce_time(reduce, tb, params, gamma_scale=None):
    """Seconds the receiver spends reducing ``tb`` bytes: ``tb * gamma * scale`` where a
    transfer reduces (``gamma_scale``: per-transfer factor of the receiving rank, or None),
    else 0. Returns an array like ``tb``, or the scalar 0.0 when nothing reduces."""
    if not params.gamma or reduce is None:
        return 0.0
    g = tb * params.gamma
    if gamma_scale is not None:
        g = g * gamma_scale
    return np.where(reduce, g, 0.0)


def transfer_cost(lat, inv, reduce, any_reduce, tb, params, gamma_scale=None) -> np.ndarray:
    """Duration of transfers of ``tb`` bytes at a fixed rate ``1 / inv`` after latency ``lat``
    (arrays or scalars): ``lat + tb * inv`` (LogGP: ``2 o + L + max(tb - 1, 0) G``), plus the
    reduction time at the receiver where ``reduce``. Always a float64 array shaped like
    ``tb``."""
    if params.name == "loggp":
        cost = 2.0 * params.o + lat + np.maximum(tb - 1.0, 0.0) * inv
    else:
        cost = lat + tb * inv
    if any_reduce:
        cost = cost + reduce_time(reduce, tb, params, gamma_scale)
    if getattr(cost, "shape", None) != tb.shape or cost.dtype != np.float64:
        cost = np.broadcast_to(np.asarray(cost, dtype=np.float64), tb.shape)
    return cost


def sharing_weight(lat: np.ndarray, sharing: str):
    """Weight of each flow's max-min share: 1 under ``"fair"``; under ``"rtt"`` one over the
    path latency (SimGrid CM02's sharing penalty is the route latency; a flow of zero latency
    keeps penalty 1, as SimGrid's variable is created with weight 1 then). None means all 1."""
    if sharing != "rtt":
        return None
    lat = np.asarray(lat, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(lat > 0, 1.0 / np.where(lat > 0, lat, 1.0), 1.0)


def flow_figures(lat, bound, reduce, tb, params, gamma_scale=None):
    """What the flow simulation needs per flow: ``(latency, rate bound, reduction time,
    weight)``. The bound is the path's bottleneck capacity (CM02's user bound; SimGrid's
    TCP-window bound ``TCP_gamma / (2 latency)`` is not modelled); the weight follows
    ``params.sharing`` (:func:`sharing_weight`)."""
    post = reduce_time(reduce, tb, params, gamma_scale)
    weight = sharing_weight(lat, getattr(params, "sharing", "fair"))
    return lat, bound, post, weight
