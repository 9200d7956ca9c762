"""The attention encoder-decoder translation model (paper §4.1.2) behind the
:class:`~g2lstm.tasks.base.Task` interface.

- loading: run/checkpoint directories of ``g2lstm mt train``
  (:func:`g2lstm.mt.translate.load_translator`) and the ``{"kind", "config", "data"}`` metadata
  of compressed files (run config, vocabularies, preparation settings and BPE codes);
- metric: tokenised BLEU (higher is better), as ``g2lstm mt eval`` (:class:`MTEvaluator`);
- fine-tune (:class:`MTStepLoss`): the ``train`` split of the prepared folder in the token
  batches of ``g2lstm mt train`` (:class:`~g2lstm.mt.batching.TokenBatchSampler` with
  ``train.max_tokens``, ``train.bucket_width`` and the run's seed, epoch ``k // n`` for step
  ``k``), teacher-forced label-smoothed cross-entropy with the run's ``optim.label_smoothing``
  averaged over target tokens (:func:`~g2lstm.mt.objective.batch_loss`); the run's optimizer
  (:func:`~g2lstm.mt.objective.build_optimizer`), ``optim.clip`` and a tenth of its lr;
- gate analysis: target-length batches of a prepared split (:mod:`g2lstm.tasks.mt_probe`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from g2lstm.errors import ConfigError, DataError
from g2lstm.mt.batching import TokenBatchSampler, collate
from g2lstm.mt.config import MTConfig
from g2lstm.mt.model import Seq2Seq
from g2lstm.mt.objective import batch_loss, build_optimizer
from g2lstm.mt.prepare import prepare_dataset
from g2lstm.mt.prepared import PrepareConfig, PreparedData, load_prepared
from g2lstm.mt.trainer import train
from g2lstm.mt.translate import (
    META_KIND,
    EvalResult,
    Translator,
    bpe_from_meta,
    evaluate_split,
    load_translator,
    vocabs_from_meta,
)
from g2lstm.tasks.base import Task
from g2lstm.tasks.checks import positive_int
from g2lstm.tasks.evaluation import EvalData, EvalDataOptions, Evaluator
from g2lstm.tasks.finetune import FinetuneRecipe
from g2lstm.tasks.loaded_run import LoadedRun
from g2lstm.tasks.mt_probe import MTAdapter, check_prepared, layer_side, side_layer_index

__all__ = ["MTEvaluator", "MTStepLoss", "MTTask"]


class MTEvaluator(Evaluator):
    """Tokenised BLEU on a prepared split (as ``g2lstm mt eval``).

    Args:
        data: the prepared data folder (default: the one recorded in each checkpoint).
        split: ``valid``/``test`` (or ``val``/``test2016``).
        limit: score only the first ``limit`` sentences.
        beam: beam size (default: the run's).
    """

    task, metric, higher_is_better = "mt", "BLEU", True

    def __init__(
        self,
        data: str | None = None,
        split: str = "test",
        limit: int | None = None,
        beam: int | None = None,
    ) -> None:
        self.limit = positive_int("limit", limit)
        self.beam = positive_int("beam", beam)
        self.data, self.split = data, split
        self._prepared: PreparedData | None = None  # `data`, read once

    def _evaluate(self, run: LoadedRun, model: nn.Module) -> EvalResult:
        tr = run.extra
        saved_model, saved_decode = tr.model, tr.decode
        tr.model = model.eval()
        if self.beam is not None:
            tr.decode = replace(tr.decode, beam=self.beam)
        if self.data is not None and self._prepared is None:
            self._prepared = load_prepared(self.data)
        try:
            return evaluate_split(tr, self.split, self._prepared, limit=self.limit)
        finally:
            tr.model, tr.decode = saved_model, saved_decode

    def score(self, run: LoadedRun, model: nn.Module) -> float:
        """Tokenised (lowercased, multi-bleu style) BLEU of ``model`` on the split."""
        return float(self._evaluate(run, model).bleu.tok_bleu)

    def scores(self, run: LoadedRun, model: nn.Module) -> dict[str, Any]:
        """Tokenised BLEU (``BLEU``), detokenised sacreBLEU, their signatures and the number of
        sentences."""
        bleu = self._evaluate(run, model).bleu
        return {
            "BLEU": bleu.tok_bleu,
            "detok_bleu": bleu.detok_bleu,
            "tok_signature": bleu.tok_signature,
            "detok_signature": bleu.detok_signature,
            "num_sentences": bleu.num_sentences,
        }

    def describe(self) -> str:
        limit = f", first {self.limit} sentences" if self.limit else ""
        data = self.data or "each run's data"
        return f"tokenised BLEU on {data}/{self.split}{limit}"


class MTStepLoss:
    """Training token batches of a translation model, as a ``step_loss(model, step)``.

    Step ``k`` takes batch ``k mod n`` of epoch ``k // n`` of the run's
    :class:`~g2lstm.mt.batching.TokenBatchSampler` over the ``train`` split (``n`` batches per
    epoch), collates it into time-major ``(S, B)`` source and ``(T, B)`` target ids and returns
    the label-smoothed loss per target token (padding excluded), as ``g2lstm mt train``.
    """

    def __init__(
        self,
        run: LoadedRun,
        max_tokens: int | None = None,
        *,
        data: str | os.PathLike[str] | None = None,
    ) -> None:
        cfg = run.config
        recorded = (run.file_config.get("data") or {}).get("prepared_dir") or cfg.train.data
        folder = data if data is not None else recorded
        if not folder:
            raise DataError(
                f"{run.path}: the model records no prepared data folder; pass the one it was "
                "trained on (--finetune-data)"
            )
        try:
            self.prepared = load_prepared(Path(folder))
        except DataError as exc:
            raise DataError(
                f"fine-tune of {run.path}: {exc} (pass the prepared folder the model was "
                "trained on with --finetune-data)"
            ) from exc
        _check_vocabs(run, self.prepared)
        self.pairs = self.prepared.encoded("train")
        t = cfg.train
        self.max_tokens = positive_int("max_tokens", max_tokens) or t.max_tokens
        self.sampler = TokenBatchSampler.for_pairs(
            self.pairs, self.max_tokens, seed=t.seed, bucket_width=t.bucket_width
        )
        self.num_batches = self.sampler.num_batches
        self.smoothing = cfg.optim.label_smoothing
        vocab = self.prepared.tgt_vocab
        self._ids = (vocab.pad_id, vocab.bos_id, vocab.eos_id)
        self.description = (
            f"{self.prepared.root}/train, {self.max_tokens} tokens per batch, "
            f"label smoothing {self.smoothing:g}"
        )

    def __call__(self, model: nn.Module, step: int) -> Tensor:
        """Label-smoothed loss per target token of the batch of ``step`` (scalar)."""
        idx = self.sampler.batches(step // self.num_batches)[step % self.num_batches]
        src, src_len, tgt_in, tgt_out = collate([self.pairs[i] for i in idx.tolist()], *self._ids)
        device = next(model.parameters()).device
        batch = (src.to(device), src_len, tgt_in.to(device), tgt_out.to(device))
        loss, _, ntok = batch_loss(model, batch, self._ids[0], self.smoothing)
        return loss / ntok


def _check_vocabs(run: LoadedRun, prepared: PreparedData) -> None:
    """Refuse training data whose vocabularies are not the model's."""
    for side, mine, theirs in (
        ("source", run.vocab[0], prepared.src_vocab),
        ("target", run.vocab[1], prepared.tgt_vocab),
    ):
        if list(mine.tokens) != list(theirs.tokens):
            raise ConfigError(
                f"fine-tune of {run.path}: the {side} vocabulary of {prepared.root} "
                f"({len(theirs)} types) is not the model's ({len(mine)} types); fine-tune on "
                "the prepared folder the model was trained on"
            )


class MTTask(Task):
    """The translation model (see the module docstring)."""

    name, title = "mt", "translation model"
    checkpoint_kind = META_KIND
    evaluator_class = MTEvaluator
    metric, higher_is_better = "BLEU", True
    config_class = MTConfig

    def recognizes_config(self, data: Mapping[str, Any]) -> bool:
        train = data.get("train")
        return "decode" in data or (isinstance(train, Mapping) and "data" in train)

    def prepare_data(
        self, sources: Mapping[str, tuple[Path, ...]], out_dir: Path, **settings: Any
    ) -> Path:
        """Tokenise, lowercase, learn joint BPE and encode
        (:func:`~g2lstm.mt.prepare.prepare_dataset`; ``settings``: ``src_lang``, ``tgt_lang``
        and :class:`PrepareConfig` fields)."""
        src_lang, tgt_lang = settings.pop("src_lang"), settings.pop("tgt_lang")
        files = {split: (pair[0], pair[1]) for split, pair in sources.items()}
        return prepare_dataset(files, out_dir, src_lang, tgt_lang, **settings).root

    def train(
        self, config: Any, out_dir: Path, *, device: str = "cpu", resume: bool = False
    ) -> dict[str, Any]:
        result = train(config, out_dir, device=device, resume=resume, show_progress=None)
        return result.to_run_result().flat()

    def build_model(self, config: Any, file_config: Mapping[str, Any]) -> nn.Module:
        src_vocab, tgt_vocab = vocabs_from_meta(file_config["data"])
        return Seq2Seq(config.model, len(src_vocab), len(tgt_vocab), pad_id=src_vocab.pad_id)

    def loaded(
        self,
        path: Path,
        model: nn.Module,
        config: Any,
        file_config: dict[str, Any],
        report: dict[str, Any] | None = None,
    ) -> LoadedRun:
        data = file_config["data"]
        src_vocab, tgt_vocab = vocabs_from_meta(data)
        translator = Translator(
            cast(Seq2Seq, model),
            src_vocab,
            tgt_vocab,
            PrepareConfig(**data["prepare"]),
            config.decode,
            bpe_from_meta(data),
        )
        translator.checkpoint = path
        translator.meta = {"config": file_config["config"], "data": data}
        return self.run_of(
            path,
            model,
            config,
            file_config,
            hidden=config.model.hidden,
            vocab=(src_vocab, tgt_vocab),
            extra=translator,
            report=report,
        )

    def load(self, path: str | os.PathLike[str], device: str = "cpu") -> LoadedRun:
        tr = load_translator(path, device=device)
        ckpt = Path(tr.checkpoint or path)
        config = MTConfig.from_dict(tr.meta["config"])
        file_config = self.file_config(config, ckpt, data=tr.meta["data"])
        run = self.loaded(ckpt, tr.model, config, file_config)
        run.extra = tr  # keeps the checkpoint's own metadata (and its decode settings)
        return run

    def finetune_recipe(
        self,
        run: LoadedRun,
        *,
        data: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> FinetuneRecipe:
        step_loss = MTStepLoss(run, data=data)
        cfg = run.config

        def optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
            return build_optimizer(model, replace(cfg, optim=replace(cfg.optim, lr=lr)))

        o = cfg.optim
        return FinetuneRecipe.of_run(step_loss, o.effective_lr, o.clip, cfg.train.seed, optimizer)

    def eval_data(
        self, runs: Sequence[LoadedRun], options: EvalDataOptions, labels: Sequence[str]
    ) -> EvalData:
        if options.split == "train":
            raise ConfigError("--split: translation models are analysed on valid or test")
        translators = [run.extra for run in runs]
        data = options.data or translators[0].meta.get("data", {}).get("prepared_dir")
        if not data:
            raise ConfigError(
                f"{translators[0].checkpoint} records no prepared data folder; pass --data"
            )
        prepared = load_prepared(data)
        for tr in translators:
            check_prepared(tr, prepared)
        models = {label: run.model for label, run in zip(labels, runs)}
        decoder = side_layer_index(runs[0].model, "target")
        layer = decoder if options.layer is None else options.layer
        side = layer_side(list(models.values()), layer)
        first = translators[0]
        decode = first.decode if options.beam is None else replace(first.decode, beam=options.beam)
        batch_size = options.batch_size or 32
        adapter = MTAdapter(
            prepared,
            options.max_batches,
            batch_size,
            options.device,
            split=options.split,
            side=side,
            decode=decode,
            bleu_limit=options.limit,
            input_format=options.input_format,
        )
        what = (
            f"{prepared.root}/{adapter.split}, {len(adapter.batches)} batches of <= "
            f"{batch_size} sentence pairs"
        )
        if options.hard_gates and options.metric in (None, "BLEU"):
            limit = f"first {options.limit} sentences" if options.limit else "all sentences"
            what += f"; BLEU: beam {decode.beam}, {limit}"
        metrics = {"BLEU": (adapter.bleu, True), "perplexity": (adapter.perplexity, False)}
        if (options.metric or "BLEU") not in metrics:
            raise ConfigError(f"metric={options.metric!r}: expected one of {sorted(metrics)}")
        metric = options.metric or "BLEU"
        evaluate, higher_is_better = metrics[metric]
        out = EvalData(
            models,
            adapter.batches,
            adapter.forward,
            evaluate,
            metric,
            higher_is_better,
            layer,
            what,
            summary_layer=decoder,
        )
        out.metric_what = f"{prepared.root}/{adapter.split}, " + (
            f"first {options.limit} sentences" if options.limit else "all sentences"
        )
        if side == "target" and any(run.config.model.input_feeding for run in runs):
            out.notes.append(
                "input feeding runs the decoder one step per call, so token classes and "
                "heatmaps of decoder layers are skipped (choose an encoder layer with --layer)"
            )
            return out
        out.tokens, out.itos, out.encode = adapter.tokens, adapter.itos, adapter.encode
        if options.sentences is None:
            out.sentences = [adapter.default_sentence()]
            out.encode = partial(adapter.encode, input_format="bpe")
        else:
            out.sentences = options.sentences
        return out
