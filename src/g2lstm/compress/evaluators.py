"""Load language-model and translation checkpoints (or compressed files) and score them.

A sweep or ``g2lstm compress eval`` needs, for every model, the same three things: the model,
what it is (cell kind, seed, hidden size ``H``) and a metric. :func:`load_target` reads any of

- a run directory or checkpoint directory of ``g2lstm lm train`` (``meta.kind == "g2lstm-lm"``),
- a run directory or checkpoint directory of ``g2lstm mt train`` (``meta.kind == "g2lstm.mt"``),
- a compressed file written by ``g2lstm compress`` (one ``.safetensors`` file),

and an evaluator scores a model on a split: :class:`LMEvaluator` gives the perplexity (lower is
better) with :func:`g2lstm.lm.evaluate.evaluate`, the function ``g2lstm lm eval`` uses;
:class:`MTEvaluator` gives tokenised BLEU (higher is better) with
:func:`g2lstm.mt.translate.evaluate_split`, the function ``g2lstm mt eval`` uses.

A compressed file stores in its ``config`` metadata everything needed to rebuild the model
without the original checkpoint: ``{"kind", "config", "vocab"}`` for a language model (run
config and vocabulary, as in an LM checkpoint's meta) and ``{"kind", "config", "data"}`` for a
translation model (run config, vocabularies, preparation settings and BPE codes), plus
``source`` (the checkpoint it came from). :func:`load_compressed_model` rebuilds it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from g2lstm.errors import CheckpointError, ConfigError

from .format import load_compressed

__all__ = [
    "LM_KIND",
    "MT_KIND",
    "CompressedModel",
    "Evaluator",
    "LMEvaluator",
    "MTEvaluator",
    "Target",
    "checkpoint_kind",
    "load_compressed_model",
    "load_target",
]

#: ``meta["kind"]`` of the checkpoints of each model family.
LM_KIND = "g2lstm-lm"
MT_KIND = "g2lstm.mt"
_KINDS = {LM_KIND: "lm", MT_KIND: "mt"}


@dataclass
class CompressedModel:
    """A model rebuilt from a compressed file.

    Attributes:
        kind: ``"lm"`` or ``"mt"``.
        model: the dense model (eval mode), weights bit-identical to the compressed model.
        config: :class:`g2lstm.lm.config.RunConfig` or :class:`g2lstm.mt.config.MTConfig`.
        vocab: the LM :class:`~g2lstm.lm.data.Vocabulary`, or ``(src_vocab, tgt_vocab)``.
        meta: the file's ``config`` metadata (kind, config, vocab or data, source).
        report: the saved :meth:`CompressionReport.to_dict` (blocks, sizes, errors).
        path: the file.
    """

    kind: str
    model: nn.Module
    config: Any
    vocab: Any
    meta: dict[str, Any]
    report: dict[str, Any]
    path: Path

    def translator(self) -> Any:
        """A :class:`g2lstm.mt.translate.Translator` around the model (MT files only)."""
        if self.kind != "mt":
            raise ConfigError(f"{self.path} holds a language model; translator() is for MT")
        return _translator(self.model, self.config, self.meta["data"], self.path)


@dataclass
class Target:
    """One model to evaluate (and compress): what the sweep needs to know about it.

    Attributes:
        path: checkpoint directory or compressed file it was read from.
        kind: ``"lm"`` or ``"mt"``.
        model: the model in eval mode.
        config: its run config (LM ``RunConfig`` or ``MTConfig``).
        cell: ``"lstm"``, ``"sharpened"`` or ``"g2"``.
        seed: the training seed.
        hidden: ``H`` (``model.nhid`` of an LM, ``model.hidden`` of an MT model).
        file_config: JSON-able metadata that lets :func:`load_compressed_model` rebuild it.
        extra: LM vocabulary, or the MT :class:`~g2lstm.mt.translate.Translator`.
        report: the saved compression report when ``path`` is a compressed file, else None.
    """

    path: Path
    kind: str
    model: nn.Module
    config: Any
    cell: str
    seed: int
    hidden: int
    file_config: dict[str, Any]
    extra: Any = None
    report: dict[str, Any] | None = field(default=None, repr=False)


def checkpoint_kind(path: str | os.PathLike[str]) -> str:
    """``"lm"``, ``"mt"`` or ``"compressed"`` for a run/checkpoint directory or a file.

    Raises:
        CheckpointError: nothing there, or a checkpoint of another kind.
    """
    from g2lstm.lm.evaluate import resolve_checkpoint

    p = Path(path)
    if p.is_file():
        return "compressed"
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint, run directory or compressed file")
    ckpt = resolve_checkpoint(p)
    try:
        record = json.loads((ckpt / "meta.json").read_text(encoding="utf-8"))
        kind = record["meta"]["kind"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{ckpt}/meta.json: cannot read the checkpoint kind ({exc})") from exc
    if kind not in _KINDS:
        raise CheckpointError(
            f"{ckpt} is a {kind!r} checkpoint; g2lstm compress handles language-model "
            f"({LM_KIND!r}) and translation ({MT_KIND!r}) checkpoints"
        )
    return _KINDS[kind]


def _translator(model: nn.Module, config: Any, data: dict[str, Any], where: Path) -> Any:
    import tempfile

    from g2lstm.mt.bpe import BPE
    from g2lstm.mt.prepare import PrepareConfig
    from g2lstm.mt.translate import Translator

    src_vocab, tgt_vocab = _mt_vocabs(data)
    bpe = None
    if data.get("bpe_codes"):
        with tempfile.TemporaryDirectory() as tmp:
            codes = Path(tmp) / "bpe.codes"
            codes.write_text(data["bpe_codes"], encoding="utf-8")
            bpe = BPE(codes)
    tr = Translator(model, src_vocab, tgt_vocab, PrepareConfig(**data["prepare"]), config.decode,
                    bpe)  # fmt: skip
    tr.checkpoint = where  # type: ignore[attr-defined]
    tr.meta = {"data": data}  # type: ignore[attr-defined]
    return tr


def _mt_vocabs(data: dict[str, Any]) -> tuple[Any, Any]:
    from g2lstm.mt.vocab import Vocab

    src = Vocab(data["src_vocab"])
    return src, (src if data["tgt_vocab"] is None else Vocab(data["tgt_vocab"]))


def load_compressed_model(path: str | os.PathLike[str]) -> CompressedModel:
    """Rebuild the model stored in a compressed file written by ``g2lstm compress``.

    Raises:
        CheckpointError: not a compressed file, or one without the model config (written by
            :func:`save_compressed` without ``config``), or weights that do not fit it.
    """
    from g2lstm.train import check_state_dict_compat

    p = Path(path)
    state, meta = load_compressed(p)
    info = meta.get("config")
    if not isinstance(info, dict) or info.get("kind") not in _KINDS or "config" not in info:
        raise CheckpointError(
            f"{p}: the file has no g2lstm model config in its metadata (it was saved by "
            "save_compressed without config=...); rebuild the model yourself and load "
            "load_compressed(path)[0] into it"
        )
    kind = _KINDS[info["kind"]]
    if kind == "lm":
        from g2lstm.lm.config import RunConfig
        from g2lstm.lm.data import Vocabulary
        from g2lstm.lm.model import RNNLanguageModel

        config: Any = RunConfig.from_dict(info["config"], source=str(p))
        vocab: Any = Vocabulary.from_dict(info["vocab"])
        model: nn.Module = RNNLanguageModel(config.model)
    else:
        from g2lstm.mt.config import MTConfig
        from g2lstm.mt.model import Seq2Seq

        config = MTConfig.from_dict(info["config"])
        vocab = _mt_vocabs(info["data"])
        model = Seq2Seq(config.model, len(vocab[0]), len(vocab[1]), pad_id=vocab[0].pad_id)
    check_state_dict_compat(model, state, str(p))
    model.load_state_dict(state)
    model.eval()
    return CompressedModel(kind, model, config, vocab, info, meta.get("report") or {}, p)


def _lm_target(path: Path, model: nn.Module, config: Any, vocab: Any, **kw: Any) -> Target:
    file_config = {"kind": LM_KIND, "config": config.to_dict(), "vocab": vocab.to_dict(),
                   "source": str(path)}  # fmt: skip
    return Target(path, "lm", model, config, config.model.cell, config.train.seed,
                  config.model.nhid, file_config, vocab, **kw)  # fmt: skip


def _mt_target(path: Path, translator: Any, config: Any, data: dict[str, Any], **kw: Any) -> Target:
    file_config = {"kind": MT_KIND, "config": config.to_dict(), "data": data, "source": str(path)}
    return Target(path, "mt", translator.model, config, config.model.cell, config.train.seed,
                  config.model.hidden, file_config, translator, **kw)  # fmt: skip


def load_target(path: str | os.PathLike[str]) -> Target:
    """Load a checkpoint (run or checkpoint directory) or a compressed file for evaluation."""
    p = Path(path)
    kind = checkpoint_kind(p)
    if kind == "compressed":
        cm = load_compressed_model(p)
        if cm.kind == "lm":
            return _lm_target(p, cm.model, cm.config, cm.vocab, report=cm.report)
        return _mt_target(p, cm.translator(), cm.config, cm.meta["data"], report=cm.report)
    if kind == "lm":
        from g2lstm.lm.evaluate import load_model

        loaded = load_model(p)
        return _lm_target(Path(loaded.checkpoint.path), loaded.model, loaded.config,
                          loaded.vocab)  # fmt: skip
    from g2lstm.mt.config import MTConfig
    from g2lstm.mt.translate import load_translator

    tr = load_translator(p)
    meta = tr.meta  # type: ignore[attr-defined]
    return _mt_target(Path(tr.checkpoint), tr, MTConfig.from_dict(meta["config"]), meta["data"])  # type: ignore[attr-defined]


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
        corpus = self.corpus(target)
        default_bs = (
            cfg.train.test_batch_size if self.split == "test" else cfg.train.eval_batch_size
        )
        bs, bptt = self.batch_size or default_bs, self.bptt or cfg.train.bptt
        key = (str(id(corpus)), bs, self.split)
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
