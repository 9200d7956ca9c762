"""Perplexity evaluation and loading trained language models from checkpoints.

A checkpoint of :mod:`g2lstm.lm.trainer` stores the resolved run config and the vocabulary in
its ``meta``, so :func:`load_model` rebuilds the model without any other file. When the run
had switched to averaged SGD, the averaged weights (what was validated) are stored as
``trainer_state["eval_weights"]`` and are the ones loaded.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from g2lstm.errors import CheckpointError, G2LSTMError
from g2lstm.limits import build_checked
from g2lstm.lm.config import RunConfig
from g2lstm.lm.data import Vocabulary
from g2lstm.lm.model import Hidden, RNNLanguageModel, detach_hidden
from g2lstm.lm.pointer import PointerConfig, cache_pointer_log_probs, vocab_log_probs
from g2lstm.train import (
    Checkpoint,
    load_checkpoint,
    resolve_checkpoint,
)

__all__ = [
    "LoadedModel",
    "check_vocab",
    "evaluate",
    "evaluate_pointer",
    "load_model",
    "resolve_checkpoint",
]


@torch.no_grad()
def evaluate(
    model: RNNLanguageModel, source: Tensor, bptt: int, hidden: Hidden | None = None
) -> float:
    """Mean cross-entropy (nats per token) of ``model`` over a batchified ``source``.

    Args:
        model: the language model (put in eval mode here, restored afterwards).
        source: ``(n_steps, B)`` ids from :func:`g2lstm.lm.data.batchify`.
        bptt: segment length; the state is carried across segments.
        hidden: initial state (zeros if None).

    Returns:
        Total loss / number of predicted tokens (``exp`` of it is the perplexity).
    """
    was_training = model.training
    model.eval()
    try:
        hidden = hidden if hidden is not None else model.init_hidden(source.size(1))
        total, count = 0.0, 0
        for i in range(0, source.size(0) - 1, bptt):
            seq_len = min(bptt, source.size(0) - 1 - i)
            inp, target = source[i : i + seq_len], source[i + 1 : i + 1 + seq_len]
            out = model(inp, hidden)
            loss = F.cross_entropy(
                out.logits.view(-1, out.logits.size(-1)), target.reshape(-1), reduction="sum"
            )
            total += float(loss)
            count += target.numel()
            hidden = detach_hidden(out.hidden)
        return total / max(count, 1)
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_pointer(model: RNNLanguageModel, ids: Tensor, config: PointerConfig) -> float:
    """Mean cross-entropy with the continuous cache pointer over one stream ``ids`` ``(N,)``."""
    was_training = model.training
    model.eval()
    try:
        hidden = model.init_hidden(1)
        history = None
        total, count = 0.0, 0
        data = ids.view(-1, 1)
        for i in range(0, data.size(0) - 1, config.bptt):
            seq_len = min(config.bptt, data.size(0) - 1 - i)
            inp, target = data[i : i + seq_len], data[i + 1 : i + 1 + seq_len].view(-1)
            out = model(inp, hidden)
            log_pv = vocab_log_probs(out.logits.view(seq_len, -1), target)
            h_last = out.raw_outputs[-1].view(seq_len, -1)
            log_p, history = cache_pointer_log_probs(
                log_pv, h_last, target, config, history, offset=i
            )
            total -= float(log_p.sum())
            count += seq_len
            hidden = detach_hidden(out.hidden)
        return total / max(count, 1)
    finally:
        model.train(was_training)


def perplexity(loss: float) -> float:
    """``exp(loss)``, ``inf`` on overflow."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


class LoadedModel:
    """A model rebuilt from a checkpoint, with its run config, vocabulary and checkpoint."""

    def __init__(
        self, model: RNNLanguageModel, config: RunConfig, vocab: Any, checkpoint: Checkpoint
    ) -> None:
        self.model, self.config, self.vocab, self.checkpoint = model, config, vocab, checkpoint


def load_model(path: str | os.PathLike[str], map_location: str = "cpu") -> LoadedModel:
    """Rebuild the model of a run or checkpoint directory (best weights of a run).

    Raises:
        CheckpointError: not a language-model checkpoint, or its weights do not fit its
            config (the message lists the keys).
    """
    ckpt = load_checkpoint(resolve_checkpoint(path), map_location=map_location)
    meta = ckpt.meta
    if meta.get("kind") != "g2lstm-lm" or "config" not in meta or "vocab" not in meta:
        raise CheckpointError(f"{ckpt.path} is not a g2lstm language-model checkpoint")
    source = f"{ckpt.path}/meta.json"
    try:
        config = RunConfig.from_dict(meta["config"], source=source)
        vocab = Vocabulary.from_dict(meta["vocab"])
        trainer_state = ckpt.trainer_state if isinstance(ckpt.trainer_state, dict) else {}
        eval_weights = dict(trainer_state.get("eval_weights") or {})
    except G2LSTMError as exc:
        if source in str(exc):
            raise
        raise CheckpointError(f"{source}: {exc}") from None  # name the file
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(
            f"{source}: malformed config or vocabulary ({type(exc).__name__}: {exc})"
        ) from None
    weights = dict(ckpt.model_state)
    weights.update(eval_weights)
    if config.model.tie_weights and "encoder.weight" in eval_weights:
        weights["decoder.weight"] = eval_weights["encoder.weight"]
    # sizes from meta.json are checked against the stored tensors before anything is built
    model = build_checked(lambda: RNNLanguageModel(config.model), weights, str(ckpt.path))
    model.to(map_location)
    model.load_state_dict(weights)
    model.eval()
    return LoadedModel(model, config, vocab, ckpt)


def check_vocab(expected: Any, found: Any, checkpoint: str, data: str) -> None:
    """Refuse data whose training vocabulary differs from the checkpoint's.

    Raises:
        CheckpointError: with both sizes and hashes and a hint.
    """
    if expected.sha256() == found.sha256():
        return
    raise CheckpointError(
        f"vocabulary mismatch: checkpoint {checkpoint} was trained with {len(expected):,} word "
        f"types (sha256 {expected.sha256()[:12]}), but the training text of {data} gives "
        f"{len(found):,} (sha256 {found.sha256()[:12]}). Did you pass the right --data?"
    )
