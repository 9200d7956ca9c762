"""Load any task's model for compression: a run or checkpoint directory, or a compressed file.

A sweep or ``g2lstm compress eval`` needs, for every model, the model, what it is (cell, seed,
hidden size ``H``) and its task's metric: a :class:`~g2lstm.tasks.LoadedRun`.
:func:`load_target` reads

- a run or checkpoint directory of any task (:func:`g2lstm.tasks.load`),
- a compressed file written by ``g2lstm compress`` (one ``.safetensors`` file).

A compressed file stores in its ``config`` metadata everything its task needs to rebuild the
model without the original checkpoint (the run's ``file_config``: ``{"kind", "config", ...,
"source"}``, see :meth:`g2lstm.tasks.Task.rebuild`); :func:`load_compressed_model` rebuilds it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from g2lstm.errors import CheckpointError, ConfigError
from g2lstm.tasks import (
    COMPRESSED,
    TASKS,
    LoadedRun,
    kind_of,
    load,
    task_of_checkpoint_kind,
)

from .format import compressed_layout, load_compressed

__all__ = [
    "CompressedModel",
    "Target",
    "checkpoint_kind",
    "load_compressed_model",
    "load_target",
]

#: One model to evaluate and compress (the name this module used before the task layer).
Target = LoadedRun
#: ``"lm"``, ``"mt"`` or ``"compressed"`` for a path (:func:`g2lstm.tasks.kind_of`).
checkpoint_kind = kind_of


@dataclass
class CompressedModel:
    """A model rebuilt from a compressed file.

    Attributes:
        kind: the task's name (``"lm"``, ``"mt"``).
        model: the dense model (eval mode), weights bit-identical to the compressed model.
        config: its task's run config.
        vocab: its task's vocabulary (LM: one; translation: ``(source, target)``).
        meta: the file's ``config`` metadata (kind, config, vocab or data, source).
        report: the saved :meth:`CompressionReport.to_dict` (blocks, sizes, errors).
        path: the file.
        run: the :class:`~g2lstm.tasks.LoadedRun` (what :func:`load_target` returns).
    """

    kind: str
    model: nn.Module
    config: Any
    vocab: Any
    meta: dict[str, Any]
    report: dict[str, Any]
    path: Path
    run: LoadedRun

    def translator(self) -> Any:
        """A :class:`g2lstm.mt.translate.Translator` around the model (translation only)."""
        if not hasattr(self.run.extra, "translate"):
            raise ConfigError(
                f"{self.path} holds a {self.run.task.title}; translator() is for translation"
            )
        return self.run.extra


def load_compressed_model(path: str | os.PathLike[str]) -> CompressedModel:
    """Rebuild the model stored in a compressed file written by ``g2lstm compress``.

    Raises:
        CheckpointError: not a compressed file, or one without the model config (written by
            :func:`save_compressed` without ``config``), or weights that do not fit it.
    """
    p = Path(path)
    shapes, meta = compressed_layout(p)  # the header only: nothing decoded yet
    info = meta.get("config")
    kinds = {task.checkpoint_kind for task in TASKS.values()}
    if not isinstance(info, dict) or info.get("kind") not in kinds or "config" not in info:
        raise CheckpointError(
            f"{p}: the file has no g2lstm model config in its metadata (it was saved by "
            "save_compressed without config=...); rebuild the model yourself and load "
            "load_compressed(path)[0] into it"
        )
    report = meta.get("report") or {}
    task = task_of_checkpoint_kind(info["kind"], p)
    # the configured sizes are checked against the file's before any weight is decoded
    run = task.rebuild(info, p, lambda: load_compressed(p)[0], shapes=shapes, report=report)
    return CompressedModel(run.kind, run.model, run.config, run.vocab, info, report, p, run)


def load_target(path: str | os.PathLike[str], device: str = "cpu") -> LoadedRun:
    """Load a run or checkpoint directory of any task, or a compressed file, for evaluation."""
    if kind_of(path) == COMPRESSED:
        return load_compressed_model(path).run
    return load(path, device=device)
