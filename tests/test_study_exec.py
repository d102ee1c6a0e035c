"""Studies past one process: --jobs, the mpi4py.futures executor under a real mpiexec, records
streamed to disk, a real SIGKILL and --resume; what-if study keys and their errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.study import read_records, run_study
from sim.studyfile import StudyError, load_study, parse_study

sys.path.insert(0, str(Path(__file__).resolve().parent / "mpi_scripts"))
import launcher  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: 2 algorithms x 16 late ranks x 3 lateness x 3 sizes = 288 simulations on a 16-GPU cluster.
STUDY = """
title = "straggler test"
algorithms = ["ring", "rabenseifner"]
sizes = "1K:1M:32"
model = "contention"

[[topology]]
name = "2 x 8 GPUs"
kind = "gpu-cluster"
nodes = 2
gpus_per_node = 8
vary.late = ["0us", "5us", "50us"]
vary.late_rank = "each"

[[topology]]
name = "skewed star"
kind = "switch"
n = 8
skew_dist = "exponential"
vary.skew = ["1us", "10us"]
vary.skew_seed = [0, 1]
slow_reduce = 2.0
slow_reduce_rank = 3
degrade = 0.5
degrade_target = "2"
fail_link = []
"""


def _by_key(path: Path) -> dict[str, dict]:
    header, recs = read_records(path)
    assert header is not None
    return {d["key"]: d for d in recs}


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The study run serially: the reference every other way of running must equal."""
    d = tmp_path_factory.mktemp("serial")
    (d / "study.toml").write_text(STUDY)
    report = run_study(load_study(d / "study.toml"), d / "out", verbose=False)
    assert report.ran == len(report.records) == 2 * 16 * 3 * 3 + 2 * 4 * 3
    return d / "study.toml", _by_key(d / "out" / "records.jsonl"), report


def test_serial_records_hold_the_what_ifs(serial):
    _, recs, report = serial
    late = recs["0/47/ring/1024"]  # variation 47: late = 50us, late_rank = 15
    assert late["whatif"] == {"late": "50us", "late_rank": 15}
    on_time = recs["0/0/ring/1024"]
    assert late["time_s"] > on_time["time_s"] + 40e-6
    assert late["time_from_last_s"] < late["time_s"]
    assert len({d["time_s"] for k, d in recs.items() if k.startswith("1/")}) > 4  # skew draws
    names = sorted(p.name for p in report.figures)
    assert names == ["0-2-x-8-gpus-waits-ring.png", "0-2-x-8-gpus-whatif.png",
                     "1-skewed-star-waits-ring.png", "1-skewed-star-whatif.png"]


def test_jobs_2_gives_the_serial_records(serial, tmp_path):
    path, ref, _ = serial
    report = run_study(load_study(path), tmp_path, verbose=False, jobs=2)
    assert _by_key(tmp_path / "records.jsonl") == ref
    assert [r.as_dict() for r in report.records] == \
        [r.as_dict() for r in serial[2].records]


