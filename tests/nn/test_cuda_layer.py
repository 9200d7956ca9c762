"""The layer on a CUDA device (marked ``gpu``: run with ``pytest -m gpu`` where one exists).

On CUDA the fast recurrence's step is the fused Triton kernel (``step="auto"``), falling back
to ATen ops where Triton is missing; both are compared with the reference loop, and with
each other, in float32, with gradients; plus ``torch.compile`` and autocast on the device.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from g2lstm import G2LSTM
from g2lstm.nn.backends import Implementation
from g2lstm.nn.fast import triton_step

pytestmark = pytest.mark.gpu

T, N, IN, H = 7, 5, 12, 24


def _run(model: G2LSTM, impl: Implementation, x: torch.Tensor, lengths=None, seed: int = 3):
    model.backend = impl
    model.zero_grad()
    torch.manual_seed(seed)
    pack = nn.utils.rnn.pack_padded_sequence
    inp = x if lengths is None else pack(x, lengths, enforce_sorted=False)
    out, (h, c) = model(inp)
    if lengths is not None:
        out = nn.utils.rnn.pad_packed_sequence(out)[0]
    if not model.training:
        return [out, h, c]
    (out.pow(2).sum() + h.sum() + c.sum()).backward()
    return [out, h, c] + [p.grad.clone() for p in model.parameters()]


@pytest.fixture
def cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch.device("cuda")


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize(
    "mode", ["train", "train_st", "hard", "sample"]
)  # fmt: skip
def test_cuda_layer_matches_reference(cuda, mode, packed):
    torch.manual_seed(0)
    kw = {"estimator": "straight_through"} if mode == "train_st" else {}
    model = G2LSTM(IN, H, num_layers=2, bidirectional=True, noise_p=0.5, device=cuda, **kw)
    if mode in ("hard", "sample"):
        model.eval().set_gate_options(eval_gates=mode)
    x = torch.randn(T, N, IN, device=cuda)
    lengths = torch.tensor([7, 3, 5, 1, 7]) if packed else None
    want = _run(model, Implementation(algorithm="reference"), x, lengths)
    for step in ("auto", "aten", "triton"):
        if step == "triton" and not triton_step.available(x):
            continue
        got = _run(model, Implementation(algorithm="fast", step=step), x, lengths)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-3)


def test_cuda_compile_training_step(cuda):
    torch.manual_seed(0)
    model = G2LSTM(IN, H, noise_p=0.5, device=cuda)
    x = torch.randn(T, N, IN, device=cuda)
    with torch._dynamo.config.patch(allow_rnn=True), torch._inductor.config.patch(
        fallback_random=True
    ):
        compiled = torch.compile(model, fullgraph=True)
        torch.manual_seed(1)
        out, _ = compiled(x)
        out.sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.manual_seed(1)
    out_e, _ = model(x)
    out_e.sum().backward()
    torch.testing.assert_close(out, out_e, atol=1e-4, rtol=1e-3)
    for g, p in zip(got, model.parameters()):
        torch.testing.assert_close(g, p.grad, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_autocast_dtypes_match_nn_lstm(cuda, dtype):
    ref = nn.LSTM(IN, H, device=cuda)
    g2 = G2LSTM.from_lstm(ref)
    x = torch.randn(T, N, IN, device=cuda, requires_grad=True)
    seen = []
    for m in (ref, g2):
        with torch.autocast("cuda", dtype=dtype):
            out, (h, c) = m(x)
        out.float().sum().backward()
        seen.append((out.dtype, h.dtype, x.grad.dtype, m.weight_hh_l0.grad.dtype))
        x.grad = None
    assert seen[0] == seen[1]
