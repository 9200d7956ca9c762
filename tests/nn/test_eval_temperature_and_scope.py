"""The eval-temperature option and per-sequence noise held across calls (noise_scope)."""

from __future__ import annotations

import pytest
import torch

import g2lstm.nn.noise as noise_mod
from g2lstm import G2LSTM, G2LSTMCell
from g2lstm.errors import ConfigError, ShapeError


def test_eval_temperature_drop_is_sigmoid_of_a():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 5)
    divide = G2LSTM(5, 7, tau=0.5).eval()
    drop = G2LSTM(5, 7, tau=0.5, eval_temperature="drop").eval()
    drop.load_state_dict(divide.state_dict())
    plain = torch.nn.LSTM(5, 7).eval()
    plain.load_state_dict(divide.state_dict())
    out_drop, _ = drop(x)
    out_plain, _ = plain(x)
    torch.testing.assert_close(out_drop, out_plain)  # sigmoid(a): an ordinary LSTM
    assert not torch.allclose(divide(x)[0], out_plain)
    # the reference loop agrees with the vendor path
    drop.backend = "reference"
    torch.testing.assert_close(drop(x)[0], out_plain)


def test_eval_temperature_does_not_touch_training_or_hard_gates():
    torch.manual_seed(0)
    x = torch.randn(4, 2, 3)
    a = G2LSTM(3, 4, tau=0.5, noise_p=0.0)
    b = G2LSTM(3, 4, tau=0.5, noise_p=0.0, eval_temperature="drop")
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x)[0], b(x)[0])  # training: temperature kept
    a.eval().set_gate_options(eval_gates="hard")
    b.eval().set_gate_options(eval_gates="hard")
    torch.testing.assert_close(a(x)[0], b(x)[0])


def test_eval_temperature_to_lstm_and_repr_and_validation():
    g2 = G2LSTM(3, 4, tau=0.5, eval_temperature="drop").eval()
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(g2.to_lstm()(x)[0], g2(x)[0])
    assert "eval_temperature='drop'" in repr(g2)
    assert "eval_temperature" not in repr(G2LSTM(3, 4))
    with pytest.raises(ConfigError, match="eval_temperature"):
        G2LSTM(3, 4, eval_temperature="half")
    cell = G2LSTMCell(3, 4, tau=0.5, eval_temperature="drop").eval()
    ref = torch.nn.LSTMCell(3, 4)
    ref.load_state_dict(cell.state_dict())
    torch.testing.assert_close(cell(x[0])[0], ref(x[0])[0])


@pytest.mark.parametrize("schedule", ["mask_per_sequence", "noise_per_sequence"])
def test_noise_scope_holds_the_draw(schedule, monkeypatch):
    lstm = G2LSTM(3, 5, noise_p=0.5, noise_schedule=schedule).train()
    x = torch.randn(1, 2, 3)
    draws = []
    real = noise_mod.NoiseHold.get

    def spy(self, key, batch, width, module):
        out = real(self, key, batch, width, module)
        draws.append(None if out is None else out.clone())
        return out

    monkeypatch.setattr(noise_mod.NoiseHold, "get", spy)
    with lstm.noise_scope():
        lstm(x)
        lstm(x)
        lstm(x)
    assert draws[0] is None and draws[1] is not None
    torch.testing.assert_close(draws[1], draws[2])
    with lstm.noise_scope():
        lstm(x)
    assert draws[3] is None  # a new scope draws afresh


def test_noise_scope_fixed_mask_matches_whole_sequence_exactly():
    """noise_per_sequence: step-by-step in a scope gives the whole-sequence output when the
    same generator state produces the one draw."""
    torch.manual_seed(0)
    lstm = G2LSTM(3, 5, noise_p=0.7, noise_schedule="noise_per_sequence").train()
    x = torch.randn(5, 2, 3)
    gen = torch.Generator().manual_seed(3)
    lstm.generator = gen
    whole, (h_w, c_w) = lstm(x)
    gen.manual_seed(3)
    outs, state = [], None
    with lstm.noise_scope():
        for t in range(x.shape[0]):
            y, state = lstm(x[t : t + 1], state)
            outs.append(y)
    torch.testing.assert_close(torch.cat(outs), whole)
    torch.testing.assert_close(state[1], c_w)
    # without a scope every call redraws: the step-by-step output differs
    gen.manual_seed(3)
    outs, state = [], None
    for t in range(x.shape[0]):
        y, state = lstm(x[t : t + 1], state)
        outs.append(y)
    assert not torch.allclose(torch.cat(outs), whole)


def test_noise_scope_cell_and_batch_mismatch():
    cell = G2LSTMCell(3, 4, noise_p=1.0, noise_schedule="noise_per_sequence").train()
    gen = torch.Generator().manual_seed(1)
    cell.generator = gen
    x = torch.randn(2, 3)
    with cell.noise_scope():
        h1, _ = cell(x)
        h2, _ = cell(x)  # same input, same zero state, same held noise
        torch.testing.assert_close(h1, h2)
        with pytest.raises(ShapeError, match="noise_scope holds per-sequence noise for batch 2"):
            cell(torch.randn(3, 3))
    h3, _ = cell(x)
    assert not torch.allclose(h1, h3)
