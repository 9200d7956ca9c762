"""Cheaper drawing of the per-step gate noise ``B * L`` (same recipe as :mod:`g2lstm.nn.noise`).

:func:`g2lstm.nn.noise.sample_gate_noise` spends ~8 full passes over the ``(T, N, width)``
tensor (divide, clamp, two logs, negation, subtraction, comparison, product): ~11% of a
training step at the AWD-LSTM size. :func:`sample_gate_noise_fast` draws the same thing,
from the same single uniform ``v`` per value (``B = [v < p]``, ``U = v / p``, so the mask
is *identical* for the same generator state), in five passes (four in place) with
``L = logit(U)`` clamped to ``[e, 1 - e]`` (``e`` = half the dtype's machine epsilon, as
there). The values equal the reference recipe's up to floating-point rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

from g2lstm.nn.config import NoiseSchedule
from g2lstm.nn.noise import sample_gate_noise

__all__ = ["sample_gate_noise_fast"]


def sample_gate_noise_fast(
    steps: int,
    batch: int,
    width: int,
    p: float,
    schedule: NoiseSchedule = NoiseSchedule.PER_STEP,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Drop-in for :func:`g2lstm.nn.noise.sample_gate_noise`: ``(T, N, width)`` noise.

    Only the default ``PER_STEP`` schedule with ``0 < p`` takes the in-place route; the
    other schedules draw once per sequence (cheap) and are delegated unchanged.
    """
    schedule = NoiseSchedule(schedule)
    if schedule is not NoiseSchedule.PER_STEP or p <= 0.0 or steps == 0:
        return sample_gate_noise(
            steps, batch, width, p, schedule, device=device, dtype=dtype, generator=generator
        )
    work = torch.float64 if dtype == torch.float64 else torch.float32
    v = torch.rand(steps, batch, width, device=device, dtype=work, generator=generator)
    e = torch.finfo(work).eps / 2
    if p >= 1.0:
        return v.logit_(e).to(dtype)
    unselected = v >= p
    v.mul_(1.0 / p).logit_(e).masked_fill_(unselected, 0.0)
    return v.to(dtype)
