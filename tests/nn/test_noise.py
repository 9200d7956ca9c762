"""Gate noise: logistic distribution (KS test), Bernoulli rate, finiteness, schedules."""

from __future__ import annotations

import math

import pytest
import torch

from g2lstm.nn import NoiseSchedule, logistic_from_uniform, sample_gate_noise


def ks_statistic(samples: torch.Tensor, cdf) -> float:
    """Kolmogorov-Smirnov distance between the samples' empirical CDF and ``cdf``."""
    x, _ = samples.double().sort()
    n = x.numel()
    f = cdf(x)
    hi = torch.arange(1, n + 1, dtype=torch.float64) / n
    lo = torch.arange(0, n, dtype=torch.float64) / n
    return float(torch.maximum(hi - f, f - lo).max())


def logistic_cdf(x):
    return torch.sigmoid(x)


@pytest.mark.parametrize("p", [1.0, 0.2, 0.05])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nonzero_noise_is_standard_logistic(p, dtype):
    g = torch.Generator().manual_seed(123)
    noise = sample_gate_noise(50, 40, 100, p, generator=g, dtype=dtype)
    vals = noise[noise != 0]
    n = vals.numel()
    d = ks_statistic(vals, logistic_cdf)
    assert d < 1.95 / math.sqrt(n)  # alpha = 0.001, fixed seed
    # the statistic is sensitive: a normal with the logistic's variance is rejected
    normal = torch.randn(n, generator=g, dtype=torch.float64) * (math.pi / math.sqrt(3))
    assert ks_statistic(normal, logistic_cdf) > 1.95 / math.sqrt(n)


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
def test_perturbed_fraction_is_p(p):
    g = torch.Generator().manual_seed(7)
    noise = sample_gate_noise(30, 64, 128, p, generator=g)
    frac = float((noise != 0).double().mean())
    n = noise.numel()
    assert abs(frac - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-12


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_never_non_finite_even_at_clamp_edges(dtype):
    work = torch.float64 if dtype == torch.float64 else torch.float32
    eps = torch.finfo(work).eps
    u = torch.tensor([0.0, 1.0, eps / 4, 1 - eps / 2, 0.5, 1e-45], dtype=work)
    out = logistic_from_uniform(u)
    assert torch.isfinite(out).all()
    assert out[4] == 0
    assert out[0] < -15 and out[1] > 15
    noise = sample_gate_noise(20, 20, 20, 1.0, dtype=dtype)
    assert noise.dtype == dtype
    assert torch.isfinite(noise).all()


def test_schedules():
    g = torch.Generator().manual_seed(0)
    fixed = sample_gate_noise(6, 3, 8, 0.5, NoiseSchedule.NOISE_PER_SEQUENCE, generator=g)
    assert fixed.shape == (6, 3, 8)
    assert torch.equal(fixed[0], fixed[5])
    mask_fixed = sample_gate_noise(6, 3, 8, 0.5, "mask_per_sequence", generator=g)
    masks = mask_fixed != 0
    assert torch.equal(masks[0], masks[5])
    assert not torch.equal(mask_fixed[0], mask_fixed[5])
    fresh = sample_gate_noise(6, 3, 8, 0.5, "per_step", generator=g)
    assert not torch.equal(fresh != 0, (fresh != 0)[0].expand_as(fresh))


def test_generator_makes_draws_reproducible():
    a = sample_gate_noise(5, 4, 6, 0.2, generator=torch.Generator().manual_seed(3))
    b = sample_gate_noise(5, 4, 6, 0.2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_one_seed_per_layer_call_from_the_default_generator():
    """Each layer-direction call takes exactly one draw from torch's default generator, so
    ``torch.manual_seed`` and a saved RNG state (checkpoint resume) reproduce the noise."""
    from g2lstm import G2LSTM
    from g2lstm.nn.noise import SEED_HIGH

    m = G2LSTM(3, 5, num_layers=2, bidirectional=True, noise_p=0.5).train()
    x = torch.randn(6, 2, 3)
    torch.manual_seed(4)
    out, _ = m(x)
    after = torch.rand(3)
    torch.manual_seed(4)
    seeds = [torch.randint(0, SEED_HIGH, ()) for _ in range(4)]  # 2 layers x 2 directions
    assert torch.equal(torch.rand(3), after)
    assert len({int(s) for s in seeds}) == 4
    state = torch.get_rng_state()
    a, _ = m(x)
    b, _ = m(x)
    torch.set_rng_state(state)
    c, _ = m(x)
    assert torch.equal(a, c) and not torch.equal(a, b)
    m.backend = "reference"  # the reference materialises the same noise
    torch.set_rng_state(state)
    torch.testing.assert_close(m(x)[0], a, atol=1e-5, rtol=1e-4)


def test_gate_noise_materialize_is_the_generator_function():
    """``GateNoise.materialize`` from the seeds: ``B = [v < p]``, ``L = logit(v / p)`` with
    ``v`` the Philox uniforms of stream 0 at steps ``0..T-1``."""
    from g2lstm.nn import philox
    from g2lstm.nn.noise import GateNoise

    key = torch.tensor([123456789, 987654321])
    v = philox.uniform(key[0], 4, 3, 10, 0, torch.float64)
    want = torch.where(v < 0.3, (v / 0.3).logit(), torch.zeros_like(v))
    got = GateNoise(key, 0.3, NoiseSchedule.PER_STEP).materialize(4, 3, 10, torch.float64)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)
    per_seq = GateNoise(key, 0.3, NoiseSchedule.NOISE_PER_SEQUENCE)
    v1 = philox.uniform(key[1], 1, 3, 10, 0, torch.float64)
    want1 = torch.where(v1 < 0.3, (v1 / 0.3).logit(), torch.zeros_like(v1))
    torch.testing.assert_close(per_seq.materialize(4, 3, 10, torch.float64)[3], want1[0])
    masked = GateNoise(key, 0.3, NoiseSchedule.MASK_PER_SEQUENCE)
    b = philox.uniform(key[1], 1, 3, 10, 1, torch.float64)[0] < 0.3
    got_m = masked.materialize(4, 3, 10, torch.float64)
    torch.testing.assert_close(got_m, v.logit() * b)
    assert torch.equal(masked.sequence_mask(3, 10, torch.float64), b)
