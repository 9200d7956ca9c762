"""Range and type checks shared by the typed config dataclasses (``lm.config``, ``mt.config``),
and :func:`flatten` (nested config dicts to dotted keys, for comparing two configs).

Each check takes the value's dotted name as it appears in configs and on the command line
(``train.batch_size``), raises :class:`~g2lstm.errors.ConfigError` naming it, the value and
what was expected, and returns the (normalised) value. ``bool`` is refused where a number is
expected, although it is an ``int`` subclass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from g2lstm.errors import ConfigError

__all__ = ["check_bool", "check_choice", "check_float", "check_int", "flatten"]


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"seed": 1}}`` -> ``{"train.seed": 1}`` (lists and other values kept)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    """``value`` if it is an integer in ``[lo, hi]`` (``hi=None``: ``>= lo``), else ConfigError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < lo
        or (hi is not None and value > hi)
    ):
        expected = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ConfigError(f"{name}={value!r} is invalid; expected an integer {expected}")
    return value


def check_float(
    name: str,
    value: object,
    lo: float,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """``float(value)`` if ``value`` is a finite real number in the interval from ``lo`` to
    ``hi`` (each end closed unless ``lo_open``/``hi_open``), else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}={value!r} is not a number")
    v = float(value)
    ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ConfigError(f"{name}={v!r} is invalid; expected a value in {left}{lo}, {hi}{right}")
    return v


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else ConfigError listing them."""
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is invalid; expected one of {', '.join(choices)}")
    return value  # type: ignore[return-value]


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a ``bool``, else ConfigError."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be true or false")
    return value
