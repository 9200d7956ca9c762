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

from g2lstm.errors import ShapeError
from g2lstm.nn.config import NoiseSchedule

__all__ = ["NoiseHold", "logistic_from_uniform", "sample_gate_noise"]


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def logistic_from_uniform(u: Tensor) -> Tensor:
    """Map uniform samples on ``[0, 1)`` to standard logistic noise ``log u - log(1 - u)``.

    The input is clamped to ``[e, 1 - e]`` (``e = eps / 2`` of its dtype) so the result is
    always finite. Shape is preserved.
    """
    return u.logit(torch.finfo(u.dtype).eps / 2)


class NoiseHold:
    """Per-sequence noise draws kept across several calls of one module (``noise_scope``).

    A decoder that calls its LSTM once per time step (input feeding, beam search) still
    gets a per-sequence schedule: the first call of each layer-direction draws the
    per-sequence part (the mask ``B`` for ``mask_per_sequence``, ``B * L`` for
    ``noise_per_sequence``) and later calls reuse it. Keys are layer-direction indices.
    """

    def __init__(self) -> None:
        self.draws: dict[int, Tensor] = {}

    def get(self, key: int, batch: int, width: int, module: str) -> Tensor | None:
        """The held draw for ``key`` (``(1, batch, width)``), or ``None`` if none yet."""
        held = self.draws.get(key)
        if held is not None and tuple(held.shape[1:]) != (batch, width):
            raise ShapeError(
                f"{module}: noise_scope holds per-sequence noise for batch {held.shape[1]}, "
                f"but this call has batch {batch}; open a new noise_scope() per batch of "
                "sequences"
            )
        return held


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
    hold: NoiseHold | None = None,
    hold_key: int = 0,
    module: str = "G2LSTM",
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
        hold, hold_key: with a :class:`NoiseHold`, the per-sequence part of the schedule is
            drawn once per ``hold_key`` and reused by later calls (see ``noise_scope``).

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
        return _one_draw(v, p).to(dtype)
    held = None if hold is None else hold.get(hold_key, batch, width, module)
    if schedule is NoiseSchedule.NOISE_PER_SEQUENCE:
        if held is None:
            held = _one_draw(torch.rand(1, batch, width, **kw), p)
        noise = held.expand(steps, batch, width)
    else:  # MASK_PER_SEQUENCE: B once per sequence, U fresh every step.
        if held is None:
            held = torch.rand(1, batch, width, **kw) < p
        noise = logistic_from_uniform(torch.rand(steps, batch, width, **kw)) * held
    if hold is not None:
        hold.draws[hold_key] = held
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
