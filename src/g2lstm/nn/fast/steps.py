"""Step implementations: the pointwise part of one time step, behind one signature.

Per time step the fast recurrence (:mod:`g2lstm.nn.fast.loop`) does one GEMM and hands the
rest of the step (paper Eqs. 11-16: noisy/tempered sigmoids, hard or straight-through gates,
tanh, cell update, packed-sequence masks) to a :class:`Step`. Three implementations compute
the same formulas:

- :class:`FusedStep` ``"kernel"``: the fused C++ CPU kernel (:mod:`g2lstm.nn.fast.kernel`),
  float32/64.
- :class:`FusedStep` ``"triton"``: the fused Triton kernel (:mod:`g2lstm.nn.fast.triton_step`),
  for CUDA, and on CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1``, for tests).
- :class:`AtenStep`: the same math as ATen ops (~9 per step), every device and dtype.

:func:`select_step` picks one: ``"auto"`` takes the fused kernel of the tensors' device when
it is available (C++ on CPU float32/64, Triton on CUDA) and the ATen step otherwise;
``"kernel"``/``"triton"`` ask for one kernel and raise :class:`~g2lstm.errors.ConfigError`
where it cannot run; ``"aten"`` forces the ATen step. ``$G2LSTM_STEP`` (same values), when
set, overrides the module's choice for every pass it can serve, and is an error, never a
silent fallback, where it cannot.

Buffers (``N`` rows, ``H`` hidden): ``pre`` ``(N, 4H)`` is ``x W_ih^T`` (+ noise) of the step
and is overwritten (with the activated gates i, f, g, o when ``keep_gates``); ``hw`` ``(N, 4H)``
is ``h W_hh^T + b``; ``c_prev``, ``c_out``, ``h_out`` ``(N, H)``; ``h_prev`` ``(N, H)`` is needed
with a mask; ``y_out`` ``(N, H)`` optional (the step's output, zero on masked rows);
``s_out`` ``(N, H * #straight-through gates)`` keeps ``sigmoid(a / tau)`` of straight-through
gates; ``mask`` ``(N, 1)`` bool or ``None``: rows whose mask is false keep their state and
output 0. The backward step takes the activated ``gates`` of step t, ``c_t`` and ``c_prev``,
``dh`` (dL/dh_t from later steps), optional ``dy`` (dL/dy_t), ``dc`` (dL/dc_t in, dL/dc_{t-1}
out) and writes ``dgates`` (dL/da_t); masked rows get zero ``dgates`` and keep ``dc``.

Gate noise: a step whose ``draws_noise`` is true (the C++ kernel) takes a :class:`StepNoise`
(the call's generator seed, ``p``, the step index and the per-sequence mask) and adds the
noise ``B * L`` of each row to the noisy gates' pre-activations itself, computing the
row's Philox uniforms where they are used (:mod:`g2lstm.nn.philox`, same values); the
others get the noise already added to ``pre``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Protocol

import torch
from torch import Tensor

from g2lstm.errors import ConfigError
from g2lstm.nn.fast import kernel
from g2lstm.nn.fast.plan import GatePlan

__all__ = [
    "STEPS",
    "AtenStep",
    "FusedStep",
    "Step",
    "StepNoise",
    "select_step",
    "step_override",
]

#: Values of the ``step`` choice (and of ``$G2LSTM_STEP``).
STEPS = ("auto", "kernel", "triton", "aten")

_sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input
_tanh_backward = torch.ops.aten.tanh_backward
_tanh_backward_out = torch.ops.aten.tanh_backward.grad_input


@dataclass(frozen=True)
class StepNoise:
    """The gate noise a step draws itself (see the module docstring).

    Attributes:
        seed: the call's Philox key (``GateNoise.key[0]``), ``0 <= seed < 2**63``.
        p: ``P(B = 1)``.
        mask: ``(N, W)`` bool ``B`` of ``mask_per_sequence`` (then ``L`` comes from the full
            uniform), or ``None`` (``B = [v < p]``, ``U = v / p``).
        t: the step index (the counter's time word); set per step by :meth:`at`.
    """

    seed: int
    p: float
    mask: Tensor | None = None
    t: int = 0

    def at(self, t: int) -> StepNoise:
        """The same draw at step ``t``."""
        return replace(self, t=t)


class Step(Protocol):
    """One time step's pointwise work, forward and backward (see the module docstring)."""

    name: str
    draws_noise: bool

    def forward(
        self,
        pre: Tensor,
        hw: Tensor,
        c_prev: Tensor,
        h_prev: Tensor | None,
        c_out: Tensor,
        h_out: Tensor,
        y_out: Tensor | None,
        s_out: Tensor | None,
        mask: Tensor | None,
        keep_gates: bool,
        noise: StepNoise | None = None,
    ) -> None: ...

    def backward(
        self,
        gates: Tensor,
        c_t: Tensor,
        c_prev: Tensor,
        dh: Tensor,
        dy: Tensor | None,
        dc: Tensor,
        dgates: Tensor,
        s: Tensor | None,
        mask: Tensor | None,
    ) -> None: ...


class FusedStep:
    """A fused kernel module with ``forward_step``/``backward_step`` entry points (the C++
    kernel ``csrc/g2lstm_cpu.cpp`` or the Triton kernel): one launch per step."""

    def __init__(self, module: ModuleType, plan: GatePlan, name: str) -> None:
        self.k, self.name = module, name
        self.kinds, self.scales = plan.kernel_kinds, plan.kernel_scales
        self.blocks = plan.kernel_noise_blocks
        self.draws_noise = name == "kernel"  # the Triton step takes the noise in ``pre``

    def forward(
        self, pre, hw, c_prev, h_prev, c_out, h_out, y_out, s_out, mask, keep_gates, noise=None
    ):
        m = None if mask is None else mask.view(-1)
        if noise is None:
            self.k.forward_step(
                pre, hw, c_prev, h_prev, c_out, h_out, y_out, s_out, m, self.kinds,
                self.scales, keep_gates,
            )  # fmt: skip
            return
        self.k.forward_step(
            pre, hw, c_prev, h_prev, c_out, h_out, y_out, s_out, m, self.kinds, self.scales,
            keep_gates, noise_seed=noise.seed, noise_t=noise.t, noise_p=noise.p,
            noise_mask=noise.mask, noise_blocks=self.blocks,
        )  # fmt: skip

    def backward(self, gates, c_t, c_prev, dh, dy, dc, dgates, s, mask):
        m = None if mask is None else mask.view(-1)
        self.k.backward_step(gates, c_t, c_prev, dh, dy, dc, dgates, s, m, self.kinds, self.scales)


class AtenStep:
    """The step as ATen ops: runs on every device and floating dtype."""

    name = "aten"
    draws_noise = False

    def __init__(self, plan: GatePlan) -> None:
        self.plan = plan

    def _activate(self, a: Tensor, s_out: Tensor | None) -> None:
        """Activate ``a (N, 4H)`` in place (Eqs. 11-14); straight-through columns also store
        ``sigmoid(a / tau)`` into ``s_out``; hard/ST gates are ``1[a >= 0]`` of the unscaled
        ``a``, exactly as the reference."""
        for seg in self.plan.segments:
            src = a[:, seg.lo : seg.hi]
            if seg.kind == "sig":
                if seg.scale != 1.0:
                    src.mul_(seg.scale)
                src.sigmoid_()
            elif seg.kind == "tanh":
                src.tanh_()
            else:  # "hard" or "st": exactly 1[a >= 0]
                if seg.kind == "st" and s_out is not None:
                    torch.mul(src, seg.scale, out=s_out[:, seg.s_lo : seg.s_hi]).sigmoid_()
                src.ge_(0)

    def forward(
        self, pre, hw, c_prev, h_prev, c_out, h_out, y_out, s_out, mask, keep_gates, noise=None
    ):
        assert noise is None, "the ATen step takes the noise in pre"
        a = pre.add_(hw)
        self._activate(a, s_out)
        i, f, g, o = a.split(self.plan.hidden, dim=1)
        if mask is None:
            if c_out.data_ptr() == c_prev.data_ptr():
                c_out.mul_(f).addcmul_(i, g)  # Eq. 15
            else:
                torch.mul(f, c_prev, out=c_out).addcmul_(i, g)
            torch.mul(o, torch.tanh(c_out), out=h_out)  # Eq. 16
            if y_out is not None:
                y_out.copy_(h_out)
            return
        assert h_prev is not None, "a mask needs h_prev"
        c_new = torch.mul(f, c_prev).addcmul_(i, g)
        h_new = torch.tanh(c_new).mul_(o)
        torch.where(mask, c_new, c_prev, out=c_out)
        if y_out is not None:
            torch.mul(h_new, mask, out=y_out)
        torch.where(mask, h_new, h_prev, out=h_out)

    def backward(self, gates, c_t, c_prev, dh, dy, dc, dgates, s, mask):
        hid = self.plan.hidden
        i, f, g, o = gates.split(hid, dim=1)
        di, df, dg, do = dgates.split(hid, dim=1)
        dh_cur = dh if dy is None else dh + dy
        dc_cur = dc.clone()
        tc = torch.tanh(c_t)
        dc_cur.add_(_tanh_backward(dh_cur * o, tc))  # dL/dc_t in total
        torch.mul(dh_cur, tc, out=do)
        torch.mul(dc_cur, g, out=di)
        torch.mul(dc_cur, c_prev, out=df)
        torch.mul(dc_cur, i, out=dg)
        for seg in self.plan.segments:
            d = dgates[:, seg.lo : seg.hi]
            if seg.kind == "sig":
                _sigmoid_backward(d, gates[:, seg.lo : seg.hi], grad_input=d)
            elif seg.kind == "tanh":
                _tanh_backward_out(d, gates[:, seg.lo : seg.hi], grad_input=d)
            elif seg.kind == "st":
                _sigmoid_backward(d, s[:, seg.s_lo : seg.s_hi], grad_input=d)  # type: ignore[index]
            else:  # hard gate: zero gradient, as (a >= 0).to(dtype) in the reference
                d.zero_()
            if seg.scale != 1.0 and seg.kind != "hard":
                d.mul_(seg.scale)
        dc_cur.mul_(f)
        if mask is None:
            dc.copy_(dc_cur)
        else:
            dgates.mul_(mask)
            torch.where(mask, dc_cur, dc, out=dc)


def step_override() -> str | None:
    """``$G2LSTM_STEP`` if set (validated), else ``None``."""
    raw = os.environ.get("G2LSTM_STEP", "").strip().lower()
    if not raw:
        return None
    if raw not in STEPS:
        raise ConfigError(
            f"G2LSTM_STEP={raw!r} is not valid; expected one of {', '.join(STEPS)} (or unset)"
        )
    return raw


def _triton_module(x: Tensor) -> tuple[ModuleType | None, str]:
    """The Triton step module if it can run on tensors like ``x``, else ``(None, why)``."""
    try:
        from g2lstm.nn.fast import triton_step  # optional dependency: triton
    except ImportError as e:  # pragma: no cover - the module itself imports triton lazily
        return None, f"the Triton step cannot be imported ({e})"
    why = triton_step.unavailable_reason(x)
    return (None, why) if why else (triton_step, "")


def select_step(x: Tensor, plan: GatePlan, choice: str = "auto") -> Step:
    """The step implementation for a pass on tensors like ``x`` (see the module docstring).

    ``$G2LSTM_STEP`` overrides ``choice`` when set. Runs eagerly (inside the custom ops),
    never in traced code.
    """
    choice = step_override() or choice
    if choice not in STEPS:
        raise ConfigError(f"step={choice!r} is not valid; expected one of {', '.join(STEPS)}")
    if choice == "aten":
        return AtenStep(plan)
    if choice == "triton" or (choice == "auto" and x.device.type == "cuda"):
        module, why = _triton_module(x)
        if module is not None:
            return FusedStep(module, plan, "triton")
        if choice == "triton":
            raise ConfigError(f"step='triton' (or G2LSTM_STEP=triton): {why}")
        return AtenStep(plan)
    kern = kernel.pointwise_kernel(x, "kernel" if choice == "kernel" else "auto")
    return FusedStep(kern, plan, "kernel") if kern is not None else AtenStep(plan)
