"""Crash-safe file and directory writes.

Every write goes to a temporary name in the *same* directory, is flushed and ``fsync``-ed, and
is then renamed onto the final name with :func:`os.replace` (atomic on POSIX and Windows), after
which the directory itself is fsynced so the rename survives a power cut. A reader therefore
sees either the previous complete file or the new complete file, never a half-written one; an
exception (or ``kill -9``) while writing leaves the previous file byte-identical.

Running out of disk space (``ENOSPC``/``EDQUOT``) is reported as a
:class:`~g2lstm.errors.CheckpointError` that names the path and says what to do.

Example::

    atomic_write_json(run_dir / "config.json", config)
    with atomic_path(run_dir / "model.safetensors") as tmp:
        safetensors.torch.save_file(tensors, tmp)   # any writer that takes a path
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from g2lstm.errors import CheckpointError

__all__ = [
    "atomic_directory",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_directory",
]

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _read_umask() -> int:
    # Read the umask once at import (os.umask is the only portable way and is not thread-safe).
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
_FILE_MODE = 0o666 & ~_UMASK
_DIR_MODE = 0o777 & ~_UMASK


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Flush a directory entry (a rename or a new file inside it) to disk; no-op on Windows."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disk_full_error(path: Path, exc: OSError) -> CheckpointError:
    return CheckpointError(
        f"no space left on the device while writing {path} ({exc.strerror or exc}); "
        "the previous file (if any) is unchanged. Free some disk space, lower keep_last, "
        "or write to another directory (--out), then resume."
    )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically.

    The caller writes the complete file to the yielded path (it exists and is empty). When the
    ``with`` block ends normally the file is fsynced, renamed onto ``path`` with
    :func:`os.replace` and the parent directory is fsynced. If the block raises, the temporary
    file is removed and ``path`` is left exactly as it was.

    Args:
        path: final file name; its parent directory must exist.

    Raises:
        CheckpointError: the disk is full (``ENOSPC``/``EDQUOT``) or the parent directory is
            missing. Other exceptions from the block propagate unchanged.
    """
    final = Path(path)
    parent = final.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=parent)
    except FileNotFoundError:
        raise CheckpointError(
            f"cannot write {final}: directory {parent} does not exist; create it first"
        ) from None
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise _disk_full_error(final, exc) from exc
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # the mode of the file replaced, never of what a symlink in its place points at
        existing = final.lstat() if final.exists() or final.is_symlink() else None
        regular = existing is not None and stat.S_ISREG(existing.st_mode)
        mode = existing.st_mode & 0o777 if regular else _FILE_MODE  # type: ignore[union-attr]
        os.chmod(tmp, mode)
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, final)
        fsync_directory(parent)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            raise _disk_full_error(final, exc) from exc
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); return ``Path(path)``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically with the given encoding; return ``Path(path)``."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(
    path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2, sort_keys: bool = False
) -> Path:
    """Serialise ``obj`` as JSON (UTF-8, trailing newline) and write it atomically.

    Raises:
        CheckpointError: ``obj`` is not JSON-serialisable (the message names ``path``), or the
            disk is full.
    """
    try:
        text = json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"cannot write {path}: value is not JSON-serialisable ({exc})"
        ) from exc
    return atomic_write_text(path, text + "\n")


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            _fsync_file(Path(dirpath) / name)
        fsync_directory(dirpath)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary directory ``NAME.tmp-XXXX`` next to ``path``; publish it whole.

    On success every file inside is fsynced and the directory is renamed to ``path``, so
    ``path`` either does not exist or is complete. If ``path`` already exists it is first
    renamed to ``NAME.old-XXXX`` and removed only after the new directory is in place. If the
    block raises, the temporary directory is deleted and ``path`` is untouched.

    Raises:
        CheckpointError: the disk is full or the parent directory is missing.
    """
    final = Path(path)
    parent = final.parent
    if not parent.is_dir():
        raise CheckpointError(
            f"cannot write {final}: directory {parent} does not exist; create it first"
        )
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{final.name}.tmp-", dir=parent))
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise _disk_full_error(final, exc) from exc
        raise
    try:
        os.chmod(tmp, _DIR_MODE)
        yield tmp
        _fsync_tree(tmp)
        old: Path | None = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f"{final.name}.old-", dir=parent))
            os.replace(final, old / final.name)
        try:
            os.replace(tmp, final)
        except BaseException:
            if old is not None:  # put the previous directory back
                os.replace(old / final.name, final)
                shutil.rmtree(old, ignore_errors=True)
            raise
        fsync_directory(parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            raise _disk_full_error(final, exc) from exc
        raise
