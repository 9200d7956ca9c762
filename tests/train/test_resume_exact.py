"""The pieces compose into an exact resume: interrupted + resumed == uninterrupted, bitwise."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from g2lstm.train import (
    CheckpointManager,
    MetricsLogger,
    capture_rng_state,
    check_state_dict_compat,
    read_metrics,
    restore_rng_state,
    seed_everything,
    step_generator,
)

TOTAL = 8


def _fresh(seed: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.3), nn.Tanh(), nn.Linear(16, 1))
    return model, torch.optim.Adam(model.parameters(), lr=1e-2)


def _step(model, optimizer, step: int, per_step_generator: bool) -> float:
    # batch size from numpy (like AWD's random BPTT length), a coin from `random`, dropout
    # and data from torch: every global generator is consumed
    size = int(np.random.randint(3, 9))  # noqa: NPY002
    scale = 1.0 + random.random()
    g = step_generator(0, step) if per_step_generator else None
    x = torch.randn(size, 4, generator=g) * scale
    optimizer.zero_grad()
    loss = model(x).pow(2).mean()
    loss.backward()
    optimizer.step()
    return loss.item()


def _run(run_dir, stop_at: int | None, per_step_generator: bool) -> dict[str, torch.Tensor]:
    seed_everything(11)
    model, optimizer = _fresh(11)
    manager = CheckpointManager(run_dir, keep_last=2)
    start = 0
    with MetricsLogger(run_dir) as log:
        if (ckpt := manager.load_latest()) is not None:
            check_state_dict_compat(model, ckpt.model_state, str(ckpt.path))
            model.load_state_dict(ckpt.model_state)
            optimizer.load_state_dict(ckpt.trainer_state["optimizer"])
            restore_rng_state(ckpt.meta["rng"])
            start = ckpt.step
            log.drop_after(start)
        for step in range(start + 1, TOTAL + 1):
            log.log({"loss": _step(model, optimizer, step, per_step_generator)}, step=step)
            if step == stop_at:
                manager.save(
                    step,
                    model_state=model.state_dict(),
                    trainer_state={"optimizer": optimizer.state_dict()},
                    meta={"rng": capture_rng_state()},
                )
                return {}
    return model.state_dict()


@pytest.mark.parametrize("per_step_generator", [False, True], ids=["global-rng", "step-rng"])
def test_resume_equals_uninterrupted(tmp_path, per_step_generator):
    expected = _run(tmp_path / "straight", None, per_step_generator)
    assert _run(tmp_path / "resumed", 3, per_step_generator) == {}
    # the interrupted process logged one extra row that the checkpoint does not cover
    with MetricsLogger(tmp_path / "resumed") as log:
        log.log({"loss": 123.0}, step=4)
    torch.manual_seed(999)  # the new process starts with unrelated generator states
    np.random.seed(999)  # noqa: NPY002
    random.seed(999)
    resumed = _run(tmp_path / "resumed", None, per_step_generator)
    for name, tensor in expected.items():
        assert torch.equal(resumed[name], tensor), name
    assert read_metrics(tmp_path / "resumed") == read_metrics(tmp_path / "straight")
