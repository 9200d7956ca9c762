"""Progress bars (tqdm) and small timing helpers for training loops."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["Throughput", "format_duration", "progress"]

T = TypeVar("T")


def progress(
    iterable: Iterable[T] | None = None,
    total: int | None = None,
    desc: str | None = None,
    disable: bool | None = None,
    **kwargs: Any,
) -> Any:
    """A ``tqdm`` bar over ``iterable`` (or a manual bar when ``iterable`` is None).

    Args:
        iterable: what to iterate over.
        total: number of items, if ``len(iterable)`` is unavailable.
        desc: label shown before the bar.
        disable: True to hide it (e.g. on non-zero ranks); None hides it when stderr is not a
            terminal (tqdm's rule), so log files are not flooded.
        **kwargs: passed to ``tqdm`` (``unit``, ``leave``, ``position``, ...).
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, total=total, desc=desc, disable=disable, **kwargs)


def format_duration(seconds: float) -> str:
    """Human-readable duration: ``3725.4`` -> ``"1h02m05s"``, ``65`` -> ``"1m05s"``.

    Under a minute gives tenths (``"4.2s"``); a negative, infinite or NaN value gives ``"?"``.
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s"


class Throughput:
    """Items (tokens, sentences) per second since the last :meth:`reset`, and an ETA.

    Args:
        clock: time source in seconds (``time.perf_counter`` by default; injectable for tests).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Start counting again from now."""
        self.start = self._clock()
        self.count = 0

    def update(self, n: int | float) -> None:
        """Record ``n`` more processed items."""
        self.count += n

    @property
    def elapsed(self) -> float:
        """Seconds since the last reset."""
        return self._clock() - self.start

    @property
    def per_second(self) -> float:
        """Items per second (0 before any time has passed)."""
        elapsed = self.elapsed
        return self.count / elapsed if elapsed > 0 else 0.0

    def eta(self, remaining: int | float) -> float:
        """Estimated seconds to process ``remaining`` items at the current rate (inf if unknown)."""
        rate = self.per_second
        return remaining / rate if rate > 0 else math.inf
