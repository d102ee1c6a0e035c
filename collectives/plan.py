"""Compiled per-rank plans: the transport-agnostic half of the MPI and NCCL executors.

:func:`compile_plan` walks a :class:`~collectives.ir.Schedule` once for one rank and one
vector length and turns it into a :class:`Plan`: per step, the messages this rank sends and
receives (peer, tag, and the element range on the wire), the packing before the step and the
copies and reductions after it, plus a final set of copies into the result. Everything is in
element units over four named buffers, so a plan does not depend on the dtype or on where the
buffers live:

``work``
    the n-element working vector: the caller's buffer in place, the receive buffer out of place
    (an internal buffer for an out-of-place reduce-scatter, whose output is only the owned
    chunks);
``send``
    the caller's input out of place (all-gather: the rank's own block);
``out``
    a reduce-scatter's output, the owned chunks in chunk order;
``scratch``
    receive and pack space, laid out per step and reused from step to step.

The semantics are the numpy executor's (:func:`collectives.numpy_executor.execute`): every
send reads the buffers as they were when the step began, so a chunk received in a step in which
this rank also sends it lands in scratch and is copied after the step; reductions always
receive into scratch and then apply ``op(own, received)``, in transfer order, so results are
bit-identical to the reference. Out of place, the plan never copies the input wholesale: a
chunk is read from ``send`` until it is first written, and the first reduction into it reads
``send`` and writes ``work`` (``op(send, scratch, out=work)``); only chunks that no step
writes are copied at the end.

:func:`bind` attaches a plan to real buffers through a
:class:`~collectives.transport.Transport` (which prepares each step's messages, e.g. as
persistent MPI requests) and allocates all scratch; :func:`execute` then runs a bound plan
with no schedule walking and no allocation.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from collectives.ir import Schedule, ScheduleError, chunk_bounds

__all__ = [
    "BUFFERS",
    "Action",
    "BoundPlan",
    "Message",
    "Piece",
    "Plan",
    "PlanStep",
    "StallError",
    "bind",
    "compile_plan",
    "execute",
    "schedule_digest",
    "step_groups",
]

WORK, SEND, OUT, SCRATCH = 0, 1, 2, 3
BUFFERS = ("work", "send", "out", "scratch")
TAG_MOD = 32768  # MPI guarantees tags up to 32767


class StallError(TimeoutError):
    """A run did not finish within its timeout; the message names the rank, step and peers."""


@dataclass(frozen=True, slots=True)
class Piece:
    """Elements ``start:stop`` of buffer ``buf`` (an index into :data:`BUFFERS`)."""

    buf: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    def __str__(self) -> str:
        return f"{BUFFERS[self.buf]}[{self.start}:{self.stop}]"


@dataclass(frozen=True, slots=True)
class Message:
    """One point-to-point message of a step: ``data`` is sent to, or received from, ``peer``."""

    peer: int
    tag: int
    data: Piece
    transfer: int  # index of the transfer inside the schedule's step


@dataclass(frozen=True, slots=True)
class Action:
    """A local copy (``dst = a``) or reduction (``dst = op(a, b)``)."""

    reduce: bool
    dst: Piece
    a: Piece
    b: Piece | None = None

    def __str__(self) -> str:
        if self.reduce:
            return f"{self.dst} = op({self.a}, {self.b})"
        return f"{self.dst} = {self.a}"


@dataclass(frozen=True, slots=True)
class PlanStep:
    """What one rank does in one step of the schedule (steps where it is idle are dropped)."""

    index: int
    pack: tuple[Action, ...]
    sends: tuple[Message, ...]
    recvs: tuple[Message, ...]
    post: tuple[Action, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """One rank's compiled part of a schedule for an ``count``-element vector.

    ``send_count`` and ``out_count`` are the element counts the caller's input and output must
    have (``out_count`` is 0 where the output is ``work`` itself); ``internal_work`` and
    ``internal_out`` say that :func:`bind` must allocate those buffers; ``result`` is where the
    rank's result lies after the run (None: this rank has none, e.g. a reduce's non-root).
    """

    collective: str
    algorithm: str
    nranks: int
    nsteps: int
    rank: int
    count: int
    inplace: bool
    send_count: int
    out_count: int
    internal_work: bool
    internal_out: bool
    scratch: int
    steps: tuple[PlanStep, ...]
    final: tuple[Action, ...]
    result: Piece | None

    @property
    def nmessages(self) -> int:
        return sum(len(s.sends) + len(s.recvs) for s in self.steps)

    def describe(self) -> str:
        """A readable listing, one line per message and action."""
        head = (f"Plan {self.collective}/{self.algorithm} rank {self.rank}/{self.nranks}, "
                f"{self.count} elements, {'in' if self.inplace else 'out of'} place, "
                f"{self.scratch} scratch elements")
        lines = [head]
        for s in self.steps:
            lines += [f"  step {s.index}: pack {a}" for a in s.pack]
            lines += [f"  step {s.index}: send {m.data} -> {m.peer} (tag {m.tag})"
                      for m in s.sends]
            lines += [f"  step {s.index}: recv {m.data} <- {m.peer} (tag {m.tag})"
                      for m in s.recvs]
            lines += [f"  step {s.index}: then {a}" for a in s.post]
        lines += [f"  final: {a}" for a in self.final]
        lines.append(f"  result: {self.result}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# compiling


@lru_cache(maxsize=64)
def schedule_digest(schedule: Schedule) -> str:
    """A digest of a schedule that is the same in every process (Python's ``hash`` is not)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(repr((schedule.collective, schedule.algorithm, schedule.nranks, schedule.nchunks,
                   schedule.owner, len(schedule.steps))).encode())
    for s in schedule.steps:
        for part in s.key():
            h.update(part if isinstance(part, bytes) else str(part).encode())
    return h.hexdigest()


