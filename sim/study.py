"""What-if studies: run a :class:`~sim.studyfile.Study` and write a report directory.

``python -m sim`` (no arguments) runs the embedded study below; ``python -m sim report FILE``
runs a study file. The report holds PNG and SVG figures and an ``index.html`` that embeds them
with a table of which algorithm wins where, and by how much.

A study is a list of independent tasks, one per (topology variation, algorithm), each
simulating every size. They run in this process, on ``jobs`` local processes
(:class:`concurrent.futures.ProcessPoolExecutor`) or on an MPI job's workers
(:class:`mpi4py.futures.MPIPoolExecutor`, under ``mpiexec -n N python -m mpi4py.futures``).
Every finished task's records are appended to ``records.jsonl`` at once (one line per
simulation, flushed), so a killed study keeps them; ``resume=True`` runs only the missing
ones. The report is always built from what is on disk, in task order, so serial, parallel and
resumed runs write the same records.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from collectives.registry import build
from sim import plots
from sim.api import sweep
from sim.engine import simulate
from sim.models import model_params
from sim.studyfile import WHATIF_KEYS, Study, StudyError, load_study, parse_sizes
from sim.table import Record
from topologies import groups
from topologies.units import format_bytes, format_time

__all__ = ["DEFAULT_STUDY", "StudyReport", "default_study", "main", "read_records", "run_study",
           "summarise_wins"]

DEFAULT_STUDY = {
    "title": "Which all-reduce wins? A 4 x 8 GPU cluster and a 128-rank fat-tree",
    "collective": "allreduce",
    "algorithms": ["ring", "rabenseifner", "double-binary-tree", "hierarchical"],
    "sizes": "1K:1G",
    "model": "contention",
    "topology": [
        {"name": "4 nodes x 8 GPUs (NVLink 450 GB/s, IB 50 GB/s)", "kind": "gpu-cluster",
         "nodes": 4, "gpus_per_node": 8, "bandwidth": "50GB/s", "latency": "1us",
         "intra_bandwidth": "450GB/s", "intra_latency": "250ns"},
        {"name": "fat-tree k=8, 128 hosts, 25 GB/s", "kind": "fat-tree", "k": 8,
         "bandwidth": "25GB/s", "latency": "1us", "vary": {"oversubscription": [1, 2]}},
    ],
}


def default_study(quick: bool = False) -> Study:
    """The embedded study; ``quick`` keeps every figure but samples sizes by 16x, not 2x."""
    from sim.studyfile import parse_study

    data = dict(DEFAULT_STUDY)
    if quick:
        data["sizes"] = "1K:1G:16"
    return parse_study(data, where="default study")


@dataclass
class StudyReport:
    out_dir: Path
    index: Path
    figures: list[Path] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    wins: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    ran: int = 0  # simulations run by this call (the others were on disk: --resume)
    sim_seconds: float = 0.0  # of ``seconds``, the time spent running them


def _options_for(study: Study, G, nranks: int) -> dict[str, dict]:
    """Builder options per algorithm; hierarchical groups follow the topology's servers or
    switches when they split the ranks evenly."""
    opts = {a: dict(o) for a, o in study.options.items()}
    if "hierarchical" in study.algorithms and "group_size" not in opts.get("hierarchical", {}):
        sizes = {len(g) for g in groups(G, nranks)}
        if len(sizes) == 1:
            size = sizes.pop()
            if 1 < size < nranks:
                opts.setdefault("hierarchical", {})["group_size"] = size
    return opts


def _model_params(study: Study):
    """The study's model parameters; ``sharing`` goes to the contention model (the others
    take none: model_params drops it)."""
    return model_params(study.model, sharing=study.sharing)


#: Per process: graphs (and their compiled networks, cached by the simulator) of the
#: variations simulated lately, so the tasks of one variation share them.
_GRAPHS: dict = {}


def _variation(study: Study, t: int, v: int):
    """-> (label, params, graph with the what-ifs applied, ranks, WhatIf) of variation ``v``
    of topology ``t``."""
    from sim.api import whatif_topology

    spec = study.topologies[t]
    label, params = spec.variations()[v]
    base = json.dumps([spec.kind, {k: x for k, x in params.items() if k not in WHATIF_KEYS}],
                      sort_keys=True, default=str)
    G = _GRAPHS.get(base)
    if G is None:
        if len(_GRAPHS) > 16:
            _GRAPHS.clear()
        G = _GRAPHS[base] = spec.build(params)
    nranks = spec.ranks or sum(1 for _, k in G.nodes(data="kind") if k == "endpoint")
    w = spec.whatif(params, nranks)
    if w.degrade or w.fail_links:
        key = json.dumps([base, w.degrade, w.fail_links], sort_keys=True, default=str)
        H = _GRAPHS.get(key)
        if H is None:
            deg, failed = w.graph_changes(G)
            H = _GRAPHS[key] = whatif_topology(G, nranks, degrade=deg, fail_links=failed)
        G = H
    return label, params, G, nranks, w


#: Per process: schedules and builder options, shared by the tasks that need the same ones
#: (a 512-rank hierarchical schedule takes 30 ms to build, its groups 10 ms to find).
_BUILT: dict = {}


def _built(key, make):
    got = _BUILT.get(key)
    if got is None:
        if len(_BUILT) > 64:
            _BUILT.clear()
        got = _BUILT[key] = make()
    return got


def _run_task(study: Study, t: int, v: int, algo: str, sizes: tuple[int, ...]) -> list[dict]:
    """Simulate ``algo`` at ``sizes`` on variation ``v`` of topology ``t``: one record dict
    per size (what goes into ``records.jsonl``). A top-level function: pool workers run it."""
    from sim.api import _record as api_record
    from sim.api import _what_if_kwargs

    label, params, G, nranks, w = _variation(study, t, v)
    spec = study.topologies[t]
    base = json.dumps([spec.kind, {k: x for k, x in params.items() if k not in WHATIF_KEYS}],
                      sort_keys=True, default=str)
    # groups from the healthy graph: a failed link changes routes, not the servers
    opts = _built(("options", base, nranks), lambda: _options_for(
        study, _GRAPHS.get(base, G), nranks)).get(algo)
    sch = _built(("schedule", study.collective, algo, nranks, json.dumps(opts, sort_keys=True)),
                 lambda: build(study.collective, algo, nranks, **(opts or {})))
    what_if = _what_if_kwargs(w.arrival, w.reduce_scale)
    model = _model_params(study)
    recs = [api_record(simulate(sch, G, size, params=model, routing=study.routing, **what_if),
                       algo, "uint8")
            for size in sizes]
    varied = {k: params[k] for k in study.topologies[t].varied_whatifs}
    out = []
    for r in recs:
        d = r.as_dict()
        d.update(key=_key(t, v, algo, r.size), variation=label, whatif=varied)
        out.append(d)
    return out


def _key(t: int, v: int, algo: str, size: int) -> str:
    return f"{t}/{v}/{algo}/{size}"


def _record(d: dict) -> Record:
    """A record dict from disk back into a :class:`Record` (the rest goes to ``extra``)."""
    names = [f.name for f in fields(Record) if f.name != "extra"]
    return Record(**{n: d[n] for n in names},
                  extra={k: x for k, x in d.items() if k not in names})


def _fingerprint(study: Study) -> str:
    """What makes two studies' records interchangeable: everything but the sizes (so a resume
    with more sizes runs only the new ones)."""
    data = asdict(replace(study, sizes=()))
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _write_whole(path: Path, text: str) -> None:
    """Write a file whole: a reader sees the old one or the new one, never half of either."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_records(path: str | Path) -> tuple[dict | None, list[dict]]:
    """``records.jsonl`` -> (its header, the record dicts in file order). A last line cut short
    by a kill is dropped; a damaged line elsewhere is a :class:`StudyError` naming it."""
    path = Path(path)
    if not path.exists():
        return None, []
    lines = path.read_text().split("\n")
    complete = lines[:-1]  # what follows the last newline was cut short (or is empty)
    header, out = None, []
    for i, line in enumerate(complete):
        try:
            d = json.loads(line)
        except ValueError:
            if i == len(complete) - 1:
                break
            raise StudyError(f"{path}: line {i + 1} is damaged; delete it (its simulations "
                             f"run again with --resume) or run without --resume") from None
        if i == 0 and "header" in d:
            header = d["header"]
        elif isinstance(d, dict) and "key" in d:
            out.append(d)
    return header, out


