"""``bench report --fit``: alpha, beta, gamma fitted to measured records recover the parameters
that generated them; the fitted model file loads; bad results files give one line and exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.calibrate import exchange_schedule, fit_line, pingpong_schedule
from bench.report import main, nnls
from collectives.verify import verify
from sim.api import predict
from sim.models import Hockney, load_model_file

TRUE = {"alpha": 2.0e-5, "beta": 3.0e-10, "gamma": 5.0e-10}
ALGOS = ("ring", "rabenseifner", "recursive-doubling", "binomial", "double-binary-tree")
SIZES = [8 * 4**k for k in range(12)]  # 8 B .. 32 MiB


def _results(tmp_path, params=TRUE, ranks=(3, 4), noise=0.0) -> str:
    rng = np.random.default_rng(1)
    h = Hockney(params["alpha"], params["beta"], params["gamma"])
    records = []
    for p in ranks:
        for size in SIZES:
            for algo in ALGOS:
                t = predict("allreduce", algo, p, size, params=h, itemsize=4).time_s
                records.append({"collective": "allreduce", "algorithm": algo, "ranks": p,
                                "size": size, "dtype": "float",
                                "time_s": t * (1 + noise * rng.standard_normal())})
            # MPI's own: measured only, never simulated, must not disturb the fit
            records.append({"collective": "allreduce", "algorithm": "native", "ranks": p,
                            "size": size, "dtype": "float", "time_s": 1.0})
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"environment": {"host": "synthetic"}, "records": records}))
    return str(path)


def test_fit_recovers_the_parameters_that_made_the_records(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main([_results(tmp_path), "--fit", "--out", str(out)]) == 0
    fitted = load_model_file(out / "fitted-model.json")
    for key, want in TRUE.items():
        assert fitted[key] == pytest.approx(want, rel=0.02), (key, fitted)
    doc = json.loads((out / "fitted-model.json").read_text())
    assert doc["residuals"]["points"] == 2 * len(SIZES) * len(ALGOS)
    assert doc["residuals"]["max_abs_error_pct"] < 1e-6
    assert doc["residuals"]["max_linearity_deviation"] < 1e-9
    text = capsys.readouterr().out
    assert "# FIT to these very records, not a prediction (alpha=20.00 us" in text
    assert "median |error| 0.0%" in text
    assert (out / "fitted-vs-measured-allreduce-4.png").exists()
    rows = json.loads((out / "comparison.json").read_text())["rows"]
    assert all(r["fitted_error_pct"] is None for r in rows if r["algorithm"] == "native")


def test_fit_beside_a_calibrated_model_and_with_noise(tmp_path, capsys):
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"alpha": 1e-6, "beta": 1e-10, "gamma": 1e-10}))
    out = tmp_path / "rep"
    results = _results(tmp_path, ranks=(4,), noise=0.05)
    assert main([results, "--model-file", str(model), "--fit", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "# calibrated model (alpha=1.00 us" in text and "# FIT to these very records" in text
    fitted = load_model_file(out / "fitted-model.json")
    for key, want in TRUE.items():
        assert fitted[key] == pytest.approx(want, rel=0.2), (key, fitted)
    assert (out / "predicted-vs-measured-allreduce-4.png").exists()
    assert (out / "fitted-vs-measured-allreduce-4.png").exists()


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not JSON"),
    ('{"records": []}', "has no 'records' list"),
    ('{"records": [{"collective": "allreduce", "algorithm": "ring", "ranks": 4, "size": 8}]}',
     "record 0 lacks time_s"),
    ('{"records": [{"collective": "allreduce", "algorithm": "ring", "ranks": 4, "size": 8, '
     '"time_s": -1}]}', r"record 0 has a bad time_s \(-1\)"),
    ('{"records": [{"collective": "allreduce", "algorithm": "nope", "ranks": 4, "size": 8, '
     '"time_s": 1e-5}]}', "cannot simulate allreduce/nope"),
    ('{"records": [{"collective": "allreduce", "algorithm": "native", "ranks": 4, "size": 8, '
     '"time_s": 1e-5}]}', "no records of a project algorithm"),
])
def test_bad_results_file_exits_2_with_one_line(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main([str(bad), "--fit", "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m bench report: "), err
    assert __import__("re").search(message, err[0]), err[0]


def test_missing_results_file_and_no_model(tmp_path, capsys):
    assert main([str(tmp_path / "absent.json"), "--fit"]) == 2
    assert "cannot read results file" in capsys.readouterr().err
    # neither --model-file nor --fit, and the run was not measured with --calibrate
    assert main([_results(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "carries no model of its own" in err[0] and "--calibrate" in err[0]


def test_nnls_matches_a_brute_force_search():
    rng = np.random.default_rng(0)
    for _ in range(20):
        A = rng.standard_normal((12, 3))
        b = rng.standard_normal(12)
        x = nnls(A, b)
        assert np.all(x >= 0)
        grid = np.stack(np.meshgrid(*[np.linspace(0, 3, 31)] * 3), -1).reshape(-1, 3)
        best = np.min(np.linalg.norm(grid @ A.T - b, axis=1))
        assert np.linalg.norm(A @ x - b) <= best + 1e-9


def test_calibration_patterns_verify_and_the_line_fit_is_exact():
    assert verify(pingpong_schedule()).nchunks == 1
    assert verify(exchange_schedule()).nchunks == 2
    x = np.array([8.0, 1024.0, 1 << 20])
    a, b, info = fit_line(x, 3e-6 + 2e-10 * x)
    assert a == pytest.approx(3e-6) and b == pytest.approx(2e-10)
    assert info["max_rel_residual"] < 1e-9


def test_winner_check_scores_schedules_not_names():
    """On 2 ranks ring, rabenseifner and hierarchical build one schedule: which of them a run
    measured fastest is noise, so they are one candidate (their median measured time)."""
    from bench.report import accuracy

    def row(algo, measured, predicted):
        return {"collective": "allreduce", "algorithm": algo, "ranks": 2, "size": 1 << 20,
                "time_s": measured, "predicted_s": predicted, "error_pct": 0.0}

    rows = [row("ring", 1.10, 1.0), row("rabenseifner", 1.00, 1.0),
            row("hierarchical", 1.20, 1.0), row("binomial", 1.12, 1.5)]
    (acc,) = accuracy(rows)
    (w,) = acc["winners"]
    assert w["measured"] == w["predicted"] == "ring=rabenseifner=hierarchical"
    assert w["ratio"] == 1.0
    # binomial measured below the group's median (1.10) wins the measurement; the prediction
    # (the group) is then 1.10 / 1.08 of the best
    rows[-1] = row("binomial", 1.08, 1.5)
    (w,) = accuracy(rows)[0]["winners"]
    assert w["measured"] == "binomial" and w["ratio"] == pytest.approx(1.10 / 1.08)
