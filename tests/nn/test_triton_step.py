"""The Triton step kernels equal the ATen formulas and, looped, the reference recurrence.

On CPU they run under Triton's interpreter (fixture ``triton_interpreter``; skipped without
triton/numpy), with the ``gpu`` mark compiled on CUDA (``pytest -m gpu``). Each entry point is
checked against float64 ATen math (sigmoid(scale a), 1[a >= 0], straight-through, tanh, the
cell update, masks, aliased buffers) over gate configurations and odd sizes; then T steps
forward and backward, with the GEMMs around them as :mod:`g2lstm.nn.fast.recurrence` does,
against :func:`~g2lstm.nn.reference.recurrence_reference` and autograd.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest
import torch
from torch import Tensor

from g2lstm.errors import ConfigError, ShapeError
from g2lstm.nn.fast import GatePlan
from g2lstm.nn.functional import GateSpec, straight_through_gate
from g2lstm.nn.noise import sample_gate_noise
from g2lstm.nn.reference import length_mask, recurrence_reference

N, H = 3, 37
SIG, HARD, ST = 0, 1, 2
CONFIGS = {  # name: (kinds, scales) of gates i, f, o
    "lstm": ((SIG, SIG, SIG), (1.0, 1.0, 1.0)),
    "relaxed": ((SIG, SIG, SIG), (1 / 0.9, 1 / 0.9, 1.0)),
    "straight-through": ((ST, ST, SIG), (1 / 0.7, 1 / 0.7, 1.0)),
    "hard": ((HARD, HARD, SIG), (1.0, 1.0, 1.0)),
    "st-all": ((ST, ST, ST), (2.0, 2.0, 2.0)),
    "mixed": ((HARD, SIG, ST), (1.0, 1.5, 1 / 0.9)),
}
DTYPES = [torch.float32, torch.float64]
TOL = {torch.float64: {"atol": 1e-12, "rtol": 1e-10}, torch.float32: {"atol": 3e-6, "rtol": 1e-5}}


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def step(request: pytest.FixtureRequest) -> tuple[ModuleType, torch.device]:
    """``(triton_step module, device)``: interpreted on CPU, compiled on CUDA."""
    if request.param == "cpu":
        return request.getfixturevalue("triton_interpreter"), torch.device("cpu")
    return request.getfixturevalue("triton_compiled"), torch.device("cuda")


def _act(a: Tensor, kind: int, scale: float) -> tuple[Tensor, Tensor | None]:
    """Gate of pre-activation ``a`` with the kernel's gradient; the ST sigmoid or None."""
    s = torch.sigmoid(scale * a)
    if kind == SIG:
        return s, None
    hard = (a >= 0).to(a.dtype)
    if kind == HARD:
        return hard, None
    return straight_through_gate(a, 1 / scale), s  # 1[a >= 0], gradient of sigmoid(scale a)


def _ref_step(pre, hw, c0, h0, mask, kinds, scales):
    """One step in float64 ATen ops: gates, ST sigmoids, kept c and h, output y."""
    a = pre.double() + hw.double()
    ai, af, ag, ao = a.split(a.shape[1] // 4, dim=1)
    (i, si), (f, sf), (o, so) = (_act(x, k, s) for x, k, s in zip((ai, af, ao), kinds, scales))
    g = torch.tanh(ag)
    c = f * c0 + i * g
    h = o * torch.tanh(c)
    sides = [x for x in (si, sf, so) if x is not None]
    s_all = torch.cat(sides, dim=1) if sides else None
    if mask is None:
        return torch.cat([i, f, g, o], 1), s_all, c, h, h
    m = mask.view(-1, 1)
    return torch.cat([i, f, g, o], 1), s_all, torch.where(m, c, c0), torch.where(m, h, h0), h * m


def _rand(gen, *shape, dtype, device, scale=1.0):
    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype).to(device)


