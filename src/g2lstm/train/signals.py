"""Stop training cleanly on Ctrl-C or SIGTERM (cluster pre-emption).

Example::

    with GracefulInterrupt() as stop:
        for step in range(start, total):
            train_step(...)
            if stop.requested:        # first Ctrl-C / SIGTERM
                manager.save(step, ...)   # resumable checkpoint
                break

The first SIGINT or SIGTERM only sets :attr:`GracefulInterrupt.requested`, so the current
step finishes and the loop can save and exit. A second SIGINT (Ctrl-C pressed again) raises
``KeyboardInterrupt`` at once; further SIGTERMs are ignored (the flag is already set).
Handlers are installed only in the main thread (Python allows nothing else); elsewhere the
context manager does nothing and ``requested`` stays False. Previous handlers are restored on
exit. Under DDP, agree on stopping with ``DistributedContext.any_true(stop.requested)``.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import Any

__all__ = ["GracefulInterrupt"]


class GracefulInterrupt:
    """Context manager turning the first SIGINT/SIGTERM into a "please stop" flag.

    Args:
        signals: the signals to catch (default SIGINT and SIGTERM where available).
        quiet: do not print the one-line notice on the first signal.

    Attributes:
        requested: True once a signal arrived.
        received: the number of the first signal received, or None.
    """

    def __init__(self, signals: Iterable[int] | None = None, *, quiet: bool = False) -> None:
        if signals is None:
            signals = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
        self.signals = tuple(signals)
        self.quiet = quiet
        self.requested = False
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def installed(self) -> bool:
        """Whether handlers are active (False outside the ``with`` block or off the main thread)."""
        return bool(self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.requested = True
        self.received = signum
        if not self.quiet:
            name = signal.Signals(signum).name
            hint = " (press Ctrl-C again to abort at once)" if signum == signal.SIGINT else ""
            sys.stderr.write(
                f"\ng2lstm: received {name}; finishing the current step, saving a checkpoint "
                f"and exiting{hint}\n"
            )
            sys.stderr.flush()

    def __enter__(self) -> GracefulInterrupt:
        self.requested = False
        self.received = None
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
