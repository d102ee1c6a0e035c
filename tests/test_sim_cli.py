"""``python -m sim`` through a subprocess, as users run it."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
A, B, G = 2e-6, 1e-9, 2.5e-10


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m sim ARGS`` in a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "sim", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


class _Done:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_here(capsys, *args: str, check: bool = True) -> _Done:
    """The same through ``sim.cli.main`` in this process (faster; argparse exits are caught)."""
    from sim.cli import main

    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    if check:
        assert code == 0, err
    return _Done(code, out, err)


def ring_allreduce(p: int, n: float) -> float:
    return 2 * (p - 1) * A + 2 * (p - 1) / p * n * B + (p - 1) / p * n * G


PREDICT = ("predict", "--collective", "allreduce", "--algorithm", "ring", "--ranks", "7",
           "--topology", "fully-connected", "--alpha", "2e-6", "--beta", "1e-9",
           "--gamma", "2.5e-10", "--json")


def test_predict_json_ring_p7_matches_closed_form():
    out = run(*PREDICT, "--bytes", "1048576").stdout
    assert out.count("\n") == 1
    d = json.loads(out)
    for key in ("time_s", "algbw", "busbw", "collective", "algorithm", "ranks", "bytes",
                "model", "topology", "steps", "transfers"):
        assert key in d
    assert (d["collective"], d["algorithm"], d["ranks"], d["bytes"]) == (
        "allreduce", "ring", 7, 1048576)
    assert (d["model"], d["steps"], d["transfers"]) == ("hockney", 12, 84)
    # 1 MiB does not split in 7 equal chunks: within 1e-5 of the formula
    assert d["time_s"] == pytest.approx(ring_allreduce(7, 1048576), rel=1e-5)
    assert d["algbw"] == pytest.approx(1048576 / d["time_s"])
    assert d["busbw"] == pytest.approx(d["algbw"] * 12 / 7)
    # 7 equal chunks: exact
    n = 7 * 149796
    d = json.loads(run(*PREDICT, "--bytes", str(n)).stdout)
    assert d["time_s"] == pytest.approx(ring_allreduce(7, n), rel=1e-12)


def test_predict_units_model_file_and_table(tmp_path, capsys):
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"alpha": A, "beta": B, "gamma": G, "host": "calibrated"}))
    a = json.loads(run_here(capsys, "predict", "--ranks", "8", "--bytes", "1MiB", "--model-file",
                       str(model), "--json").stdout)
    b = json.loads(run_here(capsys, "predict", "--ranks", "8", "--bytes", "1M", "--alpha", "2us",
                       "--beta", "1GB/s", "--gamma", "2.5e-10", "--json").stdout)
    assert a["time_s"] == pytest.approx(ring_allreduce(8, 1 << 20), rel=1e-12)
    assert b["time_s"] == pytest.approx(a["time_s"], rel=1e-12)
    table = run("predict", "--ranks", "8", "--bytes", "1MiB", "--model-file", str(model)).stdout
    assert "busbw" in table and "1048576" in table and "ring" in table


def test_predict_on_topologies_and_options(capsys):
    for topo, extra in (("fat-tree", ["--oversubscription", "2"]), ("torus", ["--dims", "4x4"]),
                        ("gpu-cluster", ["--gpus-per-node", "4"]), ("dragonfly", []),
                        ("switch", []), ("ring", [])):
        d = json.loads(run_here(capsys, "predict", "--ranks", "16", "--bytes", "64MiB",
                                "--topology", topo,
                           "--model", "contention", "--bandwidth", "100Gbps", "--latency",
                           "1us", *extra, "--json").stdout)
        assert d["time_s"] > 0 and d["topology"].startswith(topo.replace("-", "_"))
    d = json.loads(run_here(capsys, "predict", "--algorithm", "double-binary-tree", "--ranks", "16",
                       "--option", "segments=4", "--alpha", "1us", "--beta", "1ns",
                       "--json").stdout)
    assert d["options"] == {"segments": 4}


def test_list():
    out = run("list").stdout
    for word in ("allreduce", "rabenseifner", "recursive-halving", "bruck", "fat-tree",
                 "gpu-cluster", "fully-connected", "contention", "loggp", "hockney"):
        assert word in out


def test_sweep_table_best_mark_and_files(tmp_path):
    csv_path, json_path = tmp_path / "s.csv", tmp_path / "s.json"
    out = run("sweep", "--collective", "allreduce", "--algorithms",
              "ring,rabenseifner,double-binary-tree", "--ranks", "16", "--sizes", "1K:1M:4",
              "--topology", "fat-tree", "--model", "contention", "--csv", str(csv_path),
              "--json", str(json_path)).stdout
    for col in ("size", "count", "type", "redop", "time", "algbw", "busbw", "#wrong"):
        assert col in out
    rows = [line for line in out.splitlines() if line and not line.startswith("#")]
    assert len(rows) == 3 * 6  # 1K 4K 16K 64K 256K 1M, three algorithms
    starred = [r for r in rows if r.rstrip().endswith("*")]
    assert len(starred) == 6  # one best per size
    assert out.count("# Avg bus bandwidth") == 3
    recs = json.loads(json_path.read_text())
    assert len(recs) == 18 and {"time_s", "busbw", "algorithm"} <= set(recs[0])
    with open(csv_path) as f:
        assert len(list(csv.DictReader(f))) == 18


def test_sweep_size_list(capsys):
    listed = run_here(capsys, "sweep", "--algorithms", "ring", "--ranks", "4", "--sizes", "1K,64M",
                 "--alpha", "1us", "--beta", "1ns").stdout
    assert " 67108864 " in listed and " 1024 " in listed


@pytest.mark.parametrize("args,needle", [
    (("predict", "--bytes", "12Q"), "--bytes"),
    (("predict", "--algorithm", "bogus"), "unknown algorithm 'bogus'"),
    (("predict", "--topology", "hypercube"), "unknown topology 'hypercube'"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    proc = run(*args, check=False)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize("args,needle", [
    (("predict", "--bandwidth", "fast"), "--bandwidth"),
    (("predict", "--latency", "2 parsecs"), "--latency"),
    (("predict", "--algorithm", "bogus"), "unknown algorithm 'bogus'"),
    (("predict", "--topology", "hypercube"), "unknown topology 'hypercube'"),
    (("predict", "--collective", "alltoall"), "unknown collective"),
    (("predict", "--ranks", "0"), "--ranks"),
    (("sweep", "--sizes", "1G:1K"), "--sizes"),
    (("sweep", "--algorithms", "ring,nope"), "unknown algorithm 'nope'"),
    (("predict", "--topology", "fat-tree", "--k", "4", "--ranks", "100"), "hosts"),
    (("predict", "--option", "nosuch=1"), "nosuch"),
    (("predict", "--model-file", "/no/such/model.json"), "--model-file"),
    (("predict", "--beta", "quick"), "--beta"),
    (("predict", "--dtype", "float7"), "--dtype"),
    (("sweep", "--sizes", "1K:1M", "--factor", "1"), "factor"),
    (("bogus",), "invalid choice"),
])
def test_more_bad_input_in_process(capsys, args, needle):
    proc = run_here(capsys, *args, check=False)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_no_arguments_calls_the_study_hook(monkeypatch, capsys):
    """``python -m sim`` alone runs ``sim.study.main([])`` when that module exists."""
    import importlib
    from importlib.util import find_spec

    from sim.cli import main

    if find_spec("sim.study") is None:
        out = run_here(capsys).stdout
        assert "predict" in out and "sweep" in out
        return
    study = importlib.import_module("sim.study")
    seen = []
    monkeypatch.setattr(study, "main", lambda argv: seen.append(argv) or 0)
    assert main([]) == 0
    assert seen == [[]]


def test_model_file_loggp_keys(tmp_path, capsys):
    model = tmp_path / "m.json"
    model.write_text(json.dumps({"alpha": A, "beta": B, "gamma": 0.0,
                                 "loggp": {"L": 5e-6, "o": 1e-6, "g": 3e-6, "G": 1e-9}}))
    d = json.loads(run_here(capsys, "predict", "--collective", "broadcast", "--algorithm",
                            "binomial", "--ranks", "4", "--bytes", "1001", "--model", "loggp",
                            "--model-file", str(model), "--json").stdout)
    assert d["params"] == {"L": 5e-6, "o": 1e-6, "g": 3e-6, "G": 1e-9, "gamma": 0.0}
    assert d["time_s"] == pytest.approx(16e-6)  # the hand trace of test_sim_closed_forms
