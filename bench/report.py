"""``python -m bench report results.json --model-file model.json``: predicted against measured.

Reads the records that ``python -m bench --json`` wrote, predicts every (algorithm, size) with
the simulator's Hockney model on a fully connected network calibrated by ``bench calibrate``,
and writes a figure (both curves and the error in percent per size), a table and an HTML page.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from pathlib import Path

import numpy as np

from sim import plots
from sim.api import predict
from sim.models import load_model_file, model_params

__all__ = ["compare", "load_results", "main"]

ITEMSIZE = {"float": 4, "float32": 4, "half": 2, "float16": 2, "double": 8, "float64": 8,
            "int32": 4, "int": 4, "int64": 8, "int8": 1, "uint8": 1, "char": 1}


def load_results(path: str | Path) -> tuple[dict, list[dict]]:
    """(environment, records) from a ``bench --json`` file; a clear ValueError otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"cannot read results file {str(path)!r}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"results file {str(path)!r} is not JSON: {e}") from None
    records = data.get("records") if isinstance(data, dict) else None
    if not isinstance(records, list) or not records:
        raise ValueError(f"results file {str(path)!r} has no 'records' list; write one with "
                         f"'mpiexec -n N python -m bench --json {path.name}'")
    need = {"collective", "algorithm", "ranks", "size", "time_s"}
    for i, r in enumerate(records):
        missing = need - set(r)
        if missing:
            raise ValueError(f"results file {str(path)!r}: record {i} lacks "
                             f"{', '.join(sorted(missing))}")
    return data.get("environment", {}), records


def compare(records: list[dict], model: dict) -> list[dict]:
    """Per measured record of a project algorithm: the prediction and the error in percent.

    ``native`` (the MPI library's own collective) has no schedule to simulate and is kept as a
    measured-only reference.
    """
    params = model_params("hockney", **model)
    out = []
    for r in records:
        row = {k: r[k] for k in ("collective", "algorithm", "ranks", "size", "time_s")}
        row["dtype"] = r.get("dtype", "float")
        if r["algorithm"] == "native" or r["size"] == 0:
            row["predicted_s"] = None
            row["error_pct"] = None
        else:
            itemsize = ITEMSIZE.get(str(row["dtype"]), 1)
            pred = predict(r["collective"], r["algorithm"], int(r["ranks"]), int(r["size"]),
                           params=params, itemsize=itemsize)
            row["predicted_s"] = pred.time_s
            row["error_pct"] = 100.0 * (pred.time_s - r["time_s"]) / r["time_s"]
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench report",
        description="Predicted (simulator, calibrated model) against measured (bench --json).")
    parser.add_argument("results", help="JSON written by 'python -m bench --json FILE'")
    parser.add_argument("--model-file", required=True,
                        help="JSON with alpha, beta, gamma ('python -m bench calibrate --out')")
    parser.add_argument("--out", default="report/measured",
                        help="output directory (default: report/measured)")
    args = parser.parse_args(argv)
    try:
        env, records = load_results(args.results)
        model = load_model_file(args.model_file)
    except ValueError as e:
        print(f"python -m bench report: {e}", file=sys.stderr)
        return 2
    rows = compare(records, model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    for (coll, ranks) in sorted({(r["collective"], r["ranks"]) for r in rows}):
        sel = [r for r in rows if r["collective"] == coll and r["ranks"] == ranks]
        sizes = sorted({r["size"] for r in sel if r["size"] > 0})
        measured, predicted = {}, {}
        for algo in sorted({r["algorithm"] for r in sel}):
            by_size = {r["size"]: r for r in sel if r["algorithm"] == algo}
            if not all(s in by_size for s in sizes):
                continue
            measured[algo] = [by_size[s]["time_s"] for s in sizes]
            if algo != "native":
                predicted[algo] = [by_size[s]["predicted_s"] for s in sizes]
        figures.append(plots.plot_predicted_vs_measured(
            sizes, measured, predicted, out / f"predicted-vs-measured-{coll}-{ranks}",
            f"{coll} on {ranks} ranks, {env.get('host', 'this machine')}: measured (lines) vs "
            f"Hockney prediction (dashed)\nalpha={model['alpha'] * 1e6:.2f} us, "
            f"beta={model['beta'] * 1e9:.3f} ns/B ({1 / model['beta'] / 1e9:.2f} GB/s), "
            f"gamma={model.get('gamma', 0) * 1e9:.3f} ns/B"))
    errors = np.array([abs(r["error_pct"]) for r in rows if r["error_pct"] is not None])
    (out / "comparison.json").write_text(json.dumps({"model": model, "environment": env,
                                                     "rows": rows}, indent=1))
    lines = [f"{r['algorithm']:<20} {r['size']:>10} B  measured {r['time_s'] * 1e6:10.2f} us  "
             f"predicted {r['predicted_s'] * 1e6:10.2f} us  error {r['error_pct']:+7.1f}%"
             for r in rows if r["predicted_s"] is not None]
    page = ["<!doctype html><html><head><meta charset='utf-8'><title>Predicted vs measured"
            "</title></head><body style='font-family:system-ui;max-width:1000px;margin:2em "
            "auto'>", "<h1>Predicted against measured</h1>",
            f"<p>Environment: {html.escape(json.dumps(env))}</p>",
            f"<p>Model: {html.escape(json.dumps(model))}</p>",
            f"<p>Median absolute error {np.median(errors):.1f}% over {errors.size} "
            f"(algorithm, size) points.</p>" if errors.size else "",
            *(f"<img src='{f.name}' style='max-width:100%'>" for f in figures),
            "<pre>" + html.escape("\n".join(lines)) + "</pre></body></html>"]
    (out / "index.html").write_text("\n".join(page))
    print("\n".join(lines))
    if errors.size:
        print(f"# median |error| {np.median(errors):.1f}%, max {errors.max():.1f}% over "
              f"{errors.size} points")
    print(f"report: {out / 'index.html'} ({len(figures)} figure(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
