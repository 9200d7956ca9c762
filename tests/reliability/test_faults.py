"""Faults while ``g2lstm lm train`` runs: signals, a crash or a full disk while a checkpoint is
written, an unwritable output directory, NaN in the loss or in a gradient.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest
import torch

import g2lstm.lm.epochs as epochs_mod
import g2lstm.lm.trainer as trainer_mod
from g2lstm.cli import main
from g2lstm.train import CheckpointManager, load_checkpoint

from .conftest import snapshot


def _latest_tensors(run: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(CheckpointManager(run, keep_last=None).latest())
    opt = ckpt.trainer_state["optimizer"]["state"]
    tensors = {
        f"opt.{i}.{k}": v for i, s in opt.items() for k, v in s.items() if torch.is_tensor(v)
    }
    return {**ckpt.model_state, **tensors, "step": torch.tensor(ckpt.meta["state"]["step"])}


def _hook_step(monkeypatch: pytest.MonkeyPatch, after_step: int, action) -> None:
    """Run ``action()`` right after the training step that brings the count to ``after_step``."""
    original = trainer_mod.LMTrainer._step

    def step(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if self.state["step"] == after_step:
            action(self)
        return out

    monkeypatch.setattr(trainer_mod.LMTrainer, "_step", step)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_signal_writes_a_resumable_checkpoint_and_resume_is_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, signum: int, write_lm_corpus, cli_argv
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    assert main(cli_argv.lm_train(data, tmp_path / "full", "--max-steps", "6")) == 0
    with monkeypatch.context() as m:
        _hook_step(m, 2, lambda _: os.kill(os.getpid(), signum))
        # interrupted = not finished: a distinct exit status, so scripts do not go on
        assert main(cli_argv.lm_train(data, tmp_path / "split", "--max-steps", "6")) == 130
    err = capsys.readouterr().err
    assert "stopped (interrupted) after step 2" in err and "--resume" in err
    assert _latest_tensors(tmp_path / "split")["step"].item() == 2
    assert (
        main(
            [
                "lm",
                "train",
                "--out",
                str(tmp_path / "split"),
                "--resume",
                "--max-steps",
                "6",
                "--no-progress",
            ]
        )
        == 0
    )
    a, b = _latest_tensors(tmp_path / "full"), _latest_tensors(tmp_path / "split")
    assert a.keys() == b.keys() and b["step"].item() == 6
    for name in a:
        assert torch.equal(a[name], b[name]), name


def _failing_writer(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> list[Path]:
    """Make safetensors write half a file and then raise ``exc``; return the paths tried."""
    import safetensors.torch

    tried: list[Path] = []
    real = safetensors.torch.save_file

    def half_then_fail(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        data = Path(filename).read_bytes()
        Path(filename).write_bytes(data[: len(data) // 2])
        tried.append(Path(filename))
        raise exc

    monkeypatch.setattr(safetensors.torch, "save_file", half_then_fail)
    return tried


def _no_partial_files(run: Path) -> None:
    for p in (run / "checkpoints").iterdir():
        assert ".tmp" not in p.name and ".old" not in p.name, p
    for step in (run / "checkpoints").glob("step-*"):
        assert load_checkpoint(step).model_state  # every final name is complete


def _resume_argv(run: Path) -> list[str]:
    """``g2lstm lm train --resume`` of ``run`` for 5 steps, a checkpoint after every step."""
    return ["lm", "train", "--out", str(run), "--resume", "--max-steps", "5",
            "--checkpoint-every", "1", "--no-progress"]  # fmt: skip


def test_exception_while_writing_keeps_the_previous_checkpoint(
    lm_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, run = lm_run
    before = snapshot(run / "checkpoints")
    tried = _failing_writer(monkeypatch, RuntimeError("boom while writing"))
    with pytest.raises(RuntimeError, match="boom while writing"):
        main(_resume_argv(run))
    assert tried and ".tmp" in str(tried[0].parent)
    assert snapshot(run / "checkpoints") == before
    _no_partial_files(run)


def test_disk_full_is_one_clear_error_and_keeps_the_previous_checkpoint(
    lm_run, monkeypatch: pytest.MonkeyPatch, cli_error
) -> None:
    _, run = lm_run
    before = snapshot(run / "checkpoints")
    _failing_writer(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    cli_error(
        _resume_argv(run),
        "space",
        str(run),
    )
    assert snapshot(run / "checkpoints") == before
    _no_partial_files(run)


def test_unwritable_output_directory_is_reported_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_error, write_lm_corpus, cli_argv
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    built = []
    monkeypatch.setattr(trainer_mod.LMTrainer, "_build", lambda *a: built.append(1))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cli_error(cli_argv.lm_train(data, blocker / "run"), str(blocker / "run"), "--out")
    cli_error(cli_argv.lm_train(data, blocker), str(blocker), "not a directory")

    import tempfile

    def read_only(*args, **kwargs):  # what a read-only mount does (root ignores chmod)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    cli_error(
        cli_argv.lm_train(data, tmp_path / "ro"), str(tmp_path / "ro"), "not writable", "--out"
    )
    assert not built


def _nan_in_loss(monkeypatch: pytest.MonkeyPatch, steps: set[int]) -> None:
    import types

    import torch.nn.functional as F

    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = F.cross_entropy(*args, **kwargs)
        return loss * float("nan") if calls["n"] - 1 in steps else loss

    fake = types.SimpleNamespace(**{k: getattr(F, k) for k in dir(F) if not k.startswith("__")})
    fake.cross_entropy = poisoned
    monkeypatch.setattr(epochs_mod, "F", fake)  # the F of LMTrainer._step


def _nan_in_grad(monkeypatch: pytest.MonkeyPatch, name: str, steps: set[int]) -> None:
    original = trainer_mod.LMTrainer._build

    def build(self, ctx):
        original(self, ctx)
        param = dict(self.module.named_parameters())[name]
        param.register_hook(lambda g: g * float("nan") if self.state["step"] in steps else g)

    monkeypatch.setattr(trainer_mod.LMTrainer, "_build", build)


def test_nan_in_loss_raise_names_the_step(
    tmp_path: Path, monkeypatch, cli_error, write_lm_corpus, cli_argv
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    _nan_in_loss(monkeypatch, {2})
    cli_error(cli_argv.lm_train(data, tmp_path / "run", "--max-steps", "5"), "step 2", "non-finite")


def test_nan_in_gradient_raise_names_step_and_parameter(
    tmp_path: Path, monkeypatch, cli_error, write_lm_corpus, cli_argv
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    _nan_in_grad(monkeypatch, "rnns.1.weight_hh_l0", {3})
    cli_error(
        cli_argv.lm_train(data, tmp_path / "run", "--max-steps", "5"),  # clipping on
        "step 3",
        "rnns.1.weight_hh_l0",
    )


def test_skip_keeps_weights_and_optimizer_then_stops_after_k(
    tmp_path: Path, monkeypatch, cli_error, capsys, write_lm_corpus, cli_argv
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    seen: dict[int, dict[str, torch.Tensor]] = {}

    def record(self) -> None:
        state = {f"p.{k}": v.detach().clone() for k, v in self.module.named_parameters()}
        for i, s in enumerate(self.optimizer.state.values()):
            state.update({f"o.{i}.{k}": v.clone() for k, v in s.items() if torch.is_tensor(v)})
        seen[self.state["step"]] = state

    original = trainer_mod.LMTrainer._step

    def step(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        record(self)
        return out

    monkeypatch.setattr(trainer_mod.LMTrainer, "_step", step)
    _nan_in_grad(monkeypatch, "rnns.0.weight_ih_l0", {2, 3})
    assert (
        main(
            cli_argv.lm_train(
                data, tmp_path / "a", "--max-steps", "6", "--on-nonfinite", "skip", "--clip", "0"
            )
        )
        == 0
    )
    capsys.readouterr()
    for skipped in (3, 4):  # after steps 3 and 4 (indices 2, 3) nothing changed
        for name, value in seen[skipped].items():
            assert torch.equal(value, seen[2][name]), (skipped, name)
    assert any(not torch.equal(v, seen[4][k]) for k, v in seen[5].items())
    ckpt = load_checkpoint(CheckpointManager(tmp_path / "a").latest())
    assert ckpt.meta["guard"]["total_skips"] == 2

    # every step non-finite: the run stops after K consecutive skips with a clear error
    seen.clear()
    _nan_in_grad(monkeypatch, "rnns.0.weight_ih_l0", set(range(1000)))
    line = cli_error(
        cli_argv.lm_train(data, tmp_path / "b", "--on-nonfinite", "skip", "--clip", "0"),
        "consecutive",
    )
    assert "rnns.0.weight_ih_l0" in line or "step" in line
    assert len(seen) < 1000
