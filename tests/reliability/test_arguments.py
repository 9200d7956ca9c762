"""Bad arguments through the public commands: one ``g2lstm: error:`` line, exit status 2.

Range checks of the layer itself (``G2LSTM(tau=0)`` ...) are in ``tests/nn/test_errors.py``,
the compression settings (rank, step, bits) in ``tests/compress/test_compress_cli.py``; this
file drives the same checks through ``g2lstm lm train`` / ``g2lstm mt train`` (and argparse's
own refusals, which must look like every other error).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import snapshot

LM = ["lm", "train", "--preset", "tiny", "--print-config"]
MT = ["mt", "train", "--preset", "tiny", "--print-config"]

CASES = [
    ([*LM, "--tau", "0"], ["model.gates.tau=0.0", "(0.0, inf]"]),
    ([*LM, "--tau", "-1"], ["model.gates.tau=-1.0"]),
    ([*LM, "--tau", "nan"], ["model.gates.tau=nan"]),
    ([*LM, "--tau", "abc"], ["--tau", "invalid float value"]),
    ([*LM, "--noise-p", "1.5"], ["model.gates.noise_p=1.5", "[0.0, 1.0]"]),
    ([*LM, "--noise-p", "-0.1"], ["model.gates.noise_p=-0.1"]),
    ([*LM, "--cell", "gru"], ["--cell", "invalid choice: 'gru'", "'g2'", "--help"]),
    ([*LM, "--set", "model.noisy_gates=[input,bogus]"], ["unknown gate 'bogus'", "forget"]),
    ([*LM, "--set", "model.gates.eval_gates=fuzzy"], ["eval_gates='fuzzy'", "'hard'"]),
    ([*LM, "--batch-size", "0"], ["train.batch_size=0", ">= 1"]),
    ([*LM, "--bptt", "0"], ["train.bptt=0"]),
    (["lm", "train", "--preset", "huge", "--out", "x"], ["--preset", "invalid choice: 'huge'"]),
    (["lm", "train", "--tau", "0.5"], ["required", "--out"]),
    (["lm", "train", "--out", "x", "--set", "model.nhid"], ["--set", "section.key=value"]),
    (["lm", "frobnicate"], ["invalid choice: 'frobnicate'"]),
    (["lm", "eval", "x", "--split", "train"], ["--split", "invalid choice: 'train'"]),
    ([*MT, "--set", "model.cell=gru"], ["model.gates.cell='gru'", "'lstm'"]),
    ([*MT, "--set", "model.gates.cell=gru"], ["model.gates.cell='gru'", "'lstm'"]),
    ([*MT, "--set", "model.tau=0"], ["tau"]),
    ([*MT, "--set", "model.noise_p=2"], ["noise_p"]),
    ([*MT, "--set", "train.max_tokens=0"], ["max_tokens"]),
    (["mt", "train", "--preset", "giant", "--out", "x"], ["giant"]),
    (["compress", "run", "--method", "zip", "-o", "y"], ["--method", "invalid choice: 'zip'"]),
    (["reproduce", "--scale", "gigantic"], ["gigantic"]),
    (["analyze", "a", "--split", "dev", "--out", "y"], ["--split"]),
]


@pytest.mark.parametrize(("argv", "needles"), CASES, ids=lambda v: " ".join(v)[:60])
def test_bad_argument_is_one_clear_line(
    argv, needles, tmp_path: Path, cli_error, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [a if a != "x" else str(tmp_path / "x") for a in argv]
    if "--print-config" in argv:
        argv = [*argv, "--out", str(tmp_path / "x")]
    cli_error(argv, *needles)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_conflicting_resume_and_preset_leave_the_run_untouched(lm_run, cli_error) -> None:
    _, run = lm_run
    before = snapshot(run)
    cli_error(
        ["lm", "train", "--out", str(run), "--resume", "--preset", "tiny"], "--resume", "--preset"
    )
    cli_error(
        ["lm", "train", "--out", str(run), "--resume", "--set", "model.nhid=8"],
        "model.nhid: 24 -> 8",
        "new --out",
    )
    cli_error(["lm", "train", "--out", str(run), "--resume", "--tau", "0"], "tau")
    assert snapshot(run) == before


def test_conflicting_compress_flags(lm_run, tmp_path: Path, cli_error) -> None:
    _, run = lm_run
    out = tmp_path / "c.safetensors"
    cli_error(
        ["compress", str(run), "--method", "round", "--step", "0.2", "--bits", "2", "-o", str(out)],
        "--bits does not apply",
    )
    cli_error(["compress", str(run), "--method", "quant", "--bits", "0", "-o", str(out)], "bits")
    cli_error(["compress", str(run), "--method", "round", "--step", "-1", "-o", str(out)], "step")
    cli_error(
        ["compress", str(run), "--method", "svd", "--rank", "25", "-o", str(out)], "rank", "<="
    )
    assert not out.exists()
