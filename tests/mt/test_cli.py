"""``g2lstm mt prepare|train|translate|eval`` through the real entry point."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from g2lstm.cli import main


@pytest.mark.parametrize("command", [[], ["prepare"], ["train"], ["translate"], ["eval"]])
def test_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["mt", *command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: g2lstm mt" in out
    if command == ["train"]:
        assert "--cell" in out and "lstm" in out and "--max-minutes" in out


def test_print_config_layers_preset_file_and_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("model:\n  dropout: 0.3\n  tau: 0.5\n")  # an old flat gate key
    argv = [
        "mt",
        "train",
        "--out",
        str(tmp_path / "run"),
        "--config",
        str(cfg_file),
        "--cell",
        "sharpened",
        "--max-minutes",
        "55",
        "--set",
        "optim.name=adadelta",
        "--print-config",
    ]
    assert main(argv) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["model"]["emb"] == 256 and cfg["model"]["dropout"] == 0.3
    gates = cfg["model"]["gates"]
    assert (gates["cell"], gates["tau"], gates["noise_p"]) == ("sharpened", 0.2, 0.0)  # cell's
    assert cfg["train"]["max_minutes"] == 55.0 and cfg["optim"]["name"] == "adadelta"


def test_bad_values_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["mt", "train", "--out", str(tmp_path), "--set", "model.layers=0", "--print-config"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "model.layers=0" in err and "Traceback" not in err
    assert main(["mt", "train", "--out", str(tmp_path / "x"), "--preset", "tiny"]) == 2
    assert "--data" in capsys.readouterr().err


@pytest.fixture
def prepare_toy(tmp_path: Path, write_parallel_corpus) -> Callable[..., tuple[Path, Path]]:
    """``prepare_toy(sizes, seed)``: write a toy parallel corpus (``s3 s7`` -> ``t7 t3``) into
    ``tmp_path/raw``, ``mt prepare`` it; return (prepared folder, run folder)."""

    def prepare(sizes: dict[str, int], seed: int) -> tuple[Path, Path]:
        raw = write_parallel_corpus(tmp_path / "raw", sizes, seed=seed)
        prep = tmp_path / "prep"
        argv = ["mt", "prepare", "--dataset", "folder", "--raw", str(raw), "--src", "src"]
        argv += ["--tgt", "tgt", "--pretokenized", "--bpe-merges", "0", "--out", str(prep)]
        assert main(argv) == 0
        return prep, tmp_path / "run"

    return prepare


def test_prepare_train_translate_eval(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    prepare_toy,
) -> None:
    prep, run = prepare_toy({"train": 200, "valid": 20, "test": 20}, seed=1)
    assert "sizes" in capsys.readouterr().out
    monkeypatch.setenv("G2LSTM_PROGRESS_EVERY", "1e-9")  # a progress line at every batch
    train_argv = [
        "mt",
        "train",
        "--preset",
        "tiny",
        "--data",
        str(prep),
        "--out",
        str(run),
        "--cell",
        "g2",
        "--max-updates",
        "4",
        "--set",
        "train.valid_bleu=false",
    ]
    assert main(train_argv) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "g2lstm: epoch 1 | batch 4/" in captured.err and "ETA " in captured.err
    assert "g2 (tau=0.9, noise_p=0.2)" in out and "stopped (max_updates) at step 4" in out
    assert main(train_argv) == 2  # the folder has checkpoints and --resume is missing
    assert "already holds checkpoints" in capsys.readouterr().err
    resume = [
        "mt",
        "train",
        "--out",
        str(run),
        "--resume",
        "--max-updates",
        "6",
        "--set",
        "train.valid_bleu=false",
    ]
    assert main(resume) == 0
    assert "resuming" in capsys.readouterr().out

    sentences = "s1 s2 s3\ns4 s4\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(sentences))
    assert main(["mt", "translate", str(run), "--input-format", "tok", "--beam", "2"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2
    assert "sentences/s" in captured.err
    (tmp_path / "in.txt").write_text(sentences)
    assert (
        main(
            [
                "mt",
                "translate",
                str(run),
                "--input",
                str(tmp_path / "in.txt"),
                "--output",
                str(tmp_path / "out.txt"),
                "--beam",
                "1",
                "--output-format",
                "bpe",
            ]
        )
        == 0
    )
    assert len((tmp_path / "out.txt").read_text().splitlines()) == 2
    capsys.readouterr()

    assert (
        main(
            [
                "mt",
                "eval",
                str(run),
                "--split",
                "test",
                "--beam",
                "2",
                "--hyps",
                str(tmp_path / "hyps.txt"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "tokenised BLEU" in out and "sacreBLEU (detokenised)" in out
    assert "tok:13a" in out and "sentences/s" in out
    record = json.loads((run / "eval-test.json").read_text())
    for key in (
        "tok_bleu",
        "detok_bleu",
        "tok_signature",
        "detok_signature",
        "sentences_per_second",
    ):
        assert key in record
    assert record["num_sentences"] == 20 and record["beam"] == 2
    assert len((tmp_path / "hyps.txt").read_text().splitlines()) == 20
    assert record["eval_temperature"] == "divide" and "case:lc" in record["tok_signature"]
    assert "tokenised BLEU (lowercased" in out  # target "tgt": lowercased by default
    assert (
        main(
            [
                "mt",
                "eval",
                str(run),
                "--split",
                "test",
                "--beam",
                "2",
                "--tok-case",
                "mixed",
                "--eval-temperature",
                "drop",
                "--json",
                str(tmp_path / "drop.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "tokenised BLEU (case-sensitive" in out and "case:mixed" in out
    record = json.loads((tmp_path / "drop.json").read_text())
    assert record["eval_temperature"] == "drop" and record["tok_case"] == "mixed"
    assert "case:mixed" in record["tok_signature"]
    assert main(["mt", "eval", str(run), "--split", "nope"]) == 2


def test_interrupted_training_exits_130_and_resumes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    prepare_toy,
) -> None:
    """SIGTERM mid-run: a resumable checkpoint, exit status 130 (not 0: the run is unfinished)."""
    import os
    import signal

    from g2lstm.mt import steps as steps_mod

    prep, run = prepare_toy({"train": 120, "valid": 10, "test": 10}, seed=2)
    original = steps_mod.MTTrainer.train_step
    calls = []

    def step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, *args, **kwargs)

    budget = ["--max-updates", "5", "--set", "train.valid_bleu=false"]
    with monkeypatch.context() as m:
        m.setattr(steps_mod.MTTrainer, "train_step", step)
        assert (
            main(
                ["mt", "train", "--preset", "tiny", "--data", str(prep), "--out", str(run), *budget]
            )
            == 130
        )
    assert "--resume" in capsys.readouterr().err
    assert main(["mt", "train", "--out", str(run), "--resume", *budget]) == 0
    assert "stopped (max_updates) at step 5" in capsys.readouterr().out
