"""Score language-model and translation models on a split: the evaluators of a sweep.

An evaluator scores a model on a split: :class:`LMEvaluator` gives the perplexity (lower is
better) with :func:`g2lstm.lm.evaluate.evaluate`, the function ``g2lstm lm eval`` uses;
:class:`MTEvaluator` gives tokenised BLEU (higher is better) with
:func:`g2lstm.mt.translate.evaluate_split`, the function ``g2lstm mt eval`` uses. The models
come from :func:`load_target` (see :mod:`g2lstm.compress.loading`, whose names are also
importable from here).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from g2lstm.errors import ConfigError

from .loading import (
    LM_KIND,
    MT_KIND,
    CompressedModel,
    Target,
    checkpoint_kind,
    load_compressed_model,
    load_target,
)

__all__ = [
    "LM_KIND",
    "MT_KIND",
    "CompressedModel",
    "Evaluator",
    "LMEvaluator",
    "MTEvaluator",
    "Target",
    "checkpoint_kind",
    "evaluator_for",
    "load_compressed_model",
    "load_target",
]


class Evaluator:
    """Scores models of one family on one split. Subclasses set the class attributes.

    Attributes:
        kind: ``"lm"`` or ``"mt"`` (checkpoints of the other kind are refused).
        metric: column name (``"ppl"`` / ``"BLEU"``).
        higher_is_better: False for perplexity, True for BLEU.
    """

    kind = ""
    metric = ""
    higher_is_better = False

    def load(self, path: str | os.PathLike[str]) -> Target:
        """Load ``path`` and check that it is of this evaluator's kind."""
        target = load_target(path)
        if target.kind != self.kind:
            raise ConfigError(
                f"{path} is a {target.kind.upper()} model but this sweep evaluates "
                f"{self.kind.upper()} models; sweep each kind separately"
            )
        return target

    def score(self, target: Target, model: nn.Module) -> float:
        """The metric of ``model`` (``target.model`` or a compressed copy of it)."""
        raise NotImplementedError

    def degradation(self, original: float, compressed: float) -> float:
        """How much worse ``compressed`` is (positive = worse): ppl up or BLEU down."""
        return original - compressed if self.higher_is_better else compressed - original

    def describe(self) -> str:
        """One line naming the data, split and limits (for reports)."""
        raise NotImplementedError


class LMEvaluator(Evaluator):
    """Perplexity on a split of the LM corpus (as ``g2lstm lm eval``, plain mode).

    Args:
        data: dataset name or folder (default: each run's own).
        data_dir: root of named datasets.
        split: ``"valid"`` or ``"test"``.
        batch_size: evaluation streams (default: the run's ``test_batch_size`` for test,
            ``eval_batch_size`` for valid, as ``lm eval``).
        bptt: segment length (default: the run's).
        max_batches: score only the first ``max_batches`` segments (a cheap estimate).
    """

    kind, metric, higher_is_better = "lm", "ppl", False

    def __init__(self, data: str | None = None, data_dir: str | None = None, split: str = "test",
                 batch_size: int | None = None, bptt: int | None = None,
                 max_batches: int | None = None) -> None:  # fmt: skip
        if split not in ("valid", "test"):
            raise ConfigError(f"split must be 'valid' or 'test', got {split!r}")
        for name, value in (("batch_size", batch_size), ("bptt", bptt),
                            ("max_batches", max_batches)):  # fmt: skip
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):  # fmt: skip
                raise ConfigError(f"--{name.replace('_', '-')} must be an integer >= 1, "
                                  f"got {value!r}")  # fmt: skip
        self.data, self.data_dir, self.split = data, data_dir, split
        self.batch_size, self.bptt, self.max_batches = batch_size, bptt, max_batches
        self._corpora: dict[str, Any] = {}
        self._sources: dict[tuple[str, int, str], torch.Tensor] = {}

    def corpus(self, target: Target) -> Any:
        """The corpus of ``target`` (cached per folder), checked against its vocabulary."""
        from g2lstm.datasets import resolve_dataset
        from g2lstm.lm.data import Corpus
        from g2lstm.lm.evaluate import check_vocab

        cfg = target.config
        data = self.data or cfg.data
        folder = str(resolve_dataset(data, self.data_dir or cfg.data_dir, kind="lm"))
        if folder not in self._corpora:
            self._corpora[folder] = Corpus.load(folder)
        corpus = self._corpora[folder]
        check_vocab(target.extra, corpus.vocab, str(target.path), str(data))
        return corpus

    def _source(self, target: Target) -> tuple[torch.Tensor, int]:
        from g2lstm.lm.data import batchify

        cfg = target.config
        full = self.corpus(target)  # cached per folder
        corpus = full.head(cfg.train.limit_tokens)  # as the run was evaluated
        default_bs = (
            cfg.train.test_batch_size if self.split == "test" else cfg.train.eval_batch_size
        )
        bs, bptt = self.batch_size or default_bs, self.bptt or cfg.train.bptt
        key = (f"{id(full)}:{cfg.train.limit_tokens}", bs, self.split)
        if key not in self._sources:
            self._sources[key] = batchify(corpus[self.split], bs, name=self.split)
        source = self._sources[key]
        if self.max_batches is not None:
            source = source[: self.max_batches * bptt + 1]
        return source, bptt

    def score(self, target: Target, model: nn.Module) -> float:
        """Perplexity of ``model`` on the split."""
        from g2lstm.lm.evaluate import evaluate, perplexity

        source, bptt = self._source(target)
        return perplexity(evaluate(model, source, bptt))  # type: ignore[arg-type]

    def describe(self) -> str:
        limit = f", first {self.max_batches} segments" if self.max_batches else ""
        data = self.data or "each run's data"
        return f"perplexity on {data}/{self.split}{limit}"