def movement_digest(schedule: Schedule) -> str:
    """A digest without the algorithm's name and blind to the order in which a step lists its
    transfers: equal for schedules that move the same data in the same steps (on 2 ranks
    ring, rabenseifner and hierarchical; on 4 Rabenseifner and hierarchical, whose steps
    list the same transfers in another order and compile to the same plans).

    >>> from collectives import build
    >>> movement_digest(build("allreduce", "rabenseifner", 4)) == movement_digest(
    ...     build("allreduce", "hierarchical", 4))
    True
    >>> movement_digest(build("allreduce", "ring", 4)) == movement_digest(
    ...     build("allreduce", "hierarchical", 4))
    False
    """
    h = hashlib.blake2b(digest_size=8)
    h.update(repr((schedule.collective, schedule.nranks, schedule.nchunks, schedule.owner,
                   len(schedule.steps))).encode())
    for s in schedule.steps:  # a Python loop: meant for the rank counts one benchmarks
        start = s.starts(schedule.nchunks)
        transfers = sorted(
            (int(a), int(b), bool(r), tuple(zip(start[p:q].tolist(), s.run_len[p:q].tolist(),
                                               strict=True)))
            for a, b, r, p, q in zip(s.src, s.dst, s.reduce, s.run_ptr[:-1], s.run_ptr[1:],
                                     strict=True))
        h.update(repr(transfers).encode())
    return h.hexdigest()


@lru_cache(maxsize=64)
def _max_parallel(schedule: Schedule) -> int:
    """The largest number of transfers between one (src, dst) pair inside one step."""
    most = 1
    p = schedule.nranks
    for s in schedule.steps:
        if len(s) > 1:
            _, counts = np.unique(s.src * p + s.dst, return_counts=True)
            most = max(most, int(counts.max()))
    return most


def _merge(pieces: list[Piece]) -> list[Piece]:
    out: list[Piece] = []
    for pc in pieces:
        if pc.size == 0:
            continue
        if out and out[-1].buf == pc.buf and out[-1].stop == pc.start:
            out[-1] = Piece(pc.buf, out[-1].start, pc.stop)
        else:
            out.append(pc)
    return out


def _merge_actions(actions: list[Action]) -> list[Action]:
    """Fuse actions over consecutive element ranges (same kind, every operand contiguous)."""
    out: list[Action] = []

    def follows(x: Piece | None, y: Piece | None) -> bool:
        if x is None or y is None:
            return x is y
        return x.buf == y.buf and x.stop == y.start

    for a in actions:
        if a.dst.size == 0:
            continue
        if out:
            last = out[-1]
            if (last.reduce == a.reduce and follows(last.dst, a.dst) and follows(last.a, a.a)
                    and follows(last.b, a.b)):
                out[-1] = Action(a.reduce, Piece(a.dst.buf, last.dst.start, a.dst.stop),
                                 Piece(a.a.buf, last.a.start, a.a.stop),
                                 None if a.b is None else Piece(a.b.buf, last.b.start, a.b.stop))
                continue
        out.append(a)
    return out


