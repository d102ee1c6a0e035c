"""``python -m sim tune``: every exported format read back by a reader of that library's
grammar (tests/tune_readers.py, written from the libraries' sources) selects the algorithm the
simulator chose, at every tuned (ranks, size) and at sizes between them; the crossover of a
closed form; bad input as one line; files written whole or not at all."""

from __future__ import annotations

import json
import math

import pytest
from tune_readers import (
    ReadError,
    mpich_collectives,
    read_mpich,
    read_nccl,
    read_openmpi_classic,
    read_openmpi_json,
    select_mpich,
    select_nccl,
    select_openmpi_classic,
    select_openmpi_json,
)

from sim.export.mapping import candidates
from sim.export.mpich import mpich_default_tree
from sim.models import Hockney
from sim.tune import Band, TuneTable, tune

A, B, G = 2e-6, 1e-9, 2.5e-10
RANKS = "2,3,4,6,8,16"
SIZES = "8:1G:4"
OMPI_ID = {"allgather": 0, "allreduce": 2, "reducescatter": 12}
MPICH_NAME = {"allgather": "allgather", "allreduce": "allreduce",
              "reducescatter": "reduce_scatter"}


def run_here(capsys, *args: str) -> tuple[int, str, str]:
    from sim.cli import main

    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def _tuned(collective: str, library: str) -> TuneTable:
    """The same tuning the CLI runs below, through the library function."""
    return tune(collective, [int(r) for r in RANKS.split(",")],
                [8 * 4**k for k in range(14)], lambda p: (None, Hockney(A, B, G)),
                library=library)


def _winners_are_selected(table: TuneTable) -> None:
    """At every tuned (ranks, sampled size) the table selects the simulated winner."""
    for p, row in table.choices.items():
        for c in row:
            assert table.select(p, c.size) == c.winner, (p, c.size)


def _queries(table: TuneTable):
    """(ranks, size) pairs: every sampled size, each band edge and its neighbours, and rank
    counts between and beyond the tuned ones."""
    for p in (*table.ranks, 5, 7, 12, 64):
        block = table.rank_block(p)
        sizes = {c.size for c in table.choices[block]}
        for lo, hi, _ in table.boundaries(block):
            sizes |= {lo, lo + 1} | ({hi, hi - 1} if hi else {1 << 40})
        for s in sorted(sizes):
            yield p, s


def _toy_mpich_defaults(tmp_path):
    """A complete default tree of our own: every csel collective, one plain leaf each."""
    from tune_readers import MPICH_COLLECTIVES

    tree = {f"collective={c}": {"comm_type=intra": {f"algorithm=MPIR_{c.capitalize()}"
                                                    f"_intra_x": {}},
                                "comm_type=inter": {f"algorithm=MPIR_{c.capitalize()}"
                                                    f"_inter_x": {}}}
            for c in sorted(MPICH_COLLECTIVES)}
    path = tmp_path / "defaults.json"
    path.write_text(json.dumps(tree))
    return path


@pytest.mark.parametrize("collective", ["allreduce", "reducescatter", "allgather"])
@pytest.mark.parametrize("fmt", ["openmpi", "openmpi-json"])
def test_openmpi_files_select_the_simulated_winner(capsys, tmp_path, collective, fmt):
    out = tmp_path / "rules"
    code, text, err = run_here(capsys, "tune", "--collective", collective, "--ranks", RANKS,
                               "--sizes", SIZES, "--alpha", "2us", "--beta", "1ns",
                               "--gamma", str(G), "--format", fmt, "--out", str(out))
    assert code == 0, err
    body = out.read_text()
    if fmt == "openmpi":
        rules = read_openmpi_classic(body)
        select = select_openmpi_classic
        assert "\n0" not in "\n" + "\n".join(
            t for line in body.splitlines() for t in line.split("#")[0].split()
            if len(t) > 1)  # never zero-padded
    else:
        rules = read_openmpi_json(body)
        select = select_openmpi_json
        assert list(json.loads(body)["collectives"]) == [
            {"reducescatter": "reduce_scatter"}.get(collective, collective)]
    assert list(rules) == [OMPI_ID[collective]]
    table = _tuned(collective, "openmpi")
    _winners_are_selected(table)
    assert "not modelled" in text
    checked = 0
    for p, size in _queries(table):
        want = table.select(p, size)
        got = select(rules, OMPI_ID[collective], p, size)
        assert got == candidates("openmpi", collective, table.rank_block(p))[want].ident, (
            p, size, want, got)
        checked += 1
    assert checked >= 150
    # the table really switches algorithm somewhere (the test could not pass by accident)
    assert len({b.algorithm for bands in table.bands.values() for b in bands}) >= 2


