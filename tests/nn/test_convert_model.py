"""g2lstm.convert / g2lstm.revert on whole models, and the cell's converters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import g2lstm
from g2lstm import G2LSTM, G2LSTMCell


class Seq2Seq(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.LSTM(4, 6, num_layers=2, batch_first=True, bidirectional=True)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(12, 5), nn.LSTMCell(5, 6))])
        self.dec = nn.ModuleDict({"cell": nn.LSTMCell(6, 6)})
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        out, _ = self.enc(x)
        h, c = self.blocks[0][1](self.blocks[0][0](out[:, -1]))
        h, _ = self.dec["cell"](h, (h, c))
        return self.head(h)


def test_convert_replaces_every_lstm_and_keeps_weights_and_flags():
    torch.manual_seed(0)
    model = Seq2Seq().double().eval()
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    want = model(x)
    out = g2lstm.convert(model, tau=1.0, noise_p=0.0)  # an LSTM: same numbers
    assert out is model
    assert type(model.enc) is G2LSTM and model.enc.batch_first and model.enc.bidirectional
    assert type(model.blocks[0][1]) is G2LSTMCell and type(model.dec["cell"]) is G2LSTMCell
    assert not model.training and not model.enc.training
    assert model.enc.weight_hh_l1.dtype == torch.float64
    torch.testing.assert_close(model(x), want)
    # options reach every new module; modules that already are G2 are left alone
    g2lstm.convert(model, tau=0.5)
    assert model.enc.gate_config.tau == 1.0


def test_convert_an_lstm_itself_and_train_flag():
    lstm = nn.LSTM(3, 4).train()
    g2 = g2lstm.convert(lstm, tau=0.7)
    assert isinstance(g2, G2LSTM) and g2.training and g2.gate_config.tau == 0.7
    torch.testing.assert_close(g2.weight_ih_l0, lstm.weight_ih_l0)


def test_revert_folds_the_soft_gates_exactly():
    torch.manual_seed(0)
    model = g2lstm.convert(Seq2Seq(), tau=0.4, noise_p=0.3).eval()
    x = torch.randn(2, 5, 4)
    want = model(x)
    plain = g2lstm.revert(model)
    assert type(plain.enc) is nn.LSTM and type(plain.dec["cell"]) is nn.LSTMCell
    assert not any(isinstance(m, (G2LSTM, G2LSTMCell)) for m in plain.modules())
    torch.testing.assert_close(plain(x), want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("drop", [False, True])
def test_cell_converters_round_trip(drop):
    torch.manual_seed(0)
    ref = nn.LSTMCell(3, 5)
    extra = {"eval_temperature": "drop"} if drop else {}
    g2 = G2LSTMCell.from_lstm_cell(ref, tau=0.5, noise_p=0.2, **extra).eval()
    torch.testing.assert_close(g2.weight_hh, ref.weight_hh)
    x = torch.randn(4, 3)
    back = g2.to_lstm_cell()
    torch.testing.assert_close(back(x)[0], g2(x)[0], atol=1e-6, rtol=1e-5)
    if drop:  # sigmoid(a): the original cell
        torch.testing.assert_close(back.weight_ih, ref.weight_ih)
    with pytest.raises(TypeError, match="LSTMCell"):
        G2LSTMCell.from_lstm_cell(nn.GRUCell(3, 5))


def test_cell_repr_shows_non_default_options():
    assert repr(G2LSTMCell(8, 16, tau=0.5)) == (
        "G2LSTMCell(8, 16, tau=0.5, noise_p=0.2, noisy_gates=('input', 'forget'))"
    )
    text = repr(G2LSTMCell(8, 16, eval_gates="hard", weight_dropout=0.1, bias=False))
    assert "eval_gates='hard'" in text and "weight_dropout=0.1" in text and "bias=False" in text
