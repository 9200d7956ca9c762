"""The gate noise's counter-based generator: Philox4x32-10 known answers, the fused kernel's
copy bit for bit, and the statistics of its uniforms (uniform, independent across steps,
rows, columns and seeds)."""

from __future__ import annotations

import math
import os

import pytest
import torch

from g2lstm.nn import philox
from g2lstm.nn.fast import kernel as kmod

KERNEL_OFF = os.environ.get("G2LSTM_CPU_KERNEL", "").strip().lower() in ("0", "off", "false", "no")

# Random123's known-answer vectors (its tests/kat_vectors): counter, key, output
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "want"), KAT)
def test_known_answers(counter, key, want):
    c = tuple(torch.tensor([v], dtype=torch.int64) for v in counter)
    got = philox.philox4x32(c, key)  # type: ignore[arg-type]
    assert tuple(int(w) for w in got) == want
    k = tuple(torch.tensor(v) for v in key)  # the key as tensors (a drawn seed's words)
    assert tuple(int(w) for w in philox.philox4x32(c, k)) == want  # type: ignore[arg-type]


def test_word_layout():
    """Column j of row n at step t is word j % 4 of counter (j // 4, n, t, stream), key = the
    seed's low and high 32 bits."""
    seed = (0x299F31D0 << 32) | 0xA4093822  # a 63-bit seed
    w = philox.words(torch.tensor(seed), 3, 4, 10, stream=2)
    assert w.shape == (3, 4, 10) and w.dtype == torch.int64
    for t, n, j in [(0, 0, 0), (2, 3, 9), (1, 2, 5)]:
        c = tuple(torch.tensor([v]) for v in (j // 4, n, t, 2))
        out = philox.philox4x32(c, (0xA4093822, 0x299F31D0))  # type: ignore[arg-type]
        assert int(w[t, n, j]) == int(out[j % 4])
    assert int(w.min()) >= 0 and int(w.max()) < 2**32


def test_uniform_grid_is_exact():
    seed = torch.tensor(12345)
    w = philox.words(seed, 2, 3, 7)
    u32 = philox.uniform(seed, 2, 3, 7, dtype=torch.float32)
    u64 = philox.uniform(seed, 2, 3, 7, dtype=torch.float64)
    assert torch.equal(u32.double() * 2**24, (w >> 8).double())
    assert torch.equal(u64 * 2**32, w.double())
    assert float(u32.max()) < 1 and float(u64.max()) < 1


@pytest.mark.skipif(KERNEL_OFF, reason="G2LSTM_CPU_KERNEL=0")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3, 5, 131), (1, 70, 4), (2, 1, 1), (4, 3, 2048)])
def test_kernel_uniforms_equal_the_reference_bit_for_bit(shape, dtype):
    seed = torch.tensor(2**63 - 2)  # the largest seed: both key words in use
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # rows split over threads
    try:
        for stream in (0, 1):
            got = kmod.philox_uniform(seed, *shape, stream, dtype)
            assert torch.equal(got, philox.uniform(seed, *shape, stream, dtype))
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------- statistics
N_DRAWS = 2**20  # about 1e6 uniforms per check


def _uniforms(seed: int, dtype=torch.float64) -> torch.Tensor:
    """(16, 64, 1024): 2**20 uniforms of one seed (steps, rows, columns)."""
    return philox.uniform(torch.tensor(seed), 16, 64, 1024, 0, dtype)


def _ks_uniform(u: torch.Tensor) -> float:
    x, _ = u.flatten().double().sort()
    n = x.numel()
    hi = torch.arange(1, n + 1, dtype=torch.float64) / n
    lo = torch.arange(0, n, dtype=torch.float64) / n
    return float(torch.maximum(hi - x, x - lo).max())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_uniforms_are_uniform(dtype):
    u = _uniforms(20261206, dtype).double()
    n = u.numel()
    assert n == N_DRAWS
    assert _ks_uniform(u) < 1.95 / math.sqrt(n)  # alpha = 0.001, fixed seed
    # moments of U(0, 1): mean 1/2, variance 1/12 (standard errors 0.289 / sqrt(n), ...)
    assert abs(float(u.mean()) - 0.5) < 5 * 0.2887 / math.sqrt(n)
    assert abs(float(u.var()) - 1 / 12) < 5 * 0.0745 / math.sqrt(n)
    # 16 equal bins: chi-square with 15 degrees of freedom, 0.999 quantile 37.7
    counts = torch.bincount((u * 16).long().flatten(), minlength=16).double()
    chi2 = float(((counts - n / 16) ** 2 / (n / 16)).sum())
    assert chi2 < 37.7
    # the ks statistic is sensitive: a slightly skewed sample is rejected
    assert _ks_uniform(u.pow(1.01)) > 1.95 / math.sqrt(n)


def test_every_bit_is_fair():
    w = philox.words(torch.tensor(7), 16, 64, 1024)
    n = w.numel()
    for b in range(32):
        frac = float(((w >> b) & 1).double().mean())
        assert abs(frac - 0.5) < 5 * 0.5 / math.sqrt(n), b


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_independent_across_steps_rows_columns_and_seeds():
    u = _uniforms(99)
    other = _uniforms(100)  # neighbouring seeds: independent streams
    bound = 5 / math.sqrt(N_DRAWS // 2)
    pairs = {
        "step": (u[1:], u[:-1]),
        "row": (u[:, 1:], u[:, :-1]),
        "column": (u[..., 1:], u[..., :-1]),
        "column+4 (next counter)": (u[..., 4:], u[..., :-4]),
        "seed": (u, other),
        "stream": (u, philox.uniform(torch.tensor(99), 16, 64, 1024, 1, torch.float64)),
    }
    for name, (a, b) in pairs.items():
        assert abs(_corr(a, b)) < bound, name
        assert not torch.equal(a, b), name
    # the same counter and seed give the same value (a pure function)
    assert torch.equal(u, _uniforms(99))
    # joint distribution of neighbours: 4x4 bins of (u[t, n, j], u[t, n, j + 1]), chi-square
    # with 15 degrees of freedom, 0.999 quantile 37.7
    a, b = (u[..., 0::2] * 4).long(), (u[..., 1::2] * 4).long()
    counts = torch.bincount((a * 4 + b).flatten(), minlength=16).double()
    expected = a.numel() / 16
    assert float(((counts - expected) ** 2 / expected).sum()) < 37.7
