"""``python -m bench report results.json --model-file model.json [--fit]``: predicted against
measured.

Reads the records that ``python -m bench --json`` wrote, predicts every (algorithm, size) with
the simulator's Hockney model on a fully connected network calibrated by ``bench calibrate``,
and writes a figure per (collective, ranks) (both curves and the error in percent per size), a
table (``comparison.json``) and an HTML page. Records of ``--algorithms auto`` get a block of
their own: the schedule auto chose at each size, re-predicted by the run's model, and its
measured time over the best project algorithm's (:func:`auto_choices`).

``--fit`` also fits ``alpha``, ``beta`` and ``gamma`` to the measured records themselves. For a
fixed schedule and size, the predicted time on the fully connected Hockney network is linear in
the three parameters (the cost of the critical path: ``a alpha + b beta + c gamma``), so the
coefficient row ``(a, b, c)`` of every record comes from three predictions with unit
parameters, and the fit is a non-negative least squares over three variables, weighted by
``1/measured`` so that every size counts by its relative error. The fitted model is written to
``OUT/fitted-model.json`` (loadable by ``python -m sim predict --model-file``), its curves go in
a second figure per (collective, ranks), and both models' median and largest |error| are
printed. With ``--fit``, ``--model-file`` may be left out.
"""

from __future__ import annotations

import argparse
import functools
import html
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np

from sim import plots
from sim.api import predict
from sim.models import Hockney, load_model_file, model_params, model_values

__all__ = ["accuracy", "auto_choices", "coefficient_rows", "compare", "fit_records",
           "load_results", "load_run", "main", "nnls", "repeatability", "twins"]

ITEMSIZE = {"float": 4, "float32": 4, "half": 2, "float16": 2, "double": 8, "float64": 8,
            "int32": 4, "int": 4, "int64": 8, "int8": 1, "uint8": 1, "char": 1}
PARAMS = ("alpha", "beta", "gamma")
# "zero" for the unit predictions: the simulator divides by beta for its link statistics
_TINY = 1e-30


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def load_results(path: str | Path) -> tuple[dict, list[dict]]:
    """(environment, records) from a ``bench --json`` file; a clear ValueError otherwise."""
    env, records, _ = load_run(path)
    return env, records


def load_run(path: str | Path) -> tuple[dict, list[dict], dict | None]:
    """(environment, records, model) from a ``bench --json`` file: ``model`` the parameters
    of the model ``bench --calibrate`` measured in that run (None if it did not)."""
    env, records, model, _ = _read_run(path)
    return env, records, model


