"""Damaged, foreign and hostile checkpoints through ``g2lstm lm eval``, ``lm train --resume``,
``compress`` and ``analyze``: a one-line CheckpointError naming the file, nothing unpickled,
and the run directory left exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from .conftest import snapshot


def _ckpt(run: Path) -> Path:
    (step,) = sorted((run / "checkpoints").glob("step-*"))
    return step


def _resume(run: Path) -> list[str]:
    return ["lm", "train", "--out", str(run), "--resume", "--no-progress", "--threads", "1"]


def _commands(run: Path, tmp_path: Path) -> list[list[str]]:
    """Every command that loads the run's checkpoint."""
    return [
        ["lm", "eval", str(run)],
        _resume(run),
        ["compress", str(run), "--method", "quant", "--bits", "4", "-o", str(tmp_path / "q")],
    ]


def _check_all_refuse(run: Path, tmp_path: Path, cli_error, *needles: str) -> None:
    before = snapshot(run)
    for argv in _commands(run, tmp_path):
        cli_error(argv, *needles)
        assert snapshot(run) == before, argv
    assert not (tmp_path / "q").exists()


def test_missing_run_or_checkpoint_file(lm_run, tmp_path: Path, cli_error) -> None:
    _, run = lm_run
    cli_error(["lm", "eval", str(tmp_path / "nothing")], str(tmp_path / "nothing"), "run directory")
    cli_error(["lm", "generate", str(tmp_path / "nothing")], "no checkpoint")
    (_ckpt(run) / "model.safetensors").unlink()
    _check_all_refuse(run, tmp_path, cli_error, "model.safetensors", "missing")


def test_truncated_file(lm_run, tmp_path: Path, cli_error) -> None:
    _, run = lm_run
    path = _ckpt(run) / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _check_all_refuse(run, tmp_path, cli_error, str(path), "truncated")


def test_flipped_bytes_fail_the_hash(lm_run, tmp_path: Path, cli_error) -> None:
    _, run = lm_run
    path = _ckpt(run) / "trainer.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40
    path.write_bytes(bytes(data))
    cli_error(_resume(run), str(path), "sha256")
    path = _ckpt(run) / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40
    path.write_bytes(bytes(data))
    _check_all_refuse(run, tmp_path, cli_error, str(path), "sha256", "does not match")


def test_vocabulary_differs_from_the_data(
    lm_run, tmp_path: Path, cli_error, write_lm_corpus
) -> None:
    _, run = lm_run
    other = write_lm_corpus(tmp_path / "other", n_words=25, seed=1)
    before = snapshot(run)
    cli_error(["lm", "eval", str(run), "--data", str(other)], "vocabulary mismatch", str(other))
    cli_error([*_resume(run), "--data", str(other)], "vocabulary mismatch")
    assert snapshot(run) == before


def _edit_meta(ckpt: Path, edit) -> None:
    meta = json.loads((ckpt / "meta.json").read_text(encoding="utf-8"))
    edit(meta)
    (ckpt / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def test_architecture_differs_from_the_config(lm_run, tmp_path: Path, cli_error) -> None:
    """The stored config says nhid=32 but the weights are 24 wide (lm eval and resume)."""
    _, run = lm_run

    def widen(meta):
        meta["meta"]["config"]["model"]["nhid"] = 32

    _edit_meta(_ckpt(run), widen)
    before = snapshot(run)
    for argv in (["lm", "eval", str(run)], _resume(run)):
        line = cli_error(
            argv, str(_ckpt(run)), "rnns.0.weight_hh_l0: checkpoint [96, 24] vs model [128, 32]"
        )
        assert "hint" in line
        assert snapshot(run) == before


def test_newer_format_version(lm_run, tmp_path: Path, cli_error) -> None:
    _, run = lm_run

    def bump(meta):
        meta["format_version"] = 99

    _edit_meta(_ckpt(run), bump)
    _check_all_refuse(run, tmp_path, cli_error, "format version 99", "upgrade g2lstm")


class _Payload:
    """Unpickling this creates the marker file: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_disguised_as_a_checkpoint_is_never_loaded(
    lm_run, tmp_path: Path, cli_error, writer: str
) -> None:
    _, run = lm_run
    marker = tmp_path / "MARKER"

    def dump(path: Path) -> None:
        obj = {"encoder.weight": _Payload(marker)}
        if writer == "pickle":
            path.write_bytes(pickle.dumps(obj))
        else:
            torch.save(obj, path)

    # sanity: the payload really would run on an unpickling load
    probe = tmp_path / "probe.bin"
    dump(probe)
    pickle.loads(probe.read_bytes()) if writer == "pickle" else torch.load(
        probe, weights_only=False
    )
    assert marker.is_file()
    marker.unlink()

    target = _ckpt(run) / "model.safetensors"
    dump(target)
    meta = _ckpt(run) / "meta.json"
    _edit_meta(
        _ckpt(run),
        lambda m: m["files"]["model.safetensors"].update(
            sha256=hashlib.sha256(target.read_bytes()).hexdigest(), bytes=target.stat().st_size
        ),
    )
    _check_all_refuse(run, tmp_path, cli_error, str(target), "pickle")
    for name in ("model.pt", "model.safetensors", "model.ckpt"):
        loose = tmp_path / name
        dump(loose)
        for argv in (
            ["lm", "eval", str(loose)],
            ["compress", "eval", str(loose)],
            ["analyze", str(loose), "--out", str(tmp_path / "an")],
            ["compress", str(loose), "--method", "quant", "--bits", "4", "-o", str(tmp_path / "q")],
        ):
            cli_error(argv, str(tmp_path))
    assert not marker.exists()
    assert meta.is_file()


def test_safetensors_with_wrong_tensor_shapes(lm_run, tmp_path: Path, cli_error) -> None:
    from safetensors.torch import load_file, save_file

    _, run = lm_run
    path = _ckpt(run) / "model.safetensors"
    state = load_file(path)
    state["rnns.1.weight_hh_l0"] = torch.zeros(3, 5)
    save_file(state, path)
    _edit_meta(
        _ckpt(run),
        lambda m: m["files"]["model.safetensors"].update(
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(), bytes=path.stat().st_size
        ),
    )
    _check_all_refuse(run, tmp_path, cli_error, "rnns.1.weight_hh_l0", "[3, 5]")


def test_resume_from_truncated_latest_keeps_earlier_checkpoints(lm_run, cli_error, capsys) -> None:
    """Two checkpoints; the newest is damaged: the error points at the previous one."""
    from g2lstm.cli import main

    _, run = lm_run
    assert main([*_resume(run), "--max-steps", "5", "--checkpoint-every", "1"]) == 0
    capsys.readouterr()
    steps = sorted((run / "checkpoints").glob("step-*"))
    assert len(steps) >= 2
    newest = steps[-1] / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])
    before = snapshot(run)
    line = cli_error(_resume(run), str(newest), "truncated")
    assert steps[-2].name in line
    assert snapshot(run) == before
    assert os.path.isdir(steps[-2])
