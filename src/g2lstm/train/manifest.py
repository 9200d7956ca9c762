"""The manifest (``meta.json``) of a checkpoint directory, and the checks every read starts with.

Holds the layout constants (:data:`CHECKPOINT_FORMAT` and the three file names), the library
versions a save records, :func:`read_manifest` (format version, size cap and JSON types of
``meta.json`` checked), :func:`sniff` / :func:`pickle_error` (a pickle or ``torch.save`` file
is recognised by its first bytes and refused, never unpickled) and :func:`previous_hint` (the
sentence that points a corrupt checkpoint's error at the newest complete one before it).

Writing and loading the tensors is :mod:`g2lstm.train.checkpoint`.
"""

from __future__ import annotations

import json
import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

import g2lstm
from g2lstm.errors import CheckpointError
from g2lstm.nn.fast.autotune import cpu_model

__all__ = [
    "CHECKPOINT_FORMAT",
    "FORMAT_NAME",
    "MAX_META_BYTES",
    "META_FILE",
    "MODEL_FILE",
    "TRAINER_FILE",
    "library_versions",
    "pickle_error",
    "previous_hint",
    "read_manifest",
    "sniff",
]

#: Version of the on-disk layout; bumped on incompatible changes (older ones stay loadable).
CHECKPOINT_FORMAT = 1
MODEL_FILE = "model.safetensors"
TRAINER_FILE = "trainer.safetensors"
META_FILE = "meta.json"
#: ``meta.json``'s ``"format"``: what marks a g2lstm checkpoint manifest.
FORMAT_NAME = "g2lstm-checkpoint"
#: Largest ``meta.json`` read (a big vocabulary and BPE codes take a few MB).
MAX_META_BYTES = 256 * 1024 * 1024
_PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar"}
_STEP_DIR = re.compile(r"^step-(\d+)$")


def library_versions() -> dict[str, Any]:
    """The versions a checkpoint records: g2lstm, torch, safetensors, numpy, Python, CUDA,
    the CPU (:func:`~g2lstm.nn.fast.autotune.cpu_model`: float results differ in their last
    bits between CPU generations) and cuDNN and the device name when a GPU is available."""

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    g2 = version("g2lstm")
    if g2 is None:
        g2 = getattr(g2lstm, "__version__", "unknown")
    out: dict[str, Any] = {
        "g2lstm": g2,
        "torch": torch.__version__,
        "safetensors": version("safetensors"),
        "numpy": version("numpy"),
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "cpu": cpu_model(),
    }
    if torch.cuda.is_available():
        out["cudnn"] = torch.backends.cudnn.version()
        out["device"] = torch.cuda.get_device_name()
    return out


def sniff(path: Path) -> str:
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


def pickle_error(path: Path) -> CheckpointError:
    """The error that refuses a pickle / ``torch.save`` file (and says how to convert it)."""
    return CheckpointError(
        f"{path}: this looks like a pickle/torch.save file; g2lstm only loads safetensors "
        "checkpoints (a directory with model.safetensors, trainer.safetensors and meta.json) "
        "and never unpickles files, because unpickling can run arbitrary code. If you trust "
        "the file, convert it in a separate step: torch.load(path, weights_only=True), then "
        "g2lstm.train.save_checkpoint(...)."
    )


def previous_hint(path: Path) -> str:
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


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked ``meta.json`` record of a checkpoint directory, without loading tensors.

    Its ``meta`` is the caller's metadata (a dict). Raises CheckpointError as
    :func:`~g2lstm.train.checkpoint.load_checkpoint` does for a missing, corrupt or malformed
    manifest.
    """
    path = Path(directory)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise CheckpointError(
            f"incomplete checkpoint {path}: {META_FILE} is missing (interrupted save or copy?)."
            + previous_hint(path)
        )
    if sniff(meta_path) == "pickle":
        raise pickle_error(meta_path)
    if meta_path.stat().st_size > MAX_META_BYTES:
        raise CheckpointError(
            f"{meta_path} has {meta_path.stat().st_size:,} bytes, more than a manifest can "
            f"({MAX_META_BYTES:,}); the checkpoint is corrupt." + previous_hint(path)
        )
    try:
        record = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise CheckpointError(
            f"{meta_path} is not valid JSON ({why}); the checkpoint is corrupt."
            + previous_hint(path)
        ) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{meta_path} is not a g2lstm checkpoint manifest")
    version = record.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{meta_path}: invalid format_version {version!r}")
    if version > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has format version {version}, but this g2lstm "
            f"({library_versions()['g2lstm']}) reads versions up to {CHECKPOINT_FORMAT}; "
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