@pytest.mark.mpi
def test_mpi4py_futures_executor_gives_the_serial_records(serial, tmp_path):
    why = launcher.have_mpi()
    if why:
        pytest.skip(why)
    path, ref, _ = serial
    proc = launcher.launch(3, ["-m", "mpi4py.futures", "-m", "sim", "report", str(path),
                               "--executor", "mpi", "--out", str(tmp_path), "--no-progress"],
                           timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert _by_key(tmp_path / "records.jsonl") == ref
    assert json.loads((tmp_path / "records.json").read_text()) == \
        json.loads((serial[2].out_dir / "records.json").read_text())


def test_mpi_executor_without_workers_is_one_line(serial, tmp_path):
    path, _, _ = serial
    proc = subprocess.run([sys.executable, "-m", "sim", "report", str(path), "--executor", "mpi",
                           "--out", str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "mpiexec -n N python -m mpi4py.futures -m sim report" in proc.stderr


def test_a_killed_study_resumes_to_identical_records(serial, tmp_path):
    path, ref, _ = serial
    out = tmp_path / "out"
    jsonl = out / "records.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "report", str(path), "--out",
                             str(out), "--no-progress"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if jsonl.exists() and jsonl.read_text().count("\n") >= 4:  # header + 3 results
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the study ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    _, kept = read_records(jsonl)
    assert 3 <= len(kept) < len(ref)
    assert all(ref[d["key"]] == d for d in kept)  # what was on disk is already right
    # A kill mid-write leaves half a line: the resume must drop it, not choke on it.
    with jsonl.open("a") as f:
        f.write('{"collective": "allreduce", "algori')
    proc = subprocess.run([sys.executable, "-m", "sim", "report", str(path), "--out",
                           str(out), "--resume", "--no-progress"],
                          capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(ref) - len(kept)} run now" in proc.stdout  # only the missing ones ran
    assert _by_key(jsonl) == ref
    assert jsonl.read_text().count("\n") == len(ref) + 1  # nothing twice
    # A resume with everything on disk runs nothing and rebuilds the report from disk.
    again = run_study(load_study(path), out, verbose=False, resume=True)
    assert again.ran == 0 and len(again.records) == len(ref)


def test_resume_refuses_another_study_and_a_damaged_middle_line(serial, tmp_path):
    path, _, _ = serial
    other = parse_study({"title": "other", "algorithms": ["ring"], "sizes": [1024],
                         "topology": [{"kind": "ring", "n": 4}]})
    run_study(other, tmp_path, verbose=False)
    with pytest.raises(StudyError, match="holds the records of another study .'other'."):
        run_study(load_study(path), tmp_path, verbose=False, resume=True)
    lines = (tmp_path / "records.jsonl").read_text().split("\n")
    (tmp_path / "records.jsonl").write_text("\n".join([lines[0], "{broken", *lines[1:]]))
    with pytest.raises(StudyError, match="line 2 is damaged"):
        read_records(tmp_path / "records.jsonl")


def test_whatif_study_values_resolve_per_rank():
    study = parse_study({"algorithms": ["ring"], "sizes": [1024], "topology": [
        {"kind": "switch", "n": 4, "arrival": ["0us", "1us", 2e-6, "3us"], "late": {"1": "4us"},
         "slow_reduce": {"0": 3}, "degrade": {"4": 0.5, "1,4": 0.5}, "fail_link": "3,4"}]})
    spec = study.topologies[0]
    label, params = spec.variations()[0]
    w = spec.whatif(params, 4)
    assert w.arrival == pytest.approx((0.0, 5e-6, 2e-6, 3e-6))
    assert w.reduce_scale == {0: 3.0}
    assert w.fail_links == ("3,4",)
    # the same seed draws the same skew; another seed another
    base = {"kind": "switch", "n": 8, "skew": "10us"}
    draw = [parse_study({"topology": [dict(base, skew_seed=s)]}).topologies[0] for s in (1, 1, 2)]
    arr = [t.whatif(t.variations()[0][1], 8).arrival for t in draw]
    assert arr[0] == arr[1] != arr[2] and min(arr[0]) == 0.0 and max(arr[0]) > 0


@pytest.mark.parametrize(("text", "message"), [
    ("[[topology]]\nkind = 'switch'\nn = 4\nlatee = '1us'\n",
     r"latee: kind 'switch' takes no parameter latee; did you mean late or latency\?"),
    ("[[topology]]\nkind = 'switch'\nn = 4\nvary.skw = ['1us']\n",
     r"topology\[0\].vary.skw: .*did you mean skew"),
    ("rooting = 'shortest'\n[[topology]]\nkind = 'switch'\nn = 4\n",
     r"unknown key\(s\) rooting; did you mean routing\?"),
    ("late = '1us'\n[[topology]]\nkind = 'switch'\nn = 4\n",
     r"late is a what-if: put it in a \[\[topology\]\] table"),
    ("[[topology]]\nkind = 'switch'\nn = 4\nlate = '1us'\nlate_rank = 4\n",
     r"late_rank: rank 4 out of range 0..3"),
    ("[[topology]]\nkind = 'switch'\nn = 4\nlate = '-1us'\n", r"late: expected a time >= 0"),
    ("[[topology]]\nkind = 'switch'\nn = 4\nskew = '1us'\nskew_dist = 'gauss'\n",
     r"skew_dist: got 'gauss'; use one of normal, exponential"),
    ("[[topology]]\nkind = 'switch'\nn = 4\ndegrade = 0.5\n", r"needs degrade_target"),
    ("[[topology]]\nkind = 'switch'\nn = 4\ndegrade = 0\ndegrade_target = '1'\n",
     r"degrade: expected a factor > 0"),
    ("[[topology]]\nkind = 'switch'\nn = 4\ndegrade = 0.5\ndegrade_target = '14'\n",
     r"no node '14'.*did you mean 4"),
    ("[[topology]]\nkind = 'switch'\nn = 4\nfail_link = ['0,1']\n", r"no link 0,1"),
    ("[[topology]]\nkind = 'switch'\nn = 4\nslow_reduce = -1\n", r"slow_reduce: expected a "
                                                                r"factor > 0"),
    ("[[topology]]\nkind = 'switch'\nn = 4\narrival = ['0us']\n",
     r"arrival: expected a list of 4 times"),
    ("[[topology]]\nkind = 'switch'\nn = 4\nvary.late_rank = 'every'\n",
     r"vary.late_rank: expected a non-empty list of values, got 'every' \(or \"each\"\)"),
    ("sharing = 'unfair'\n[[topology]]\nkind = 'switch'\nn = 4\n", r"sharing: got 'unfair'"),
])
def test_bad_whatif_study_keys_are_one_line(tmp_path, text, message):
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(StudyError, match=message) as info:
        load_study(path)
    assert "\n" not in str(info.value)


def test_the_example_straggler_study_reads():
    study = load_study(ROOT / "examples" / "straggler_512.toml")
    assert set(study.algorithms) == {"ring", "rabenseifner", "double-binary-tree",
                                     "hierarchical"}
    assert [len(t.variations()) for t in study.topologies] == [7, 24, 28, 4]
    assert [t.varied_whatifs for t in study.topologies] == [
        ["late"], ["skew", "skew_seed"], ["late_rank"], ["degrade"]]
    spec = study.topologies[3]
    w = spec.whatif(spec.variations()[1][1], 512)
    assert w.degrade == {"100,579": 0.5}


def test_which_rank_is_late_and_failed_link_studies_draw(tmp_path):
    study = parse_study({"algorithms": ["ring", "recursive-doubling"], "sizes": [1024, 1 << 20],
                         "model": "hockney", "topology": [
                             {"name": "which", "kind": "switch", "n": 4, "late": "10us",
                              "vary": {"late_rank": "each"}},
                             {"name": "cut", "kind": "torus", "dims": [4, 4],
                              "vary": {"fail_link": [[], ["0,1"], ["0,1", "5,6"]]}}]})
    report = run_study(study, tmp_path, verbose=False)
    assert [p.name for p in report.figures] == [
        "0-which-whatif.png", "0-which-waits-ring.png", "1-cut-whatif.png",
        "1-cut-waits-ring.png"]
    times = {(r.extra["variation"], r.algorithm, r.size): r.time_s for r in report.records}
    for algo in ("ring", "recursive-doubling"):
        healthy = times[("cut [fail_link=[]]", algo, 1 << 20)]
        assert times[("cut [fail_link=['0,1']]", algo, 1 << 20)] >= healthy