class MTEvaluator(Evaluator):
    """Tokenised BLEU on a prepared split (as ``g2lstm mt eval``).

    Args:
        data: the prepared data folder (default: the one recorded in each checkpoint).
        split: ``valid``/``test`` (or ``val``/``test2016``).
        limit: score only the first ``limit`` sentences.
        beam: beam size (default: the run's).
    """

    kind, metric, higher_is_better = "mt", "BLEU", True

    def __init__(self, data: str | None = None, split: str = "test", limit: int | None = None,
                 beam: int | None = None) -> None:  # fmt: skip
        for name, value in (("limit", limit), ("beam", beam)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):  # fmt: skip
                raise ConfigError(f"--{name} must be an integer >= 1, got {value!r}")
        self.data, self.split, self.limit, self.beam = data, split, limit, beam

    def score(self, target: Target, model: nn.Module) -> float:
        """Tokenised (lowercased, multi-bleu style) BLEU of ``model`` on the split."""
        from dataclasses import replace

        from g2lstm.mt.translate import evaluate_split

        tr = target.extra
        saved_model, saved_decode = tr.model, tr.decode
        tr.model = model.eval()
        if self.beam is not None:
            tr.decode = replace(tr.decode, beam=self.beam)
        try:
            return float(evaluate_split(tr, self.split, self.data, limit=self.limit).bleu.tok_bleu)
        finally:
            tr.model, tr.decode = saved_model, saved_decode

    def describe(self) -> str:
        limit = f", first {self.limit} sentences" if self.limit else ""
        data = self.data or "each run's data"
        return f"tokenised BLEU on {data}/{self.split}{limit}"


def evaluator_for(kind: str, **options: Any) -> Evaluator:
    """An :class:`LMEvaluator` (``kind="lm"``) or :class:`MTEvaluator` (``"mt"``)."""
    if kind == "lm":
        return LMEvaluator(**{k: v for k, v in options.items() if k in _LM_OPTIONS})
    if kind == "mt":
        return MTEvaluator(**{k: v for k, v in options.items() if k in _MT_OPTIONS})
    raise ConfigError(f"unknown model kind {kind!r}; expected 'lm' or 'mt'")


_LM_OPTIONS = ("data", "data_dir", "split", "batch_size", "bptt", "max_batches")
_MT_OPTIONS = ("data", "split", "limit", "beam")
