"""Cost-model parameters: :class:`Hockney`, :class:`Contention` and :class:`LogGP`.

Each is a frozen dataclass of numbers in seconds (per message or per byte). A field left at
``None`` is taken from the network: the path's latency for ``alpha``/``L`` and one over the
path's bottleneck bandwidth for ``beta``/``G``. On the analytic fully connected network (no
graph) those fields must be given.

A *model file* is JSON with at least ``alpha``, ``beta`` (and usually ``gamma``) in seconds,
optionally the LogGP parameters ``L``, ``o``, ``g``, ``G`` at the top level or under a
``"loggp"`` key; other keys (calibration metadata) are ignored. :func:`load_model_file` reads
one.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

__all__ = ["MODELS", "SHARING", "Contention", "Hockney", "LogGP", "load_model_file", "model_params"]


def _check(name: str, obj) -> None:
    for f in fields(obj):
        v = getattr(obj, f.name)
        if v is None or f.name == "sharing":
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ValueError(
                f"{name}: {f.name} must be a finite number >= 0 (seconds), got {v!r}"
            )


@dataclass(frozen=True)
class Hockney:
    """Hockney (alpha-beta-gamma) model: a transfer of ``b`` bytes costs
    ``alpha + b * beta`` plus ``b * gamma`` at the receiver when it reduces.

    ``alpha=None`` takes the path latency (sum of link latencies) and ``beta=None`` one over
    the path's bottleneck bandwidth; on a fully connected network of identical links that is
    ``alpha = link latency``, ``beta = 1 / bandwidth``. Transfers never slow each other down.

    >>> Hockney(alpha=2e-6, beta=1e-9).cost_per_message(1000)
    3e-06
    """

    alpha: float | None = None
    beta: float | None = None
    gamma: float = 0.0

    name = "hockney"

    def __post_init__(self) -> None:
        _check("Hockney", self)

    def cost_per_message(self, nbytes: float, reduce: bool = False) -> float:
        """``alpha + nbytes * beta (+ nbytes * gamma)`` (needs alpha and beta)."""
        if self.alpha is None or self.beta is None:
            raise ValueError("Hockney.cost_per_message needs alpha and beta")
        return self.alpha + nbytes * self.beta + (nbytes * self.gamma if reduce else 0.0)


#: How :class:`Contention` divides a link among the flows crossing it.
SHARING = ("fair", "rtt")


@dataclass(frozen=True)
class Contention:
    """Flow-level contention model (SimGrid's CM02 semantics, cross-traffic off).

    A transfer becomes a flow when both its ranks are done with their earlier steps; it pays
    its path latency, then takes bandwidth: whenever a flow starts or ends, every flow then
    moving data gets its max-min fair share of the directed links it crosses, with flows of
    different steps competing too; a reduce adds ``bytes * gamma`` at the receiver once the
    data is in. See docs/models.md.

    ``sharing="fair"`` gives each flow an equal share (credit-based fabrics: InfiniBand,
    NVLink, Slingshot); ``"rtt"`` weights each flow's share by ``1 / path latency`` as
    SimGrid's CM02 does (TCP's round-trip unfairness on Ethernet; a flow of zero latency
    has weight 1, as in SimGrid). ``alpha=None`` takes the path latency; ``beta`` given sets
    every link's bandwidth to ``1 / beta`` (on the analytic fully connected network it is
    required). Where no link is shared this is exactly :class:`Hockney`.
    """

    alpha: float | None = None
    beta: float | None = None
    gamma: float = 0.0
    sharing: str = "fair"

    name = "contention"

    def __post_init__(self) -> None:
        _check("Contention", self)
        if self.sharing not in SHARING:
            raise ValueError(
                f"Contention: sharing must be one of {', '.join(SHARING)}, got {self.sharing!r}"
            )


@dataclass(frozen=True)
class LogGP:
    """LogGP (Alexandrov et al. 1995): a message of ``k`` bytes costs
    ``o + L + (k-1) G + o`` (sender overhead, wire latency, per-byte gap, receiver overhead),
    plus ``k * gamma`` when the receiver reduces. A rank starts its sends at least
    ``max(g, o + (k-1) G)`` apart (``k`` of the earlier send): ``g`` is the minimum gap between
    consecutive messages, and the sender is busy for its overhead and the injection.

    ``L=None`` takes the path latency and ``G=None`` one over the path's bottleneck bandwidth.

    >>> round(LogGP(L=5e-6, o=1e-6, g=3e-6, G=1e-9).cost_per_message(1001) * 1e6, 9)
    8.0
    """

    L: float | None = None
    o: float = 0.0
    g: float = 0.0
    G: float | None = None
    gamma: float = 0.0

    name = "loggp"

    def __post_init__(self) -> None:
        _check("LogGP", self)

    def cost_per_message(self, nbytes: float, reduce: bool = False) -> float:
        """``2 o + L + max(k-1, 0) G (+ k gamma)`` (needs L and G)."""
        if self.L is None or self.G is None:
            raise ValueError("LogGP.cost_per_message needs L and G")
        k = float(nbytes)
        return (2 * self.o + self.L + max(k - 1.0, 0.0) * self.G
                + (k * self.gamma if reduce else 0.0))


MODELS: dict[str, type] = {"hockney": Hockney, "contention": Contention, "loggp": LogGP}


def model_params(model: str, **values) -> Hockney | Contention | LogGP:
    """Parameters of ``model`` from keyword values; ``None`` values and keys the model does
    not take are dropped, so one dict of ``alpha, beta, gamma, L, o, g, G`` serves all three.

    LogGP falls back on Hockney's figures where its own are missing: ``L = alpha``,
    ``G = beta``.

    >>> model_params("loggp", alpha=2e-6, beta=1e-9, gamma=0.0)
    LogGP(L=2e-06, o=0.0, g=0.0, G=1e-09, gamma=0.0)
    """
    key = str(model).strip().lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    cls = MODELS[key]
    if cls is LogGP:
        if values.get("L") is None:
            values["L"] = values.get("alpha")
        if values.get("G") is None:
            values["G"] = values.get("beta")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names and v is not None})


def load_model_file(path) -> dict:
    """Read a model file (see the module docstring) into ``{name: seconds}`` with the keys
    ``alpha, beta, gamma, L, o, g, G`` that it gives; raises ``ValueError`` on a bad file.

    >>> import json, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "model.json")
    >>> with open(p, "w") as f:
    ...     json.dump({"alpha": 2e-6, "beta": 1e-9, "gamma": 2.5e-10, "host": "x"}, f)
    >>> sorted(load_model_file(p).items())
    [('alpha', 2e-06), ('beta', 1e-09), ('gamma', 2.5e-10)]
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"cannot read model file {str(path)!r}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"model file {str(path)!r} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"model file {str(path)!r} must hold a JSON object")
    nested = data.get("loggp") if isinstance(data.get("loggp"), dict) else {}
    out = {}
    for key in ("alpha", "beta", "gamma", "L", "o", "g", "G"):
        value = data.get(key, nested.get(key))
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and value >= 0):
            raise ValueError(
                f"model file {str(path)!r}: {key} must be a number of seconds >= 0, got {value!r}"
            )
        out[key] = float(value)
    missing = [k for k in ("alpha", "beta") if k not in out]
    if missing:
        raise ValueError(
            f"model file {str(path)!r} lacks {', '.join(missing)}: it needs alpha (s per message) "
            f"and beta (s per byte), optionally gamma (s per byte reduced)"
        )
    return out


def as_dict(params) -> dict:
    """The parameters as a plain dict (for JSON output)."""
    return asdict(params)