def _read_run(path: str | Path) -> tuple[dict, list[dict], dict | None, dict | None]:
    """:func:`load_run`'s three, and the run's model document as written (its raw
    measurements, which :func:`written_penalty` reads)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"cannot read results file {str(path)!r}: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"results file {str(path)!r} is not JSON: {e}") from None
    records = data.get("records") if isinstance(data, dict) else None
    if not isinstance(records, list) or not records:
        raise ValueError(f"results file {str(path)!r} has no 'records' list; write one with "
                         f"'mpiexec -n N python -m bench --json {path.name}'")
    need = {"collective", "algorithm", "ranks", "size", "time_s"}
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise ValueError(f"results file {str(path)!r}: record {i} is not an object")
        missing = need - set(r)
        if missing:
            raise ValueError(f"results file {str(path)!r}: record {i} lacks "
                             f"{', '.join(sorted(missing))}")
        bad = [k for k, ok in (("ranks", _number(r["ranks"]) and r["ranks"] >= 1),
                               ("size", _number(r["size"]) and r["size"] >= 0),
                               ("time_s", _number(r["time_s"]) and r["time_s"] > 0)) if not ok]
        if bad:
            raise ValueError(f"results file {str(path)!r}: record {i} has a bad "
                             + ", ".join(f"{k} ({r[k]!r})" for k in bad))
    env = data.get("environment", {})
    model = None
    if data.get("model") is not None:
        model = model_values(data["model"], f"results file {str(path)!r}: its model")
    return env if isinstance(env, dict) else {}, records, model, data.get("model")


def _simulable(r: dict) -> bool:
    """A project algorithm by name (``native``, the library's call, and ``auto``, whose
    schedule varies by size, are measured only)."""
    return r["algorithm"] not in ("native", "auto") and int(r["size"]) > 0


def _predict(r: dict, params) -> float:
    itemsize = ITEMSIZE.get(str(r.get("dtype", "float")), 1)
    return _predict_cached(str(r["collective"]), str(r["algorithm"]), int(r["ranks"]),
                           int(r["size"]), itemsize, params)


@functools.lru_cache(maxsize=4096)
def _predict_cached(collective: str, algorithm: str, ranks: int, size: int, itemsize: int,
                    params) -> float:
    try:
        return predict(collective, algorithm, ranks, size, params=params,
                       itemsize=itemsize).time_s
    except (ValueError, KeyError) as e:
        raise ValueError(f"cannot simulate {collective}/{algorithm} on {ranks} ranks: "
                         f"{e}") from None


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
        if not _simulable(r):
            row["predicted_s"] = None
            row["error_pct"] = None
        else:
            row["predicted_s"] = _predict(r, params)
            row["error_pct"] = 100.0 * (row["predicted_s"] - r["time_s"]) / r["time_s"]
        out.append(row)
    return out


def auto_choices(records: list[dict], model: dict) -> list[dict]:
    """Per ``auto`` record of a run (``bench --algorithms auto``): the schedule it chose
    (``choice``, a label of :func:`bench.auto.candidates`) re-predicted by ``model``, with its
    error as for a fixed algorithm, and its measured time over the fastest project algorithm
    measured at that size in the same records (``ratio``: what ``bench`` counts within 5%).
    A miss whose choice the model mispriced is the model's; one whose choice was priced right
    and lost to a rival the model also priced right is a close call; one that ran the fastest
    fixed algorithm's own schedule (``same_as_best``, as ``bench`` records it) is the machine's
    noise between identical runs. Where the choice is the identical schedule of fixed
    algorithms measured at that size (``twin``: the one measured closest to auto),
    ``twin_ratio`` is auto's time over the twin's: how far two measurements of one schedule in
    one run lie apart, the floor under any choice's 5%.
    """
    from bench.auto import candidates
    from collectives.plan import movement_digest
    from sim.engine import simulate

    params = model_params("hockney", **model)
    fixed: dict = {}  # the project algorithms measured per (collective, ranks, size)
    for r in records:
        if _simulable(r):
            fixed.setdefault((r["collective"], int(r["ranks"]), int(r["size"])), []).append(r)
    best = {key: min(rs, key=lambda x: x["time_s"]) for key, rs in fixed.items()}
    out = []
    for r in records:
        if r["algorithm"] != "auto" or not r.get("choice") or int(r["size"]) <= 0:
            continue
        coll, ranks, size = r["collective"], int(r["ranks"]), int(r["size"])
        try:
            schedule = dict(candidates(coll, ranks)).get(r["choice"])
        except (ValueError, KeyError):
            schedule = None
        predicted = None if schedule is None else simulate(
            schedule, None, size, params=params,
            itemsize=ITEMSIZE.get(str(r.get("dtype", "float")), 1)).time_s
        rival = best.get((coll, ranks, size))
        twin = None
        if schedule is not None:
            digest = movement_digest(schedule)
            twins_of = [x for x in fixed.get((coll, ranks, size), []) if x["time_s"] > 0
                        and _schedule_key(coll, x["algorithm"], ranks) == digest]
            twin = min(twins_of, key=lambda x: abs(math.log(r["time_s"] / x["time_s"])),
                       default=None)
        out.append({"collective": coll, "ranks": ranks, "size": size, "choice": r["choice"],
                    "time_s": r["time_s"], "predicted_s": predicted,
                    "error_pct": None if predicted is None else
                    100.0 * (predicted - r["time_s"]) / r["time_s"],
                    "best": None if rival is None else rival["algorithm"],
                    "ratio": None if rival is None else r["time_s"] / rival["time_s"],
                    "same_as_best": bool(r.get("same_as_best")),
                    "twin": None if twin is None else twin["algorithm"],
                    "twin_ratio": None if twin is None else r["time_s"] / twin["time_s"]})
    return out


def _auto_lines(rows: list[dict], label: str) -> list[str]:
    """The block of auto's choices: per size its schedule, measured and re-predicted, and
    its time over the best project algorithm's."""
    lines = []
    for coll, ranks in sorted({(r["collective"], r["ranks"]) for r in rows}):
        sel = sorted((r for r in rows if (r["collective"], r["ranks"]) == (coll, ranks)),
                     key=lambda r: r["size"])
        scored = [r for r in sel if r["ratio"] is not None]
        errors = [abs(r["error_pct"]) for r in sel if r["error_pct"] is not None]
        misses = [r for r in scored if r["ratio"] > 1.05]
        head = (f"#   within 5% of the best project algorithm at "
                f"{len(scored) - len(misses)} of {len(scored)} sizes")
        same = sum(r["same_as_best"] for r in misses)
        if same:
            head += (f" ({same} of the {len(misses)} misses ran the best's own schedule, "
                     f"marked =: identical schedules measured apart)")
        paired = [r["twin_ratio"] for r in sel if r.get("twin_ratio") is not None]
        floor = []
        if paired:
            apart = sum(max(x, 1 / x) > 1.05 for x in paired)
            floor = [f"#   the measurement's own floor: at the {len(paired)} sizes where auto "
                     f"ran a fixed algorithm's schedule, the two times of that one schedule lie "
                     f"more than 5% apart at {apart}"]
        if errors:
            head += (f"; its choices predicted with median |error| {np.median(errors):.1f}%, "
                     f"max {max(errors):.1f}%")
        wide = max([20] + [len(r["choice"]) for r in sel])
        lines += [f"# auto's choices, {label}{coll} on {ranks} ranks (each re-predicted by the "
                  f"run's model):", head, *floor,
                  f"#   {'size(B)':>10} {'choice':>{wide}} {'measured':>10} {'predicted':>10} "
                  f"{'error':>7} {'best measured':>20} {'auto/best':>9}"]
        for r in sel:
            pred = "" if r["predicted_s"] is None else f"{r['predicted_s'] * 1e6:8.2f}us"
            err = "" if r["error_pct"] is None else f"{r['error_pct']:+6.1f}%"
            ratio = "" if r["ratio"] is None else f"{r['ratio']:9.3f}"
            off = "  <- off" if r["ratio"] is not None and r["ratio"] > 1.05 else ""
            if off and r["same_as_best"]:
                off += " ="
            lines.append(f"#   {r['size']:>10} {r['choice']:>{wide}} {r['time_s'] * 1e6:8.2f}us "
                         f"{pred:>10} {err:>7} {r['best'] or '':>20} {ratio:>9}{off}")
    return lines


