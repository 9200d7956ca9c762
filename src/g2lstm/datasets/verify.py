"""Hashing, sha256 stamps, layout checks and :func:`verify_dataset` (policy in the package doc)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from g2lstm.datasets.spec import (
    _CHUNK,
    _SHA_RE,
    CHECKSUM_FILE,
    DatasetSpec,
    Verify,
    is_writable_dir,
    user_cache_dir,
)
from g2lstm.errors import ChecksumError, ConfigError, DataError

__all__ = ["check_layout", "file_digests", "read_checksums", "sha256_file", "verify_dataset"]

logger = logging.getLogger(__name__)

_STAMP_FILE = ".g2lstm-stamps.json"
_RACY_NS = 2_000_000_000


# ----------------------------------------------------------------------------- hashing
def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_checksums(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum``-style file into ``{relative path: sha256}``."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2 and _SHA_RE.match(parts[0]):
            out[parts[1].lstrip("*")] = parts[0]
    return out


def _new_file_mode() -> int:
    """The mode ``open()`` gives a new file (``0o666`` less the umask), not mkstemp's 0600:
    stamp and ``SHA256SUMS`` files live in data folders that several users may share."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, path.stat().st_mode & 0o777 if path.exists() else _new_file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stamp_path(folder: Path) -> Path:
    if is_writable_dir(folder):
        return folder / _STAMP_FILE
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:24]
    return user_cache_dir() / "stamps" / f"{key}.json"


def file_digests(folder: Path, rels: Iterable[str], *, force: bool = False) -> dict[str, str]:
    """sha256 of ``folder / rel`` for each ``rel``, reusing recorded (size, mtime) stamps
    unless ``force``. New hashes are recorded where possible (never raises for that)."""
    stamp_file = _stamp_path(folder)
    try:
        stamps = json.loads(stamp_file.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        stamps = {}
    out, changed = {}, False
    for rel in rels:
        st = (folder / rel).stat()
        old = stamps.get(rel)
        if (
            not force
            and isinstance(old, dict)
            and old.get("size") == st.st_size
            and old.get("mtime_ns") == st.st_mtime_ns
        ):
            out[rel] = str(old["sha256"])
            continue
        out[rel] = sha256_file(folder / rel)
        if time.time_ns() - st.st_mtime_ns > _RACY_NS:
            stamps[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": out[rel]}
            changed = True
    if changed:
        with contextlib.suppress(OSError):
            stamp_file.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(stamp_file, json.dumps({"version": 1, "files": stamps}, indent=1))
    return out


# ----------------------------------------------------------------------------- layout / verify
def check_layout(folder: Path, layout: Iterable[str], *, what: str = "dataset") -> None:
    """``DataError`` naming ``folder`` and the missing files unless every file exists."""
    layout = tuple(layout)
    missing = [rel for rel in layout if not (folder / rel).is_file()]
    if missing:
        raise DataError(
            f"{what} folder {folder} is missing {', '.join(missing)}; expected layout: "
            f"{folder}/{{{','.join(layout)}}}"
        )


def verify_dataset(folder: Path, spec: DatasetSpec, verify: Verify = "cached") -> None:
    """Check ``folder`` against ``spec`` (see the :mod:`g2lstm.datasets` doc for ``verify``).

    Raises ``DataError`` for missing files and ``ChecksumError`` for a hash mismatch.
    """
    if verify not in ("none", "cached", "full"):
        raise ConfigError(f"verify must be 'none', 'cached' or 'full', got {verify!r}")
    check_layout(folder, spec.layout, what=f"dataset {spec.name!r}")
    if verify == "none":
        return
    sums = folder / CHECKSUM_FILE
    recorded = read_checksums(sums) if sums.is_file() else {}
    digests = file_digests(folder, spec.layout, force=verify == "full")
    for rel, got in digests.items():
        expected = spec.pinned(rel) or recorded.get(rel)
        if expected is not None and got != expected:
            raise ChecksumError(
                f"{folder / rel}: sha256 {got} but expected {expected} "
                f"({'pinned in the dataset spec' if spec.pinned(rel) else f'recorded in {sums}'}). "
                f"The file is corrupt or was changed; delete {folder} and resolve {spec.name!r} "
                "again to re-download it."
            )
    new = {rel: got for rel, got in digests.items() if rel not in recorded and not spec.pinned(rel)}
    if new and is_writable_dir(folder):
        recorded.update(new)
        _atomic_write_text(sums, "".join(f"{h}  {r}\n" for r, h in sorted(recorded.items())))
        logger.warning(
            "dataset %s: recorded sha256 of %s in %s (trust on first use)",
            spec.name,
            ", ".join(sorted(new)),
            sums,
        )
