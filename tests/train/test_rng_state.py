"""RNG capture/restore, seeding and per-step generators."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from g2lstm.errors import CheckpointError, ConfigError
from g2lstm.train import (
    capture_rng_state,
    derive_seed,
    restore_rng_state,
    seed_everything,
    step_generator,
)


def _draw():
    return (
        [random.random() for _ in range(3)] + [random.gauss(0, 1)],
        [*np.random.rand(3).tolist(), float(np.random.normal())],  # noqa: NPY002
        torch.rand(3).tolist() + torch.randn(1).tolist(),
    )


def test_capture_restore_reproduces_draws_through_json():
    seed_everything(123)
    np.random.normal()  # noqa: NPY002 - leave a cached Gaussian in numpy's state
    random.gauss(0, 1)
    state = json.loads(json.dumps(capture_rng_state()))
    assert len(json.dumps(state)) < 20_000
    expected = _draw()
    _draw()  # move every generator on
    restore_rng_state(state)
    assert _draw() == expected


def test_restore_rejects_malformed_state():
    with pytest.raises(CheckpointError, match="random-generator state"):
        restore_rng_state({"torch": "!!not base64 of a state!!"})


def test_seed_everything_is_rank_dependent():
    assert seed_everything(5, rank=0) == 5
    a = _draw()
    assert seed_everything(5) == 5
    assert _draw() == a
    assert seed_everything(5, rank=1) == 6
    assert _draw() != a


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, True, "3"])
def test_seed_range_checked(bad):
    with pytest.raises(ConfigError, match="seed"):
        seed_everything(bad)


def test_deterministic_flag(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled()
    try:
        seed_everything(1, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic
        import os

        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(before)
        torch.backends.cudnn.deterministic = False


def test_step_generator_depends_only_on_seed_step_stream():
    a = torch.rand(4, generator=step_generator(7, 100))
    torch.rand(1000)  # global RNG use must not matter
    assert torch.equal(a, torch.rand(4, generator=step_generator(7, 100)))
    assert not torch.equal(a, torch.rand(4, generator=step_generator(7, 101)))
    assert not torch.equal(a, torch.rand(4, generator=step_generator(8, 100)))
    assert not torch.equal(a, torch.rand(4, generator=step_generator(7, 100, stream=1)))


def test_derive_seed_avoids_seed_plus_step_collisions():
    assert derive_seed(1, 0) != derive_seed(0, 1)
    seeds = {derive_seed(s, k) for s in range(20) for k in range(50)}
    assert len(seeds) == 1000
    assert all(0 <= s < 2**63 for s in seeds)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_generators_captured_and_restored():
    seed_everything(3)
    state = json.loads(json.dumps(capture_rng_state()))
    assert len(state["cuda"]) == torch.cuda.device_count()
    expected = torch.rand(4, device="cuda")
    restore_rng_state(state)
    assert torch.equal(torch.rand(4, device="cuda"), expected)
    g = step_generator(7, 3, device="cuda")
    assert torch.equal(
        torch.rand(4, device="cuda", generator=g),
        torch.rand(4, device="cuda", generator=step_generator(7, 3, device="cuda")),
    )
