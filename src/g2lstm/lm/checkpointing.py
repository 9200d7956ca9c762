"""What a language-model training checkpoint holds, and how it is read back.

A checkpoint (see :class:`~g2lstm.train.CheckpointManager`) stores the model weights, the
optimizer state (with the ASGD running averages), the carried hidden state and, while ASGD is
averaging, the averaged weights under ``eval_weights`` (what :func:`~g2lstm.lm.load_model`
evaluates). Its metadata holds the resolved config, the vocabulary, the trainer's bookkeeping
(stage, epoch, row, step, NT-ASGD trigger) and the non-finite guard's counters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from g2lstm.limits import check_buildable
from g2lstm.lm.asgd import AveragedSGD
from g2lstm.lm.config import RunConfig
from g2lstm.lm.data import Vocabulary
from g2lstm.lm.evaluate import check_vocab
from g2lstm.lm.model import Hidden, RNNLanguageModel
from g2lstm.train import Checkpoint, CheckpointManager, NonFiniteGuard, check_state_dict_compat
from g2lstm.train.checkpoint import read_model_shapes
from g2lstm.train.manifest import read_manifest

__all__ = ["check_resumable", "load_lm_checkpoint", "save_lm_checkpoint"]


def save_lm_checkpoint(
    manager: CheckpointManager,
    module: RNNLanguageModel,
    optimizer: torch.optim.Optimizer,
    hidden: Hidden | None,
    *,
    config: RunConfig,
    vocab: Any,
    state: dict[str, Any],
    guard: NonFiniteGuard,
    metric: float | None = None,
) -> None:
    """Save a checkpoint at step ``state["step"]`` through ``manager``.

    ``hidden`` is the carried state, one ``(h, c)`` pair of ``(batch, hidden)`` tensors per
    layer, or None at an epoch boundary; ``metric`` (validation loss) ranks the best checkpoint.
    """
    eval_weights = {}
    if isinstance(optimizer, AveragedSGD) and optimizer.averaging:
        for name, p in module.named_parameters():
            ax = optimizer.state[p].get("ax")
            if ax is not None:
                eval_weights[name] = ax
    hidden_list = [] if hidden is None else [[h, c] for h, c in hidden]
    manager.save(
        state["step"],
        model_state=module.state_dict(),
        trainer_state={
            "optimizer": optimizer.state_dict(),
            "hidden": hidden_list,
            "eval_weights": eval_weights,
        },
        meta={
            "kind": "g2lstm-lm",
            "config": config.to_dict(),
            "vocab": vocab.to_dict(),
            "state": dict(state),
            "guard": guard.state_dict(),
        },
        metric=metric,
    )


def check_resumable(path: Path, config: RunConfig, vocab: Any, data: str) -> None:
    """Before the model is built: the checkpoint at ``path`` was trained on this vocabulary
    and its stored weights have the shapes ``config`` describes (read from the manifest and
    the safetensors header only, so a tampered size allocates nothing).

    Raises:
        CheckpointError: another vocabulary, or weights that do not fit ``config``.
        LimitError: ``config`` describes an absurdly large model.
    """
    saved = Vocabulary.from_dict(read_manifest(path)["meta"].get("vocab"))
    check_vocab(saved, vocab, str(path), data)
    check_buildable(lambda: RNNLanguageModel(config.model), read_model_shapes(path), str(path))


def load_lm_checkpoint(
    manager: CheckpointManager,
    module: RNNLanguageModel,
    *,
    vocab: Any,
    data: str,
    device: torch.device,
) -> Checkpoint | None:
    """Load the latest checkpoint of ``manager`` into ``module``; None if there is none.

    The checkpoint's vocabulary must match ``vocab`` (the data ``data`` being trained on) and
    its weights the model's names and shapes, else an error names the checkpoint. The
    optimizer, hidden state and bookkeeping are left to the caller (``trainer_state``, ``meta``).
    """
    ckpt = manager.load_latest(map_location=str(device))
    if ckpt is None:
        return None
    check_vocab(Vocabulary.from_dict(ckpt.meta["vocab"]), vocab, str(ckpt.path), data)
    check_state_dict_compat(module, ckpt.model_state, str(ckpt.path))
    module.load_state_dict(ckpt.model_state)
    return ckpt