def _step_inputs(seed, dtype, device):
    gen = torch.Generator().manual_seed(seed)
    pre = _rand(gen, N, 4 * H, dtype=dtype, device=device, scale=2.0)
    hw = _rand(gen, N, 4 * H, dtype=dtype, device=device)
    pre[:, ::9] = -hw[:, ::9]  # a == 0 exactly: 1[a >= 0] is 1 there
    c0 = _rand(gen, N, H, dtype=dtype, device=device)
    h0 = _rand(gen, N, H, dtype=dtype, device=device)
    mask = torch.tensor([True, False, True], device=device)
    return gen, pre, hw, c0, h0, mask


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("layout", ["plain", "masked", "in-place"])
def test_forward_step_matches_aten(step, config, dtype, layout):
    """plain: the training loop without lengths (h_out is y[t]); masked: with lengths, y_out
    given; in-place: the inference loop (c_out is c_prev, h_out is h_prev, no gates kept)."""
    ts, dev = step
    kinds, scales = CONFIGS[config]
    n_st = kinds.count(ST)
    _, pre, hw, c0, h0, mask = _step_inputs(1, dtype, dev)
    gates, s, c_want, h_want, y_want = _ref_step(
        pre, hw, c0.double(), h0.double(), None if layout == "plain" else mask, kinds, scales
    )
    pre_in = pre.clone()
    c_prev, h_prev = c0.clone(), h0.clone()
    s_out = torch.full((N, n_st * H), 7.0, dtype=dtype, device=dev) if n_st else None
    y = torch.full_like(c0, 7.0)
    if layout == "plain":
        c_out, h_out = torch.empty_like(c0), y
        ts.forward_step(pre, hw, c_prev, None, c_out, h_out, None, s_out, None, kinds, scales, True)
    elif layout == "masked":
        c_out, h_out = torch.empty_like(c0), torch.empty_like(h0)
        ts.forward_step(pre, hw, c_prev, h_prev, c_out, h_out, y, s_out, mask, kinds, scales, True)
    else:
        c_out, h_out, s_out = c_prev, h_prev, None
        ts.forward_step(
            pre, hw, c_prev, h_prev, c_prev, h_prev, y, None, mask[:, None], kinds, scales, False
        )
    tol = TOL[dtype]
    torch.testing.assert_close(c_out.double(), c_want, **tol)
    torch.testing.assert_close(h_out.double(), h_want, **tol)
    torch.testing.assert_close(y.double(), y_want, **tol)
    if layout == "in-place":
        assert torch.equal(pre, pre_in)  # keep_gates=False leaves pre as it was
    else:
        torch.testing.assert_close(pre.double(), gates, **tol)
    if s_out is not None:
        torch.testing.assert_close(s_out.double(), s, **tol)
    if layout != "plain":  # masked row: state kept bit for bit, output exactly 0
        assert torch.equal(c_out[1], c0[1]) and torch.equal(h_out[1], h0[1])
        assert torch.equal(y[1], torch.zeros_like(y[1]))
    if layout != "in-place":  # hard and ST gates: exactly 0/1, and 1 where a == 0
        at_zero = (pre_in.double() + hw.double()) == 0
        for k, kind in zip((0, 1, 3), kinds):
            if kind != SIG:
                cols = slice(k * H, (k + 1) * H)
                assert set(pre[:, cols].unique().tolist()) <= {0.0, 1.0}
                assert at_zero[:, cols].any() and (pre[:, cols][at_zero[:, cols]] == 1).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("layout", ["plain", "masked", "in-place"])
