"""Progress for long loops: a tqdm bar on a terminal, a log line every N seconds elsewhere.

When stderr is not a terminal (piped, ``nohup``, CI, a job scheduler) tqdm shows nothing, so
:func:`progress` returns a :class:`LogLines` instead: the same interface (``update``,
``set_postfix``, ``close``, iteration) printing one line on stderr every
:func:`progress_every` seconds (``$G2LSTM_PROGRESS_EVERY``, or ``g2lstm --progress-every``;
``0`` turns the lines off), e.g.::

    g2lstm: main epoch 2 | batch 1200/2905 (41%) | step=4100 loss=4.951 ppl=141.3 \
        tok_s=10412 | 5.3 batch/s | 3m46s elapsed | ETA 5m21s

(one line; wrapped here).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

from g2lstm.errors import ConfigError

__all__ = [
    "ENV_PROGRESS_EVERY",
    "LogLines",
    "Throughput",
    "format_duration",
    "progress",
    "progress_every",
    "set_progress_every",
]

T = TypeVar("T")

#: Environment variable: seconds between progress lines when stderr is not a terminal.
ENV_PROGRESS_EVERY = "G2LSTM_PROGRESS_EVERY"
#: The default interval of those lines, in seconds.
DEFAULT_PROGRESS_EVERY = 30.0


def _parse_every(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"{what}={text!r}: expected a number of seconds >= 0 (0 turns progress lines off)"
        )
    return value


def progress_every() -> float:
    """Seconds between progress lines off a terminal (``$G2LSTM_PROGRESS_EVERY``, default 30)."""
    raw = os.environ.get(ENV_PROGRESS_EVERY)
    return DEFAULT_PROGRESS_EVERY if raw in (None, "") else _parse_every(raw, ENV_PROGRESS_EVERY)


def set_progress_every(seconds: float) -> None:
    """Set the interval for this process and the processes it starts (0 turns lines off)."""
    os.environ[ENV_PROGRESS_EVERY] = repr(_parse_every(str(seconds), "--progress-every"))


class LogLines:
    """A stand-in for a tqdm bar that prints one progress line every ``every`` seconds.

    Each line has the description, ``n/total`` of ``unit`` with the percentage, the postfix
    (``set_postfix``: step, loss, ppl, tokens/s as the caller gives them), the rate, the time
    elapsed and the ETA (from the rate, when ``total`` is known). Nothing is printed for a loop
    that ends within the first interval.

    Args:
        iterable: items to yield (optional; else call :meth:`update`).
        total: number of units (``len(iterable)`` if it has one).
        desc: label, e.g. ``"main epoch 2"``.
        every: seconds between lines (> 0).
        unit: what one ``update(1)`` counts.
        initial: units already done (a resumed epoch); not counted in the rate.
        stream: where lines go (stderr).
        clock: time source (injectable for tests).
    """

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        total: int | None = None,
        desc: str | None = None,
        *,
        every: float = DEFAULT_PROGRESS_EVERY,
        unit: str = "it",
        initial: int = 0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.every, self.n, self._initial = float(every), int(initial), int(initial)
        self._stream, self._clock = stream, clock
        self._start = self._last = clock()
        self._postfix = ""
        self.lines = 0

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update(1)

    def __enter__(self) -> LogLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc

    def set_postfix(
        self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any
    ) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self._postfix = " ".join(f"{k}={v}" for k, v in items.items())

    def refresh(self) -> None:
        """Tqdm's method; lines are printed on schedule only."""

    def update(self, n: int | float = 1) -> None:
        self.n += int(n)
        now = self._clock()
        if now - self._last >= self.every:
            self._last = now
            self._print(now)

    def close(self) -> None:
        if self.lines:  # a loop that printed progress says when it ended
            self._print(self._clock(), done=True)

    def line(self, now: float | None = None, done: bool = False) -> str:
        """The text of one progress line at time ``now``."""
        now = self._clock() if now is None else now
        elapsed = now - self._start
        rate = (self.n - self._initial) / elapsed if elapsed > 0 else 0.0
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        if self.total:
            count += f" ({100.0 * self.n / self.total:.0f}%)"
        parts = [self.desc or "progress", f"{self.unit} {count}"]
        if self._postfix:
            parts.append(self._postfix)
        parts += [f"{rate:.3g} {self.unit}/s", f"{format_duration(elapsed)} elapsed"]
        if done:
            parts.append("done")
        elif self.total:
            left = (self.total - self.n) / rate if rate > 0 else math.inf
            parts.append(f"ETA {format_duration(left)}")
        return "g2lstm: " + " | ".join(parts)

    def _print(self, now: float, done: bool = False) -> None:
        print(self.line(now, done), file=self._stream or sys.stderr, flush=True)
        self.lines += 1


def progress(
    iterable: Iterable[T] | None = None,
    total: int | None = None,
    desc: str | None = None,
    disable: bool | None = None,
    *,
    log: bool = True,
    **kwargs: Any,
) -> Any:
    """A ``tqdm`` bar over ``iterable`` (or a manual bar when ``iterable`` is None), or, when
    stderr is not a terminal, :class:`LogLines` printing a line every :func:`progress_every`
    seconds.

    Args:
        iterable: what to iterate over.
        total: number of items, if ``len(iterable)`` is unavailable.
        desc: label shown before the bar.
        disable: True to hide the tqdm bar (e.g. ``--no-progress``); None hides it when
            stderr is not a terminal (tqdm's rule), so log files are not flooded.
        log: when stderr is not a terminal, print progress lines (False on non-zero ranks).
        **kwargs: passed to ``tqdm`` (``unit``, ``initial``, ``leave``, ...).
    """
    from tqdm.auto import tqdm

    if log and not _is_terminal(sys.stderr) and (every := progress_every()) > 0:
        return LogLines(
            iterable,
            total,
            desc,
            every=every,
            unit=kwargs.get("unit", "it"),
            initial=kwargs.get("initial", 0),
        )
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, total=total, desc=desc, disable=disable, **kwargs)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


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