@pytest.mark.parametrize("collective", ["allreduce", "reducescatter", "allgather"])
def test_mpich_file_selects_the_simulated_winner(capsys, tmp_path, collective):
    out = tmp_path / "tuning.json"
    defaults = _toy_mpich_defaults(tmp_path)
    code, text, err = run_here(capsys, "tune", "--collective", collective, "--ranks", RANKS,
                               "--sizes", SIZES, "--alpha", "2us", "--beta", "1ns",
                               "--gamma", str(G), "--format", "mpich", "--out", str(out),
                               "--mpich-defaults", str(defaults))
    assert code == 0, err
    tree = read_mpich(out.read_text())
    # complete: every collective of the defaults is still there, untouched ones unchanged
    assert sorted(mpich_collectives(tree)) == sorted(
        k.split("=", 1)[1] for k in json.loads(defaults.read_text()))
    assert select_mpich(tree, 4, "bcast", 64) == "MPIR_Bcast_intra_x"
    table = _tuned(collective, "mpich")
    _winners_are_selected(table)
    name = MPICH_NAME[collective]
    for p, size in _queries(table):
        want = str(candidates("mpich", collective, table.rank_block(p))[
            table.select(p, size)].ident)
        got = select_mpich(tree, p, name, size)
        p2 = 1 << (p.bit_length() - 1)
        if want.endswith("reduce_scatter_allgather") and size // 4 < p2:
            want = "MPIR_Allreduce_intra_recursive_doubling"  # MPICH's count >= pof2 rule
        assert got == want, (p, size, got, want)
        # a non-commutative op never reaches an algorithm that needs a commutative one
        if collective != "allgather":
            other = select_mpich(tree, p, name, size, commutative=False)
            assert "ring" not in other and "pairwise" not in other and "halving" not in other
    # MPICH's sizes are 32-bit: nothing above INT_MAX in the file
    assert all(int(x) < 2**31 for x in __import__("re").findall(r"<=?(\d+)", out.read_text()))


def test_mpich_file_keeps_the_installed_defaults(capsys, tmp_path):
    """Without --mpich-defaults the tree is MPICH's own, read out of the installed library."""
    try:
        base = mpich_default_tree()
    except ValueError as e:
        pytest.skip(str(e))
    out = tmp_path / "tuning.json"
    code, _, err = run_here(capsys, "tune", "--ranks", "2,4", "--sizes", "8:1M:16",
                            "--alpha", "2us", "--beta", "1ns", "--format", "mpich",
                            "--out", str(out))
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert list(doc) == list(base)  # same collectives, same order
    assert {k: v for k, v in doc.items() if k != "collective=allreduce"} == {
        k: v for k, v in base.items() if k != "collective=allreduce"}
    assert doc["collective=allreduce"]["comm_type=inter"] == \
        base["collective=allreduce"]["comm_type=inter"]
    tree = read_mpich(out.read_text())
    assert "bcast" in mpich_collectives(tree) and "allreduce" in mpich_collectives(tree)


