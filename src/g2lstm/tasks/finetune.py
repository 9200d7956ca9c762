"""What a task plugs into the compression-aware fine-tune.

A :class:`FinetuneRecipe` (training batches, loss, optimizer, learning rate, clipping, seed) is
what :meth:`Task.finetune_recipe <g2lstm.tasks.base.Task.finetune_recipe>` returns and
:func:`g2lstm.compress.finetune.finetune` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["FinetuneRecipe", "OptimizerFactory", "StepLoss"]

#: ``step_loss(model, step)`` -> scalar training loss of one batch (graph attached).
StepLoss = Callable[[nn.Module, int], Tensor]
#: ``optimizer(model, lr)`` -> the optimizer of a fine-tune (over the trainable parameters).
OptimizerFactory = Callable[[nn.Module, float], torch.optim.Optimizer]


@dataclass(frozen=True)
class FinetuneRecipe:
    """What one task plugs into the compression-aware fine-tune
    (:func:`g2lstm.compress.finetune.finetune`).

    Attributes:
        step_loss: the training batches and loss (step ``k`` -> loss of batch ``k``).
        lr: default learning rate (a tenth of the run's).
        clip: gradient-norm clipping (the run's).
        seed: seed of dropout and gate noise (the run's).
        optimizer: the optimizer factory (the run's optimizer kind).
        num_batches: batches in one pass over the training data (steps wrap around after it).
        description: one line naming the data and batching (for logs).
    """

    step_loss: StepLoss
    lr: float
    clip: float
    seed: int
    optimizer: OptimizerFactory
    num_batches: int
    description: str = ""

    @classmethod
    def of_run(
        cls, step_loss: Any, run_lr: float, clip: float, seed: int, optimizer: OptimizerFactory
    ) -> FinetuneRecipe:
        """The recipe of a run trained with learning rate ``run_lr``: a tenth of it, the run's
        clipping, seed and optimizer kind; ``step_loss`` names its ``num_batches`` and
        ``description``."""
        return cls(
            step_loss,
            run_lr / 10,
            clip,
            seed,
            optimizer,
            step_loss.num_batches,
            step_loss.description,
        )