def _overlaps(p: Piece, pieces: list[Piece]) -> bool:
    return any(q.buf == p.buf and q.start < p.stop and p.start < q.stop for q in pieces)


def compile_plan(schedule: Schedule, rank: int, count: int, inplace: bool) -> Plan:
    """Compile ``rank``'s part of ``schedule`` for a ``count``-element vector (cached).

    Raises :class:`~collectives.ir.ScheduleError` if the schedule makes this rank send or
    reduce into a chunk it does not hold, or leaves it without a chunk of its result.
    """
    if not 0 <= rank < schedule.nranks:
        raise ValueError(f"compile_plan: rank {rank} is outside the schedule's "
                         f"{schedule.nranks} ranks")
    if count < 0:
        raise ValueError(f"compile_plan: count must be >= 0, got {count}")
    return _compile(schedule, int(rank), int(count), bool(inplace))


@lru_cache(maxsize=256)
def _compile(schedule: Schedule, rank: int, count: int, inplace: bool) -> Plan:
    coll, C, r = schedule.collective, schedule.nchunks, rank
    bounds = chunk_bounds(count, C).tolist()
    size = [bounds[c + 1] - bounds[c] for c in range(C)]
    owned = [c for c in range(C) if schedule.owner and schedule.owner[c] == r]
    block: dict[int, int] = {}
    off = 0
    for c in owned:
        block[c] = off
        off += size[c]
    block_count = off

    # allgather, broadcast: only the owners hold their chunks at the start
    held = list(range(C)) if coll in ("allreduce", "reducescatter", "reduce") else owned
    wanted = owned if coll in ("reducescatter", "reduce") else list(range(C))

    contiguous = all(b == a + 1 for a, b in zip(owned, owned[1:], strict=False))
    rs_out = coll == "reducescatter" and (not inplace or not contiguous)

    def home(c: int) -> Piece:
        if rs_out and c in block:
            return Piece(OUT, block[c], block[c] + size[c])
        return Piece(WORK, bounds[c], bounds[c + 1])

    # Where each chunk's current value lives (None: not held yet). Empty chunks are held by all.
    loc: list[Piece | None] = [home(c) if size[c] == 0 else None for c in range(C)]
    for c in held:
        if inplace:
            loc[c] = Piece(WORK, bounds[c], bounds[c + 1])
        elif coll == "allgather":
            loc[c] = Piece(SEND, block[c], block[c] + size[c])
        else:
            loc[c] = Piece(SEND, bounds[c], bounds[c + 1])

    par = _max_parallel(schedule)
    steps: list[PlanStep] = []
    scratch_need = 0
    # Steps often share their arrays (a ring's steps are one step rotated): find this rank's
    # transfers and their tags' duplicate counts once per shared (src, dst) pair of arrays.
    mine_of: dict[tuple[int, int], tuple[list[int], dict[int, int]]] = {}
    for k, step in enumerate(schedule.steps):
        if len(step) == 0:
            continue
        src, dst = step.src, step.dst
        key = (id(src), id(dst))
        if key not in mine_of:
            mine_l = np.flatnonzero((src == r) | (dst == r)).tolist()
            dups = {}
            if par > 1 and mine_l:
                pair = src * schedule.nranks + dst
                dups = {i: int(np.count_nonzero(pair[:i] == pair[i])) for i in mine_l}
            mine_of[key] = (mine_l, dups)
        mine, dups = mine_of[key]
        if not mine:
            continue
        shift = step.chunk_offset
        sends: list[Message] = []
        recvs: list[Message] = []
        pack: list[Action] = []
        post: list[Action] = []
        chunks_of: dict[int, list[int]] = {}
        tag_of: dict[int, int] = {}
        for i in mine:
            cs: list[int] = []
            for j in range(int(step.run_ptr[i]), int(step.run_ptr[i + 1])):
                s0 = int(step.run_start[j]) + shift
                cs.extend((s0 + t) % C for t in range(int(step.run_len[j])))
            chunks_of[i] = cs
            tag_of[i] = (k * par + dups.get(i, 0)) % TAG_MOD
        send_ids = [i for i in mine if src[i] == r]
        recv_ids = [i for i in mine if dst[i] == r]
        if any(src[i] == dst[i] for i in send_ids):
            raise ScheduleError(f"step {k}, rank {r} -> {r}: a transfer to itself")

        # Sends read the buffers as they are at the start of the step.
        offset = 0
        read: list[Piece] = []
        packs: list[tuple[int, list[Piece], int]] = []
        for i in send_ids:
            pieces = []
            for c in chunks_of[i]:
                if loc[c] is None:
                    raise ScheduleError(
                        f"step {k}, rank {r} -> {int(dst[i])}, chunk {c}: rank {r} sends a "
                        f"chunk it does not hold")
                pieces.append(loc[c])
            pieces = _merge(pieces)
            read += pieces
            total = sum(pc.size for pc in pieces)
            if total == 0:
                continue
            if len(pieces) == 1:
                sends.append(Message(int(dst[i]), tag_of[i], pieces[0], i))
            else:
                packs.append((i, pieces, total))

        # Receives: scratch unless a plain copy can land where it belongs.
        times: dict[int, int] = {}
        for i in recv_ids:
            for c in chunks_of[i]:
                times[c] = times.get(c, 0) + 1
        for i in recv_ids:
            cs = [c for c in chunks_of[i] if size[c]]
            total = sum(size[c] for c in cs)
            if total == 0:
                continue
            peer = int(src[i])
            reduce = bool(step.reduce[i])
            target = _merge([home(c) for c in cs])
            direct = (not reduce and len(target) == 1 and all(times[c] == 1 for c in cs)
                      and not _overlaps(target[0], read))
            if direct:
                recvs.append(Message(peer, tag_of[i], target[0], i))
                for c in cs:
                    loc[c] = home(c)
                continue
            seg = Piece(SCRATCH, offset, offset + total)
            offset += total
            recvs.append(Message(peer, tag_of[i], seg, i))
            acts = []
            at = seg.start
            for c in cs:
                piece = Piece(SCRATCH, at, at + size[c])
                at += size[c]
                if reduce:
                    if loc[c] is None:
                        raise ScheduleError(
                            f"step {k}, rank {r} += {peer}, chunk {c}: rank {r} reduces into "
                            f"a chunk it does not hold")
                    acts.append(Action(True, home(c), loc[c], piece))
                else:
                    acts.append(Action(False, home(c), piece))
                loc[c] = home(c)
            post += _merge_actions(acts)

        for i, pieces, total in packs:
            seg = Piece(SCRATCH, offset, offset + total)
            at = offset
            offset += total
            for pc in pieces:
                pack.append(Action(False, Piece(SCRATCH, at, at + pc.size), pc))
                at += pc.size
            sends.append(Message(int(dst[i]), tag_of[i], seg, i))
        sends.sort(key=lambda m: m.transfer)
        scratch_need = max(scratch_need, offset)
        if sends or recvs:
            steps.append(PlanStep(k, tuple(pack), tuple(sends), tuple(recvs), tuple(post)))

    final = []
    for c in wanted:
        if size[c] == 0:
            continue
        if loc[c] is None:
            raise ScheduleError(
                f"{schedule.collective}/{schedule.algorithm}: chunk {c} never reaches rank {r}")
        if loc[c] != home(c):
            final.append(Action(False, home(c), loc[c]))
    final = _merge_actions(final)

    if coll == "reducescatter":
        if rs_out:
            result = Piece(OUT, 0, block_count)
        elif owned:
            result = Piece(WORK, bounds[owned[0]], bounds[owned[-1] + 1])
        else:
            result = Piece(WORK, 0, 0)
    elif coll == "reduce":
        result = Piece(WORK, 0, count) if owned else None
    else:
        result = Piece(WORK, 0, count)

    if inplace:
        send_count = count
    elif coll == "allgather":
        send_count = block_count
    else:
        send_count = count
    return Plan(
        collective=coll,
        algorithm=schedule.algorithm,
        nranks=schedule.nranks,
        nsteps=len(schedule.steps),
        rank=r,
        count=count,
        inplace=inplace,
        send_count=send_count,
        out_count=block_count if rs_out else 0,
        internal_work=coll == "reducescatter" and not inplace,
        internal_out=rs_out and inplace,
        scratch=scratch_need,
        steps=tuple(steps),
        final=tuple(final),
        result=result,
    )


