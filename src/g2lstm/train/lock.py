"""One run per output directory, and fail-fast checks that it is writable.

Example::

    out = ensure_writable_dir(args.out)       # TrainingError now, not after hours of training
    with RunLock(out):
        ...train...

:class:`RunLock` holds an OS file lock (``filelock``; released automatically if the process
dies) on ``run_dir/.g2lstm.lock``. A second run pointed at the same directory fails at once
with a :class:`~g2lstm.errors.TrainingError` that names the other process.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from types import TracebackType

from g2lstm.errors import TrainingError

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
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise TrainingError(
            f"output path {directory} exists and is not a directory; choose another --out"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(
            f"cannot create output directory {directory}: {exc.strerror or exc}; choose another "
            "--out or fix the permissions"
        ) from exc
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".g2lstm-write-test-") as f:
            f.write(b"ok")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise TrainingError(
            f"output directory {directory} is not writable: {exc.strerror or exc}; choose "
            "another --out, free disk space or fix the permissions"
        ) from exc
    return directory


class RunLock:
    """Exclusive, non-blocking lock on a run directory (context manager).

    Args:
        run_dir: the run's output directory (must exist; see :func:`ensure_writable_dir`).

    Raises:
        TrainingError: on ``__enter__``/:meth:`acquire`, if another process holds the lock.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        from filelock import FileLock

        self.run_dir = Path(run_dir)
        self.lock_path = self.run_dir / LOCK_NAME
        self.pid_path = self.run_dir / PID_NAME
        self._lock = FileLock(str(self.lock_path))

    @property
    def is_locked(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._lock.is_locked

    def acquire(self) -> RunLock:
        """Take the lock without waiting."""
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            owner = "unknown"
            with contextlib.suppress(OSError, ValueError):
                owner = str(int(self.pid_path.read_text().strip()))
            raise TrainingError(
                f"{self.run_dir} is in use by another g2lstm run (pid {owner}); choose another "
                "--out or wait for that run to finish"
            ) from None
        except OSError as exc:
            raise TrainingError(f"cannot lock {self.lock_path}: {exc}") from exc
        with contextlib.suppress(OSError):
            self.pid_path.write_text(f"{os.getpid()}\n")
        return self

    def release(self) -> None:
        """Release the lock (no-op if not held)."""
        if self._lock.is_locked:
            with contextlib.suppress(OSError):
                self.pid_path.unlink()
            self._lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
