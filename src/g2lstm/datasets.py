"""Datasets by name: where they live, how to download, unpack, lay out and verify them.

A dataset is a folder. Language-model corpora hold ``train.txt``, ``valid.txt`` and
``test.txt``; ``multi30k`` holds ``{raw,tok}/{train,val,test2016}.{de,en}``. Names are looked
up under :func:`data_dir` (``--data-dir``, else ``$G2LSTM_DATA``, else the user cache), so
``G2LSTM_DATA=/path/to/shared/data`` resolves ``ptb`` and ``multi30k`` without downloading.

Verification policy (``verify=``):

- ``"cached"`` (default): every file is hashed once and its sha256 is recorded with its size
  and mtime in a stamp file (``.g2lstm-stamps.json`` in the folder, or under the user cache
  when the folder is read-only). Later resolves re-hash only files whose size or mtime changed,
  so they cost a few ``stat`` calls. Files younger than 2 s are never stamped (a same-size
  rewrite within the file system's timestamp granularity could otherwise go unnoticed).
- ``"full"``: re-hash every file (the CLI's ``--verify``).
- ``"none"``: only check that the files exist.

Hashes are compared with the values pinned in the :class:`DatasetSpec`; where none is pinned
(WikiText), the first download is trusted and its hashes are written to ``SHA256SUMS`` beside
the data (``sha256sum -c SHA256SUMS`` format), which later resolves are checked against.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from g2lstm.errors import ChecksumError, ConfigError, DataError

__all__ = [
    "CHECKSUM_FILE",
    "ENV_DATA",
    "LM_LAYOUT",
    "DatasetSpec",
    "RemoteFile",
    "available_datasets",
    "check_layout",
    "data_dir",
    "file_digests",
    "get_dataset_spec",
    "is_writable_dir",
    "register_dataset",
    "resolve_dataset",
    "sha256_file",
    "user_cache_dir",
    "verify_dataset",
]

logger = logging.getLogger(__name__)

ENV_DATA = "G2LSTM_DATA"
CHECKSUM_FILE = "SHA256SUMS"
LM_LAYOUT = ("train.txt", "valid.txt", "test.txt")
_STAMP_FILE = ".g2lstm-stamps.json"
_RACY_NS = 2_000_000_000
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


_default_data_dir = data_dir  # ``resolve_dataset`` has a parameter of the same name.


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
    known and the download is trusted (the laid-out files are still checked, see module doc).
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
    """

    name: str
    kind: Literal["lm", "mt"]
    files: tuple[RemoteFile, ...] = ()
    sha256: tuple[tuple[str, str], ...] = ()
    layout: tuple[str, ...] = ()
    description: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", self.name):
            raise ConfigError(f"dataset name {self.name!r} must be letters, digits, '.', '_', '-'")
        if self.kind not in ("lm", "mt"):
            raise ConfigError(f"dataset {self.name}: kind must be 'lm' or 'mt', got {self.kind!r}")
        layout = self.layout or tuple(d for f in self.files for _, d in f.members)
        if not layout:
            raise ConfigError(f"dataset {self.name}: give files or an explicit layout")
        object.__setattr__(self, "layout", tuple(_check_relpath(p, "layout path") for p in layout))
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


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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
    """Check ``folder`` against ``spec`` (see the module doc for ``verify``).

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


# ----------------------------------------------------------------------------- download
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


def _download(
    url: str, dest: Path, sha256: str | None, *, progress: bool, timeout: float, hint: str
) -> str:
    """Stream ``url`` into ``dest`` (atomically) and return its sha256; no file is left
    behind on failure."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp, h, done = Path(tmp_name), hashlib.sha256(), False
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "g2lstm"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            n = 0
            with _progress(total, dest.name, progress) as bar:
                while chunk := resp.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    n += len(chunk)
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


