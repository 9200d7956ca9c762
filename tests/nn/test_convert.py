"""Converters: from_lstm / to_lstm round trips and the authors' (f, i, o, g) layout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from g2lstm import G2LSTM
from g2lstm.errors import CheckpointError
from g2lstm.nn import from_authors


@pytest.mark.parametrize("tau", [1.0, 0.9, 0.2])
@pytest.mark.parametrize(("bidir", "proj"), [(False, 0), (True, 2)])
def test_to_lstm_equals_soft_eval(tau, bidir, proj):
    g2 = G2LSTM(3, 5, 2, bidirectional=bidir, proj_size=proj, tau=tau).eval()
    g2.backend = "reference"
    x = torch.randn(7, 4, 3)
    want, (h, c) = g2(x)
    lstm = g2.to_lstm()
    assert type(lstm) is nn.LSTM
    got, (h2, c2) = lstm(x)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c2, c, atol=1e-6, rtol=1e-5)
    # and the original is untouched
    assert g2.gate_config.tau == tau


def test_from_lstm_copies_weights_and_options():
    lstm = nn.LSTM(3, 4, 2, batch_first=True, dropout=0.1, bidirectional=True)
    g2 = G2LSTM.from_lstm(lstm, tau=0.5, noise_p=0.3)
    assert g2.batch_first and g2.bidirectional and g2.num_layers == 2 and g2.dropout == 0.1
    assert g2.gate_config.tau == 0.5 and g2.gate_config.noise_p == 0.3
    for (n1, p1), (n2, p2) in zip(lstm.named_parameters(), g2.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2) and p1.data_ptr() != p2.data_ptr()


def test_round_trip_g2_lstm_g2():
    g2 = G2LSTM(3, 4, tau=1.0, noise_p=0.2, weight_dropout=0.3)
    back = G2LSTM.from_lstm(g2.to_lstm(), tau=1.0, noise_p=0.2, weight_dropout=0.3)
    for p1, p2 in zip(g2.parameters(), back.parameters()):
        assert torch.equal(p1, p2)
    copy = G2LSTM.from_lstm(g2)  # a G2LSTM keeps its options
    assert copy.gate_config == g2.gate_config and copy.weight_dropout == 0.3


def _authors_cell_forward(x, h, c, w_ih, w_hh, bias, tau):
    """The authors' LSTMCell.forward (divide_temp=tau, eval: no noise), written by hand."""
    act = h @ w_hh + bias + x @ w_ih
    hs = w_hh.shape[0]
    f, i, o, g = act[:, :hs], act[:, hs : 2 * hs], act[:, 2 * hs : 3 * hs], act[:, 3 * hs :]
    f, i = f / tau, i / tau
    c1 = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h1 = torch.sigmoid(o) * torch.tanh(c1)
    return h1, c1


def test_authors_layout_import_reproduces_their_cell():
    torch.manual_seed(3)
    hin, hs, tau = 3, 2, 0.9
    state = {}
    for k, inp in enumerate([hin, hs]):
        state[f"rnn.cell_{k}.weight_ih"] = torch.randn(inp, 4 * hs)
        state[f"rnn.cell_{k}.weight_hh"] = torch.randn(hs, 4 * hs)
        state[f"rnn.cell_{k}.bias"] = torch.randn(4 * hs)
    g2 = from_authors(state, prefix="rnn.", tau=tau).eval()
    assert g2.num_layers == 2 and g2.hidden_size == hs
    x = torch.randn(4, 2, hin)
    out, (h_n, c_n) = g2(x)
    # their two-layer loop, by hand
    inp = x
    for k in range(2):
        h = torch.zeros(2, hs)
        c = torch.zeros(2, hs)
        outs = []
        for t in range(4):
            h, c = _authors_cell_forward(
                inp[t],
                h,
                c,
                state[f"rnn.cell_{k}.weight_ih"],
                state[f"rnn.cell_{k}.weight_hh"],
                state[f"rnn.cell_{k}.bias"],
                tau,
            )
            outs.append(h)
        inp = torch.stack(outs)
        torch.testing.assert_close(c_n[k], c)
    torch.testing.assert_close(out, inp)


def test_authors_layout_errors():
    with pytest.raises(CheckpointError, match="cell_0.weight_ih"):
        from_authors({"foo": torch.zeros(1)})
    bad = {
        "cell_0.weight_ih": torch.zeros(3, 8),
        "cell_0.weight_hh": torch.zeros(3, 8),
        "cell_0.bias": torch.zeros(8),
    }
    with pytest.raises(CheckpointError, match="4H"):
        from_authors(bad)
