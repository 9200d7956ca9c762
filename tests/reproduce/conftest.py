"""Shared fixtures of the reproduction tests: runs of the ``tiny`` scale trained once per
session with the public commands, for the ``--reuse`` tests on the real corpora."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from g2lstm.cli import main
from g2lstm.reproduce.context import RunContext
from g2lstm.reproduce.plan import build_plan, get_scale
from g2lstm.reproduce.run import run_plan


@pytest.fixture(scope="session")
def public_tiny_runs(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``lm-lstm`` and ``mt-g2``: the ``tiny`` scale's LSTM language model and
    G2 translation model (seed 1), trained by ``g2lstm lm train`` / ``g2lstm mt train`` with
    the scale's settings as flags, on copies of the data the scale's data steps write.

    Trained once per session (the two trainings are most of the cost of a tiny
    reproduction); ``test_reuse`` evaluates them through ``--reuse`` and ``test_tiny_run``
    reproduces the whole study reusing them. Tests must not modify the folder.
    """
    root = tmp_path_factory.mktemp("public_tiny_runs")
    scale, out, runs = get_scale("tiny"), root / "data-steps", root / "runs"
    runs.mkdir()
    steps = {s.id: s for s in build_plan(scale, 1, out)}
    ctx = RunContext(scale, out, str(real_data), log=lambda _: None)
    run_plan([steps["lm-data"], steps["mt-data"]], ctx)
    lm_data = shutil.copytree(out / "data" / "lm" / "ptb", root / "mine" / "ptb")
    mt_data = shutil.copytree(out / "data" / "mt" / "prepared", root / "mine" / "prep")
    common = ["--seed", "1", "--threads", "1", "--no-progress"]
    lm = ["lm", "train", "--preset", "small", "--cell", "lstm", *common, "--data", str(lm_data)]
    lm += ["--out", str(runs / "lm-lstm"), "--epochs", "4"]
    for setting in ("model.emsize=64", "model.nhid=64", "optim.decay_after=2"):
        lm += ["--set", setting]
    assert main([*lm, "--set", "train.test_batch_size=10"]) == 0
    mt = ["mt", "train", "--preset", "tiny", *common, "--cell", "g2", "--data", str(mt_data)]
    mt += ["--out", str(runs / "mt-g2"), "--epochs", "5", "--max-tokens", "800"]
    for setting in ("model.emb=64", "model.hidden=64", "optim.lr=0.002", "optim.lr_decay=1.0"):
        mt += ["--set", setting]
    # no valid BLEU; the scale trains on its whole slice (tiny alone stops at 500 pairs)
    mt += ["--set", "train.valid_bleu=false", "--set", "train.limit_sentences=null"]
    assert main(mt) == 0
    return runs
