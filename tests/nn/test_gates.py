"""Gate behaviour: temperature, hard/soft/sample eval, straight-through, recording."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from g2lstm import G2LSTM, GateRecorder, with_gate_options
from g2lstm.errors import ConfigError
from g2lstm.nn import G2LSTMCell, eval_gate_settings, set_gate_options_
from g2lstm.nn.functional import GateSpec, gate_activations


def _record(model, x):
    with GateRecorder(model) as rec:
        model(x)
    return rec.traces


def test_soft_eval_gate_is_sigmoid_of_a_over_tau():
    m = G2LSTM(3, 4, tau=0.5).eval()
    x = torch.randn(1, 2, 3)
    ((_, tr),) = _record(m, x)
    a = x[0] @ m.weight_ih_l0.t() + m.bias_ih_l0 + m.bias_hh_l0  # h_0 = 0
    torch.testing.assert_close(tr.input[0], torch.sigmoid(a[:, 0:4] / 0.5))
    torch.testing.assert_close(tr.forget[0], torch.sigmoid(a[:, 4:8] / 0.5))
    torch.testing.assert_close(tr.output[0], torch.sigmoid(a[:, 12:16]))  # no tau on o


@pytest.mark.parametrize("bidir", [False, True])
def test_hard_eval_gates_are_exactly_binary(bidir):
    m = G2LSTM(3, 8, 2, bidirectional=bidir, eval_gates="hard").eval()
    traces = _record(m, torch.randn(9, 5, 3))
    assert len(traces) == 2 * (2 if bidir else 1)
    for _, tr in traces:
        for g in (tr.input, tr.forget):
            assert set(g.unique().tolist()) <= {0.0, 1.0}
        assert ((tr.output > 0) & (tr.output < 1)).all()  # output gate stays soft


def test_hard_gate_is_step_of_preactivation():
    spec = GateSpec(rows=(0, 1), tau=0.9, mode="hard", noisy=False)
    a = torch.tensor([[-1.0, 0.0, 2.0, -0.0, 1, 1, 1, 1]])  # H = 2
    i, f, _, _ = gate_activations(a, None, spec)
    assert i.tolist() == [[0.0, 1.0]] and f.tolist() == [[1.0, 1.0]]


def test_straight_through_forward_binary_backward_relaxed():
    m = G2LSTM(3, 6, estimator="straight_through", noise_p=0.0, tau=0.7).train()
    x = torch.randn(4, 2, 3)
    ((_, tr),) = _record(m, x)
    assert set(tr.input.unique().tolist()) <= {0.0, 1.0}
    out, _ = m(x)
    out.sum().backward()
    assert m.weight_ih_l0.grad[0:12].abs().sum() > 0  # gradient reaches the i/f rows


def test_straight_through_gradient_is_relaxed_sigmoid_gradient():
    from g2lstm.nn.functional import straight_through_gate

    z = torch.randn(20, dtype=torch.float64, requires_grad=True)
    straight_through_gate(z, 0.5).sum().backward()
    s = torch.sigmoid(z.detach() / 0.5)
    torch.testing.assert_close(z.grad, s * (1 - s) / 0.5)


def test_sample_eval_keeps_noise_and_soft_eval_is_deterministic():
    m = G2LSTM(3, 5, noise_p=1.0).eval()
    x = torch.randn(6, 2, 3)
    o1, _ = m(x)
    o2, _ = m(x)
    assert torch.equal(o1, o2)
    m.set_gate_options(eval_gates="sample")
    o3, _ = m(x)
    o4, _ = m(x)
    assert not torch.equal(o3, o4)


def test_training_noise_changes_output_and_generator_reproduces_it():
    m = G2LSTM(3, 5, noise_p=0.5).train()
    x = torch.randn(6, 2, 3)
    m.generator = torch.Generator().manual_seed(1)
    o1, _ = m(x)
    m.generator = torch.Generator().manual_seed(1)
    o2, _ = m(x)
    o3, _ = m(x)
    assert torch.equal(o1, o2)
    assert not torch.equal(o1, o3)


def test_output_gate_ablation_gets_noise_and_tau():
    m = G2LSTM(3, 4, noisy_gates=("i", "f", "o"), tau=0.5).eval()
    x = torch.randn(1, 2, 3)
    ((_, tr),) = _record(m, x)
    a = x[0] @ m.weight_ih_l0.t() + m.bias_ih_l0 + m.bias_hh_l0
    torch.testing.assert_close(tr.output[0], torch.sigmoid(a[:, 12:16] / 0.5))


def test_recording_with_packed_input_masks_padding():
    m = G2LSTM(3, 4, bidirectional=True).eval()
    x = torch.randn(5, 3, 3)
    lengths = torch.tensor([2, 5, 3])
    traces = _record(m, pack_padded_sequence(x, lengths, enforce_sorted=False))
    for _, tr in traces:
        assert tr.input.shape == (5, 3, 4)
        assert tr.mask.sum(0).tolist() == [2, 5, 3]
        assert tr.valid("forget").numel() == 10 * 4
        assert (tr.input[~tr.mask] == 0).all()
    # forward direction at t=0 and reverse direction at each sequence's last step both see
    # zero state, so their gates are functions of x alone: check the reverse one
    rev = next(t for _, t in traces if t.direction == 1)
    w, b = m.weight_ih_l0_reverse, m.bias_ih_l0_reverse + m.bias_hh_l0_reverse
    last = x[lengths - 1, torch.arange(3)]
    expect = torch.sigmoid((last @ w.t() + b)[:, 0:4] / 0.9)
    torch.testing.assert_close(rev.input[lengths - 1, torch.arange(3)], expect)


def test_hooks_are_removed_and_forward_unchanged():
    m = G2LSTM(3, 4).eval()
    x = torch.randn(5, 2, 3)
    before, _ = m(x)
    with GateRecorder(m) as rec:
        during, _ = m(x)
    assert len(rec.traces) == 1
    assert not m._gate_hooks
    torch.testing.assert_close(during, before)


def test_recorder_needs_a_g2_module():
    with pytest.raises(ValueError, match="no G2LSTM"), GateRecorder(torch.nn.LSTM(2, 2)):
        pass


def test_with_gate_options_copies():
    m = torch.nn.Sequential(G2LSTM(3, 4))
    hard = with_gate_options(m, eval_gates="hard")
    assert m[0].gate_config.eval_gates.value == "soft"
    assert hard[0].gate_config.eval_gates.value == "hard"


def test_set_gate_options_in_place_changes_every_g2_module_and_validates():
    m = torch.nn.Sequential(G2LSTM(3, 4), G2LSTMCell(4, 4), torch.nn.LSTM(4, 4))
    assert set_gate_options_(m, eval_gates="hard", eval_temperature="drop") is m
    assert eval_gate_settings(m) == {"eval_gates": "hard", "eval_temperature": "drop"}
    assert set_gate_options_(m) is m  # no changes: nothing touched
    assert eval_gate_settings(m)["eval_gates"] == "hard"
    with pytest.raises(ConfigError, match="eval_gates"):
        set_gate_options_(m, eval_gates="binary")


def test_eval_gate_settings_reports_agreement_mixture_and_absence():
    m = torch.nn.Sequential(G2LSTM(3, 4), G2LSTMCell(4, 4))
    assert eval_gate_settings(m) == {"eval_gates": "soft", "eval_temperature": "divide"}
    m[1].set_gate_options(eval_gates="hard")
    assert eval_gate_settings(m) == {"eval_gates": "mixed", "eval_temperature": "divide"}
    assert eval_gate_settings(torch.nn.LSTM(3, 4)) == {
        "eval_gates": None,
        "eval_temperature": None,
    }


def test_cell_matches_lstm_cell_and_records():
    ref = torch.nn.LSTMCell(3, 5)
    cell = G2LSTMCell(3, 5, noise_p=0.0, tau=1.0)
    cell.load_state_dict(ref.state_dict())
    x, h, c = torch.randn(4, 3), torch.randn(4, 5), torch.randn(4, 5)
    torch.testing.assert_close(cell(x, (h, c)), ref(x, (h, c)))
    torch.testing.assert_close(cell(x[0]), ref(x[0]))
    with GateRecorder(cell) as rec:
        cell(x)
    assert rec.traces[0][1].input.shape == (1, 4, 5)


def test_cell_equals_one_layer_step():
    cell = G2LSTMCell(3, 5, noise_p=0.5, tau=0.8).train()
    layer = G2LSTM(3, 5, noise_p=0.5, tau=0.8).train()
    with torch.no_grad():
        for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(layer, n + "_l0").copy_(getattr(cell, n))
    x = torch.randn(1, 2, 3)
    layer.generator = torch.Generator().manual_seed(5)
    out, (h, c) = layer(x)
    cell.generator = torch.Generator().manual_seed(5)
    h1, c1 = cell(x[0])
    torch.testing.assert_close(h1, out[0])
    torch.testing.assert_close(c1, c[0])