def coefficient_rows(records: list[dict]) -> np.ndarray:
    """``(len(records), 3)``: each record's predicted time per unit of alpha, beta, gamma
    (three predictions with unit parameters; the others at a negligible 1e-30)."""
    units = [Hockney(1.0, _TINY, _TINY), Hockney(_TINY, 1.0, _TINY), Hockney(_TINY, _TINY, 1.0)]
    return np.array([[_predict(r, u) for u in units] for r in records], dtype=float)


def nnls(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``argmin ||A x - b||`` over ``x >= 0`` for a few columns: the least-squares solution on
    every subset of free variables, the best feasible one kept (exact: the optimum is the
    unconstrained solution on its own support).

    >>> nnls(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([2.0, -1.0])).tolist()
    [2.0, 0.0]
    """
    A = np.asarray(A, float)
    b = np.asarray(b, float)
    k = A.shape[1]
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1.0
    As = A / scale  # columns of unit norm: alpha's and beta's coefficients differ by 1e6+
    best, best_r = np.zeros(k), float(np.linalg.norm(b))
    for n in range(1, k + 1):
        for idx in itertools.combinations(range(k), n):
            sol, *_ = np.linalg.lstsq(As[:, idx], b, rcond=None)
            if np.any(sol <= 0):
                continue
            y = np.zeros(k)
            y[list(idx)] = sol
            r = float(np.linalg.norm(As @ y - b))
            if r < best_r:
                best, best_r = y, r
    return best / scale


def fit_records(records: list[dict]) -> tuple[dict, dict]:
    """Fit (alpha, beta, gamma) >= 0 to the simulable records, minimising the relative error
    ``(predicted - measured) / measured``; return (parameters, fit information)."""
    use = [r for r in records if _simulable(r)]
    if not use:
        raise ValueError("--fit: no records of a project algorithm with a size > 0 to fit to")
    A = coefficient_rows(use)
    t = np.array([float(r["time_s"]) for r in use])
    theta = nnls(A / t[:, None], np.ones_like(t))
    notes = []
    for i, name in enumerate(PARAMS):
        if theta[i] <= 0:
            notes.append(f"{name} is pinned at 0 by the non-negativity constraint")
    if theta[1] <= 0:  # the simulator needs beta > 0
        theta[1] = 1e-15
        notes[-1] += "; written as 1e-15 s/B (the simulator needs beta > 0)"
    linear = A @ theta
    params = dict(zip(PARAMS, (float(x) for x in theta), strict=True))
    pred = np.array([_predict(r, Hockney(*theta)) for r in use])
    rel = (pred - t) / t
    info = {
        "points": len(use),
        "median_abs_error_pct": float(np.median(np.abs(rel)) * 100),
        "max_abs_error_pct": float(np.max(np.abs(rel)) * 100),
        "rms_rel_error": float(np.sqrt(np.mean(rel**2))),
        # how far the simulator's time strays from the linear form (0: exactly linear)
        "max_linearity_deviation": float(np.max(np.abs(pred - linear) / pred)),
        "notes": notes,
    }
    return params, info


def _stats(rows: list[dict], key: str) -> tuple[float, float, int] | None:
    errors = np.array([abs(r[key]) for r in rows if r.get(key) is not None])
    if not errors.size:
        return None
    return float(np.median(errors)), float(errors.max()), int(errors.size)


def _describe(model: dict) -> str:
    beta = model["beta"]
    bw = f"({1 / beta / 1e9:.2f} GB/s)" if beta > 1e-14 else "(pinned at ~0)"
    return (f"alpha={model['alpha'] * 1e6:.2f} us, beta={beta * 1e9:.3f} ns/B {bw}, "
            f"gamma={model.get('gamma', 0) * 1e9:.3f} ns/B")


def _figures(rows, env, out, model, fitted) -> list[Path]:
    figures = []
    host = env.get("host", "this machine")
    for (coll, ranks) in sorted({(r["collective"], r["ranks"]) for r in rows}):
        sel = [r for r in rows if r["collective"] == coll and r["ranks"] == ranks]
        sizes = sorted({r["size"] for r in sel if r["size"] > 0})
        measured, predicted, refit = {}, {}, {}
        for algo in sorted({r["algorithm"] for r in sel}):
            by_size = {r["size"]: r for r in sel if r["algorithm"] == algo}
            if not all(s in by_size for s in sizes):
                continue
            measured[algo] = [by_size[s]["time_s"] for s in sizes]
            if algo != "native":
                if model is not None:
                    predicted[algo] = [by_size[s]["predicted_s"] for s in sizes]
                if fitted is not None:
                    refit[algo] = [by_size[s]["fitted_s"] for s in sizes]
        if not sizes:
            continue
        if model is not None:
            figures.append(plots.plot_predicted_vs_measured(
                sizes, measured, predicted, out / f"predicted-vs-measured-{coll}-{ranks}",
                f"{coll} on {ranks} ranks, {host}: measured (lines) vs Hockney prediction "
                f"(dashed), calibrated\n{_describe(model)}"))
        if fitted is not None:
            figures.append(plots.plot_predicted_vs_measured(
                sizes, measured, refit, out / f"fitted-vs-measured-{coll}-{ranks}",
                f"{coll} on {ranks} ranks, {host}: measured (lines) vs Hockney prediction "
                f"(dashed), fitted to these records\n{_describe(fitted)}"))
    return figures


SPLIT = 64 << 10  # errors are summarised below and from 64 KiB
#: The two parts a summary splits into: name, which sizes.
_PARTS = (("small", lambda size: size < SPLIT), ("large", lambda size: size >= SPLIT))
#: Their short labels in the lines over several runs.
_SHORT = (("small", "<64K"), ("large", ">=64K"))


@functools.lru_cache(maxsize=1024)
def _schedule_key(collective: str, algorithm: str, ranks: int) -> str:
    from collectives import build
    from collectives.plan import movement_digest

    try:
        return movement_digest(build(collective, algorithm, ranks))
    except (ValueError, KeyError):
        return f"{collective}/{algorithm}"


def _same_schedule(rows: list[dict]) -> list[dict]:
    """Rows of one size merged where their algorithms build the identical schedule (on 2 ranks
    ring, rabenseifner and hierarchical are one exchange of halves): one candidate named
    ``ring=rabenseifner=hierarchical``, whose measured time is its members' median and whose
    prediction is theirs. Which of them a run measured fastest is the machine's noise, not a
    choice the model could make, so the winner check scores the schedule, not the name."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(_schedule_key(r["collective"], r["algorithm"], int(r["ranks"])),
                          []).append(r)
    out = []
    for members in groups.values():
        merged = dict(members[0])
        merged["algorithm"] = "=".join(m["algorithm"] for m in members)
        merged["time_s"] = float(np.median([m["time_s"] for m in members]))
        for k in ("predicted_s", "fitted_s"):
            if members[0].get(k) is not None:
                merged[k] = min(m[k] for m in members)
        out.append(merged)
    return out


