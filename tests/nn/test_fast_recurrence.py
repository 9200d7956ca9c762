"""The fast recurrence equals the reference loop: same noise in, same numbers out.

Outputs, final states and the gradients of the input, both initial states and every weight,
in float32 and float64, for both GEMM routes, both ways of running a step's pointwise ops
(the fused C++ kernel and ATen ops), every gate mode and variable lengths.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from g2lstm.nn.fast import GatePlan, loop, onednn_available, recurrence_fast
from g2lstm.nn.functional import GateSpec
from g2lstm.nn.noise import sample_gate_noise
from g2lstm.nn.reference import recurrence_reference

T, N, IN, H = 7, 3, 4, 5
LENGTHS = torch.tensor([5, 2, 7])  # unsorted, one full length

ROUTES = [
    "torch",
    pytest.param(
        "onednn",
        marks=pytest.mark.skipif(not onednn_available(), reason="oneDNN GEMM op not available"),
    ),
]

# the fused kernel is tested unless a user disabled it on purpose; a kernel that fails to
# build here fails these tests (ConfigError from pointwise="kernel")
KERNEL_OFF = os.environ.get("G2LSTM_CPU_KERNEL", "").strip().lower() in ("0", "off", "false", "no")
POINTWISE = [
    "aten",
    pytest.param("kernel", marks=pytest.mark.skipif(KERNEL_OFF, reason="G2LSTM_CPU_KERNEL=0")),
]

CASES = {  # name: (mode, rows, tau, noisy, lengths, bias, schedule)
    "gumbel": ("relaxed", (0, 1), 0.9, True, None, True, "per_step"),
    "gumbel-ifo-packed": ("relaxed", (0, 1, 3), 0.5, True, LENGTHS, True, "per_step"),
    "gumbel-i-only": ("relaxed", (0,), 0.6, True, None, True, "per_step"),
    "gumbel-tau1-nobias": ("relaxed", (0, 1), 1.0, True, None, False, "per_step"),
    "gumbel-noise-per-seq": ("relaxed", (1,), 0.7, True, LENGTHS, True, "noise_per_sequence"),
    "straight-through": ("straight_through", (0, 1), 0.9, True, LENGTHS, True, "per_step"),
    "straight-through-f-o": ("straight_through", (1, 3), 0.7, True, None, True, "per_step"),
    "hard": ("hard", (0, 1), 0.9, False, None, True, "per_step"),
    "hard-packed": ("hard", (0, 1), 0.9, False, LENGTHS, True, "per_step"),
    "soft-no-noise": ("relaxed", (0, 1), 0.6, False, LENGTHS, True, "per_step"),
}


def _setup(case: str, dtype: torch.dtype, seed: int = 0):
    mode, rows, tau, noisy, lengths, bias, schedule = CASES[case]
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype).requires_grad_()

    spec = GateSpec(rows, tau, mode, noisy)
    tensors = dict(
        x=rnd(T, N, IN),
        w_ih=rnd(4 * H, IN),
        b=rnd(4 * H) if bias else None,
        w_hh=rnd(4 * H, H) * 0.6,
        h0=rnd(N, H),
        c0=rnd(N, H),
    )
    tensors["w_hh"] = tensors["w_hh"].detach().requires_grad_()
    noise = None
    if noisy:
        noise = sample_gate_noise(T, N, len(rows) * H, 0.5, schedule, dtype=dtype, generator=gen)
    return spec, tensors, noise, lengths


def _run(impl: str, spec, tensors, noise, lengths, route="torch", grad=True, pointwise="auto"):
    x, w_ih, b, w_hh, h0, c0 = (tensors[k] for k in ("x", "w_ih", "b", "w_hh", "h0", "c0"))
    with torch.set_grad_enabled(grad):
        if impl == "reference":
            r = recurrence_reference(F.linear(x, w_ih, b), h0, c0, w_hh, None, spec, noise, lengths)
        else:
            r = recurrence_fast(x, w_ih, b, w_hh, h0, c0, spec, noise, lengths, route, pointwise)
    outs = [r.output, r.h_n, r.c_n]
    if not grad:
        return outs
    weight = torch.linspace(-1, 1, r.output.numel(), dtype=x.dtype).view_as(r.output)
    loss = (r.output * weight).sum() + (r.h_n**2).sum() + (r.c_n * 0.5).sum()
    leaves = [t for t in (x, w_ih, b, w_hh, h0, c0) if t is not None]
    return outs + list(torch.autograd.grad(loss, leaves))


def _close(dtype):
    return dict(atol=1e-5, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("pointwise", POINTWISE)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("case", list(CASES))
def test_training_matches_reference(case, dtype, route, pointwise):
    spec, tensors, noise, lengths = _setup(case, dtype)
    want = _run("reference", spec, tensors, noise, lengths)
    got = _run("fast", spec, tensors, noise, lengths, route, pointwise=pointwise)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        torch.testing.assert_close(g, w, **_close(dtype))


@pytest.mark.parametrize("pointwise", POINTWISE)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("case", ["gumbel", "hard", "hard-packed", "straight-through"])
def test_inference_matches_reference(case, dtype, route, pointwise):
    spec, tensors, noise, lengths = _setup(case, dtype)
    want = _run("reference", spec, tensors, noise, lengths, grad=False)
    got = _run("fast", spec, tensors, noise, lengths, route, grad=False, pointwise=pointwise)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, **_close(dtype))
    if lengths is not None:  # padded steps output exactly zero
        pad = torch.arange(T).unsqueeze(1) >= lengths.unsqueeze(0)
        assert torch.all(got[0][pad] == 0)


@pytest.mark.parametrize("chunk_bytes", [1, 700], ids=["1-step", "3-steps"])
@pytest.mark.parametrize("pointwise", POINTWISE)
@pytest.mark.parametrize("case", ["gumbel", "hard-packed", "gumbel-noise-per-seq"])
def test_inference_in_projection_chunks_matches_reference(
    case, pointwise, chunk_bytes, monkeypatch
):
    """Inference projecting the input a few steps at a time (as large CPU calls do) gives the
    reference's numbers, with explicit noise and variable lengths, also when the last chunk
    is shorter (700 bytes = 3 steps of N=3 rows x 4H=20 float32 columns: chunks 3, 3, 1)."""
    monkeypatch.setattr(loop, "CHUNK_FROM_BYTES", 0)
    monkeypatch.setattr(loop, "CHUNK_BYTES", chunk_bytes)
    spec, tensors, noise, lengths = _setup(case, torch.float32)
    assert loop.projection_chunk(tensors["x"], 4 * H) == (1 if chunk_bytes == 1 else 3)
    want = _run("reference", spec, tensors, noise, lengths, grad=False)
    got = _run("fast", spec, tensors, noise, lengths, "torch", grad=False, pointwise=pointwise)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, **_close(torch.float32))


def test_projection_chunk_only_splits_large_cpu_projections():
    """A whole-sequence projection up to 16 MiB stays one GEMM; above, chunks of >= 4 MiB."""
    assert loop.projection_chunk(torch.empty(35, 20, 650), 4 * 650) == 35  # 7.3 MB
    big = torch.empty(70, 80, 400)  # 4H = 4600: 1.47 MB per step, 103 MB in all
    assert loop.projection_chunk(big, 4600) == 3
    assert loop.projection_chunk(torch.empty(1000, 1, 8), 4 * 1150) == 228  # 18 KB per step
    assert loop.projection_chunk(torch.empty(2, 512, 8), 4 * 4096) == 1  # 8 MiB per step
    assert loop.projection_chunk(torch.empty(70, 80, 400, device="meta"), 4600) == 70  # not CPU


@pytest.mark.parametrize("pointwise", POINTWISE)
def test_gradcheck_float64_fixed_noise(pointwise):
    spec, tensors, noise, lengths = _setup("gumbel-ifo-packed", torch.float64, seed=3)
    keys = ("x", "w_ih", "b", "w_hh", "h0", "c0")

    def f(x, w_ih, b, w_hh, h0, c0):
        r = recurrence_fast(x, w_ih, b, w_hh, h0, c0, spec, noise, lengths, "torch", pointwise)
        return r.output, r.h_n, r.c_n

    assert torch.autograd.gradcheck(f, tuple(tensors[k] for k in keys))


def test_hard_gates_are_exact_step_of_preactivation():
    """Hard gates of the fast path are exactly 1[a >= 0]: c_1 = f c_0 + i g exactly."""
    h, n = 8, 64
    spec = GateSpec((0, 1), 0.9, "hard", False)
    # one step, zero recurrent weights: a = x W_ih^T, with i/f pre-activations as tiny as 1e-30
    a = (torch.rand(n, 2 * h) * 2 - 1) * torch.logspace(-30, 0, n).unsqueeze(1)
    x = torch.cat([a, torch.ones(n, 1)], dim=1).unsqueeze(0)
    w_ih = torch.zeros(4 * h, 2 * h + 1)
    w_ih[: 2 * h, : 2 * h] = torch.eye(2 * h)
    w_ih[2 * h : 3 * h, -1] = 0.5  # g = tanh(0.5)
    w_ih[3 * h :, -1] = 30.0  # o ~ 1
    c0 = torch.randn(n, h)
    routes = ("torch", "onednn") if onednn_available() else ("torch",)
    for route in routes:
        for pointwise in ("aten",) if KERNEL_OFF else ("aten", "kernel"):
            r = recurrence_fast(
                x, w_ih, None, torch.zeros(4 * h, h), torch.zeros(n, h), c0, spec,
                route=route, pointwise=pointwise,
            )  # fmt: skip
            i, f = (a[:, :h] >= 0).float(), (a[:, h:] >= 0).float()
            g = torch.tanh(torch.tensor(0.5))  # the kernel's tanh is exact to ~1e-6
            torch.testing.assert_close(r.c_n, f * c0 + i * g, atol=2e-6, rtol=0)
            closed = i == 0  # c_1 = f c_0 exactly: both gates exactly 0 or 1
            assert torch.equal(r.c_n[closed], (f * c0)[closed])


def test_plan_merges_neighbouring_gates():
    plan = GatePlan.build(GateSpec((0, 1), 0.5, "relaxed", True), 3)
    assert [(s.lo, s.hi, s.kind, s.scale) for s in plan.segments] == [
        (0, 6, "sig", 2.0),
        (6, 9, "tanh", 1.0),
        (9, 12, "sig", 1.0),
    ]
    assert plan.noise_cols == ((0, 6, 0, 6),)
    only_i = GatePlan.build(GateSpec((0,), 0.5, "relaxed", True), 3)
    assert [(s.lo, s.hi, s.scale) for s in only_i.segments][:2] == [(0, 3, 2.0), (3, 6, 1.0)]
    st = GatePlan.build(GateSpec((1, 3), 0.5, "straight_through", True), 3)
    assert [(s.lo, s.hi, s.kind, s.s_lo, s.s_hi) for s in st.segments] == [
        (0, 3, "sig", 0, 0),
        (3, 6, "st", 0, 3),
        (6, 9, "tanh", 0, 0),
        (9, 12, "st", 3, 6),
    ]
    assert st.st_width == 6
    assert st.noise_cols == ((3, 6, 0, 3), (9, 12, 3, 6))
    hard = GatePlan.build(GateSpec((0, 1), 0.5, "hard", False), 3)
    assert {s.scale for s in hard.segments} == {1.0}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("case", ["gumbel", "straight-through", "hard-packed"])
def test_cuda_matches_reference(case):
    spec, tensors, noise, lengths = _setup(case, torch.float32)
    cuda = {
        k: None if v is None else v.detach().cuda().requires_grad_() for k, v in tensors.items()
    }
    noise_c = None if noise is None else noise.cuda()
    want = _run("reference", spec, cuda, noise_c, lengths)
    got = _run("fast", spec, cuda, noise_c, lengths, "torch")
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-3)
