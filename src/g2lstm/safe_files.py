"""Opening and publishing output files without following planted symlinks.

A run or output folder may come from an untrusted archive or a shared directory, so any name
g2lstm writes to inside it could already be a symlink to a file elsewhere. The rules:

- files written in place (appended logs, the pid file) are opened with ``O_NOFOLLOW`` (a
  symlink is refused with one line) and must be regular files (a FIFO is refused, not waited on);
- whole files are written to a temporary name and renamed over the target
  (:mod:`g2lstm.train.atomic`), which replaces a symlink instead of writing through it;
- a file that must be new is created with ``O_EXCL`` or published with link-then-rename
  (:func:`publish_exclusive`), so two processes cannot both "create" it;
- an output named on the command line is checked (:func:`check_output_file`) before the work
  starts, so a typo or a read-only place costs nothing.

Example::

    out = check_output_file(args.output, "--output")     # before hours of work
    with open_nofollow(run_dir / "metrics.jsonl", "a") as f:
        f.write(line)
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Any

from g2lstm.errors import OutputError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "check_output_dir",
    "check_output_file",
    "open_nofollow",
    "publish_exclusive",
    "refuse_symlink",
    "refuse_symlinks",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _link_error(path: Path) -> OutputError:
    return OutputError(
        f"{path} is a symbolic link; g2lstm never writes through a link in an output folder "
        "(it could point at any file). Remove the link or choose another folder"
    )


def refuse_symlink(path: str | os.PathLike[str]) -> Path:
    """``Path(path)``; OutputError if it is a symbolic link (dangling or not)."""
    p = Path(path)
    if p.is_symlink():
        raise _link_error(p)
    return p


def refuse_symlinks(folder: str | os.PathLike[str], names: tuple[str, ...]) -> None:
    """Refuse any of ``folder/NAME`` that is a symbolic link (see :func:`refuse_symlink`)."""
    for name in names:
        refuse_symlink(Path(folder) / name)


def open_nofollow(
    path: str | os.PathLike[str],
    mode: str = "a",
    *,
    exclusive: bool = False,
    encoding: str | None = "utf-8",
    newline: str | None = None,
) -> IO[Any]:
    """Open ``path`` for writing (``"w"``/``"a"``, ``"b"`` for bytes) without following a link.

    Args:
        path: the file; created (permissions from the umask) if missing.
        mode: ``"w"`` truncates, ``"a"`` appends; add ``"b"`` for a binary file.
        exclusive: the file must not exist yet (``O_EXCL``).
        encoding, newline: as for :func:`open` (text modes).

    Raises:
        OutputError: ``path`` is a symbolic link, not a regular file, already exists (with
            ``exclusive``), or cannot be opened (the message names it and the reason).
    """
    p = Path(path)
    if not _NOFOLLOW:  # no O_NOFOLLOW (Windows): check first, as well as we can
        refuse_symlink(p)
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | _NONBLOCK | _CLOEXEC
    flags |= os.O_APPEND if "a" in mode else os.O_TRUNC if not exclusive else 0
    if exclusive:
        flags |= os.O_EXCL
    try:
        fd = os.open(p, flags, 0o666)
    except FileExistsError:
        if p.is_symlink():
            raise _link_error(p) from None
        raise OutputError(f"{p} already exists and must not be overwritten") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP or p.is_symlink():
            raise _link_error(p) from None
        if exc.errno == errno.ENXIO:  # a FIFO without a reader
            raise OutputError(f"{p} is not a regular file; remove it") from None
        raise OutputError(f"cannot write {p}: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OutputError(f"{p} is not a regular file; remove it")
        if _NONBLOCK and fcntl is not None:  # back to blocking writes, as open() gives
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_NONBLOCK)
        if "b" in mode:
            return os.fdopen(fd, mode)
        return os.fdopen(fd, mode, encoding=encoding, newline=newline)
    except BaseException:
        os.close(fd)
        raise


def check_output_file(
    path: str | os.PathLike[str], flag: str, *, overwrite: bool = True, create_parent: bool = False
) -> Path:
    """Check, before any work, that a result can later be written to ``path``.

    Args:
        path: the output file named by the user.
        flag: the option that named it (``"--output"``, ``"-o"``, ``"--json"``), for messages.
        overwrite: whether an existing file may be replaced (else: refuse, suggest --force).
        create_parent: create a missing parent directory (else: refuse).

    Returns:
        ``Path(path)``.

    Raises:
        OutputError: ``path`` is a directory, its parent is missing or not a directory, it
            exists (without ``overwrite``), or nothing can be written in its folder.
    """
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{flag} {p} is a directory; name a file to write")
    parent = p.parent
    if create_parent and not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"{flag} {p}: cannot create its folder {parent} ({exc.strerror or exc})"
            ) from exc
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise OutputError(f"{flag} {p}: folder {parent} {what}; create it or choose another path")
    if p.exists() or p.is_symlink():
        if not overwrite:
            raise OutputError(f"{flag} {p} exists; pass --force to overwrite it")
        if not p.is_symlink() and not os.access(p, os.W_OK):
            raise OutputError(f"{flag} {p} is read-only; choose another path or fix permissions")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{p.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise OutputError(
            f"{flag} {p}: folder {parent} is not writable ({exc.strerror or exc}); choose "
            "another path, free disk space or fix the permissions"
        ) from exc
    return p


def check_output_dir(path: str | os.PathLike[str], flag: str) -> Path:
    """Create the output folder ``path`` (with parents) and check that files can be written
    in it, before any work.

    Raises:
        OutputError: ``path`` is a file, cannot be created, or is not writable (the message
            names it, the flag and the reason).
    """
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise OutputError(
            f"output path {directory} exists and is not a directory; choose another {flag}"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create output directory {directory}: {exc.strerror or exc}; choose another "
            f"{flag} or fix the permissions"
        ) from exc
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".g2lstm-write-test-") as f:
            f.write(b"ok")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise OutputError(
            f"output directory {directory} is not writable: {exc.strerror or exc}; choose "
            f"another {flag}, free disk space or fix the permissions"
        ) from exc
    return directory


def publish_exclusive(tmp: str | os.PathLike[str], final: str | os.PathLike[str]) -> Path:
    """Move the complete file ``tmp`` to ``final`` only if ``final`` does not exist.

    Uses link-then-unlink, which is atomic and exclusive on POSIX: of two processes publishing
    to the same name, exactly one succeeds. ``tmp`` is removed in every case.

    Raises:
        OutputError: ``final`` exists (or appeared meanwhile); it is left untouched.
    """
    src, dst = Path(tmp), Path(final)
    try:
        try:
            os.link(src, dst, follow_symlinks=False)
        except FileExistsError:
            raise OutputError(f"{dst} exists; pass --force to overwrite it") from None
        except OSError as exc:  # no hard links here (some network or FUSE file systems)
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            try:
                os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666))
            except FileExistsError:
                raise OutputError(f"{dst} exists; pass --force to overwrite it") from None
            os.replace(src, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            src.unlink()
    return dst
