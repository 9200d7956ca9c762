"""With noise off and tau=1, G2LSTM *is* nn.LSTM: outputs, states and every gradient."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from g2lstm import G2LSTM

IN, H, P, T, N = 5, 6, 3, 7, 4

COMBOS = list(
    itertools.product([1, 2, 3], [False, True], [False, True], [False, True], [0, P], [False, True])
)


def _pair(layers, bidir, batch_first, proj, backend):
    ref = nn.LSTM(IN, H, layers, batch_first=batch_first, bidirectional=bidir, proj_size=proj)
    g2 = G2LSTM(
        IN,
        H,
        layers,
        batch_first=batch_first,
        bidirectional=bidir,
        proj_size=proj,
        noise_p=0.0,
        tau=1.0,
    )
    g2.load_state_dict(ref.state_dict())
    g2.backend = backend
    return ref, g2


def _inputs(layers, bidir, batch_first, packed, proj, given_state):
    d = (2 if bidir else 1) * layers
    x = torch.randn((N, T, IN) if batch_first else (T, N, IN), requires_grad=True)
    hx = None
    if given_state:
        hx = (
            torch.randn(d, N, proj or H, requires_grad=True),
            torch.randn(d, N, H, requires_grad=True),
        )
    inp = x
    if packed:
        lengths = torch.tensor([3, T, 1, 5])  # unsorted on purpose
        inp = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    return x, inp, hx


def _loss(out, h_n, c_n):
    data = out.data if isinstance(out, PackedSequence) else out
    w = torch.linspace(-1, 1, data.numel()).reshape(data.shape)
    return (data * w).sum() + (h_n**2).sum() + (c_n * 0.5).sum()


@pytest.mark.parametrize("backend", ["reference", "auto"])
@pytest.mark.parametrize(("layers", "bidir", "batch_first", "packed", "proj", "given"), COMBOS)
def test_equal_to_nn_lstm(layers, bidir, batch_first, packed, proj, given, backend):
    ref, g2 = _pair(layers, bidir, batch_first, proj, backend)
    results = []
    for model in (ref, g2):
        torch.manual_seed(1)
        x, inp, hx = _inputs(layers, bidir, batch_first, packed, proj, given)
        out, (h_n, c_n) = model(inp, hx)
        _loss(out, h_n, c_n).backward()
        grads = [p.grad.clone() for p in model.parameters()] + [x.grad.clone()]
        if hx is not None:
            grads += [hx[0].grad.clone(), hx[1].grad.clone()]
        results.append((out, h_n, c_n, grads))
    (o1, h1, c1, g1), (o2, h2, c2, g2_) = results
    assert type(o1) is type(o2)
    if packed:
        assert torch.equal(o1.batch_sizes, o2.batch_sizes)
        assert torch.equal(o1.sorted_indices, o2.sorted_indices)
        o1, o2 = o1.data, o2.data
    assert o1.shape == o2.shape
    torch.testing.assert_close(o2, o1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h2, h1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c2, c1, atol=1e-5, rtol=1e-5)
    assert len(g1) == len(g2_)
    for a, b in zip(g1, g2_):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["reference", "auto"])
@pytest.mark.parametrize(("bidir", "given"), [(False, False), (True, True)])
def test_unbatched_equal_to_nn_lstm(bidir, given, backend):
    ref, g2 = _pair(2, bidir, False, 0, backend)
    x = torch.randn(T, IN)
    d = 2 * (2 if bidir else 1)
    hx = (torch.randn(d, H), torch.randn(d, H)) if given else None
    o1, (h1, c1) = ref(x, hx)
    o2, (h2, c2) = g2(x, hx)
    assert o2.shape == o1.shape == (T, (2 if bidir else 1) * H)
    assert h2.shape == h1.shape == (d, H)
    torch.testing.assert_close(o2, o1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c2, c1, atol=1e-5, rtol=1e-5)


def test_same_parameters_and_state_dict_both_ways():
    ref = nn.LSTM(IN, H, 2, bidirectional=True, proj_size=P)
    g2 = G2LSTM(IN, H, 2, bidirectional=True, proj_size=P)
    assert isinstance(g2, nn.LSTM)
    assert [(n, p.shape) for n, p in ref.named_parameters()] == [
        (n, p.shape) for n, p in g2.named_parameters()
    ]
    g2.load_state_dict(ref.state_dict())
    back = nn.LSTM(IN, H, 2, bidirectional=True, proj_size=P)
    back.load_state_dict(g2.state_dict())
    for (n1, p1), (n2, p2) in zip(ref.named_parameters(), back.named_parameters()):
        assert n1 == n2
        assert torch.equal(p1, p2)


def test_constructor_mirrors_nn_lstm_positionally():
    g2 = G2LSTM(3, 4, 2, False, True, 0.0, True, 2)
    assert (g2.input_size, g2.hidden_size, g2.num_layers, g2.bias, g2.batch_first) == (
        3,
        4,
        2,
        False,
        True,
    )
    assert (g2.dropout, g2.bidirectional, g2.proj_size) == (0.0, True, 2)
    with pytest.raises(TypeError):
        G2LSTM(3, 4, 1, True, False, 0.0, False, 0, None, None, 0.5)  # tau is keyword-only


def test_default_init_distribution_like_nn_lstm():
    g2 = G2LSTM(10, 50)
    bound = 1 / 50**0.5
    for p in g2.parameters():
        assert p.abs().max() <= bound
        assert p.abs().max() > 0.8 * bound


def test_forget_bias_initialisation():
    g2 = G2LSTM(4, 5, 2, bidirectional=True, forget_bias=1.0)
    for name, p in g2.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.equal(p[5:10], torch.ones(5))
        if name.startswith("bias_hh"):
            assert torch.equal(p[5:10], torch.zeros(5))
    g2.reset_parameters()
    assert torch.equal(g2.bias_ih_l0[5:10], torch.ones(5))
