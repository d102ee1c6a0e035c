"""Figures for cost reports (matplotlib, headless).

Each function draws one figure from plain data (records, arrays, a graph), saves it as PNG and
SVG next to each other and returns the PNG path. Sizes span decades, so size axes are log2 with
human tick labels; times are log-scaled; every axis says its unit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

__all__ = [
    "human_bytes",
    "plot_best_map",
    "plot_link_utilisation",
    "plot_predicted_vs_measured",
    "plot_rank_waits",
    "plot_size_sweep",
    "plot_timeline",
    "plot_whatif",
]

_STYLE = {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
          "axes.spines.right": False, "font.size": 9}


_KNOWN = ("ring", "rabenseifner", "double-binary-tree", "hierarchical", "recursive-doubling",
          "binomial", "recursive-halving", "pairwise", "bruck", "native")


def _colour(name: str):
    """One colour per algorithm across every figure (variations of it share the colour)."""
    base = name.split(" ")[0].split("@")[0]
    palette = plt.get_cmap("tab10").colors
    if base in _KNOWN:
        return palette[_KNOWN.index(base) % 10]
    return palette[(sum(map(ord, base)) + 3) % 10]


def human_bytes(n: float) -> str:
    """Compact power-of-two size label: 1K, 64M, 1G (as nccl-tests users write them)."""
    for unit, scale in (("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if n >= scale:
            v = n / scale
            return f"{v:.0f}{unit}" if v == int(v) else f"{v:.1f}{unit}"
    return f"{n:.0f}B" if n == int(n) else f"{n:.1f}B"


def _size_axis(ax) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: human_bytes(v)))


def _time_label(seconds: np.ndarray) -> tuple[float, str]:
    top = float(np.nanmax(seconds)) if len(seconds) else 1.0
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if top >= scale * 10:
            return scale, unit
    return 1e-6, "us"


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path.with_suffix(".png"), bbox_inches="tight")
    fig.savefig(path.with_suffix(".svg"), bbox_inches="tight")
    plt.close(fig)
    return path.with_suffix(".png")


def _series(records: Iterable, key) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in records:
        out.setdefault(key(r), []).append(r)
    for rs in out.values():
        rs.sort(key=lambda r: r.size)
    return out


def plot_size_sweep(records: Sequence, path: str | Path, title: str,
                    label=lambda r: r.algorithm) -> Path:
    """Time and bus bandwidth against message size, one line per ``label(record)``."""
    with plt.rc_context(_STYLE):
        fig, (ax_t, ax_b) = plt.subplots(1, 2, figsize=(11, 4.2))
        series = _series(records, label)
        scale, unit = _time_label(np.array([r.time_s for r in records]))
        markers = "os^vD<>ph*"
        styles = ("-", "--", ":", "-.")
        seen: dict[str, int] = {}
        for i, (name, rs) in enumerate(sorted(series.items())):
            x = [r.size for r in rs]
            m = markers[i % len(markers)]
            base = name.split(" ")[0]
            ls = styles[seen.setdefault(base, 0) % len(styles)]
            seen[base] += 1
            kw = dict(marker=m, ms=3, lw=1.4, ls=ls, color=_colour(name), label=name)
            ax_t.plot(x, [r.time_s / scale for r in rs], **kw)
            ax_b.plot(x, [r.busbw / 1e9 for r in rs], **kw)
        for ax in (ax_t, ax_b):
            _size_axis(ax)
            ax.set_xlabel("message size (bytes, full vector)")
        ax_t.set_yscale("log")
        ax_t.set_ylabel(f"time ({unit})")
        ax_t.set_title("time (lower is better)")
        ax_b.set_ylabel("bus bandwidth (GB/s)")
        ax_b.set_title("busbw, nccl-tests definition (higher is better)")
        ax_b.set_ylim(bottom=0)
        handles, labels = ax_t.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False,
                   bbox_to_anchor=(0.5, -0.08 - 0.04 * ((len(labels) - 1) // 4)))
        fig.suptitle(title)
        fig.tight_layout()
        return _save(fig, path)


def plot_best_map(times: Mapping[tuple[int, int], Mapping[str, float]], path: str | Path,
                  title: str, boundaries: Mapping[int, Sequence[int]] | None = None) -> Path:
    """Winner over (ranks x size), coloured by algorithm, annotated with the margin.

    ``times[(ranks, size)][algorithm]`` is a time in seconds; the margin printed in each cell is
    how much slower the runner-up is, in percent. ``boundaries[ranks]`` lists sizes at which an
    exported rule starts (a tuning table's band edges): a black bar is drawn before each.
    """
    ranks = sorted({k[0] for k in times})
    sizes = sorted({k[1] for k in times})
    algos = sorted({a for v in times.values() for a in v})
    grid = np.full((len(ranks), len(sizes)), -1)
    margin = np.full(grid.shape, np.nan)
    for (p, s), by_algo in times.items():
        ordered = sorted(by_algo.items(), key=lambda kv: kv[1])
        i, j = ranks.index(p), sizes.index(s)
        grid[i, j] = algos.index(ordered[0][0])
        if len(ordered) > 1 and ordered[0][1] > 0:
            margin[i, j] = 100.0 * (ordered[1][1] / ordered[0][1] - 1.0)
    cmap = ListedColormap([_colour(a) for a in algos])
    with plt.rc_context({**_STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(sizes) + 2), max(2.5, 0.5 * len(ranks)
                                                                          + 1.5)))
        masked = np.ma.masked_less(grid, 0)
        ax.imshow(masked, cmap=cmap, vmin=-0.5, vmax=len(algos) - 0.5, aspect="auto",
                  origin="lower")
        for i in range(len(ranks)):
            for j in range(len(sizes)):
                if not np.isnan(margin[i, j]):
                    txt = f"{margin[i, j]:.0f}%" if margin[i, j] < 999 else ">999%"
                    ax.text(j, i, txt, ha="center", va="center", fontsize=7, color="white")
        for p, starts in (boundaries or {}).items():
            for s in starts:
                if p in ranks and s in sizes:
                    i, j = ranks.index(p), sizes.index(s)
                    ax.plot([j - 0.5, j - 0.5], [i - 0.5, i + 0.5], color="black", lw=2.5)
        ax.set_xticks(range(len(sizes)), [human_bytes(s) for s in sizes], rotation=45)
        ax.set_yticks(range(len(ranks)), [str(p) for p in ranks])
        ax.set_xlabel("message size (bytes)")
        ax.set_ylabel("ranks")
        handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(k)) for k in range(len(algos))]
        ax.legend(handles, algos, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False,
                  title="fastest")
        ax.set_title(f"{title}\n(cell text: how much slower the runner-up is)")
        fig.tight_layout()
        return _save(fig, path)


def _layered_layout(G: nx.Graph) -> dict:
    """Endpoints at the bottom, switches layered above by hop distance from the endpoints."""
    endpoints = [n for n, k in G.nodes(data="kind") if k != "switch"]
    level = {n: 0 for n in endpoints}
    frontier = list(endpoints)
    while frontier:
        nxt = []
        for u in frontier:
            for v in G.neighbors(u):
                if v not in level:
                    level[v] = level[u] + 1
                    nxt.append(v)
        frontier = nxt
    for n in G.nodes:
        level.setdefault(n, 0)
    # Spread every layer across the full width, in node order, so a fat-tree looks like one.
    layers: dict[int, list] = {}
    for n in sorted(G.nodes, key=str):
        layers.setdefault(level[n], []).append(n)
    pos = {}
    for lev, members in layers.items():
        members.sort(key=lambda n: (isinstance(n, str), n) if not isinstance(n, tuple) else
                     (True, str(n)))
        for i, n in enumerate(members):
            pos[n] = np.array([(i + 0.5) / len(members), float(lev)])
    return pos


def plot_link_utilisation(G: nx.Graph, utilisation: Mapping[tuple, float], path: str | Path,
                          title: str) -> Path:
    """The topology with every link coloured and thickened by its utilisation (0..1).

    ``utilisation[(u, v)]`` is the busier direction's busy time over the collective's time.
    Structured networks (with switches) are drawn in layers, endpoints at the bottom.
    """
    G = G.copy()
    has_switch = any(k == "switch" for _, k in G.nodes(data="kind"))
    pos = _layered_layout(G) if has_switch else nx.circular_layout(G)
    edges = list(G.edges())
    util = np.array([max(utilisation.get((u, v), 0.0), utilisation.get((v, u), 0.0))
                     for u, v in edges])
    with plt.rc_context({**_STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(10, 5.5))
        cmap = plt.get_cmap("viridis")
        order = np.argsort(util)  # busiest drawn last, on top
        nx.draw_networkx_edges(G, pos, ax=ax, edgelist=[edges[i] for i in order],
                               edge_color=[cmap(util[i]) for i in order],
                               width=[0.4 + 3.6 * util[i] for i in order])
        ep = [n for n, k in G.nodes(data="kind") if k != "switch"]
        sw = [n for n, k in G.nodes(data="kind") if k == "switch"]
        small = len(G) > 80
        nx.draw_networkx_nodes(G, pos, nodelist=ep, node_size=10 if small else 40,
                               node_color="#444444", ax=ax)
        nx.draw_networkx_nodes(G, pos, nodelist=sw, node_size=20 if small else 90,
                               node_color="#d62728", node_shape="s", ax=ax)
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 1))
        fig.colorbar(sm, ax=ax, label="link utilisation (busy time / collective time)",
                     shrink=0.8)
        ax.set_title(f"{title}\n(grey dots: ranks' endpoints, red squares: switches)")
        ax.axis("off")
        fig.tight_layout()
        return _save(fig, path)


def plot_timeline(rank: np.ndarray, start: np.ndarray, end: np.ndarray, reduce: np.ndarray,
                  path: str | Path, title: str, step: np.ndarray | None = None) -> Path:
    """Per-rank Gantt chart of one schedule's transfers (one bar per transfer, on the sender).

    Bars are blue for copies and orange for reductions; alternate steps alternate shade so the
    asynchronous progress of ranks through steps is visible.
    """
    rank, start, end = np.asarray(rank), np.asarray(start), np.asarray(end)
    reduce = np.asarray(reduce, dtype=bool)
    scale, unit = _time_label(end if end.size else np.array([1.0]))
    nranks = int(rank.max()) + 1 if rank.size else 1
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(10, max(2.5, 0.28 * nranks + 1.2)))
        shade = np.zeros(rank.shape) if step is None else (np.asarray(step) % 2) * 0.35
        colours = np.where(reduce[:, None], np.array([[1.0, 0.5, 0.05]]),
                           np.array([[0.12, 0.47, 0.71]]))
        colours = colours + (1 - colours) * shade[:, None]
        ax.barh(rank, (end - start) / scale, left=start / scale, height=0.7, color=colours,
                edgecolor="none")
        ax.set_yticks(range(nranks))
        ax.invert_yaxis()
        ax.set_ylabel("rank (sender)")
        ax.set_xlabel(f"time ({unit})")
        handles = [plt.Rectangle((0, 0), 1, 1, color=(0.12, 0.47, 0.71)),
                   plt.Rectangle((0, 0), 1, 1, color=(1.0, 0.5, 0.05))]
        ax.legend(handles, ["copy", "reduce"], loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  frameon=False)
        ax.set_title(title)
        fig.tight_layout()
        return _save(fig, path)


def plot_predicted_vs_measured(sizes: Sequence[int], measured: Mapping[str, Sequence[float]],
                               predicted: Mapping[str, Sequence[float]], path: str | Path,
                               title: str) -> Path:
    """Measured and predicted time per algorithm (top) and the prediction error (bottom).

    Error is ``(predicted - measured) / measured`` in percent, per size.
    """
    sizes = np.asarray(sizes, dtype=float)
    with plt.rc_context(_STYLE):
        fig, (ax, ax_e) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True,
                                       gridspec_kw={"height_ratios": [2, 1]})
        every = np.concatenate([np.asarray(v, dtype=float) for v in measured.values()])
        scale, unit = _time_label(every)
        for name in sorted(measured):
            colour = _colour(name)
            m = np.asarray(measured[name], dtype=float)
            ax.plot(sizes, m / scale, "o-", color=colour, ms=3, label=f"{name} measured")
            if name in predicted:
                pr = np.asarray(predicted[name], dtype=float)
                ax.plot(sizes, pr / scale, "--", color=colour, label=f"{name} predicted")
                ax_e.plot(sizes, 100 * (pr - m) / m, "o-", color=colour, ms=3, label=name)
        _size_axis(ax_e)
        ax.set_yscale("log")
        ax.set_ylabel(f"time ({unit})")
        ax.legend(frameon=False, fontsize=7, ncol=2)
        ax.set_title(title)
        ax_e.axhline(0, color="black", lw=0.8)
        ax_e.set_ylabel("prediction error (%)")
        ax_e.set_xlabel("message size (bytes)")
        fig.tight_layout()
        return _save(fig, path)


def plot_whatif(records: Sequence, x_of, x_label: str, path: str | Path, title: str,
                sizes: Sequence[int] | None = None, x_log: bool = False,
                baseline: float | str = "first") -> Path:
    """Time against a what-if (lateness, skew, a degradation factor, which rank is late), one
    line per algorithm, one column per message size (default: smallest, middle, largest).

    ``x_of(record)`` is the record's what-if value. Records that share (algorithm, size, x)
    but differ otherwise (other seeds of a random skew, other late ranks) are summarised: the
    line is their mean, the band their min..max. Top row: time from the first arrival;
    bottom row: time added over each algorithm's own result at ``baseline``: an x value
    (the healthy case: lateness 0, bandwidth factor 1), ``"first"`` (the smallest x) or
    ``"min"`` (its best x: e.g. the late rank that hurts least); lower tolerates the what-if
    better.
    """
    all_sizes = sorted({r.size for r in records})
    if sizes is None:
        sizes = sorted({all_sizes[0], all_sizes[len(all_sizes) // 2], all_sizes[-1]})
    groups: dict[tuple[str, int], dict[float, list[float]]] = {}
    for r in records:
        if r.size in sizes:
            groups.setdefault((r.algorithm, r.size), {}).setdefault(float(x_of(r)),
                                                                    []).append(r.time_s)
    every = np.array([t for g in groups.values() for ts in g.values() for t in ts] or [1.0])
    scale, unit = _time_label(every)
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(2, len(sizes), figsize=(4.2 * len(sizes) + 1, 6.4),
                                 squeeze=False, sharex=True)
        for j, size in enumerate(sizes):
            ax_t, ax_d = axes[0, j], axes[1, j]
            for (algo, sz), by_x in sorted(groups.items()):
                if sz != size:
                    continue
                xs = sorted(by_x)
                mean = np.array([np.mean(by_x[x]) for x in xs])
                lo = np.array([np.min(by_x[x]) for x in xs])
                hi = np.array([np.max(by_x[x]) for x in xs])
                kw = dict(color=_colour(algo), lw=1.5, marker="o", ms=3)
                if baseline == "min":
                    base = mean.min()
                elif baseline != "first" and float(baseline) in by_x:
                    base = mean[xs.index(float(baseline))]
                else:
                    base = mean[0]
                ax_t.plot(xs, mean / scale, label=algo, **kw)
                ax_d.plot(xs, (mean - base) / scale, **kw)
                if (hi > lo).any():
                    ax_t.fill_between(xs, lo / scale, hi / scale, color=_colour(algo),
                                      alpha=0.15, lw=0)
                    ax_d.fill_between(xs, (lo - base) / scale, (hi - base) / scale,
                                      color=_colour(algo), alpha=0.15, lw=0)
            ax_t.set_title(f"{human_bytes(size)} per rank")
            ax_t.set_ylabel(f"time from first arrival ({unit})")
            against = {"first": "the first value", "min": "the best value"}.get(str(baseline))
            against = against or f"{float(baseline):g}"
            ax_d.set_ylabel(f"added time ({unit}), vs {against}")
            ax_d.set_xlabel(x_label)
            ax_t.set_ylim(bottom=0)
            if x_log:
                ax_d.set_xscale("log")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5),
                   frameon=False, bbox_to_anchor=(0.5, -0.04))
        fig.suptitle(title + "\n(line: mean, band: min..max over the other varied values; "
                     "bottom: lower tolerates it better)")
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        return _save(fig, path)


def _union(starts: np.ndarray, ends: np.ndarray) -> list[tuple[float, float]]:
    """The union of intervals, as sorted disjoint (start, end) pairs."""
    out: list[list[float]] = []
    for a, b in sorted(zip(starts.tolist(), ends.tolist(), strict=True)):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def plot_rank_waits(src: np.ndarray, dst: np.ndarray, start: np.ndarray, end: np.ndarray,
                    arrival: np.ndarray, path: str | Path, title: str,
                    ranks: Sequence[int] | None = None, bins: int = 1200) -> Path:
    """Where each rank waits: per rank (row), grey before it arrives, blue while it sends or
    receives, red while it has arrived but waits on others mid-collective, light green once it
    is done and the collective still runs. Rows: ``ranks`` (default every rank).

    Times are from the first arrival. The rows are an image of ``bins`` time bins, each
    coloured by the share of its time in each state (a 512-rank ring has thousands of
    intervals per rank: drawn one by one they would swamp the SVG). Cost: ``O(bins x
    intervals)`` per shown rank.
    """
    src, dst = np.asarray(src), np.asarray(dst)
    start, end = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    arrival = np.asarray(arrival, dtype=float)
    t0 = float(arrival.min()) if arrival.size else 0.0
    finish_all = float(end.max()) if end.size else float(arrival.max())
    shown = list(range(len(arrival))) if ranks is None else list(ranks)
    span = max(finish_all - t0, 1e-12)
    scale, unit = _time_label(np.array([span]))
    edges = t0 + span * np.arange(bins + 1) / bins
    colours = {"not arrived": (0.73, 0.73, 0.73), "busy": (0.12, 0.47, 0.71),
               "waiting": (0.84, 0.15, 0.16), "done": (0.78, 0.91, 0.75)}
    palette = np.array(list(colours.values()))

    def covered(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Time of [a_i, b_i) (disjoint intervals) inside each bin."""
        if not len(a):
            return np.zeros(bins)
        cum = np.clip(edges[:, None] - a[None, :], 0.0, (b - a)[None, :]).sum(axis=1)
        return np.diff(cum)

    image = np.ones((len(shown), bins, 3))
    width = span / bins
    for row, r in enumerate(shown):
        sel = (src == r) | (dst == r)
        busy = np.array(_union(start[sel], end[sel])).reshape(-1, 2)
        mine_end = busy[-1, 1] if len(busy) else arrival[r]
        f_busy = covered(busy[:, 0], busy[:, 1])
        f_before = covered(np.array([t0]), np.array([arrival[r]]))
        f_done = covered(np.array([mine_end]), np.array([finish_all]))
        f_wait = np.clip(width - f_busy - f_before - f_done, 0.0, None)
        share = np.stack([f_before, f_busy, f_wait, f_done], axis=1)
        image[row] = share @ palette / np.maximum(share.sum(axis=1, keepdims=True), 1e-300)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(10, max(2.5, 0.25 * len(shown) + 1.4)))
        ax.imshow(image, aspect="auto", interpolation="nearest",
                  extent=(0.0, span / scale, len(shown) - 0.5, -0.5))
        ax.set_yticks(range(len(shown)), [str(r) for r in shown])
        ax.grid(False)
        ax.set_ylabel("rank")
        ax.set_xlabel(f"time from the first arrival ({unit})")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
        ax.legend(handles, list(colours), loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  frameon=False)
        ax.set_title(title)
        fig.tight_layout()
        return _save(fig, path)
