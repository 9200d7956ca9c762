"""Averaged SGD and the non-monotonic trigger (NT-ASGD)."""

from __future__ import annotations

import pytest
import torch

from g2lstm.errors import ConfigError
from g2lstm.lm.asgd import AveragedSGD, NTASGDTrigger


def _quadratic_steps(opt: AveragedSGD, p: torch.nn.Parameter, n: int) -> list[torch.Tensor]:
    iterates = []
    for _ in range(n):
        opt.zero_grad()
        (p**2).sum().backward()
        opt.step()
        iterates.append(p.detach().clone())
    return iterates


def test_sgd_step_matches_formula_with_weight_decay() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = AveragedSGD([p], lr=0.1, weight_decay=0.01)
    (p**2).sum().backward()
    opt.step()
    expected = torch.tensor([1.0, -2.0]) - 0.1 * (
        2 * torch.tensor([1.0, -2.0]) + 0.01 * torch.tensor([1.0, -2.0])
    )
    torch.testing.assert_close(p.detach(), expected)


def test_average_is_mean_of_iterates_since_the_switch() -> None:
    p = torch.nn.Parameter(torch.tensor([3.0, 1.0]))
    opt = AveragedSGD([p], lr=0.1)
    _quadratic_steps(opt, p, 3)
    assert not opt.averaging
    opt.start_averaging()
    iterates = _quadratic_steps(opt, p, 5)
    mean = torch.stack(iterates).mean(0)
    torch.testing.assert_close(opt.state[p]["ax"], mean)
    current = p.detach().clone()
    with opt.averaged_parameters() as swapped:
        assert swapped
        torch.testing.assert_close(p.detach(), mean)
    assert torch.equal(p.detach(), current)


def test_state_dict_round_trip_continues_identically() -> None:
    p1 = torch.nn.Parameter(torch.tensor([3.0, 1.0]))
    opt1 = AveragedSGD([p1], lr=0.1)
    opt1.start_averaging()
    _quadratic_steps(opt1, p1, 3)
    p2 = torch.nn.Parameter(p1.detach().clone())
    opt2 = AveragedSGD([p2], lr=0.1)
    opt2.load_state_dict(opt1.state_dict())
    _quadratic_steps(opt1, p1, 2)
    _quadratic_steps(opt2, p2, 2)
    assert opt2.averaging
    assert torch.equal(opt1.state[p1]["ax"], opt2.state[p2]["ax"])


def test_nt_trigger_switches_only_after_nonmono_worse_epochs() -> None:
    trig = NTASGDTrigger(nonmono=2)
    # AWD: switch when len(history) > n and val > min(history[:-n])
    decisions = [trig.should_switch(v) for v in [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 3.05]]
    assert decisions == [False, False, False, False, False, True, True]
    trig2 = NTASGDTrigger(nonmono=2)
    assert not any(trig2.should_switch(v) for v in [5.0, 4.0, 3.0, 2.9, 2.8, 2.7])
    restored = NTASGDTrigger(1)
    restored.load_state_dict(trig.state_dict())
    assert restored.history == trig.history and restored.nonmono == 2


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="nonmono"):
        NTASGDTrigger(0)
    with pytest.raises(ConfigError, match="lr"):
        AveragedSGD([torch.nn.Parameter(torch.ones(1))], lr=0.0)