@pytest.mark.parametrize("collective", ["allreduce", "reducescatter", "allgather"])
def test_nccl_csv_selects_the_simulated_winner(capsys, tmp_path, collective):
    out = tmp_path / "nccl_tuner.conf"
    code, text, err = run_here(capsys, "tune", "--collective", collective, "--ranks", "8,16",
                               "--sizes", SIZES, "--topology", "gpu-cluster",
                               "--gpus-per-node", "8", "--format", "nccl", "--out", str(out),
                               "--nccl-channels", "16")
    assert code == 0, err
    assert "NCCL_ALGO=" in text
    configs = read_nccl(out.read_text())
    from sim.api import make_topology
    from sim.models import model_params

    table = tune(collective, [8, 16], [8 * 4**k for k in range(14)],
                 lambda p: (make_topology("gpu-cluster", p, gpus_per_node=8),
                            model_params("hockney")), library="nccl")
    for p in (8, 16):
        for lo, hi, algo in table.boundaries(p):
            for size in {lo, lo + 1, (hi or 1 << 40) - 1, hi or 1 << 40}:
                c = select_nccl(configs, collective, size, p, math.ceil(p / 8))
                assert c is not None, (p, size)
                assert c["algorithm"] == candidates("nccl", collective, p)[algo].ident
                assert c["protocol"] == "simple" and c["channels"] == 16
    assert select_nccl(configs, collective, 1024, 4, 1) is None  # other rank counts: NCCL's


def test_closed_form_crossover_on_four_ranks(capsys):
    """Hockney, p = 4, gamma = 0: recursive doubling 2(alpha + n beta), Rabenseifner
    4 alpha + 1.5 n beta, ring 6 alpha + 1.5 n beta: Rabenseifner wins above n = 4 alpha/beta
    = 8000 B, and ring never does."""
    sizes = [2**k for k in range(3, 21)]
    table = tune("allreduce", [4], sizes, lambda p: (None, Hockney(A, B, 0.0)),
                 library="openmpi")
    assert [(b.algorithm, b.first, b.last) for b in table.bands[4]] == [
        ("recursive-doubling", 8, 4096), ("rabenseifner", 8192, 2**20)]
    at = {c.size: c for c in table.choices[4]}
    rd, rab = 2 * (A + 4096 * B), 4 * A + 1.5 * 4096 * B
    assert at[4096].margin == pytest.approx(100 * (rab / rd - 1))
    assert at[8].runner_up == "rabenseifner"
    n = 2**20
    assert at[n].margin == pytest.approx(100 * ((6 * A + 1.5 * n * B) / (4 * A + 1.5 * n * B)
                                                - 1))
    band = table.bands[4][0]
    assert band.margin == pytest.approx(min(c.margin for c in table.choices[4][:10]))


def test_table_format_prints_margins_and_draws_the_map(capsys, tmp_path):
    fig = tmp_path / "map.png"
    code, out, err = run_here(capsys, "tune", "--ranks", "4,8", "--sizes", "8:1M:8",
                              "--alpha", "2us", "--beta", "1ns", "--figure", str(fig))
    assert code == 0, err
    assert fig.stat().st_size > 1000
    rows = [line for line in out.splitlines() if line and not line.startswith("#")]
    assert rows and all("%" in r or " - " in r for r in rows)
    assert "double-binary-tree" in out or "recursive-doubling" in out


def test_tuning_files_of_our_readers_reject_what_the_libraries_reject():
    """The readers are strict where the libraries are (so the tests above can fail)."""
    with pytest.raises(ReadError, match="message size 0"):
        read_openmpi_classic("1\n2\n1\n4\n1\n64 4 0 0\n")
    # fscanf("%li") reads a zero-padded number as octal: 010 is 8
    rules = read_openmpi_classic("1 2 1 4 2 0 3 0 0 010 4 0 0")
    assert rules[2][0][1][1][0] == 8
    with pytest.raises(ReadError, match="not strict JSON"):
        read_openmpi_json('{"collectives": {"allreduce": [{"rules": [{"alg": 4,}]}]}}')
    # Open MPI keeps communicator bounds in an int: "inf" there becomes -1, matching nothing
    rules = read_openmpi_json('{"collectives": {"allreduce": [{"comm_size_max": "inf", '
                              '"rules": [{"alg": 4}]}]}}')
    assert select_openmpi_json(rules, 2, 4, 8) == 0
    with pytest.raises(ReadError, match="unrecognized collective"):
        read_openmpi_json('{"collectives": {"reducescatter": []}}')
    with pytest.raises(ReadError, match="NULL failure path"):
        read_mpich('{"collective=allreduce": {"avg_msg_size<=8": '
                   '{"algorithm=MPIR_Allreduce_intra_ring": {}}}}')
    with pytest.raises(ReadError, match="int"):
        read_mpich('{"collective=allreduce": {"avg_msg_size<=4294967296": {"algorithm=a": {}},'
                   ' "avg_msg_size=any": {"algorithm=b": {}}}}')
    with pytest.raises(ReadError, match="does not know"):
        read_nccl("allreduce,0,10,Ring,simple,1,1,4\n")
    # a comment longer than fgets' 255 bytes spills into a second line that is parsed
    spill = "# " + "x" * 260 + ",0,10,ring,simple,1,1,4\n"
    with pytest.raises(ReadError):
        read_nccl(spill)


