"""The fast G2-LSTM recurrence: one layer-direction as a ``torch.autograd.Function``.

Same inputs and the same numbers (up to rounding) as
:func:`g2lstm.nn.reference.recurrence_reference`, computed in the structure of haste's
kernels (``shared/docs/perf.md`` §1a, §3):

- forward: one GEMM projects the input of all ``T`` steps, the gate noise is added to it in
  one pass, then each step does one GEMM ``h W_hh^T`` plus in-place pointwise ops, and the
  activated gates are kept;
- backward: each step does pointwise ops plus one GEMM ``dG_t W_hh``, then three large GEMMs
  over all steps give ``dW_ih``, ``dW_hh`` and ``dx``.

The pointwise part of a step runs in one call of the fused CPU kernel
(:mod:`g2lstm.nn.fast.kernel`, C++ built just in time) for CPU float32/float64 when it is
available, else as ~9 ATen ops ("ATen step"); both compute the same formulas (the kernel's
float32 ``sigmoid``/``tanh`` are exact to ~1e-6, see :mod:`g2lstm.nn.fast.kernel`).

The temperature divides the noisy gates' pre-activations inside the per-step pointwise ops
(one small op per step forward and backward; folding it into the weights instead costs
passes over both weight matrices, more at these shapes). GEMMs run on ``torch.mm`` (MKL,
with the per-step weight packed once, or cuBLAS) or on oneDNN
(:mod:`g2lstm.nn.fast.gemm`). Without gradients a lighter forward runs (nothing is saved).

Variable lengths follow the reference: where ``t >= length`` a sequence keeps its state and
outputs zeros.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import Tensor

from g2lstm.nn.fast.gemm import StepGemm, linear, resolve_route, transpose, weight_grad
from g2lstm.nn.fast.kernel import POINTWISE, pointwise_kernel
from g2lstm.nn.fast.plan import GatePlan
from g2lstm.nn.functional import GateSpec
from g2lstm.nn.reference import RecurrenceOutput, length_mask

__all__ = ["POINTWISE", "recurrence_fast"]

_sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input
_tanh_backward = torch.ops.aten.tanh_backward
_tanh_backward_out = torch.ops.aten.tanh_backward.grad_input


def _activate(a: Tensor, out: Tensor, plan: GatePlan, s_out: Tensor | None) -> None:
    """Write the activated gates of pre-activations ``a (N, 4H)`` into ``out`` (may be ``a``).

    ``a`` is scratch: tempered segments are scaled in place. Straight-through columns also
    store ``sigmoid(a / tau)`` into ``s_out`` (for the backward); their forward value is
    ``1[a >= 0]`` of the unscaled ``a``, exactly as the reference.
    """
    same = a.data_ptr() == out.data_ptr()
    for seg in plan.segments:
        src, dst = a[:, seg.lo : seg.hi], out[:, seg.lo : seg.hi]
        if seg.kind == "sig":
            if seg.scale != 1.0:
                src = src.mul_(seg.scale)
            torch.sigmoid(src, out=dst)
        elif seg.kind == "tanh":
            torch.tanh(src, out=dst)
        else:  # "hard" or "st": exactly 1[a >= 0]
            if seg.kind == "st" and s_out is not None:
                sv = s_out[:, seg.s_lo : seg.s_hi]
                torch.mul(src, seg.scale, out=sv).sigmoid_()
            if same:
                src.ge_(0)
            else:
                torch.ge(src, 0, out=dst)


def _add_noise(pre: Tensor, noise: Tensor, plan: GatePlan) -> None:
    """``pre[..., gate cols] += noise[..., noise cols]`` in place (``pre (T, N, 4H)``)."""
    for g_lo, g_hi, n_lo, n_hi in plan.noise_cols:
        pre[..., g_lo:g_hi].add_(noise[..., n_lo:n_hi])


def _input_projection(
    x: Tensor, w_ih: Tensor, noise: Tensor | None, plan: GatePlan, route: str
) -> Tensor:
    """``x W_ih^T`` (+ noise) for all steps: ``(T, N, 4H)``, contiguous (bias: per step)."""
    steps, batch, feat = x.shape
    pre = linear(x.reshape(steps * batch, feat), w_ih, None, route).view(steps, batch, -1)
    if noise is not None:
        _add_noise(pre, noise, plan)
    return pre


class _Recurrence(torch.autograd.Function):
    """Training forward/backward of one layer-direction (see the module docstring)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        x: Tensor,
        w_ih: Tensor,
        bias: Tensor | None,
        w_hh: Tensor,
        h0: Tensor,
        c0: Tensor,
        noise: Tensor | None,
        mask: Tensor | None,
        plan: GatePlan,
        route: str,
        kern: ModuleType | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        steps, batch, _ = x.shape
        hid = plan.hidden
        pre = _input_projection(x, w_ih, noise, plan, route)
        cs = x.new_empty(steps + 1, batch, hid)
        cs[0] = c0
        s_buf = x.new_empty(steps, batch, plan.st_width) if plan.st_width else None
        hs = None
        if mask is None:
            y = x.new_empty(steps, batch, hid)
        else:
            hs = x.new_empty(steps + 1, batch, hid)
            hs[0] = h0
        h = h0
        step_gemm = StepGemm(w_hh, batch, route, bias)
        for t in range(steps):
            if kern is not None:  # the whole pointwise step in one call
                h_out = y[t] if hs is None else hs[t + 1]
                kern.forward_step(
                    pre[t], step_gemm(h), cs[t], None if hs is None else hs[t], cs[t + 1],
                    h_out, None, None if s_buf is None else s_buf[t],
                    None if mask is None else mask[t], plan.kernel_kinds, plan.kernel_scales, True,
                )  # fmt: skip
                h = h_out
                continue
            gt = pre[t]
            a = gt.add_(step_gemm(h))
            _activate(a, gt, plan, None if s_buf is None else s_buf[t])
            i, f, g, o = gt.split(hid, dim=1)
            c_prev = cs[t]
            if mask is None:
                c_new = torch.mul(f, c_prev, out=cs[t + 1]).addcmul_(i, g)
                h = torch.mul(o, torch.tanh(c_new), out=y[t])
            else:
                m = mask[t]
                c_new = torch.mul(f, c_prev).addcmul_(i, g)
                h_new = torch.tanh(c_new).mul_(o)
                torch.where(m, c_new, c_prev, out=cs[t + 1])
                h = torch.where(m, h_new, hs[t], out=hs[t + 1])  # type: ignore[index]
        if hs is not None:
            y = hs[1:] * mask  # type: ignore[operator]
            h_n = hs[steps].clone()
        else:
            h_n = y[steps - 1].clone()
        c_n = cs[steps].clone()
        ctx.plan, ctx.route, ctx.kern = plan, route, kern
        ctx.save_for_backward(x, w_ih, w_hh, h0, pre, cs, y if hs is None else hs, s_buf, mask)
        return y, h_n, c_n

    @staticmethod
    def backward(ctx, dy: Tensor, dh_n: Tensor, dc_n: Tensor):  # type: ignore[override]
        x, w_ih, w_hh, h0, gates, cs, hbuf, s_buf, mask = ctx.saved_tensors
        plan: GatePlan = ctx.plan
        route: str = ctx.route
        kern = ctx.kern
        steps, batch, feat = x.shape
        hid = plan.hidden
        # dh = dG_t @ W_hh = dG_t @ (W_hh^T)^T: a "linear" with weight W_hh^T, packed once
        step_gemm = StepGemm(transpose(w_hh), batch, route)
        dgates = torch.empty_like(gates)
        dy = dy.contiguous()
        dc = dc_n.clone(memory_format=torch.contiguous_format)  # written in place
        if kern is not None:
            dh = dh_n.contiguous()  # the kernel adds dy[t] itself
        elif mask is None:
            dh = dh_n + dy[steps - 1]
        else:
            dh = dh_n.clone()
            maskf = mask.to(dy.dtype)
        dh0 = dh
        for t in range(steps - 1, -1, -1):
            gt, dgt = gates[t], dgates[t]
            if kern is not None:  # dgates[t] and dc <- dL/dc_{t-1} in one call (dh + dy[t])
                kern.backward_step(
                    gt, cs[t + 1], cs[t], dh, dy[t], dc, dgt,
                    None if s_buf is None else s_buf[t], None if mask is None else mask[t],
                    plan.kernel_kinds, plan.kernel_scales,
                )  # fmt: skip
                dh_prev = step_gemm(dgt)
                dh = dh0 = dh_prev if mask is None else torch.where(mask[t], dh_prev, dh)
                continue
            i, f, g, o = gt.split(hid, dim=1)
            di, df, dg, do = dgt.split(hid, dim=1)
            if mask is None:
                dh_cur, dc_cur = dh, dc
            else:
                dh_cur = (dy[t] + dh) * maskf[t]
                dc_cur = dc * maskf[t]
            tc = torch.tanh(cs[t + 1])
            dc_cur.add_(_tanh_backward(dh_cur * o, tc))  # dL/dc_t, total
            torch.mul(dh_cur, tc, out=do)
            torch.mul(dc_cur, g, out=di)
            torch.mul(dc_cur, cs[t], out=df)
            torch.mul(dc_cur, i, out=dg)
            for seg in plan.segments:
                d = dgt[:, seg.lo : seg.hi]
                if seg.kind == "sig":
                    _sigmoid_backward(d, gt[:, seg.lo : seg.hi], grad_input=d)
                elif seg.kind == "tanh":
                    _tanh_backward_out(d, gt[:, seg.lo : seg.hi], grad_input=d)
                elif seg.kind == "st":
                    _sigmoid_backward(d, s_buf[t][:, seg.s_lo : seg.s_hi], grad_input=d)
                else:  # hard gate: zero gradient, as (a >= 0).to(dtype) in the reference
                    d.zero_()
                if seg.scale != 1.0 and seg.kind != "hard":
                    d.mul_(seg.scale)
            dc_prev = dc_cur.mul_(f)
            if mask is None:
                dc = dc_prev
                if t > 0:
                    dh = step_gemm(dgt, add=dy[t - 1])
                else:
                    dh0 = step_gemm(dgt)
            else:
                m = mask[t]
                dc = torch.where(m, dc_prev, dc)
                dh = torch.where(m, step_gemm(dgt), dh)
                dh0 = dh
        dc0 = dc
        need = ctx.needs_input_grad
        dg2 = dgates.view(steps * batch, 4 * hid)
        dg_t = transpose(dg2) if route == "onednn" and (need[1] or need[3]) else None
        dx = dw_ih = db = dw_hh = None
        if need[0]:
            w_ih_t = transpose(w_ih) if route == "onednn" else None
            dx = _matmul(dg2, w_ih, w_ih_t, route).view(steps, batch, feat)
        if need[1]:
            x2 = x.reshape(steps * batch, feat)
            dw_ih = weight_grad(dg2, x2, route, grad_t=dg_t)
        if need[2]:
            db = dg2.sum(0)
        if need[3]:
            dw_hh = _recurrent_weight_grad(dgates, dg_t, h0, hbuf, mask is None, route)
        return (
            dx,
            dw_ih,
            db,
            dw_hh,
            dh0 if need[4] else None,
            dc0 if need[5] else None,
            None,
            None,
            None,
            None,
            None,
        )


