"""Checks the task implementations share: option values and the metadata of saved files.

:func:`positive_int` validates the size options of evaluators and fine-tune recipes
(``--batch-size``, ``--limit``, ...); :func:`malformed_metadata` turns the errors of reading a
malformed config or vocabulary into one :class:`~g2lstm.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from g2lstm.errors import CheckpointError, ConfigError, G2LSTMError

__all__ = ["malformed_metadata", "positive_int"]


def positive_int(name: str, value: Any) -> int | None:
    """``value`` if it is None or an integer >= 1, else ConfigError naming ``--name``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
    return value


@contextmanager
def malformed_metadata(source: str, what: str) -> Iterator[None]:
    """Turn the ``TypeError``/``ValueError``/``KeyError``/``AttributeError`` of reading a
    malformed ``what`` from ``source`` into one :class:`CheckpointError` naming the file
    (typed errors of the package pass through)."""
    try:
        yield
    except G2LSTMError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{source}: malformed {what} ({type(exc).__name__}: {exc})") from None
