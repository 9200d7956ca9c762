"""One run per output directory, and fail-fast checks that it is writable.

Example::

    out = ensure_writable_dir(args.out)       # TrainingError now, not after hours of training
    with RunLock(out):
        ...train...

:class:`RunLock` holds an OS file lock (``flock``; released automatically if the process
dies) on ``run_dir/.g2lstm.lock``. A second run pointed at the same directory fails at once
with a :class:`~g2lstm.errors.TrainingError` that names the other process.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from g2lstm.errors import OutputError, TrainingError
from g2lstm.safe_files import check_output_dir, open_nofollow, refuse_symlinks

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunLock", "ensure_writable_dir"]

LOCK_NAME = ".g2lstm.lock"
PID_NAME = ".g2lstm.pid"


def ensure_writable_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (with parents) and check that files can be written there.

    Returns:
        The directory as a ``Path``.

    Raises:
        TrainingError: it cannot be created (e.g. a parent is a regular file, permission
            denied) or a probe file cannot be written; the message names the path.
    """
    try:
        return check_output_dir(path, "--out")
    except OutputError as exc:
        raise TrainingError(str(exc)) from exc.__cause__


class RunLock:
    """Exclusive, non-blocking lock on a run directory (context manager).

    The lock is an OS lock (``flock``; ``filelock`` where there is none) on
    ``run_dir/.g2lstm.lock``, released by the OS if the process dies. The lock and pid files
    are opened without following symlinks, so a run folder with a planted link cannot make
    a run truncate or overwrite a file elsewhere.

    Args:
        run_dir: the run's output directory (must exist; see :func:`ensure_writable_dir`).

    Raises:
        TrainingError: on ``__enter__``/:meth:`acquire`, if another process holds the lock.
        OutputError: the lock or pid file is a symbolic link.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.lock_path = self.run_dir / LOCK_NAME
        self.pid_path = self.run_dir / PID_NAME
        self._fd: int | None = None
        self._fallback: Any = None

    @property
    def is_locked(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._fd is not None or (self._fallback is not None and self._fallback.is_locked)

    def _busy(self) -> TrainingError:
        owner = "unknown"
        with contextlib.suppress(OSError, ValueError):
            if not self.pid_path.is_symlink():
                owner = str(int(self.pid_path.read_text().strip()))
        return TrainingError(
            f"{self.run_dir} is in use by another g2lstm run (pid {owner}); choose another "
            "--out or wait for that run to finish"
        )

    def acquire(self) -> RunLock:
        """Take the lock without waiting."""
        refuse_symlinks(self.run_dir, (LOCK_NAME, PID_NAME))
        if fcntl is None:  # pragma: no cover - Windows
            from filelock import FileLock, Timeout

            self._fallback = FileLock(str(self.lock_path))
            try:
                self._fallback.acquire(timeout=0)
            except Timeout:
                raise self._busy() from None
        else:
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
            try:
                fd = os.open(self.lock_path, flags, 0o644)
            except OSError as exc:
                raise TrainingError(f"cannot lock {self.lock_path}: {exc}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise self._busy() from None
                raise TrainingError(f"cannot lock {self.lock_path}: {exc}") from exc
            self._fd = fd
        with contextlib.suppress(OSError, OutputError), open_nofollow(self.pid_path, "w") as f:
            f.write(f"{os.getpid()}\n")
        return self

    def release(self) -> None:
        """Release the lock (no-op if not held)."""
        if not self.is_locked:
            return
        with contextlib.suppress(OSError):
            if not self.pid_path.is_symlink():
                self.pid_path.unlink()
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
        if self._fallback is not None:  # pragma: no cover - Windows
            self._fallback.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
