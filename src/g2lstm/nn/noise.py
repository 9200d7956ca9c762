"""Logistic gate noise with Bernoulli noise dropout (paper Prop. 3.1, authors' README).

The noisy gate of G2-LSTM is ``sigmoid((a + B * L) / tau)`` where ``L = log U - log(1 - U)``
is standard logistic noise (the difference of two Gumbel variables) and ``B ~ Bernoulli(p)``.
One uniform draw ``v`` serves both: ``B = [v < p]`` and, given ``B = 1``, ``U = v / p`` is
again uniform on ``[0, 1)``. That halves the random numbers drawn per gate value.

``U`` is clamped to ``[e, 1 - e]`` with ``e`` = half the dtype's machine epsilon (2**-24 in
float32), so ``L`` is always finite (``|L| <= 16.7`` in float32) and exactly logistic up to
the resolution of the uniform generator. (The authors add ``eps = 1e-3`` inside the logs,
which bounds the noise at 6.9 and slightly thins the tails.)

The uniforms come from the counter-based generator Philox4x32-10 (:mod:`g2lstm.nn.philox`):
each layer-direction call draws one 63-bit seed from the module's generator (torch's default
generator of the device unless ``module.generator`` is set, so ``torch.manual_seed`` and the
saved RNG state of a checkpoint reproduce it), and uniform ``v[t, n, j]`` is a pure function
of ``(seed, t, n, j)``. The fused CPU step computes it inside the step; every other path
materialises the same values (:meth:`GateNoise.materialize`). A :class:`GateNoise` holds the
call's seeds: word 0 keys the per-step uniforms (stream 0), word 1 the per-sequence part
(equal to word 0 unless a :class:`NoiseHold` holds an earlier call's seed):

- ``per_step``: ``v = U(seed0, t)``, ``B * L`` from it as above;
- ``noise_per_sequence``: ``v = U(seed1, 0)`` at every step;
- ``mask_per_sequence``: ``B = [U(seed1, 0, stream 1) < p]``, ``L`` from ``U(seed0, t)``.

``B = [v < p]`` is exact: ``v`` is a multiple of ``2**-bits`` and the threshold is ``p``
rounded up to the next multiple (:func:`mask_threshold`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from g2lstm.errors import ShapeError
from g2lstm.nn import philox
from g2lstm.nn.config import NoiseSchedule

__all__ = [
    "GateNoise",
    "NoiseHold",
    "draw_gate_noise",
    "logistic_from_uniform",
    "mask_threshold",
    "sample_gate_noise",
]

#: ``uniform(seed, steps, batch, width, stream, dtype)``: :func:`g2lstm.nn.philox.uniform` or
#: an implementation that gives the same values (the fused CPU kernel's bulk fill)
UniformFn = Callable[[Tensor, int, int, int, int, torch.dtype], Tensor]

#: seeds are drawn uniformly from ``[0, SEED_HIGH)``
SEED_HIGH = 2**63 - 1


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
    ``noise_per_sequence``) and later calls reuse it. What is held is the first call's
    seed (a 0-dim int64 tensor) and batch size; keys are layer-direction indices.
    """

    def __init__(self) -> None:
        self.draws: dict[int, tuple[Tensor, int, int]] = {}

    def get(self, key: int, batch: int, width: int, module: str) -> Tensor | None:
        """The held seed for ``key``, or ``None`` if none yet (raises on a new batch size)."""
        held = self.draws.get(key)
        if held is None:
            return None
        seed, held_batch, held_width = held
        if (held_batch, held_width) != (batch, width):
            raise ShapeError(
                f"{module}: noise_scope holds per-sequence noise for batch {held_batch}, "
                f"but this call has batch {batch}; open a new noise_scope() per batch of "
                "sequences"
            )
        return seed


def mask_threshold(p: float, dtype: torch.dtype) -> float:
    """``p`` rounded up to a multiple of ``2**-bits`` (the uniforms' grid, see
    :func:`g2lstm.nn.philox.uniform`): ``v < p`` and ``v < mask_threshold(p)`` agree for
    every uniform ``v``, and the comparison is exact in ``dtype``."""
    scale = 2.0 ** philox.uniform_bits(dtype)
    return math.ceil(p * scale) / scale


