"""Resource caps: sizes read from files or arguments are checked before anything is allocated.

A tampered 1 KB ``meta.json`` saying ``nhid: 100000``, a zip bomb, ``--beam 100000`` or
``--words 1000000000`` must fail at once with one line, not after minutes of swapping. Every
cap here has a default that no real use of g2lstm reaches and a way to raise it, named in
the error (a flag, or an environment variable for caps shared by many commands).

Models built from a file are first built on PyTorch's ``meta`` device (shapes only, no
memory): :func:`build_checked` counts the parameters against :func:`max_parameters` and
compares every shape with the tensors actually stored in the file, and only then builds the
real model, whose size is therefore bounded by the file's own size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

from g2lstm.errors import LimitError

__all__ = [
    "DEFAULT_MAX_BEAM",
    "DEFAULT_MAX_PARAMETERS",
    "DEFAULT_MAX_WORDS",
    "ENV_MAX_PARAMETERS",
    "build_checked",
    "check_buildable",
    "check_limit",
    "env_limit",
    "max_parameters",
]

#: Largest model (parameters) built from a file or config; the paper's biggest is ~1e8.
DEFAULT_MAX_PARAMETERS = 1_000_000_000
ENV_MAX_PARAMETERS = "G2LSTM_MAX_PARAMETERS"
#: Largest beam of ``mt translate/eval`` and ``compress eval`` (paper: 5..12); ``--max-beam``.
DEFAULT_MAX_BEAM = 256
#: Most words ``lm generate`` samples in one call; ``--max-words``.
DEFAULT_MAX_WORDS = 10_000_000

M = TypeVar("M", bound=torch.nn.Module)


def check_limit(value: int, limit: int, what: str, how: str) -> int:
    """``value``, or LimitError if it exceeds ``limit``.

    Args:
        value: the requested size.
        limit: the cap.
        what: what is limited, for the message (``"--beam"``, ``"decompressed size of X"``).
        how: how to raise the cap (``"pass --max-beam N"``).
    """
    if value > limit:
        raise LimitError(f"{what} ({value:,}) exceeds the limit of {limit:,}; {how} to allow it")
    return value


def env_limit(name: str, default: int) -> int:
    """The integer in environment variable ``name`` (a cap raised by the user), else ``default``.

    Raises:
        LimitError: the variable is set but is not a positive integer.
    """
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise LimitError(f"environment variable {name}={raw!r} must be a positive integer")
    return value


def max_parameters() -> int:
    """The cap on model parameters (``$G2LSTM_MAX_PARAMETERS``, default 1e9)."""
    return env_limit(ENV_MAX_PARAMETERS, DEFAULT_MAX_PARAMETERS)


def _shape_of(value: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in getattr(value, "shape", value))


def build_checked(
    factory: Callable[[], M],
    stored: Mapping[str, Any] | None,
    source: str,
) -> M:
    """``factory()``, built only after :func:`check_buildable` passed."""
    check_buildable(factory, stored, source)
    return factory()


def check_buildable(
    factory: Callable[[], torch.nn.Module],
    stored: Mapping[str, Any] | None,
    source: str,
) -> None:
    """Check that ``factory()`` is of sane size and matches ``stored``, allocating nothing.

    Args:
        factory: builds the model from a configuration read from a file.
        stored: the tensors (or just their shapes) that will be loaded into it, e.g. a
            checkpoint's ``model_state`` or a safetensors header; ``None`` to check only the
            parameter ceiling (the caller checks the weights afterwards).
        source: the file the configuration came from, for messages.

    Raises:
        LimitError: the configuration describes more than :func:`max_parameters` parameters.
        CheckpointError: the shapes it describes differ from ``stored`` (every mismatch listed).
    """
    # imported here: this module is a leaf that g2lstm.train (via g2lstm.datasets) imports
    from g2lstm.train.state import check_state_dict_compat

    with torch.device("meta"):
        probe = factory()
    count = sum(p.numel() for p in probe.parameters())
    check_limit(
        count,
        max_parameters(),
        f"the parameter count of the model in {source}",
        f"set {ENV_MAX_PARAMETERS} to a larger count",
    )
    if stored is not None:
        shapes = {name: _MetaShape(_shape_of(value)) for name, value in stored.items()}
        check_state_dict_compat(probe, shapes, source)  # type: ignore[arg-type]


class _MetaShape:
    """Stands for a stored tensor where only its shape is compared."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
