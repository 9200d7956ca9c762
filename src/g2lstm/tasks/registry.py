"""The tasks, and the one neutral place that tells what a path holds and loads it.

:func:`kind_of` reads a run or checkpoint directory's ``meta.json`` (``meta.kind``) and names
its task; :func:`load` loads it with that task (:meth:`Task.load`). Compressed files are the
compression package's (:func:`g2lstm.compress.load_target` reads both).
"""

from __future__ import annotations

import os
from pathlib import Path

from g2lstm.errors import CheckpointError, ConfigError
from g2lstm.tasks.base import Task
from g2lstm.tasks.lm import LMTask
from g2lstm.tasks.loaded_run import LoadedRun
from g2lstm.tasks.mt import MTTask
from g2lstm.train import resolve_checkpoint
from g2lstm.train.manifest import read_manifest

__all__ = ["COMPRESSED", "TASKS", "get_task", "kind_of", "load", "task_of_checkpoint_kind"]

#: Every task, by name.
TASKS: dict[str, Task] = {task.name: task for task in (LMTask(), MTTask())}
#: What :func:`kind_of` answers for a file (a compressed model written by ``g2lstm compress``).
COMPRESSED = "compressed"


def get_task(name: str) -> Task:
    """The task called ``name`` (``"lm"``, ``"mt"``)."""
    if name not in TASKS:
        raise ConfigError(f"unknown model kind {name!r}; expected one of {', '.join(TASKS)}")
    return TASKS[name]


def task_of_checkpoint_kind(kind: object, where: str | os.PathLike[str]) -> Task:
    """The task whose checkpoints have ``meta["kind"] == kind``; CheckpointError if none."""
    for task in TASKS.values():
        if task.checkpoint_kind == kind:
            return task
    known = ", ".join(f"{t.title} ({t.checkpoint_kind!r})" for t in TASKS.values())
    raise CheckpointError(f"{where} is a {kind!r} checkpoint; g2lstm handles {known} checkpoints")


def kind_of(path: str | os.PathLike[str]) -> str:
    """The task name (``"lm"``, ``"mt"``) of a run or checkpoint directory, or
    :data:`COMPRESSED` for a file.

    Raises:
        CheckpointError: nothing there, or a checkpoint of no known task.
    """
    p = Path(path)
    if p.is_file():
        return COMPRESSED
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint, run directory or compressed file")
    ckpt = resolve_checkpoint(p)
    kind = read_manifest(ckpt)["meta"].get("kind")  # typed errors for a malformed manifest
    return task_of_checkpoint_kind(kind, ckpt).name


def load(path: str | os.PathLike[str], device: str = "cpu") -> LoadedRun:
    """Load a run directory (its best checkpoint) or a checkpoint directory of any task.

    Raises:
        CheckpointError: not a checkpoint directory (a compressed file: use
            :func:`g2lstm.compress.load_target`), or weights that do not fit its config.
    """
    kind = kind_of(path)
    if kind == COMPRESSED:
        raise CheckpointError(
            f"{path} is a file; pass a run or checkpoint directory (compressed files are read "
            "by g2lstm.compress.load_target)"
        )
    return TASKS[kind].load(path, device=device)