@dataclass(frozen=True)
class GateNoise:
    """The gate noise of one layer-direction call, as seeds (see the module docstring).

    Attributes:
        key: int64 ``(2,)``: the seed of the per-step uniforms and that of the per-sequence
            part (equal unless a ``noise_scope`` holds an earlier call's).
        p: ``P(B = 1)``; schedule: :class:`NoiseSchedule`.
    """

    key: Tensor
    p: float
    schedule: NoiseSchedule

    def materialize(
        self,
        steps: int,
        batch: int,
        width: int,
        dtype: torch.dtype,
        uniform: UniformFn = philox.uniform,
    ) -> Tensor:
        """The noise ``B * L``, ``(steps, batch, width)`` in ``dtype`` (an expanded view for
        ``noise_per_sequence``). ``uniform``: where the uniforms are computed."""
        work = _work_dtype(dtype)
        if self.p <= 0.0 or steps == 0:
            return torch.zeros(steps, batch, width, device=self.key.device, dtype=dtype)
        if self.schedule is NoiseSchedule.PER_STEP:
            v = uniform(self.key[0], steps, batch, width, 0, work)
            return _one_draw(v, self.p).to(dtype)
        if self.schedule is NoiseSchedule.NOISE_PER_SEQUENCE:
            v = uniform(self.key[1], 1, batch, width, 0, work)
            return _one_draw(v, self.p).expand(steps, batch, width).to(dtype)
        u = uniform(self.key[0], steps, batch, width, 0, work)
        return logistic_from_uniform(u).mul_(self.sequence_mask(batch, width, work, uniform)).to(
            dtype
        )

    def sequence_mask(
        self, batch: int, width: int, dtype: torch.dtype, uniform: UniformFn = philox.uniform
    ) -> Tensor:
        """``mask_per_sequence``'s ``B``: ``(batch, width)`` bool, from the uniforms of
        stream 1 of the per-sequence seed (``dtype`` picks their grid)."""
        work = _work_dtype(dtype)
        return uniform(self.key[1], 1, batch, width, 1, work)[0] < mask_threshold(self.p, work)


def draw_gate_noise(
    p: float,
    schedule: NoiseSchedule = NoiseSchedule.PER_STEP,
    *,
    batch: int,
    width: int,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
    hold: NoiseHold | None = None,
    hold_key: int = 0,
    module: str = "G2LSTM",
) -> GateNoise:
    """Draw the seed of one layer-direction call (one draw from ``generator``, else torch's
    default generator of ``device``) and return its :class:`GateNoise`.

    With a :class:`NoiseHold`, the per-sequence seed is the one held for ``hold_key`` (the
    first call of a ``noise_scope`` holds its own); ``per_step`` ignores the hold.
    """
    schedule = NoiseSchedule(schedule)
    seed = torch.randint(0, SEED_HIGH, (), device=device, generator=generator)
    seq = seed
    if hold is not None and schedule is not NoiseSchedule.PER_STEP:
        held = hold.get(hold_key, batch, width, module)
        if held is None:
            hold.draws[hold_key] = (seed, batch, width)
        else:
            seq = held
    return GateNoise(torch.stack([seed, seq]), float(p), schedule)


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
        ``NOISE_PER_SEQUENCE`` it is an expanded view of one ``(1, N, width)`` draw. The same
        values as :func:`draw_gate_noise` then :meth:`GateNoise.materialize`.
    """
    if p <= 0.0 or steps == 0:
        return torch.zeros(steps, batch, width, device=device, dtype=dtype)
    draw = draw_gate_noise(
        p, schedule, batch=batch, width=width, device=device, generator=generator, hold=hold,
        hold_key=hold_key, module=module,
    )  # fmt: skip
    return draw.materialize(steps, batch, width, dtype)


def _one_draw(v: Tensor, p: float) -> Tensor:
    """``B * L`` from one uniform ``v``: ``B = [v < p]``, ``U = v / p`` given ``B = 1``.

    Works in place on ``v`` (five passes over it instead of eight).
    """
    e = torch.finfo(v.dtype).eps / 2
    if p >= 1.0:
        return v.logit_(e)
    unselected = v >= mask_threshold(p, v.dtype)
    return v.mul_(1.0 / p).logit_(e).masked_fill_(unselected, 0.0)