def accuracy(rows: list[dict], key: str = "predicted_s") -> list[dict]:
    """Per (collective, ranks): median and max |error| below and from :data:`SPLIT`, and per
    size whether the predicted winner (fastest by ``key``) is the measured one, or within 5%
    of the measured best (over the project algorithms measured at that size, algorithms that
    build the identical schedule merged into one candidate: :func:`_same_schedule`)."""
    err = "error_pct" if key == "predicted_s" else "fitted_error_pct"
    out = []
    for coll, ranks in sorted({(r["collective"], r["ranks"]) for r in rows}):
        sel = [r for r in rows if r["collective"] == coll and r["ranks"] == ranks
               and r.get(key) is not None]
        if not sel:
            continue
        entry = {"collective": coll, "ranks": ranks}
        for part, keep in _PARTS:
            signed = [r[err] for r in sel if keep(r["size"])]
            e = [abs(x) for x in signed]
            entry[part] = ({"median": float(np.median(e)), "max": float(np.max(e)),
                            "points": len(e), "signed_median": float(np.median(signed)),
                            "predicted_fast": sum(x < 0 for x in signed)} if e else None)
        winners = []
        for size in sorted({r["size"] for r in sel}):
            groups = _same_schedule([r for r in sel if r["size"] == size])
            measured = min(groups, key=lambda g: g["time_s"])
            chosen = min(groups, key=lambda g: g[key])
            winners.append({"size": size, "measured": measured["algorithm"],
                            "predicted": chosen["algorithm"],
                            "ratio": chosen["time_s"] / measured["time_s"]})
        entry["winners"] = winners
        entry["winner_within_5pct"] = sum(w["ratio"] <= 1.05 for w in winners)
        out.append(entry)
    return out


