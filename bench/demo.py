"""``make demo``: the main job, end to end, on this machine.

1. the embedded what-if study (``python -m sim``) -> ``report/index.html``;
2. a short real sweep of every all-reduce beside MPI's own (``mpiexec -n 4 python -m bench``,
   each point the fastest of three interleaved timings) -> ``report/measured.json``;
3. calibration of the simulator's model on the sweep's rank count with micro-benchmarks kept
   apart from the collectives (``mpiexec -n 4 python -m bench calibrate``, see
   docs/calibration.md) -> ``report/model.json``;
4. predicted against measured for this machine, with the calibrated model and (labelled FIT)
   with one fitted to the measured records (``python -m bench report --fit``) ->
   ``report/measured/index.html`` and ``report/measured/fitted-model.json``.

The MPI runs get ``MPIR_CVAR_CH4_PROGRESS_THROTTLE=1`` unless it is set already (as the tests'
launcher does): with more ranks than cores, MPICH's busy-polling waits otherwise hold a core
until the scheduler's time slice ends and turn microseconds into milliseconds at random.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    found = here if here.exists() else shutil.which("mpiexec")
    if not found:
        raise SystemExit("make demo: no mpiexec found; install the project with its 'mpi' extra "
                         "(pip install -e '.[mpi]'), which brings MPICH's wheel")
    return str(found)


def _run(title: str, cmd: list[str], timeout: float) -> None:
    print(f"\n== {title}\n$ {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"make demo: '{title}' took longer than {timeout:.0f} s; stopped") \
            from None
    if proc.returncode != 0:
        raise SystemExit(f"make demo: '{title}' failed with exit status {proc.returncode}")
    print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="report", help="where everything goes (report/)")
    parser.add_argument("--ranks", type=int, default=4, help="ranks for the MPI sweep (4)")
    parser.add_argument("--maxbytes", default="16M", help="largest size of the MPI sweep (16M)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    mpiexec = _mpiexec()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    os.environ.setdefault("MPIR_CVAR_CH4_PROGRESS_THROTTLE", "1")
    t0 = time.perf_counter()
    _run("what-if study (simulated)", [py, "-m", "sim", "--out", str(out)], 300)
    _run(f"all-reduce sweep over MPI, {args.ranks} ranks, beside MPI_Allreduce",
         [mpiexec, "-n", str(args.ranks), py, "-m", "bench", "-b", "8", "-e", args.maxbytes,
          "-f", "4", "-n", "10", "-w", "3", "--repeat", "3", "--json",
          str(out / "measured.json")], 900)
    _run(f"calibration on {args.ranks} ranks: micro-benchmarks through the executor (lone "
         f"ping-pong, all pairs at once, several messages per step, np.add by size)",
         [mpiexec, "-n", str(args.ranks), py, "-m", "bench", "calibrate", "--out",
          str(out / "model.json")], 300)
    _run("predicted against measured: the calibrated model, and (labelled FIT) one fitted to "
         "the records",
         [py, "-m", "bench", "report", str(out / "measured.json"), "--model-file",
          str(out / "model.json"), "--fit", "--out", str(out / "measured")], 300)
    print(f"\nEverything is in {out}/:\n"
          f"  {out / 'index.html'}            what-if study: figures and who wins where\n"
          f"  {out / 'measured.json'}         measured records (bench --json)\n"
          f"  {out / 'model.json'}            the calibrated model of this machine\n"
          f"  {out / 'measured' / 'index.html'}  predicted against measured\n"
          f"  {out / 'measured' / 'fitted-model.json'}  alpha, beta, gamma fitted to the "
          f"records\n(total {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
