"""The training batches and losses of the fine-tune after compression, per model family.

:func:`lm_task` and :func:`mt_task` build the :class:`~g2lstm.compress.finetune.FinetuneTask`
of a language model and of a translation model from the run config stored with the model:

- language model (:class:`LMStepLoss`): the ``train`` split batchified into
  ``train.batch_size`` streams, segments of ``train.bptt`` tokens read in order with the
  hidden state carried across segments (as ``g2lstm lm train``), mean cross-entropy per token
  (no AR/TAR); the run's optimizer kind (SGD or Adam) and ``optim.wdecay``.
- translation model (:class:`MTStepLoss`): the ``train`` split of the prepared folder in the
  token batches of ``g2lstm mt train`` (:class:`~g2lstm.mt.batching.TokenBatchSampler` with
  ``train.max_tokens``, ``train.bucket_width`` and the run's seed, epoch ``k // n`` for step
  ``k``), teacher-forced label-smoothed cross-entropy with the run's
  ``optim.label_smoothing`` averaged over target tokens
  (:func:`~g2lstm.mt.trainer.batch_loss`); the run's optimizer
  (:func:`~g2lstm.mt.trainer.build_optimizer`: Adam or AdaDelta, ``optim.weight_decay``).

Both use the run's ``optim.clip`` and seed, and a default learning rate of a tenth of the
run's.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from g2lstm.errors import ConfigError, DataError

from .finetune import FinetuneTask

__all__ = ["LMStepLoss", "MTStepLoss", "lm_step_loss", "lm_task", "mt_step_loss", "mt_task"]


def _check_kind(target: Any, kind: str) -> None:
    if target.kind != kind:
        raise ConfigError(
            f"{target.path} is a {target.kind.upper()} model, not {kind.upper()}; use "
            "finetune_task(target), which picks the fine-tune of the model's kind"
        )


def _positive(name: str, value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"fine-tune {name} must be an integer >= 1, got {value!r}")
    return value


class LMStepLoss:
    """Training segments of a language model's corpus, as a ``step_loss(model, step)``.

    Step ``k`` reads segment ``k mod num_batches`` of the batchified ``train`` split, ``(bptt,
    batch_size)`` token ids, and returns the mean cross-entropy per token; the hidden state is
    carried from segment to segment and reset at the start of each pass.
    """

    def __init__(self, target: Any, batch_size: int | None = None, bptt: int | None = None, *,
                 data: str | os.PathLike[str] | None = None,
                 data_dir: str | os.PathLike[str] | None = None) -> None:  # fmt: skip
        from g2lstm.lm.data import batchify

        from .evaluators import LMEvaluator

        _check_kind(target, "lm")
        cfg = target.config
        evaluator = LMEvaluator(data=None if data is None else str(data),
                                data_dir=None if data_dir is None else str(data_dir),
                                split="valid")  # fmt: skip
        corpus = evaluator.corpus(target)  # checks the vocabulary against the model's
        self.batch_size = _positive("batch size", batch_size) or cfg.train.batch_size
        self.bptt = _positive("bptt", bptt) or cfg.train.bptt
        self.source = batchify(corpus["train"], self.batch_size, name="train")
        self.num_batches = max(1, (self.source.size(0) - 1) // self.bptt)
        self.description = (f"{data or cfg.data}/train, {self.batch_size} streams x "
                            f"{self.bptt} tokens")  # fmt: skip
        self._hidden: Any = None

    def __call__(self, model: nn.Module, step: int) -> Tensor:
        """Mean cross-entropy per token of segment ``step mod num_batches`` (scalar)."""
        from g2lstm.lm.model import detach_hidden

        i = (step % self.num_batches) * self.bptt
        if i == 0:
            self._hidden = None
        length = min(self.bptt, self.source.size(0) - 1 - i)
        device = next(model.parameters()).device
        inp = self.source[i : i + length].to(device)
        tgt = self.source[i + 1 : i + 1 + length].to(device)
        out = model(inp, self._hidden)
        self._hidden = detach_hidden(out.hidden)
        return F.cross_entropy(out.logits.reshape(-1, out.logits.size(-1)), tgt.reshape(-1))


def lm_step_loss(target: Any, batch_size: int | None = None, bptt: int | None = None, *,
                 data: str | os.PathLike[str] | None = None,
                 data_dir: str | os.PathLike[str] | None = None) -> LMStepLoss:  # fmt: skip
    """The :class:`LMStepLoss` of an LM target (batch size and ``bptt`` default to the run's)."""
    return LMStepLoss(target, batch_size, bptt, data=data, data_dir=data_dir)


def lm_task(target: Any, *, data: str | os.PathLike[str] | None = None,
            data_dir: str | os.PathLike[str] | None = None) -> FinetuneTask:  # fmt: skip
    """The fine-tune of a language model (see the module docstring)."""
    step_loss = LMStepLoss(target, data=data, data_dir=data_dir)
    o = target.config.optim

    def optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
        params = [p for p in model.parameters() if p.requires_grad]
        if o.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=o.wdecay)
        return torch.optim.SGD(params, lr=lr, weight_decay=o.wdecay)

    return FinetuneTask("lm", step_loss, o.lr / 10, o.clip, target.config.train.seed, optimizer,
                        step_loss.num_batches, step_loss.description)  # fmt: skip