@pytest.mark.parametrize("args, message", [
    (["--format", "excel"], "unknown format 'excel'"),
    (["--format", "openmpi"], "--out"),
    (["--ranks", "1,4", "--format", "openmpi", "--out", "X"], "one rank"),
    (["--ranks", "four"], "rank counts"),
    (["--collective", "reducescatter", "--algorithms", "ring", "--format", "mpich",
      "--out", "X"], "nothing to choose from"),
    (["--algorithms", "rabenseifner", "--format", "nccl", "--out", "X"],
     "nothing to choose from"),
    (["--collective", "allgather", "--algorithms", "recursive-doubling", "--ranks", "6",
      "--format", "openmpi", "--out", "X"], "nothing to choose from"),
    (["--format", "mpich", "--out", "X", "--mpich-defaults", "/nonexistent.json"],
     "cannot read MPICH defaults"),
    (["--library", "mpich", "--format", "openmpi", "--out", "X"], "is for openmpi"),
])
def test_bad_input_is_one_line(capsys, tmp_path, args, message):
    args = [str(tmp_path / a) if a == "X" else a for a in args]
    code, out, err = run_here(capsys, "tune", "--sizes", "8:64K:8", *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "X").exists()


def test_mpich_rejects_sizes_it_cannot_read():
    table = TuneTable("allreduce", "mpich", (4,), {}, {4: (
        Band("recursive-doubling", (8,), None, None), Band("ring", (2**32,), None, None))},
        {4: ("recursive-doubling", "ring")})
    from sim.export.mpich import mpich_json

    with pytest.raises(ValueError, match="32-bit"):
        mpich_json(table, {"collective=allreduce": {"comm_type=intra": {}}})


def test_files_are_written_whole_or_not_at_all(tmp_path):
    from sim.export import write_atomic

    target = tmp_path / "rules.txt"
    target.write_text("old\n")
    with pytest.raises(TypeError):
        write_atomic(target, None)  # fails while writing
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules.txt"]
    with pytest.raises(ValueError, match="no directory"):
        write_atomic(tmp_path / "missing" / "x.txt", "1\n")


def test_bench_tuned_tells_formats_and_settings_apart(tmp_path):
    from bench._common import UsageError
    from bench.tuned import table_format, variant_env

    files = {"ompi.conf": "# rules\n1\n2\n1\n4\n1\n0 4 0 0\n",
             "ompi.json": '{"collectives": {"allreduce": []}}',
             "mpich.json": '{"collective=bcast": {}}'}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert table_format(tmp_path / "ompi.conf") == "openmpi"
    assert table_format(tmp_path / "ompi.json") == "openmpi-json"
    assert table_format(tmp_path / "mpich.json") == "mpich"
    (tmp_path / "nccl.conf").write_text("allreduce,0,10,ring,simple,1,1,4\n")
    with pytest.raises(UsageError, match="loaded by NCCL"):
        table_format(tmp_path / "nccl.conf")
    (tmp_path / "x.txt").write_text("hello\n")
    with pytest.raises(UsageError, match="no Open MPI rules file"):
        table_format(tmp_path / "x.txt")
    with pytest.raises(UsageError, match="cannot read"):
        table_format(tmp_path / "missing")
    assert variant_env("mpich", "allreduce", force="ring") == {
        "MPIR_CVAR_DEVICE_COLLECTIVES": "none", "MPIR_CVAR_ALLREDUCE_INTRA_ALGORITHM": "ring"}
    assert variant_env("openmpi", "allgather", table="/t") == {
        "OMPI_MCA_coll_tuned_use_dynamic_rules": "1",
        "OMPI_MCA_coll_tuned_dynamic_rules_filename": "/t"}