def _matmul(a: Tensor, b: Tensor, b_t: Tensor | None, route: str) -> Tensor:
    """``a @ b``; the oneDNN route needs ``b_t = b.T`` contiguous."""
    if route == "onednn":
        assert b_t is not None
        return linear(a, b_t, None, route)
    return torch.mm(a, b)


def _recurrent_weight_grad(
    dgates: Tensor, dg_t: Tensor | None, h0: Tensor, hbuf: Tensor, is_output: bool, route: str
) -> Tensor:
    """``sum_t dG_t^T h_{t-1}``: ``(4H, H)``.

    ``hbuf`` is the output ``y = h_1..h_T`` (``is_output``) or the states ``h_0..h_T``.
    """
    steps, batch, four_h = dgates.shape
    hid = hbuf.shape[-1]
    rows = steps * batch
    if route == "onednn":
        hp_t = dgates.new_empty(hid, rows)  # h_{t-1} for all t, transposed: (H, T N)
        if is_output:
            hp_t[:, :batch] = h0.t()
            hp_t[:, batch:] = hbuf[: steps - 1].reshape(-1, hid).t()
        else:
            hp_t.copy_(hbuf[:steps].reshape(rows, hid).t())
        return weight_grad(dgates.view(rows, four_h), None, route, grad_t=dg_t, inp_t=hp_t)
    if not is_output:
        return torch.mm(dgates.view(rows, four_h).t(), hbuf[:steps].reshape(rows, hid))
    out = torch.mm(dgates[0].t(), h0)
    if steps > 1:
        rest = dgates[1:].reshape(-1, four_h)
        out.addmm_(rest.t(), hbuf[: steps - 1].reshape(-1, hid))
    return out


