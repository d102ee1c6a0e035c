"""sim: cost models that turn (Schedule, topology, bytes) into a time and a breakdown.

Three models (:mod:`sim.models`, docs/models.md): Hockney (alpha-beta-gamma per transfer),
contention (flow-level max-min sharing of links, SimGrid CM02 semantics) and LogGP.
:func:`simulate` runs one schedule; :func:`predict` and :func:`sweep` build schedules by name
and return table records.

>>> import sim
>>> r = sim.predict("allreduce", "ring", 8, 1 << 20, params=sim.Hockney(2e-6, 1e-9))
>>> r.algorithm, round(r.time_s * 1e6, 3)
('ring', 1863.008)
"""

from sim.api import predict, sweep
from sim.engine import simulate
from sim.models import Contention, Hockney, LogGP, load_model_file, model_params
from sim.results import LinkStats, SimResult, StepStats, Timeline
from sim.table import Record, format_table, make_record

__all__ = [
    "Contention",
    "Hockney",
    "LinkStats",
    "LogGP",
    "Record",
    "SimResult",
    "StepStats",
    "Timeline",
    "format_table",
    "load_model_file",
    "make_record",
    "model_params",
    "predict",
    "simulate",
    "sweep",
]
