"""Safe, verified, atomically written checkpoints (safetensors + JSON, never pickle).

A checkpoint is a directory::

    NAME/
      model.safetensors     # the model's state_dict (weights and buffers)
      trainer.safetensors   # every tensor of the trainer state (optimizer moments, ...)
      meta.json             # format version, library versions, sha256 of both files, the
                            # JSON skeleton of the trainer state, and the caller's ``meta``

It is written into ``NAME.tmp-XXXX/``, fsynced and renamed, so ``NAME/`` is either complete or
absent. :func:`load_checkpoint` checks the format version, the size and sha256 of every tensor
file and refuses pickle / ``torch.save`` files without ever unpickling them.

Tensors that share storage (tied embedding and softmax weights) are stored once and restored as
the same tensor object under every name.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from g2lstm.datasets.verify import sha256_file
from g2lstm.errors import CheckpointError
from g2lstm.train.atomic import atomic_directory
from g2lstm.train.state import flatten_state, unflatten_state
from g2lstm.train.tensor_header import read_header

__all__ = [
    "CHECKPOINT_FORMAT",
    "META_FILE",
    "MODEL_FILE",
    "TRAINER_FILE",
    "Checkpoint",
    "load_checkpoint",
    "read_manifest",
    "read_model_shapes",
    "save_checkpoint",
]

#: Version of the on-disk layout; bumped on incompatible changes (older ones stay loadable).
CHECKPOINT_FORMAT = 1
MODEL_FILE = "model.safetensors"
TRAINER_FILE = "trainer.safetensors"
META_FILE = "meta.json"
_FORMAT_NAME = "g2lstm-checkpoint"
#: Largest ``meta.json`` read (a big vocabulary and BPE codes take a few MB).
MAX_META_BYTES = 256 * 1024 * 1024
_PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar"}


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        path: the checkpoint directory.
        model_state: ``{name: tensor}`` for ``model.load_state_dict``.
        trainer_state: the nested trainer state as it was saved (optimizer state dict, ...).
        meta: the caller's JSON metadata (config, vocab, step, metrics, RNG state, ...).
        info: what g2lstm recorded: ``format_version``, ``created_utc``, ``versions``, ``files``.
    """

    path: Path
    model_state: dict[str, torch.Tensor]
    trainer_state: Any
    meta: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def step(self) -> int | None:
        """``meta["step"]`` if the caller stored one."""
        return self.meta.get("step")


def _library_versions() -> dict[str, Any]:
    from importlib import metadata

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    g2 = version("g2lstm")
    if g2 is None:
        import g2lstm

        g2 = getattr(g2lstm, "__version__", "unknown")
    out: dict[str, Any] = {
        "g2lstm": g2,
        "torch": torch.__version__,
        "safetensors": version("safetensors"),
        "numpy": version("numpy"),
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
    }
    if torch.cuda.is_available():
        out["cudnn"] = torch.backends.cudnn.version()
        out["device"] = torch.cuda.get_device_name()
    return out


