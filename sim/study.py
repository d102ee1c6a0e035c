"""What-if studies: run a :class:`~sim.studyfile.Study` and write a report directory.

``python -m sim`` (no arguments) runs the embedded study below; ``python -m sim report FILE``
runs a study file. The report holds PNG and SVG figures and an ``index.html`` that embeds them
with a table of which algorithm wins where, and by how much.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from collectives.registry import build
from sim import plots
from sim.api import sweep
from sim.engine import simulate
from sim.models import model_params
from sim.studyfile import Study, StudyError, load_study, parse_sizes
from sim.table import Record
from topologies import groups
from topologies.units import format_bytes, format_time

__all__ = ["DEFAULT_STUDY", "StudyReport", "default_study", "main", "run_study", "summarise_wins"]

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


def _simulate_all(study: Study, G, nranks: int, sizes, label: str,
                  progress: Callable[[], None]) -> list[Record]:
    opts = _options_for(study, G, nranks)
    params = model_params(study.model)
    out = []
    for algo in study.algorithms:
        recs = sweep(study.collective, [algo], nranks, sizes, G, params=params,
                     options=opts.get(algo))
        for r in recs:
            r.extra["variation"] = label
        out.extend(recs)
        progress()
    return out


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


def run_study(study: Study, out_dir: str | Path = "report", *, verbose: bool = True
              ) -> StudyReport:
    """Run every topology variation, algorithm and size of ``study``; write figures, records
    (``records.json``) and ``index.html`` under ``out_dir``; return what was written."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = StudyReport(out, out / "index.html")
    sections = []
    total = sum(len(t.variations()) for t in study.topologies) * len(study.algorithms)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if verbose:
            print(f"\r  simulating {done[0]}/{total} sweeps", end="", file=sys.stderr,
                  flush=True)

    for t_index, spec in enumerate(study.topologies):
        section = {"spec": spec, "figures": [], "wins": []}
        topo_records: list[Record] = []
        variations = spec.variations()
        graphs = []
        for label, params in variations:
            G = spec.build(params)
            nranks = spec.ranks or sum(1 for _, k in G.nodes(data="kind") if k == "endpoint")
            graphs.append((label, G, nranks))
            recs = _simulate_all(study, G, nranks, study.sizes, label, tick)
            topo_records.extend(recs)
            section["wins"].append((label, nranks, _wins(recs)))
        report.records.extend(topo_records)
        slug = f"{t_index}-{_slug(spec.name)}"
        multi = len(variations) > 1

        def name_of(r: Record, multi=multi) -> str:
            return f"{r.algorithm} [{r.extra['variation'].split('[', 1)[-1].rstrip(']')}]" \
                if multi else r.algorithm

        section["figures"].append(plots.plot_size_sweep(
            topo_records, out / f"{slug}-sweep",
            f"{study.collective}: {spec.name} ({graphs[0][2]} ranks, {study.model} model)",
            label=name_of))
        label, G, nranks = graphs[-1]
        section["figures"].append(_best_map(study, G, nranks, label, out / f"{slug}-best"))
        section["figures"].extend(_detail_figures(study, G, nranks, label, out, slug))
        sections.append(section)
        report.wins.extend({"topology": lab, "ranks": n, **w}
                           for lab, n, ws in section["wins"] for w in ws)
    if verbose:
        print(file=sys.stderr)
    report.figures = [f for s in sections for f in s["figures"]]
    (out / "records.json").write_text(json.dumps(
        {"study": study.title, "model": study.model,
         "records": [r.as_dict() for r in report.records], "wins": report.wins}, indent=1))
    report.seconds = time.perf_counter() - t0
    report.index.write_text(_html(study, sections, report.seconds))
    return report


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
        for label, nranks, wins in sec["wins"]:
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
    args = parser.parse_args(argv)
    try:
        study = load_study(args.study) if args.study else default_study(args.quick)
        if args.sizes:
            study = replace(study, sizes=tuple(parse_sizes(args.sizes, "--sizes")))
        elif args.quick and args.study:
            study = replace(study, sizes=study.sizes[::4] or study.sizes)
        report = run_study(study, args.out)
    except StudyError as e:
        print(f"python -m sim: {e}", file=sys.stderr)
        return 2
    for line in summarise_wins(report.wins):
        print(line)
    print(f"report: {report.index} ({len(report.figures)} figures, "
          f"{len(report.records)} simulated results, {report.seconds:.1f} s)")
    return 0

