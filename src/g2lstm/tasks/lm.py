"""The word language model (paper §4.1.1, PTB) behind the :class:`~g2lstm.tasks.base.Task`
interface.

- loading: run/checkpoint directories of ``g2lstm lm train`` (:func:`g2lstm.lm.evaluate.load_model`,
  best weights, averaged ones after NT-ASGD) and the ``{"kind", "config", "vocab"}`` metadata of
  compressed files;
- metric: perplexity (lower is better), as ``g2lstm lm eval`` (:class:`LMEvaluator`);
- fine-tune (:class:`LMStepLoss`): the ``train`` split batchified into ``train.batch_size``
  streams, segments of ``train.bptt`` tokens read in order with the hidden state carried across
  segments (as ``g2lstm lm train``), mean cross-entropy per token (no AR/TAR); the run's
  optimizer kind (SGD or Adam), ``optim.wdecay`` and ``optim.clip``, a tenth of its lr;
- gate analysis: segments of a split (:mod:`g2lstm.tasks.lm_probe`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from g2lstm.datasets import resolve_dataset
from g2lstm.errors import ConfigError
from g2lstm.lm import train
from g2lstm.lm.config import RunConfig
from g2lstm.lm.data import Corpus, Vocabulary, batchify
from g2lstm.lm.evaluate import (
    TEST_STREAMS,
    check_vocab,
    evaluate,
    evaluate_pointer,
    evaluate_stream,
    load_model,
    perplexity,
    stream_batch_size,
)
from g2lstm.lm.model import RNNLanguageModel, detach_hidden
from g2lstm.lm.pointer import PointerConfig
from g2lstm.tasks.base import Task
from g2lstm.tasks.checks import positive_int
from g2lstm.tasks.evaluation import EvalData, EvalDataOptions, Evaluator
from g2lstm.tasks.finetune import FinetuneRecipe
from g2lstm.tasks.lm_probe import LMAdapter, lm_batches, lm_forward, lm_tokens
from g2lstm.tasks.loaded_run import LoadedRun

__all__ = ["DEFAULT_SENTENCES", "LMEvaluator", "LMStepLoss", "LMTask"]

#: The paper's Fig. 4 sentences, in PTB's normalisation (numbers -> N, no final period).
DEFAULT_SENTENCES = (
    "the u.s. economy is still the world 's greatest economy",
    "the numbers have not moved since N and are going in the wrong direction",
)


class LMEvaluator(Evaluator):
    """Perplexity on a split of the LM corpus (as ``g2lstm lm eval``, plain or cache pointer).

    Args:
        data: dataset name or folder (default: each run's own).
        data_dir: root of named datasets.
        split: ``"valid"``, ``"test"`` or ``"train"`` (the training text read in eval mode:
            no dropout, no gate noise).
        batch_size: evaluation streams (default: the run's ``test_batch_size`` for test,
            ``eval_batch_size`` otherwise, as ``lm eval``).
        bptt: segment length (default: the run's).
        max_batches: score only the first ``max_batches`` segments (a cheap estimate).
        pointer: with the continuous cache pointer (``g2lstm lm eval --cache-pointer``):
            ``{"window", "theta", "lambdah", "bptt"}`` (missing keys: AWD-LSTM's PTB recipe,
            :class:`~g2lstm.lm.pointer.PointerConfig`); one stream, ``batch_size`` and
            ``bptt`` are not used; ``max_batches`` caps the stream at that many pointer
            segments.
        streams: where the batch size is 1, compute the batch-1 number in warmed-up streams
            (:func:`~g2lstm.lm.evaluate.evaluate_stream`, as ``lm eval`` and the trainer's
            final test do: within 0.01 perplexity, several times faster); False: the exact
            batch-1 loop.
    """

    task, metric, higher_is_better = "lm", "ppl", False

    def __init__(
        self,
        data: str | None = None,
        data_dir: str | None = None,
        split: str = "test",
        batch_size: int | None = None,
        bptt: int | None = None,
        max_batches: int | None = None,
        pointer: Mapping[str, Any] | None = None,
        streams: bool = False,
    ) -> None:
        if split not in ("valid", "test", "train"):
            raise ConfigError(f"split must be 'valid', 'test' or 'train', got {split!r}")
        self.batch_size = positive_int("batch_size", batch_size)
        self.bptt = positive_int("bptt", bptt)
        self.max_batches = positive_int("max_batches", max_batches)
        self.pointer = None if pointer is None else PointerConfig(**pointer)
        self.streams = bool(streams)
        self.data, self.data_dir, self.split = data, data_dir, split
        self._corpora: dict[str, Corpus] = {}
        self._sources: dict[tuple[str, int, str], Tensor] = {}

    def corpus(self, run: LoadedRun) -> Corpus:
        """The corpus of ``run`` (cached per folder), checked against its vocabulary."""
        cfg = run.config
        data = self.data or cfg.data
        folder = str(resolve_dataset(data, self.data_dir or cfg.data_dir, kind="lm"))
        if folder not in self._corpora:
            self._corpora[folder] = Corpus.load(folder)
        corpus = self._corpora[folder]
        check_vocab(run.vocab, corpus.vocab, str(run.path), str(data))
        return corpus

    def _source(self, run: LoadedRun) -> tuple[Tensor, int]:
        cfg = run.config
        full = self.corpus(run)  # cached per folder
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

    def score(self, run: LoadedRun, model: nn.Module) -> float:
        """Perplexity of ``model`` on the split."""
        if self.pointer is not None:
            ids = self.corpus(run).head(run.config.train.limit_tokens).tensor(self.split)
            if self.max_batches is not None:
                ids = ids[: self.max_batches * self.pointer.bptt + 1]
            device = next(model.parameters()).device
            loss = evaluate_pointer(model, ids.to(device), self.pointer)  # type: ignore[arg-type]
            return perplexity(loss)
        source, bptt = self._source(run)
        if self.streams and source.size(1) == 1:
            ids = source.view(-1)
            n = stream_batch_size(ids.numel(), TEST_STREAMS)
            return perplexity(evaluate_stream(model, ids, bptt, n))  # type: ignore[arg-type]
        return perplexity(evaluate(model, source, bptt))  # type: ignore[arg-type]

    def describe(self) -> str:
        limit = f", first {self.max_batches} segments" if self.max_batches else ""
        data = self.data or "each run's data"
        p = self.pointer
        cache = (
            f", cache pointer (window {p.window}, theta {p.theta}, lambda {p.lambdah})"
            if p is not None
            else ""
        )
        return f"perplexity on {data}/{self.split}{limit}{cache}"


class LMStepLoss:
    """Training segments of a language model's corpus, as a ``step_loss(model, step)``.

    Step ``k`` reads segment ``k mod num_batches`` of the batchified ``train`` split, ``(bptt,
    batch_size)`` token ids, and returns the mean cross-entropy per token; the hidden state is
    carried from segment to segment and reset at the start of each pass.
    """

    def __init__(
        self,
        run: LoadedRun,
        batch_size: int | None = None,
        bptt: int | None = None,
        *,
        data: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        cfg = run.config
        evaluator = LMEvaluator(
            data=None if data is None else str(data),
            data_dir=None if data_dir is None else str(data_dir),
            split="valid",
        )
        corpus = evaluator.corpus(run)  # checks the vocabulary against the model's
        self.batch_size = positive_int("batch_size", batch_size) or cfg.train.batch_size
        self.bptt = positive_int("bptt", bptt) or cfg.train.bptt
        self.source = batchify(corpus["train"], self.batch_size, name="train")
        self.num_batches = max(1, (self.source.size(0) - 1) // self.bptt)
        self.description = (
            f"{data or cfg.data}/train, {self.batch_size} streams x {self.bptt} tokens"
        )
        self._hidden: Any = None

    def __call__(self, model: nn.Module, step: int) -> Tensor:
        """Mean cross-entropy per token of segment ``step mod num_batches`` (scalar)."""
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


class LMTask(Task):
    """The word language model (see the module docstring)."""

    name, title = "lm", "language model"
    checkpoint_kind = "g2lstm-lm"
    evaluator_class = LMEvaluator
    metric, higher_is_better = "ppl", False
    config_class = RunConfig

    def recognizes_config(self, data: Mapping[str, Any]) -> bool:
        train = data.get("train")
        return (
            "data" in data
            and "decode" not in data
            and not (isinstance(train, Mapping) and "data" in train)
        )

    def train(
        self, config: Any, out_dir: Path, *, device: str = "cpu", resume: bool = False
    ) -> dict[str, Any]:
        return train(config, out_dir, resume=resume).to_run_result().flat()

    def build_model(self, config: Any, file_config: Mapping[str, Any]) -> nn.Module:
        return RNNLanguageModel(config.model)

    def loaded(
        self,
        path: Path,
        model: nn.Module,
        config: Any,
        file_config: dict[str, Any],
        report: dict[str, Any] | None = None,
    ) -> LoadedRun:
        vocab = Vocabulary.from_dict(file_config["vocab"])
        return self.run_of(
            path,
            model,
            config,
            file_config,
            hidden=config.model.nhid,
            vocab=vocab,
            extra=vocab,
            report=report,
        )

    def load(self, path: str | os.PathLike[str], device: str = "cpu") -> LoadedRun:
        lm = load_model(path, map_location=device)
        ckpt = Path(lm.checkpoint.path)
        file_config = self.file_config(lm.config, ckpt, vocab=lm.vocab.to_dict())
        return self.loaded(ckpt, lm.model, lm.config, file_config)

    def finetune_recipe(
        self,
        run: LoadedRun,
        *,
        data: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> FinetuneRecipe:
        step_loss = LMStepLoss(run, data=data, data_dir=data_dir)
        o = run.config.optim

        def optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
            params = [p for p in model.parameters() if p.requires_grad]
            if o.optimizer == "adam":
                return torch.optim.Adam(params, lr=lr, weight_decay=o.wdecay)
            return torch.optim.SGD(params, lr=lr, weight_decay=o.wdecay)

        return FinetuneRecipe.of_run(step_loss, o.lr, o.clip, run.config.train.seed, optimizer)

    def eval_data(
        self, runs: Sequence[LoadedRun], options: EvalDataOptions, labels: Sequence[str]
    ) -> EvalData:
        first = runs[0].config
        data = options.data or first.data
        folder = resolve_dataset(data, options.data_dir or first.data_dir, kind="lm")
        corpus = Corpus.load(folder)
        for run in runs:
            check_vocab(run.vocab, corpus.vocab, str(run.path), str(data))
        ids = corpus[options.split]
        eval_ids = ids[: options.eval_tokens] if options.eval_tokens else ids
        bs, bptt = options.batch_size or 10, options.bptt
        adapter = LMAdapter.from_vocab(
            corpus.vocab, eval_ids, batch_size=bs, bptt=bptt, device=options.device
        )
        batches = lm_batches(ids, bs, bptt, options.max_batches, options.device)
        sentences = DEFAULT_SENTENCES if options.sentences is None else options.sentences
        subset = (
            f"first {len(eval_ids):,} of {len(ids):,} tokens"
            if len(eval_ids) < len(ids)
            else f"all {len(ids):,} tokens"
        )
        out = EvalData(
            {label: run.model for label, run in zip(labels, runs)},
            batches,
            lm_forward,
            adapter.evaluate,
            "perplexity",
            False,
            options.layer or 0,
            f"{data}/{options.split}, {len(batches)} segments of {bs}x{bptt}",
            lm_tokens,
            adapter.itos,
            sentences,
            adapter.encode,
        )
        out.metric_what = f"{data}/{options.split}, {subset}"
        return out