# ------------------------------------------------------------------------------------------
# binding and running


class BoundPlan:
    """A plan attached to buffers and to a transport, ready to run many times.

    Holds references to every buffer (so their memory stays put while the transport's prepared
    messages point at it) and the transport's per-step handles.
    """

    __slots__ = ("buffers", "final", "finish", "handles", "plan", "poll", "result", "start",
                 "steps", "transport", "ufunc", "wait", "__weakref__")

    def __init__(self, plan, transport, buffers, steps, final, result, ufunc):
        self.plan = plan
        self.transport = transport
        self.buffers = buffers
        self.steps = steps
        self.final = final
        self.result = result
        self.ufunc = ufunc
        self.handles = [s[1] for s in steps]
        # the transport's entry points, looked up once (the hot loop calls them directly)
        self.start, self.poll, self.wait = transport.start, transport.poll, transport.wait
        self.finish = transport.finish if transport.needs_finish else None

    def free(self) -> None:
        """Release the transport's prepared messages (the plan cannot run afterwards)."""
        handles, self.handles, self.steps = self.handles, [], []
        for h in handles:
            self.transport.free(h)


#: Consecutive plan steps of one rank whose messages total at most this many elements are
#: started together (one ``Startall``, one wait) when they do not depend on each other; see
#: :func:`step_groups`. Above it, a message's time is its bytes, not the calls around it.
MERGE_LIMIT = 2048