def _copy_member(src: IO[bytes], dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        shutil.copyfileobj(src, out, _CHUNK)


def _extract(archive: Path, remote: RemoteFile, out: Path) -> None:
    """Write each wanted member of ``archive`` to ``out / destination``. Only members named
    in the spec are read, and only regular files: names from the archive never become paths."""
    wanted = {_member_key(m): d for m, d in remote.members}
    found: set[str] = set()
    try:
        if remote.archive == "plain":
            with open(archive, "rb") as src:
                _copy_member(src, out / remote.members[0][1])
            return
        if remote.archive == "gz":
            with gzip.open(archive, "rb") as src:
                _copy_member(src, out / remote.members[0][1])  # type: ignore[arg-type]
            return
        if remote.archive == "tar":
            with tarfile.open(archive, "r:*") as tf:
                for member in tf:
                    key = _member_key(member.name)
                    if key in wanted and key not in found:
                        src = tf.extractfile(member) if member.isfile() else None
                        if src is None:
                            raise DataError(f"{remote.url}: member {member.name} is not a file")
                        _copy_member(src, out / wanted[key])
                        found.add(key)
        else:
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    key = _member_key(info.filename)
                    if key in wanted and key not in found:
                        if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                            raise DataError(f"{remote.url}: member {info.filename} is not a file")
                        with zf.open(info) as src:
                            _copy_member(src, out / wanted[key])
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
                )
                if remote.sha256 is None:
                    logger.warning(
                        "no pinned sha256 for %s; trusting this download (sha256 %s)",
                        remote.url,
                        got,
                    )
                _extract(archive, remote, out)
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


