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

This module writes and reads the tensor files; the manifest (``meta.json``), the layout
constants and the pickle refusal are :mod:`g2lstm.train.manifest`.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from g2lstm.datasets.verify import sha256_file
from g2lstm.errors import CheckpointError
from g2lstm.train.atomic import atomic_directory
from g2lstm.train.manifest import (
    CHECKPOINT_FORMAT,
    FORMAT_NAME,
    META_FILE,
    MODEL_FILE,
    TRAINER_FILE,
    library_versions,
    pickle_error,
    previous_hint,
    read_manifest,
    sniff,
)
from g2lstm.train.state import flatten_state, unflatten_state
from g2lstm.train.tensor_header import read_header

__all__ = [
    "Checkpoint",
    "load_checkpoint",
    "read_model_shapes",
    "save_checkpoint",
]


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
    import safetensors.torch  # the ``train`` extra: ``g2lstm.train`` imports with torch alone

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
        "format": FORMAT_NAME,
        "format_version": CHECKPOINT_FORMAT,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "versions": library_versions(),
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


def _read_tensors(
    path: Path, entry: dict[str, Any], device: str, verify: bool
) -> dict[str, torch.Tensor]:
    import safetensors.torch
    from safetensors import SafetensorError

    if not path.is_file():
        raise CheckpointError(
            f"incomplete checkpoint: {path} is missing." + previous_hint(path.parent)
        )
    kind = sniff(path)
    if kind == "pickle":
        raise pickle_error(path)
    if verify:
        size, want = path.stat().st_size, entry.get("bytes")
        if want is not None and size != want:
            raise CheckpointError(
                f"{path} has {size} bytes but {want} were written: the file is truncated or "
                "corrupt." + previous_hint(path.parent)
            )
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            raise CheckpointError(
                f"{path} is corrupt: sha256 {digest} does not match {entry.get('sha256')} "
                f"recorded in {META_FILE}." + previous_hint(path.parent)
            )
    try:  # a typed error for any malformed header, before the library parses it
        stored = read_header(path).shapes
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}." + previous_hint(path.parent)) from None
    missing = sorted(t for t in entry.get("aliases", {}).values() if t not in stored)
    if missing:
        raise CheckpointError(
            f"{path}: {META_FILE} names aliases of tensors the file lacks ({missing[:3]}); "
            "the checkpoint is corrupt." + previous_hint(path.parent)
        )
    try:
        tensors = safetensors.torch.load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"cannot read {path} ({exc}); the file is probably truncated or corrupt."
            + previous_hint(path.parent)
        ) from exc
    for name, target in entry.get("aliases", {}).items():
        tensors[name] = tensors[target]
    return tensors


def read_model_shapes(directory: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every weight in a checkpoint's ``model.safetensors`` (tied aliases
    included), read from the manifest and the file header only: nothing is allocated.

    Raises:
        CheckpointError: the manifest or the file header is missing, malformed or corrupt.
    """
    path = Path(directory)
    entry = read_manifest(path).get("files", {}).get(MODEL_FILE)
    if entry is None:
        raise CheckpointError(f"{path / META_FILE} lists no {MODEL_FILE}; it is corrupt")
    try:
        shapes = read_header(path / MODEL_FILE).shapes
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}." + previous_hint(path)) from None
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
        elif sniff(path) == "pickle":
            raise pickle_error(path)
        else:
            raise CheckpointError(
                f"{path} is a file; a g2lstm checkpoint is a directory holding {MODEL_FILE}, "
                f"{TRAINER_FILE} and {META_FILE}"
            )
    record = read_manifest(path)
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