#: A part of a run whose errors lean one way at least this often, by at least this much
#: (median signed error, percent), across every algorithm: more likely the machine than the
#: model (on the AMD VM, 4 ranks, three runs whose sweeps ran slower than their own
#: calibrations: every algorithm 20-50% under its prediction from 64 KiB to 2 MiB, and the
#: library's own MPI_Allreduce of 1 MiB 1.3-2x its time in the good runs).
ONE_WAY_SHARE, ONE_WAY_PCT = 0.8, 10.0


def _one_way(part: dict) -> str | None:
    """The line saying that a part's errors lean one way (see :data:`ONE_WAY_SHARE`), or None.

    >>> _one_way({"points": 10, "predicted_fast": 9, "signed_median": -20.0})[:60]
    'predicted fast at 9 of 10 points (median signed error -20.0%'
    >>> _one_way({"points": 10, "predicted_fast": 5, "signed_median": -1.0}) is None
    True
    """
    n, fast, m = part["points"], part["predicted_fast"], part["signed_median"]
    if m <= -ONE_WAY_PCT and fast >= ONE_WAY_SHARE * n:
        return (f"predicted fast at {fast} of {n} points (median signed error {m:+.1f}%): the "
                f"run leans one way, as when the machine ran the sweep slower than its "
                f"calibration (compare native across runs)")
    slow = n - fast
    if m >= ONE_WAY_PCT and slow >= ONE_WAY_SHARE * n:
        return (f"predicted slow at {slow} of {n} points (median signed error {m:+.1f}%): the "
                f"run leans one way, as when the machine ran the sweep faster than its "
                f"calibration (compare native across runs)")
    return None


def _accuracy_lines(acc: list[dict], label: str, lean: bool = True) -> list[str]:
    """The accuracy block; ``lean``: with the line where a part leans one way (a fit to the
    records themselves has no calibration to differ from)."""
    lines = []
    for a in acc:
        lines.append(f"# {label}, {a['collective']} on {a['ranks']} ranks:")
        for part, text in (("small", "< 64 KiB"), ("large", ">= 64 KiB")):
            s = a[part]
            if s:
                lines.append(f"#   {text:>9}: median |error| {s['median']:5.1f}%, max "
                             f"{s['max']:5.1f}% over {s['points']} points")
                one_way = _one_way(s) if lean else None
                if one_way:
                    lines.append(f"#   {'':>9}  {one_way}")
        w = a["winners"]
        lines.append(f"#   predicted winner's measured time within 5% of the measured best at "
                     f"{a['winner_within_5pct']} of {len(w)} sizes")
        wide = max([20] + [len(x[k]) for x in w for k in ("measured", "predicted")])
        lines.append(f"#   {'size(B)':>10} {'measured winner':>{wide}} "
                     f"{'predicted winner':>{wide}} {'its time/best':>13}")
        lines += [f"#   {x['size']:>10} {x['measured']:>{wide}} {x['predicted']:>{wide}} "
                  f"{x['ratio']:>13.3f}{'' if x['ratio'] <= 1.05 else '  <- off'}" for x in w]
    return lines


def repeatability(rows: list[dict]) -> list[dict]:
    """Per (collective, ranks), below and from :data:`SPLIT`: how far the runs' measured
    times of one (algorithm, size) lie apart, as slowest/fastest over the runs (median and
    max over the project algorithms' points measured in at least 2 runs). The floor under
    a calibrated-once model's error: it cannot be within 10% of runs that lie 1.5x apart.

    >>> rows = [{"collective": "allreduce", "ranks": 2, "algorithm": "ring", "size": 8,
    ...          "time_s": t, "run": i} for i, t in enumerate((1.0, 1.5, 1.2))]
    >>> repeatability(rows)[0]["small"]
    {'median': 1.5, 'max': 1.5, 'points': 1}
    """
    times: dict = {}
    for r in rows:
        if _simulable(r):
            key = (r["collective"], r["ranks"], r["algorithm"], r["size"])
            times.setdefault(key, []).append(r["time_s"])
    out = []
    for coll, ranks in sorted({k[:2] for k in times}):
        entry = {"collective": coll, "ranks": ranks}
        for part, keep in _PARTS:
            ratio = [max(t) / min(t) for k, t in times.items()
                     if k[:2] == (coll, ranks) and keep(k[3]) and len(t) > 1 and min(t) > 0]
            entry[part] = ({"median": float(np.median(ratio)), "max": float(np.max(ratio)),
                            "points": len(ratio)} if ratio else None)
        if entry["small"] or entry["large"]:
            out.append(entry)
    return out


