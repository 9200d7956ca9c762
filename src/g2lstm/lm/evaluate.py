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
from g2lstm.train.progress import progress

__all__ = [
    "LoadedModel",
    "check_vocab",
    "evaluate",
    "evaluate_pointer",
    "evaluate_stream",
    "load_model",
    "resolve_checkpoint",
    "stream_batch_size",
]


def _segments(n_rows: int, bptt: int, desc: str | None) -> Any:
    """Start rows of the ``bptt`` segments, with progress (a transient bar, or log lines off a
    terminal) unless ``desc`` is None."""
    starts = range(0, n_rows - 1, bptt)
    if desc is None:
        return starts
    return progress(starts, desc=desc, unit="batch", leave=False)


@torch.no_grad()
def evaluate(
    model: RNNLanguageModel,
    source: Tensor,
    bptt: int,
    hidden: Hidden | None = None,
    *,
    desc: str | None = "evaluating",
) -> float:
    """Mean cross-entropy (nats per token) of ``model`` over a batchified ``source``.

    Args:
        model: the language model (put in eval mode here, restored afterwards).
        source: ``(n_steps, B)`` ids from :func:`g2lstm.lm.data.batchify`.
        bptt: segment length; the state is carried across segments.
        hidden: initial state (zeros if None).
        desc: label of the progress shown while it runs (None: none).

    Returns:
        Total loss / number of predicted tokens (``exp`` of it is the perplexity).
    """
    was_training = model.training
    model.eval()
    try:
        hidden = hidden if hidden is not None else model.init_hidden(source.size(1))
        total, count = 0.0, 0
        for i in _segments(source.size(0), bptt, desc):
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


#: Tokens each stream of :func:`evaluate_stream` reads before it starts scoring.
WARMUP_TOKENS = 200
#: Streams of the default test evaluation (``lm eval``, the end of ``lm train``) for runs whose
#: ``test_batch_size`` is 1: the batch-1 number within rounding, several times faster.
TEST_STREAMS = 10


def stream_batch_size(n_tokens: int, batch_size: int, warmup: int = WARMUP_TOKENS) -> int:
    """The streams :func:`evaluate_stream` uses for ``n_tokens`` ids: ``batch_size``, fewer
    when a piece would be shorter than the warm-up (1 for a short split: exact)."""
    n_pred = n_tokens - 1
    return max(1, min(batch_size, n_pred // max(warmup, 1), n_pred))


@torch.no_grad()
def evaluate_stream(
    model: RNNLanguageModel,
    ids: Tensor,
    bptt: int,
    batch_size: int,
    *,
    warmup: int = WARMUP_TOKENS,
    desc: str | None = "evaluating",
) -> float:
    """The batch-1 cross-entropy of a token stream, computed ``batch_size`` streams at a time.

    ``ids`` ``(N,)`` is cut into ``batch_size`` contiguous pieces. The first starts from the
    zero state as batch-1 evaluation does; every other piece first reads the ``warmup`` tokens
    before it (unscored), so it starts from nearly the state batch-1 evaluation has there.
    Every one of the ``N - 1`` next-token predictions is scored once (none dropped, unlike
    :func:`~g2lstm.lm.batching.batchify`), so the result equals batch-1 evaluation up to the
    effect of the warm-up (nil for ``batch_size=1``; within 0.01 perplexity in the tests).

    Args:
        model: the language model (eval mode here, restored afterwards).
        ids: the split's token ids ``(N,)``.
        bptt: segment length (state carried across segments).
        batch_size: streams evaluated side by side.
        warmup: tokens read before each piece but the first.
        desc: progress label (None: no progress).
    """
    n_pred = ids.numel() - 1
    batch_size = stream_batch_size(ids.numel(), batch_size, warmup)
    if batch_size == 1:
        return evaluate(model, ids.view(-1, 1), bptt, desc=desc)
    length = -(-n_pred // batch_size)  # ceil: predictions per piece
    device = model.encoder.weight.device
    inp = torch.zeros(length, batch_size, dtype=torch.long, device=device)
    tgt = torch.full((length, batch_size), -100, dtype=torch.long, device=device)
    for b in range(batch_size):
        lo, hi = b * length, min((b + 1) * length, n_pred)
        inp[: hi - lo, b], tgt[: hi - lo, b] = ids[lo:hi], ids[lo + 1 : hi + 1]
    was_training = model.training
    model.eval()
    try:
        hidden = model.init_hidden(batch_size)
        w = min(warmup, length)
        if w:  # pieces 1.. read the w tokens before them, from the zero state
            starts = torch.arange(1, batch_size) * length
            warm = torch.stack([ids[s - w : s] for s in starts.tolist()], dim=1).to(device)
            out = model(warm, model.init_hidden(batch_size - 1))
            hidden = [
                (torch.cat([h0[:, :1], h], 1), torch.cat([c0[:, :1], c], 1))
                for (h0, c0), (h, c) in zip(hidden, out.hidden)
            ]
        total = 0.0
        for i in _segments(length + 1, bptt, desc):
            seq = min(bptt, length - i)
            out = model(inp[i : i + seq], hidden)
            total += float(
                F.cross_entropy(
                    out.logits.reshape(-1, out.logits.size(-1)),
                    tgt[i : i + seq].reshape(-1),
                    ignore_index=-100,
                    reduction="sum",
                )
            )
            hidden = detach_hidden(out.hidden)
        return total / max(n_pred, 1)
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_pointer(
    model: RNNLanguageModel,
    ids: Tensor,
    config: PointerConfig,
    *,
    desc: str | None = "evaluating (cache pointer)",
) -> float:
    """Mean cross-entropy with the continuous cache pointer over one stream ``ids`` ``(N,)``
    (``desc``: progress label, None for none)."""
    was_training = model.training
    model.eval()
    try:
        hidden = model.init_hidden(1)
        history = None
        total, count = 0.0, 0
        data = ids.view(-1, 1)
        for i in _segments(data.size(0), config.bptt, desc):
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
