"""Seeding, RNG state capture/restore, and per-step generators for exact resume.

Two ways to make a resumed run draw the same random numbers as an uninterrupted one:

1. **Save and restore the global generators.** :func:`capture_rng_state` returns the state of
   Python's ``random``, numpy's global generator, torch's CPU generator and every CUDA
   device's generator as a JSON-serialisable dict (torch states are base64 byte strings), so it
   can go straight into a checkpoint's ``meta``; :func:`restore_rng_state` puts it back.
2. **Derive randomness from (seed, step)** (fairseq's trick, ``trainer.py::_set_seed``):
   :func:`step_generator` returns a fresh ``torch.Generator`` whose seed is a hash of
   ``(seed, step, stream)``. Nothing needs saving, and it does not depend on how many draws
   earlier steps made or on the number of GPUs.
"""

from __future__ import annotations

import base64
import os
import random
import struct
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from g2lstm.errors import CheckpointError, ConfigError

__all__ = [
    "capture_rng_state",
    "derive_seed",
    "restore_rng_state",
    "seed_everything",
    "step_generator",
]

_MAX_SEED = 2**32 - 1  # numpy's global seed must fit in 32 bits
_MASK64 = (1 << 64) - 1


def _encode(state: torch.Tensor) -> str:
    """Base64 of a uint8 state tensor (torch generators)."""
    return base64.b64encode(bytes(state.cpu().tolist())).decode("ascii")


def _decode(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def _encode_words(words: Sequence[int]) -> str:
    """Base64 of 32-bit words (Mersenne-Twister keys), little-endian."""
    return base64.b64encode(struct.pack(f"<{len(words)}I", *words)).decode("ascii")


def _decode_words(text: str) -> list[int]:
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}I", raw))


def capture_rng_state() -> dict[str, Any]:
    """Return the state of every global random generator as a JSON-serialisable dict.

    Keys: ``"python"`` (``random.getstate()``), ``"numpy"`` (the legacy global ``np.random``
    state; absent without numpy), ``"torch"`` (CPU generator) and ``"cuda"`` (one state per
    visible device; empty without CUDA). Large states are base64 strings, so the dict stays
    compact in ``meta.json`` (about 16 KB).
    """
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": version, "key": _encode_words(internal), "gauss": gauss},
        "torch": _encode(torch.get_rng_state()),
        "cuda": [],
    }
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency of the train extra
        pass
    else:
        np_state = np.random.get_state(legacy=False)  # noqa: NPY002 (the global state)
        state["numpy"] = {
            "bit_generator": np_state["bit_generator"],
            "key": _encode_words(np_state["state"]["key"].tolist()),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        }
    if torch.cuda.is_available():
        state["cuda"] = [_encode(s) for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore generators captured by :func:`capture_rng_state`.

    Missing entries are left alone. If the checkpoint was written with a different number of
    CUDA devices, the common ones are restored and a warning is issued.

    Raises:
        CheckpointError: the state is malformed (the message names the generator).
    """
    try:
        if "python" in state:
            s = state["python"]
            random.setstate((s["version"], tuple(_decode_words(s["key"])), s["gauss"]))
        if "numpy" in state:
            import numpy as np

            s = state["numpy"]
            key = np.asarray(_decode_words(s["key"]), dtype=np.uint32)
            np.random.set_state(  # noqa: NPY002
                (s["bit_generator"], key, s["pos"], s["has_gauss"], s["gauss"])
            )
        if "torch" in state:
            torch.set_rng_state(_decode(state["torch"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot restore the random-generator state: {exc}") from exc
    cuda = state.get("cuda") or []
    if cuda:
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available != len(cuda):
            warnings.warn(
                f"the checkpoint holds RNG states of {len(cuda)} CUDA device(s), this machine "
                f"has {available}; restoring {min(available, len(cuda))}; random draws on the "
                "other devices will differ from the original run",
                RuntimeWarning,
                stacklevel=2,
            )
        for index, text in enumerate(cuda[:available]):
            torch.cuda.set_rng_state(_decode(text), device=index)


def seed_everything(seed: int, rank: int = 0, deterministic: bool = False) -> int:
    """Seed ``random``, numpy and torch (CPU and all CUDA devices) with ``seed + rank``.

    Args:
        seed: the run's seed, ``0 <= seed + rank < 2**32``.
        rank: the distributed rank, so each process draws different dropout/noise.
        deterministic: also call ``torch.use_deterministic_algorithms(True)``, set
            ``cudnn.deterministic = True``, ``cudnn.benchmark = False`` and
            ``CUBLAS_WORKSPACE_CONFIG=":4096:8"`` (if unset). Bitwise reproducibility is only
            promised on CPU; cuDNN RNNs can still vary between GPU models.

    Returns:
        The effective seed ``seed + rank``.

    Raises:
        ConfigError: the seed is not an integer or out of range.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not isinstance(rank, int):
        raise ConfigError(f"seed={seed!r} and rank={rank!r} must be integers")
    effective = seed + rank
    if not 0 <= effective <= _MAX_SEED:
        raise ConfigError(f"seed + rank = {effective} must lie in [0, {_MAX_SEED}]")
    random.seed(effective)
    try:
        import numpy as np

        np.random.seed(effective)  # noqa: NPY002 (code such as AWD-LSTM uses the global RNG)
    except ImportError:  # pragma: no cover
        pass
    torch.manual_seed(effective)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return effective


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def derive_seed(seed: int, *keys: int) -> int:
    """Mix ``seed`` and integer ``keys`` into a well-spread 63-bit seed (splitmix64).

    Unlike ``seed + step`` this never maps two different ``(seed, step)`` pairs to the same
    value by accident (``(1, 0)`` and ``(0, 1)`` give unrelated seeds).
    """
    h = _splitmix64(int(seed) & _MASK64)
    for key in keys:
        h = _splitmix64(h ^ (int(key) & _MASK64))
    return h >> 1  # torch.Generator.manual_seed accepts any int64 >= 0


def step_generator(
    seed: int, step: int, *, device: str | torch.device = "cpu", stream: int = 0
) -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded from ``(seed, step, stream)``.

    Pass it as ``generator=`` to ``torch.rand``/``torch.randperm``/... for every random draw
    of a training step. Because the seed depends only on the run seed and the step number, a
    run resumed at step ``k`` draws exactly what the uninterrupted run drew at step ``k``,
    without saving any generator state. Use different ``stream`` values for independent
    sources within one step (e.g. 0 = batch lengths, 1 = gate noise, 2 = dropout), and add the
    rank to ``stream`` if ranks must differ.
    """
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(seed, step, stream))
    return generator
