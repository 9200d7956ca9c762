"""``g2lstm lm truncate``: the first E epochs of a longer run are the E-epoch run."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from g2lstm.cli import main
from g2lstm.errors import ConfigError, DataError, TrainingError
from g2lstm.lm import load_model, preset_config, train
from g2lstm.lm.truncate import find_epoch_checkpoints, truncate_run
from g2lstm.train import read_metrics


def _config(data: Path, **overrides):
    # the tiny preset draws gate noise, dropout masks and random segment lengths: every
    # random stream has to carry over from the checkpoint
    base = {
        "data": str(data),
        "model.cell": "g2",
        "train.progress": False,
        "train.threads": 1,
        "train.limit_tokens": 6000,
    }
    return preset_config("tiny", {**base, **overrides})


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _valid_losses(run: Path) -> list[float]:
    return [
        float(r["valid_loss"]) for r in read_metrics(run / "metrics.jsonl") if "valid_loss" in r
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, write_lm_corpus: Callable[..., Path]):
    """A 4-epoch run keeping every epoch's checkpoint, and the 2-epoch run trained directly."""
    root = tmp_path_factory.mktemp("truncate")
    data = write_lm_corpus(root / "data")
    long = _config(data, **{"train.epochs": 4, "train.keep_last": 4})
    train(long, root / "long")
    short = train(long.replace({"train.epochs": 2, "train.keep_last": 2}), root / "short")
    return root, data, short


def test_the_cut_run_is_the_run_trained_for_fewer_epochs(runs) -> None:
    root, _, short = runs
    before = _tree_digest(root / "long")
    cut = truncate_run(root / "long", 2, root / "cut")
    assert _tree_digest(root / "long") == before  # the source is only read
    assert cut.complete and cut.epochs == 2 and cut.steps == short.steps
    assert cut.valid_ppl == short.valid_ppl and cut.test_ppl == short.test_ppl
    a, b = (
        load_model(root / "cut").model.state_dict(),
        load_model(root / "short").model.state_dict(),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _valid_losses(root / "cut") == _valid_losses(root / "short")
    losses = _valid_losses(root / "short")
    assert losses[0] < losses[1]  # the best checkpoint is not the last: both paths are taken
    assert load_model(root / "cut").config.train.epochs == 2
    stored = json.loads((root / "cut" / "results.json").read_text())
    assert stored["details"]["test_ppl"] == pytest.approx(short.test_ppl)
    # the cut run is an ordinary finished run: resuming it does nothing more
    again = train(load_model(root / "cut").config, root / "cut", resume=True)
    assert again.test_ppl == cut.test_ppl


def test_copies_of_pruned_checkpoints_are_found_and_other_runs_ignored(
    runs, tmp_path: Path
) -> None:
    root, data, short = runs
    pruned = tmp_path / "pruned"
    shutil.copytree(root / "long", pruned)
    kept = tmp_path / "kept"
    kept.mkdir()
    config = load_model(pruned).config
    for ckpt in find_epoch_checkpoints(pruned, config).values():
        if ckpt.epoch <= 2:  # as keep_last would have done, after copying them away
            shutil.move(ckpt.path, kept / ckpt.path.name)
    other = tmp_path / "other-seed"  # another run's checkpoints in the same folder are not used
    train(_config(data, **{"train.epochs": 2, "train.seed": 7}), other)
    for step in (other / "checkpoints").glob("step-*"):
        shutil.copytree(step, kept / f"step-{999000 + int(step.name[5:]):09d}")
    with pytest.raises(DataError, match=r"epoch\(s\) .*2.* not kept.*keep_last"):
        truncate_run(pruned, 2, tmp_path / "no")
    cut = truncate_run(pruned, 2, tmp_path / "cut", checkpoint_dirs=[kept])
    assert cut.test_ppl == short.test_ppl


def test_refusals_name_what_to_change(runs, tmp_path: Path) -> None:
    root, data, _ = runs
    with pytest.raises(ConfigError, match="from 1 to 3"):
        truncate_run(root / "long", 4, tmp_path / "a")
    with pytest.raises(ConfigError, match="from 1 to 3"):
        truncate_run(root / "long", 0, tmp_path / "a")
    with pytest.raises(DataError, match="no config.yaml"):
        truncate_run(tmp_path, 1, tmp_path / "b")
    with pytest.raises(TrainingError, match="already holds a run"):
        truncate_run(root / "long", 1, root / "short")
    tuned = tmp_path / "tuned"  # refused from its config alone
    tuned.mkdir()
    config = _config(data, **{"train.epochs": 2, "train.finetune_epochs": 1})
    (tuned / "config.yaml").write_text(config.to_yaml())
    with pytest.raises(ConfigError, match="fine-tune stage"):
        truncate_run(tuned, 1, tmp_path / "c")


def test_the_command(runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _, short = runs
    out = tmp_path / "cut"
    code = main(
        ["lm", "truncate", str(root / "long"), "--epochs", "2", "--out", str(out), "--json"]
    )
    assert code == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["epochs"] == 2 and line["test_ppl"] == pytest.approx(short.test_ppl)
    assert main(["lm", "truncate", str(root / "long"), "--epochs", "9", "--out", str(out)]) == 2
    assert "--epochs 9" in capsys.readouterr().err
