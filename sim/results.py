"""Result types of :func:`sim.simulate`: :class:`SimResult` and its breakdowns
(:class:`StepStats` per step, :class:`Timeline` per transfer, :class:`LinkStats` per link).

They hold numbers only; how they are computed lives in :mod:`sim.engine` (the stepping loop),
:mod:`sim.fastpath` (per-pattern costing) and :mod:`sim.flows` (the flow simulation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from collectives.metrics import algbw as _algbw
from collectives.metrics import busbw as _busbw
from sim.table import Record, make_record

__all__ = ["LinkStats", "SimResult", "StepStats", "Timeline"]


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

    ``time_s`` is the collective's time from the first rank's arrival to the last rank's
    completion (with every rank arriving at 0, the completion time); ``time_from_last_s``
    the time from the last arrival; ``steps`` the per-step breakdown;
    ``rank_finish``/``rank_bytes_sent``/``rank_bytes_received`` per rank (finish times on
    the arrival clock); ``timeline`` every transfer's start and end (None when not kept);
    ``links`` the per-link figures (None on an analytic network too large to list);
    ``path`` how the contention model got its answer: ``"fast"`` (per-step rates, proven
    exact for this run), ``"flow"`` (the event-driven flow simulation) or ``"none"`` (other
    models).
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
    time_from_last_s: float | None = None
    path: str = "none"

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
            "time_from_last_s": self.time_from_last_s, "path": self.path,
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
