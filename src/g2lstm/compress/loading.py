"""Load language-model and translation checkpoints (or compressed files) for compression.

A sweep or ``g2lstm compress eval`` needs, for every model, the same three things: the model,
what it is (cell kind, seed, hidden size ``H``) and a metric (see
:mod:`g2lstm.compress.evaluators`). :func:`load_target` reads any of

- a run directory or checkpoint directory of ``g2lstm lm train`` (``meta.kind == "g2lstm-lm"``),
- a run directory or checkpoint directory of ``g2lstm mt train`` (``meta.kind == "g2lstm.mt"``),
- a compressed file written by ``g2lstm compress`` (one ``.safetensors`` file).

A compressed file stores in its ``config`` metadata everything needed to rebuild the model
without the original checkpoint: ``{"kind", "config", "vocab"}`` for a language model (run
config and vocabulary, as in an LM checkpoint's meta) and ``{"kind", "config", "data"}`` for a
translation model (run config, vocabularies, preparation settings and BPE codes), plus
``source`` (the checkpoint it came from). :func:`load_compressed_model` rebuilds it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from g2lstm.errors import CheckpointError, ConfigError, G2LSTMError
from g2lstm.limits import build_checked

from .format import compressed_layout, load_compressed

__all__ = [
    "LM_KIND",
    "MT_KIND",
    "CompressedModel",
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
    from g2lstm.train.checkpoint import read_manifest

    p = Path(path)
    if p.is_file():
        return "compressed"
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint, run directory or compressed file")
    ckpt = resolve_checkpoint(p)
    kind = read_manifest(ckpt)["meta"].get("kind")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise CheckpointError(
            f"{ckpt} is a {kind!r} checkpoint; g2lstm compress handles language-model "
            f"({LM_KIND!r}) and translation ({MT_KIND!r}) checkpoints"
        )
    return _KINDS[kind]


def _translator(model: nn.Module, config: Any, data: dict[str, Any], where: Path) -> Any:
    from g2lstm.mt.prepare import PrepareConfig
    from g2lstm.mt.translate import Translator, bpe_from_meta, vocabs_from_meta

    src_vocab, tgt_vocab = vocabs_from_meta(data)
    tr = Translator(model, src_vocab, tgt_vocab, PrepareConfig(**data["prepare"]), config.decode,
                    bpe_from_meta(data))  # fmt: skip
    tr.checkpoint = where  # type: ignore[attr-defined]
    tr.meta = {"data": data}  # type: ignore[attr-defined]
    return tr


def load_compressed_model(path: str | os.PathLike[str]) -> CompressedModel:
    """Rebuild the model stored in a compressed file written by ``g2lstm compress``.

    Raises:
        CheckpointError: not a compressed file, or one without the model config (written by
            :func:`save_compressed` without ``config``), or weights that do not fit it.
    """
    p = Path(path)
    shapes, meta = compressed_layout(p)
    info = meta.get("config")
    if not isinstance(info, dict) or info.get("kind") not in _KINDS or "config" not in info:
        raise CheckpointError(
            f"{p}: the file has no g2lstm model config in its metadata (it was saved by "
            "save_compressed without config=...); rebuild the model yourself and load "
            "load_compressed(path)[0] into it"
        )
    kind = _KINDS[info["kind"]]
    try:
        config, vocab, factory = _model_factory(kind, info, p)
    except G2LSTMError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(
            f"{p}: malformed model config or vocabulary ({type(exc).__name__}: {exc})"
        ) from None
    # the configured sizes must match the file's before any weight is decoded or allocated
    model = build_checked(factory, shapes, str(p))
    state, meta = load_compressed(p)
    model.load_state_dict(state)
    model.eval()
    return CompressedModel(kind, model, config, vocab, info, meta.get("report") or {}, p)


def _model_factory(kind: str, info: dict[str, Any], p: Path) -> tuple[Any, Any, Any]:
    """``(config, vocab, build)`` of the model described by a compressed file's metadata."""
    if kind == "lm":
        from g2lstm.lm.config import RunConfig
        from g2lstm.lm.data import Vocabulary
        from g2lstm.lm.model import RNNLanguageModel

        config: Any = RunConfig.from_dict(info["config"], source=str(p))
        return config, Vocabulary.from_dict(info["vocab"]), lambda: RNNLanguageModel(config.model)
    from g2lstm.mt.config import MTConfig
    from g2lstm.mt.model import Seq2Seq
    from g2lstm.mt.translate import vocabs_from_meta

    config = MTConfig.from_dict(info["config"])
    src, tgt = vocabs_from_meta(info["data"])
    return config, (src, tgt), lambda: Seq2Seq(config.model, len(src), len(tgt), pad_id=src.pad_id)


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
