"""Entry point of the fast G2-LSTM recurrence: one layer-direction, same contract as the
reference (:func:`g2lstm.nn.reference.recurrence_reference`), up to rounding.

:func:`recurrence_fast` turns its arguments into plain values and calls one of the custom
operators of :mod:`g2lstm.nn.fast.ops` (training forward with its autograd formula, or the
lighter inference forward when no gradient can flow). It is traceable: ``torch.compile``,
``torch.func`` and ``torch.export`` see one operator per layer-direction. The loops are in
:mod:`g2lstm.nn.fast.loop`, the per-step implementations in :mod:`g2lstm.nn.fast.steps`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from g2lstm.errors import ConfigError
from g2lstm.nn.fast import ops
from g2lstm.nn.fast.gemm import ROUTES
from g2lstm.nn.fast.steps import STEPS
from g2lstm.nn.functional import GateSpec
from g2lstm.nn.noise import GateNoise
from g2lstm.nn.reference import RecurrenceOutput, length_mask

__all__ = ["POINTWISE", "recurrence_fast"]

#: Accepted values of ``pointwise`` (the step implementation; ``"kernel"``: the fused C++
#: CPU kernel, ``"triton"``: the fused Triton kernel, ``"aten"``: ATen ops).
POINTWISE = STEPS


def recurrence_fast(
    x: Tensor,
    w_ih: Tensor,
    bias: Tensor | None,
    w_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    spec: GateSpec,
    noise: Tensor | GateNoise | None = None,
    lengths: Tensor | None = None,
    route: str = "auto",
    pointwise: str = "auto",
) -> RecurrenceOutput:
    """One layer-direction of G2-LSTM, fast.

    Args:
        x: ``(T, N, H_in)`` input in processing order, ``T >= 1``.
        w_ih: ``(4H, H_in)``; bias: ``(4H,)`` = ``b_ih + b_hh`` or ``None``; w_hh: ``(4H, H)``.
        h0, c0: ``(N, H)`` initial states (no projection: ``proj_size == 0``).
        spec: resolved gate behaviour; noise: ``(T, N, len(spec.rows) * H)``, the generator
            seeds of the noise (:class:`~g2lstm.nn.noise.GateNoise`: drawn inside the fused
            CPU step, materialised for the other steps) or ``None``.
        lengths: ``(N,)`` valid lengths or ``None``.
        route: GEMM route, ``"auto"``, ``"onednn"`` or ``"torch"``, resolved when the
            operator runs (:func:`~g2lstm.nn.fast.routes.resolve_route`; oneDNN only for CPU
            float32).
        pointwise: the step implementation, one of :data:`POINTWISE`; ``"kernel"`` and
            ``"triton"`` raise :class:`~g2lstm.errors.ConfigError` where they cannot run.

    Returns:
        :class:`~g2lstm.nn.reference.RecurrenceOutput` without gates.
    """
    if route not in ("auto", *ROUTES):
        raise ConfigError(f"route={route!r} is not valid; expected 'auto', 'onednn' or 'torch'")
    if pointwise not in STEPS:
        raise ConfigError(
            f"pointwise={pointwise!r} is not valid; expected one of {', '.join(STEPS)}"
        )
    mask = None
    if lengths is not None:
        mask = length_mask(lengths, x.shape[0], x.device).unsqueeze(-1)
    if not spec.noisy:
        noise = None
    draw = noise if isinstance(noise, GateNoise) else None
    args = (x, w_ih, bias, w_hh, h0, c0, noise if draw is None else None, mask, list(spec.rows),
            float(spec.tau), spec.mode.value, route, pointwise)  # fmt: skip
    if draw is not None:
        args += (draw.key, draw.p, draw.schedule.value)
    tensors = (x, w_ih, bias, w_hh, h0, c0)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        # the operator (with its autograd registration) for the compiler; the equivalent
        # autograd.Function for eager code, which torch.func transforms accept
        train = ops.recurrence_train if torch.compiler.is_compiling() else ops.TrainFunction.apply
        y, h_n, c_n, *_saved = train(*args)
    else:
        y, h_n, c_n = ops.recurrence_inference(*args)
    return RecurrenceOutput(y, h_n, c_n, None)
