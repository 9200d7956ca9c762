"""Which step implementation runs, and ``G2LSTM_STEP``: the Triton step through the whole
layer on CPU tensors under Triton's interpreter, and errors (never silent fallbacks) where a
forced step cannot run."""

from __future__ import annotations

import pytest
import torch

from g2lstm import G2LSTM
from g2lstm.errors import ConfigError
from g2lstm.nn.fast import kernel
from g2lstm.nn.fast.plan import GatePlan
from g2lstm.nn.fast.steps import AtenStep, FusedStep, select_step
from g2lstm.nn.functional import GateMode, GateSpec

PLAN = GatePlan.build(GateSpec((0, 1), 0.9, GateMode.RELAXED, True), 8)


def _grads(model, x, lengths=None):
    model.zero_grad()
    torch.manual_seed(4)
    inp = x
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, (h, c) = model(inp)
    if lengths is not None:
        out = torch.nn.utils.rnn.pad_packed_sequence(out)[0]
    (out.pow(2).sum() + h.sum() + c.sum()).backward()
    return [out, h, c] + [p.grad.clone() for p in model.parameters()]


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["gumbel", "straight_through"])
def test_g2lstm_step_triton_runs_the_layer_under_the_interpreter(
    triton_interpreter, monkeypatch, estimator
):
    torch.manual_seed(0)
    model = G2LSTM(5, 6, num_layers=2, bidirectional=True, noise_p=0.5, estimator=estimator)
    x = torch.randn(4, 3, 5)
    lengths = torch.tensor([4, 2, 3])
    model.backend = "reference"
    want = _grads(model, x, lengths)
    model.backend = "auto"
    calls = []
    real = triton_interpreter.forward_step

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(triton_interpreter, "forward_step", spy)
    monkeypatch.setenv("G2LSTM_STEP", "triton")
    got = _grads(model, x, lengths)
    assert calls, "G2LSTM_STEP=triton did not run the Triton step"
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=2e-5, rtol=1e-4)
    # exact hard gates in eval as well
    model.eval().set_gate_options(eval_gates="hard")
    with torch.no_grad():
        monkeypatch.setenv("G2LSTM_STEP", "aten")
        ref = model(x)[0]
        monkeypatch.setenv("G2LSTM_STEP", "triton")
        torch.testing.assert_close(model(x)[0], ref, atol=1e-6, rtol=1e-5)


def test_forced_step_that_cannot_run_is_an_error(monkeypatch):
    """Compiled Triton kernels cannot run on CPU tensors: forcing them raises."""
    x = torch.zeros(2, 3, 4)
    triton_step = pytest.importorskip("g2lstm.nn.fast.triton_step")
    monkeypatch.setattr(triton_step, "unavailable_reason", lambda t=None: "no GPU here")
    monkeypatch.setenv("G2LSTM_STEP", "triton")
    with pytest.raises(ConfigError, match="G2LSTM_STEP=triton.*no GPU here"):
        select_step(x, PLAN)
    monkeypatch.setenv("G2LSTM_STEP", "sometimes")
    with pytest.raises(ConfigError, match="G2LSTM_STEP='sometimes'"):
        select_step(x, PLAN)
    monkeypatch.delenv("G2LSTM_STEP")
    with pytest.raises(ConfigError, match="step='triton'"):
        select_step(x, PLAN, "triton")


def test_auto_picks_the_fused_kernel_of_the_device(monkeypatch):
    x32 = torch.zeros(2, 3, 4)
    step = select_step(x32, PLAN)
    if kernel.cpu_kernel() is not None:
        assert isinstance(step, FusedStep) and step.name == "kernel"
    else:
        assert isinstance(step, AtenStep)
    assert isinstance(select_step(x32.to(torch.bfloat16), PLAN), AtenStep)  # no C++ bf16
    assert isinstance(select_step(x32, PLAN, "aten"), AtenStep)
    monkeypatch.setenv("G2LSTM_STEP", "aten")  # the variable overrides the module's choice
    assert isinstance(select_step(x32, PLAN, "kernel"), AtenStep)
