"""The time loops of the fast recurrence, driven by one :class:`~g2lstm.nn.fast.steps.Step`.

Computed in the structure of haste's kernels (``shared/docs/perf.md`` §1a, §3):

- forward: one GEMM projects the input of all ``T`` steps; each step then does one GEMM
  ``h W_hh^T + b`` and one call of the step implementation (paper Eqs. 11-16), which keeps
  the activated gates for the backward. The gate noise (:class:`~g2lstm.nn.noise.GateNoise`:
  seeds of the counter-based generator) is drawn inside the step by a step that can
  (the fused CPU kernel: each row's uniforms computed where they are used, in parallel);
  for the other steps, and for ``noise_per_sequence``, it is materialised once for all
  steps and added to the projection in one pass (as an explicit noise tensor is);
- backward: each step does one step-implementation call plus one GEMM ``dG_t W_hh``; three
  large GEMMs over all steps then give ``dW_ih``, ``dW_hh`` and ``dx``.

Variable lengths follow the reference: where ``t >= length`` a sequence keeps its state and
outputs zeros. The loops allocate nothing per step beyond the GEMM's output, never read a
value back to the host, and branch only on shapes and options, so a CUDA graph can capture
them. These are plain functions on tensors (no autograd); :mod:`g2lstm.nn.fast.ops` wraps
them as custom operators.
"""

from __future__ import annotations

import torch
from torch import Tensor

from g2lstm.nn.config import NoiseSchedule
from g2lstm.nn.fast.gemm import StepGemm, linear, transpose, weight_grad
from g2lstm.nn.fast.kernel import philox_uniform
from g2lstm.nn.fast.plan import GatePlan
from g2lstm.nn.fast.steps import Step, StepNoise
from g2lstm.nn.noise import GateNoise

__all__ = [
    "CHUNK_BYTES",
    "CHUNK_FROM_BYTES",
    "backward",
    "forward_inference",
    "forward_train",
    "input_projection",
    "projection_chunk",
    "split_noise",
]

#: inference on CPU projects the input ``CHUNK_BYTES`` of pre-activations at a time once the
#: whole ``(T, N, 4H)`` projection would exceed ``CHUNK_FROM_BYTES`` (see
#: :func:`projection_chunk`)
CHUNK_BYTES = 4 << 20
CHUNK_FROM_BYTES = 16 << 20


def split_noise(
    x: Tensor, noise: Tensor | None, draw: GateNoise | None, plan: GatePlan, step: Step
) -> tuple[Tensor | None, StepNoise | None]:
    """Where the gate noise of a pass comes from: ``(noise added to the projection of all
    steps, noise the step draws itself)``, at most one of them not ``None``.

    ``noise`` is an explicit ``(T, N, W)`` tensor; ``draw`` the seeds of the generator
    (:class:`~g2lstm.nn.noise.GateNoise`), drawn in the step when ``step.draws_noise``
    (except ``noise_per_sequence``: one ``(1, N, W)`` draw serves every step) and
    materialised here otherwise.
    """
    if draw is None:
        return noise, None
    steps, batch, _ = x.shape
    width = plan.noise_width
    if not step.draws_noise or draw.schedule is NoiseSchedule.NOISE_PER_SEQUENCE:
        return draw.materialize(steps, batch, width, x.dtype, uniform=philox_uniform), None
    mask = None
    if draw.schedule is NoiseSchedule.MASK_PER_SEQUENCE:
        mask = draw.sequence_mask(batch, width, x.dtype, uniform=philox_uniform)
    return None, StepNoise(int(draw.key[0]), draw.p, mask)


def input_projection(
    x: Tensor, w_ih: Tensor, noise: Tensor | None, plan: GatePlan, route: str
) -> Tensor:
    """``x W_ih^T`` (+ the gate noise ``B L`` on the noisy columns) for all steps:
    ``(T, N, 4H)``, contiguous. The bias is added per step, with ``h W_hh^T``."""
    steps, batch, feat = x.shape
    pre = linear(x.reshape(steps * batch, feat), w_ih, None, route).view(steps, batch, -1)
    if noise is not None:
        for g_lo, g_hi, n_lo, n_hi in plan.noise_cols:
            pre[..., g_lo:g_hi].add_(noise[..., n_lo:n_hi])
    return pre