def _forward_inference(
    x: Tensor,
    w_ih: Tensor,
    bias: Tensor | None,
    w_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    noise: Tensor | None,
    mask: Tensor | None,
    plan: GatePlan,
    route: str,
    kern: ModuleType | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The forward without autograd: nothing saved, gates activated in place."""
    steps, batch, _ = x.shape
    hid = plan.hidden
    pre = _input_projection(x, w_ih, noise, plan, route)
    y = x.new_empty(steps, batch, hid)
    h, c = h0, c0
    step_gemm = StepGemm(w_hh, batch, route, bias, cache=True)
    if kern is not None:  # states updated in place in buffers of their own
        h, c = h0.contiguous(), c0.contiguous()
        c_buf = torch.empty_like(c)
        h_buf = None if mask is None else torch.empty_like(h)
        for t in range(steps):
            h_out = y[t] if h_buf is None else h_buf
            kern.forward_step(
                pre[t], step_gemm(h), c, h, c_buf, h_out, None if h_buf is None else y[t], None,
                None if mask is None else mask[t], plan.kernel_kinds, plan.kernel_scales, False,
            )  # fmt: skip
            h, c = h_out, c_buf
        return y, h.clone() if mask is None else h, c
    for t in range(steps):
        a = pre[t].add_(step_gemm(h))
        _activate(a, a, plan, None)
        i, f, g, o = a.split(hid, dim=1)
        c_new = torch.mul(f, c).addcmul_(i, g)
        if mask is None:
            h = torch.mul(o, torch.tanh(c_new), out=y[t])
            c = c_new
        else:
            m = mask[t]
            h_new = torch.tanh(c_new).mul_(o)
            torch.mul(h_new, m, out=y[t])
            h = torch.where(m, h_new, h)
            c = torch.where(m, c_new, c)
    return y, h.clone() if mask is None else h, c


def recurrence_fast(
    x: Tensor,
    w_ih: Tensor,
    bias: Tensor | None,
    w_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    spec: GateSpec,
    noise: Tensor | None = None,
    lengths: Tensor | None = None,
    route: str = "auto",
    pointwise: str = "auto",
) -> RecurrenceOutput:
    """One layer-direction of G2-LSTM, fast; same contract as the reference.

    Args:
        x: ``(T, N, H_in)`` input in processing order, ``T >= 1``.
        w_ih: ``(4H, H_in)``; bias: ``(4H,)`` = ``b_ih + b_hh`` or ``None``; w_hh: ``(4H, H)``.
        h0, c0: ``(N, H)`` initial states (no projection: ``proj_size == 0``).
        spec: resolved gate behaviour; noise: ``(T, N, len(spec.rows) * H)`` or ``None``.
        lengths: ``(N,)`` valid lengths or ``None``.
        route: GEMM route, ``"auto"``, ``"onednn"`` or ``"torch"``, resolved by
            :func:`~g2lstm.nn.fast.gemm.resolve_route` (oneDNN only for CPU float32).
        pointwise: one of :data:`POINTWISE`; ``"kernel"`` raises
            :class:`~g2lstm.errors.ConfigError` where the fused kernel cannot run.

    Returns:
        :class:`~g2lstm.nn.reference.RecurrenceOutput` without gates.
    """
    route = resolve_route(x, route)
    kern = pointwise_kernel(x, pointwise)
    hid = w_hh.shape[1]
    plan = GatePlan.build(spec, hid)
    mask = None
    if lengths is not None:
        mask = length_mask(lengths, x.shape[0], x.device).unsqueeze(-1)
    if noise is not None and not spec.noisy:
        noise = None
    tensors = (x, w_ih, bias, w_hh, h0, c0)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        y, h_n, c_n = _Recurrence.apply(x, w_ih, bias, w_hh, h0, c0, noise, mask, plan, route, kern)
    else:
        y, h_n, c_n = _forward_inference(
            x, w_ih, bias, w_hh, h0, c0, noise, mask, plan, route, kern
        )
    return RecurrenceOutput(y, h_n, c_n, None)
