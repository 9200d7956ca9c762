"""The prepared MT folder: its settings (:class:`PrepareConfig`) and reader (:func:`load_prepared`).

The folder layout is described in :mod:`g2lstm.mt.prepare`, which writes it; everything here is
also importable from there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from g2lstm.errors import ConfigError, DataError
from g2lstm.mt.bpe import BPE
from g2lstm.mt.data import Tokenizer, TokenizerConfig, filter_pairs, read_lines
from g2lstm.mt.vocab import Vocab

__all__ = ["PrepareConfig", "PreparedData", "load_prepared"]

_FORMAT_VERSION = 1
_INFO, _CODES, _VOCAB = "prepare.json", "bpe.codes", "vocab.json"


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of :func:`prepare_dataset` (recorded in ``prepare.json``).

    Attributes:
        src_lang, tgt_lang: language codes; also the file suffixes.
        tokenize, lowercase, normalize_punct, escape: see :class:`TokenizerConfig`.
        bpe_merges: joint BPE merges learned on train (0 = no BPE, word-level).
        bpe_min_frequency: stop learning merges below this pair frequency.
        joint_vocab: one vocabulary shared by source and target (the paper's setup).
        vocab_min_freq, vocab_max_size: vocabulary cut-offs (size includes the 4 specials).
        max_len, min_len, ratio: train pairs with a side of more than ``max_len`` or fewer
            than ``min_len`` subwords, or a subword length ratio above ``ratio``, are dropped
            (Moses clean-corpus-n rules; the paper used ``max_len=64``). Valid/test are kept.
    """

    src_lang: str
    tgt_lang: str
    tokenize: bool = True
    lowercase: bool = False
    normalize_punct: bool = False
    escape: bool = False
    bpe_merges: int = 10000
    bpe_min_frequency: int = 2
    joint_vocab: bool = True
    vocab_min_freq: int = 1
    vocab_max_size: int | None = None
    max_len: int | None = None
    min_len: int = 1
    ratio: float | None = 9.0

    def __post_init__(self) -> None:
        for lang in (self.src_lang, self.tgt_lang):
            self.tokenizer_config(lang)  # validates the language code
        if self.src_lang == self.tgt_lang:
            raise ConfigError(f"PrepareConfig: src_lang and tgt_lang are both {self.src_lang!r}.")
        if self.bpe_merges < 0:
            raise ConfigError(f"PrepareConfig: bpe_merges must be >= 0, got {self.bpe_merges}.")
        if self.bpe_min_frequency < 1:
            raise ConfigError("PrepareConfig: bpe_min_frequency must be >= 1.")
        filter_pairs([], [], max_len=self.max_len, min_len=self.min_len, ratio=self.ratio)
        Vocab.from_counts({}, min_freq=self.vocab_min_freq, max_size=self.vocab_max_size)

    @classmethod
    def make(cls, src_lang: str, tgt_lang: str, settings: Mapping[str, Any]) -> PrepareConfig:
        """Build from keyword settings, naming any unknown ones."""
        names = {f.name for f in fields(cls)} - {"src_lang", "tgt_lang"}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise ConfigError(f"unknown MT prepare setting(s) {unknown}; valid: {sorted(names)}.")
        return cls(src_lang, tgt_lang, **settings)

    def tokenizer_config(self, lang: str) -> TokenizerConfig:
        """The :class:`TokenizerConfig` these settings imply for ``lang``."""
        return TokenizerConfig(
            lang,
            tokenize=self.tokenize,
            lowercase=self.lowercase,
            normalize_punct=self.normalize_punct,
            escape=self.escape,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the settings."""
        return asdict(self)


@dataclass(frozen=True)
class PreparedData:
    """A prepared folder (see :mod:`g2lstm.mt.prepare`), read by :func:`load_prepared`.

    Attributes:
        root: the folder.
        info: the contents of ``prepare.json``.
        src_vocab, tgt_vocab: the vocabularies (the same object when joint).
    """

    root: Path
    info: dict[str, Any] = field(repr=False)
    src_vocab: Vocab
    tgt_vocab: Vocab

    @cached_property
    def config(self) -> PrepareConfig:
        """The settings the folder was prepared with."""
        return PrepareConfig(**self.info["settings"]["config"])

    @property
    def src_lang(self) -> str:
        return self.config.src_lang

    @property
    def tgt_lang(self) -> str:
        return self.config.tgt_lang

    @property
    def splits(self) -> tuple[str, ...]:
        """Split names, e.g. ``("test", "train", "valid")``."""
        return tuple(sorted(self.info["counts"]["sizes"]))

    def path(self, split: str, lang: str, kind: str = "bpe") -> Path:
        """File of ``split`` in ``lang``; ``kind`` is ``"bpe"``, ``"tok"`` or ``"detok"``."""
        if split not in self.splits:
            raise ConfigError(f"{self.root}: no split {split!r}; it has {list(self.splits)}.")
        if lang not in (self.src_lang, self.tgt_lang):
            raise ConfigError(
                f"{self.root}: language {lang!r} is not {self.src_lang}/{self.tgt_lang}."
            )
        if kind not in ("bpe", "tok", "detok") or (kind != "bpe" and split == "train"):
            raise ConfigError(
                f"kind must be 'bpe', 'tok' or 'detok' (not for train), got {kind!r} for {split!r}."
            )
        infix = "" if kind == "bpe" else f"{kind}."
        return self.root / f"{split}.{infix}{lang}"

    def lines(self, split: str, lang: str, kind: str = "bpe") -> list[str]:
        """The lines of :meth:`path`."""
        return read_lines(self.path(split, lang, kind))

    def encoded(self, split: str, limit: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(src_ids, tgt_ids)`` int32 arrays of every pair (of the first ``limit`` pairs
        when given), without ``<s>``/``</s>`` (:func:`g2lstm.mt.batching.collate` adds them)."""
        src = self.lines(split, self.src_lang)[:limit]
        tgt = self.lines(split, self.tgt_lang)[:limit]
        return [
            (
                np.asarray(self.src_vocab.encode(s), np.int32),
                np.asarray(self.tgt_vocab.encode(t), np.int32),
            )
            for s, t in zip(src, tgt)
        ]

    def bpe(self) -> BPE | None:
        """The BPE codes, for segmenting new input (``None`` if prepared without BPE)."""
        return BPE(self.root / _CODES) if self.config.bpe_merges > 0 else None

    def tokenizer(self, lang: str, *, tokenize: bool | None = None) -> Tokenizer:
        """The tokenizer of the preparation (``tokenize=True`` to Moses-tokenise raw input
        for a folder prepared from already-tokenised files)."""
        cfg = self.config.tokenizer_config(lang)
        if tokenize is not None:
            cfg = TokenizerConfig(
                lang,
                tokenize=tokenize,
                lowercase=cfg.lowercase,
                normalize_punct=cfg.normalize_punct and tokenize,
                escape=cfg.escape,
            )
        return Tokenizer(cfg)


def load_prepared(out_dir: str | Path) -> PreparedData:
    """Read a folder written by :func:`prepare_dataset` and friends."""
    root = Path(out_dir)
    try:
        info = json.loads((root / _INFO).read_text(encoding="utf-8"))
        vocabs = json.loads((root / _VOCAB).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(
            f"{root}: not a prepared MT folder ({Path(exc.filename).name} missing); "
            f"run the prepare step first."
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{root}: corrupt JSON ({exc}); prepare it again.") from exc
    if info.get("format_version") != _FORMAT_VERSION:
        raise DataError(
            f"{root}/{_INFO}: format version {info.get('format_version')!r}, "
            f"expected {_FORMAT_VERSION}; prepare it again with this g2lstm."
        )
    src_vocab = Vocab.from_dict(vocabs["src"])
    tgt_vocab = src_vocab if vocabs.get("joint") else Vocab.from_dict(vocabs["tgt"])
    return PreparedData(root, info, src_vocab, tgt_vocab)