def _dedupe(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Make tensors storable: CPU, contiguous, no shared storage. Returns (unique, aliases)."""
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    views: dict[tuple, str] = {}
    storages: set[tuple] = set()
    for name, tensor in tensors.items():
        t = tensor.detach()
        if t.numel() == 0:  # empty tensors have no meaningful storage
            unique[name] = t.to("cpu").contiguous()
            continue
        storage = (t.device, t.untyped_storage().data_ptr())
        view = (*storage, t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
        if view in views:  # the very same view (tied weights): store once, restore as one
            aliases[name] = views[view]
            continue
        views[view] = name
        out = t.to("cpu").contiguous()
        if storage in storages:  # another view of memory already stored: keep a copy
            out = out.clone()
        storages.add(storage)
        unique[name] = out
    return unique, aliases


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    import safetensors.torch

    unique, aliases = _dedupe(tensors)
    meta = {"format": "pt", "g2lstm_checkpoint_format": str(CHECKPOINT_FORMAT)}
    safetensors.torch.save_file(unique, str(path), metadata=meta)
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size, "aliases": aliases}


def save_checkpoint(
    directory: str | os.PathLike[str],
    *,
    model_state: dict[str, torch.Tensor],
    trainer_state: Any = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory atomically; return its path.

    Args:
        directory: the checkpoint directory to create (replaced whole if it exists); its
            parent must exist.
        model_state: ``model.state_dict()`` (save the uncompiled, un-DDP-wrapped module).
        trainer_state: nested dicts/lists/tuples of tensors and JSON scalars, e.g.
            ``{"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}``.
        meta: JSON-serialisable metadata: model config, vocabulary, step/epoch, metrics,
            :func:`~g2lstm.train.rng.capture_rng_state` output, ...

    Raises:
        CheckpointError: ``meta`` is not JSON-serialisable, the trainer state holds an
            unsupported type, or the disk is full (the previous checkpoint is kept).
    """
    final = Path(directory)
    meta = dict(meta or {})
    bad = [k for k, t in model_state.items() if not (isinstance(k, str) and torch.is_tensor(t))]
    if bad:
        raise CheckpointError(
            f"cannot save checkpoint {final}: model_state must map str names to tensors "
            f"(as model.state_dict() does); offending keys: {bad[:5]}"
        )
    trainer_tensors, structure = flatten_state(trainer_state)
    record: dict[str, Any] = {
        "format": _FORMAT_NAME,
        "format_version": CHECKPOINT_FORMAT,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "versions": _library_versions(),
        "meta": meta,
        "files": {},
        "trainer_structure": structure,
    }
    try:
        json.dumps(record)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"cannot save checkpoint {final}: meta must be JSON-serialisable ({exc}); store "
            "tensors in trainer_state instead"
        ) from exc
    with atomic_directory(final) as tmp:
        record["files"][MODEL_FILE] = _write_tensors(tmp / MODEL_FILE, model_state)
        record["files"][TRAINER_FILE] = _write_tensors(tmp / TRAINER_FILE, trainer_tensors)
        # meta.json last: the manifest that makes the checkpoint complete
        (tmp / META_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return final


def _sniff(path: Path) -> str:
    """Classify a file by its first bytes: 'safetensors', 'pickle', 'json' or 'unknown'."""
    with open(path, "rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    if head[:4] == b"PK\x03\x04" or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5):
        return "pickle"  # torch.save zip archive, or a pickle of protocol 2..5
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8:
        return "safetensors"
    if head[:1] == b"{":
        return "json"
    return "pickle" if path.suffix.lower() in _PICKLE_SUFFIXES else "unknown"


def _pickle_error(path: Path) -> CheckpointError:
    return CheckpointError(
        f"{path}: this looks like a pickle/torch.save file; g2lstm only loads safetensors "
        "checkpoints (a directory with model.safetensors, trainer.safetensors and meta.json) "
        "and never unpickles files, because unpickling can run arbitrary code. If you trust "
        "the file, convert it in a separate step: torch.load(path, weights_only=True), then "
        "g2lstm.train.save_checkpoint(...)."
    )


_STEP_DIR = re.compile(r"^step-(\d+)$")


def _previous_hint(path: Path) -> str:
    """Point at the newest complete sibling checkpoint older than ``path``, if any."""
    match = _STEP_DIR.match(path.name)
    if not match or not path.parent.is_dir():
        return ""
    older = [
        p
        for p in path.parent.iterdir()
        if (m := _STEP_DIR.match(p.name))
        and int(m.group(1)) < int(match.group(1))
        and (p / META_FILE).is_file()
    ]
    if not older:
        return ""
    prev = max(older, key=lambda p: int(_STEP_DIR.match(p.name).group(1)))  # type: ignore[union-attr]
    return f" The previous checkpoint is {prev}."


def _read_meta(path: Path) -> dict[str, Any]:
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise CheckpointError(
            f"incomplete checkpoint {path}: {META_FILE} is missing (interrupted save or copy?)."
            + _previous_hint(path)
        )
    if _sniff(meta_path) == "pickle":
        raise _pickle_error(meta_path)
    if meta_path.stat().st_size > MAX_META_BYTES:
        raise CheckpointError(
            f"{meta_path} has {meta_path.stat().st_size:,} bytes, more than a manifest can "
            f"({MAX_META_BYTES:,}); the checkpoint is corrupt." + _previous_hint(path)
        )
    try:
        record = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise CheckpointError(
            f"{meta_path} is not valid JSON ({why}); the checkpoint is corrupt."
            + _previous_hint(path)
        ) from None
    if not isinstance(record, dict) or record.get("format") != _FORMAT_NAME:
        raise CheckpointError(f"{meta_path} is not a g2lstm checkpoint manifest")
    version = record.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{meta_path}: invalid format_version {version!r}")
    if version > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has format version {version}, but this g2lstm "
            f"({_library_versions()['g2lstm']}) reads versions up to {CHECKPOINT_FORMAT}; "
            "upgrade g2lstm (pip install -U g2lstm) to load it."
        )
    _check_manifest(meta_path, record)
    return record


def _check_manifest(meta_path: Path, record: dict[str, Any]) -> None:
    """Refuse a manifest whose fields have the wrong JSON types (a tampered or foreign file)."""
    problem = None
    files = record.get("files", {})
    if not isinstance(record.get("meta", {}), dict):
        problem = "'meta' must be an object"
    elif not isinstance(files, dict):
        problem = "'files' must be an object"
    for name, entry in files.items() if isinstance(files, dict) else ():
        aliases = entry.get("aliases", {}) if isinstance(entry, dict) else None
        if not isinstance(entry, dict):
            problem = f"files[{name!r}] must be an object"
        elif not isinstance(entry.get("sha256", ""), str) or not isinstance(
            entry.get("bytes", 0), int
        ):
            problem = f"files[{name!r}] has a malformed sha256 or bytes"
        elif not isinstance(aliases, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
        ):
            problem = f"files[{name!r}].aliases must map names to names"
        if problem:
            break
    if problem:
        raise CheckpointError(f"{meta_path}: {problem}; the checkpoint is corrupt")


def _read_tensors(
    path: Path, entry: dict[str, Any], device: str, verify: bool
) -> dict[str, torch.Tensor]:
    import safetensors.torch
    from safetensors import SafetensorError

    if not path.is_file():
        raise CheckpointError(
            f"incomplete checkpoint: {path} is missing." + _previous_hint(path.parent)
        )
    kind = _sniff(path)
    if kind == "pickle":
        raise _pickle_error(path)
    if verify:
        size, want = path.stat().st_size, entry.get("bytes")
        if want is not None and size != want:
            raise CheckpointError(
                f"{path} has {size} bytes but {want} were written: the file is truncated or "
                "corrupt." + _previous_hint(path.parent)
            )
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            raise CheckpointError(
                f"{path} is corrupt: sha256 {digest} does not match {entry.get('sha256')} "
                f"recorded in {META_FILE}." + _previous_hint(path.parent)
            )
    try:  # a typed error for any malformed header, before the library parses it
        stored = read_header(path).shapes
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}." + _previous_hint(path.parent)) from None
    missing = sorted(t for t in entry.get("aliases", {}).values() if t not in stored)
    if missing:
        raise CheckpointError(
            f"{path}: {META_FILE} names aliases of tensors the file lacks ({missing[:3]}); "
            "the checkpoint is corrupt." + _previous_hint(path.parent)
        )
    try:
        tensors = safetensors.torch.load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"cannot read {path} ({exc}); the file is probably truncated or corrupt."
            + _previous_hint(path.parent)
        ) from exc
    for name, target in entry.get("aliases", {}).items():
        tensors[name] = tensors[target]
    return tensors


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked ``meta.json`` record of a checkpoint directory, without loading tensors.

    Its ``meta`` is the caller's metadata (a dict). Raises CheckpointError as
    :func:`load_checkpoint` does for a missing, corrupt or malformed manifest.
    """
    return _read_meta(Path(directory))


def read_model_shapes(directory: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every weight in a checkpoint's ``model.safetensors`` (tied aliases
    included), read from the manifest and the file header only: nothing is allocated.

    Raises:
        CheckpointError: the manifest or the file header is missing, malformed or corrupt.
    """
    path = Path(directory)
    entry = _read_meta(path).get("files", {}).get(MODEL_FILE)
    if entry is None:
        raise CheckpointError(f"{path / META_FILE} lists no {MODEL_FILE}; it is corrupt")
    try:
        shapes = read_header(path / MODEL_FILE).shapes
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}." + _previous_hint(path)) from None
    for name, target in entry.get("aliases", {}).items():
        if target not in shapes:
            raise CheckpointError(f"{path / MODEL_FILE}: alias {name!r} of a missing tensor")
        shapes[name] = shapes[target]
    return shapes