class MTStepLoss:
    """Training token batches of a translation model, as a ``step_loss(model, step)``.

    Step ``k`` takes batch ``k mod n`` of epoch ``k // n`` of the run's
    :class:`~g2lstm.mt.batching.TokenBatchSampler` over the ``train`` split (``n`` batches per
    epoch), collates it into time-major ``(S, B)`` source and ``(T, B)`` target ids and returns
    the label-smoothed loss per target token (padding excluded), as ``g2lstm mt train``.
    """

    def __init__(self, target: Any, max_tokens: int | None = None, *,
                 data: str | os.PathLike[str] | None = None) -> None:  # fmt: skip
        from g2lstm.mt.batching import TokenBatchSampler
        from g2lstm.mt.prepare import load_prepared

        _check_kind(target, "mt")
        cfg = target.config
        recorded = (target.file_config.get("data") or {}).get("prepared_dir") or cfg.train.data
        folder = data if data is not None else recorded
        if not folder:
            raise DataError(f"{target.path}: the model records no prepared data folder; pass "
                            "the one it was trained on (--finetune-data)")  # fmt: skip
        try:
            self.prepared = load_prepared(folder)
        except DataError as exc:
            raise DataError(f"fine-tune of {target.path}: {exc} (pass the prepared folder the "
                            "model was trained on with --finetune-data)") from exc  # fmt: skip
        _check_vocabs(target, self.prepared)
        self.pairs = self.prepared.encoded("train")
        t = cfg.train
        self.max_tokens = _positive("max tokens", max_tokens) or t.max_tokens
        self.sampler = TokenBatchSampler(
            [len(s) + 1 for s, _ in self.pairs], [len(y) + 1 for _, y in self.pairs],
            self.max_tokens, shuffle=True, seed=t.seed, bucket_width=t.bucket_width,
        )  # fmt: skip
        self.num_batches = self.sampler.num_batches
        self.smoothing = cfg.optim.label_smoothing
        vocab = self.prepared.tgt_vocab
        self._ids = (vocab.pad_id, vocab.bos_id, vocab.eos_id)
        self.description = (f"{self.prepared.root}/train, {self.max_tokens} tokens per batch, "
                            f"label smoothing {self.smoothing:g}")  # fmt: skip

    def __call__(self, model: nn.Module, step: int) -> Tensor:
        """Label-smoothed loss per target token of the batch of ``step`` (scalar)."""
        from g2lstm.mt.batching import collate
        from g2lstm.mt.trainer import batch_loss

        idx = self.sampler.batches(step // self.num_batches)[step % self.num_batches]
        src, src_len, tgt_in, tgt_out = collate([self.pairs[i] for i in idx.tolist()], *self._ids)
        device = next(model.parameters()).device
        batch = (src.to(device), src_len, tgt_in.to(device), tgt_out.to(device))
        loss, _, ntok = batch_loss(model, batch, self._ids[0], self.smoothing)
        return loss / ntok


def _check_vocabs(target: Any, prepared: Any) -> None:
    """Refuse training data whose vocabularies are not the model's."""
    tr = target.extra
    for side, mine, theirs in (("source", tr.src_vocab, prepared.src_vocab),
                               ("target", tr.tgt_vocab, prepared.tgt_vocab)):  # fmt: skip
        if list(mine.tokens) != list(theirs.tokens):
            raise ConfigError(
                f"fine-tune of {target.path}: the {side} vocabulary of {prepared.root} "
                f"({len(theirs)} types) is not the model's ({len(mine)} types); fine-tune on "
                "the prepared folder the model was trained on"
            )


def mt_step_loss(target: Any, max_tokens: int | None = None, *,
                 data: str | os.PathLike[str] | None = None) -> MTStepLoss:  # fmt: skip
    """The :class:`MTStepLoss` of an MT target (``max_tokens`` defaults to the run's)."""
    return MTStepLoss(target, max_tokens, data=data)


def mt_task(target: Any, *, data: str | os.PathLike[str] | None = None) -> FinetuneTask:
    """The fine-tune of a translation model (see the module docstring)."""
    from g2lstm.mt.trainer import build_optimizer

    step_loss = MTStepLoss(target, data=data)
    cfg = target.config

    def optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
        return build_optimizer(model, replace(cfg, optim=replace(cfg.optim, lr=lr)))

    return FinetuneTask("mt", step_loss, cfg.optim.effective_lr / 10, cfg.optim.clip,
                        cfg.train.seed, optimizer, step_loss.num_batches,
                        step_loss.description)  # fmt: skip
