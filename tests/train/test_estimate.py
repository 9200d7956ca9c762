"""The task-neutral run estimate: timing a step, adding it up, asking for --yes."""

from __future__ import annotations

import pytest
import torch

from g2lstm.errors import ConfigError
from g2lstm.train.estimate import COST_LIMIT_S, RunEstimate, check_run_cost, time_steps


def test_time_steps_warms_up_once_and_restores_threads() -> None:
    calls, threads_seen = [], []

    def step() -> None:
        calls.append(1)
        threads_seen.append(torch.get_num_threads())

    torch.set_num_threads(1)
    assert time_steps(step, 3, threads=2) >= 0.0
    assert len(calls) == 4  # one untimed warm-up, three timed
    assert set(threads_seen) == {2} and torch.get_num_threads() == 1
    with pytest.raises(ValueError, match="measure_steps"):
        time_steps(step, 0)


def test_estimate_adds_up_steps_and_respects_a_time_budget() -> None:
    est = RunEstimate(parameters=10, steps=7200, seconds_per_step=1.0, measured_steps=2)
    assert est.seconds == 7200.0
    assert est.timing() == (
        "about 2h00m00s of training on this machine (1 s per step, measured over 2 steps)"
    )
    bounded = RunEstimate(10, 7200, 1.0, 2, max_seconds=600.0)
    assert bounded.seconds == 600.0
    assert "stopped by the time budget of 10m00s" in bounded.timing()
    loose = RunEstimate(10, 60, 1.0, 2, max_seconds=600.0)  # ends before the budget
    assert loose.seconds == 60.0 and "budget" not in loose.timing()


def _sentence(est: RunEstimate) -> tuple[RunEstimate, str]:
    return est, f"a model: {est.timing()}"


def test_check_run_cost_says_what_runs_and_refuses_more_than_an_hour(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    short = RunEstimate(1, 100, 0.5, 2)
    assert check_run_cost("x train", "big", lambda: short, _sentence, hint="--preset tiny") is short
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("g2lstm x train: no --preset given, so this is the 'big' preset")
    assert err[1] == "g2lstm x train: a model: " + short.timing()
    long = RunEstimate(1, int(COST_LIMIT_S) * 3, 1.0, 2)
    with pytest.raises(ConfigError) as exc:
        check_run_cost("x train", "big", lambda: long, _sentence, hint="--preset tiny: seconds")
    assert str(exc.value) == (
        "x train without --preset would run the 'big' preset for about 3 h on this machine; "
        "pick a preset (--preset tiny: seconds) or pass --yes to run it anyway"
    )
    limit = check_run_cost("x train", "big", lambda: long, _sentence, hint="", limit_s=1e9)
    assert limit is long  # a longer limit lets it run


def test_check_run_cost_loads_before_printing_and_skips_on_a_gpu(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def bad_data() -> RunEstimate:
        raise ConfigError("data: no such folder")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no such folder"):
        check_run_cost("x train", "big", bad_data, _sentence, hint="")
    assert capsys.readouterr().err == ""  # the error is the only line the user sees

    def never() -> RunEstimate:
        raise AssertionError("measured on a GPU machine")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert check_run_cost("x train", "big", never, _sentence, hint="") is None
    assert capsys.readouterr().err == ""
