"""Cost-model parameters: :class:`Hockney`, :class:`Contention` and :class:`LogGP`.

Each is a frozen dataclass of numbers in seconds (per message or per byte). A field left at
``None`` is taken from the network: the path's latency for ``alpha``/``L`` and one over the
path's bottleneck bandwidth for ``beta``/``G``. On the analytic fully connected network (no
graph) those fields must be given.

A *model file* is JSON with at least ``alpha``, ``beta`` (and usually ``gamma``) in seconds,
optionally the LogGP parameters ``L``, ``o``, ``g``, ``G`` at the top level or under a
``"loggp"`` key; other keys (calibration metadata) are ignored. :func:`load_model_file` reads
one, or the model a ``python -m bench --calibrate --json`` results file carries.

A *calibrated* model (``python -m bench calibrate``) adds what one machine does, as fields of
:class:`Hockney` and :class:`Contention` (see :func:`calibrated_cost`, and docs/calibration.md
for the file): piecewise size factors on latency and bandwidth in the manner of SimGrid SMPI's
``smpi/lat-factor`` and ``smpi/bw-factor`` (rows ``(min_bytes, latency factor, bandwidth
factor)``; the last row whose ``min_bytes`` is at most a message's size applies), measured once
with one transfer in flight on the host (``size_factors``) and once with ``crowd_transfers``
transfers at once (``crowd_factors``: the ranks of one host share its memory bandwidth and its
cores); a per-message overhead for every message beyond one send and one receive that a rank
posts in a step (``message_overhead``, LogGP's o); and a reduction cost by size
(``reduce_overhead`` per call, ``gamma`` per byte, ``reduce_factors``: caches matter), measured
on every rank at once, on one rank alone (``reduce_one_factors``: out of cache the ranks of a
host share its memory bandwidth) and on one rank beside the others copying
(``reduce_copy_factors``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["CALIBRATION_FIELDS", "MODELS", "SHARING", "Contention", "Hockney", "LogGP",
           "calibrated_cost", "is_calibrated", "load_model_file", "model_document", "model_params",
           "model_values", "prices_reduced_data"]

#: Fields of a calibrated model beyond alpha, beta, gamma (tables are tuples of 3-tuples).
CALIBRATION_FIELDS = ("size_factors", "crowd_factors", "crowd_transfers", "message_overhead",
                      "reduce_overhead", "reduce_factors", "reduce_one_factors",
                      "written_size_factors", "written_crowd_factors", "reduced_crowd_factors",
                      "reduced_size_factors", "written_buffers", "reduce_wait",
                      "reduce_wait_one", "reduce_wait_sizes", "cache_per_rank", "ranks_per_core",
                      "reduce_copy_factors")
_TABLES = ("size_factors", "crowd_factors", "reduce_factors", "reduce_one_factors",
           "written_size_factors", "written_crowd_factors", "reduced_crowd_factors",
           "reduced_size_factors", "reduce_copy_factors")
_PAIRS = ("reduce_wait_sizes",)


def _check_table(name: str, field: str, rows) -> None:
    if not isinstance(rows, tuple) or any(not isinstance(r, tuple) or len(r) != 3 for r in rows):
        raise ValueError(f"{name}: {field} must be a tuple of (min_bytes, latency factor, "
                         f"bandwidth factor) rows, got {rows!r}")
    flat = [v for r in rows for v in r]
    if any(isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
           or v < 0 for v in flat) or any(r[2] <= 0 for r in rows):
        raise ValueError(f"{name}: {field} needs finite numbers >= 0 and bandwidth factors > 0, "
                         f"got {rows!r}")
    mins = [r[0] for r in rows]
    if mins != sorted(mins) or len(set(mins)) != len(mins):
        raise ValueError(f"{name}: {field} rows must have increasing min_bytes, got {mins}")


def _check_pairs(name: str, field: str, rows) -> None:
    """``rows``: ``(bytes, seconds)`` pairs, finite, >= 0, with increasing bytes."""
    if not isinstance(rows, tuple) or any(
            not isinstance(r, tuple) or len(r) != 2
            or any(isinstance(v, bool) or not isinstance(v, int | float)
                   or not math.isfinite(v) or v < 0 for v in r) for r in rows):
        raise ValueError(f"{name}: {field} must be (bytes, seconds) rows of finite numbers "
                         f">= 0, got {rows!r}")
    if [r[0] for r in rows] != sorted({r[0] for r in rows}):
        raise ValueError(f"{name}: {field} rows must have increasing bytes, got "
                         f"{[r[0] for r in rows]}")


def _check(name: str, obj) -> None:
    for f in fields(obj):
        v = getattr(obj, f.name)
        if v is None or f.name == "sharing":
            continue
        if f.name in _TABLES:
            _check_table(name, f.name, v)
            continue
        if f.name in _PAIRS:
            _check_pairs(name, f.name, v)
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ValueError(
                f"{name}: {f.name} must be a finite number >= 0 (seconds), got {v!r}"
            )


@dataclass(frozen=True)
class Hockney:
    """Hockney (alpha-beta-gamma) model: a transfer of ``b`` bytes costs
    ``alpha + b * beta`` plus ``b * gamma`` at the receiver when it reduces.

    ``alpha=None`` takes the path latency (sum of link latencies) and ``beta=None`` one over
    the path's bottleneck bandwidth; on a fully connected network of identical links that is
    ``alpha = link latency``, ``beta = 1 / bandwidth``. Transfers never slow each other down.

    >>> Hockney(alpha=2e-6, beta=1e-9).cost_per_message(1000)
    3e-06
    """

    alpha: float | None = None
    beta: float | None = None
    gamma: float = 0.0

    # a calibrated machine (bench calibrate; see calibrated_cost): () / 0 leave the model as is
    size_factors: tuple = ()
    crowd_factors: tuple = ()
    crowd_transfers: int = 0
    message_overhead: float = 0.0
    reduce_overhead: float = 0.0
    reduce_factors: tuple = ()
    reduce_one_factors: tuple = ()
    written_size_factors: tuple = ()
    written_crowd_factors: tuple = ()
    reduced_crowd_factors: tuple = ()
    reduced_size_factors: tuple = ()
    written_buffers: float = 0.0
    reduce_wait: float = 0.0
    reduce_wait_one: float = 0.0
    reduce_wait_sizes: tuple = ()
    cache_per_rank: float = 0.0
    ranks_per_core: float = 0.0
    reduce_copy_factors: tuple = ()
    # set by the simulator for each call, not read from a model file (see calibrated_cost)
    working_set: float = 0.0

    name = "hockney"

    def __post_init__(self) -> None:
        _check("Hockney", self)

    def cost_per_message(self, nbytes: float, reduce: bool = False) -> float:
        """``alpha + nbytes * beta (+ nbytes * gamma)`` (needs alpha and beta)."""
        if self.alpha is None or self.beta is None:
            raise ValueError("Hockney.cost_per_message needs alpha and beta")
        return self.alpha + nbytes * self.beta + (nbytes * self.gamma if reduce else 0.0)


#: How :class:`Contention` divides a link among the flows crossing it.
SHARING = ("fair", "rtt")


@dataclass(frozen=True)
class Contention:
    """Flow-level contention model (SimGrid's CM02 semantics, cross-traffic off).

    A transfer becomes a flow when both its ranks are done with their earlier steps; it pays
    its path latency, then takes bandwidth: whenever a flow starts or ends, every flow then
    moving data gets its max-min fair share of the directed links it crosses, with flows of
    different steps competing too; a reduce adds ``bytes * gamma`` at the receiver once the
    data is in. See docs/models.md.

    ``sharing="fair"`` gives each flow an equal share (credit-based fabrics: InfiniBand,
    NVLink, Slingshot); ``"rtt"`` weights each flow's share by ``1 / path latency`` as
    SimGrid's CM02 does (TCP's round-trip unfairness on Ethernet; a flow of zero latency
    has weight 1, as in SimGrid). ``alpha=None`` takes the path latency; ``beta`` given sets
    every link's bandwidth to ``1 / beta`` (on the analytic fully connected network it is
    required). Where no link is shared this is exactly :class:`Hockney`.
    """

    alpha: float | None = None
    beta: float | None = None
    gamma: float = 0.0
    sharing: str = "fair"

    # a calibrated machine (bench calibrate; see calibrated_cost): () / 0 leave the model as is
    size_factors: tuple = ()
    crowd_factors: tuple = ()
    crowd_transfers: int = 0
    message_overhead: float = 0.0
    reduce_overhead: float = 0.0
    reduce_factors: tuple = ()
    reduce_one_factors: tuple = ()
    written_size_factors: tuple = ()
    written_crowd_factors: tuple = ()
    reduced_crowd_factors: tuple = ()
    reduced_size_factors: tuple = ()
    written_buffers: float = 0.0
    reduce_wait: float = 0.0
    reduce_wait_one: float = 0.0
    reduce_wait_sizes: tuple = ()
    cache_per_rank: float = 0.0
    ranks_per_core: float = 0.0
    reduce_copy_factors: tuple = ()
    # set by the simulator for each call, not read from a model file (see calibrated_cost)
    working_set: float = 0.0

    name = "contention"

    def __post_init__(self) -> None:
        _check("Contention", self)
        if self.sharing not in SHARING:
            raise ValueError(
                f"Contention: sharing must be one of {', '.join(SHARING)}, got {self.sharing!r}"
            )


@dataclass(frozen=True)
class LogGP:
    """LogGP (Alexandrov et al. 1995): a message of ``k`` bytes costs
    ``o + L + (k-1) G + o`` (sender overhead, wire latency, per-byte gap, receiver overhead),
    plus ``k * gamma`` when the receiver reduces. A rank starts its sends at least
    ``max(g, o + (k-1) G)`` apart (``k`` of the earlier send): ``g`` is the minimum gap between
    consecutive messages, and the sender is busy for its overhead and the injection.

    ``L=None`` takes the path latency and ``G=None`` one over the path's bottleneck bandwidth.

    >>> round(LogGP(L=5e-6, o=1e-6, g=3e-6, G=1e-9).cost_per_message(1001) * 1e6, 9)
    8.0
    """

    L: float | None = None
    o: float = 0.0
    g: float = 0.0
    G: float | None = None
    gamma: float = 0.0

    name = "loggp"

    def __post_init__(self) -> None:
        _check("LogGP", self)

    def cost_per_message(self, nbytes: float, reduce: bool = False) -> float:
        """``2 o + L + max(k-1, 0) G (+ k gamma)`` (needs L and G)."""
        if self.L is None or self.G is None:
            raise ValueError("LogGP.cost_per_message needs L and G")
        k = float(nbytes)
        return (2 * self.o + self.L + max(k - 1.0, 0.0) * self.G
                + (k * self.gamma if reduce else 0.0))


def is_calibrated(params) -> bool:
    """True where ``params`` carries calibrated size factors (see :func:`calibrated_cost`)."""
    return bool(getattr(params, "size_factors", ()))


def prices_reduced_data(params) -> bool:
    """True where a calibrated model prices data a reduction wrote apart from received data
    (a lone or a crowd table of its own; :func:`calibrated_cost`'s ``reduced``)."""
    return bool(params.reduced_crowd_factors or params.reduced_size_factors)


@lru_cache(maxsize=128)
def _columns(rows: tuple, width: int) -> tuple[np.ndarray, ...]:
    """The columns of a model file's table of ``width``-number rows, parsed once per table."""
    return tuple(np.array(rows, dtype=np.float64).reshape(-1, width).T)


def _factors(rows: tuple, nbytes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(latency factor, bandwidth factor) per size: the last row with ``min_bytes <= size``
    (the first row below every ``min_bytes``), as SimGrid SMPI reads its factor lists."""
    mins, lat, bw = _columns(rows, 3)
    i = np.clip(np.searchsorted(mins, nbytes, side="right") - 1, 0, len(mins) - 1)
    return lat[i], bw[i]


#: How many times its message size the working set of each calibration benchmark is: a
#: transfer reads a send buffer and writes a receive buffer, a reduction reads two arrays and
#: writes a third (see :func:`calibrated_cost`).
TRANSFER_SPAN, REDUCE_SPAN = 2, 3


def _no_faster_than_working_set(time_at, b, size, uncached=1.0):
    """``time_at(b)``, but never less per byte than ``time_at(size)`` where ``b < size``:
    the benchmark at ``size`` worked in the collective's working set. With ``uncached`` below
    1 (the part of that working set the cache cannot hold) only that part of the difference
    is added: the rest of the bytes are still in cache, at ``b``'s own rate."""
    t = time_at(b)
    if size > 0:
        at = np.maximum(b, size)
        t = t + uncached * np.maximum(time_at(at) * (b / at) - t, 0.0)
    return t


def _uncached(params) -> float:
    """The part of a collective's working set that the cache of each rank cannot hold,
    ``(working_set - cache_per_rank) / working_set`` (0 where it fits), where each rank had a
    core of its own in the calibration and the model knows its cache; otherwise 1: every byte
    of a transfer at the working set's rate (see :func:`calibrated_cost`)."""
    ws, cache = params.working_set, params.cache_per_rank
    if ws > 0 and cache > 0 and 0.0 < params.ranks_per_core <= 1.0:
        return max(ws - cache, 0.0) / ws
    return 1.0


def _step_time(lone_rows, crowd_rows, N, lat, inv, b, n):
    """A transfer's time in a step of ``n`` live transfers from one pair of factor tables
    (see :func:`calibrated_cost`)."""
    lf, bf = _factors(lone_rows, b)
    t = lat * lf + b * inv / bf  # one transfer in flight: the lone line
    if crowd_rows and N > 1 and n > 1:
        lfN, bfN = _factors(crowd_rows, b)
        # whole times, never one line's latency with the other's slope: the two lines cross
        whole = lat * lfN + b * inv / bfN
        if n <= N:  # up to N: from the lone time to the crowd's
            t = t + (whole - t) * ((n - 1) / (N - 1))
        else:  # beyond N: n / N crowd steps one after another, in one executor step
            floor = lat * crowd_rows[0][1]  # the step's own cost: paid once
            t = np.maximum(t, whole + (n / N - 1) * np.maximum(whole - floor, 0.0))
    return t


def calibrated_cost(params, lat, inv, nbytes, reduce=None, src=None, dst=None,
                    gamma_scale=None, written=None, reduced=None) -> np.ndarray:
    """Duration of every transfer of one step under a calibrated model.

    ``lat`` and ``inv`` are the path's latency and inverse bandwidth per transfer (on the
    analytic network: ``alpha`` and ``beta``), ``nbytes`` the transfers' bytes, ``reduce``
    which of them the receiver reduces, ``src``/``dst`` their ranks (for the per-message
    overhead), ``written`` the fraction of each transfer's data that its sender wrote earlier
    in the collective (:meth:`collectives.ir.Schedule.sent_written`), ``reduced`` the part
    of it that a reduction wrote (:meth:`~collectives.ir.Schedule.sent_written_kinds`; its
    figures are from ``reduced_size_factors`` and ``reduced_crowd_factors`` where the model
    has them). With ``n`` non-empty transfers in the step and ``N = crowd_transfers``::

        t1 = lat * lf1 + b * inv / bf1   (size_factors at b: one transfer in flight on the host)
        tN = lat * lfN + b * inv / bfN   (crowd_factors at b: N transfers at once)
        t = t1 + (tN - t1) * (n - 1) / (N - 1)                for n <= N
          = max(t1, tN + (n / N - 1) * (tN - t0))             for n > N
                                 (t0 = lat * lfN at 0 B: the step's own cost)
        t = t + u * max(tW * b / W - t, 0)   (tW: the same at W = working_set / 2 where b < W;
                                  u: the part of working_set beyond cache_per_rank where
                                  each rank had a core of its own, 1 otherwise)
        t = t + w * (t' - t)     (t': the same from written_size_factors and
                                  written_crowd_factors, w: ``written``; where the model has them;
                                  the ``reduced`` part's from reduced_size_factors and
                                  reduced_crowd_factors where the model has them)
                                  (n > N, both kinds, a core per rank: the longer of t
                                  and the written tables' time at max(n * mean(w), N))
          + message_overhead * max(m - 2, 0)     (m: messages the busier end posts)
          + reduce_overhead * lfR(b) + b * gamma * s / bfR(b)   where the receiver reduces
                                 (s: ``gamma_scale`` of the transfer's receiver, default 1;
                                  never less per byte than at working_set / 3; lfR, bfR
                                  from reduce_factors, all N ranks reducing at once, and
                                  with k ranks reducing in the step on the line from the
                                  time at reduce_one_factors, one alone, where the model
                                  has them, plus c / (N - 1) of the way from that one
                                  rank's time to reduce_copy_factors' with c ranks only
                                  receiving in the step, at most all N's),
            summed over the receiver's reducing transfers of the step (it reduces them
            one after another), plus the reduction's wait w(k) (k: the ranks that
            reduce in the step; w(N) = reduce_wait, w(1) = reduce_wait_one, linear
            between; without reduce_wait_one, older files: reduce_wait * min(k / N, 1)),
            plus, where the model has ``reduce_wait_sizes`` W, W(b) - W(first row):
            what the wait grows by with the bytes reduced, while working_set <=
            cache_per_rank (where the file gives it); where each rank had a core of its
            own (ranks_per_core <= 1), (k - 1) / (N - 1) of it; with ranks sharing cores,
            none of it for a lone reducing transfer (the step's only one)

    ``n = 1`` gives the lone measurement and ``n = N`` the crowded one, each a whole measured
    time (a line's latency is never combined with another line's slope: the lone and crowd
    lines cross). Beyond ``N`` (a rank posting several messages in a step) the ``n``
    transfers take ``n / N`` crowd rounds one after another, each paying the crowd's time
    but for the step's own cost ``t0``, paid once (the 2-rank shift with k = 2 and 4
    messages each way took 1.9x and 3.7x the one-message time from 64 KiB to 1 MiB, while at
    4 KiB the second message added 0.8x); never faster than one alone, plus ``o`` per extra
    message. Data the sender wrote itself (received or reduced in an earlier step) is read
    by the receiver out of the sender's cache: the written tables are the same two
    measurements forwarding such data (on this 2-core VM 1.4-2.6x the clean lone time from
    512 KiB to 2 MiB). Beyond ``N``, a transfer's own round is priced at its own kind and
    the further rounds at the step's mix: a double binary tree's step sends one written
    chunk (the broadcast) and one clean (the reduce) each way, not two written ones.

    ``working_set`` (set by the simulator for each call: the bytes each rank touches, its
    input and result vectors and its largest step's scratch) puts every transfer in the
    caches of the whole collective: a transfer or reduction of ``b`` bytes is never priced
    faster per byte than the benchmark whose own buffers make that working set (a transfer's
    two, a reduction's three). The benchmarks of a small message run in cache; the same
    message inside a large collective does not (a double binary tree's 1 MiB segments of a
    16 MiB vector move at the 16 MiB rate). Where each rank had a core of its own and the
    model knows the cache each rank has (``cache_per_rank``), only the part of the working
    set beyond it, ``u = (working_set - cache_per_rank) / working_set``, moves at that rate
    and the rest at the transfer's own: the 2-rank ring of 8 MiB (20 MiB per rank, 16 MiB of
    cache) was priced 26-38% slow with every byte out of cache. Where ranks share cores every
    byte is priced out of cache (in part, the 4-rank ring of 4 MiB came out 34% fast, median
    of 30 stored runs: ranks taking turns on a core may well evict each other's data, which
    was not measured apart); a reduction always
    is (in part, the 2-rank double binary tree of 8 MiB came out 40% fast, median of 18).
    The written tables' benchmarks ran on
    ``written_buffers`` buffers (out of place: 2, an input and a result; 0 in older files:
    1), so for them the working set is reached at ``1 / written_buffers`` of the size (the
    2-rank ring of 4 MiB, its 2 MiB chunks in a 10 MiB working set, was priced 25-61% slow at
    the written figures of 4-8 MiB; its 2 MiB figures add up to it).

    Where each rank had a core of its own in the calibration (``ranks_per_core`` at most 1;
    0: not known), a step beyond ``N`` with both kinds of data instead takes the longer of the
    clean rounds of all its messages and the written rounds of its written ones: a rank's
    other messages move while one of written data waits on the writer's cache (a 2-rank
    double binary tree's step of one written and one clean 64 KiB chunk each way took 14.3
    us on the AMD VM: two clean messages and the reduction 14.1, one written and the
    reduction 13.8, the rounds added up 19.8). With ranks sharing cores nothing moves
    meanwhile, and the rounds add up (the 4-rank tree from 2 MiB was priced 5-9 points
    faster still with the longer of the two).

    ``reduce_wait`` is what a reduction costs inside a step beyond the reduction benchmark's
    call: the rank has waited for its message and reduces before its next step can start
    (the reducing shift less the shift and the reduction, measured by ``bench calibrate``
    with all ``N`` ranks reducing at once; on 4 ranks sharing 2 cores 2.0-2.5 us against a
    0.29 us ``np.add`` call); ``reduce_wait_one`` the same with one rank reducing, and a step
    in which ``k`` ranks reduce is priced on the line between the two. How the wait grows with
    the reducing ranks is the library's: on the AMD VM (4 ranks, 2 cores, 4 B) MPICH's was 1.4
    us with one rank reducing, 1.8 with two and 1.9 with four, Open MPI's 1.6, 1.2 and 3.0
    (a wait in proportion to the ranks, as older files are priced, put MPICH's 4-rank
    binomial below 64 KiB 14-21% fast). ``reduce_wait_sizes`` holds the same wait measured
    at every size up to where the reducing shift's buffers fit the host's cache, ``(bytes,
    seconds)`` rows read linearly between them: with ranks sharing cores it grows with the
    bytes reduced (4 ranks on 2 cores, 12 calibrations, both libraries: 0.7-3.6 us up to
    64 KiB, 3-7 at 128 KiB, 10-14 at 256 KiB, 19-23 at 512 KiB, 33-40 at 1 MiB), and one
    figure at 4 B priced recursive doubling and the binomial tree 15-30% fast from 128 KiB.
    The rows hold while the collective's working set fits ``cache_per_rank`` (the host's
    last-level cache over its ranks) as the shift's buffers did; beyond it the reduction is
    priced from its own benchmark at that working set, out of cache, and the wait does not
    add to it (added, the 4-rank ring of 4 MiB was priced 14 points slower still). Where
    each rank has a core of its own the rows are all there is (``reduce_wait`` is not used
    there) and grow from 256 KiB (2 ranks on the AMD VM: 0-0.5 us up to 128 KiB, 1.4-3.3 at
    256 KiB-1 MiB): a rank then waits only for the other reducing ranks, so a step in which
    ``k`` of the ``N`` ranks reduce waits ``(k - 1) / (N - 1)`` of the growth (one rank alone
    reducing, a tree's lone step, has its whole cost in the reducing relay's figure,
    ``reduced_size_factors``); with ranks sharing cores it is added whole (scaled by the
    reducing ranks it moved the 4-rank median error by under a point either way).

    An empty transfer (0 bytes) costs nothing: the executor sends no message for it.

    >>> h = Hockney(alpha=1e-6, beta=1e-9, size_factors=((0, 1.0, 1.0), (1000, 2.0, 0.5)),
    ...             crowd_factors=((0, 3.0, 0.25),), crowd_transfers=3)
    >>> [round(float(t) * 1e6, 3) for t in calibrated_cost(h, 1e-6, 1e-9, np.array([100.0]))]
    [1.1]
    >>> [round(float(t) * 1e6, 3) for t in calibrated_cost(h, 1e-6, 1e-9, np.full(3, 2000.0))]
    [11.0, 11.0, 11.0]
    >>> w = Hockney(alpha=1e-6, beta=1e-9, size_factors=((0, 1.0, 1.0),),
    ...             written_size_factors=((0, 1.0, 0.5),))
    >>> [round(float(t) * 1e6, 3) for t in calibrated_cost(w, 1e-6, 1e-9, np.array([1000.0]),
    ...                                                    written=np.array([0.5]))]
    [2.5]
    """
    b = np.asarray(nbytes, dtype=np.float64)
    live = b > 0
    n = int(np.count_nonzero(live))
    N = params.crowd_transfers
    span = params.working_set / TRANSFER_SPAN
    uncached = _uncached(params)

    def priced(rows, crowd_rows, live_transfers, span=span):
        """The step time from one pair of tables, in the collective's working set."""
        return _no_faster_than_working_set(
            lambda x: _step_time(rows, crowd_rows, N, lat, inv, x, live_transfers), b, span,
            uncached)
    # the written benchmarks ran on ``written_buffers`` buffers per chunk (out of place: an
    # input and a result), so each of their sizes already worked in that many times the
    # working set of a clean benchmark's
    written_span = span / max(params.written_buffers, 1.0)
    t = priced(params.size_factors, params.crowd_factors, n)
    if written is not None and params.written_size_factors:
        w = np.asarray(written, dtype=np.float64)
        if w.any():
            crowd = params.written_crowd_factors or params.crowd_factors
            by_reduction = None
            if reduced is not None and prices_reduced_data(params):
                r = np.asarray(reduced, dtype=np.float64)
                if r.any():
                    # of each transfer's written data, the part a reduction wrote
                    by_reduction = np.divide(r, w, out=np.zeros_like(w), where=w > 0)

            def written_priced(live_transfers):
                """The written tables' time: a reduction's data at its own crowd figure."""
                tw = priced(params.written_size_factors, crowd, live_transfers, written_span)
                if by_reduction is None:
                    return tw
                tr = priced(params.reduced_size_factors or params.written_size_factors,
                            params.reduced_crowd_factors or crowd, live_transfers, written_span)
                return tw + by_reduction * (tr - tw)
            mix = float(w[live].mean()) if live.any() else 0.0
            beyond = N > 1 and n > N
            if beyond and 0.0 < mix < 1.0 and 0.0 < params.ranks_per_core <= 1.0:
                # a core per rank: the clean rounds of all the step's messages or the
                # written rounds of its written ones, whichever is longer
                t = np.maximum(t, written_priced(max(mix * n, N)))
            elif beyond:
                # rounds of the step's own messages: each transfer's own round at its own
                # kind, the further rounds at the step's mix of written and clean data
                tw = written_priced(n)
                wc = priced(params.size_factors, params.crowd_factors, N)
                ww = written_priced(N)
                t = (wc + w * (ww - wc)) + (1 - mix) * (t - wc) + mix * (tw - ww)
            else:
                t = t + w * (written_priced(n) - t)
    if params.message_overhead and src is not None and len(b) > 1:
        src, dst = np.asarray(src), np.asarray(dst)
        size = int(max(src.max(), dst.max())) + 1
        posted = (np.bincount(src[live], minlength=size)
                  + np.bincount(dst[live], minlength=size))
        m = np.maximum(posted[src], posted[dst])
        t = t + params.message_overhead * np.maximum(m - 2, 0)
    if reduce is not None and np.any(reduce):
        g = params.gamma if gamma_scale is None else params.gamma * np.asarray(gamma_scale)

        def reduction(rows):
            def time_at(x):
                lf, bf = _factors(rows, x) if rows else (1.0, 1.0)
                return params.reduce_overhead * lf + x * g / bf
            return _no_faster_than_working_set(time_at, b, params.working_set / REDUCE_SPAN)
        rmask = np.broadcast_to(np.asarray(reduce, dtype=bool), b.shape) & live
        # the ranks that reduce in this step (they share the host's memory bandwidth), only
        # where the model prices by them: this runs once per step of every simulation
        k = (np.unique(np.asarray(dst)[rmask]).size
             if dst is not None and len(b) > 1
             and ((params.reduce_one_factors and N > 1) or params.reduce_wait
                  or params.reduce_wait_sizes) else 1)
        # the ranks that only copy in this step, beside the reducing ones (their memory
        # traffic slows a reduction where the ranks share a cache), where the model has them
        copying = (np.unique(np.asarray(dst)[live]).size - k
                   if params.reduce_copy_factors and params.reduce_one_factors
                   and dst is not None and len(b) > 1 and N > 1 else 0)
        # where k lies between one reducing rank (0) and all N (1): the lines below read it
        frac = (min(max(k, 1), N) - 1) / (N - 1) if N > 1 else 1.0
        red = reduction(params.reduce_factors)
        if params.reduce_one_factors and N > 1 and k < N:
            # measured on all N ranks at once and on one alone: k ranks on the line between
            # (out of cache one rank alone reduced 8 MiB in 0.45-0.8x the time, 2 ranks)
            one = reduction(params.reduce_one_factors)
            along = one + (red - one) * frac
            if copying > 0:
                # and one beside N - 1 copying ranks: each copying rank adds its share
                beside = reduction(params.reduce_copy_factors)
                along = np.minimum(along + (beside - one) * (copying / (N - 1)), red)
            red = along
        red = np.where(rmask, red, 0.0)
        if dst is not None and len(b) > 1:
            # a rank reduces what it received one message after another, once the step's
            # messages are in (the executor's post actions): each of its reducing transfers
            # ends when all of its reductions are done
            dst = np.asarray(dst)
            red = np.where(rmask, np.bincount(dst, weights=red)[dst], 0.0)
        wait = 0.0
        if params.reduce_wait:
            # the wait of k reducing ranks: measured with all N (the reducing shift) and with
            # one; older files only with all N, shared in proportion to the ranks
            if params.reduce_wait_one and N > 1:
                wait = params.reduce_wait_one + (params.reduce_wait
                                                 - params.reduce_wait_one) * frac
            else:
                wait = params.reduce_wait * (min(k / N, 1.0) if N > 0 else 1.0)
        if params.reduce_wait_sizes and not (
                params.cache_per_rank and params.working_set > params.cache_per_rank):
            # what the wait grows by with the bytes reduced, over its smallest size's figure;
            # only while the collective's working set fits the cache, as the shift's did
            ws, wv = _columns(params.reduce_wait_sizes, 2)
            growth = np.maximum(np.interp(b, ws, wv) - wv[0], 0.0)
            if 0.0 < params.ranks_per_core <= 1.0 and N > 1:
                growth = growth * frac
            elif k == 1 and n == 1:
                # a lone reducing transfer, the other ranks idle: the rows were measured with
                # every rank busy reducing, taking each other's cores; what idle ranks do to a
                # lone reducer (MPICH's poll, Open MPI's yield) is in reduce_one_factors already
                # (added, the 4-rank binomial tree was priced up to +59% under Open MPI)
                growth = 0.0
            wait = wait + growth
        if params.reduce_wait or params.reduce_wait_sizes:
            red = red + np.where(rmask, wait, 0.0)
        t = t + red
    return np.where(live, np.broadcast_to(t, b.shape), 0.0)


MODELS: dict[str, type] = {"hockney": Hockney, "contention": Contention, "loggp": LogGP}


def model_params(model: str, **values) -> Hockney | Contention | LogGP:
    """Parameters of ``model`` from keyword values; ``None`` values and keys the model does
    not take are dropped, so one dict of ``alpha, beta, gamma, L, o, g, G`` serves all three.

    LogGP falls back on Hockney's figures where its own are missing: ``L = alpha``,
    ``G = beta``.

    >>> model_params("loggp", alpha=2e-6, beta=1e-9, gamma=0.0)
    LogGP(L=2e-06, o=0.0, g=0.0, G=1e-09, gamma=0.0)
    """
    key = str(model).strip().lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    cls = MODELS[key]
    if cls is LogGP:
        if values.get("L") is None:
            values["L"] = values.get("alpha")
        if values.get("G") is None:
            values["G"] = values.get("beta")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names and v is not None})


