"""``LoadedRun``: a trained model of some task with what is needed to evaluate, compress and
rebuild it, as :meth:`Task.load <g2lstm.tasks.base.Task.load>` and
:meth:`Task.rebuild <g2lstm.tasks.base.Task.rebuild>` return it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:  # the Task builds LoadedRuns (Task.run_of): a runtime import would be a cycle
    from g2lstm.tasks.base import Task

__all__ = ["LoadedRun"]


@dataclass
class LoadedRun:
    """A trained model of some task, with what is needed to evaluate, compress and rebuild it.

    Attributes:
        path: the checkpoint directory or compressed file it was read from.
        task: the :class:`Task` it belongs to.
        model: the model, in eval mode.
        config: its run config (the task's config class).
        cell: ``"lstm"``, ``"sharpened"`` or ``"g2"``.
        seed: the training seed.
        hidden: ``H``, the hidden size of its LSTM layers.
        file_config: JSON-able metadata that lets :meth:`Task.rebuild` rebuild the model (what
            a compressed file stores): ``{"kind", "config", ..., "source"}``.
        vocab: the task's vocabulary (LM: one; translation: ``(source, target)``).
        extra: the task's handle on the model for scoring (LM: the vocabulary; translation:
            a :class:`~g2lstm.mt.translate.Translator`).
        report: the saved compression report when ``path`` is a compressed file, else None.
    """

    path: Path
    task: Task
    model: nn.Module
    config: Any
    cell: str
    seed: int
    hidden: int
    file_config: dict[str, Any]
    vocab: Any = None
    extra: Any = None
    report: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        """The task's name (``"lm"``, ``"mt"``)."""
        return self.task.name
