"""Tuning tables: the fastest algorithm per (rank count, size), merged into size bands.

:func:`tune` simulates every candidate algorithm at every rank count and size (through
:func:`sim.api.sweep`, so each schedule is built once per rank count), picks the fastest at
each size, keeps the margin to the runner-up, and merges neighbouring sizes with the same
winner into a :class:`Band`. The candidates are our algorithms that the target library also
runs (:mod:`sim.export.mapping`), or all of ours when no library is named.

A table answers for any size, not only the sampled ones: a band starts at its first sampled
size and reaches up to the next band's first size minus one; the first band starts at 0 and
the last has no end. A rank count between two tuned ones uses the rules of the next smaller
tuned count (below the smallest: the smallest's). :meth:`TuneTable.select` is that rule; every
exporter writes exactly it in its library's grammar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from collectives.registry import algorithms as registry_algorithms
from collectives.registry import canonical_collective

__all__ = ["Band", "Choice", "TuneTable", "format_tune_table", "merge_bands", "tune"]


@dataclass(frozen=True)
class Choice:
    """Every candidate's predicted time at one (rank count, size), fastest first."""

    size: int
    times: tuple[tuple[str, float], ...]

    @property
    def winner(self) -> str:
        return self.times[0][0]

    @property
    def time_s(self) -> float:
        return self.times[0][1]

    @property
    def runner_up(self) -> str | None:
        return self.times[1][0] if len(self.times) > 1 else None

    @property
    def margin(self) -> float | None:
        """How much slower the runner-up is, in percent (None with one candidate)."""
        if len(self.times) < 2 or self.times[0][1] <= 0:
            return None
        return 100.0 * (self.times[1][1] / self.times[0][1] - 1.0)


@dataclass(frozen=True)
class Band:
    """Neighbouring sampled sizes with the same winner; ``margin`` is the smallest over them
    (the runner-up there is ``runner_up``)."""

    algorithm: str
    sizes: tuple[int, ...]
    margin: float | None
    runner_up: str | None

    @property
    def first(self) -> int:
        return self.sizes[0]

    @property
    def last(self) -> int:
        return self.sizes[-1]


def merge_bands(choices: Sequence[Choice]) -> tuple[Band, ...]:
    """Merge neighbouring sizes with the same winner.

    >>> c = [Choice(8, (("a", 1.0), ("b", 2.0))), Choice(16, (("a", 1.0), ("b", 1.5))),
    ...      Choice(32, (("b", 1.0), ("a", 1.1)))]
    >>> [(b.algorithm, b.sizes, round(b.margin), b.runner_up) for b in merge_bands(c)]
    [('a', (8, 16), 50, 'b'), ('b', (32,), 10, 'a')]
    """
    bands: list[Band] = []
    group: list[Choice] = []

    def close() -> None:
        if not group:
            return
        with_margin = [c for c in group if c.margin is not None]
        tight = min(with_margin, key=lambda c: c.margin) if with_margin else None
        bands.append(Band(group[0].winner, tuple(c.size for c in group),
                          tight.margin if tight else None, tight.runner_up if tight else None))

    for c in sorted(choices, key=lambda c: c.size):
        if group and c.winner != group[-1].winner:
            close()
            group = []
        group.append(c)
    close()
    return tuple(bands)


@dataclass(frozen=True)
class TuneTable:
    """The tuned choices of one collective: per rank count, the per-size choices and bands.

    ``library`` is the target library key (``None``: every algorithm of ours competed);
    ``unmodelled`` lists the library's algorithms we do not model (labels as the library
    names them); ``setting`` describes the model and network for headers.
    """

    collective: str
    library: str | None
    ranks: tuple[int, ...]
    choices: dict[int, tuple[Choice, ...]]
    bands: dict[int, tuple[Band, ...]]
    candidates: dict[int, tuple[str, ...]]
    unmodelled: tuple[str, ...] = ()
    setting: str = ""
    extra: dict = field(default_factory=dict)

    def rank_block(self, ranks: int) -> int:
        """The tuned rank count whose rules apply to a communicator of ``ranks``."""
        below = [r for r in self.ranks if r <= ranks]
        return max(below) if below else min(self.ranks)

    def select(self, ranks: int, size: int) -> str:
        """Our algorithm the table selects for ``ranks`` ranks and ``size`` bytes.

        >>> t = TuneTable("allreduce", None, (4,), {}, {4: (Band("a", (8, 16), None, None),
        ...               Band("b", (32,), None, None))}, {4: ("a", "b")})
        >>> [t.select(4, s) for s in (0, 31, 32, 1 << 40)], t.select(64, 8)
        (['a', 'a', 'b', 'b'], 'a')
        """
        bands = self.bands[self.rank_block(ranks)]
        chosen = bands[0].algorithm
        for band in bands:
            if band.first <= size:
                chosen = band.algorithm
        return chosen

    def boundaries(self, ranks: int) -> list[tuple[int, int | None, str]]:
        """``(lo, hi, algorithm)`` per band as exported: inclusive bytes, ``hi=None`` open."""
        bands = self.bands[ranks]
        out = []
        for i, band in enumerate(bands):
            lo = 0 if i == 0 else band.first
            hi = bands[i + 1].first - 1 if i + 1 < len(bands) else None
            out.append((lo, hi, band.algorithm))
        return out

    def times(self) -> dict[tuple[int, int], dict[str, float]]:
        """``{(ranks, size): {algorithm: seconds}}``, as :func:`sim.plots.plot_best_map`
        takes it."""
        return {(r, c.size): dict(c.times) for r, cs in self.choices.items() for c in cs}