def load_model_file(path) -> dict:
    """Read a model file (see the module docstring) into ``{name: seconds}`` with the keys
    ``alpha, beta, gamma, L, o, g, G`` that it gives; raises ``ValueError`` on a bad file.

    >>> import json, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "model.json")
    >>> with open(p, "w") as f:
    ...     json.dump({"alpha": 2e-6, "beta": 1e-9, "gamma": 2.5e-10, "host": "x"}, f)
    >>> sorted(load_model_file(p).items())
    [('alpha', 2e-06), ('beta', 1e-09), ('gamma', 2.5e-10)]
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"cannot read model file {str(path)!r}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"model file {str(path)!r} is not valid JSON: {e}") from None
    source = f"model file {str(path)!r}"
    return model_values(model_document(data, source), source)


#: The ``format`` of ``python -m bench --json`` results files.
BENCH_RESULTS_FORMAT = "collectives.bench/1"


def model_document(data, source: str = "model file"):
    """The model document in ``data``: ``data`` itself, or the ``"model"`` that a
    ``python -m bench --calibrate --json`` results file carries (the run's own calibration);
    raises ``ValueError`` for a results file that carries none.

    >>> model_document({"alpha": 1e-6, "beta": 1e-9})["alpha"]
    1e-06
    >>> model_document({"format": BENCH_RESULTS_FORMAT, "records": [],
    ...                 "model": {"alpha": 2e-6, "beta": 1e-9}})["alpha"]
    2e-06
    >>> bare = {"format": BENCH_RESULTS_FORMAT, "records": []}
    >>> model_document(bare, "r.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: r.json is a bench results file without a model: run bench with --calibrate...
    """
    if isinstance(data, dict) and data.get("format") == BENCH_RESULTS_FORMAT:
        if not isinstance(data.get("model"), dict):
            raise ValueError(f"{source} is a bench results file without a model: run bench "
                             f"with --calibrate, or give the file python -m bench calibrate "
                             f"--out writes")
        return data["model"]
    return data


def model_values(data, source: str = "model") -> dict:
    """:func:`load_model_file` for a model document already read (``bench --calibrate``
    embeds one in its results file); ``source`` names it in the error messages."""
    if not isinstance(data, dict):
        raise ValueError(f"{source} must hold a JSON object")
    nested = data.get("loggp") if isinstance(data.get("loggp"), dict) else {}
    out = {}
    for key in ("alpha", "beta", "gamma", "L", "o", "g", "G"):
        value = data.get(key, nested.get(key))
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and value >= 0):
            raise ValueError(
                f"{source}: {key} must be a number of seconds >= 0, got {value!r}"
            )
        out[key] = float(value)
    for key in CALIBRATION_FIELDS:
        value = data.get(key)
        if value is None:
            continue
        if key in _TABLES or key in _PAIRS:
            try:
                value = tuple(tuple(float(v) for v in row) for row in value)
                (_check_table if key in _TABLES else _check_pairs)("model file", key, value)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{source}: {key}: {e}") from None
        elif key == "crowd_transfers":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{source}: crowd_transfers must be a whole "
                                 f"number >= 0, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and value >= 0):
            what = ("a number" if key in ("ranks_per_core", "written_buffers")
                    else "a number of bytes" if key == "cache_per_rank"
                    else "a number of seconds")
            raise ValueError(f"{source}: {key} must be {what} >= 0, got {value!r}")
        else:
            value = float(value)
        out[key] = value
    missing = [k for k in ("alpha", "beta") if k not in out]
    if missing:
        raise ValueError(
            f"{source} lacks {', '.join(missing)}: it needs alpha (s per message) "
            f"and beta (s per byte), optionally gamma (s per byte reduced)"
        )
    return out


def as_dict(params) -> dict:
    """The parameters as a plain dict (for JSON output)."""
    return asdict(params)
