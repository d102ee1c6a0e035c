"""``python -m bench tuned --table FILE``: native MPI with an exported tuning table and without.

The closed loop of ``python -m sim tune``: the MPI library reads a tuning table only at
``MPI_Init``, so each variant is its own ``mpiexec -n RANKS python -m bench sweep --algorithms
native`` (the mpiexec beside this Python, as the tests use it), and the variants run
interleaved ``--repeat`` times, each size's fastest run kept (noise only adds time):

``default``
    the library as installed, nothing set;
``csel-default`` (MPICH)
    MPICH's own selection tree on the path the table takes
    (``MPIR_CVAR_DEVICE_COLLECTIVES=none``, no table): the like-for-like baseline;
``table``
    the exported table loaded (MPICH: ``MPIR_CVAR_COLL_SELECTION_TUNING_JSON_FILE`` with
    ``MPIR_CVAR_DEVICE_COLLECTIVES=none``; Open MPI: ``coll_tuned_use_dynamic_rules`` and
    ``coll_tuned_dynamic_rules_filename``);
``forced-table`` and ``forced-setting`` (with ``--force ALG``)
    a table that selects ALG at every size, written here in the table's own format, against
    the library's own switch for that algorithm (MPICH: ``MPIR_CVAR_<COLL>_INTRA_ALGORITHM``;
    Open MPI: ``coll_tuned_<coll>_algorithm``): equal times show that the library applies the
    table.

The library is told by ``mpiexec --version`` (HYDRA: MPICH; otherwise Open MPI) and the table's
format by its contents; they must match. Running as root under Open MPI sets
``OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM)``; more ranks than cores sets oversubscription and
``mpi_yield_when_idle`` unless already set. Prints one row per size (times in us, ratios, and
``#wrong`` summed over every run) and returns ``{"library", "ranks", "rows": [...]}``; ``--json
FILE`` writes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench._common import BenchError, Parser, UsageError, parse_size

__all__ = ["library_of_mpiexec", "main", "table_format", "variant_env"]

ROOT = Path(__file__).resolve().parent.parent
_COLLECTIVES = ("allreduce", "allgather")


def _mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if not found:
        raise BenchError("no mpiexec beside this Python or on PATH")
    return found


def library_of_mpiexec(mpiexec: str) -> str:
    """``"mpich"`` or ``"openmpi"``, from ``mpiexec --version``."""
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BenchError(f"cannot run {mpiexec} --version: {e}") from None
    text = out.stdout + out.stderr
    if "HYDRA" in text or "mpich" in text.lower():
        return "mpich"
    if "open mpi" in text.lower() or "prte" in text.lower() or "openrte" in text.lower():
        return "openmpi"
    raise BenchError(f"cannot tell which MPI {mpiexec} belongs to: {text.strip()[:80]!r}")


def table_format(path: str | Path) -> str:
    """``mpich``, ``openmpi`` (classic) or ``openmpi-json``, from the file's contents."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"argument --table: cannot read {str(path)!r}: {e.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and "collectives" in doc:
        return "openmpi-json"
    if isinstance(doc, dict) and any(str(k).startswith("collective=") for k in doc):
        return "mpich"
    body = [ln.split("#")[0].strip() for ln in text.splitlines()]
    body = [ln for ln in body if ln]
    if body and "," in body[0]:
        raise UsageError("argument --table: an NCCL tuner file is loaded by NCCL, not by MPI "
                         "(python -m bench sweep --backend nccl on GPUs)")
    if body and all(tok.lstrip("-").isdigit() for ln in body for tok in ln.split()):
        return "openmpi"
    raise UsageError(f"argument --table: {str(path)!r} is no Open MPI rules file and no MPICH "
                     f"selection JSON (write one with python -m sim tune --format ...)")


