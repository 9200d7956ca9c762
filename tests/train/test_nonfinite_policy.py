"""Non-finite loss/gradient policy: raise with details, or skip without touching state."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from g2lstm.errors import ConfigError, TrainingError
from g2lstm.train import NonFiniteGuard, NonFinitePolicy


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))


def _backward(model, poison=False):
    if poison:  # a hook turns one parameter's gradient into inf
        handle = model[1].weight.register_hook(lambda g: g * float("inf"))
    loss = model(torch.randn(5, 3)).pow(2).mean()
    loss.backward()
    if poison:
        handle.remove()
    return loss


def test_finite_step_passes():
    model = _model()
    guard = NonFiniteGuard()
    loss = _backward(model)
    norm = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    assert guard.check(loss, model, step=1, grad_norm=norm)
    assert guard.check(loss, model, step=1)


def test_raise_names_step_loss_and_parameter():
    model = _model()
    loss = _backward(model, poison=True)
    with pytest.raises(TrainingError) as info:
        NonFiniteGuard().check(loss, model, step=17)
    message = str(info.value)
    assert "step 17" in message
    assert f"loss = {loss.item()}" in message
    assert "1.weight (4 of 4 entries NaN/inf)" in message


def test_raise_on_nonfinite_loss_alone():
    model = _model()
    _backward(model)
    with pytest.raises(TrainingError, match=r"step 3: loss = nan; all gradients are finite"):
        NonFiniteGuard().check(float("nan"), model, step=3, grad_norm=1.0)


def test_skip_leaves_weights_and_optimizer_unchanged_then_aborts():
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    _backward(model)
    optimizer.step()
    optimizer.zero_grad()
    weights = copy.deepcopy(model.state_dict())
    opt_state = copy.deepcopy(optimizer.state_dict())
    guard = NonFiniteGuard(NonFinitePolicy("skip", max_consecutive_skips=2))

    for step in (2, 3):
        loss = _backward(model, poison=True)
        if guard.check(loss, model, step=step):
            optimizer.step()
        optimizer.zero_grad()
    assert guard.consecutive_skips == 2 and guard.total_skips == 2
    assert all(p.grad is None for p in model.parameters())
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights[name]), name
    for pid, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            assert torch.equal(value, opt_state["state"][pid][key]), (pid, key)

    with pytest.raises(TrainingError, match=r"2 consecutive updates .* step 4"):
        guard.check(_backward(model, poison=True), model, step=4)


def test_finite_step_resets_consecutive_count_and_state_round_trip():
    model = _model()
    guard = NonFiniteGuard(NonFinitePolicy("skip", max_consecutive_skips=1))
    assert not guard.check(_backward(model, poison=True), model, step=1)
    assert guard.check(_backward(model), model, step=2)
    assert not guard.check(_backward(model, poison=True), model, step=3)
    restored = NonFiniteGuard(guard.policy)
    restored.load_state_dict(guard.state_dict())
    assert restored.state_dict() == {"consecutive_skips": 1, "total_skips": 2}


@pytest.mark.parametrize(("action", "k"), [("ignore", 1), ("skip", 0), ("skip", 1.5)])
def test_policy_validation(action, k):
    with pytest.raises(ConfigError):
        NonFinitePolicy(action, max_consecutive_skips=k)
