"""The MT training objective and optimiser.

- :func:`label_smoothed_loss`: label-smoothed cross-entropy and plain NLL of ``(K, V)`` logits;
- :func:`batch_loss`: the teacher-forced loss of a :func:`~g2lstm.mt.batching.collate` batch,
  summed over its target tokens (``</s>`` included, padding excluded);
- :func:`build_optimizer`: Adam or AdaDelta (paper §4.1.2) over the trainable parameters.

Used by the training loop (:mod:`g2lstm.mt.trainer`) and by the task interface's fine-tuning
(:mod:`g2lstm.tasks.mt`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from g2lstm.mt.config import MTConfig

__all__ = ["batch_loss", "build_optimizer", "label_smoothed_loss"]


def label_smoothed_loss(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed label-smoothed loss and summed NLL of ``(K, V)`` logits for ``(K,)`` targets.

    ``loss = (1 - eps) * nll + eps * mean_v(-log p_v)``, as ``F.cross_entropy(...,
    label_smoothing=eps)``, with the log-softmax computed once for both numbers.
    """
    lprobs = F.log_softmax(logits.float(), dim=-1)
    nll = -lprobs.gather(1, target.unsqueeze(1)).squeeze(1)
    loss = nll if smoothing == 0 else (1 - smoothing) * nll - smoothing * lprobs.mean(dim=-1)
    return loss.sum(), nll.detach().sum()


def batch_loss(
    model: torch.nn.Module, batch: tuple[torch.Tensor, ...], pad: int, smoothing: float
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Teacher-forced summed label-smoothed loss, summed NLL and target-token count of a
    :func:`~g2lstm.mt.batching.collate` batch ``(src, src_len, tgt_in, tgt_out)``, padding
    excluded."""
    src, src_len, tgt_in, tgt_out = batch
    feats = model.decode(tgt_in, model.encode(src, src_len))  # (T, B, H)
    keep = tgt_out != pad
    logits = model.logits(feats[keep])  # (K, V), K = target tokens
    loss, nll = label_smoothed_loss(logits, tgt_out[keep], smoothing)
    return loss, nll, int(keep.sum())


def build_optimizer(model: torch.nn.Module, config: MTConfig) -> torch.optim.Optimizer:
    """Adam (default) or AdaDelta (paper: rho 0.95, eps 1e-6), with ``optim.lr``."""
    o = config.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.effective_lr, weight_decay=o.weight_decay)
    return torch.optim.Adadelta(
        params, lr=o.effective_lr, rho=0.95, eps=1e-6, weight_decay=o.weight_decay
    )
