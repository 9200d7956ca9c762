"""``benchmarks/lm_ablations.py --epochs E``: the baselines are the full runs cut to E epochs."""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from g2lstm.lm import load_model, preset_config, train
from g2lstm.reproduce.ablations import sweep_runs
from g2lstm.train import read_result

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "lm_ablations.py"


@pytest.fixture(scope="module")
def script():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        spec = importlib.util.spec_from_file_location("lm_ablations", SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(SCRIPT.parent))


def _args(full: Path, copies: Path | None = None) -> argparse.Namespace:
    return argparse.Namespace(
        epochs=1, full_runs=str(full), checkpoints_from=str(copies) if copies else None
    )


def test_a_baseline_is_cut_from_the_full_run_or_left_to_train(
    script, tmp_path: Path, write_lm_corpus
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    config = preset_config(
        "tiny", {"data": str(data), "model.cell": "lstm", "train.progress": False}
    )
    full = tmp_path / "bench"
    train(config, full / "lstm-seed1")  # 2 epochs, both checkpoints kept
    out = tmp_path / "ablate"
    assert script.cut_baseline(out, "lstm-e1", "lstm", 1, _args(full))
    cut = read_result(out / "lstm-e1-seed1")
    assert cut is not None and cut.finished and cut.epochs == 1
    assert load_model(out / "lstm-e1-seed1").config.train.epochs == 1
    # a folder already there is left to run_one (which resumes or reads it)
    assert not script.cut_baseline(out, "lstm-e1", "lstm", 1, _args(full))
    # no full run of that cell and seed: trained
    assert not script.cut_baseline(out, "g2-e1", "g2", 1, _args(full))
    assert not (out / "g2-e1-seed1").exists()
    # the epoch's checkpoint pruned: trained, unless a copy is given
    pruned = tmp_path / "pruned"
    shutil.copytree(full, pruned)
    copies = tmp_path / "copies" / "lstm-seed1"
    copies.mkdir(parents=True)
    first = sorted((pruned / "lstm-seed1" / "checkpoints").glob("step-*"))[0]
    shutil.move(first, copies / first.name)
    assert not script.cut_baseline(tmp_path / "a", "lstm-e1", "lstm", 1, _args(pruned))
    assert not (tmp_path / "a" / "lstm-e1-seed1").exists()
    assert script.cut_baseline(tmp_path / "b", "lstm-e1", "lstm", 1, _args(pruned, copies.parent))
    again = read_result(tmp_path / "b" / "lstm-e1-seed1")
    assert again is not None and again.flat()["test_ppl"] == cut.flat()["test_ppl"]


def test_the_dry_run_lists_the_cut_baselines_first(tmp_path: Path) -> None:
    cmd = [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--epochs", "6",
           "--seeds", "1", "--dry-run"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0].rsplit("/", 1)[-1] for line in lines[:3]] == [
        "lstm-e6-seed1",
        "sharpened-e6-seed1",
        "g2-e6-seed1",
    ]
    assert all("cut to 6 epochs" in line for line in lines[:3])
    assert len(lines) == 9 and all("--set train.epochs=6" in line for line in lines[3:])


@pytest.mark.slow
def test_every_run_is_cut_or_trained_probed_recorded_and_judged_from_the_records(
    tmp_path: Path, write_lm_corpus
) -> None:
    """The full chain at a reduced budget of 1 epoch (the ``tiny`` preset trains 2): the
    cells' full runs from ``lm_ptb.py``, the sweeps with two baselines cut from them and one
    trained, every run probed and recorded, then the verdicts from the two records alone."""
    data = write_lm_corpus(tmp_path / "data")
    record, cells = tmp_path / "record.json", tmp_path / "cells.json"
    bench = [sys.executable, str(SCRIPT.parent / "lm_ptb.py"), "--out", str(tmp_path / "cells"),
             "--data", str(data), "--preset", "tiny", "--cells", "lstm", "g2", "--seeds", "1",
             "--results", str(cells)]  # fmt: skip
    proc = subprocess.run(bench, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cmd = [sys.executable, str(SCRIPT), "--out", str(tmp_path / "ablate"), "--data", str(data),
           "--preset", "tiny", "--seeds", "1", "--epochs", "1", "--full-runs",
           str(tmp_path / "cells"), "--results", str(record)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lstm-e1-seed1: " in proc.stdout and "cut to 1 epochs" in proc.stdout
    runs = {r["run"]: r for r in json.loads(record.read_text())["runs"]}
    assert sorted(runs) == sorted(f"{name}-e1-seed1" for name, *_ in sweep_runs(1, 1))
    for cut in ("lstm-e1-seed1", "g2-e1-seed1"):  # cut, not trained: probed and recorded too
        log = (tmp_path / "ablate" / f"{cut}.train.log").read_text()
        assert "--probe-run" in log and " lm train " not in log
        assert runs[cut]["probe"] is not None and len(runs[cut]["curve"]) == 1
    trained = (tmp_path / "ablate" / "sharpened-e1-seed1.train.log").read_text()
    assert " lm train " in trained  # no full run of that cell to cut
    p05 = runs["g2-p0.05-e1-seed1"]
    assert p05["overrides"] == {"model.gates.noise_p": 0.05, "train.epochs": 1}
    assert p05["probe"]["config"]["noise_p"] == 0.05
    assert runs["g2-tau0.5-e1-seed1"]["probe"]["config"]["tau"] == 0.5
    ifo = runs["g2-ifo-e1-seed1"]["probe"]["config"]["noisy_gates"]
    assert ifo == ["input", "forget", "output"]

    shutil.rmtree(tmp_path / "ablate")  # the run folders are not needed any more
    summary = tmp_path / "summary"
    judge = [sys.executable, str(SCRIPT), "--summarize", str(summary), "--results", str(record),
             "--cells-record", str(cells), "--epochs", "1"]  # fmt: skip
    proc = subprocess.run(judge, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdicts = json.loads((summary / "verdicts.json").read_text())
    assert len(verdicts) == 6
    # one seed per side: every claim is measured, none can be decided
    assert {v["status"] for v in verdicts} == {"inconclusive at this scale"}
    text = (summary / "ablations.md").read_text()
    assert "11 probed runs" in text and "p = 0.05" in text
    test_ppl = p05["probe"]["ppl"]["test"]["soft"]
    assert f"{test_ppl:.2f}" in text
    assert (summary / "figures" / "ablation_p.png").is_file()
