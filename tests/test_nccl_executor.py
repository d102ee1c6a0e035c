"""The NCCL transport: without a GPU it must say so clearly; with GPUs it must be correct.

The GPU tests run only where CuPy sees a CUDA device, with one rank per GPU (up to 4); they
are skipped here otherwise, with the executor's own reason. Everywhere, the same scripts also
run on a CPU stand-in for CuPy and NCCL (``mpi_scripts/fake_cupy.py``: numpy arrays, NCCL
groups done with MPI), which checks the transport's plumbing but not GPU behaviour.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from mpi_scripts import fake_cupy
from mpi_scripts.launcher import ROOT, have_mpi, launch, script

from collectives.nccl_executor import NO_GPU, NCCLUnavailable, require_nccl


def _gpus() -> int:
    try:
        cupy = require_nccl()
    except NCCLUnavailable:
        return 0
    return int(cupy.cuda.runtime.getDeviceCount())


GPUS = _gpus()
needs_gpu = pytest.mark.skipif(GPUS == 0 or have_mpi() is not None,
                               reason=NO_GPU if GPUS == 0 else str(have_mpi()))


def test_importing_collectives_imports_neither_mpi_nor_cupy():
    code = ("import sys, collectives, collectives.plan, collectives.transport, "
            "collectives.mpi_executor, collectives.nccl_executor; "
            "print(sorted(m for m in ('mpi4py.MPI', 'cupy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(GPUS > 0, reason="a GPU is visible")
def test_without_a_gpu_asking_for_nccl_raises_a_clear_error():
    with pytest.raises(NCCLUnavailable, match=re.escape(NO_GPU)):
        require_nccl()
    from collectives import build
    from collectives.nccl_executor import run

    with pytest.raises(NCCLUnavailable, match="pip install '.\\[nccl\\]'"):
        run(build("allreduce", "ring", 1), [1.0, 2.0])


@needs_gpu
def test_nccl_executor_matches_numpy_on_gpus():
    nranks = min(GPUS, 4)
    proc = launch(nranks, [script("check_nccl.py")], timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert re.search(r"CHECKED \d+ FAILED 0", out), out[-4000:]


@needs_gpu
def test_bench_sweep_on_the_nccl_backend(tmp_path):
    nranks = min(GPUS, 4)
    proc = launch(nranks, ["-m", "bench", "--backend", "nccl", "-b", "8", "-e", "1M", "-f",
                           "32", "-n", "3", "-w", "1", "--json", str(tmp_path / "r.json")],
                  timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    records = json.loads((tmp_path / "r.json").read_text())["records"]
    assert records and all(r["wrong"] == 0 for r in records)


@pytest.mark.mpi
@pytest.mark.skipif(have_mpi() is not None, reason=str(have_mpi()))
def test_nccl_plumbing_on_the_cpu_stand_in(tmp_path):
    fake = fake_cupy.install(tmp_path / "fake")
    env = {"PYTHONPATH": os.pathsep.join([str(fake), str(ROOT)])}
    proc = launch(3, [script("check_nccl.py")], timeout=120, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert re.search(r"CHECKED \d+ FAILED 0", out), out[-4000:]
    proc = launch(2, ["-m", "bench", "--backend", "nccl", "--collective", "reducescatter",
                      "--inplace", "1", "-b", "64", "-e", "64K", "-f", "32", "-n", "2", "-w",
                      "1", "--json", str(tmp_path / "r.json")], timeout=120, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["environment"]["backend"] == "nccl"
    assert doc["records"] and all(r["wrong"] == 0 for r in doc["records"])