def forward_train(
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
    step: Step,
    draw: GateNoise | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Forward that keeps what the backward needs.

    Args:
        x: ``(T, N, H_in)``; w_ih ``(4H, H_in)``; bias ``(4H,)`` or ``None``; w_hh ``(4H, H)``;
        h0, c0: ``(N, H)``; noise: ``(T, N, len(rows) * H)`` or ``None``; mask: ``(T, N, 1)``
        bool or ``None``; draw: the gate noise as generator seeds (instead of ``noise``).

    Returns:
        ``(y, h_n, c_n, gates, cs, hs, s_buf)``: output ``(T, N, H)``, final states, activated
        gates ``(T, N, 4H)``, cell states ``c_0..c_T`` ``(T+1, N, H)``, hidden states
        ``h_0..h_T`` ``(T+1, N, H)`` when masked (else an empty tensor: ``y`` holds them), the
        straight-through side buffer ``(T, N, st_width)`` (empty when unused).
    """
    steps, batch, _ = x.shape
    hid = plan.hidden
    noise, in_step = split_noise(x, noise, draw, plan, step)
    pre = input_projection(x, w_ih, noise, plan, route)
    cs = x.new_empty(steps + 1, batch, hid)
    cs[0] = c0
    s_buf = x.new_empty(steps, batch, plan.st_width)
    if mask is None:
        y, hs = x.new_empty(steps, batch, hid), None
    else:
        y, hs = None, x.new_empty(steps + 1, batch, hid)
        hs[0] = h0
    h = h0.contiguous()
    gemm = StepGemm(w_hh, batch, route, bias)
    for t in range(steps):
        h_out = y[t] if hs is None else hs[t + 1]  # type: ignore[index]
        step.forward(
            pre[t], gemm(h), cs[t], None if hs is None else hs[t], cs[t + 1], h_out, None,
            s_buf[t] if plan.st_width else None, None if mask is None else mask[t], True,
            None if in_step is None else in_step.at(t),
        )  # fmt: skip
        h = h_out
    if hs is not None:
        y = hs[1:] * mask
        h_n = hs[steps].clone()
    else:
        h_n = y[steps - 1].clone()  # type: ignore[index]
    return y, h_n, cs[steps].clone(), pre, cs, x.new_empty(0) if hs is None else hs, s_buf


def forward_inference(
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
    step: Step,
    draw: GateNoise | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The forward without autograd: nothing kept, states updated in buffers of their own.

    Same arguments as :func:`forward_train`; returns ``(y, h_n, c_n)``.
    """
    steps, batch, _ = x.shape
    noise, in_step = split_noise(x, noise, draw, plan, step)
    y = x.new_empty(steps, batch, plan.hidden)
    c = c0.clone(memory_format=torch.contiguous_format)  # updated in place
    h = h0.contiguous() if mask is None else h0.clone(memory_format=torch.contiguous_format)
    gemm = StepGemm(w_hh, batch, route, bias, cache=True)
    h_buf = None if mask is None else torch.empty_like(h)
    chunk = projection_chunk(x, 4 * plan.hidden)
    for t0 in range(0, steps, chunk):  # the input projection of `chunk` steps at a time
        t1 = min(steps, t0 + chunk)
        pre = input_projection(x[t0:t1], w_ih, None if noise is None else noise[t0:t1], plan, route)
        for t in range(t0, t1):
            nz = None if in_step is None else in_step.at(t)
            if mask is None:  # h_t is written straight into y[t]
                step.forward(pre[t - t0], gemm(h), c, None, c, y[t], None, None, None, False, nz)
                h = y[t]
            else:
                step.forward(
                    pre[t - t0], gemm(h), c, h, c, h_buf, y[t], None, mask[t], False, nz  # type: ignore[arg-type]
                )  # fmt: skip
                h, h_buf = h_buf, h  # type: ignore[assignment]
    return y, h.clone() if mask is None else h, c


def projection_chunk(x: Tensor, width: int) -> int:
    """Steps per input projection in the inference loop, for ``x (T, N, H_in)`` and ``width``
    (``4H``) columns.

    On CPU a projection over ``T`` steps larger than :data:`CHUNK_FROM_BYTES` is done
    :data:`CHUNK_BYTES` at a time, in one buffer's worth of steps: a whole ``(T, N, 4H)``
    buffer that large comes fresh from the OS on every call (one page fault per 4 KiB) and
    is read back from memory step by step, while a chunk is reused by the allocator and
    still in cache when its steps read it (B80 T70 I400 H1150, 2 threads, AMD EPYC: the
    projection with the steps' reads 140 ms whole, 112 ms in chunks of 2-4 steps; below, a
    whole projection is as fast or faster). Elsewhere (CUDA) one projection of all steps.
    """
    steps, batch, _ = x.shape
    per_step = max(1, batch * width * x.element_size())
    if x.device.type != "cpu" or steps * per_step <= CHUNK_FROM_BYTES:
        return max(1, steps)
    return max(1, min(steps, -(-CHUNK_BYTES // per_step)))


def backward(
    dy: Tensor,
    dh_n: Tensor,
    dc_n: Tensor,
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    h0: Tensor,
    gates: Tensor,
    cs: Tensor,
    hbuf: Tensor,
    s_buf: Tensor,
    mask: Tensor | None,
    plan: GatePlan,
    route: str,
    step: Step,
    needs: tuple[bool, bool, bool, bool, bool, bool],
    pack: bool = True,
    wgrad_route: str | None = None,
) -> tuple[Tensor | None, ...]:
    """Gradients of :func:`forward_train` with respect to ``(x, w_ih, bias, w_hh, h0, c0)``.

    ``hbuf`` is ``y`` (no mask) or the states ``h_0..h_T`` (masked); ``needs`` says which
    gradients to compute (``None`` for the others); ``pack``: whether the per-step products
    use a packed ``W_hh^T`` (:func:`g2lstm.nn.fast.routes.backward_packing`);
    ``wgrad_route``: the route of the weight gradients (default ``route``;
    :func:`g2lstm.nn.fast.routes.weight_grad_route`).
    """
    steps, batch, feat = x.shape
    hid = plan.hidden
    # dh_{t-1} = dG_t W_hh = dG_t (W_hh^T)^T: a "linear" with weight W_hh^T, packed once, or
    # read through the view W_hh^T of W_hh as it is
    w_t = transpose(w_hh) if pack else w_hh.t()
    gemm = StepGemm(w_t, batch, route, pack=pack)
    dgates = torch.empty_like(gates)
    dy = dy.contiguous()
    dc = dc_n.clone(memory_format=torch.contiguous_format)  # dL/dc, updated in place
    dh = dh_n.contiguous()
    st = plan.st_width > 0
    for t in range(steps - 1, -1, -1):
        m = None if mask is None else mask[t]
        step.backward(
            gates[t], cs[t + 1], cs[t], dh, dy[t], dc, dgates[t], s_buf[t] if st else None, m
        )
        dh_prev = gemm(dgates[t])
        dh = dh_prev if m is None else torch.where(m, dh_prev, dh)
    dg2 = dgates.view(steps * batch, 4 * hid)
    dx = dw_ih = db = dw_hh = None
    if needs[0]:  # dx = dG W_ih = linear(dG, (W_ih^T)^T): both routes read the view W_ih^T
        dx = linear(dg2, w_ih.t(), None, route).view(steps, batch, feat)
    if needs[1]:  # dG^T x: weight_grad reads dG^T as a view (no (T N, 4H) copy)
        dw_ih = weight_grad(dg2, x.reshape(steps * batch, feat), wgrad_route or route)
    if needs[2]:
        db = dg2.sum(0)
    if needs[3]:
        dw_hh = _recurrent_weight_grad(dgates, h0, hbuf, mask is None, wgrad_route or route)
    return dx, dw_ih, db, dw_hh, dh if needs[4] else None, dc if needs[5] else None


def _recurrent_weight_grad(
    dgates: Tensor, h0: Tensor, hbuf: Tensor, is_output: bool, route: str
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
            transpose(hbuf[: steps - 1].reshape(-1, hid), out=hp_t[:, batch:])
        else:
            transpose(hbuf[:steps].reshape(rows, hid), out=hp_t)
        return weight_grad(dgates.view(rows, four_h), None, route, inp_t=hp_t)
    if not is_output:
        return weight_grad(dgates.view(rows, four_h), hbuf[:steps].reshape(rows, hid), route)
    # sum_t h_{t-1}^T dG_t without gathering h_0..h_{T-1}: (H, 4H), then transposed (on CPU,
    # as weight_grad does: MKL reduces into (H, 4H) faster than into (4H, H))
    cpu = dgates.device.type == "cpu"
    out = torch.mm(h0.t(), dgates[0]) if cpu else torch.mm(dgates[0].t(), h0)
    if steps > 1:
        rest, prev = dgates[1:].reshape(-1, four_h), hbuf[: steps - 1].reshape(-1, hid)
        out.addmm_(prev.t(), rest) if cpu else out.addmm_(rest.t(), prev)
    return transpose(out) if cpu else out