def _executor(jobs: int, executor: str | None):
    """The pool the tasks run on, or None to run them here."""
    if executor == "mpi":
        try:
            from mpi4py.futures import MPIPoolExecutor, _core
        except ImportError:
            raise StudyError("--executor mpi needs mpi4py (pip install '.[mpi]')") from None
        # Workers exist only under `python -m mpi4py.futures`; without them MPIPoolExecutor
        # would try to spawn processes, which a plain launch cannot do.
        if getattr(_core, "SharedPool", None) is None:
            raise StudyError("--executor mpi: no MPI workers; run as mpiexec -n N python -m "
                             "mpi4py.futures -m sim report STUDY --executor mpi (N >= 2)")
        return MPIPoolExecutor()
    if executor not in (None, "process"):
        raise StudyError(f"--executor: got {executor!r}; use process or mpi")
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(max_workers=jobs)
    return None


def _run_tasks(study: Study, out: Path, tasks: list[tuple], resume: bool, jobs: int,
               executor: str | None, verbose: bool) -> tuple[list[dict], int]:
    """Run the tasks whose records ``records.jsonl`` lacks, appending each task's records as
    it finishes; return every wanted record dict, in task order, and how many were run."""
    from tqdm import tqdm

    path = out / "records.jsonl"
    header = {"study": study.title, "fingerprint": _fingerprint(study)}
    have: dict[str, dict] = {}
    if resume:
        old_header, old = read_records(path)
        if old_header is not None and old_header.get("fingerprint") != header["fingerprint"]:
            raise StudyError(f"{path} holds the records of another study "
                             f"({old_header.get('study')!r}); use another --out or run "
                             f"without --resume")
        have = {d["key"]: d for d in old}
    # Start the file again from what is kept (a cut-short last line goes), whole.
    _write_whole(path, "".join(json.dumps(x) + "\n" for x in
                               [{"header": header}, *have.values()]))
    todo = []
    for t, v, algo in tasks:
        missing = tuple(s for s in study.sizes if _key(t, v, algo, s) not in have)
        if missing:
            todo.append((t, v, algo, missing))
    total = len(tasks) * len(study.sizes)
    pool = _executor(jobs, executor) if todo else None
    bar = tqdm(total=total, initial=total - sum(len(m) for *_, m in todo), unit="sim",
               desc="simulating", disable=not verbose, file=sys.stderr, dynamic_ncols=True)
    with path.open("a") as f, bar:
        def keep(dicts: list[dict]) -> None:
            for d in dicts:
                have[d["key"]] = d
            f.write("".join(json.dumps(d) + "\n" for d in dicts))
            f.flush()
            bar.update(len(dicts))

        if pool is None:
            for task in todo:
                keep(_run_task(study, *task))
        else:
            from concurrent.futures import as_completed

            with pool:
                futures = [pool.submit(_run_task, study, *task) for task in todo]
                for fut in as_completed(futures):
                    keep(fut.result())
    ran = sum(len(m) for *_, m in todo)
    return [have[_key(t, v, a, s)] for t, v, a in tasks for s in study.sizes], ran


