"""Figures, study files and the default study (reduced) as a reader would get them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import matplotlib.image as mpimg
import networkx as nx
import numpy as np
import pytest

import topologies
from collectives import build
from sim import Hockney, plots, simulate, sweep
from sim.study import default_study, run_study
from sim.studyfile import StudyError, dump_study, load_study, parse_study

ROOT = Path(__file__).resolve().parents[1]


def _assert_real_image(png: Path, svg: bool = True) -> None:
    """A decodable PNG of reasonable size with real content (not one flat colour)."""
    assert png.exists() and png.stat().st_size > 5_000
    img = mpimg.imread(png)
    assert img.shape[0] > 200 and img.shape[1] > 300
    assert img[..., :3].std() > 0.05
    # A good share of the pixels are not background.
    assert (img[..., :3].mean(axis=2) < 0.9).mean() > 0.01
    if svg:
        text = png.with_suffix(".svg").read_text()
        assert text.lstrip().startswith("<?xml") and "<svg" in text


def test_size_sweep_figure(tmp_path):
    recs = sweep("allreduce", ["ring", "rabenseifner", "recursive-doubling"], 8,
                 [2**k for k in range(10, 25, 2)], params=Hockney(2e-6, 1e-9, 2.5e-10))
    _assert_real_image(plots.plot_size_sweep(recs, tmp_path / "sweep", "all-reduce, 8 ranks"))


def test_best_map_figure(tmp_path):
    times = {}
    for p in (4, 8, 16):
        for r in sweep("allreduce", ["ring", "recursive-doubling"], p, [1024, 2**20, 2**24],
                       params=Hockney(2e-6, 1e-9)):
            times.setdefault((p, r.size), {})[r.algorithm] = r.time_s
    png = plots.plot_best_map(times, tmp_path / "best", "best all-reduce")
    _assert_real_image(png)
    # Small messages go to recursive doubling, large ones to ring: both colours appear.
    assert {min(v, key=v.get) for v in times.values()} == {"ring", "recursive-doubling"}


def test_link_utilisation_figure(tmp_path):
    G = topologies.fat_tree(4, oversubscription=2)
    res = simulate(build("allreduce", "ring", 16), G, 1 << 24, "contention")
    util = res.links.as_dict()
    assert max(util.values()) > 0.9  # the oversubscribed uplinks are saturated
    _assert_real_image(plots.plot_link_utilisation(G, util, tmp_path / "links", "ring"))


def test_timeline_figure(tmp_path):
    res = simulate(build("allreduce", "double-binary-tree", 8), topologies.switch(8), 1 << 20,
                   "contention", timeline=True)
    tl = res.timeline
    assert len(tl) == res.ntransfers
    _assert_real_image(plots.plot_timeline(tl.src, tl.start, tl.end, tl.reduce,
                                           tmp_path / "tl", "dbt", step=tl.step))


def test_predicted_vs_measured_figure(tmp_path):
    sizes = [2**k for k in range(3, 24, 3)]
    measured = {"ring": [3e-6 + s * 1.1e-9 for s in sizes]}
    predicted = {"ring": [2e-6 + s * 1e-9 for s in sizes]}
    _assert_real_image(plots.plot_predicted_vs_measured(sizes, measured, predicted,
                                                        tmp_path / "pm", "pm"))


def test_example_study_round_trips():
    study = load_study(ROOT / "examples" / "inter_node_bandwidth.toml")
    assert parse_study(tomllib.loads(dump_study(study))) == study
    assert [len(t.variations()) for t in study.topologies] == [3, 3]


@pytest.mark.parametrize(("text", "message"), [
    ("collective = 'allreduce'\n", "topology: declare at least one"),
    ("algorithms = ['ring', 'magic']\n[[topology]]\nkind = 'ring'\nn = 4\n",
     "algorithms: unknown algorithm 'magic' for allreduce; known: ring"),
    ("[[topology]]\nkind = 'mesh'\n", "topology\\[0\\].kind: got 'mesh'; use one of"),
    ("[[topology]]\nkind = 'fat-tree'\nk = 3\n", "k must be an even integer"),
    ("[[topology]]\nkind = 'fat-tree'\nk = 4\nradix = 3\n", "takes no parameter radix"),
    ("[[topology]]\nkind = 'ring'\nn = 4\nbandwidth = 'fast'\n", "cannot parse bandwidth"),
    ("[[topology]]\nkind = 'ring'\nn = 4\nvary.bandwidth = '1GB/s'\n",
     "vary.bandwidth: expected a non-empty list"),
    ("sizes = '1K:xx'\n[[topology]]\nkind = 'ring'\nn = 4\n", "sizes: cannot use '1K:xx'"),
    ("model = 'quantum'\n[[topology]]\nkind = 'ring'\nn = 4\n", "model: got 'quantum'"),
    ("colour = 1\n[[topology]]\nkind = 'ring'\nn = 4\n", "unknown key\\(s\\) colour"),
    ("[[topology]]\nkind = 'ring'\nn = 4\nranks = 9\n", "9 ranks but ring has 4 endpoints"),
    ("this is = not toml", "not valid TOML"),
])
def test_bad_study_files_name_the_key(tmp_path, text, message):
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(StudyError, match=message):
        load_study(path)


def test_small_study_writes_every_figure_and_the_index(tmp_path):
    study = parse_study({
        "algorithms": ["ring", "rabenseifner", "hierarchical"], "sizes": "1K:16M:16",
        "topology": [{"kind": "gpu-cluster", "nodes": 2, "gpus_per_node": 4,
                      "vary": {"bandwidth": ["25GB/s", "50GB/s"]}}]})
    report = run_study(study, tmp_path, verbose=False)
    kinds = sorted(p.stem.split("-", 1)[1].split("-")[-2 if "links" in p.stem or "timeline" in
                                                       p.stem else -1] for p in report.figures)
    assert len(report.figures) == 4, kinds
    for fig in report.figures:
        _assert_real_image(fig)
    page = report.index.read_text()
    assert page.count("<img") == 4 and "Who wins" in page and "runner-up" in page
    assert (tmp_path / "records.json").exists()
    # A schedule that keeps the big messages inside a node must win the large sizes on a
    # cluster whose inter-node links are slow: hierarchical, or Rabenseifner in MPICH's
    # nearest-first order (its n/2 and n/4 steps stay inside the 4-GPU node), never the ring.
    big = [w for w in report.wins if w["size"] == max(study.sizes)]
    assert all(w["best"] in ("hierarchical", "rabenseifner") for w in big), big


def test_default_study_runs_reduced_from_the_command_line(tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "sim", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert f"report: {out / 'index.html'}" in proc.stdout
    assert len(list(out.glob("*.png"))) == 8 and len(list(out.glob("*.svg"))) == 8
    assert "fat-tree" in proc.stdout and "ranks)" in proc.stdout


def test_report_command_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("algorithms = ['warp']\n[[topology]]\nkind = 'ring'\nn = 4\n")
    proc = subprocess.run([sys.executable, "-m", "sim", "report", str(bad)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert "unknown algorithm 'warp'" in proc.stderr and "Traceback" not in proc.stderr


def test_default_study_matches_the_issue():
    study = default_study()
    assert study.sizes[0] == 1024 and study.sizes[-1] == 2**30
    assert set(study.algorithms) == {"ring", "rabenseifner", "double-binary-tree",
                                     "hierarchical"}
    kinds = {t.kind for t in study.topologies}
    assert kinds == {"gpu-cluster", "fat-tree"}
    fat = next(t for t in study.topologies if t.kind == "fat-tree")
    assert fat.vary == {"oversubscription": [1, 2]}
    assert nx.number_of_nodes(fat.build()) == 128 + 80
    assert np.isclose(default_study(quick=True).sizes[1] / default_study(quick=True).sizes[0],
                      16)
