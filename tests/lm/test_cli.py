"""``g2lstm lm train|eval|generate``: help texts, a full round trip, resume via the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from g2lstm.cli import main


@pytest.mark.parametrize("argv", [["lm"], ["lm", "train"], ["lm", "eval"], ["lm", "generate"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: g2lstm lm" in out
    if argv[-1] == "train":
        assert "--cell" in out and "--config" in out and "--resume" in out
    if argv[-1] == "eval":
        assert "--cache-pointer" in out and "--eval-gates" in out


def test_print_config_layers_preset_file_and_flags(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("preset: small\ntrain:\n  seed: 5\nmodel:\n  nhid: 64\n", encoding="utf-8")
    argv = [
        "lm",
        "train",
        "--config",
        str(cfg),
        "--cell",
        "sharpened",
        "--epochs",
        "2",
        "--set",
        "model.emsize=32",
        "--out",
        str(tmp_path / "r"),
        "--print-config",
    ]
    assert main(argv) == 0
    import yaml

    out = yaml.safe_load(capsys.readouterr().out)
    assert out["preset"] == "small" and out["train"]["seed"] == 5 and out["train"]["epochs"] == 2
    assert out["model"]["nhid"] == 64 and out["model"]["emsize"] == 32
    gates = out["model"]["gates"]
    assert (gates["cell"], gates["tau"], gates["noise_p"]) == (
        "sharpened",
        0.2,
        0.0,
    )
    assert main(["lm", "train", "--set", "model.bogus=1", "--out", "x", "--print-config"]) == 2
    assert "bogus" in capsys.readouterr().err


def test_train_eval_generate_round_trip(
    tmp_path: Path, capsys, write_lm_corpus: Callable[..., Path], cli_argv
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    run = tmp_path / "run"
    base = cli_argv.lm_train(data, run)
    assert main([*base, "--max-steps", "5"]) == 0
    assert "--resume" in capsys.readouterr().err
    assert main(["lm", "eval", str(run), "--json", "--split", "valid"]) == 0
    early = capsys.readouterr()
    assert json.loads(early.out)["checkpoint_kind"] == "latest"  # no validated epoch yet
    assert "not a best-validation checkpoint (latest)" in early.err
    assert main(base) == 2  # existing run without --resume
    assert "--resume" in capsys.readouterr().err
    assert main(["lm", "train", "--out", str(run), "--resume", "--set", "model.nhid=8"]) == 2
    assert "model.nhid" in capsys.readouterr().err
    assert main(["lm", "train", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert "end of training" in capsys.readouterr().out
    assert main(["lm", "eval", str(run), "--json"]) == 0
    captured = capsys.readouterr()
    plain = json.loads(captured.out)
    stored = json.loads((run / "results.json").read_text())
    assert stored["format"] == "g2lstm-run-result" and stored["finished"]
    assert plain["ppl"] == pytest.approx(stored["details"]["test_ppl"])
    assert (plain["checkpoint_kind"], plain["best_valid"], plain["eval_gates"]) == (
        "best-valid",
        True,
        "soft",
    )
    assert (plain["batch_size"], plain["bptt"], plain["split"]) == (1, 8, "test")
    assert "not a best-validation" not in captured.err
    argv = [
        "lm",
        "eval",
        str(run),
        "--json",
        "--cache-pointer",
        "--window",
        "20",
        "--split",
        "valid",
    ]
    assert main(argv) == 0
    ptr = json.loads(capsys.readouterr().out)
    assert ptr["cache_pointer"] and 1 < ptr["ppl"] < 100
    assert main(["lm", "eval", str(run), "--eval-gates", "hard", "--json"]) == 0
    hard = json.loads(capsys.readouterr().out)
    assert hard["ppl"] != plain["ppl"] and 1 < hard["ppl"] < 1000
    # the tiny preset is a G2-LSTM (tau 0.9): sigmoid(a) instead of sigmoid(a / tau)
    assert plain["eval_temperature"] == "divide"
    assert main(["lm", "eval", str(run), "--eval-temperature", "drop", "--json"]) == 0
    drop = json.loads(capsys.readouterr().out)
    assert drop["eval_temperature"] == "drop" and drop["ppl"] != plain["ppl"]
    assert hard["eval_gates"] == "hard"
    assert main(["lm", "generate", str(run), "--words", "12", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert len(text.split()) <= 12 and all(w.startswith("w") or w == "<unk>" for w in text.split())
    assert main(["lm", "generate", str(run), "--words", "12", "--seed", "3"]) == 0
    assert capsys.readouterr().out == text  # seeded sampling is reproducible


def test_train_off_a_terminal_prints_progress_lines(
    tmp_path: Path,
    capsys,
    monkeypatch: pytest.MonkeyPatch,
    write_lm_corpus: Callable[..., Path],
) -> None:
    from g2lstm.train.progress import ENV_PROGRESS_EVERY

    monkeypatch.setenv(ENV_PROGRESS_EVERY, "30")  # restored after the test; main sets it
    data = write_lm_corpus(tmp_path / "data")
    argv = [
        "--progress-every",
        "1e-9",
        "lm",
        "train",
        "--preset",
        "tiny",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--threads",
        "1",
        "--max-steps",
        "20",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("g2lstm: main epoch 1 | batch ")]
    assert lines and any(
        "step=10 loss=" in ln and " ppl=" in ln and " tok_s=" in ln and "ETA " in ln for ln in lines
    ), err
    assert main(["--progress-every", "-1", "lm", "eval", str(tmp_path / "run")]) == 2