def _wins(records: list[Record]) -> list[dict]:
    """Per size: the winner, its time, the runner-up and how much slower it is."""
    rows = []
    by_size: dict[int, list[Record]] = {}
    for r in records:
        by_size.setdefault(r.size, []).append(r)
    for size in sorted(by_size):
        ordered = sorted(by_size[size], key=lambda r: r.time_s)
        best = ordered[0]
        second = ordered[1] if len(ordered) > 1 else None
        rows.append({
            "size": size, "best": best.algorithm, "time_s": best.time_s, "busbw": best.busbw,
            "runner_up": second.algorithm if second else "",
            "margin_pct": 100 * (second.time_s / best.time_s - 1) if second else 0.0,
        })
    return rows


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(filter(None, keep.split("-")))[:60]


def run_study(study: Study, out_dir: str | Path = "report", *, verbose: bool = True,
              jobs: int = 1, executor: str | None = None, resume: bool = False
              ) -> StudyReport:
    """Run every topology variation, algorithm and size of ``study``; write figures, records
    (``records.jsonl`` as they finish, then ``records.json``) and ``index.html`` under
    ``out_dir``; return what was written.

    ``jobs > 1`` runs the simulations on that many processes, ``executor="mpi"`` on an MPI
    job's workers (see the module docstring); ``resume`` keeps the records already in
    ``out_dir`` and runs only the missing ones. The records are the same every way.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = StudyReport(out, out / "index.html")
    tasks = [(t, v, algo) for t, spec in enumerate(study.topologies)
             for v in range(len(spec.variations())) for algo in study.algorithms]
    dicts, report.ran = _run_tasks(study, out, tasks, resume, jobs, executor, verbose)
    report.sim_seconds = time.perf_counter() - t0
    by_topology: dict[int, list[Record]] = {}
    for d in dicts:
        by_topology.setdefault(int(d["key"].split("/", 1)[0]), []).append(_record(d))
    sections = []
    for t_index, spec in enumerate(study.topologies):
        section = {"spec": spec, "figures": [], "wins": []}
        topo_records = by_topology.get(t_index, [])
        variations = spec.variations()
        for label, _ in variations:
            recs = [r for r in topo_records if r.extra["variation"] == label]
            section["wins"].append((label, recs[0].ranks if recs else 0, _wins(recs)))
        report.records.extend(topo_records)
        slug = f"{t_index}-{_slug(spec.name)}"
        multi = len(variations) > 1
        nranks = topo_records[0].ranks if topo_records else 0

        def name_of(r: Record, multi=multi) -> str:
            return f"{r.algorithm} [{r.extra['variation'].split('[', 1)[-1].rstrip(']')}]" \
                if multi else r.algorithm

        if spec.varied_whatifs:
            section["figures"].append(_whatif_figure(study, spec, topo_records,
                                                     out / f"{slug}-whatif"))
        else:
            section["figures"].append(plots.plot_size_sweep(
                topo_records, out / f"{slug}-sweep",
                f"{study.collective}: {spec.name} ({nranks} ranks, {study.model} model)",
                label=name_of))
        label, _, G, nranks, w = _variation(study, t_index, len(variations) - 1)
        if not any(k in WHATIF_KEYS for k in spec.params) and not spec.varied_whatifs:
            section["figures"].append(_best_map(study, G, nranks, label, out / f"{slug}-best"))
            section["figures"].extend(_detail_figures(study, G, nranks, label, out, slug))
        else:
            section["figures"].append(_wait_figure(study, G, nranks, label, w, out, slug))
        sections.append(section)
        report.wins.extend({"topology": lab, "ranks": n, **w}
                           for lab, n, ws in section["wins"] for w in ws)
    report.figures = [f for s in sections for f in s["figures"]]
    _write_whole(out / "records.json", json.dumps(
        {"study": study.title, "model": study.model,
         "records": [r.as_dict() for r in report.records], "wins": report.wins}, indent=1))
    report.seconds = time.perf_counter() - t0
    _write_whole(report.index, _html(study, sections, report.seconds))
    return report


#: How each what-if is put on a figure's x axis: (label, value -> number, log axis).
_WHATIF_AXES = {
    "late": ("lateness of the late rank (us)", lambda v: _seconds(v) * 1e6, False),
    "skew": ("arrival skew: sigma or mean (us)", lambda v: _seconds(v) * 1e6, False),
    "degrade": ("bandwidth factor of the degraded node/link", float, True),
    "slow_reduce": ("reduction slowdown factor at the slow rank", float, True),
    "late_rank": ("which rank is late", int, False),
}


def _seconds(v) -> float:
    from topologies.units import parse_time

    return parse_time(v) if isinstance(v, str) else float(v)


def _whatif_figure(study: Study, spec, records: list[Record], path: Path) -> Path:
    """Time against the first varied what-if that has a numeric axis, per algorithm (the
    others, e.g. skew seeds, are summarised as a band)."""
    key = next((k for k in _WHATIF_AXES if k in spec.varied_whatifs), None)
    conv = None
    if key is None:  # e.g. only fail_link varies: one point per variation
        values = {json.dumps(r.extra["whatif"], sort_keys=True) for r in records}
        index = {v: i for i, v in enumerate(sorted(values))}
        x_label, x_of, log = "variation", \
            lambda r: index[json.dumps(r.extra["whatif"], sort_keys=True)], False
    else:
        x_label, conv, log = _WHATIF_AXES[key]
        x_of = lambda r: conv(r.extra["whatif"][key])  # noqa: E731
    nranks = records[0].ranks if records else 0
    return plots.plot_whatif(records, x_of, x_label, path,
                             f"which {study.collective} tolerates it best: {spec.name} "
                             f"({nranks} ranks, {study.model} model)", x_log=log,
                             baseline="min" if key in (None, "late_rank")
                             else conv(spec.vary[key][0]))


def _wait_figure(study: Study, G, nranks: int, label: str, w, out: Path, slug: str) -> Path:
    """Where ranks wait: the first algorithm's per-rank timeline at about 4 MiB on the last
    variation, up to 32 ranks shown (rank 0 up, and every rank that arrives late)."""
    mid = min(study.sizes, key=lambda s: abs(np.log2(s) - 22))
    algo = study.algorithms[0]
    s = build(study.collective, algo, nranks, **_options_for(study, G, nranks).get(algo, {}))
    arrival = np.zeros(nranks) if w.arrival is None else np.asarray(w.arrival)
    res = simulate(s, G, mid, params=_model_params(study), timeline=True,
                   arrival=w.arrival, reduce_scale=w.reduce_scale or None)
    tl = res.timeline
    late = [int(r) for r in np.argsort(-arrival, kind="stable")[:8] if arrival[r] > 0]
    shown = sorted(set(late) | set(range(min(nranks, 32 - len(late)))))
    return plots.plot_rank_waits(
        tl.src, tl.dst, tl.start, tl.end, arrival, out / f"{slug}-waits-{algo}",
        f"where ranks wait: {algo} {study.collective} of {format_bytes(mid)} on {nranks} "
        f"ranks, {label} ({format_time(res.time_s)} from the first arrival)", ranks=shown)


def _map_ranks(study: Study, n_end: int) -> list[int]:
    if study.map_ranks:
        return [p for p in study.map_ranks if p <= n_end]
    ranks, p = [], n_end
    while p >= 2 and len(ranks) < 4:
        ranks.append(p)
        p //= 2
    return sorted(ranks)


def _best_map(study: Study, G, nranks: int, label: str, path: Path) -> Path:
    """Winner over (ranks x size) on the first ranks of ``G`` (the last variation's graph, whose
    compiled network the simulator has already cached)."""
    sizes = study.sizes[::2] if len(study.sizes) > 8 else study.sizes
    times: dict[tuple[int, int], dict[str, float]] = {}
    for p in _map_ranks(study, nranks):
        opts = _options_for(study, G, p)
        for algo in study.algorithms:
            for r in sweep(study.collective, [algo], p, sizes, G,
                           params=model_params(study.model), options=opts.get(algo)):
                times.setdefault((p, r.size), {})[algo] = r.time_s
    return plots.plot_best_map(times, path, f"fastest {study.collective}: {label}")


def _detail_figures(study: Study, G, nranks: int, label: str, out: Path, slug: str
                    ) -> list[Path]:
    """Link utilisation at the largest size (ring if studied, the usual hot-spotter, else the
    first algorithm) and a per-rank timeline of one mid-size run on up to 32 ranks."""
    figs = []
    big = study.sizes[-1]
    opts = _options_for(study, G, nranks)
    params = model_params(study.model)
    algo = "ring" if "ring" in study.algorithms else study.algorithms[0]
    s = build(study.collective, algo, nranks, **opts.get(algo, {}))
    res = simulate(s, G, big, params=params, timeline=False)
    if res.links is not None:
        figs.append(plots.plot_link_utilisation(
            G, res.links.as_dict(), out / f"{slug}-links-{algo}",
            f"link utilisation: {algo} {study.collective}, {format_bytes(big)}, {label}, "
            f"{format_time(res.time_s)}"))
    mid = min(study.sizes, key=lambda s: abs(np.log2(s) - 22))  # ~4 MiB
    algo = "hierarchical" if "hierarchical" in study.algorithms else study.algorithms[0]
    shown = min(nranks, 32)
    s = build(study.collective, algo, shown, **_options_for(study, G, shown).get(algo, {}))
    res = simulate(s, G, mid, params=params, timeline=True)
    tl = res.timeline
    if tl is not None and len(tl):
        figs.append(plots.plot_timeline(
            tl.src, tl.start, tl.end, tl.reduce, out / f"{slug}-timeline-{algo}",
            f"per-rank timeline: {algo} {study.collective} of {format_bytes(mid)} on "
            f"{shown} ranks, {label} ({format_time(res.time_s)})", step=tl.step))
    return figs


#: Who-wins tables per topology in index.html (a what-if sweep has hundreds of variations).
_TABLES = 8


def _html(study: Study, sections: list[dict], seconds: float) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(study.title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;"
        "color:#222}table{border-collapse:collapse;font-size:13px;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{background:#f3f3f3}td.l{text-align:left}img{max-width:100%;margin:1em 0;"
        "border:1px solid #eee}</style></head><body>",
        f"<h1>{esc(study.title)}</h1>",
        f"<p>{esc(study.collective)} by {esc(', '.join(study.algorithms))}; "
        f"{len(study.sizes)} sizes from {format_bytes(study.sizes[0])} to "
        f"{format_bytes(study.sizes[-1])}; {esc(study.model)} model; simulated in "
        f"{seconds:.1f} s. Bus bandwidth follows nccl-tests (2(p-1)/p for all-reduce). "
        f"Figures are PNG with an SVG of the same name beside them.</p>",
    ]
    for sec in sections:
        spec = sec["spec"]
        parts.append(f"<h2>{esc(spec.name)}</h2>")
        shown = sec["wins"] if len(sec["wins"]) <= _TABLES else \
            sec["wins"][: _TABLES - 1] + sec["wins"][-1:]
        if len(shown) < len(sec["wins"]):
            parts.append(f"<p>{len(sec['wins'])} variations: the first {_TABLES - 1} and the "
                         f"last are tabled here; records.json holds every one.</p>")
        for label, nranks, wins in shown:
            parts.append(f"<h3>Who wins: {esc(label)}, {nranks} ranks</h3><table><tr>"
                         "<th>size</th><th>fastest</th><th>time</th><th>busbw (GB/s)</th>"
                         "<th>runner-up</th><th>runner-up slower by</th></tr>")
            for w in wins:
                parts.append(
                    f"<tr><td>{format_bytes(w['size'])}</td><td class=l>{esc(w['best'])}</td>"
                    f"<td>{format_time(w['time_s'])}</td><td>{w['busbw'] / 1e9:.2f}</td>"
                    f"<td class=l>{esc(w['runner_up'])}</td><td>{w['margin_pct']:.1f}%</td>"
                    "</tr>")
            parts.append("</table>")
        for fig in sec["figures"]:
            parts.append(f"<a href='{esc(fig.with_suffix('.svg').name)}'>"
                         f"<img src='{esc(fig.name)}' alt='{esc(fig.stem)}'></a>")
    parts.append("</body></html>")
    return "\n".join(parts)


def summarise_wins(wins: list[dict]) -> list[str]:
    """One line per topology: the size ranges each algorithm wins, e.g.
    ``fat-tree (128 ranks): rabenseifner 1K-16K, ring 32K-1G``."""
    lines, by_topo = [], {}
    for w in wins:
        by_topo.setdefault((w["topology"], w["ranks"]), []).append(w)
    for (topo, ranks), ws in by_topo.items():
        runs: list[list] = []
        for w in sorted(ws, key=lambda w: w["size"]):
            if runs and runs[-1][0] == w["best"]:
                runs[-1][2] = w["size"]
            else:
                runs.append([w["best"], w["size"], w["size"]])
        spans = ", ".join(f"{a} {format_bytes(lo)}" + (f"-{format_bytes(hi)}" if hi != lo else "")
                          for a, lo, hi in runs)
        lines.append(f"{topo} ({ranks} ranks): {spans}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m sim`` (embedded study) and ``python -m sim report STUDY.toml``."""
    parser = argparse.ArgumentParser(
        prog="python -m sim [report STUDY.toml]",
        description="Run a what-if study and write a report (PNG/SVG figures, index.html).")
    parser.add_argument("study", nargs="?", help="a study file (TOML); default: the embedded "
                                                 "study")
    parser.add_argument("--out", default="report", help="report directory (default: report)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer sizes (every 16x instead of 2x): for tests and a first look")
    parser.add_argument("--sizes", help="override the study's sizes, e.g. 1K:1G:4")
    parser.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                        help="run the simulations on N local processes (default 1)")
    parser.add_argument("--executor", choices=("process", "mpi"), default=None,
                        help="mpi: on the workers of `mpiexec -n N python -m mpi4py.futures "
                             "-m sim report STUDY --executor mpi`")
    parser.add_argument("--resume", action="store_true",
                        help="keep the records already in --out/records.jsonl and run only "
                             "the missing simulations")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="progress bar on stderr (default on)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    try:
        study = load_study(args.study) if args.study else default_study(args.quick)
        if args.sizes:
            study = replace(study, sizes=tuple(parse_sizes(args.sizes, "--sizes")))
        elif args.quick and args.study:
            study = replace(study, sizes=study.sizes[::4] or study.sizes)
        report = run_study(study, args.out, verbose=args.progress, jobs=args.jobs,
                           executor=args.executor, resume=args.resume)
    except (StudyError, ValueError) as e:  # a bad value met mid-run: one line too
        print(f"python -m sim: {e}", file=sys.stderr)
        return 2
    lines = summarise_wins(report.wins)
    for line in lines[:24]:
        print(line)
    if len(lines) > 24:
        print(f"... and {len(lines) - 24} more variations (records.json, index.html)")
    print(f"report: {report.index} ({len(report.figures)} figures, "
          f"{len(report.records)} simulated results, {report.ran} run now in "
          f"{report.sim_seconds:.1f} s, {report.seconds:.1f} s in all)")
    return 0

