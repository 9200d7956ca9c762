"""Clear, typed errors for invalid options and wrongly shaped inputs and states."""

from __future__ import annotations

import math

import pytest
import torch

from g2lstm import G2LSTM, G2LSTMCell
from g2lstm.errors import ConfigError, ShapeError


@pytest.mark.parametrize("tau", [0.0, -1.0, math.nan, math.inf, "x"])
def test_bad_tau(tau):
    with pytest.raises(ConfigError, match="tau"):
        G2LSTM(2, 3, tau=tau)


@pytest.mark.parametrize("p", [-0.1, 1.5, math.nan])
def test_bad_noise_p(p):
    with pytest.raises(ConfigError, match=r"noise_p.*\[0, 1\]"):
        G2LSTM(2, 3, noise_p=p)


def test_unknown_gate_and_enum_names():
    with pytest.raises(ConfigError, match="unknown gate 'g'"):
        G2LSTM(2, 3, noisy_gates=("i", "g"))
    with pytest.raises(ConfigError, match="eval_gates='binary'.*'soft', 'hard', 'sample'"):
        G2LSTM(2, 3, eval_gates="binary")
    with pytest.raises(ConfigError, match="estimator"):
        G2LSTMCell(2, 3, estimator="reinforce")
    with pytest.raises(ConfigError, match="noise_schedule"):
        G2LSTM(2, 3, noise_schedule="sometimes")
    with pytest.raises(ConfigError, match="weight_dropout"):
        G2LSTM(2, 3, weight_dropout=1.0)
    with pytest.raises(ConfigError, match="tau"):
        G2LSTM(2, 3).set_gate_options(tau=0)


def test_config_errors_are_value_errors():
    with pytest.raises(ValueError):
        G2LSTM(2, 3, tau=-1)


def test_input_dims_and_size():
    m = G2LSTM(4, 3)
    with pytest.raises(ShapeError, match="Expected input to be 2D or 3D, got 4D"):
        m(torch.zeros(1, 2, 3, 4))
    with pytest.raises(ShapeError, match="Expected 4, got 5"):
        m(torch.zeros(2, 3, 5))
    with pytest.raises(RuntimeError):  # same exception family as nn.LSTM
        m(torch.zeros(2, 3, 5))


def test_state_shapes():
    m = G2LSTM(4, 3, 2, bidirectional=True)
    x = torch.zeros(5, 2, 4)
    with pytest.raises(ShapeError, match=r"Expected hidden\[0\] size \(4, 2, 3\)"):
        m(x, (torch.zeros(2, 2, 3), torch.zeros(4, 2, 3)))
    with pytest.raises(ShapeError, match=r"Expected hidden\[1\] size \(4, 2, 3\)"):
        m(x, (torch.zeros(4, 2, 3), torch.zeros(4, 1, 3)))
    with pytest.raises(ShapeError, match="batched 3-D input, hx and cx should also be 3-D"):
        m(x, (torch.zeros(4, 3), torch.zeros(4, 3)))
    with pytest.raises(ShapeError, match="unbatched 2-D input"):
        m(torch.zeros(5, 4), (torch.zeros(4, 2, 3), torch.zeros(4, 2, 3)))
    with pytest.raises(ShapeError, match="tuple"):
        m(x, torch.zeros(4, 2, 3))


def test_cell_shapes():
    c = G2LSTMCell(4, 3)
    with pytest.raises(ShapeError, match="1D or 2D"):
        c(torch.zeros(1, 2, 4))
    with pytest.raises(ShapeError, match="input_size"):
        c(torch.zeros(2, 5))
    with pytest.raises(ShapeError, match=r"hidden1 batch size 1"):
        c(torch.zeros(2, 4), (torch.zeros(2, 3), torch.zeros(1, 3)))
