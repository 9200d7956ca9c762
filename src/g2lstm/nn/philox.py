"""Philox4x32-10, the counter-based generator of the gate noise, in plain torch ops.

Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the
generator of cuRAND and of PyTorch's CUDA random ops) maps a 128-bit counter and a 64-bit
key to four 32-bit words through ten rounds of two 32x32->64-bit multiplications. Any word
can be computed on its own, in any order, on any device: the fused CPU step
(``fast/csrc/g2lstm_cpu.cpp``) draws the noise of each row inside the step, in parallel,
and every other path (the reference loop, the ATen and Triton steps) computes the same
words here, vectorised over the whole ``(T, N, W)`` block, bit for bit.

Layout of the gate noise of one layer-direction call (see :mod:`g2lstm.nn.noise`):
the key is a 63-bit seed drawn once per call from the module's generator (``k0`` its low,
``k1`` its high 32 bits); the counter of noise column ``j`` of row ``n`` at step ``t`` is
``(j // 4, n, t, stream)`` and the value is word ``j % 4`` of the output. ``stream``
separates independent draws of one call (0: the per-step uniforms, 1: the per-sequence
mask of ``mask_per_sequence``).

A word becomes a uniform on ``[0, 1)`` by its top 24 bits (float32: ``(x >> 8) * 2**-24``,
every value exact) or all 32 bits (float64: ``x * 2**-32``), see :func:`uniform_bits`.

Everything is int64 arithmetic on values below ``2**49``, so no operation overflows; the
32-bit products are split into 16-bit halves (:func:`_mulhilo`).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["philox4x32", "uniform", "uniform_bits", "words"]

_M0, _M1 = 0xD2511F53, 0xCD9E8D57  # round multipliers
_W0, _W1 = 0x9E3779B9, 0xBB67AE85  # key schedule (Weyl) increments
_MASK32 = 0xFFFFFFFF
ROUNDS = 10


def uniform_bits(dtype: torch.dtype) -> int:
    """Bits of a word used per uniform: 32 for float64 work, 24 otherwise (float32 work)."""
    return 32 if dtype == torch.float64 else 24


def _mulhilo(a: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """High and low 32-bit words of ``a * m`` (``a``: int64 values < 2**32, ``m`` < 2**32).

    ``a * m = (y + (x >> 16)) * 2**16 + (x & 0xFFFF)`` with ``x = a * (m & 0xFFFF)`` and
    ``y = a * (m >> 16)``, both below ``2**48``.
    """
    x = a * (m & 0xFFFF)
    mid = a * (m >> 16)
    mid += x >> 16
    hi = mid >> 16
    lo = ((mid & 0xFFFF) << 16) | (x & 0xFFFF)
    return hi, lo


def philox4x32(
    counter: tuple[Tensor, Tensor, Tensor, Tensor], key: tuple[Tensor | int, Tensor | int]
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Philox4x32-10 of broadcastable int64 counter words (each in ``[0, 2**32)``).

    ``key``: two 32-bit words (ints or int64 tensors that broadcast with the counter).
    Returns the four output words as int64 tensors of the broadcast shape.
    """
    c0, c1, c2, c3 = torch.broadcast_tensors(*counter)
    k0, k1 = key
    for r in range(ROUNDS):
        if r:
            k0 = (k0 + _W0) & _MASK32
            k1 = (k1 + _W1) & _MASK32
        hi0, lo0 = _mulhilo(c0, _M0)
        hi1, lo1 = _mulhilo(c2, _M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def words(seed: Tensor | int, steps: int, batch: int, width: int, stream: int = 0,
          device: torch.device | str | None = None) -> Tensor:  # fmt: skip
    """The ``(steps, batch, width)`` words of noise columns ``0..width-1``, rows
    ``0..batch-1``, steps ``0..steps-1`` for key ``seed`` (a 0-dim int64 tensor or an int,
    ``0 <= seed < 2**63``) and ``stream``. int64 tensor with values in ``[0, 2**32)``."""
    if isinstance(seed, Tensor):
        device = seed.device
    kw = {"device": device, "dtype": torch.int64}
    quads = -(-width // 4)
    q = torch.arange(quads, **kw)
    n = torch.arange(batch, **kw).unsqueeze(1)
    t = torch.arange(steps, **kw).view(steps, 1, 1)
    s = torch.full((), stream, **kw)
    out = philox4x32((q, n, t, s), (seed & _MASK32, (seed >> 32) & _MASK32))
    return torch.stack(out, dim=-1).view(steps, batch, 4 * quads)[..., :width]


def uniform(seed: Tensor | int, steps: int, batch: int, width: int, stream: int = 0,
            dtype: torch.dtype = torch.float32,
            device: torch.device | str | None = None) -> Tensor:  # fmt: skip
    """Uniforms on ``[0, 1)`` from :func:`words`: ``(x >> 8) * 2**-24`` in float32,
    ``x * 2**-32`` in float64 (``dtype``: float32 or float64; every value exact)."""
    bits = uniform_bits(dtype)
    w = words(seed, steps, batch, width, stream, device)
    if bits < 32:
        w = w >> (32 - bits)
    return w.to(dtype).mul_(2.0**-bits)