def twins(rows: list[dict]) -> list[dict]:
    """Per (collective, ranks), below and from :data:`SPLIT`: how far algorithms that build
    the identical schedule (:func:`_same_schedule`; on 2 ranks ring, rabenseifner and
    hierarchical) lie apart when measured in the same run at the same size, as slowest /
    fastest (median and max over such groups), and which algorithms they are. Nothing tells
    them apart but the measurement, so this is its floor within one run (before buffers had
    one backing, 1.1-1.4x from 4 MiB: docs/calibration.md).

    >>> rows = [{"collective": "allreduce", "ranks": 2, "algorithm": a, "size": 8,
    ...          "time_s": t, "run": 0} for a, t in (("ring", 1.0), ("hierarchical", 1.2),
    ...                                               ("recursive-doubling", 5.0))]
    >>> t = twins(rows)[0]
    >>> t["small"], t["groups"]
    ({'median': 1.2, 'max': 1.2, 'points': 1}, ['ring=hierarchical'])
    """
    cells: dict = {}
    for r in rows:
        if _simulable(r):
            cells.setdefault((r["collective"], r["ranks"], r.get("run", 0), r["size"]),
                             []).append(r)
    ratios: dict = {}
    names: dict = {}
    for (coll, ranks, _, size), members in cells.items():
        groups: dict = {}
        for r in members:
            groups.setdefault(_schedule_key(coll, r["algorithm"], int(ranks)), []).append(r)
        for g in groups.values():
            t = [r["time_s"] for r in g]
            if len(g) > 1 and min(t) > 0:
                ratios.setdefault((coll, ranks), []).append((size, max(t) / min(t)))
                names.setdefault((coll, ranks), set()).add("=".join(r["algorithm"] for r in g))
    out = []
    for (coll, ranks), got in sorted(ratios.items()):
        entry = {"collective": coll, "ranks": ranks, "groups": sorted(names[(coll, ranks)])}
        for part, keep in _PARTS:
            v = [x for size, x in got if keep(size)]
            entry[part] = ({"median": float(np.median(v)), "max": float(np.max(v)),
                            "points": len(v)} if v else None)
        out.append(entry)
    return out


def _twins_lines(tw: list[dict]) -> list[str]:
    lines = ["# identical schedules measured in the same run (slowest/fastest of each group; "
             "only the measurement tells them apart):"]
    for a in tw:
        parts = [f"{text} median {a[part]['median']:.2f}x, max {a[part]['max']:.2f}x"
                 for part, text in _SHORT if a[part]]
        lines.append(f"#   {a['collective']} on {a['ranks']} ranks "
                     f"({', '.join(a['groups'])}): " + "; ".join(parts))
    return lines


def _repeatability_lines(rep: list[dict], runs: int) -> list[str]:
    lines = [f"# measured repeatability over the {runs} runs (slowest/fastest run of each "
             f"algorithm and size; a model calibrated once cannot be closer to every run):"]
    for a in rep:
        parts = [f"{text} median {a[part]['median']:.2f}x, max {a[part]['max']:.2f}x"
                 for part, text in _SHORT if a[part]]
        lines.append(f"#   {a['collective']} on {a['ranks']} ranks: " + "; ".join(parts))
    return lines


def _spread_lines(per_run: list[list[dict]]) -> list[str]:
    """Across runs: each figure's median over the runs and its range (the spread)."""
    lines = [f"# over {len(per_run)} runs (median of the runs' figures, [min .. max]):"]
    keyed: dict = {}
    for acc in per_run:
        for a in acc:
            keyed.setdefault((a["collective"], a["ranks"]), []).append(a)
    for (coll, ranks), accs in sorted(keyed.items()):
        parts = []
        for part, text in _SHORT:
            for stat in ("median", "max"):
                v = [a[part][stat] for a in accs if a[part]]
                if v:
                    parts.append(f"{text} {stat} {np.median(v):.1f}% [{min(v):.1f} .. "
                                 f"{max(v):.1f}]")
        ok = [a["winner_within_5pct"] / max(len(a["winners"]), 1) * 100 for a in accs]
        parts.append(f"winner within 5% at {np.median(ok):.0f}% of sizes [{min(ok):.0f} .. "
                     f"{max(ok):.0f}]")
        lines.append(f"#   {coll} on {ranks} ranks: " + "; ".join(parts))
    return lines


