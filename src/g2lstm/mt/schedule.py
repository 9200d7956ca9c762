"""Learning-rate schedules of MT training (``optim.schedule``).

Three rules, all starting from ``optim.lr`` (:attr:`~g2lstm.mt.config.OptimConfig.effective_lr`):

- ``plateau`` (default): multiply the lr by ``optim.lr_decay`` after every epoch whose
  validation loss did not improve on the best epoch so far (the trainer keeps that state).
- ``step``: constant for the first ``optim.decay_start`` epochs, then multiplied by
  ``optim.lr_decay`` at the start of every later epoch (Luong et al., 2015: "after 5 epochs,
  we begin to halve the learning rate every epoch"). Epoch ``e`` (1-based) trains with
  ``lr * lr_decay ** max(0, e - decay_start)``. Independent of the validation loss, so a run
  anneals within its budget whatever its curve looks like.
- ``inverse_sqrt``: ``lr * min(s / warmup, sqrt(warmup / s))`` at update ``s`` (1-based):
  linear warm-up over ``optim.warmup`` updates, then decay with the inverse square root of
  the update count (Vaswani et al., 2017, with the peak at ``lr``).

``optim.warmup`` > 0 also adds a linear warm-up over that many updates to ``plateau`` and
``step``. Every rule is floored at ``optim.min_lr`` (except during warm-up). The rules other
than ``plateau`` are pure functions of ``(update, epoch)``, so a resumed run gets exactly the
same rates as an uninterrupted one.
"""

from __future__ import annotations

import math

from g2lstm.mt.config import SCHEDULES, OptimConfig

__all__ = ["SCHEDULES", "scheduled_lr"]


def scheduled_lr(optim: OptimConfig, update: int, epoch: int, plateau_lr: float) -> float:
    """The learning rate of one update.

    Args:
        optim: the optimiser settings (``schedule``, ``lr``, ``lr_decay``, ``decay_start``,
            ``warmup``, ``min_lr``).
        update: 1-based index of the update about to be made.
        epoch: completed epochs before this update (0 during the first epoch).
        plateau_lr: the lr the ``plateau`` rule has reached (ignored by the other rules).

    Returns:
        The rate to set in the optimiser before this update.
    """
    if update < 1 or epoch < 0:
        raise ValueError(f"scheduled_lr: update must be >= 1 and epoch >= 0, got {update}, {epoch}")
    base = optim.effective_lr
    warmup = optim.warmup
    if optim.schedule == "inverse_sqrt":
        if update < warmup:
            return base * update / warmup
        return max(base * math.sqrt(warmup / update), optim.min_lr)
    if optim.schedule == "step":
        lr = max(base * optim.lr_decay ** max(0, epoch + 1 - optim.decay_start), optim.min_lr)
    else:
        lr = plateau_lr
    if warmup and update < warmup:
        return lr * update / warmup
    return lr
