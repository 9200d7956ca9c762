"""A second run on a locked directory; no pickle and no unsafe ``torch.load`` in the package;
every long-running command announces what it will do and where it writes."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import g2lstm
from g2lstm.cli import main

from .conftest import snapshot

_HOLD_LOCK = """
import sys, time
from g2lstm.train import RunLock
with RunLock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_second_run_on_the_same_directory_is_refused(lm_run, cli_error) -> None:
    data, run = lm_run
    before = snapshot(run)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(run)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = ["lm", "train", "--out", str(run), "--resume", "--no-progress"]
        cli_error(argv, str(run), "in use by another g2lstm run", f"pid {holder.pid}", "--out")
        assert snapshot(run) == before
    finally:
        holder.communicate("\n", timeout=30)
    assert (
        main(["lm", "train", "--out", str(run), "--resume", "--max-steps", "4", "--no-progress"])
        == 0
    )
    assert not (run / ".g2lstm.pid").exists()


_PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _is_torch_load(func: ast.expr) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "load"
        and isinstance(func.value, ast.Name)
        and func.value.id == "torch"
    )


def _violations(source: str, name: str) -> list[str]:
    bad = []
    tree = ast.parse(source, filename=name)
    load_aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad += [
                f"{name}:{node.lineno} import {a.name}"
                for a in node.names
                if a.name.split(".")[0] in _PICKLERS
            ]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in _PICKLERS:
                bad.append(f"{name}:{node.lineno} from {node.module} import")
            if node.module == "torch":
                load_aliases |= {a.asname or a.name for a in node.names if a.name == "load"}
        elif isinstance(node, ast.Call) and (
            _is_torch_load(node.func)
            or (isinstance(node.func, ast.Name) and node.func.id in load_aliases)
        ):
            safe = any(
                k.arg == "weights_only"
                and isinstance(k.value, ast.Constant)
                and k.value.value is True
                for k in node.keywords
            )
            if not safe:
                bad.append(f"{name}:{node.lineno} torch.load without weights_only=True")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and (
                node.func.id == "__import__"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).split(".")[0] in _PICKLERS
            )
        ):
            bad.append(f"{name}:{node.lineno} __import__({node.args[0].value!r})")
    return bad


def test_the_scanner_finds_what_it_must() -> None:
    bad = """
import pickle
import dill as d
from joblib import load
from cPickle import loads
import torch
from torch import load as tl
torch.load("x")
torch.load("x", weights_only=False)
tl("x")
__import__("cloudpickle")
torch.load("x", weights_only=True)
"""
    found = _violations(bad, "bad.py")
    assert len(found) == 8, found
    assert all("12" not in f.split(":")[1] for f in found)


def test_no_pickle_import_and_every_torch_load_is_weights_only() -> None:
    root = Path(g2lstm.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 50
    bad = [v for f in files for v in _violations(f.read_text(encoding="utf-8"), str(f))]
    assert not bad, bad


def test_commands_announce_what_they_do_and_where_they_write(
    lm_run, tmp_path: Path, capsys, cli_argv
) -> None:
    data, run = lm_run
    out = tmp_path / "new"
    assert main(cli_argv.lm_train(data, out, "--max-steps", "1")) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("g2lstm lm train: training") and first.endswith(f"-> {out}")

    comp = tmp_path / "c.safetensors"
    assert main(["compress", str(run), "--method", "quant", "--bits", "4", "-o", str(comp)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("g2lstm compress: ") and str(comp) in first and str(run) in first


def test_sweep_analyze_and_reproduce_announce_where_they_write(
    lm_run, tmp_path: Path, capsys
) -> None:
    _, run = lm_run
    sweep = tmp_path / "sweep"
    argv = [
        "compress",
        "sweep",
        str(run),
        "-o",
        str(sweep),
        "--paper-only",
        "--no-plot",
        "--max-batches",
        "1",
    ]
    assert main(argv) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("g2lstm compress sweep: ") and str(sweep) in first

    an = tmp_path / "an"
    argv = [
        "analyze",
        str(run),
        "--out",
        str(an),
        "--max-batches",
        "1",
        "--batch-size",
        "2",
        "--bptt",
        "4",
        "--no-sensitivity",
        "--no-hard-gates",
        "--threads",
        "1",
        "--sentences",
        "w1 w2 w3",
    ]
    assert main(argv) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("g2lstm analyze: ") and first.endswith(f"-> {an}")

    rep = tmp_path / "rep"
    assert main(["reproduce", "--scale", "tiny", "--out", str(rep), "--dry-run"]) == 0
    head = capsys.readouterr().out.splitlines()
    assert head[0].startswith("g2lstm reproduce --scale tiny") and str(rep) in head[1]
    assert not rep.exists()


def test_mt_train_announces_what_it_does(
    tmp_path: Path, capsys, write_parallel_corpus, cli_argv
) -> None:
    raw = write_parallel_corpus(tmp_path / "raw", {"train": 40, "valid": 8, "test": 8})
    assert main(cli_argv.mt_prepare(raw, tmp_path / "prep")) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("g2lstm mt prepare: ") and str(tmp_path / "prep") in first
    out = tmp_path / "mt"
    argv = [
        "mt",
        "train",
        "--preset",
        "tiny",
        "--data",
        str(tmp_path / "prep"),
        "--out",
        str(out),
        "--max-updates",
        "1",
        "--set",
        "train.valid_bleu=false",
    ]
    assert main(argv) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("g2lstm mt train: ") and str(out) in first


def test_write_lm_corpus_helper_is_deterministic(tmp_path: Path, write_lm_corpus) -> None:
    a, b = write_lm_corpus(tmp_path / "a"), write_lm_corpus(tmp_path / "b")
    assert (a / "train.txt").read_bytes() == (b / "train.txt").read_bytes()