def resolve_dataset(
    name_or_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
    *,
    registry: Mapping[str, DatasetSpec] | None = None,
    verify: Verify = "cached",
    kind: Literal["lm", "mt"] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Return the folder of a dataset, downloading it if needed.

    ``name_or_path`` is an existing folder (returned as is; with ``kind="lm"`` it must hold
    :data:`LM_LAYOUT`) or a registered name, looked up as ``data_dir(data_dir) / name`` and
    checked per ``verify`` (module doc). A missing dataset is downloaded when ``download``,
    else ``DataError`` says how to get it. ``registry`` replaces the default registry.
    """
    if verify not in ("none", "cached", "full"):
        raise ConfigError(f"verify must be 'none', 'cached' or 'full', got {verify!r}")
    as_path = Path(name_or_path).expanduser()
    if as_path.is_dir():
        if kind == "lm":
            check_layout(as_path, LM_LAYOUT, what="language-model data")
        return as_path
    name = str(name_or_path)
    reg = _REGISTRY if registry is None else registry
    if name not in reg and (os.sep in name or "/" in name or name.startswith((".", "~"))):
        raise DataError(
            f"dataset folder {as_path} does not exist; known dataset names: "
            f"{', '.join(available_datasets(reg))}"
        )
    spec = get_dataset_spec(name, reg)
    if kind is not None and spec.kind != kind:
        raise ConfigError(f"dataset {name!r} is a {spec.kind} dataset, but a {kind} one is needed")
    root = _default_data_dir(data_dir) / spec.name
    if not all((root / rel).is_file() for rel in spec.layout):
        if not spec.files:
            raise DataError(
                f"dataset {name!r} is not under {root} and cannot be downloaded "
                f"automatically: {spec.note}"
            )
        if not download:
            raise DataError(
                f"dataset {name!r} is not under {root} (expected "
                f"{root}/{{{','.join(spec.layout)}}}) and download=False. Allow "
                f"the download (CLI: --download) or: {_hint(spec, root)}"
            )
        _download_dataset(spec, root, progress=progress, timeout=timeout)
    verify_dataset(root, spec, verify)
    return root


# ----------------------------------------------------------------------------- built-in specs
def _lm_archive(
    name: str,
    url: str,
    archive: Literal["tar", "zip"],
    prefix: str,
    pattern: str,
    description: str,
    sha256: Mapping[str, str] | None = None,
    note: str = "",
) -> DatasetSpec:
    members = tuple(
        (prefix + pattern.format(split), f"{split}.txt") for split in ("train", "valid", "test")
    )
    remote = RemoteFile(url, None, members, archive)
    return DatasetSpec(
        name, "lm", (remote,), tuple((sha256 or {}).items()), description=description, note=note
    )


def _builtin_specs() -> Iterator[DatasetSpec]:
    # Archive sha256s are not pinned (not known here); the extracted files are pinned for PTB
    # (values of shared/data/README.md); WikiText is trusted on first use (SHA256SUMS).
    yield _lm_archive(
        "ptb",
        "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",
        "tar",
        "./simple-examples/data/",
        "ptb.{}.txt",
        "Penn Treebank, Mikolov's preprocessed version (10k vocab, 929,589/73,760/82,430 tokens)",
        {
            "train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
            "valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
            "test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
        },
    )
    for wt in ("wikitext-2", "wikitext-103"):
        yield _lm_archive(
            wt,
            f"https://s3.amazonaws.com/research.metamind.io/wikitext/{wt}-v1.zip",
            "zip",
            f"{wt}/",
            "wiki.{}.tokens",
            f"WikiText ({wt}, tokenised, with <unk>)",
            note="archive and file sha256 unknown: trusted on first download, then recorded",
        )
    # Pinned to the commit whose files the sha256 values below describe (see README).
    base = (
        "https://raw.githubusercontent.com/multi30k/dataset/"
        "a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1"
    )
    splits = {"train": "train", "val": "val", "test2016": "test_2016_flickr"}
    files, sha = [], dict(_MULTI30K_SHA256)
    for ours, theirs in splits.items():
        for lang in ("de", "en"):
            files.append(
                RemoteFile(
                    f"{base}/raw/{theirs}.{lang}.gz", None, (("", f"raw/{ours}.{lang}"),), "gz"
                )
            )
            files.append(
                RemoteFile(
                    f"{base}/tok/{theirs}.lc.norm.tok.{lang}",
                    None,
                    (("", f"tok/{ours}.{lang}"),),
                    "plain",
                )
            )
    yield DatasetSpec(
        "multi30k",
        "mt",
        tuple(files),
        tuple(sha.items()),
        description="Multi30k task 1 De-En: raw (cased) and tok (lc.norm.tok)",
    )
    yield DatasetSpec(
        "iwslt14",
        "mt",
        (),
        layout=tuple(f"{s}.{lang}" for s in ("train", "valid", "test") for lang in ("de", "en")),
        description="IWSLT'14 De-En as produced by fairseq's prepare-iwslt14.sh",
        note=(
            "it is built from the TED de-en.tgz by the machine-translation data pipeline "
            "(Moses tokeniser, clean-corpus-n, lowercase, joint BPE); run that preparation "
            "step and place its output files train/valid/test.{de,en} under the data folder's "
            "iwslt14/ (licence: CC BY-NC-ND 4.0)"
        ),
    )


_MULTI30K_SHA256 = {
    "raw/test2016.de": "4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16",
    "raw/test2016.en": "399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182",
    "raw/train.de": "2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72",
    "raw/train.en": "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
    "raw/val.de": "660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660",
    "raw/val.en": "1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
    "tok/test2016.de": "c6a33d39d48f9f510de147651316cd9d918e09ad0219df734a2f16b6baccacc4",
    "tok/test2016.en": "5b7f32627cf99eced828311b955dae9800bb52bc8b91cf8b6526829e605b29d2",
    "tok/train.de": "cb5a23529b65ec2061f1dc446192a9c37382b63cc75f81a0be59d34894b3a505",
    "tok/train.en": "08925f8e0572bcd5a006702fc5fe20e2d77c6917d4eebd576fc20de6693c2119",
    "tok/val.de": "97232bd273eceb7207f689527386a97e4be2616b18ada47576bdaf96c8ae1f00",
    "tok/val.en": "46573ce391ae227f1c72f873392436a20ef18e0a6d518098cfbd70b77c8572ec",
}

for _spec in _builtin_specs():
    register_dataset(_spec)
