"""The schedule IR: plain, immutable data that every engine consumes.

A collective on ``p`` ranks over a vector of ``n`` elements cut into ``C`` chunks (chunk ``c``
covers elements ``[c*n//C, (c+1)*n//C)``). A :class:`Schedule` is a sequence of :class:`Step`;
a step is a set of transfers that may run concurrently. A transfer is one message from ``src``
to ``dst`` carrying a set of chunks, either copied (``dst`` overwrites its chunks) or reduced
(``dst`` combines them into its own).

Storage is columnar so that schedules of 10^4+ ranks stay small: a step holds numpy arrays
``src``, ``dst``, ``reduce`` and a CSR of chunk *runs* (a run is ``length`` consecutive chunks
from ``start``, wrapping modulo ``C``). A ``chunk_offset`` rotates every run of a step, so the
``2(p-1)`` steps of a ring share one set of arrays. :class:`Transfer` is the readable per-message
view of the same data.

Every transfer of a step reads its source as it was when the step began (a snapshot), so two
ranks may swap and reduce the same chunks in one step, as recursive doubling does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

__all__ = [
    "COLLECTIVES",
    "Condition",
    "Op",
    "Schedule",
    "ScheduleError",
    "Step",
    "Transfer",
    "chunk_bounds",
    "make_step",
]

COLLECTIVES = ("allreduce", "reducescatter", "allgather", "reduce", "broadcast")
#: (rank, chunk) cells and chunks moved up to which :meth:`Schedule.sent_written` tracks
#: every chunk (beyond: every rank).
WRITTEN_LIMIT = 1 << 24


class ScheduleError(ValueError):
    """A schedule is malformed or does not do what it declares."""


class Op(StrEnum):
    COPY = "copy"
    REDUCE = "reduce"


class Condition(StrEnum):
    """What the ranks hold before or after a schedule, per (rank, chunk).

    ``INPUT``: every rank holds its own contribution to every chunk.
    ``OWNED``: chunk ``c`` is held, fully reduced, by rank ``owner[c]`` only.
    ``ALL``: every rank holds every chunk fully reduced.
    """

    INPUT = "input"
    OWNED = "owned"
    ALL = "all"


_SHAPE = {
    "allreduce": (Condition.INPUT, Condition.ALL),
    "reducescatter": (Condition.INPUT, Condition.OWNED),
    "reduce": (Condition.INPUT, Condition.OWNED),
    "allgather": (Condition.OWNED, Condition.ALL),
    "broadcast": (Condition.OWNED, Condition.ALL),
}


def chunk_bounds(n: int, nchunks: int) -> np.ndarray:
    """Element boundaries of ``nchunks`` chunks of an ``n``-element vector (length ``nchunks+1``).

    >>> chunk_bounds(10, 4).tolist()
    [0, 2, 5, 7, 10]
    """
    c = np.arange(nchunks + 1, dtype=np.int64)
    return (c * n) // nchunks


def _frozen(a, dtype) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True)
class Transfer:
    """One message: ``src`` sends ``chunks`` to ``dst``, which copies or reduces them."""

    src: int
    dst: int
    chunks: tuple[int, ...]
    op: Op

    def __str__(self) -> str:
        arrow = "+=" if self.op is Op.REDUCE else "<-"
        return f"{self.dst} {arrow} {self.src} chunks {list(self.chunks)}"


@dataclass(frozen=True, slots=True, eq=False)
class Step:
    """The transfers of one step, as columns (see the module docstring).

    ``run_ptr[i]:run_ptr[i+1]`` indexes the runs of transfer ``i``; run ``j`` covers chunks
    ``(run_start[j] + chunk_offset + t) % C`` for ``t`` in ``range(run_len[j])``.
    """

    src: np.ndarray
    dst: np.ndarray
    reduce: np.ndarray
    run_ptr: np.ndarray
    run_start: np.ndarray
    run_len: np.ndarray
    chunk_offset: int = 0

    def __len__(self) -> int:
        return int(self.src.shape[0])

    def starts(self, nchunks: int) -> np.ndarray:
        """Run starts with the step's rotation applied."""
        if self.chunk_offset == 0:
            return self.run_start
        return (self.run_start + self.chunk_offset) % nchunks

    def runs_per_transfer(self) -> np.ndarray:
        return np.diff(self.run_ptr)

    def run_owner(self) -> np.ndarray:
        """For every run, the index of the transfer it belongs to."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.runs_per_transfer())

    def expand(self, nchunks: int) -> tuple[np.ndarray, np.ndarray]:
        """(transfer index, chunk) for every chunk moved in this step, in transfer order."""
        lens = self.run_len
        total = int(lens.sum())
        run_of = np.repeat(np.arange(lens.shape[0], dtype=np.int64), lens)
        first = np.cumsum(lens) - lens
        within = np.arange(total, dtype=np.int64) - np.repeat(first, lens)
        chunk = (np.repeat(self.starts(nchunks), lens) + within) % max(nchunks, 1)
        return self.run_owner()[run_of], chunk

    def key(self) -> tuple:
        return (
            self.src.tobytes(),
            self.dst.tobytes(),
            self.reduce.tobytes(),
            self.run_ptr.tobytes(),
            self.run_start.tobytes(),
            self.run_len.tobytes(),
            self.chunk_offset,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Step) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def rotated(self, offset: int) -> Step:
        """The same pattern with every run shifted by ``offset`` chunks (arrays are shared)."""
        return Step(
            self.src,
            self.dst,
            self.reduce,
            self.run_ptr,
            self.run_start,
            self.run_len,
            self.chunk_offset + offset,
        )


def make_step(
    src: Sequence[int] | np.ndarray,
    dst: Sequence[int] | np.ndarray,
    reduce: Sequence[bool] | np.ndarray | bool,
    runs: Sequence[Sequence[tuple[int, int]]] | None = None,
    *,
    run_start: Sequence[int] | np.ndarray | None = None,
    run_len: Sequence[int] | np.ndarray | int = 1,
) -> Step:
    """Build a :class:`Step`.

    Either ``runs`` (per transfer, a list of ``(start, length)`` runs) or ``run_start`` (one run
    per transfer, each ``run_len`` chunks long) describes the chunks.

    >>> s = make_step([0, 1], [1, 0], True, run_start=[1, 0])
    >>> len(s), s.run_len.tolist()
    (2, [1, 1])
    """
    src_a = _frozen(src, np.int64)
    m = src_a.shape[0]
    dst_a = _frozen(dst, np.int64)
    red = np.broadcast_to(np.asarray(reduce, dtype=bool), (m,))
    if runs is not None:
        counts = [len(r) for r in runs]
        ptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        flat = [x for r in runs for x in r]
        starts = [s for s, _ in flat]
        lens = [ln for _, ln in flat]
    else:
        if run_start is None:
            raise ValueError("make_step: give either runs or run_start")
        ptr = np.arange(m + 1, dtype=np.int64)
        starts = run_start
        lens = np.broadcast_to(np.asarray(run_len, dtype=np.int64), (m,))
    if dst_a.shape[0] != m or (runs is not None and len(runs) != m):
        raise ValueError("make_step: src, dst and runs must have one entry per transfer")
    return Step(
        src_a,
        dst_a,
        _frozen(red, bool),
        _frozen(ptr, np.int64),
        _frozen(starts, np.int64).reshape(-1),
        _frozen(lens, np.int64).reshape(-1),
    )


@dataclass(frozen=True, slots=True)
class Schedule:
    """A collective as plain data.

    ``owner`` names, for each chunk, the rank that holds it in the ``OWNED`` condition (after a
    reduce-scatter or reduce, before an all-gather or broadcast); it is empty for all-reduce.
    """

    collective: str
    algorithm: str
    nranks: int
    nchunks: int
    steps: tuple[Step, ...]
    owner: tuple[int, ...] = ()
    options: tuple[tuple[str, object], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.collective not in COLLECTIVES:
            raise ValueError(
                f"unknown collective {self.collective!r}; known: {', '.join(COLLECTIVES)}"
            )
        if self.nranks < 1:
            raise ValueError(f"a schedule needs at least one rank, got nranks={self.nranks}")
        if self.nchunks < 1:
            raise ValueError(f"a schedule needs at least one chunk, got nchunks={self.nchunks}")
        pre, post = _SHAPE[self.collective]
        needs_owner = Condition.OWNED in (pre, post)
        if needs_owner and len(self.owner) != self.nchunks:
            raise ValueError(
                f"{self.collective} schedule needs an owner for each of its {self.nchunks} "
                f"chunks, got {len(self.owner)}"
            )
        if not needs_owner and self.owner:
            raise ValueError(f"{self.collective} schedule takes no chunk owners")

    # conditions -----------------------------------------------------------------------------
    @property
    def precondition(self) -> Condition:
        return _SHAPE[self.collective][0]

    @property
    def postcondition(self) -> Condition:
        return _SHAPE[self.collective][1]

    # readable views -------------------------------------------------------------------------
    @property
    def ntransfers(self) -> int:
        return sum(len(s) for s in self.steps)

    def transfers(self, step: int | None = None) -> Iterator[Transfer]:
        """Every transfer (of one step, or of all in order) as a :class:`Transfer`."""
        chosen: Iterable[Step] = self.steps if step is None else (self.steps[step],)
        for s in chosen:
            tidx, chunk = s.expand(self.nchunks)
            bounds = np.searchsorted(tidx, np.arange(len(s) + 1))
            for i in range(len(s)):
                yield Transfer(
                    int(s.src[i]),
                    int(s.dst[i]),
                    tuple(int(c) for c in chunk[bounds[i] : bounds[i + 1]]),
                    Op.REDUCE if s.reduce[i] else Op.COPY,
                )

    def chunks_sent(self) -> np.ndarray:
        """Per rank, how many chunks (as a count, chunks may differ in size) it sends."""
        sent = np.zeros(self.nranks, dtype=np.int64)
        for s in self.steps:
            per_transfer = np.bincount(s.run_owner(), weights=s.run_len, minlength=len(s))
            np.add.at(sent, s.src, per_transfer.astype(np.int64))
        return sent

    def bytes_sent(self, nbytes: int) -> np.ndarray:
        """Per rank, the bytes it sends when the whole vector is ``nbytes`` one-byte elements."""
        size = np.diff(chunk_bounds(nbytes, self.nchunks))
        prefix = np.concatenate(([0], np.cumsum(np.concatenate((size, size)))))
        sent = np.zeros(self.nranks, dtype=np.int64)
        for s in self.steps:
            if len(s) == 0:
                continue
            a = s.starts(self.nchunks)
            run_bytes = prefix[a + s.run_len] - prefix[a]
            np.add.at(sent, s.src[s.run_owner()], run_bytes)
        return sent

    def sent_written(self, limit: int = WRITTEN_LIMIT) -> tuple[np.ndarray, ...]:
        """Per step, for every transfer, the fraction of its chunks that its sender wrote
        (received or reduced into) in an earlier step: data a rank forwards from its own
        recent writes, which it did not hold as input. A cache-coherent machine reads such
        data out of the writer's cache, which on a host of several core complexes costs more
        than reading clean data (docs/calibration.md).

        Tracked per (rank, chunk) while ``nranks * nchunks`` and the chunks moved stay within
        ``limit``; beyond, per rank: a transfer counts as written when its sender received
        anything in an earlier step (steps whose transfers are all alike share one read-only
        array, so a ring of 16384 ranks holds two).

        >>> from collectives import build
        >>> [f.tolist() for f in build("allreduce", "ring", 2).sent_written()]
        [[0.0, 0.0], [1.0, 1.0]]
        >>> [f.tolist() for f in build("allreduce", "recursive-doubling", 4).sent_written()]
        [[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
        """
        return tuple(w for w, _ in self.sent_written_kinds(limit))

    def sent_written_kinds(self, limit: int = WRITTEN_LIMIT
                           ) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """Per step, the pair (written, reduced): :meth:`sent_written`'s fractions, and of
        them the fraction whose last write on the sender was a reduction (the rest a copy of
        a received chunk). On a 2-vCPU AMD EPYC VM a crowd step of data its senders had just
        reduced cost about what clean data costs, one of data they had just received 1.4-2x
        (docs/calibration.md).

        Beyond ``limit`` (per rank, see :meth:`sent_written`) a rank's data counts as reduced
        where the last step it received in reduced.

        >>> from collectives import build
        >>> [(w.tolist(), r.tolist()) for w, r in
        ...  build("allreduce", "ring", 3).sent_written_kinds()]  # doctest: +NORMALIZE_WHITESPACE
        [([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]), ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
         ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]), ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])]
        """
        p, C = self.nranks, self.nchunks
        moved = sum(int(s.run_len.sum()) for s in self.steps)
        out = []
        if p * C <= limit and moved <= limit:
            # 0: clean, 1: written by a copy of received data, 2: written by a reduction
            state = np.zeros((p, C), dtype=np.int8)
            empty = np.zeros(0)
            for s in self.steps:
                if len(s) == 0:
                    out.append((empty, empty))
                    continue
                t, chunk = s.expand(C)
                had = state[s.src[t], chunk]
                count = np.bincount(t, minlength=len(s)).clip(1)
                written = np.bincount(t, weights=had > 0, minlength=len(s)) / count
                reduced = np.bincount(t, weights=had == 2, minlength=len(s)) / count
                out.append((written, reduced))
                state[s.dst[t], chunk] = np.where(s.reduce[t], 2, 1)
            return tuple(out)
        received = np.zeros(p, dtype=bool)
        by_reduction = np.zeros(p, dtype=bool)
        same: dict = {}  # one read-only array per (length, value) where a step's are all equal

        def shared(got):
            if got.size and (got.all() or not got.any()):
                key = (got.size, bool(got[0]))
                if key not in same:
                    same[key] = np.full(got.size, float(key[1]))
                    same[key].flags.writeable = False
                return same[key]
            return got.astype(np.float64)
        for s in self.steps:
            got = received[s.src]
            out.append((shared(got), shared(got & by_reduction[s.src])))
            received[s.dst] = True
            by_reduction[s.dst] = s.reduce
        return tuple(out)

    def most_received_per_step(self) -> float:
        """The most of the vector (a fraction, counted in chunks) that one rank receives in
        one step: what its scratch holds at once (the executor receives a step's data before
        it reduces or forwards it). Ring on ``p`` ranks: ``1 / p``; recursive doubling: 1.
        Steps that share their arrays (a ring's rotations) are counted once."""
        most, seen = 0, {}
        for s in self.steps:
            if len(s) == 0:
                continue
            key = (id(s.dst), id(s.run_ptr), id(s.run_len))
            got = seen.get(key)
            if got is None:
                per = np.bincount(s.run_owner(), weights=s.run_len, minlength=len(s))
                got = seen[key] = int(np.bincount(s.dst, weights=per).max())
            most = max(most, got)
        return most / self.nchunks

    def messages_sent(self) -> np.ndarray:
        """Per rank, how many messages it sends."""
        sent = np.zeros(self.nranks, dtype=np.int64)
        for s in self.steps:
            np.add.at(sent, s.src, 1)
        return sent

    def option(self, name: str, default=None):
        return dict(self.options).get(name, default)

    def __str__(self) -> str:
        sent = self.chunks_sent()
        most = int(sent.max()) if sent.size else 0
        return (
            f"Schedule {self.collective}/{self.algorithm}: {self.nranks} ranks, "
            f"{self.nchunks} chunks, {len(self.steps)} steps, {self.ntransfers} transfers; "
            f"busiest rank sends {most}/{self.nchunks} of the vector "
            f"in {int(self.messages_sent().max()) if self.nranks else 0} messages"
        )

    def describe(self, limit: int = 40) -> str:
        """A multi-line listing of the steps and transfers (first ``limit`` transfers)."""
        lines = [str(self)]
        shown = 0
        for k, _ in enumerate(self.steps):
            for t in self.transfers(k):
                if shown >= limit:
                    lines.append("  ...")
                    return "\n".join(lines)
                lines.append(f"  step {k}: {t}")
                shown += 1
        return "\n".join(lines)
