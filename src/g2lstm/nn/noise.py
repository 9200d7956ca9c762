"""Logistic gate noise with Bernoulli noise dropout (paper Prop. 3.1, authors' README).

The noisy gate of G2-LSTM is ``sigmoid((a + B * L) / tau)`` where ``L = log U - log(1 - U)``
is standard logistic noise (the difference of two Gumbel variables) and ``B ~ Bernoulli(p)``.
One uniform draw ``v`` serves both: ``B = [v < p]`` and, given ``B = 1``, ``U = v / p`` is
again uniform on ``[0, 1)``. That halves the random numbers drawn per gate value.

``U`` is clamped to ``[e, 1 - e]`` with ``e`` = half the dtype's machine epsilon (2**-24 in
float32), so ``L`` is always finite (``|L| <= 16.7`` in float32) and exactly logistic up to
the resolution of the uniform generator. (The authors add ``eps = 1e-3`` inside the logs,
which bounds the noise at 6.9 and slightly thins the tails.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from g2lstm.nn.config import NoiseSchedule

__all__ = ["logistic_from_uniform", "sample_gate_noise"]


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def logistic_from_uniform(u: Tensor) -> Tensor:
    """Map uniform samples on ``[0, 1)`` to standard logistic noise ``log u - log(1 - u)``.

    The input is clamped to ``[e, 1 - e]`` (``e = eps / 2`` of its dtype) so the result is
    always finite. Shape is preserved.
    """
    return u.logit(torch.finfo(u.dtype).eps / 2)


def sample_gate_noise(
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
    """Draw the additive gate noise ``B * L`` for one layer and direction.

    Args:
        steps: sequence length ``T``.
        batch: batch size ``N``.
        width: number of noisy gate values per step, ``len(noisy_gates) * hidden_size``.
            The last dimension is laid out gate by gate, in the ``i, f, o`` order of the
            fused weights.
        p: probability ``P(B = 1)`` that a value receives noise, in ``[0, 1]``.
        schedule: when to redraw along the sequence (:class:`NoiseSchedule`).
        generator: optional ``torch.Generator`` for reproducible draws.

    Returns:
        Tensor of shape ``(T, N, width)``; exactly zero where ``B = 0``. With
        ``NOISE_PER_SEQUENCE`` it is an expanded view of one ``(1, N, width)`` draw.
    """
    work = _work_dtype(dtype)
    kw = {"device": device, "dtype": work, "generator": generator}
    if p <= 0.0 or steps == 0:
        return torch.zeros(steps, batch, width, device=device, dtype=dtype)
    schedule = NoiseSchedule(schedule)
    if schedule is NoiseSchedule.PER_STEP:
        v = torch.rand(steps, batch, width, **kw)
        noise = _one_draw(v, p)
    elif schedule is NoiseSchedule.NOISE_PER_SEQUENCE:
        v = torch.rand(1, batch, width, **kw)
        noise = _one_draw(v, p).expand(steps, batch, width)
    else:  # MASK_PER_SEQUENCE: B once per sequence, U fresh every step.
        mask = torch.rand(1, batch, width, **kw) < p
        noise = logistic_from_uniform(torch.rand(steps, batch, width, **kw)) * mask
    return noise.to(dtype)


def _one_draw(v: Tensor, p: float) -> Tensor:
    """``B * L`` from one uniform ``v``: ``B = [v < p]``, ``U = v / p`` given ``B = 1``.

    Works in place on ``v`` (five passes over it instead of eight): at the AWD-LSTM size
    the noise is otherwise ~11% of a training step.
    """
    e = torch.finfo(v.dtype).eps / 2
    if p >= 1.0:
        return v.logit_(e)
    unselected = v >= p
    return v.mul_(1.0 / p).logit_(e).masked_fill_(unselected, 0.0)