def variant_env(library: str, collective: str, table: str | None = None,
                force: str | None = None) -> dict[str, str]:
    """Environment that loads ``table`` or forces the library's algorithm ``force`` (its
    MPICH name or Open MPI id)."""
    env: dict[str, str] = {}
    if library == "mpich":
        if table or force:
            env["MPIR_CVAR_DEVICE_COLLECTIVES"] = "none"
        if table:
            env["MPIR_CVAR_COLL_SELECTION_TUNING_JSON_FILE"] = str(table)
        if force:
            name = {"allreduce": "ALLREDUCE", "allgather": "ALLGATHER",
                    "reducescatter": "REDUCE_SCATTER"}[collective]
            env[f"MPIR_CVAR_{name}_INTRA_ALGORITHM"] = str(force)
        return env
    if table or force:
        env["OMPI_MCA_coll_tuned_use_dynamic_rules"] = "1"
    if table:
        env["OMPI_MCA_coll_tuned_dynamic_rules_filename"] = str(table)
    if force:
        name = {"allreduce": "allreduce", "allgather": "allgather",
                "reducescatter": "reduce_scatter"}[collective]
        env[f"OMPI_MCA_coll_tuned_{name}_algorithm"] = str(force)
    return env


def _base_env(library: str, ranks: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("MPIR_CVAR_CH4_PROGRESS_THROTTLE", "1")
    if library == "openmpi":
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
            env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        if ranks > (os.cpu_count() or 1):
            env.setdefault("PRTE_MCA_rmaps_default_mapping_policy", ":oversubscribe")
            env.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
    return env


def _forced_file(fmt: str, library: str, collective: str, ranks: int, algorithm: str,
                 directory: str) -> tuple[str, str]:
    """(path of a table selecting ``algorithm`` at every size, the library's name/id)."""
    from sim.export import write_atomic
    from sim.export.mapping import candidates
    from sim.export.mpich import mpich_json
    from sim.export.openmpi import openmpi_classic, openmpi_json
    from sim.tune import Band, TuneTable

    lib = candidates(library, collective, ranks)
    if algorithm not in lib:
        raise UsageError(f"argument --force: {library} runs no {collective} {algorithm!r} "
                         f"on {ranks} ranks that we model; use one of {', '.join(lib)}")
    table = TuneTable(collective, library, (ranks,), {},
                      {ranks: (Band(algorithm, (0,), None, None),)}, {ranks: (algorithm,)})
    text = {"mpich": mpich_json, "openmpi": openmpi_classic,
            "openmpi-json": openmpi_json}[fmt](table)
    path = write_atomic(Path(directory) / f"forced-{algorithm}.{fmt}", text)
    ident = lib[algorithm].name if library == "mpich" else lib[algorithm].ident
    return str(path), str(ident)


def make_parser() -> Parser:
    p = Parser(prog="python -m bench tuned",
               description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--table", required=True, help="the exported table (MPICH JSON or Open "
                   "MPI rules) for the library beside this Python")
    p.add_argument("--force", metavar="ALG", help="also compare a table forcing ALG (our "
                   "name, e.g. ring) with the library's own setting for it")
    p.add_argument("--ranks", type=int, default=4, help="mpiexec -n (default 4)")
    p.add_argument("--collective", default="allreduce", choices=_COLLECTIVES,
                   help="allreduce (default) or allgather")
    p.add_argument("-b", "--minbytes", type=parse_size, default=8, metavar="SIZE")
    p.add_argument("-e", "--maxbytes", type=parse_size, default=4 << 20, metavar="SIZE")
    p.add_argument("-f", "--stepfactor", type=float, default=4.0)
    p.add_argument("-n", "--iters", type=int, default=20)
    p.add_argument("-w", "--warmup_iters", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3, help="interleaved runs of every variant; "
                   "the fastest per size is kept (default 3)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per mpiexec run")
    p.add_argument("--json", metavar="FILE", help="write the rows as JSON")
    return p


def _run(mpiexec, ranks, a, env, out_json) -> list[dict]:
    cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "bench", "sweep", "--algorithms",
           "native", "--collective", a.collective, "-b", str(a.minbytes), "-e",
           str(a.maxbytes), "-f", str(a.stepfactor), "-n", str(a.iters), "-w",
           str(a.warmup_iters), "--json", out_json]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT),
                              timeout=a.timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"mpiexec run outlived --timeout {a.timeout:g} s") from None
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise BenchError(f"mpiexec failed (status {proc.returncode}): {' | '.join(tail)}")
    return json.loads(Path(out_json).read_text())["records"]