def _effects(st: PlanStep) -> tuple[list[Piece], list[Piece], list[Piece], list[Piece]]:
    """(read before/while messages fly, written by messages, read by post, written by post)
    of one step, outside scratch."""
    def outside(pieces):
        return [pc for pc in pieces if pc.buf != SCRATCH]

    early = outside([m.data for m in st.sends] + [a.a for a in st.pack])
    wire = outside([m.data for m in st.recvs])
    late = outside([a.a for a in st.post] + [a.b for a in st.post if a.b is not None])
    post = outside([a.dst for a in st.post])
    return early, wire, late, post


def _any_overlap(xs: list[Piece], ys: list[Piece]) -> bool:
    return any(_overlaps(x, ys) for x in xs)


def step_groups(plan: Plan, limit: int = MERGE_LIMIT) -> list[list[PlanStep]]:
    """The plan's steps in runs that may start together: one group's packing runs first, then
    all its messages are started at once and waited for at once, then its steps' local
    reductions and copies in step order.

    A step joins the group before it when every message of the group is small (``limit``
    elements in all), and nothing it sends or packs is written by the group's receives or
    local actions, and nothing it receives into is read or written by the group (its messages
    in flight, its later reductions); scratch never clashes (each step of a group gets its own
    region). The result is bit-identical to running the steps one by one, and no rank waits
    for anything sooner: a group only starts sends earlier. E.g. the root of a binomial
    reduce posts both receives of a 4-rank reduce at once, a leaf its send and the receive of
    the broadcast.

    >>> from collectives import build
    >>> plan = compile_plan(build("allreduce", "binomial", 4), 1, 8, inplace=False)
    >>> [[st.index for st in g] for g in step_groups(plan)]
    [[0, 3]]
    >>> [[st.index for st in g] for g in step_groups(plan, limit=0)]
    [[0], [3]]
    """
    groups: list[list[PlanStep]] = []
    size = 0
    early: list[Piece] = []
    wire: list[Piece] = []
    late: list[Piece] = []
    post: list[Piece] = []
    for st in plan.steps:
        e, w, la, po = _effects(st)
        n = sum(m.data.size for m in (*st.sends, *st.recvs))
        fits = (groups and size + n <= limit
                and not _any_overlap(e, wire + post)
                and not _any_overlap(w, early + wire + late + post))
        if not fits:
            groups.append([])
            size, early, wire, late, post = 0, [], [], [], []
        groups[-1].append(st)
        size += n
        early, wire, late, post = early + e, wire + w, late + la, post + po
    return groups