def load_checkpoint(
    directory: str | os.PathLike[str],
    *,
    map_location: str | torch.device = "cpu",
    verify: bool = True,
) -> Checkpoint:
    """Load and verify a checkpoint written by :func:`save_checkpoint`.

    Args:
        directory: the checkpoint directory (a path to one of its files is accepted too).
        map_location: device for all tensors (``"cpu"``, ``"cuda:0"``, ...).
        verify: check the size and sha256 of every tensor file before parsing it.

    Raises:
        CheckpointError: no checkpoint at ``directory``; a pickle / ``torch.save`` file
            (refused without unpickling); a newer format version; a missing, truncated or
            corrupt file (named in the message, with the previous checkpoint if one exists).
    """
    path = Path(directory)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if path.is_file():
        if path.name in (MODEL_FILE, TRAINER_FILE, META_FILE):
            path = path.parent
        elif _sniff(path) == "pickle":
            raise _pickle_error(path)
        else:
            raise CheckpointError(
                f"{path} is a file; a g2lstm checkpoint is a directory holding {MODEL_FILE}, "
                f"{TRAINER_FILE} and {META_FILE}"
            )
    record = _read_meta(path)
    files = record.get("files", {})
    device = str(map_location)
    if MODEL_FILE not in files:
        raise CheckpointError(
            f"{path / META_FILE} lists no {MODEL_FILE}; the checkpoint is corrupt"
        )
    model_state = _read_tensors(path / MODEL_FILE, files[MODEL_FILE], device, verify)
    trainer_tensors = (
        _read_tensors(path / TRAINER_FILE, files[TRAINER_FILE], device, verify)
        if TRAINER_FILE in files
        else {}
    )
    try:
        trainer_state = unflatten_state(trainer_tensors, record.get("trainer_structure"))
    except (TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise CheckpointError(
            f"{path / META_FILE}: malformed trainer_structure ({type(exc).__name__}); the "
            "checkpoint is corrupt"
        ) from None
    info = {
        k: record[k] for k in ("format_version", "created_utc", "versions", "files") if k in record
    }
    return Checkpoint(path, model_state, trainer_state, dict(record.get("meta", {})), info)
