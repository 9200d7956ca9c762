"""Downloading, unpacking and laying out a registered dataset (atomically, under a lock)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import logging
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from g2lstm.datasets.spec import _CHUNK, ENV_DATA, DatasetSpec, RemoteFile
from g2lstm.datasets.verify import sha256_file
from g2lstm.errors import ChecksumError, DataError, LimitError
from g2lstm.limits import env_limit

logger = logging.getLogger(__name__)

#: Environment variable that replaces a dataset's ``max_bytes`` cap (downloads, unpacked size).
ENV_MAX_DOWNLOAD = "G2LSTM_MAX_DOWNLOAD_BYTES"


def _hint(spec: DatasetSpec, root: Path) -> str:
    urls = " ".join(f.url for f in spec.files)
    return (
        f"Download it manually ({urls}) and lay the files out as "
        f"{root}/{{{','.join(spec.layout)}}}, or set {ENV_DATA} to a folder that holds "
        f"{spec.name}/."
    )


def _progress(total: int | None, desc: str, enabled: bool):  # type: ignore[no-untyped-def]
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional: no bar.
        return contextlib.nullcontext(None)
    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not enabled,
        leave=False,
    )


def _too_big(what: str, cap: int) -> LimitError:
    return LimitError(
        f"{what} exceeds the cap of {cap:,} bytes for this dataset (a corrupt or hostile "
        f"file?); nothing was kept. If it is genuine, set {ENV_MAX_DOWNLOAD} to a larger "
        "number of bytes"
    )


class _Budget:
    """Bytes still allowed to be written while unpacking one dataset."""

    def __init__(self, cap: int, name: str) -> None:
        self.cap, self.left, self.name = cap, cap, name

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise _too_big(f"unpacking {self.name}", self.cap)


def _download(
    url: str,
    dest: Path,
    sha256: str | None,
    *,
    progress: bool,
    timeout: float,
    hint: str,
    cap: int,
) -> str:
    """Stream ``url`` into ``dest`` (atomically) and return its sha256; no file is left
    behind on failure, nor when it is longer than ``cap`` bytes."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp, h, done = Path(tmp_name), hashlib.sha256(), False
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "g2lstm"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > cap:
                raise _too_big(f"the download of {url} ({total:,} bytes)", cap)
            n = 0
            with _progress(total, dest.name, progress) as bar:
                while chunk := resp.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    n += len(chunk)
                    if n > cap:
                        raise _too_big(f"the download of {url}", cap)
                    if bar is not None:
                        bar.update(len(chunk))
            if total is not None and n != total:
                raise DataError(f"download of {url} was cut short: {n} of {total} bytes. {hint}")
        got = h.hexdigest()
        if sha256 is not None and got != sha256:
            raise ChecksumError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}. The download "
                f"is corrupt or the file changed upstream; nothing was kept. {hint}"
            )
        os.replace(tmp, dest)
        done = True
        return got
    except DataError:
        raise
    except urllib.error.HTTPError as e:
        raise DataError(f"downloading {url} failed: HTTP {e.code} {e.reason}. {hint}") from e
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise DataError(f"downloading {url} failed: {e}. {hint}") from e
    finally:
        if not done:
            tmp.unlink(missing_ok=True)


def _member_key(name: str) -> str:
    """Archive member name without ``./`` parts (absolute or ``..`` names never match)."""
    return PurePosixPath(name).as_posix() if name else name


def _copy_member(src: IO[bytes], dest: Path, budget: _Budget) -> None:
    """Copy a member, counting the bytes actually decompressed (never the archive's claim)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "xb") as out:  # the staging folder is ours: every name is new
        while chunk := src.read(_CHUNK):
            budget.take(len(chunk))
            out.write(chunk)


def _extract(archive: Path, remote: RemoteFile, out: Path, budget: _Budget) -> None:
    """Write each wanted member of ``archive`` to ``out / destination``. Only members named
    in the spec are read, and only regular files: names from the archive never become paths.
    The decompressed bytes count against ``budget`` (a zip bomb stops at the cap)."""
    wanted = {_member_key(m): d for m, d in remote.members}
    found: set[str] = set()
    try:
        if remote.archive == "plain":
            with open(archive, "rb") as src:
                _copy_member(src, out / remote.members[0][1], budget)
            return
        if remote.archive == "gz":
            with gzip.open(archive, "rb") as src:
                _copy_member(src, out / remote.members[0][1], budget)  # type: ignore[arg-type]
            return
        if remote.archive == "tar":
            with tarfile.open(archive, "r:*") as tf:
                for member in tf:
                    key = _member_key(member.name)
                    if key in wanted and key not in found:
                        src = tf.extractfile(member) if member.isfile() else None
                        if src is None:
                            raise DataError(f"{remote.url}: member {member.name} is not a file")
                        _copy_member(src, out / wanted[key], budget)
                        found.add(key)
        else:
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    key = _member_key(info.filename)
                    if key in wanted and key not in found:
                        if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                            raise DataError(f"{remote.url}: member {info.filename} is not a file")
                        with zf.open(info) as src:
                            _copy_member(src, out / wanted[key], budget)
                        found.add(key)
    except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, EOFError, OSError) as e:
        raise DataError(f"cannot unpack {remote.url} ({remote.archive}): {e}") from e
    missing = sorted(set(wanted) - found)
    if missing:
        raise DataError(f"{remote.url}: archive has no member(s) {', '.join(missing)}")


def _lock(path: Path):  # type: ignore[no-untyped-def]
    try:
        from filelock import FileLock
    except ImportError:  # filelock is optional; concurrent downloads then race harmlessly.
        return contextlib.nullcontext()
    return FileLock(str(path))


def _download_dataset(spec: DatasetSpec, root: Path, *, progress: bool, timeout: float) -> None:
    """Download, unpack and check ``spec`` in a staging folder, then move it into ``root``."""
    hint = _hint(spec, root)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"cannot create data folder {root.parent}: {e}. Set {ENV_DATA} or "
            "--data-dir to a writable folder."
        ) from e
    with _lock(root.parent / f".{spec.name}.lock"):
        if all((root / rel).is_file() for rel in spec.layout):
            return  # another process finished the download while we waited.
        staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}.staging-", dir=root.parent))
        cap = env_limit(ENV_MAX_DOWNLOAD, spec.max_bytes)
        budget = _Budget(cap, spec.name)
        try:
            out, source = staging / "out", {}
            for i, remote in enumerate(spec.files):
                archive = staging / f"{i}-{remote.filename}"
                got = _download(
                    remote.url,
                    archive,
                    remote.sha256,
                    progress=progress,
                    timeout=timeout,
                    hint=hint,
                    cap=cap,
                )
                if remote.sha256 is None:
                    logger.warning(
                        "no pinned sha256 for %s; trusting this download (sha256 %s)",
                        remote.url,
                        got,
                    )
                _extract(archive, remote, out, budget)
                archive.unlink()
                source.update((dest, remote.url) for _, dest in remote.members)
            for rel in spec.layout:
                expected, got = spec.pinned(rel), sha256_file(out / rel)
                if expected is not None and got != expected:
                    raise ChecksumError(
                        f"checksum mismatch for {rel} of dataset {spec.name!r} (from "
                        f"{source[rel]}): expected sha256 {expected}, "
                        f"got {got}; nothing was kept. {hint}"
                    )
            for rel in spec.layout:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(out / rel, root / rel)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