def test_backward_step_matches_autograd(step, config, dtype, layout):
    """plain: no mask, no dy; masked: mask and dy; in-place: dgates written over gates."""
    ts, dev = step
    kinds, scales = CONFIGS[config]
    gen, pre, hw, c0, h0, mask = _step_inputs(2, dtype, dev)
    m = None if layout == "plain" else mask
    a = (pre.double() + hw.double()).requires_grad_()
    c_prev = c0.double().requires_grad_()
    gates, s, c_t, h_t, y = _ref_step(a, torch.zeros_like(a), c_prev, h0.double(), m, kinds, scales)
    dh = _rand(gen, N, H, dtype=dtype, device=dev)
    dy = None if layout == "plain" else _rand(gen, N, H, dtype=dtype, device=dev)
    dc = _rand(gen, N, H, dtype=dtype, device=dev)
    loss = (h_t * dh.double()).sum() + (c_t * dc.double()).sum()
    if dy is not None:
        loss = loss + (y * dy.double()).sum()
    da_want, dc_want = torch.autograd.grad(loss, (a, c_prev))

    g_buf = gates.detach().to(dtype)
    s_buf = None if s is None else s.detach().to(dtype)
    dgates = g_buf if layout == "in-place" else torch.full_like(g_buf, 7.0)
    dc_io = dc.clone()
    ts.backward_step(
        g_buf, c_t.detach().to(dtype), c0, dh, dy, dc_io, dgates, s_buf, m, kinds, scales
    )
    tol = TOL[dtype] if dtype == torch.float64 else {"atol": 2e-5, "rtol": 1e-4}
    torch.testing.assert_close(dgates.double(), da_want, **tol)
    torch.testing.assert_close(dc_io.double(), dc_want, **tol)
    if m is not None:  # masked row: no gradient into the gates, dc untouched
        assert torch.equal(dgates[1], torch.zeros_like(dgates[1]))
        assert torch.equal(dc_io[1], dc[1])
    for j, kind in enumerate(kinds):  # hard gates pass no gradient
        if kind == HARD:
            k = (0, 1, 3)[j]
            assert torch.equal(dgates[:, k * H : (k + 1) * H], torch.zeros(N, H, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_relative_accuracy_and_special_values(step, dtype):
    """sigmoid and tanh to a few ulp of relative error from 1e-30 to 50, both signs (the Taylor
    branch of tanh near 0 included); +-inf saturate; NaN propagates, and hard and ST gates give
    1[NaN >= 0] = 0 as torch.ge does. On CUDA float32, exp is the hardware approximation."""
    ts, dev = step
    mag = torch.logspace(-30, 1.7, 4 * H // 2, dtype=torch.float64)
    vals = torch.cat([mag, -mag]).to(dtype)
    vals[:4] = torch.tensor([float("inf"), -float("inf"), float("nan"), 0.0])
    pre = vals[torch.randperm(4 * H, generator=torch.Generator().manual_seed(8))]
    pre = torch.stack([pre, pre.roll(H), pre.roll(2 * H)]).to(dev)  # (N, 4H): every gate
    hw = torch.zeros_like(pre)
    c0 = torch.linspace(-2, 2, N * H, dtype=dtype, device=dev).view(N, H)
    eps = torch.finfo(dtype).eps
    rtol = 8 * eps if dev.type == "cpu" else (64 * eps if dtype == torch.float64 else 2e-5)
    for config in ("lstm", "mixed"):
        kinds, scales = CONFIGS[config]
        gates, s, c_want, h_want, _ = _ref_step(pre, hw, c0.double(), None, None, kinds, scales)
        c1, h1, s_out = (torch.empty_like(c0) for _ in range(3))
        s_out = s_out if config == "mixed" else None
        g = pre.clone()
        ts.forward_step(g, hw, c0, None, c1, h1, None, s_out, None, kinds, scales, True)
        if config == "lstm":  # no scale: the activations' own error, relative
            torch.testing.assert_close(g.double(), gates, atol=0.0, rtol=rtol, equal_nan=True)
        else:  # scale * a rounds first: error relative to the sigmoid's argument
            torch.testing.assert_close(g.double(), gates, **TOL[dtype], equal_nan=True)
            torch.testing.assert_close(s_out.double(), s, **TOL[dtype], equal_nan=True)
        torch.testing.assert_close(c1.double(), c_want, **TOL[dtype], equal_nan=True)
        torch.testing.assert_close(h1.double(), h_want, **TOL[dtype], equal_nan=True)
    binary = torch.cat([pre[:, :H], pre[:, 3 * H :]], 1)  # mixed: i hard, o straight-through
    assert binary.isnan().any() and not torch.cat([g[:, :H], g[:, 3 * H :]], 1).isnan().any()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_types_compute_in_float32(step, dtype):
    """bfloat16/float16 in and out; the math in float32 (error: one rounding of the output)."""
    ts, dev = step
    kinds, scales = CONFIGS["mixed"]
    gen, pre, hw, c0, h0, mask = _step_inputs(3, dtype, dev)
    gates, s, c_want, h_want, y_want = _ref_step(
        pre, hw, c0.double(), h0.double(), mask, kinds, scales
    )
    c1, h1, y, s_out = (torch.empty_like(c0) for _ in range(4))
    ts.forward_step(pre, hw, c0, h0, c1, h1, y, s_out, mask, kinds, scales, True)
    eps = torch.finfo(dtype).eps
    for got, want in ((c1, c_want), (h1, h_want), (y, y_want), (pre, gates), (s_out, s)):
        torch.testing.assert_close(got.double(), want, atol=4 * eps, rtol=2 * eps)
    assert torch.equal(c1[1], c0[1]) and torch.equal(h1[1], h0[1])
    dh, dc = _rand(gen, N, H, dtype=dtype, device=dev), _rand(gen, N, H, dtype=dtype, device=dev)
    dgates, dc_io = torch.empty_like(pre), dc.clone()
    ts.backward_step(pre, c1, c0, dh, None, dc_io, dgates, s_out, mask, kinds, scales)
    f32 = [t.float() for t in (pre, c1, c0, dh)]
    dgates32, dc32 = torch.empty_like(f32[0]), dc.float()
    ts.backward_step(*f32, None, dc32, dgates32, s_out.float(), mask, kinds, scales)
    torch.testing.assert_close(dgates.float(), dgates32, atol=4 * eps, rtol=2 * eps)
    torch.testing.assert_close(dc_io.float(), dc32, atol=4 * eps, rtol=2 * eps)


# ----------------------------------------------------------------------------- whole sequence

T, IN = 5, 4
LENGTHS = [4, 1, 5]
MODES = {  # name: spec
    "relaxed": GateSpec((0, 1), 0.9, "relaxed", True),
    "straight-through": GateSpec((0, 1, 3), 0.7, "straight_through", True),
    "hard": GateSpec((0, 1), 0.9, "hard", False),
}


def _sequence_inputs(spec: GateSpec, dtype, device):
    gen = torch.Generator().manual_seed(4)

    def leaf(*shape, scale=1.0):
        return _rand(gen, *shape, dtype=dtype, device=device, scale=scale).requires_grad_()

    x, w_ih, b = leaf(T, N, IN), leaf(4 * H, IN, scale=0.5), leaf(4 * H, scale=0.5)
    w_hh, h0, c0 = leaf(4 * H, H, scale=0.2), leaf(N, H), leaf(N, H)
    noise = None
    if spec.noisy:
        noise = sample_gate_noise(T, N, len(spec.rows) * H, 0.5, generator=gen)
        noise = noise.to(dtype=dtype, device=device)
    return [x, w_ih, b, w_hh, h0, c0], noise


def _loop_forward(ts, leaves, noise, mask, plan: GatePlan):
    """The training forward of recurrence.py with the Triton step: gates kept for backward."""
    x, w_ih, b, w_hh, h0, c0 = (t.detach() for t in leaves)
    pre = (x.reshape(T * N, IN) @ w_ih.t()).view(T, N, 4 * H)
    if noise is not None:
        for g_lo, g_hi, n_lo, n_hi in plan.noise_cols:
            pre[..., g_lo:g_hi] += noise[..., n_lo:n_hi]
    cs = x.new_empty(T + 1, N, H)
    cs[0] = c0
    hs = x.new_empty(T + 1, N, H)  # h_0..h_T (with a mask) or y = h_1..h_T in hs[1:]
    hs[0] = h0
    s_buf = x.new_empty(T, N, plan.st_width) if plan.st_width else None
    for t in range(T):
        hw = torch.addmm(b, hs[t], w_hh.t())
        ts.forward_step(
            pre[t], hw, cs[t], None if mask is None else hs[t], cs[t + 1], hs[t + 1], None,
            None if s_buf is None else s_buf[t], None if mask is None else mask[t],
            plan.kernel_kinds, plan.kernel_scales, True,
        )  # fmt: skip
    y = hs[1:] if mask is None else hs[1:] * mask
    return y, hs, cs, pre, s_buf


def _loop_backward(ts, leaves, hs, cs, gates, s_buf, mask, plan, dy, dh_n, dc_n):
    """The backward of recurrence.py: one Triton step and one GEMM per step, then the
    weight GEMMs over all steps."""
    x, w_ih, _, w_hh, _, _ = (t.detach() for t in leaves)
    dgates = torch.empty_like(gates)
    dc, dh = dc_n.clone(), dh_n.clone()
    for t in range(T - 1, -1, -1):
        ts.backward_step(
            gates[t], cs[t + 1], cs[t], dh, dy[t], dc, dgates[t],
            None if s_buf is None else s_buf[t], None if mask is None else mask[t],
            plan.kernel_kinds, plan.kernel_scales,
        )  # fmt: skip
        dh_prev = dgates[t] @ w_hh
        dh = dh_prev if mask is None else torch.where(mask[t], dh_prev, dh)
    dg2 = dgates.view(T * N, 4 * H)
    dx = (dg2 @ w_ih).view(T, N, IN)
    dw_ih = dg2.t() @ x.reshape(T * N, IN)
    db = dg2.sum(0)
    dw_hh = dg2.t() @ hs[:T].reshape(T * N, H)  # h_{t-1} of every step
    return [dx, dw_ih, db, dw_hh, dh, dc]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("packed", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("mode", list(MODES))
def test_sequence_matches_reference_recurrence(step, mode, packed, dtype):
    """y, h_n, c_n and the gradients of x, W_ih, b, W_hh, h_0, c_0 over T steps."""
    ts, dev = step
    spec = MODES[mode]
    plan = GatePlan.build(spec, H)
    leaves, noise = _sequence_inputs(spec, dtype, dev)
    x, w_ih, b, w_hh, h0, c0 = leaves
    lengths = torch.tensor(LENGTHS) if packed else None
    ref = recurrence_reference(x @ w_ih.t() + b, h0, c0, w_hh, None, spec, noise, lengths)
    gen = torch.Generator().manual_seed(5)
    dy = _rand(gen, T, N, H, dtype=dtype, device=dev)
    dh_n = _rand(gen, N, H, dtype=dtype, device=dev)
    dc_n = _rand(gen, N, H, dtype=dtype, device=dev)
    loss = (ref.output * dy).sum() + (ref.h_n * dh_n).sum() + (ref.c_n * dc_n).sum()
    grads_want = torch.autograd.grad(loss, leaves)

    mask = None if lengths is None else length_mask(lengths, T, dev).unsqueeze(-1)
    y, hs, cs, gates, s_buf = _loop_forward(ts, leaves, noise, mask, plan)
    last = torch.tensor(LENGTHS if packed else [T] * N, device=dev)
    h_n, c_n = hs[last, torch.arange(N)], cs[last, torch.arange(N)]
    tol = TOL[dtype] if dtype == torch.float64 else {"atol": 2e-5, "rtol": 1e-4}
    torch.testing.assert_close(y, ref.output.detach(), **tol)
    torch.testing.assert_close(h_n, ref.h_n.detach(), **tol)
    torch.testing.assert_close(c_n, ref.c_n.detach(), **tol)
    torch.testing.assert_close(hs[T], ref.h_n.detach(), **tol)  # kept past each length
    grads = _loop_backward(ts, leaves, hs, cs, gates, s_buf, mask, plan, dy, dh_n, dc_n)
    for name, got, want in zip(("x", "w_ih", "b", "w_hh", "h0", "c0"), grads, grads_want):
        torch.testing.assert_close(got, want, **tol, msg=lambda m, n=name: f"d{n}: {m}")


@pytest.mark.parametrize("mode", ["relaxed", "hard"])
def test_inference_loop_with_state_in_place(step, mode):
    """The no-grad loop: states updated in place in one buffer each, y written per step."""
    ts, dev = step
    spec = MODES[mode]
    plan = GatePlan.build(spec, H)
    leaves, noise = _sequence_inputs(spec, torch.float64, dev)
    x, w_ih, b, w_hh, h0, c0 = (t.detach() for t in leaves)
    lengths = torch.tensor(LENGTHS)
    ref = recurrence_reference(x @ w_ih.t() + b, h0, c0, w_hh, None, spec, noise, lengths)
    mask = length_mask(lengths, T, dev)
    pre = (x @ w_ih.t()).contiguous()
    if noise is not None:
        for g_lo, g_hi, n_lo, n_hi in plan.noise_cols:
            pre[..., g_lo:g_hi] += noise[..., n_lo:n_hi]
    h, c, y = h0.clone(), c0.clone(), torch.empty(T, N, H, dtype=x.dtype, device=dev)
    for t in range(T):
        ts.forward_step(
            pre[t], torch.addmm(b, h, w_hh.t()), c, h, c, h, y[t], None, mask[t],
            plan.kernel_kinds, plan.kernel_scales, False,
        )  # fmt: skip
    tol = TOL[torch.float64]
    torch.testing.assert_close(y, ref.output, **tol)
    torch.testing.assert_close(h, ref.h_n, **tol)
    torch.testing.assert_close(c, ref.c_n, **tol)


# ----------------------------------------------------------------------------- errors


def test_bad_arguments_raise_typed_errors(triton_interpreter):
    ts = triton_interpreter
    kinds, scales = CONFIGS["straight-through"]
    _, pre, hw, c0, h0, mask = _step_inputs(6, torch.float32, torch.device("cpu"))
    c1, h1, s = torch.empty_like(c0), torch.empty_like(h0), torch.empty(N, 2 * H)
    with pytest.raises(ShapeError, match="hw: expected a contiguous"):
        ts.forward_step(pre, hw[:, : 2 * H], c0, None, c1, h1, None, s, None, kinds, scales, True)
    with pytest.raises(ShapeError, match="not contiguous"):
        ts.forward_step(pre, hw, c0, None, c1.t().contiguous().t(), h1, None, s, None, kinds,
                        scales, True)  # fmt: skip
    with pytest.raises(ShapeError, match="float32"):
        ts.forward_step(pre, hw.double(), c0, None, c1, h1, None, s, None, kinds, scales, True)
    with pytest.raises(ConfigError, match="need s_out"):
        ts.forward_step(pre, hw, c0, None, c1, h1, None, None, None, kinds, scales, True)
    with pytest.raises(ShapeError, match="s_out"):
        ts.forward_step(pre, hw, c0, None, c1, h1, None, s[:, :H], None, kinds, scales, True)
    with pytest.raises(ConfigError, match="needs h_prev"):
        ts.forward_step(pre, hw, c0, None, c1, h1, None, s, mask, kinds, scales, True)
    with pytest.raises(ShapeError, match="mask: expected a contiguous bool"):
        ts.forward_step(pre, hw, c0, h0, c1, h1, None, s, mask.float(), kinds, scales, True)
    with pytest.raises(ConfigError, match="gate kind"):
        ts.forward_step(pre, hw, c0, None, c1, h1, None, s, None, (0, 3, 0), scales, True)
    with pytest.raises(ConfigError, match="3 entries"):
        ts.backward_step(pre, c1, c0, h0, None, c1, hw, s, None, (0, 0), (1.0, 1.0))
    with pytest.raises(ConfigError, match="need s"):
        ts.backward_step(pre, c1, c0, h0, None, c1, hw, None, None, kinds, scales)
    assert ts.unavailable_reason(c0.long()).startswith("the Triton step takes float32")


def test_cpu_tensors_without_the_interpreter_are_refused(triton_interpreter, monkeypatch):
    ts = triton_interpreter
    monkeypatch.setattr(ts, "interpreting", lambda: False)
    c0 = torch.zeros(N, H)
    assert ts.available() and not ts.available(c0)
    assert "TRITON_INTERPRET=1" in ts.unavailable_reason(c0)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        ts.forward_step(torch.zeros(N, 4 * H), torch.zeros(N, 4 * H), c0, None, c0, c0, None,
                        None, None, (0, 0, 0), (1, 1, 1), False)  # fmt: skip


def test_module_imports_without_triton(monkeypatch):
    """The core layer needs torch alone: without triton the module loads and says why not."""
    import g2lstm.nn.fast
    from g2lstm.nn.fast import triton_kernels, triton_step

    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` raises ImportError
    monkeypatch.setitem(sys.modules, "triton.language", None)

    def load(name: str, path: str):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    kernels = load("_triton_kernels_probe", triton_kernels.__file__)
    assert kernels.triton is None and "pip install 'g2lstm[triton]'" in kernels.IMPORT_ERROR
    monkeypatch.setitem(sys.modules, "g2lstm.nn.fast.triton_kernels", kernels)
    monkeypatch.setattr(g2lstm.nn.fast, "triton_kernels", kernels, raising=False)
    module = load("_triton_step_probe", triton_step.__file__)
    assert not module.available() and not module.interpreting()
    assert "pip install 'g2lstm[triton]'" in module.unavailable_reason(torch.zeros(1))
    with pytest.raises(RuntimeError, match="triton is not installed"):
        g, c = torch.zeros(1, 4), torch.zeros(1, 1)
        module.backward_step(g, c, c, c, None, c, g, None, None, (0, 0, 0), (1, 1, 1))


@pytest.mark.gpu
def test_cuda_graph_replays_the_eager_loop(triton_compiled):
    """A loop of launches (forward T steps, then backward) captured in one CUDA graph: the
    launchers neither allocate nor synchronise, so replay gives the eager numbers."""
    ts, dev = triton_compiled, torch.device("cuda")
    spec = MODES["straight-through"]
    plan = GatePlan.build(spec, H)
    leaves, noise = _sequence_inputs(spec, torch.float32, dev)
    leaves = [t.detach() for t in leaves]
    mask = length_mask(torch.tensor(LENGTHS), T, dev).unsqueeze(-1)
    gen = torch.Generator().manual_seed(7)
    dy = _rand(gen, T, N, H, dtype=torch.float32, device=dev)
    dh_n = _rand(gen, N, H, dtype=torch.float32, device=dev)
    dc_n = _rand(gen, N, H, dtype=torch.float32, device=dev)

    def run():
        y, hs, cs, gates, s_buf = _loop_forward(ts, leaves, noise, mask, plan)
        grads = _loop_backward(ts, leaves, hs, cs, gates, s_buf, mask, plan, dy, dh_n, dc_n)
        return [y, hs, cs, *grads]

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        eager = run()  # compiles every kernel before the capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = run()
    graph.replay()
    torch.cuda.synchronize()
    for got, want in zip(captured, eager):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