def tune(collective: str, ranks: Sequence[int], sizes: Sequence[int],
         network: Callable[[int], tuple[object, object]], *, library: str | None = None,
         algorithms: Sequence[str] | None = None, placement=None,
         progress: Callable[[int, int], None] | None = None, setting: str = "") -> TuneTable:
    """Simulate every candidate at every rank count and size and return the tuned table.

    ``network(ranks) -> (topology graph or None, model params)`` builds the network of one
    rank count. Candidates are ``algorithms`` (default: every algorithm of ``collective``),
    restricted to those ``library`` runs at that rank count. Cost: one schedule build per
    (rank count, candidate), one simulation per (rank count, candidate, size). Raises
    ``ValueError`` when a rank count leaves nothing to choose from.

    >>> from sim.models import Hockney
    >>> t = tune("allreduce", [8], [1024, 1 << 22], lambda p: (None, Hockney(2e-6, 1e-9)),
    ...          library="openmpi")
    >>> [(b.algorithm, b.sizes) for b in t.bands[8]]
    [('recursive-doubling', (1024,)), ('rabenseifner', (4194304,))]
    """
    from sim.api import sweep
    from sim.export.mapping import LIBRARIES, candidates, unmodelled

    coll = canonical_collective(collective)
    ranks = sorted(dict.fromkeys(int(r) for r in ranks))
    sizes = sorted(dict.fromkeys(int(s) for s in sizes))
    if not ranks or not sizes:
        raise ValueError("tune needs at least one rank count and one size")
    if ranks[0] < 2:
        raise ValueError(f"rank count {ranks[0]}: a collective on one rank has nothing to "
                         f"tune; use --ranks 2 or more")
    known = registry_algorithms(coll)
    wanted = list(known) if algorithms is None else [
        a.strip().lower().replace("_", "-") for a in algorithms]
    bad = [a for a in wanted if a not in known]
    if bad:
        raise ValueError(f"unknown {coll} algorithm(s) {', '.join(map(repr, bad))}; known: "
                         f"{', '.join(known)}")
    missing = []
    if library is not None:
        missing = [a.label for a in unmodelled(library, coll)]
    per_rank: dict[int, list[str]] = {}
    for p in ranks:
        names = wanted
        if library is not None:
            lib = candidates(library, coll, p)
            names = [a for a in wanted if a in lib]
        if not names:
            what = LIBRARIES[library] if library else "this project"
            raise ValueError(
                f"nothing to choose from for {coll} on {p} ranks: {what} runs none of "
                f"{', '.join(wanted)}; `python -m sim tune --help` lists each library's "
                f"algorithms (docs/tuning.md)")
        per_rank[p] = names
    total = sum(len(n) for n in per_rank.values()) * len(sizes)
    done = 0
    choices: dict[int, tuple[Choice, ...]] = {}
    bands: dict[int, tuple[Band, ...]] = {}
    for p in ranks:
        graph, params = network(p)

        def step(d, t, base=done):
            if progress is not None:
                progress(base + d, total)

        records = sweep(coll, per_rank[p], p, sizes, graph, params=params, placement=placement,
                        progress=step)
        done += len(records)
        by_size: dict[int, list[tuple[str, float]]] = {}
        for r in records:
            by_size.setdefault(r.size, []).append((r.algorithm, r.time_s))
        # stable sort: on a tie the earlier candidate (registry order) wins
        row = tuple(Choice(s, tuple(sorted(by_size[s], key=lambda kv: kv[1])))
                    for s in sizes)
        choices[p] = row
        bands[p] = merge_bands(row)
    return TuneTable(coll, library, tuple(ranks), choices, bands,
                     {p: tuple(n) for p, n in per_rank.items()}, tuple(missing), setting)


def _label(table: TuneTable, algorithm: str, ranks: int) -> str:
    if table.library is None:
        return "-"
    from sim.export.mapping import candidates

    return candidates(table.library, table.collective, ranks)[algorithm].label


def format_tune_table(table: TuneTable) -> str:
    """The table as text: one row per (rank count, band) with the exported byte range, the
    winner (ours and the library's name), the smallest margin to the runner-up in the band
    and that runner-up; ``#`` header lines name the candidates and what is not modelled."""
    from sim.export.mapping import LIBRARIES
    from topologies.units import format_bytes

    lib = LIBRARIES.get(table.library, "every algorithm of this project")
    lines = [f"# {table.collective} tuned for {lib}" + (f"; {table.setting}" if table.setting
                                                           else "")]
    if table.unmodelled:
        lines.append(f"# not modelled here (never chosen): {', '.join(table.unmodelled)}")
    head = (f"#{'ranks':>6} {'from (B)':>12} {'to (B)':>12} {'algorithm':>20} "
            f"{'library algorithm':>34} {'margin':>8}  runner-up")
    lines.append(head)
    for p in table.ranks:
        lines.append(f"# {p} ranks: candidates {', '.join(table.candidates[p])}")
        for band, (lo, hi, algo) in zip(table.bands[p], table.boundaries(p), strict=True):
            margin = "-" if band.margin is None else f"{band.margin:.1f}%"
            hi_txt = "inf" if hi is None else str(hi)
            lines.append(f"{p:>7} {lo:>12} {hi_txt:>12} {algo:>20} "
                         f"{_label(table, algo, p):>34} {margin:>8}  "
                         f"{band.runner_up or '-'}"
                         f"  (sampled {format_bytes(band.first)}..{format_bytes(band.last)})")
    return "\n".join(lines)
