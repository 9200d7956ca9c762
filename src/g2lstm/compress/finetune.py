"""A short fine-tune of a compressed model that keeps its compressed structure.

After every optimizer step the compressed blocks are projected back onto their structure with
:func:`~g2lstm.compress.structure_projector` (new truncated SVD of the same rank, new rounding
to the same grid, new quantisation), so the fine-tuned model is still exactly representable by
the compressed file and the returned report's payloads match it::

    small, report = low_rank(model, 16)
    report = finetune(small, report, lm_step_loss(target), steps=200, lr=2.0)
    save_compressed(path, small, report, config=...)

Only language models are supported by :func:`lm_step_loss`; any other model can be fine-tuned
with :func:`finetune` and a ``step_loss(model, step) -> scalar`` of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from g2lstm.errors import ConfigError, TrainingError

from .methods import structure_projector
from .report import CompressionReport

__all__ = ["StepLoss", "finetune", "lm_step_loss"]

#: ``step_loss(model, step)`` -> scalar training loss of one batch (graph attached).
StepLoss = Callable[[nn.Module, int], Tensor]


def finetune(
    model: nn.Module,
    report: CompressionReport,
    step_loss: StepLoss,
    steps: int,
    lr: float,
    *,
    clip: float = 0.25,
    seed: int = 0,
) -> CompressionReport:
    """Fine-tune ``model`` in place with plain SGD, re-projecting its compressed blocks.

    Args:
        model: the compressed model (output of ``compress``/``low_rank``/...), edited in place.
        report: the report of that compression (its blocks and parameters are kept).
        step_loss: gives the loss of training step ``step`` (0-based).
        steps: number of optimizer steps (>= 1).
        lr: SGD learning rate (> 0).
        clip: gradient-norm clipping (0 disables it).
        seed: seeds dropout and gate noise (the global RNG state is restored afterwards).

    Returns:
        The report of the last projection (payloads match the fine-tuned model, so
        ``save_compressed(path, model, returned_report)`` is bit-exact).

    Raises:
        ConfigError: bad ``steps``/``lr``/``clip``.
        TrainingError: a non-finite loss (the message names the step).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"fine-tune steps must be an integer >= 1, got {steps!r}")
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"fine-tune learning rate must be a finite number > 0, got {lr!r}")
    if not isinstance(clip, (int, float)) or not math.isfinite(clip) or clip < 0:
        raise ConfigError(f"fine-tune gradient clip must be >= 0, got {clip!r}")
    projector = structure_projector(report)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=float(lr))
    was_training = model.training
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.train()
        try:
            for step in range(steps):
                optimizer.zero_grad(set_to_none=True)
                loss = step_loss(model, step)
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"fine-tune step {step}: loss is {float(loss)}; lower --finetune-lr"
                    )
                loss.backward()
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, clip)
                optimizer.step()
                projector(model)
        finally:
            model.train(was_training)
    return projector.report


def lm_step_loss(target: Any, batch_size: int | None = None, bptt: int | None = None) -> StepLoss:
    """Training batches of a language model's own corpus, as a ``step_loss``.

    Args:
        target: an LM :class:`~g2lstm.compress.evaluators.Target` (its run config and
            vocabulary locate and check the corpus).
        batch_size: streams (default: the run's ``train.batch_size``).
        bptt: segment length (default: the run's ``train.bptt``).

    The ``train`` split is batchified once; step ``k`` reads segment ``k`` (wrapping around)
    and carries the hidden state across segments, as in training. The loss is the mean
    cross-entropy per token (no AR/TAR).
    """
    from g2lstm.lm.data import batchify
    from g2lstm.lm.model import detach_hidden

    from .evaluators import LMEvaluator

    if target.kind != "lm":
        raise ConfigError(
            f"{target.path}: fine-tuning after compression is implemented for language models "
            "only; drop --finetune-steps for translation models"
        )
    cfg = target.config
    corpus = LMEvaluator(split="valid").corpus(target)
    bs, seg = batch_size or cfg.train.batch_size, bptt or cfg.train.bptt
    source = batchify(corpus["train"], bs, name="train")
    n_segments = max(1, (source.size(0) - 1) // seg)
    state: dict[str, Any] = {"hidden": None}

    def step_loss(model: nn.Module, step: int) -> Tensor:
        i = (step % n_segments) * seg
        if i == 0:
            state["hidden"] = None
        length = min(seg, source.size(0) - 1 - i)
        inp, tgt = source[i : i + length], source[i + 1 : i + 1 + length]
        out = model(inp, state["hidden"])
        state["hidden"] = detach_hidden(out.hidden)
        return F.cross_entropy(out.logits.reshape(-1, out.logits.size(-1)), tgt.reshape(-1))

    return step_loss
