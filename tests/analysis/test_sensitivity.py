"""Sensitivity: pure, exactly zero at sigma = 0, seeded and deterministic."""

from __future__ import annotations

import pytest
import torch

from g2lstm.analysis import SensitivityConfig, gate_sensitivity
from g2lstm.errors import ConfigError


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_model_is_unchanged_and_sigma_zero_changes_nothing(g2_model, batches, forward) -> None:
    model = g2_model().train()
    before = _state(model)
    cfg = SensitivityConfig(sigmas=(0.0, 0.05, 0.3), draws=2, seed=7)
    rows = gate_sensitivity(model, batches[:2], forward, cfg)
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert len(rows) == 2 * 3 * 3  # targets x sigmas x gates
    for r in rows:
        assert r["samples"] == 2 * 2 and r["values"] > 0
        if r["sigma"] == 0:
            assert r["mean_abs_delta"] == 0.0 and r["delta_loss"] == 0.0
        else:
            assert r["mean_abs_delta"] > 0
    # more noise moves the gates more
    for target in ("inputs", "weights"):
        f = {
            r["sigma"]: r["mean_abs_delta"]
            for r in rows
            if r["target"] == target and r["gate"] == "forget"
        }
        assert f[0.0] < f[0.05] < f[0.3]


def test_weight_noise_only_touches_input_and_forget_rows(g2_model, batches, forward) -> None:
    """Output-gate rows are not perturbed, so in layer 0 at t=0 the output gate cannot move."""
    model = g2_model()
    cfg = SensitivityConfig(sigmas=(0.5,), draws=1, targets=("weights",), gates=("output",))
    x, y = batches[0]
    rows = gate_sensitivity(model, [(x[:1], y[:1])], forward, cfg)  # one step: h_{-1} = 0
    # two layers: layer 1's output gate reads layer 0's output, which the i/f noise moved
    assert rows[0]["mean_abs_delta"] > 0
    # one layer: at step 0 the output gate is sigmoid(W_io x + b), untouched by the noise
    one_layer = g2_model()
    one_layer.rnn = type(one_layer.rnn)(6, 5, num_layers=1)
    one_layer.out = torch.nn.Linear(5, 12)
    rows = gate_sensitivity(one_layer, [(x[:1], y[:1])], forward, cfg)
    assert rows[0]["mean_abs_delta"] == 0.0


def test_deterministic_given_seed_and_works_on_plain_lstm(lstm_model, batches, forward) -> None:
    cfg = SensitivityConfig(sigmas=(0.1,), draws=2, seed=3)
    a = gate_sensitivity(lstm_model(), batches[:1], forward, cfg)
    b = gate_sensitivity(lstm_model(), batches[:1], forward, cfg)
    assert a == b
    c = gate_sensitivity(lstm_model(), batches[:1], forward, SensitivityConfig((0.1,), 2, seed=4))
    assert c != a


def test_named_input_module_and_no_loss(g2_model, batches) -> None:
    def no_loss(model, batch):
        model(batch[0])

    cfg = SensitivityConfig(sigmas=(0.1,), draws=1, targets=("inputs",), input_modules=("rnn",))
    rows = gate_sensitivity(g2_model(), batches[:1], no_loss, cfg)
    assert all(r["delta_loss"] is None and r["mean_abs_delta"] > 0 for r in rows)
    bad = SensitivityConfig(sigmas=(0.1,), draws=1, targets=("inputs",), input_modules=("emb",))
    with pytest.raises(ConfigError, match="not G2 modules"):
        gate_sensitivity(g2_model(), batches[:1], no_loss, bad)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sigmas": (-0.1,)},
        {"sigmas": ()},
        {"sigmas": (float("nan"),)},
        {"draws": 0},
        {"targets": ("biases",)},
        {"targets": ()},
        {"gates": ("cell",)},
    ],
)
def test_config_validation(kwargs) -> None:
    with pytest.raises(ConfigError):
        SensitivityConfig(**kwargs)