def bind(plan: Plan, transport, op: str, dtype, work=None, send=None, out=None,
         merge_limit: int = MERGE_LIMIT) -> BoundPlan:
    """Attach ``plan`` to buffers (arrays of ``dtype`` the transport understands).

    ``work`` is the caller's in-place buffer or out-of-place receive buffer (None where the plan
    uses an internal one), ``send`` the out-of-place input, ``out`` a reduce-scatter's output.
    Scratch and internal buffers are allocated here, once. Steps are run in the groups of
    :func:`step_groups` (``merge_limit`` 0: one step at a time).
    """
    t = transport
    if plan.internal_work:
        work = t.empty(plan.count, dtype)
    if plan.internal_out:
        out = t.empty(plan.out_count, dtype)
    groups = step_groups(plan, merge_limit)
    # each step of a group gets its own scratch region: the step's scratch shifted by base
    bases: dict[int, int] = {}
    need = plan.scratch
    for g in groups:
        at = 0
        for st in g:
            bases[st.index] = at
            at += max((pc.stop for pc in _scratch_pieces(st)), default=0)
        need = max(need, at)
    scratch = t.empty(need, dtype)
    bufs = (work, send, out, scratch)
    shift = 0

    def view(pc: Piece):
        if pc.buf == SCRATCH:
            return scratch[pc.start + shift:pc.stop + shift]
        return bufs[pc.buf][pc.start:pc.stop]

    uf = t.ufunc(op)

    def action(a: Action):
        if a.reduce:
            return t.bind_reduce(uf, view(a.dst), view(a.a), view(a.b))
        return t.bind_copy(view(a.dst), view(a.a))

    steps = []
    for g in groups:
        pack, ops, post = [], [], []
        for st in g:
            shift = bases[st.index]
            pack += [action(a) for a in st.pack]
            ops += [t.send(view(m.data), m.peer, m.tag) for m in st.sends]
        for st in g:
            shift = bases[st.index]
            ops += [t.recv(view(m.data), m.peer, m.tag) for m in st.recvs]
            post += [action(a) for a in st.post]
        shift = 0
        steps.append((tuple(pack), t.group(ops), tuple(post), tuple(g)))
    final = tuple(action(a) for a in plan.final)
    result = None if plan.result is None else view(plan.result)
    return BoundPlan(plan, t, bufs, steps, final, result, uf)


def _scratch_pieces(st: PlanStep) -> list[Piece]:
    pieces = [m.data for m in (*st.sends, *st.recvs)]
    for a in (*st.pack, *st.post):
        pieces += [a.dst, a.a] + ([a.b] if a.b is not None else [])
    return [pc for pc in pieces if pc.buf == SCRATCH]


def _stall_message(bp: BoundPlan, group: tuple[PlanStep, ...], pending: list[int],
                   waited: float) -> str:
    sends = [m for st in group for m in st.sends]
    recvs = [m for st in group for m in st.recvs]
    nsend = len(sends)
    what = []
    for i in pending:
        if i < nsend:
            m = sends[i]
            what.append(f"send of {m.data.size} elements to rank {m.peer} (tag {m.tag})")
        else:
            m = recvs[i - nsend]
            what.append(f"receive of {m.data.size} elements from rank {m.peer} (tag {m.tag})")
    plan = bp.plan
    peers = sorted({(sends[i].peer if i < nsend else recvs[i - nsend].peer) for i in pending})
    where = (f"step {group[0].index}" if len(group) == 1
             else "steps " + ", ".join(str(st.index) for st in group))
    return (f"rank {plan.rank}: {plan.collective}/{plan.algorithm} stalled in {where} "
            f"of {plan.nsteps}: waited {waited:.1f} s for rank(s) {', '.join(map(str, peers))}: "
            f"{'; '.join(what) or 'unknown operation'} (the ranks probably run different "
            f"schedules, counts or calls)")


def execute(bp: BoundPlan, timeout: float | None = None):
    """Run a bound plan once and return the result view (None where the rank has none).

    With a ``timeout`` (seconds), a step whose messages are not all done by then raises
    :class:`StallError` naming the rank, the step and the peers waited on.
    """
    start, poll, wait, finish = bp.start, bp.poll, bp.wait, bp.finish
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for pack, ops, post, _ in bp.steps:
            for f in pack:
                f()
            start(ops)
            if not poll(ops):
                wait(ops, deadline)
            for f in post:
                f()
        for f in bp.final:
            f()
        if finish is not None:
            finish(deadline)
    except bp.transport.Timeout as e:
        step = next((s[3] for s in bp.steps if s[1] is e.handle), None)
        if step is None:
            raise StallError(f"rank {bp.plan.rank}: {bp.plan.collective}/{bp.plan.algorithm} "
                             f"did not finish within {timeout} s") from None
        raise StallError(_stall_message(bp, step, e.pending, timeout)) from None
    return bp.result
