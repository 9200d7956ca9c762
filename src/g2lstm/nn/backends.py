"""Choice of the implementation that runs one layer-direction of G2-LSTM.

Every backend computes exactly what :func:`g2lstm.nn.reference.recurrence_reference` computes
(same noise in, same numbers out) and is tested against it.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from g2lstm.errors import ConfigError
from g2lstm.nn.functional import GateSpec
from g2lstm.nn.reference import RecurrenceOutput, recurrence_reference

__all__ = ["BACKENDS", "run_direction"]

BACKENDS = ("auto", "reference")


def run_direction(
    x: Tensor,
    w_ih: Tensor,
    bias: Tensor | None,
    w_hh: Tensor,
    w_hr: Tensor | None,
    h0: Tensor,
    c0: Tensor,
    spec: GateSpec,
    noise: Tensor | None,
    lengths: Tensor | None,
    *,
    record: bool = False,
    backend: str = "auto",
) -> RecurrenceOutput:
    """Run one layer-direction over a time-major ``(T, N, H_in)`` input.

    Args:
        x: input in processing order (already reversed for reverse directions).
        w_ih: ``(4H, H_in)``; bias: ``(4H,)`` = ``b_ih + b_hh`` or ``None``.
        w_hh: ``(4H, H_out)``; w_hr: ``(H_out, H)`` or ``None``.
        h0: ``(N, H_out)``; c0: ``(N, H)``.
        spec, noise, lengths, record: see :func:`recurrence_reference`.
        backend: ``"auto"`` picks the fastest exact implementation available for these
            options; ``"reference"`` forces the loop.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r} is not valid; expected one of {BACKENDS}")
    xw = F.linear(x, w_ih, bias)  # input projection for all steps at once
    return recurrence_reference(xw, h0, c0, w_hh, w_hr, spec, noise, lengths, record)