def written_penalty(model_doc) -> float | None:
    """How many times the clean crowd step a crowd step of written data took in a model's
    calibration: the median over its sizes from 64 KiB (``bench calibrate``'s forwarding
    shift against its shift); None where the document lacks them. A machine whose speed of
    written data switches shows it here first (docs/calibration.md).

    >>> m = {"ranks": 2, "inplace": False, "measurements": {"sizes": [4, 65536, 131072],
    ...      "crowd_exchange_s": [1.0, 2.0, 4.0], "crowd_forward_s": [2.0, 8.0, 16.0]}}
    >>> written_penalty(m)
    3.0
    """
    from bench.calibrate import forward_step_times

    m = model_doc.get("measurements") if isinstance(model_doc, dict) else None
    try:
        sizes, crowd, fwd = m["sizes"], m["crowd_exchange_s"], m["crowd_forward_s"]
        # files from before the "inplace" field ran the forwarding shift in place
        steps = forward_step_times(fwd, crowd, int(model_doc["ranks"]),
                                   bool(model_doc.get("inplace", True)))
        ratios = [w / c for s, w, c in zip(sizes, steps, crowd, strict=True)
                  if s >= 64 << 10 and c > 0]
    except (KeyError, TypeError, ValueError):
        return None
    return float(np.median(ratios)) if ratios else None


