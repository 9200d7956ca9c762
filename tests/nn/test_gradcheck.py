"""torch.autograd.gradcheck in float64 with the gate noise held fixed (seeded generator)."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from g2lstm import G2LSTM
from g2lstm.nn.functional import GateSpec
from g2lstm.nn.noise import sample_gate_noise
from g2lstm.nn.reference import recurrence_reference

CASES = [
    dict(),
    dict(noise_schedule="mask_per_sequence", noisy_gates=("i", "f", "o")),
    dict(noise_schedule="noise_per_sequence", bidirectional=True, num_layers=2),
    dict(proj_size=2, tau=0.5),
]


@pytest.mark.parametrize("opts", CASES)
@pytest.mark.parametrize("packed", [False, True])
def test_layer_gradcheck_with_fixed_noise(opts, packed):
    opts = dict(opts)
    layers = opts.pop("num_layers", 1)
    bidir = opts.pop("bidirectional", False)
    proj = opts.pop("proj_size", 0)
    m = G2LSTM(
        3, 4, layers, bidirectional=bidir, proj_size=proj, dtype=torch.float64, noise_p=0.5, **opts
    ).train()
    m.backend = "reference"
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    d = layers * (2 if bidir else 1)
    h0 = torch.randn(d, 2, proj or 4, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(d, 2, 4, dtype=torch.float64, requires_grad=True)
    params = list(m.parameters())

    def f(x, h0, c0, *ps):
        m.generator = torch.Generator().manual_seed(11)  # same noise at every call
        inp = pack_padded_sequence(x, torch.tensor([5, 3]), enforce_sorted=False) if packed else x
        out, (h, c) = m(inp, (h0, c0))
        data = out.data if packed else out
        return data, h, c

    assert torch.autograd.gradcheck(f, (x, h0, c0, *params), eps=1e-6, atol=1e-5)


def test_recurrence_gradcheck_explicit_noise():
    t, n, h, i = 4, 3, 3, 2
    spec = GateSpec((0, 1), 0.7, "relaxed", True)
    noise = sample_gate_noise(
        t, n, 2 * h, 0.5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    xw = torch.randn(t, n, 4 * h, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(n, h, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(n, h, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4 * h, h, dtype=torch.float64, requires_grad=True)
    del i

    def f(xw, h0, c0, w):
        r = recurrence_reference(xw, h0, c0, w, None, spec, noise, torch.tensor([4, 2, 3]))
        return r.output, r.h_n, r.c_n

    assert torch.autograd.gradcheck(f, (xw, h0, c0, w))
