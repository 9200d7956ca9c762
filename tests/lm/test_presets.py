"""Presets keep their promise: ``tiny`` takes seconds on any dataset; no ``--preset`` on a
CPU-only machine states the cost and refuses a run of more than an hour without ``--yes``."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from g2lstm.cli import main


def _big_corpus(folder: Path, train_tokens: int) -> Path:
    """A corpus far larger than the tiny preset's cap (2,000 word types)."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    words = [f"w{i}" for i in range(2000)]
    for split, n in (
        ("train", train_tokens),
        ("valid", train_tokens // 10),
        ("test", train_tokens // 10),
    ):
        lines = [" ".join(rng.choices(words, k=20)) for _ in range(n // 20)]
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.mark.slow
def test_tiny_takes_seconds_on_a_large_dataset(tmp_path: Path, capsys, cli_argv) -> None:
    data = _big_corpus(tmp_path / "big", 400_000)
    run = tmp_path / "run"
    start = time.perf_counter()
    assert main(cli_argv.lm_train(data, run)) == 0
    seconds = time.perf_counter() - start
    capsys.readouterr()
    result = json.loads((run / "results.json").read_text())
    assert result["finished"] and result["task"] == "lm"
    # 2 epochs of the first 20,000 tokens at batch 4 x bptt 8 (random lengths): ~1,250 steps
    # instead of ~25,000 on the whole split
    assert result["steps"] < 2000
    assert seconds < 120, f"tiny preset took {seconds:.0f} s"  # generous: ~10-20 s when idle
    assert main(["lm", "eval", str(run), "--json"]) == 0
    captured = capsys.readouterr()
    fast = json.loads(captured.out)
    assert fast["limit_tokens"] == 20000 and "first 20,000 tokens" in captured.err
    # the run's test batch size is 1: 10 warmed-up streams give the batch-1 number
    assert (fast["batch_size"], fast["warmup"]) == (10, 200)
    assert fast["ppl"] == pytest.approx(result["details"]["test_ppl"])
    assert main(["lm", "eval", str(run), "--json", "--batch-size", "1"]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert (exact["batch_size"], exact["warmup"]) == (1, 0)
    assert fast["ppl"] == pytest.approx(exact["ppl"], abs=0.01)


def test_no_preset_on_cpu_states_the_cost_and_asks_for_yes(
    tmp_path: Path, capsys, write_lm_corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = write_lm_corpus(tmp_path / "data")
    small = [
        "--set",
        "model.nhid=16",
        "--set",
        "model.emsize=8",
        "--set",
        "model.nlayers=1",
        "--batch-size",
        "4",
        "--bptt",
        "8",
        "--threads",
        "1",
        "--no-progress",
        "--data",
        str(data),
    ]
    long_run = ["lm", "train", *small, "--out", str(tmp_path / "a"), "--epochs", "10000000"]
    assert main(long_run) == 2
    err = capsys.readouterr().err
    assert "no --preset given, so this is the 'paper' preset" in err
    assert "1 x 16 g2 model" in err and "10000000 + 500 epochs" in err and "s per step" in err
    assert "pick a preset (--preset tiny" in err and "--yes" in err
    assert not (tmp_path / "a" / "checkpoints").exists()  # nothing started
    short = [
        "lm",
        "train",
        *small,
        "--out",
        str(tmp_path / "b"),
        "--epochs",
        "1",
        "--finetune-epochs",
        "0",
    ]
    assert main(short) == 0  # within the hour: it says what it runs, then runs
    assert "about " in capsys.readouterr().err
    assert main([*long_run, "--yes", "--max-steps", "2"]) == 0  # --yes: no question asked


def test_paper_presets_follow_the_published_ptb_recipe_and_the_authors_defaults() -> None:
    from g2lstm.lm import preset_config

    paper = preset_config("paper", {})
    authors = preset_config("paper-authors", {})
    # AWD-LSTM's PTB command: --batch_size 20 --dropouti 0.4 --dropouth 0.25 --seed 141
    # --epoch 500, then finetune
    assert (paper.train.batch_size, paper.model.dropouti, paper.model.dropouth) == (20, 0.4, 0.25)
    assert (paper.train.seed, paper.train.epochs, paper.train.finetune_epochs) == (141, 500, 500)
    # the G2 authors' main.py defaults
    assert (authors.train.batch_size, authors.model.dropouti, authors.model.dropouth) == (
        80,
        0.65,
        0.3,
    )
    assert authors.train.seed == 1111
    # the rest is the same AWD-LSTM
    for section in ("model", "optim"):
        a, b = paper.to_dict()[section], authors.to_dict()[section]
        assert {k: v for k, v in a.items() if k not in ("dropouti", "dropouth")} == {
            k: v for k, v in b.items() if k not in ("dropouti", "dropouth")
        }
    assert (paper.model.nhid, paper.model.nlayers, paper.train.bptt, paper.optim.lr) == (
        1150,
        3,
        70,
        30.0,
    )
