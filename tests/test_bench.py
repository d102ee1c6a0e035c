"""The bench commands: a small sweep and a calibration through mpiexec, bad flags, and the
commands called in-process (they return their records; nothing here parses numbers from
stdout)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from mpi_scripts.launcher import launch, needs_mpi, program_lines

from collectives import algorithms

COLUMNS = ("size", "count", "type", "redop", "algorithm", "time", "algbw", "busbw", "#wrong")


@needs_mpi
def test_small_sweep_through_mpiexec(tmp_path):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    proc = launch(2, ["-m", "bench", "-b", "8", "-e", "64K", "-f", "8", "-n", "3", "-w", "1",
                      "--json", str(out_json), "--csv", str(out_csv)], timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    header = next(line for line in proc.stdout.splitlines() if "algorithm" in line)
    assert all(c in header for c in COLUMNS), header
    assert proc.stdout.startswith("# MPICH") or proc.stdout.startswith("# Open MPI") \
        or proc.stdout.startswith("# "), proc.stdout[:200]
    assert "# Avg bus bandwidth" in proc.stdout
    doc = json.loads(out_json.read_text())
    assert doc["format"] == "collectives.bench/1"
    env, records = doc["environment"], doc["records"]
    assert env["ranks"] == 2 and env["library"] and env["dtype"] == "float"
    want = {*algorithms("allreduce"), "native"}
    assert {r["algorithm"] for r in records} == want
    sizes = sorted({r["size"] for r in records})
    assert sizes == [8, 64, 512, 4096, 32768]
    for r in records:
        assert r["wrong"] == 0, r
        assert r["time_s"] > 0 and r["busbw"] > 0 and r["ranks"] == 2
        assert r["collective"] == "allreduce" and r["redop"] == "sum" and r["dtype"] == "float"
    assert len(doc["summary"]) == len(sizes)
    assert all(s["ratio"] > 0 and s["copy_bw"] > 0 for s in doc["summary"])
    assert sum(1 for r in records if r["best"]) == len(sizes)
    assert out_csv.read_text().splitlines()[0].startswith("collective,algorithm,ranks,size")


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 4])
def test_calibrate_writes_a_model_file(tmp_path, ranks):
    """Micro-benchmarks through the executor on every rank (4 ranks: oversubscribed here);
    the model file loads into a calibrated model that reproduces its own measurements."""
    from sim.models import calibrated_cost, load_model_file, model_params

    model = tmp_path / "model.json"
    proc = launch(ranks, ["-m", "bench", "calibrate", "--out", str(model), "--time", "0.01",
                          "--windows", "2", "-b", "4", "-e", "1M", "-f", "8", "--passes", "2",
                          "--buffers", "2"], timeout=120)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    m = json.loads(model.read_text())
    assert not list(tmp_path.glob(".model.json.*"))  # the temporary file was renamed
    for key in ("alpha", "beta", "gamma", "reduce_overhead"):
        assert isinstance(m[key], float) and m[key] > 0, m
    assert m["alpha"] < 1e-2 and m["beta"] < 1e-6 and m["gamma"] < 1e-6
    assert m["library"].startswith(("MPICH", "Open MPI")) and m["host"] and m["date"]
    assert m["ranks"] == ranks and m["crowd_transfers"] == ranks and m["inplace"] is False
    from collectives.transport import cores

    # out of place: an input and a result per chunk (counted where every rank has a core)
    assert m["written_buffers"] == (2.0 if ranks <= cores() else 1.0)

    assert m["ranks_per_core"] == pytest.approx(ranks / cores())
    meas = m["measurements"]
    # up to 1 MiB: with 4 ranks on 2 cores, 4 B to 16 KiB once all measured 16.4 us in one
    # (loaded) run, which leaves no bandwidth to fit
    assert meas["sizes"] == [4, 32, 256, 2048, 16384, 131072, 1048576]
    assert set(meas["multi_exchange_s"]) == {"1", "2", "4"}
    # the reduction's turn counts only where the ranks outnumber the cores
    assert meas["reducing_shift_s"] > 0
    from collectives.transport import cores
    assert ("reduce_wait" in m) == (ranks > cores()) and m.get("reduce_wait", 0.0) >= 0
    # and with one rank reducing (a tree's steps reduce on fewer ranks)
    assert meas["reducing_shift_one_s"] > 0
    assert ("reduce_wait_one" in m) == (ranks > cores()) and m.get("reduce_wait_one", 0) >= 0
    # and at every size (kept where the shift's buffers fit the host's cache)
    assert len(meas["crowd_reducing_shift_s"]) == len(meas["sizes"])
    # (with a core per rank too: there the rows are all the wait there is)
    waits = m.get("reduce_wait_sizes", [])
    assert [s for s, _ in waits] == meas["sizes"][:len(waits)]
    assert all(b[1] >= a[1] >= 0 for a, b in zip(waits, waits[1:], strict=False))
    # the reduction on one rank alone beside every rank's, at every size
    assert len(meas["reduce_one_s"]) == len(meas["sizes"]) and min(meas["reduce_one_s"]) > 0
    assert len(m["reduce_one_factors"]) >= len(meas["sizes"]) - 1
    # and beside the other ranks copying, where every rank has a core of its own
    copies = meas["reduce_beside_copies_s"]
    assert (copies is None) == (ranks > cores()) and ("reduce_copy_factors" in m) == (
        copies is not None)
    assert copies is None or (len(copies) == len(meas["sizes"]) and min(copies) > 0)
    # and the lone relay of data a reduction wrote, where every rank has a core
    assert ("reduced_size_factors" in m) == (ranks <= cores())
    assert (meas["lone_reduced_s"] is None) == (ranks > cores())
    assert meas["passes"] == 2 and meas["buffers"] == 2 and "lone relay" in m["method"]
    # each pass's own figures beside them: each figure is the fastest of its passes'
    assert len(meas["by_pass"]) == 2
    for name in ("lone_pingpong_s", "crowd_exchange_s", "reduce_s", "reduce_one_s"):
        assert meas[name] == [min(col) for col in zip(*(bp[name] for bp in meas["by_pass"]),
                                                      strict=True)]
    assert proc.stdout.splitlines()[0].startswith(("# MPICH", "# Open MPI"))
    values = load_model_file(model)
    # a row per measured size but the last (a segment that grows faster than its bytes:
    # more, and the largest size one of its own)
    rows = [r[0] for r in values["size_factors"]]
    assert rows[0] == 0 and set(meas["sizes"][1:-1]) <= set(rows)
    h = model_params("hockney", **values)
    # one transfer in flight reproduces the lone ping-pong at every measured size (after the
    # noise envelope: never above the measurement, but for a flat segment's near-free byte),
    # N at once the crowd's exchange
    lone = [float(calibrated_cost(h, h.alpha, h.beta, np.array([s]))[0]) for s in meas["sizes"]]
    assert all(x <= y * 1.001 for x, y in zip(lone, meas["lone_pingpong_s"], strict=True))
    assert lone[0] == pytest.approx(min(meas["lone_pingpong_s"]), rel=1e-3)
    N = m["crowd_transfers"]
    crowd = calibrated_cost(h, h.alpha, h.beta, np.full(N, float(meas["sizes"][-1])))
    # (the model never makes N transfers in flight faster than one: where noise measured the
    # crowd below the lone ping-pong, the lone figure bounds it)
    assert crowd[0] <= max(meas["crowd_exchange_s"][-1], meas["lone_pingpong_s"][-1]) * 1.001
    # data the sender wrote itself: the relay and the forwarding shift, their own tables,
    # through which one written transfer reproduces the written relay
    assert len(meas["lone_written_s"]) == len(meas["crowd_forward_s"]) == len(meas["sizes"])
    for table in ("written_size_factors", "written_crowd_factors"):
        assert set(meas["sizes"][1:-1]) <= {r[0] for r in values[table]}
    # data a reduction wrote: its own crowd table where every rank has a core of its own
    if ranks <= cores():
        assert len(meas["crowd_reducing_forward_s"]) == len(meas["sizes"])
        assert len(meas["crowd_reducing_shift_s"]) == len(meas["sizes"])
        assert set(meas["sizes"][1:-1]) <= {r[0] for r in values["reduced_crowd_factors"]}
    else:
        assert meas["crowd_reducing_forward_s"] is None and "reduced_crowd_factors" not in m
        assert any("priced as received data" in n for n in m["notes"])
    assert m["format"] == "collectives.model/3"
    written = [float(calibrated_cost(h, h.alpha, h.beta, np.array([s]), written=np.ones(1))[0])
               for s in meas["sizes"]]
    assert all(x <= y * 1.001 for x, y in zip(written, meas["lone_written_s"], strict=True))
    assert written[-1] == pytest.approx(meas["lone_written_s"][-1], rel=1e-3)


@needs_mpi
def test_sweep_calibrated_in_the_run_and_reported_from_its_own_model(tmp_path, capsys):
    """--calibrate puts a model fitted from micro-benchmarks taken between the sweep's passes
    into the results; bench report predicts the run from it without --model-file."""
    from bench.report import main as report

    out = tmp_path / "r.json"
    proc = launch(2, ["-m", "bench", "-b", "8", "-e", "64K", "-f", "8", "-n", "3", "-w", "1",
                      "--passes", "2", "--calibrate", "--json", str(out)], timeout=120)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "# pass 1 of 2" in proc.stdout and "# pass 2 of 2" in proc.stdout
    assert "# auto:" not in proc.stdout
    assert "# calibrated in this run (2 pass(es)" in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["environment"]["passes"] == 2
    m = doc["model"]
    assert m["ranks"] == 2 and m["measurements"]["passes"] == 2
    assert all(m[k] > 0 for k in ("alpha", "beta", "gamma"))
    assert not list(tmp_path.glob(".r.json.*"))  # written whole, then renamed
    assert report([str(out), "--out", str(tmp_path / "rep")]) == 0
    text = capsys.readouterr().out
    assert "each run's own calibrated model" in text
    assert re.search(r"predicted winner's measured time within 5% of the measured best at "
                     r"\d+ of 5 sizes", text), text


@needs_mpi
def test_auto_predicts_from_the_runs_own_first_calibration_pass(tmp_path):
    """--calibrate with auto and no --model-file: no separate short calibration; auto takes
    the first pass's model, and the pass still counts as the first sweep pass's. In place
    (--inplace 1), the calibration's written-data benchmarks run in place too, and the model
    says so: used for out-of-place runs, it warns."""
    out = tmp_path / "r.json"
    proc = launch(2, ["-m", "bench", "-b", "8", "-e", "4K", "-f", "64", "-n", "3", "-w", "1",
                      "--algorithms", "ring,auto,native", "--passes", "2", "--calibrate",
                      "--inplace", "1", "--json", str(out)], timeout=120)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "from the first pass of this run's calibration" in proc.stdout
    assert "short calibration" not in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["model"]["measurements"]["passes"] == 2 and doc["model"]["inplace"] is True
    assert doc["model"]["written_buffers"] == 1.0
    autos = [r for r in doc["records"] if r["algorithm"] == "auto"]
    assert [r["size"] for r in autos] == [8, 512] and all(r["wrong"] == 0 for r in autos)
    assert all(r["inplace"] is True for r in doc["records"])
    # what the run's whole calibration chooses, beside what the first pass chose
    assert all(r["whole_run_choice"] for r in autos)
    # the results file is a model file: its run's own calibration
    proc = launch(2, ["-m", "bench", "-b", "8", "-e", "8", "-n", "3", "-w", "1",
                      "--algorithms", "auto", "--model-file", str(out)], timeout=120)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert re.search(r"warning: model file .*r\.json' was calibrated for in-place "
                     r"collectives, used here out of place: calibrate with --inplace 0",
                     proc.stderr), proc.stderr


@needs_mpi
@pytest.mark.parametrize("flags, message", [
    (["-d", "bfloat17"], r"datatype 'bfloat17'.*float, double, half, int32, int64"),
    (["-o", "avg"], r"op 'avg'.*sum, prod, max, min"),
    (["--algorithms", "ring,nope"], r"'nope'"),
    (["--backend", "nccl"], r"no CUDA device is visible \(or CuPy is not installed"),
    (["--calibrate"], r"--calibrate: needs --backend mpi and at least 2 ranks"),
    (["--passes", "0"], r"--passes: must be >= 1, got 0"),
])
def test_bad_flags_exit_2_with_one_line(flags, message):
    pytest.importorskip("mpi4py")
    if flags[0] == "--backend":
        from collectives.nccl_executor import NCCLUnavailable, require_nccl

        try:
            require_nccl()
            pytest.skip("a GPU is visible here")
        except NCCLUnavailable:
            pass
    proc = launch(2 if flags[0] == "-d" else None, ["-m", "bench", *flags], timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = program_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("python -m bench sweep: error:")
    assert re.search(message, lines[0]), lines[0]
    assert proc.stdout == ""


@needs_mpi
def test_copy_and_small_through_mpiexec():
    """Both print a header built from every rank (a gather): rank 0 alone once hung."""
    proc = launch(2, ["-m", "bench", "copy", "-e", "4K", "-f", "8", "-n", "3"], timeout=60)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "GB/s" in proc.stdout
    proc = launch(2, ["-m", "bench", "small", "-n", "50", "--loops", "2"], timeout=60)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    for variant in ("native", "one Sendrecv", "rd by hand, Sendrecv + np.add",
                    "rd by hand, persistent + Waitall", "executor recursive-doubling",
                    "executor binomial"):
        assert variant in proc.stdout, proc.stdout


@needs_mpi
def test_commands_return_their_records_in_process():
    from mpi4py import MPI

    from bench import get_command

    sweep = get_command("sweep")
    records = sweep(MPI.COMM_SELF, ["-b", "64", "-e", "4K", "-f", "8", "-n", "2", "-w", "1",
                                    "--collective", "reducescatter", "-d", "int64",
                                    "-o", "max", "--algorithms", "ring,pairwise,native"],
                    verbose=False)
    assert [(r.size, r.algorithm) for r in records] == [
        (size, a) for size in (64, 512, 4096) for a in ("ring", "pairwise", "native")]
    assert all(r.wrong == 0 and r.dtype == "int64" and r.redop == "max" for r in records)
    rows = get_command("copy")(MPI.COMM_SELF, ["-b", "1K", "-e", "4K", "-f", "4", "-n", "2"],
                               verbose=False)
    assert [r["size"] for r in rows] == [1024, 4096] and all(r["bandwidth"] > 0 for r in rows)
    rows = get_command("small")(MPI.COMM_SELF, ["-n", "20", "--loops", "2"], verbose=False)
    assert [r["variant"] for r in rows] == ["native", "executor recursive-doubling",
                                            "executor binomial"]
    assert rows[0]["to_native"] == 1.0 and all(r["time_s"] > 0 for r in rows)
