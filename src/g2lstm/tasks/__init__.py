"""The task layer: language modelling and translation behind one interface.

Higher layers (:mod:`g2lstm.compress`, :mod:`g2lstm.analysis`, :mod:`g2lstm.reproduce`) import
tasks from here only::

    from g2lstm.tasks import kind_of, load

    run = load("runs/ptb-g2")                 # any task's run or checkpoint directory
    evaluator = run.task.evaluator(split="test")
    print(run.kind, run.cell, evaluator.metric, evaluator.score(run, run.model))

See :mod:`g2lstm.tasks.base` for the interface (its data types are in
:mod:`~g2lstm.tasks.loaded_run`, :mod:`~g2lstm.tasks.evaluation` and
:mod:`~g2lstm.tasks.finetune`) and ``ARCHITECTURE.md`` for where a new task goes.
"""

from __future__ import annotations

from g2lstm.config import CELL_LABELS, CELLS, cell_label
from g2lstm.tasks.base import Task
from g2lstm.tasks.evaluation import EvalData, EvalDataOptions, Evaluator
from g2lstm.tasks.finetune import FinetuneRecipe, OptimizerFactory, StepLoss
from g2lstm.tasks.loaded_run import LoadedRun
from g2lstm.tasks.registry import (
    COMPRESSED,
    TASKS,
    get_task,
    kind_of,
    load,
    task_of_checkpoint_kind,
)

__all__ = [
    "CELLS",
    "CELL_LABELS",
    "COMPRESSED",
    "TASKS",
    "EvalData",
    "EvalDataOptions",
    "Evaluator",
    "FinetuneRecipe",
    "LoadedRun",
    "OptimizerFactory",
    "StepLoss",
    "Task",
    "cell_label",
    "get_task",
    "kind_of",
    "load",
    "task_of_checkpoint_kind",
]