def _penalty_lines(model_docs: list) -> list[str]:
    """One line where the runs' calibrations (their model documents) disagree 2x or more on
    written data."""
    found = []
    for i, doc in enumerate(model_docs):
        w = written_penalty(doc)
        if w is None:
            return []
        found.append((w, i + 1))
    if len(found) < 2 or max(found)[0] < 2 * min(found)[0]:
        return []
    runs = ", ".join(f"{w:.1f}x (run {i})" for w, i in sorted(found))
    return [f"# the runs' calibrations disagree on data the sender wrote: a crowd step of it "
            f"from 64 KiB took {runs} the clean one; a machine whose speed of written data "
            f"switches (docs/calibration.md): the runs' predictions of steps that send such "
            f"data differ as much"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench report",
        description="Predicted (simulator, calibrated model) against measured (bench --json); "
                    "--fit adds a model fitted to the records themselves, labelled as a fit.")
    parser.add_argument("results", nargs="+",
                        help="JSON written by 'python -m bench --json FILE' (several: one per "
                             "run, summarised with their spread)")
    parser.add_argument("--model-file",
                        help="JSON from 'python -m bench calibrate --out' for every run; "
                             "without it each run is predicted with the model it measured "
                             "itself ('python -m bench --calibrate')")
    parser.add_argument("--fit", action="store_true",
                        help="also fit alpha, beta, gamma to the records (relative least "
                             "squares, non-negative): a curve fit, not a prediction; writes "
                             "OUT/fitted-model.json")
    parser.add_argument("--out", default="report/measured",
                        help="output directory (default: report/measured)")
    args = parser.parse_args(argv)
    runs = []
    model_docs = []  # each run's model document as written (for _penalty_lines)
    try:
        model = load_model_file(args.model_file) if args.model_file else None
        for path in args.results:
            env, records, own, doc = _read_run(path)
            runs.append((path, env, records, model if model is not None else own))
            model_docs.append(doc)
    except ValueError as e:
        print(f"python -m bench report: {e}", file=sys.stderr)
        return 2
    lacking = [path for path, *_, m in runs if m is None]
    if lacking and not args.fit:
        print(f"python -m bench report: {', '.join(map(repr, lacking))} "
              f"{'carries' if len(lacking) == 1 else 'carry'} no model of "
              f"{'its' if len(lacking) == 1 else 'their'} own: give --model-file FILE (from "
              f"'python -m bench calibrate'), measure with "
              f"'python -m bench --calibrate --json FILE', or use --fit",
              file=sys.stderr)
        return 2
    in_run = model is None and not lacking
    model = model if model is not None else (runs[0][3] if not lacking else None)
    runs = [(path, env, records, m if not lacking else None) for path, env, records, m in runs]
    if model is not None and not in_run:
        from bench.calibrate import model_mismatches

        for path, env, records, _ in runs:
            for line in model_mismatches(args.model_file, env.get("host"), env.get("library"),
                                         {int(r["ranks"]) for r in records},
                                         {bool(r["inplace"]) for r in records
                                          if isinstance(r.get("inplace"), bool | int)}):
                print(f"python -m bench report: warning: {line} ({path})", file=sys.stderr)
    try:
        per_run = []
        per_run_auto = []
        all_rows = []
        for i, (_, _env, records, run_model) in enumerate(runs):
            rows = compare(records, run_model) if run_model is not None else [
                {**{k: r[k] for k in ("collective", "algorithm", "ranks", "size", "time_s")},
                 "dtype": r.get("dtype", "float")} for r in records]
            for r in rows:
                r["run"] = i
            all_rows += rows
            if run_model is not None:
                per_run.append(accuracy(rows))
                per_run_auto.append(auto_choices(records, run_model))
        records = [r for _, _, rec, _ in runs for r in rec]
        env = runs[0][1]
        rows = all_rows
        fitted = fit_info = None
        if args.fit:
            fitted, fit_info = fit_records(records)
            fparams = model_params("hockney", **fitted)
            for r in rows:
                if _simulable(r):
                    r["fitted_s"] = _predict(r, fparams)
                    r["fitted_error_pct"] = 100.0 * (r["fitted_s"] - r["time_s"]) / r["time_s"]
                else:
                    r["fitted_s"] = r["fitted_error_pct"] = None
    except ValueError as e:
        print(f"python -m bench report: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    first = [r for r in rows if r["run"] == 0]
    figures = _figures(first, env, out, model, fitted)
    calibrated = _stats(rows, "error_pct")
    refit = _stats(rows, "fitted_error_pct")
    summary = []
    if calibrated:
        which = ("each run's own calibrated model (bench --calibrate; run 1: "
                 f"{_describe(model)})" if in_run else f"calibrated model ({_describe(model)})")
        summary.append(f"{which}: median |error| "
                       f"{calibrated[0]:.1f}%, max {calibrated[1]:.1f}% over {calibrated[2]} "
                       f"points")
    if refit:
        summary.append(f"FIT to these very records, not a prediction ({_describe(fitted)}): "
                       f"median |error| {refit[0]:.1f}%, max {refit[1]:.1f}% over {refit[2]} "
                       f"points")
    if fitted is not None:
        doc = {**fitted, "units": {"alpha": "s", "beta": "s/byte", "gamma": "s/byte"},
               "method": "non-negative least squares of the simulator's Hockney prediction "
                         "(fully connected) to measured records, weighted by 1/measured: a "
                         "curve fit to the records, not a calibration",
               "source": list(args.results),
               "ranks": sorted({int(r["ranks"]) for r in records}),
               "residuals": fit_info, "calibrated": model, "environment": env}
        from bench.calibrate import write_model

        write_model(out / "fitted-model.json", doc)
    accuracy_lines = []
    for i, acc in enumerate(per_run):
        label = "calibrated prediction" + (f", run {i + 1} ({args.results[i]})"
                                           if len(per_run) > 1 else "")
        accuracy_lines += _accuracy_lines(acc, label)
        if per_run_auto[i]:
            accuracy_lines += _auto_lines(per_run_auto[i], f"run {i + 1}, "
                                          if len(per_run) > 1 else "")
    rep = repeatability(rows) if len(runs) > 1 else []
    if len(per_run) > 1:
        accuracy_lines += _spread_lines(per_run)
        if in_run:
            accuracy_lines += _penalty_lines(model_docs)
    if rep:
        accuracy_lines += _repeatability_lines(rep, len(runs))
    tw = twins(rows)
    if tw:
        accuracy_lines += _twins_lines(tw)
    if fitted is not None:
        accuracy_lines += _accuracy_lines(accuracy(first, "fitted_s"),
                                          "FIT (not a prediction), run 1", lean=False)
    (out / "comparison.json").write_text(json.dumps(
        {"model": model, "fitted_model": fitted, "fit": fit_info, "environment": env,
         "accuracy": per_run, "auto": per_run_auto, "repeatability": rep, "twins": tw,
         "rows": rows}, indent=1, default=list))

    def cell(r, label, key, err):
        if r.get(key) is None:
            return ""
        return f"  {label} {r[key] * 1e6:10.2f} us  error {r[err]:+7.1f}%"

    lines = [(f"run {r['run'] + 1} " if len(runs) > 1 else "")
             + f"{r['algorithm']:<20} {r['ranks']:>3} ranks {r['size']:>10} B  measured "
             f"{r['time_s'] * 1e6:10.2f} us"
             + cell(r, "predicted", "predicted_s", "error_pct")
             + cell(r, "FIT", "fitted_s", "fitted_error_pct")
             for r in rows if _simulable(r)]
    page = ["<!doctype html><html><head><meta charset='utf-8'><title>Predicted vs measured"
            "</title></head><body style='font-family:system-ui;max-width:1000px;margin:2em "
            "auto'>", "<h1>Predicted against measured</h1>",
            f"<p>Environment: {html.escape(json.dumps(env))}</p>",
            f"<p>Calibrated model: {html.escape(json.dumps(model, default=list))}</p>"
            if model else "",
            *(f"<p>{html.escape(s)}.</p>" for s in summary),
            *(f"<img src='{f.name}' style='max-width:100%'>" for f in figures),
            "<pre>" + html.escape("\n".join(lines + accuracy_lines)) + "</pre></body></html>"]
    (out / "index.html").write_text("\n".join(page))
    print("\n".join(lines))
    for line in accuracy_lines:
        print(line)
    for s in summary:
        print(f"# {s}")
    if fitted is not None:
        print(f"# wrote {out / 'fitted-model.json'}")
    print(f"report: {out / 'index.html'} ({len(figures)} figure(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