def tuned(args: list[str] | None = None, verbose: bool = True) -> dict:
    """Run the variants (see the module docstring) and return the rows."""
    a = make_parser().parse_args(args)
    if a.ranks < 2 or a.repeat < 1 or a.iters < 1:
        raise UsageError("--ranks must be >= 2, --repeat and -n >= 1")
    mpiexec = _mpiexec()
    library = library_of_mpiexec(mpiexec)
    fmt = table_format(a.table)
    if (fmt == "mpich") != (library == "mpich"):
        raise UsageError(f"argument --table: a {fmt} table, but {mpiexec} is "
                         f"{'MPICH' if library == 'mpich' else 'Open MPI'}")
    base = _base_env(library, a.ranks)
    best: dict[str, dict[int, float]] = {}
    wrong: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        variants = {"default": {}, "table": variant_env(library, a.collective,
                                                          table=Path(a.table).resolve())}
        if library == "mpich":  # MPICH's own tree on the path the table takes
            variants["csel-default"] = {"MPIR_CVAR_DEVICE_COLLECTIVES": "none"}
        forced = None
        if a.force:
            path, forced = _forced_file(fmt, library, a.collective, a.ranks,
                                        a.force.strip().lower().replace("_", "-"), tmp)
            variants["forced-table"] = variant_env(library, a.collective, table=path)
            variants["forced-setting"] = variant_env(library, a.collective, force=forced)
        for rep in range(a.repeat):
            for name, extra in variants.items():
                records = _run(mpiexec, a.ranks, a, {**base, **extra},
                               str(Path(tmp) / f"{name}-{rep}.json"))
                for r in records:
                    size = int(r["size"])
                    cur = best.setdefault(name, {})
                    cur[size] = min(cur.get(size, float("inf")), float(r["time_s"]))
                    wrong[size] = wrong.get(size, 0) + int(r["wrong"] or 0)
    rows = []
    for size in sorted(best["default"]):
        row = {"size": size, **{f"{v}_s": best[v].get(size) for v in variants}}
        row["table_over_default"] = row["table_s"] / row["default_s"]
        if "csel-default" in variants:
            row["table_over_csel_default"] = row["table_s"] / row["csel-default_s"]
        if forced is not None:
            row["forced_table_over_setting"] = row["forced-table_s"] / row["forced-setting_s"]
            row["forced_over_default"] = row["forced-table_s"] / row["default_s"]
        row["wrong"] = wrong[size]
        rows.append(row)
    result = {"library": library, "mpiexec": mpiexec, "ranks": a.ranks,
              "collective": a.collective, "table": str(a.table), "format": fmt,
              "force": a.force, "forced_ident": forced, "repeat": a.repeat, "rows": rows}
    if verbose:
        print("\n".join(_lines(result)))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


def _lines(res: dict) -> list[str]:
    lib = "MPICH" if res["library"] == "mpich" else "Open MPI"
    lines = [f"# {lib} ({res['mpiexec']}), {res['ranks']} ranks, native {res['collective']}; "
             f"table {res['table']} ({res['format']}); best of {res['repeat']} interleaved "
             f"runs per variant"]
    csel = bool(res["rows"]) and "csel-default_s" in res["rows"][0]
    head = f"#{'size(B)':>11} {'default(us)':>12} {'table(us)':>12} {'table/def':>9}"
    if csel:
        head += f" {'csel-def(us)':>12} {'table/csel':>10}"
    if res["force"]:
        lines.append(f"# forced: {res['force']} (library: {res['forced_ident']}) by a table "
                     f"and by the library's own setting")
        head += f" {'forced-table':>12} {'forced-set':>12} {'ftab/fset':>9} {'ftab/def':>9}"
    lines.append(head + f" {'#wrong':>7}")
    for r in res["rows"]:
        line = (f"{r['size']:>12} {r['default_s'] * 1e6:>12.2f} {r['table_s'] * 1e6:>12.2f} "
                f"{r['table_over_default']:>9.2f}")
        if csel:
            line += (f" {r['csel-default_s'] * 1e6:>12.2f} "
                     f"{r['table_over_csel_default']:>10.2f}")
        if res["force"]:
            line += (f" {r['forced-table_s'] * 1e6:>12.2f} {r['forced-setting_s'] * 1e6:>12.2f}"
                     f" {r['forced_table_over_setting']:>9.2f} {r['forced_over_default']:>9.2f}")
        lines.append(line + f" {r['wrong']:>7}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m bench tuned``: runs :func:`tuned`; bad input is one line, status 2."""
    tuned(argv)
    return 0
