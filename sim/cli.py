"""``python -m sim``: predict one collective, sweep sizes and algorithms, list what exists.

Commands (``python -m sim COMMAND --help`` for each)::

    predict  one (collective, algorithm, ranks, bytes) -> time, algbw, busbw (--json: one object)
    sweep    nccl-tests-like tables over sizes, one per algorithm, best per size marked
    list     collectives and their algorithms, topologies, models
    route    the links of one route: python -m sim route --topology T SRC DST [--routing P]
    tune     tuning tables for Open MPI, MPICH and NCCL (see sim.tune, docs/tuning.md)

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
    net.add_argument("--routing", default=None, metavar="POLICY",
                     help="auto (default), shortest, spread, dimension-order, dmodk, minimal "
                          "(docs/routing.md)")

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
    model.add_argument("--sharing", choices=("fair", "rtt"), default=None,
                       help="contention model: how flows share a link: fair (default; "
                            "InfiniBand, NVLink) or rtt (shares by 1/latency, as SimGrid's "
                            "CM02 and TCP)")
    _add_whatif(p)


# --------------------------------------------------------------------------- what-ifs


def _keyed(what: str, value_type):
    """``KEY=VALUE`` -> (KEY text, parsed VALUE), for --late/--degrade/--slow-reduce."""
    def convert(text: str):
        key, sep, value = text.rpartition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected {what}, got {text!r}")
        return key.strip(), value_type(value.strip())

    return _unit_type(convert, what)


def _add_whatif(p: argparse.ArgumentParser) -> None:
    w = p.add_argument_group("what-ifs (see docs/studies.md)")
    w.add_argument("--late", action="append", default=[], metavar="RANK=TIME",
                   type=_keyed("RANK=TIME", _time),
                   help="rank RANK enters the collective TIME late, e.g. 3=50us (repeatable); "
                        "times are then reported from the first and from the last arrival")
    w.add_argument("--degrade", action="append", default=[], metavar="NODE=F|U,V=F",
                   type=_keyed("NODE=FACTOR or U,V=FACTOR", float),
                   help="every link of NODE (a slow NIC), or the link U,V, at FACTOR times its "
                        "bandwidth, e.g. 5=0.5 (repeatable)")
    w.add_argument("--slow-reduce", action="append", default=[], metavar="RANK=FACTOR",
                   type=_keyed("RANK=FACTOR", float),
                   help="reductions at RANK take FACTOR times gamma, e.g. 2=3 (repeatable)")
    w.add_argument("--fail-link", action="append", default=[], metavar="U,V",
                   help="remove the link U,V (U,V,KEY: one cable of a multigraph); traffic "
                        "routes around it (repeatable)")


def _rank_map(pairs, ranks: int, flag: str, parser) -> dict[int, float]:
    out: dict[int, float] = {}
    for key, value in pairs:
        try:
            rank = int(key)
        except ValueError:
            rank = -1
        if not 0 <= rank < ranks:
            parser.error(f"argument {flag}: rank {key!r} out of range 0..{ranks - 1}")
        out[rank] = value
    return out


def _whatif(args, G, parser):
    """-> (topology with --degrade/--fail-link applied, simulate() what-if keywords)."""
    from sim.api import whatif_topology
    from topologies.whatif import parse_link, parse_node

    late = _rank_map(args.late, args.ranks, "--late", parser)
    slow = _rank_map(args.slow_reduce, args.ranks, "--slow-reduce", parser)
    for flag, m, bad in (("--late", late, lambda v: v < 0),
                         ("--slow-reduce", slow, lambda v: not v > 0)):
        for rank, v in m.items():
            if bad(v):
                parser.error(f"argument {flag}: rank {rank} has {v:g}; use "
                             f"{'a time >= 0' if flag == '--late' else 'a factor > 0'}")
    try:
        if (args.degrade or args.fail_link) and G is None:
            raise ValueError("the fully-connected network is analytic; use --topology switch, "
                             "another generator or a file")
        degrade = {(parse_link(G, k, "--degrade") if "," in k else parse_node(G, k, "--degrade")):
                   f for k, f in args.degrade}
        failed = [parse_link(G, t, "--fail-link") for t in args.fail_link]
        G = whatif_topology(G, args.ranks, degrade=degrade, fail_links=failed,
                            placement=args.placement)
    except ValueError as e:
        flag = "--fail-link" if args.fail_link else "--degrade"
        parser.error(f"argument {e}" if str(e).startswith("--") else f"argument {flag}: {e}")
    kw = {}
    if late:
        kw["arrival"] = late
    if slow:
        kw["reduce_scale"] = slow
    return G, kw


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
    tune = _add_tune(sub)
    # Dispatched to sim.study before parsing; listed here so --help shows it.
    sub.add_parser("report", help="run a what-if study file (TOML) into a report directory",
                   add_help=False)
    r = _route_parser(sub)
    return top, {"predict": p, "sweep": s, "list": lst, "route": r, "tune": tune}


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
    if getattr(args, "sharing", None) is not None:
        if args.model != "contention":
            parser.error("--sharing applies to --model contention only")
        values["sharing"] = args.sharing
    params = model_params(args.model, **values)
    return coll, names, G, params


class _Progress:
    """A progress bar (tqdm) on stderr, fed ``(done, total)``; silent when off."""

    def __init__(self, on: bool, label: str = ""):
        self.on, self.label, self.bar = on, label.strip(), None

    def __call__(self, done: int, total: int) -> None:
        if not self.on:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.label, unit="sim", file=sys.stderr)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.bar.close()


# --------------------------------------------------------------------------- commands


def _options(args) -> dict:
    return dict(args.option)


def cmd_predict(args, parser) -> int:
    """Simulate one collective and print a table row (or one JSON object)."""
    from sim.api import build_schedule
    from sim.engine import simulate
    from sim.table import format_table

    coll, names, G, params = _setup(args, parser)
    G, what_if = _whatif(args, G, parser)
    dtype, itemsize = args.dtype
    sch = build_schedule(coll, names[0], args.ranks, _options(args))
    res = simulate(sch, G, args.bytes, params=params, placement=args.placement,
                   itemsize=itemsize, timeline=False, routing=args.routing, **what_if)
    if args.json:
        out = res.as_dict()
        out.update(count=args.bytes // itemsize, dtype=dtype, options=_options(args))
        print(json.dumps(out))
        return 0
    print(f"# {coll} {res.algorithm}, {res.nranks} ranks, {res.model} model on "
          f"{res.topology} ({res.nsteps} steps, {res.ntransfers} transfers)")
    print(format_table([res.record(dtype)]))
    if "arrival" in what_if:
        print(f"# time from the first arrival {res.time_s * 1e6:.2f} us, from the last "
              f"{res.time_from_last_s * 1e6:.2f} us")
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
    G, what_if = _whatif(args, G, parser)
    try:
        sizes = parse_sizes(args.sizes, args.factor)
    except ValueError as e:
        parser.error(f"argument --sizes: {e}")
    dtype, itemsize = args.dtype
    show = sys.stderr.isatty() if args.progress is None else args.progress
    records = sweep(coll, names, args.ranks, sizes, G, params=params,
                    placement=args.placement, itemsize=itemsize, dtype=dtype,
                    options=_options(args) or None, progress=_Progress(show, "sweep "),
                    routing=args.routing, **what_if)
    best = best_per_size(records)
    topo = records[0].extra["topology"] if records else args.topology
    for name in dict.fromkeys(r.algorithm for r in records):
        rows = [r for r in records if r.algorithm == name]
        print(f"# {coll} {name}, {args.ranks} ranks, {params.name} model on {topo}")
        print(format_table(rows, best))
        if "arrival" in what_if:
            print("# from the last arrival (us): " + ", ".join(
                f"{r.extra['time_from_last_s'] * 1e6:.2f}" for r in rows))
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


# --------------------------------------------------------------------------- route


def _route_parser(sub) -> argparse.ArgumentParser:
    r = sub.add_parser("route", help="the links of one route", allow_abbrev=False,
                       description="Print the links of the route from SRC to DST (node ids of "
                                   "the topology; ranks under the default placement): each "
                                   "hop with its bandwidth and latency (and share, for "
                                   "spread), the total latency and the bottleneck. The network "
                                   "options are predict's; --ranks sizes a generator (default: "
                                   "enough for SRC and DST); the other options are unused.")
    r.add_argument("src", metavar="SRC", help="source node")
    r.add_argument("dst", metavar="DST", help="destination node")
    _add_common(r, sweep=False)
    r.set_defaults(ranks=None)  # a generator's size: default, enough for SRC and DST
    return r


def _node_id(text: str):
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return text


def cmd_route(args, parser) -> int:
    """Print the hops of one route, its latency and bottleneck."""
    from sim.fabric import with_routing
    from topologies import fully_connected
    from topologies.units import format_bandwidth, format_time

    src, dst = _node_id(args.src), _node_id(args.dst)
    if args.ranks is None:
        ints = [v + 1 for v in (src, dst) if isinstance(v, int)]
        args.ranks = max([8, *ints])
    _, _, G, _ = _setup(args, parser)
    if G is None:  # the analytic network, as a graph: one direct link per pair
        link = {k: v for k, v in (("bandwidth", args.bandwidth), ("latency", args.latency))
                if v is not None}
        G = fully_connected(args.ranks, **link)
    net = with_routing(G, args.routing or "auto")
    table = net.route_table(src, dst)
    spread = net.multipath
    print(f"# route {src!r} -> {dst!r}, routing {net.routing}, {len(table['hops'])} hop"
          f"{'' if len(table['hops']) == 1 else 's'}")
    for h in table["hops"]:
        share = f"  share {h['share']:.4g}" if spread else ""
        print(f"  {h['from']!s:>8} -> {h['to']!s:<8} {format_bandwidth(h['bandwidth']):>12}"
              f" {format_time(h['latency']):>10}{share}")
    print(f"# latency {format_time(table['latency'])}, bottleneck "
          f"{format_bandwidth(table['bottleneck'])}")
    return 0


# --------------------------------------------------------------------------- tune


def _rank_list(text: str) -> list[int]:
    """``2,4,8`` or ``2:1024`` (powers of two from 2 to 1024)."""
    try:
        if ":" in text:
            lo, hi = (int(x) for x in text.split(":"))
            out, r = [], lo
            while 0 < lo <= r <= hi:
                out.append(r)
                r *= 2
        else:
            out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise ValueError(f"expected rank counts such as 2,4,8 or 2:1024, got {text!r}")
    return out


def _add_tune(sub) -> argparse.ArgumentParser:
    t = sub.add_parser("tune", help="tuning tables for Open MPI, MPICH and NCCL",
                       allow_abbrev=False, conflict_handler="resolve",
                       description="For every rank count and size, simulate every algorithm "
                                   "the target library also runs, pick the fastest, merge "
                                   "neighbouring sizes with the same winner and write the "
                                   "table in the library's own format (docs/tuning.md).")
    _add_common(t, sweep=True)
    t.add_argument("--ranks", "-n", type=_unit_type(_rank_list, "ranks"), default=[2, 4, 8],
                   help="rank counts: 2,4,8 or 2:1024 (powers of two; default 2,4,8)")
    t.set_defaults(sizes="8:1G")
    out = t.add_argument_group("output")
    out.add_argument("--format", type=_unit_type(_tune_format, "format"), default="table",
                     help="table (default), openmpi, openmpi-json, mpich, nccl")
    out.add_argument("--out", metavar="FILE", help="the file to write (required for every "
                     "format but table; with table: the text table)")
    out.add_argument("--library", choices=("openmpi", "mpich", "nccl"),
                     help="with --format table: only that library's algorithms compete")
    out.add_argument("--figure", metavar="PNG", default=None,
                     help="with --format table: the best-algorithm map (default "
                          "report/tune-COLLECTIVE.png)")
    out.add_argument("--mpich-defaults", metavar="JSON", help="MPICH's default selection "
                     "tree (default: read out of the installed MPICH library)")
    out.add_argument("--nccl-channels", type=_unit_type(_positive_int, "channels"), default=8,
                     help="channels written on every NCCL line (default 8)")
    out.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress bar on stderr (default: when stderr is a terminal)")
    return t


def _tune_format(text: str) -> str:
    from sim.export import check_format

    return check_format(text)


def cmd_tune(args, parser) -> int:
    """Tune, print the table, write the chosen format (see sim.tune, sim.export)."""
    import copy

    from sim.export import FORMATS, write_atomic
    from sim.tune import format_tune_table, tune

    fmt = args.format
    library = FORMATS[fmt] or args.library
    if fmt != "table" and not args.out:
        parser.error(f"argument --out: --format {fmt} writes a file; name it with --out FILE")
    if args.library and fmt != "table" and args.library != FORMATS[fmt]:
        parser.error(f"argument --library: --format {fmt} is for {FORMATS[fmt]}")
    networks: dict[int, tuple] = {}
    names = None
    for r in args.ranks:
        one = copy.copy(args)
        one.ranks = r
        coll, names, G, params = _setup(one, parser)
        networks[r] = (G, params)
    try:
        sizes = parse_sizes(args.sizes, args.factor)
    except ValueError as e:
        parser.error(f"argument --sizes: {e}")
    setting = (f"{params.name} model{' from ' + args.model_file if args.model_file else ''}, "
               f"topology {args.topology}")
    show = sys.stderr.isatty() if args.progress is None else args.progress
    table = tune(coll, args.ranks, sizes, networks.__getitem__, library=library,
                 algorithms=names if args.algorithms else None, placement=args.placement,
                 progress=_Progress(show, "tune "), setting=setting)
    text = format_tune_table(table)
    print(text)
    header = f"python -m sim tune {' '.join(sys.argv[2:])}\n{text.splitlines()[0][2:]}"
    if fmt == "table":
        from sim.plots import plot_best_map

        figure = Path(args.figure or f"report/tune-{coll}.png")
        figure.parent.mkdir(parents=True, exist_ok=True)
        starts = {p: [b.first for b in table.bands[p][1:]] for p in table.ranks}
        plot_best_map(table.times(), figure, f"{coll}: fastest algorithm, exported bands",
                      boundaries=starts)
        print(f"# figure: {figure}")
        if args.out:
            write_atomic(args.out, text + "\n")
        return 0
    if fmt == "openmpi":
        from sim.export.openmpi import openmpi_classic

        body = openmpi_classic(table, header)
        how = (f"mpirun --mca coll_tuned_use_dynamic_rules 1 --mca "
               f"coll_tuned_dynamic_rules_filename {args.out} ...")
    elif fmt == "openmpi-json":
        from sim.export.openmpi import openmpi_json

        body = openmpi_json(table)
        how = (f"mpirun --mca coll_tuned_use_dynamic_rules 1 --mca "
               f"coll_tuned_dynamic_rules_filename {args.out} ...  (Open MPI 6)")
    elif fmt == "mpich":
        from sim.export.mpich import cvar_line, mpich_json

        body = mpich_json(table, args.mpich_defaults)
        how = (f"MPIR_CVAR_COLL_SELECTION_TUNING_JSON_FILE={args.out} "
               f"MPIR_CVAR_DEVICE_COLLECTIVES=none mpiexec ...")
        if len(table.ranks) == 1 and len(table.bands[table.ranks[0]]) == 1:
            print(f"# single setting: {cvar_line(table, table.ranks[0], sizes[0])}")
    else:
        from sim.export.nccl import nccl_algo, nccl_csv

        per_node = args.gpus_per_node if args.topology.strip().lower().replace(
            "_", "-") == "gpu-cluster" else 1
        nodes = {p: -(-p // per_node) for p in table.ranks}
        body = nccl_csv(table, args.nccl_channels, nodes, header)
        how = (f"NCCL_TUNER_PLUGIN=<example tuner .so> NCCL_TUNER_CONFIG_FILE={args.out}; "
               f"or restrict only the algorithms: NCCL_ALGO='{nccl_algo(table)}'")
    write_atomic(args.out, body)
    print(f"# wrote {args.out} ({fmt}); load it with: {how}")
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
    command = {"predict": cmd_predict, "sweep": cmd_sweep, "list": cmd_list,
               "route": cmd_route, "tune": cmd_tune}[args.command]
    try:
        return command(args, sub)
    except ValueError as e:
        sub.error(str(e))
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
        return 0
    return 0
