"""Dataset descriptions: constants, :class:`RemoteFile`, :class:`DatasetSpec`, the data folder
and the default registry of named datasets."""

from __future__ import annotations

import os
import re
import stat
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from g2lstm.errors import ConfigError

__all__ = [
    "CHECKSUM_FILE",
    "ENV_DATA",
    "LM_LAYOUT",
    "DatasetSpec",
    "RemoteFile",
    "Verify",
    "available_datasets",
    "data_dir",
    "get_dataset_spec",
    "is_writable_dir",
    "register_dataset",
    "user_cache_dir",
]

ENV_DATA = "G2LSTM_DATA"
CHECKSUM_FILE = "SHA256SUMS"
LM_LAYOUT = ("train.txt", "valid.txt", "test.txt")
_CHUNK = 1 << 20
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
Verify = Literal["none", "cached", "full"]


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/g2lstm``, else ``~/.cache/g2lstm`` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "g2lstm"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The root holding one folder per dataset: ``explicit``, else ``$G2LSTM_DATA``, else
    ``user_cache_dir() / "data"``."""
    chosen = explicit if explicit not in (None, "") else os.environ.get(ENV_DATA)
    return Path(chosen).expanduser() if chosen else user_cache_dir() / "data"


def is_writable_dir(path: Path) -> bool:
    """Whether we may write into ``path``. A folder without any write bit counts as read-only
    even for root, so a shared read-only copy is never written into by a privileged user."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISDIR(mode) and bool(mode & 0o222) and os.access(path, os.W_OK | os.X_OK)


def _check_relpath(rel: str, what: str) -> str:
    """Reject absolute paths and ``..`` parts; return the name without leading ``./``."""
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not pure.parts or ":" in pure.parts[0]:
        raise ConfigError(f"{what} {rel!r} must be a relative path without '..'")
    return pure.as_posix()


@dataclass(frozen=True)
class RemoteFile:
    """One file to download.

    ``members`` maps each wanted archive member (``./`` prefixes are ignored) to its
    destination inside the dataset folder. For ``archive="gz"`` or ``"plain"`` give one pair
    whose member is ``""``. ``sha256`` is of the downloaded bytes; ``None`` means it is not
    known and the download is trusted (the laid-out files are still checked, see the
    :mod:`g2lstm.datasets` doc).
    """

    url: str
    sha256: str | None
    members: tuple[tuple[str, str], ...]
    archive: Literal["tar", "zip", "gz", "plain"] = "plain"

    def __post_init__(self) -> None:
        if self.archive not in ("tar", "zip", "gz", "plain"):
            raise ConfigError(f"RemoteFile.archive: tar, zip, gz or plain, not {self.archive!r}")
        if self.sha256 is not None and not _SHA_RE.match(self.sha256):
            raise ConfigError(f"RemoteFile.sha256 for {self.url} must be 64 lowercase hex digits")
        if not self.members:
            raise ConfigError(f"RemoteFile {self.url} needs at least one (member, destination)")
        single = self.archive in ("gz", "plain")
        if any(bool(m) == single for m, _ in self.members):
            raise ConfigError(
                f"RemoteFile {self.url}: members of a {self.archive} file must "
                + ("be ''" if single else "name an archive member")
            )
        if single and len(self.members) != 1:
            raise ConfigError(f"RemoteFile {self.url}: a {self.archive} file has one member")
        members = tuple(
            (_check_relpath(m, "archive member") if m else "", _check_relpath(d, "destination"))
            for m, d in self.members
        )
        object.__setattr__(self, "members", members)

    @property
    def filename(self) -> str:
        """The last part of the URL path (used for the temporary download)."""
        return PurePosixPath(urllib.request.urlparse(self.url).path).name or "download"


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its files, layout and the sha256 of each laid-out file.

    ``layout`` defaults to every destination of ``files``; ``sha256`` maps layout paths to
    pinned hashes (files not listed are trusted on first use and recorded in ``SHA256SUMS``).
    ``max_bytes`` caps each download and the total size of the unpacked files (an archive
    that expands beyond it is refused); ``$G2LSTM_MAX_DOWNLOAD_BYTES`` overrides it.
    """

    name: str
    kind: Literal["lm", "mt"]
    files: tuple[RemoteFile, ...] = ()
    sha256: tuple[tuple[str, str], ...] = ()
    layout: tuple[str, ...] = ()
    description: str = ""
    note: str = ""
    max_bytes: int = 1 << 30

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", self.name):
            raise ConfigError(f"dataset name {self.name!r} must be letters, digits, '.', '_', '-'")
        if self.kind not in ("lm", "mt"):
            raise ConfigError(f"dataset {self.name}: kind must be 'lm' or 'mt', got {self.kind!r}")
        layout = self.layout or tuple(d for f in self.files for _, d in f.members)
        if not layout:
            raise ConfigError(f"dataset {self.name}: give files or an explicit layout")
        object.__setattr__(self, "layout", tuple(_check_relpath(p, "layout path") for p in layout))
        if (
            isinstance(self.max_bytes, bool)
            or not isinstance(self.max_bytes, int)
            or (self.max_bytes < 1)
        ):
            raise ConfigError(f"dataset {self.name}: max_bytes must be a positive integer")
        for rel, digest in self.sha256:
            if rel not in self.layout or not _SHA_RE.match(digest):
                raise ConfigError(f"dataset {self.name}: bad pinned sha256 entry for {rel!r}")

    def pinned(self, rel: str) -> str | None:
        """The pinned sha256 of laid-out file ``rel``, or ``None``."""
        return dict(self.sha256).get(rel)


# ----------------------------------------------------------------------------- registry
_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec, *, overwrite: bool = False) -> DatasetSpec:
    """Add ``spec`` to the default registry (``ConfigError`` if the name is taken)."""
    if spec.name in _REGISTRY and not overwrite:
        raise ConfigError(f"dataset {spec.name!r} is already registered; pass overwrite=True")
    _REGISTRY[spec.name] = spec
    return spec


def available_datasets(registry: Mapping[str, DatasetSpec] | None = None) -> list[str]:
    """Sorted names of the registered datasets."""
    return sorted(_REGISTRY if registry is None else registry)


def get_dataset_spec(name: str, registry: Mapping[str, DatasetSpec] | None = None) -> DatasetSpec:
    """The spec called ``name``; ``ConfigError`` listing the known names otherwise."""
    reg = _REGISTRY if registry is None else registry
    if name not in reg:
        known = ", ".join(available_datasets(reg)) or "(none)"
        raise ConfigError(
            f"unknown dataset {name!r}; known datasets: {known}. "
            "Or pass the path of an existing dataset folder."
        )
    return reg[name]
