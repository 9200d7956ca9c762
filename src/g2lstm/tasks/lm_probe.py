"""The language model's evaluation data for the gate analysis (:meth:`LMTask.eval_data`).

The callables :func:`g2lstm.analysis.analyze_models` needs for a word language model.

Batches are ``(input, target)`` pairs of ``(T, B)`` ids cut from a batchified split
(:func:`g2lstm.lm.data.batchify` / :func:`~g2lstm.lm.data.get_batch`). Each batch starts from
a zero state, so every forward is independent and deterministic (the histograms therefore
include the first steps of each segment, where the state is still warming up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from g2lstm.errors import ConfigError, DataError
from g2lstm.lm.data import batchify, get_batch
from g2lstm.lm.evaluate import evaluate

__all__ = ["LMAdapter", "lm_batches", "lm_forward", "lm_tokens"]

Batch = tuple[Tensor, Tensor]


def lm_forward(model: nn.Module, batch: Batch) -> Tensor:
    """Mean next-word cross-entropy of ``model`` on ``batch = (input, target)``, each (T, B)."""
    inp, target = batch
    out = model(inp)
    logits = out.logits if hasattr(out, "logits") else out[0]
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1))


def lm_tokens(batch: Batch) -> Tensor:
    """The ``(T, B)`` input ids of a batch (aligned with every layer's time steps)."""
    return batch[0]


def lm_batches(
    ids: Any, batch_size: int, bptt: int, max_batches: int | None = None, device: str = "cpu"
) -> list[Batch]:
    """Consecutive ``(input, target)`` segments of a 1-D id sequence.

    Args:
        ids: 1-D token ids (numpy array or tensor).
        batch_size: parallel streams ``B``.
        bptt: segment length ``T``.
        max_batches: keep at most this many segments (from the start).
    """
    if bptt < 1:
        raise ConfigError(f"bptt={bptt} must be >= 1")
    source = batchify(ids, batch_size, device=device)
    out: list[Batch] = []
    for i in range(0, source.size(0) - 1, bptt):
        if max_batches is not None and len(out) >= max_batches:
            break
        out.append(get_batch(source, i, bptt))
    return out


@dataclass
class LMAdapter:
    """The callables :func:`analyze_models` needs, for one vocabulary and split.

    Attributes:
        itos: the vocabulary, id -> word.
        eos_id: id of ``<eos>`` (the target after the last word of an encoded sentence).
        eval_ids: 1-D ids of the split used by :meth:`evaluate`.
        batch_size, bptt: how :meth:`evaluate` cuts the split.
        device: where batches are built.
    """

    itos: Sequence[str]
    stoi: dict[str, int]
    unk_id: int | None
    eos_id: int
    eval_ids: Any
    batch_size: int = 10
    bptt: int = 70
    device: str = "cpu"

    @classmethod
    def from_vocab(cls, vocab: Any, eval_ids: Any, **kw: Any) -> LMAdapter:
        """From a :class:`g2lstm.lm.data.Vocabulary`."""
        if vocab.eos_id is None:
            raise DataError("the vocabulary has no <eos>; it is not a word-LM vocabulary")
        itos = list(vocab)
        return cls(
            itos, {t: i for i, t in enumerate(itos)}, vocab.unk_id, vocab.eos_id, eval_ids, **kw
        )

    def encode(self, sentence: str) -> tuple[list[str], Batch]:
        """``(tokens, (input (T, 1), target (T, 1)))`` for one whitespace-split sentence.

        Out-of-vocabulary words are shown as ``word→<unk>``; the last target is ``<eos>``.
        """
        words = sentence.split()
        if not words:
            raise ConfigError("an analysis sentence is empty")
        ids, shown = [], []
        for w in words:
            i = self.stoi.get(w, self.unk_id)
            if i is None:
                raise ConfigError(f"word {w!r} is not in the vocabulary and there is no <unk>")
            ids.append(i)
            shown.append(w if w in self.stoi else f"{w}→<unk>")
        x = torch.tensor(ids, dtype=torch.long, device=self.device).view(-1, 1)
        y = torch.tensor([*ids[1:], self.eos_id], dtype=torch.long, device=self.device)
        return shown, (x, y.view(-1, 1))

    def evaluate(self, model: nn.Module) -> float:
        """Perplexity of ``model`` on ``eval_ids`` (state carried across segments)."""
        source = batchify(self.eval_ids, self.batch_size, device=self.device)
        loss = evaluate(model, source, self.bptt)  # type: ignore[arg-type]
        try:
            return math.exp(loss)
        except OverflowError:
            return math.inf
