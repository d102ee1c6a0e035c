"""``python -m sim``: predict one collective, sweep sizes and algorithms, list what exists.

Commands (``python -m sim COMMAND --help`` for each)::

    predict  one (collective, algorithm, ranks, bytes) -> time, algbw, busbw (--json: one object)
    sweep    nccl-tests-like tables over sizes, one per algorithm, best per size marked
    list     collectives and their algorithms, topologies, models

    report   run a what-if study file (TOML) into a report directory (see sim.studyfile)

With no command (``python -m sim [--quick] [--out DIR]``) it runs the embedded what-if study
(:mod:`sim.study`) and writes ``report/``. Values take human units (``64MiB``, ``100Gbps``,
``2us``); a bad value is a one-line error naming the flag, exit status 2.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "parse_sizes"]

_MODELS = {
    "hockney": "alpha + bytes*beta per transfer (+ gamma*bytes reduced); links never shared",
    "contention": "links shared max-min fairly by the transfers of a step; shortest-path routes",
    "loggp": "o + L + (bytes-1)*G + o per message, sends of a rank at least g apart",
}


# --------------------------------------------------------------------------- value parsers


def _unit_type(parse, what: str):
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = what  # argparse names the type in its messages
    return convert


def _bytes(text: str) -> int:
    from topologies.units import parse_bytes

    return parse_bytes(text)


def _time(text: str) -> float:
    from topologies.units import parse_time

    return parse_time(text)


def _bandwidth(text: str) -> float:
    from topologies.units import parse_bandwidth

    return parse_bandwidth(text)


def _per_byte(text: str) -> float:
    """Seconds per byte: ``1e-9``, ``1ns`` (per byte), or a bandwidth ``1GB/s`` (inverted)."""
    from topologies.units import parse_bandwidth, parse_time

    try:
        return parse_time(text)
    except ValueError:
        pass
    try:
        if any(u in text for u in ("/s", "bps", "Bps")):
            return 1.0 / parse_bandwidth(text)
    except ValueError:
        pass
    raise ValueError(
        f"cannot parse seconds per byte {text!r}: use a number of seconds (1e-9), a time per "
        f"byte (1ns) or a bandwidth to invert (1GB/s, 8Gbps)"
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return value


def _even_int(text: str) -> int:
    value = _positive_int(text)
    if value < 2 or value % 2:
        raise ValueError(f"expected an even integer >= 2, got {text!r}")
    return value


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(f"expected a number >= 1 (1 = non-blocking), got {text!r}")
    return value


def _dims(text: str) -> list[int]:
    try:
        dims = [int(x) for x in text.lower().replace(",", "x").split("x")]
    except ValueError:
        dims = []
    if not dims or min(dims) < 1:
        raise ValueError(f"expected dimensions such as 4x4 or 8x8x8, got {text!r}")
    return dims


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected NAME=VALUE (e.g. segments=4), got {text!r}")
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        parsed = value.strip()
    return key.strip().replace("-", "_"), parsed


def _dtype(text: str) -> tuple[str, int]:
    try:
        dt = np.dtype(text)
    except TypeError:
        raise ValueError(
            f"unknown dtype {text!r}; use e.g. uint8, float16, float32, float64") from None
    return dt.name, dt.itemsize


def parse_sizes(text: str, factor: float = 2.0) -> list[int]:
    """Message sizes: ``1K:1G`` (a geometric range, ``factor`` apart, end included when
    reached), ``1K:1G:4`` (factor 4), or a list ``1K,64M``.

    >>> parse_sizes("1K:8K"), parse_sizes("1K,64M"), parse_sizes("1K:1M:32")
    ([1024, 2048, 4096, 8192], [1024, 67108864], [1024, 32768, 1048576])
    """
    text = str(text).strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"cannot parse sizes {text!r}: use MIN:MAX[:FACTOR] or a list A,B")
        lo, hi = _bytes(parts[0]), _bytes(parts[1])
        if len(parts) == 3:
            try:
                factor = float(parts[2])
            except ValueError:
                factor = 0.0
        if not factor > 1:
            raise ValueError(f"cannot parse sizes {text!r}: the factor must be > 1")
        if lo < 1 or hi < lo:
            raise ValueError(f"cannot parse sizes {text!r}: need 1 <= MIN <= MAX")
        out, x = [], float(lo)
        while round(x) <= hi:
            if not out or round(x) != out[-1]:
                out.append(round(x))
            x *= factor
        return out
    out = [_bytes(t) for t in text.split(",") if t.strip()]
    if not out:
        raise ValueError(f"cannot parse sizes {text!r}: use MIN:MAX[:FACTOR] or a list A,B")
    return out


# --------------------------------------------------------------------------- the parser


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``prog: error: message (see prog --help)``, status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_common(p: argparse.ArgumentParser, sweep: bool) -> None:
    what = p.add_argument_group("what to simulate")
    what.add_argument("--collective", "-c", default="allreduce",
                      help="allreduce, reducescatter, allgather, reduce, broadcast "
                           "(default allreduce)")
    if sweep:
        what.add_argument("--algorithms", "-a", default=None,
                          help="comma-separated algorithm names (default: all of the "
                               "collective's)")
        what.add_argument("--sizes", "-s", default="1K:1G",
                          help="MIN:MAX[:FACTOR] or a list A,B (default 1K:1G)")
        what.add_argument("--factor", "-f", type=_unit_type(float, "factor"), default=2.0,
                          help="size factor of a MIN:MAX range (default 2)")
    else:
        what.add_argument("--algorithm", "-a", default="ring", help="algorithm name (default "
                          "ring); `python -m sim list` shows them")
        what.add_argument("--bytes", "-b", type=_unit_type(_bytes, "size"), default=1 << 20,
                          help="size of the full vector: 1048576, 64MiB, 1M (default 1MiB)")
    what.add_argument("--ranks", "-n", type=_unit_type(_positive_int, "ranks"), default=8,
                      help="number of ranks (default 8)")
    what.add_argument("--dtype", type=_unit_type(_dtype, "dtype"), default=("uint8", 1),
                      help="element type, for the count column (default uint8)")
    what.add_argument("--option", action="append", type=_unit_type(_option, "option"),
                      default=[], metavar="NAME=VALUE",
                      help="builder option, e.g. segments=4 or group_size=8 (repeatable)")

    net = p.add_argument_group("network")
    net.add_argument("--topology", "-t", default="fully-connected",
                     help="fully-connected, ring, torus, fat-tree, dragonfly, switch, "
                          "gpu-cluster, or a .json/.graphml file (default fully-connected)")
    net.add_argument("--bandwidth", type=_unit_type(_bandwidth, "bandwidth"),
                     help="link bandwidth: 100Gbps, 25GB/s, or bytes/s")
    net.add_argument("--latency", type=_unit_type(_time, "time"), help="link latency: 2us")
    net.add_argument("--oversubscription", type=_unit_type(_ratio, "ratio"), default=1.0,
                     help="fat-tree/gpu-cluster uplink oversubscription (default 1)")
    net.add_argument("--k", type=_unit_type(_even_int, "k"),
                     help="fat-tree radix (default: the smallest that fits the ranks)")
    net.add_argument("--dims", type=_unit_type(_dims, "dims"), help="torus dimensions: 4x4")
    net.add_argument("--gpus-per-node", type=_unit_type(_positive_int, "count"), default=8,
                     help="gpu-cluster GPUs per server (default 8)")
    net.add_argument("--intra-bandwidth", type=_unit_type(_bandwidth, "bandwidth"),
                     help="gpu-cluster NVLink bandwidth (default 450GB/s)")
    net.add_argument("--intra-latency", type=_unit_type(_time, "time"),
                     help="gpu-cluster NVLink latency (default 250ns)")
    net.add_argument("--routers", type=_unit_type(_positive_int, "count"),
                     help="dragonfly routers per group (default 4)")
    net.add_argument("--hosts-per-router", type=_unit_type(_positive_int, "count"),
                     help="dragonfly endpoints per router (default 2)")
    net.add_argument("--groups", type=_unit_type(_positive_int, "count"),
                     help="dragonfly groups (default: enough for the ranks)")
    net.add_argument("--global-bandwidth", type=_unit_type(_bandwidth, "bandwidth"),
                     help="dragonfly global links (default: --bandwidth)")
    net.add_argument("--global-latency", type=_unit_type(_time, "time"),
                     help="dragonfly global links (default: twice --latency)")
    net.add_argument("--placement", default=None,
                     help="linear (default), spread, random:SEED")

    model = p.add_argument_group("cost model")
    model.add_argument("--model", "-m", default="hockney", choices=tuple(_MODELS),
                       help="hockney (default), contention, loggp")
    model.add_argument("--model-file", default=None, metavar="FILE",
                       help="JSON with alpha, beta, gamma (and optionally L, o, g, G), e.g. "
                            "from MPI calibration: the fully connected network uses its alpha "
                            "and beta; every topology uses its gamma and LogGP o, g")
    model.add_argument("--alpha", type=_unit_type(_time, "time"),
                       help="seconds per message: 2e-6, 2us (on a graph: replaces the path "
                            "latency)")
    model.add_argument("--beta", type=_unit_type(_per_byte, "seconds-per-byte"),
                       help="seconds per byte: 1e-9, 1ns, or a bandwidth 1GB/s (on a graph: "
                            "replaces the path bandwidth)")
    model.add_argument("--gamma", type=_unit_type(_per_byte, "seconds-per-byte"),
                       help="seconds per byte reduced (default 0)")
    model.add_argument("--L", dest="loggp_L", type=_unit_type(_time, "time"),
                       help="LogGP latency (default: alpha or the path latency)")
    model.add_argument("--o", dest="loggp_o", type=_unit_type(_time, "time"),
                       help="LogGP overhead per message at each end (default 0)")
    model.add_argument("--g", dest="loggp_g", type=_unit_type(_time, "time"),
                       help="LogGP gap between a rank's messages (default 0)")
    model.add_argument("--G", dest="loggp_G", type=_unit_type(_per_byte, "seconds-per-byte"),
                       help="LogGP seconds per byte (default: beta or the path bandwidth)")


def _parser() -> tuple[argparse.ArgumentParser, dict]:
    top = _Parser(
        prog="python -m sim", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
        epilog="Examples:\n  python -m sim predict --ranks 7 --bytes 1MiB --alpha 2us "
               "--beta 1ns --gamma 2.5e-10 --json\n  python -m sim sweep --algorithms "
               "ring,rabenseifner --ranks 64 --sizes 1K:1G --topology fat-tree "
               "--model contention\n  python -m sim list")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    p = sub.add_parser("predict", help="predict one collective", allow_abbrev=False,
                       description="Predict the time of one collective.")
    _add_common(p, sweep=False)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    s = sub.add_parser("sweep", help="sweep sizes and algorithms", allow_abbrev=False,
                       description="nccl-tests-like tables over sizes, one per algorithm; the "
                                   "fastest algorithm at each size is marked '*'.")
    _add_common(s, sweep=True)
    s.add_argument("--csv", metavar="FILE", help="also write every record as CSV")
    s.add_argument("--json", metavar="FILE", help="also write every record as JSON")
    s.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    lst = sub.add_parser("list", help="list collectives, algorithms, topologies, models",
                         allow_abbrev=False)
    # Dispatched to sim.study before parsing; listed here so --help shows it.
    sub.add_parser("report", help="run a what-if study file (TOML) into a report directory",
                   add_help=False)
    return top, {"predict": p, "sweep": s, "list": lst}


# --------------------------------------------------------------------------- set-up


def _setup(args, parser):
    """-> (collective, topology graph or None, params, topology description)."""
    from collectives.registry import algorithms, canonical_collective
    from sim.api import TOPOLOGIES, make_topology
    from sim.models import CALIBRATION_FIELDS, load_model_file, model_params
    from topologies import DEFAULT_BANDWIDTH, DEFAULT_LATENCY, load

    try:
        coll = canonical_collective(args.collective)
    except ValueError as e:
        parser.error(f"argument --collective: {e}")
    known = algorithms(coll)
    names = ([args.algorithm] if hasattr(args, "algorithm")
             else ([a.strip() for a in args.algorithms.split(",") if a.strip()]
                   if args.algorithms else known))
    flag = "--algorithm" if hasattr(args, "algorithm") else "--algorithms"
    for name in names:
        if name.strip().lower().replace("_", "-") not in known:
            parser.error(f"argument {flag}: unknown algorithm {name!r} for {coll}; known: "
                         f"{', '.join(known)}")
    names = [n.strip().lower().replace("_", "-") for n in names]
    file_values = {}
    if args.model_file:
        try:
            file_values = load_model_file(args.model_file)
        except ValueError as e:
            parser.error(f"argument --model-file: {e}")

    spec = args.topology.strip()
    key = spec.lower().replace("_", "-")
    if key in TOPOLOGIES:
        try:
            G = make_topology(
                key, args.ranks, bandwidth=args.bandwidth, latency=args.latency, k=args.k,
                oversubscription=args.oversubscription, dims=args.dims,
                gpus_per_node=args.gpus_per_node, intra_bandwidth=args.intra_bandwidth,
                intra_latency=args.intra_latency, routers=args.routers,
                hosts_per_router=args.hosts_per_router, groups=args.groups,
                global_bandwidth=args.global_bandwidth, global_latency=args.global_latency)
        except ValueError as e:
            parser.error(f"argument --topology {key}: {e}")
    elif Path(spec).suffix.lower() in (".json", ".graphml"):
        if not Path(spec).is_file():
            parser.error(f"argument --topology: no such file {spec!r}")
        try:
            G = load(spec)
        except ValueError as e:
            parser.error(f"argument --topology: {e}")
    else:
        parser.error(f"argument --topology: unknown topology {spec!r}; known: "
                     f"{', '.join(TOPOLOGIES)}, or a .json/.graphml file")

    values = {"gamma": file_values.get("gamma"), "o": file_values.get("o"),
              "g": file_values.get("g")}
    # a calibrated machine (bench calibrate): size factors, crowding, per-message costs
    values.update({k: v for k, v in file_values.items() if k in CALIBRATION_FIELDS})
    if G is None:  # analytic fully connected: alpha/beta from flags, file, links, defaults
        alpha = file_values.get("alpha", args.latency if args.latency is not None
                                else DEFAULT_LATENCY)
        beta = file_values.get("beta", 1.0 / (args.bandwidth or DEFAULT_BANDWIDTH))
        values.update(alpha=alpha, beta=beta, L=file_values.get("L"),
                      G=file_values.get("G"))
    for flag in ("alpha", "beta", "gamma"):
        if getattr(args, flag) is not None:
            values[flag] = getattr(args, flag)
    for flag in ("L", "o", "g", "G"):
        if getattr(args, f"loggp_{flag}") is not None:
            values[flag] = getattr(args, f"loggp_{flag}")
    params = model_params(args.model, **values)
    return coll, names, G, params


class _Progress:
    """``[#####.....] 12/40`` on stderr, redrawn in place; silent when off."""

    def __init__(self, on: bool, label: str = ""):
        self.on, self.label, self.t0 = on, label, time.perf_counter()
        self.last = -1.0

    def __call__(self, done: int, total: int) -> None:
        if not self.on:
            return
        now = time.perf_counter()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        width = 30
        fill = int(width * done / max(total, 1))
        secs = time.perf_counter() - self.t0
        sys.stderr.write(f"\r{self.label}[{'#' * fill}{'.' * (width - fill)}] "
                         f"{done}/{total} {secs:.1f}s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


# --------------------------------------------------------------------------- commands


def _options(args) -> dict:
    return dict(args.option)


def cmd_predict(args, parser) -> int:
    """Simulate one collective and print a table row (or one JSON object)."""
    from sim.api import build_schedule
    from sim.engine import simulate
    from sim.table import format_table

    coll, names, G, params = _setup(args, parser)
    dtype, itemsize = args.dtype
    sch = build_schedule(coll, names[0], args.ranks, _options(args))
    res = simulate(sch, G, args.bytes, params=params, placement=args.placement,
                   itemsize=itemsize, timeline=False)
    if args.json:
        out = res.as_dict()
        out.update(count=args.bytes // itemsize, dtype=dtype, options=_options(args))
        print(json.dumps(out))
        return 0
    print(f"# {coll} {res.algorithm}, {res.nranks} ranks, {res.model} model on "
          f"{res.topology} ({res.nsteps} steps, {res.ntransfers} transfers)")
    print(format_table([res.record(dtype)]))
    if res.links is not None and len(res.links):
        from topologies.units import format_bytes

        print("# busiest links: " + "; ".join(
            f"{u}->{v} {format_bytes(b)} ({util:.0%})" for (u, v), b, util
            in res.links.busiest(3)))
    return 0


def cmd_sweep(args, parser) -> int:
    """Simulate every (size, algorithm) and print one table per algorithm."""
    from sim.api import best_per_size, sweep
    from sim.table import format_table

    coll, names, G, params = _setup(args, parser)
    try:
        sizes = parse_sizes(args.sizes, args.factor)
    except ValueError as e:
        parser.error(f"argument --sizes: {e}")
    dtype, itemsize = args.dtype
    show = sys.stderr.isatty() if args.progress is None else args.progress
    records = sweep(coll, names, args.ranks, sizes, G, params=params,
                    placement=args.placement, itemsize=itemsize, dtype=dtype,
                    options=_options(args) or None, progress=_Progress(show, "sweep "))
    best = best_per_size(records)
    topo = records[0].extra["topology"] if records else args.topology
    for name in dict.fromkeys(r.algorithm for r in records):
        rows = [r for r in records if r.algorithm == name]
        print(f"# {coll} {name}, {args.ranks} ranks, {params.name} model on {topo}")
        print(format_table(rows, best))
        avg = sum(r.busbw for r in rows) / len(rows)
        print(f"# Avg bus bandwidth    : {avg / 1e9:.3f} GB/s")
        wins = sum(1 for r in rows if (r.size, r.algorithm) in set(best))
        print(f"# Best at {wins} of {len(rows)} sizes ('*')\n")
    if args.csv:
        rows = [r.as_dict() for r in records]
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["size"])
            w.writeheader()
            w.writerows(rows)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([r.as_dict() for r in records], f, indent=1)
            f.write("\n")
    return 0


def cmd_list(args, parser) -> int:
    """Print the collectives with their algorithms, the topologies and the models."""
    from collectives.registry import algorithms
    from sim.api import TOPOLOGIES

    print("collectives and algorithms:")
    for coll, algos in algorithms().items():
        print(f"  {coll:14s} {', '.join(algos)}")
    print("topologies (--topology; or a .json/.graphml file):")
    for name, what in TOPOLOGIES.items():
        print(f"  {name:16s} {what}")
    print("models (--model):")
    for name, what in _MODELS.items():
        print(f"  {name:12s} {what}")
    return 0


def main(argv=None) -> int:
    """Run the command line; returns the exit status (2 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, subs = _parser()
    # The study runner owns the bare form (``python -m sim [--quick] [--out DIR]``) and
    # ``python -m sim report STUDY.toml``.
    study_flags = not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help"))
    if study_flags or argv[0] == "report":
        from sim.study import main as study_main

        return study_main(argv[1:] if argv and argv[0] == "report" else argv) or 0
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    sub = subs[args.command]
    command = {"predict": cmd_predict, "sweep": cmd_sweep, "list": cmd_list}[args.command]
    try:
        return command(args, sub)
    except ValueError as e:
        sub.error(str(e))
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
        return 0
    return 0
