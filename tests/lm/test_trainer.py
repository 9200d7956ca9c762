"""End-to-end training on a tiny corpus: results, exact resume, refusals, finetune, NT-ASGD."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from g2lstm.errors import CheckpointError, ConfigError, TrainingError
from g2lstm.lm import load_model, preset_config, train
from g2lstm.lm.trainer import merge_resume_config
from g2lstm.train import CheckpointManager, RunLock, load_checkpoint, read_metrics


def _config(data: Path, **overrides):
    base = {"data": str(data), "model.cell": "g2", "train.progress": False, "train.threads": 1}
    base.update(overrides)
    return preset_config("tiny", base)


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    latest = CheckpointManager(run, keep_last=None).latest()
    assert latest is not None
    ckpt = load_checkpoint(latest)
    return {**ckpt.model_state, **{f"opt.{k}": v for k, v in _opt_tensors(ckpt).items()}}


def _opt_tensors(ckpt) -> dict[str, torch.Tensor]:
    state = ckpt.trainer_state["optimizer"]["state"]
    return {f"{i}.{k}": v for i, s in state.items() for k, v in s.items()}


def test_train_writes_results_config_and_loadable_model(
    tmp_path: Path, write_lm_corpus: Callable[..., Path]
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    result = train(_config(data), tmp_path / "run")
    run = tmp_path / "run"
    assert result.complete and result.epochs == 2
    assert 1.0 < result.valid_ppl < 60 and 1.0 < result.test_ppl < 60  # 31 types + eos
    stored = json.loads((run / "results.json").read_text())
    assert stored["details"]["test_ppl"] == pytest.approx(result.test_ppl)
    assert (stored["task"], stored["finished"], stored["cell"]) == ("lm", True, "g2")
    assert (run / "config.yaml").is_file() and (run / "vocab.json").is_file()
    rows = read_metrics(run)
    assert any("valid_ppl" in r for r in rows) and any("tokens_per_s" in r for r in rows)
    loaded = load_model(run)
    assert loaded.config.model.gates.cell == "g2" and loaded.config.model.vocab_size == len(
        loaded.vocab
    )
    # a second run on the same directory without --resume is refused
    with pytest.raises(TrainingError, match="--resume"):
        train(_config(data), run)
    # resuming a finished run does nothing more and returns the stored result
    again = train(_config(data), run, resume=True)
    assert again.test_ppl == pytest.approx(result.test_ppl)


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", [7, 16])  # mid-epoch; the tiny epoch has ~15 steps
def test_resume_mid_run_is_bit_identical_with_gate_noise(
    tmp_path: Path, stop_at: int, write_lm_corpus: Callable[..., Path]
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    cfg = _config(data, **{"train.epochs": 3, "optim.nonmono": 1})
    assert cfg.model.gates.noise_p > 0 and cfg.model.dropouti > 0 and cfg.train.bptt_random
    full = train(cfg, tmp_path / "full")
    part = train(cfg.replace({"train.max_steps": stop_at}), tmp_path / "split")
    assert not part.complete and part.stopped == "max_steps" and part.steps == stop_at
    resumed = train(cfg, tmp_path / "split", resume=True)
    assert resumed.complete and resumed.steps == full.steps
    a, b = _final_weights(tmp_path / "full"), _final_weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert resumed.test_ppl == full.test_ppl

    # the metrics after resuming match the uninterrupted run's
    def epochs(run):
        return [r["valid_loss"] for r in read_metrics(run) if "valid_loss" in r]

    assert epochs(tmp_path / "full") == epochs(tmp_path / "split")


def test_resume_refuses_changed_model_and_vocab(
    tmp_path: Path, write_lm_corpus: Callable[..., Path]
) -> None:
    cfg = _config(write_lm_corpus(tmp_path / "data"), **{"train.max_steps": 3})
    with pytest.raises(ConfigError, match=r"model\.nhid"):
        merge_resume_config(cfg, {"model.nhid": 99})
    assert merge_resume_config(cfg, {"train.epochs": 9}).train.epochs == 9
    train(cfg, tmp_path / "run")
    other = write_lm_corpus(tmp_path / "other", n_words=25, seed=1)
    with pytest.raises(CheckpointError, match="vocabulary mismatch"):
        train(cfg.replace({"data": str(other)}), tmp_path / "run", resume=True)


def test_locked_directory_is_refused(tmp_path: Path, write_lm_corpus: Callable[..., Path]) -> None:
    data = write_lm_corpus(tmp_path / "data")
    run = tmp_path / "run"
    run.mkdir()
    with RunLock(run), pytest.raises(TrainingError, match="in use by another"):
        # filelock is per process, so emulate another process with a child
        import subprocess
        import sys

        code = (
            "import sys; from g2lstm.lm import preset_config, train\n"
            f"cfg = preset_config('tiny', {{'data': {str(data)!r}, 'train.progress': False}})\n"
            "from g2lstm.errors import TrainingError\n"
            f"try:\n    train(cfg, {str(run)!r})\n"
            "except TrainingError as e:\n    print(e); sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode == 3, proc.stderr
        raise TrainingError(proc.stdout)


def test_finetune_stage_and_asgd_switch(
    tmp_path: Path, write_lm_corpus: Callable[..., Path]
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    cfg = _config(
        data,
        **{"train.epochs": 3, "train.finetune_epochs": 2, "optim.nonmono": 1, "optim.lr": 60.0},
    )
    result = train(cfg, tmp_path / "run")
    rows = [r for r in read_metrics(tmp_path / "run") if "valid_loss" in r]
    stages = [r["stage"] for r in rows]
    assert stages.count("main") == 3 and 1 <= stages.count("finetune") <= 2
    assert all(r["asgd"] for r in rows if r["stage"] == "finetune")
    assert result.complete and result.valid_ppl <= min(r["valid_ppl"] for r in rows) + 1e-6


def test_nonfinite_loss_raises_or_skips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_lm_corpus: Callable[..., Path]
) -> None:
    import types

    import torch.nn.functional as F

    import g2lstm.lm.epochs as epochs_mod

    calls = {"n": 0}

    def poisoned(*args, **kwargs):  # NaN loss on training steps 3, 4 and 5
        calls["n"] += 1
        loss = F.cross_entropy(*args, **kwargs)
        return loss * float("nan") if 3 <= calls["n"] <= 5 else loss

    fake = types.SimpleNamespace(**{k: getattr(F, k) for k in dir(F) if not k.startswith("__")})
    fake.cross_entropy = poisoned
    monkeypatch.setattr(epochs_mod, "F", fake)  # the F of LMTrainer._step
    cfg = _config(write_lm_corpus(tmp_path / "data"), **{"train.max_steps": 8})
    with pytest.raises(TrainingError, match="non-finite loss or gradient at step 2"):
        train(cfg, tmp_path / "a")
    calls["n"] = 0
    result = train(cfg.replace({"train.on_nonfinite": "skip"}), tmp_path / "b")
    assert result.stopped == "max_steps" and result.steps == 8
    ckpt = load_checkpoint(CheckpointManager(tmp_path / "b").latest())
    assert ckpt.meta["guard"]["total_skips"] == 3
    assert all(torch.isfinite(t).all() for t in ckpt.model_state.values())


def test_cpu_time_is_recorded_and_unknown_after_an_older_checkpoint(
    tmp_path: Path, write_lm_corpus: Callable[..., Path]
) -> None:
    cfg = _config(write_lm_corpus(tmp_path / "data"))
    done = train(cfg, tmp_path / "run")
    assert done.cpu_time_s is not None and done.cpu_time_s > 0
    stored = json.loads((tmp_path / "run" / "results.json").read_text())
    assert stored["details"]["cpu_time_s"] == pytest.approx(done.cpu_time_s)
    # a checkpoint written before CPU time was recorded: the total is unknown, not partial
    part = train(cfg.replace({"train.max_steps": 5}), tmp_path / "old")
    assert not part.complete
    latest = CheckpointManager(tmp_path / "old", keep_last=None).latest()
    assert latest is not None
    record = json.loads((latest / "meta.json").read_text())
    del record["meta"]["state"]["cpu_time"]
    (latest / "meta.json").write_text(json.dumps(record))
    assert train(cfg, tmp_path / "old", resume=True).cpu_time_s is None
