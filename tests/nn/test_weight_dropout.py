"""DropConnect on weight_hh (AWD-LSTM), applied functionally in forward."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from g2lstm import G2LSTM


def test_weight_dropout_equals_lstm_with_dropped_matrix():
    g2 = G2LSTM(3, 4, weight_dropout=0.5, noise_p=0.0, tau=1.0).train()
    x = torch.randn(6, 2, 3)
    torch.manual_seed(42)
    out, _ = g2(x)
    torch.manual_seed(42)
    dropped = F.dropout(g2.weight_hh_l0.detach(), 0.5, training=True)
    ref = nn.LSTM(3, 4)
    ref.load_state_dict(g2.state_dict())
    with torch.no_grad():
        ref.weight_hh_l0.copy_(dropped)
    want, _ = ref(x)
    torch.testing.assert_close(out, want)


def test_weight_dropout_keeps_parameters_and_is_off_in_eval():
    g2 = G2LSTM(3, 4, weight_dropout=0.5)
    names = [n for n, _ in g2.named_parameters()]
    before = g2.weight_hh_l0.detach().clone()
    g2.train()
    out, _ = g2(torch.randn(4, 2, 3))
    out.sum().backward()
    assert [n for n, _ in g2.named_parameters()] == names
    assert torch.equal(g2.weight_hh_l0, before)
    assert (g2.weight_hh_l0.grad == 0).any()  # dropped entries get no gradient
    g2.eval()
    ref = g2.to_lstm()
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(g2(x)[0], ref(x)[0])
