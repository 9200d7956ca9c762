"""Prepare an MT dataset: tokenise, learn and apply joint BPE, filter, build the vocabulary.

:func:`prepare_dataset` (any line-aligned corpus), :func:`prepare_multi30k` and
:func:`prepare_iwslt14` write one output folder; :func:`load_prepared` reads it back::

    out_dir/
      prepare.json          settings, counts, sha256 of every input and output
      bpe.codes             subword-nmt codes, joint over source+target train (if bpe_merges > 0)
      vocab.json            {"joint": bool, "src": Vocab dict, "tgt": Vocab dict}
      {split}.{lang}        model input: tokenised + BPE'd, one sentence per line
      {split}.tok.{lang}    tokenised text without BPE: references for tokenised BLEU
      {split}.detok.{lang}  original untokenised text: references for sacreBLEU
                            (the .tok/.detok files exist for every split except train)

Preparing is idempotent: when ``prepare.json`` records the same settings and input checksums
and the outputs are intact, nothing is redone. Outputs are written atomically, ``prepare.json``
last, under a file lock, so concurrent ranks or an interrupted run never leave a half-written
folder that looks complete.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from g2lstm.errors import ConfigError, DataError
from g2lstm.mt.bpe import BPE, learn_bpe
from g2lstm.mt.data import (
    Tokenizer,
    TokenizerConfig,
    filter_pairs,
    read_iwslt_train_tags,
    read_iwslt_xml_segments,
    read_parallel,
)
from g2lstm.mt.vocab import Vocab

__all__ = [
    "MULTI30K_SPLITS",
    "PrepareConfig",
    "PreparedData",
    "load_prepared",
    "multi30k_files",
    "prepare_dataset",
    "prepare_iwslt14",
    "prepare_multi30k",
]

log = logging.getLogger(__name__)

_FORMAT_VERSION = 1
_INFO, _CODES, _VOCAB = "prepare.json", "bpe.codes", "vocab.json"
#: Multi30k split name -> file prefix (``train``, ``val``, ``test2016``).
MULTI30K_SPLITS = {"train": "train", "valid": "val", "test": "test2016"}
#: fairseq prepare-iwslt14.sh: test = these TED sets concatenated, in this order.
IWSLT14_TEST_SETS = (
    "IWSLT14.TED.dev2010",
    "IWSLT14.TEDX.dev2012",
    "IWSLT14.TED.tst2010",
    "IWSLT14.TED.tst2011",
    "IWSLT14.TED.tst2012",
)


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


@dataclass
class _SplitText:
    """One split after tokenisation: aligned tokenised lines and their original text."""

    src_tok: list[str]
    tgt_tok: list[str]
    src_ref: list[str]
    tgt_ref: list[str]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_lines(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(line + "\n" for line in lines)
    os.replace(tmp, path)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("g2lstm", "sacremoses", "subword-nmt"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _up_to_date(out_dir: Path, settings: dict[str, Any], inputs: dict[str, Any]) -> bool | str:
    """True if out_dir holds this exact preparation; a reason string if it holds another."""
    try:
        info = json.loads((out_dir / _INFO).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "its prepare.json is unreadable"
    if info.get("format_version") != _FORMAT_VERSION or info.get("settings") != settings:
        old, new = _flatten(info.get("settings", {})), _flatten(settings)
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return f"it was prepared with other settings (differences in {diff})"
    old_sums = {k: v.get("sha256") for k, v in info.get("inputs", {}).items()}
    if old_sums != {k: v["sha256"] for k, v in inputs.items()}:
        return "it was prepared from other input files (sha256 differ)"
    for name, digest in info.get("outputs", {}).items():
        path = out_dir / name
        if not path.is_file() or _sha256(path) != digest:
            log.warning("%s: %s is missing or modified; preparing again.", out_dir, name)
            return False
    return True


def _run(
    out_dir: str | Path,
    config: PrepareConfig,
    pipeline: dict[str, Any],
    input_files: dict[str, Path],
    build: Callable[[], tuple[dict[str, _SplitText], dict[str, Any]]],
    overwrite: bool,
) -> PreparedData:
    """Shared back end: skip if up to date, else build, BPE, filter, vocab, write."""
    from filelock import FileLock

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {"pipeline": pipeline, "config": config.to_dict()}
    inputs = {
        key: {"path": str(path), "sha256": _sha256(path), "bytes": path.stat().st_size}
        for key, path in input_files.items()
    }
    with FileLock(str(out_dir / ".prepare.lock")):
        state = _up_to_date(out_dir, settings, inputs)
        if state is True:
            log.info("%s is already prepared with these settings; skipping.", out_dir)
            return load_prepared(out_dir)
        if isinstance(state, str) and not overwrite:
            raise DataError(
                f"{out_dir} already holds a prepared dataset, but {state}. Use another output "
                f"folder, or pass overwrite=True to replace it."
            )
        (out_dir / _INFO).unlink(missing_ok=True)  # the folder is incomplete until rewritten
        texts, counts = build()
        outputs = _bpe_vocab_write(out_dir, config, texts, counts)
        info = {
            "format_version": _FORMAT_VERSION,
            "settings": settings,
            "inputs": inputs,
            "counts": counts,
            "outputs": {name: _sha256(out_dir / name) for name in outputs},
            "versions": _versions(),
        }
        _write_json(out_dir / _INFO, info)
    log.info("prepared %s: %s", out_dir, counts.get("sizes"))
    return load_prepared(out_dir)


def _bpe_vocab_write(
    out_dir: Path, config: PrepareConfig, texts: dict[str, _SplitText], counts: dict[str, Any]
) -> list[str]:
    src, tgt = config.src_lang, config.tgt_lang
    train = texts["train"]
    if not train.src_tok:
        raise DataError("the train split has no sentence pairs left to learn BPE and vocab from.")
    outputs: list[str] = []
    bpe: BPE | None = None
    if config.bpe_merges > 0:
        learned = learn_bpe(
            itertools.chain(train.src_tok, train.tgt_tok),
            out_dir / _CODES,
            config.bpe_merges,
            min_frequency=config.bpe_min_frequency,
        )
        counts["bpe_merges_learned"] = learned
        bpe = BPE(out_dir / _CODES)
        outputs.append(_CODES)
    else:
        (out_dir / _CODES).unlink(missing_ok=True)
    bpe_text = {
        split: (
            bpe.apply_lines(t.src_tok) if bpe else list(t.src_tok),
            bpe.apply_lines(t.tgt_tok) if bpe else list(t.tgt_tok),
        )
        for split, t in texts.items()
    }
    kept, report = filter_pairs(
        *bpe_text["train"], max_len=config.max_len, min_len=config.min_len, ratio=config.ratio
    )
    counts["train_filter"] = report.to_dict()
    if not kept:
        raise DataError(f"the length filter dropped every train pair ({report}); relax max_len.")
    bpe_text["train"] = tuple([side[i] for i in kept] for side in bpe_text["train"])
    if config.joint_vocab:
        src_vocab = tgt_vocab = Vocab.build(
            itertools.chain(*bpe_text["train"]),
            min_freq=config.vocab_min_freq,
            max_size=config.vocab_max_size,
        )
    else:
        src_vocab, tgt_vocab = (
            Vocab.build(side, min_freq=config.vocab_min_freq, max_size=config.vocab_max_size)
            for side in bpe_text["train"]
        )
    vocab_info = {
        "joint": config.joint_vocab,
        "src": src_vocab.to_dict(),
        "tgt": tgt_vocab.to_dict(),
    }
    _write_json(out_dir / _VOCAB, {"format": "g2lstm.mt.vocabs", "version": 1, **vocab_info})
    outputs.append(_VOCAB)
    counts["vocab_size"] = {"src": len(src_vocab), "tgt": len(tgt_vocab)}
    counts["sizes"] = {split: len(pair[0]) for split, pair in bpe_text.items()}
    for split, (src_lines, tgt_lines) in bpe_text.items():
        files = [(f"{split}.{src}", src_lines), (f"{split}.{tgt}", tgt_lines)]
        if split != "train":
            t = texts[split]
            files += [(f"{split}.tok.{src}", t.src_tok), (f"{split}.tok.{tgt}", t.tgt_tok)]
            files += [(f"{split}.detok.{src}", t.src_ref), (f"{split}.detok.{tgt}", t.tgt_ref)]
        for name, lines in files:
            _write_lines(out_dir / name, lines)
            outputs.append(name)
    return outputs


def prepare_dataset(
    raw: str | Path | Mapping[str, tuple[str | Path, str | Path]],
    out_dir: str | Path,
    src_lang: str,
    tgt_lang: str,
    *,
    splits: Mapping[str, str] | None = None,
    overwrite: bool = False,
    **settings: Any,
) -> PreparedData:
    """Prepare line-aligned parallel files for training (see the module docstring).

    Args:
        raw: a folder holding ``{prefix}.{src_lang}`` / ``{prefix}.{tgt_lang}`` per split, or a
            mapping ``split -> (src_file, tgt_file)``.
        out_dir: output folder (created).
        src_lang, tgt_lang: language codes (file suffixes and Moses rules).
        splits: for a folder, ``split name -> file prefix`` (default ``train``, ``valid``,
            ``test`` named as themselves). Must contain ``"train"``.
        overwrite: replace an output folder prepared with other settings or inputs.
        **settings: fields of :class:`PrepareConfig` (``tokenize``, ``lowercase``,
            ``normalize_punct``, ``escape``, ``bpe_merges``, ``max_len``, ``ratio``, ...).

    Empty lines are dropped from every split and counted; the length filter only touches train.
    """
    config = PrepareConfig.make(src_lang, tgt_lang, settings)
    if isinstance(raw, Mapping):
        if splits is not None:
            raise ConfigError("prepare_dataset: pass splits only with a folder, not a file map.")
        files = {name: (Path(s), Path(t)) for name, (s, t) in raw.items()}
    else:
        prefixes = dict(splits or {"train": "train", "valid": "valid", "test": "test"})
        files = {
            name: (Path(raw) / f"{p}.{src_lang}", Path(raw) / f"{p}.{tgt_lang}")
            for name, p in prefixes.items()
        }
    if "train" not in files:
        raise ConfigError(f"prepare_dataset: splits must include 'train', got {sorted(files)}.")
    input_files = {}
    for name, (s, t) in files.items():
        for lang, path in ((src_lang, s), (tgt_lang, t)):
            if not path.is_file():
                raise DataError(f"{path}: the {name} split's {lang} file is missing.")
            input_files[f"{name}.{lang}"] = path

    def build() -> tuple[dict[str, _SplitText], dict[str, Any]]:
        tok_src = Tokenizer(config.tokenizer_config(src_lang))
        tok_tgt = Tokenizer(config.tokenizer_config(tgt_lang))
        texts, reads = {}, {}
        for name, (s, t) in files.items():
            par = read_parallel(s, t)
            reads[name] = par.report.to_dict()
            if par.report.num_empty:
                log.warning("%s", par.report)
            src_tok, tgt_tok = tok_src.tokenize_lines(par.src), tok_tgt.tokenize_lines(par.tgt)
            if config.tokenize:
                src_ref, tgt_ref = par.src, par.tgt
            else:  # already tokenised input: the best original we have is its detokenisation
                src_ref, tgt_ref = (
                    tok_src.detokenize_lines(src_tok),
                    tok_tgt.detokenize_lines(tgt_tok),
                )
            texts[name] = _SplitText(src_tok, tgt_tok, src_ref, tgt_ref)
        return texts, {"read": reads}

    pipeline = {"name": "parallel", "splits": sorted(files)}
    return _run(out_dir, config, pipeline, input_files, build, overwrite)


def multi30k_files(
    data_dir: str | Path, *, variant: str = "tok", src_lang: str = "de", tgt_lang: str = "en"
) -> dict[str, tuple[Path, Path]]:
    """``split -> (src_file, tgt_file)`` of ``<data_dir>/multi30k/<variant>``."""
    if variant not in ("tok", "raw"):
        raise ConfigError(f"multi30k variant must be 'tok' or 'raw', got {variant!r}.")
    root = Path(data_dir) / "multi30k" / variant
    return {
        split: (root / f"{p}.{src_lang}", root / f"{p}.{tgt_lang}")
        for split, p in MULTI30K_SPLITS.items()
    }


def prepare_multi30k(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    src_lang: str = "de",
    tgt_lang: str = "en",
    variant: str = "tok",
    overwrite: bool = False,
    **settings: Any,
) -> PreparedData:
    """Multi30k (task 1) with the paper-like "tokenised, lowercased" setup.

    ``variant="tok"`` (default) reads the official ``*.lc.norm.tok`` files (already lowercased,
    punctuation-normalised, Moses-tokenised with escapes) and passes them through;
    ``variant="raw"`` reads the original text and runs the same steps with sacremoses (this
    reproduces the ``tok`` files). Defaults: 10,000 joint BPE merges, train pairs with more
    than 64 subwords dropped (paper), Moses ratio 9. ``settings`` override
    :class:`PrepareConfig` fields.
    """
    preset: dict[str, Any] = {"lowercase": True, "escape": True, "max_len": 64}
    if variant == "raw":
        preset.update(tokenize=True, normalize_punct=True)
    else:
        preset.update(tokenize=False)
    preset.update(settings)
    files = multi30k_files(data_dir, variant=variant, src_lang=src_lang, tgt_lang=tgt_lang)
    return prepare_dataset(files, out_dir, src_lang, tgt_lang, overwrite=overwrite, **preset)


def prepare_iwslt14(
    de_en_dir: str | Path,
    out_dir: str | Path,
    *,
    src_lang: str = "de",
    tgt_lang: str = "en",
    clean_max_len: int = 175,
    clean_ratio: float = 1.5,
    valid_every: int = 23,
    drop_all_tag_lines: bool = False,
    overwrite: bool = False,
    **settings: Any,
) -> PreparedData:
    """IWSLT'14 De-En exactly as fairseq ``examples/translation/prepare-iwslt14.sh``.

    ``de_en_dir`` is the folder extracted from the 2014-01 ``de-en.tgz``
    (``train.tags.de-en.{de,en}``, ``IWSLT14.TED*.de-en.{de,en}.xml``). Steps:

    1. train: drop ``<url>``/``<talkid>``/``<keywords>`` lines, delete ``<title>`` and
       ``<description>`` tags (:func:`read_iwslt_train_tags`); Moses-tokenise with escapes;
       clean-corpus-n with lengths 1..``clean_max_len`` (175) and ratio ``clean_ratio`` (1.5);
       lowercase.
    2. valid = every ``valid_every``-th (23rd) line of the cleaned train (lines 23, 46, ...);
       train = the other lines.
    3. test = the ``<seg>`` text of TED dev2010, TEDX dev2012, TED tst2010/2011/2012,
       concatenated, with U+2019 -> ``'``, Moses-tokenised and lowercased (not cleaned).
    4. joint BPE (10,000 merges) on train, applied to all splits; vocabulary.

    fairseq's published output has 160,239 / 7,283 / 6,750 pairs. ``settings`` override
    :class:`PrepareConfig` fields (e.g. ``bpe_merges``, ``max_len=64`` for the paper's subword
    limit); by default no further filtering happens after the Moses clean.
    """
    root = Path(de_en_dir)
    if sorted((src_lang, tgt_lang)) != ["de", "en"]:
        raise ConfigError(
            f"prepare_iwslt14: languages must be de and en, got {src_lang}, {tgt_lang}."
        )
    if clean_max_len < 1 or clean_ratio < 1.0 or valid_every < 2:
        raise ConfigError(
            "prepare_iwslt14: need clean_max_len >= 1, clean_ratio >= 1 and valid_every >= 2."
        )
    preset: dict[str, Any] = {"tokenize": True, "lowercase": True, "escape": True, "ratio": None}
    preset.update(settings)
    config = PrepareConfig.make(src_lang, tgt_lang, preset)
    pair = "de-en"
    input_files: dict[str, Path] = {}
    for lang in (src_lang, tgt_lang):
        input_files[f"train.{lang}"] = root / f"train.tags.{pair}.{lang}"
        for name in IWSLT14_TEST_SETS:
            input_files[f"{name}.{lang}"] = root / f"{name}.{pair}.{lang}.xml"
    missing = [str(p) for p in input_files.values() if not p.is_file()]
    if missing:
        raise DataError(
            f"prepare_iwslt14: missing files {missing[:3]} (and {len(missing)} in "
            f"all); pass the 'de-en' folder extracted from the IWSLT 2014-01 de-en.tgz."
        )

    def aligned(what: str, src: list[str], tgt: list[str]) -> None:
        if len(src) != len(tgt):
            raise DataError(
                f"IWSLT'14 {what}: {len(src)} {src_lang} but {len(tgt)} {tgt_lang} "
                f"lines; the two files are not aligned."
            )

    def build() -> tuple[dict[str, _SplitText], dict[str, Any]]:
        tok = {lang: Tokenizer(config.tokenizer_config(lang)) for lang in (src_lang, tgt_lang)}
        raw = {
            lang: read_iwslt_train_tags(
                input_files[f"train.{lang}"], drop_all_tag_lines=drop_all_tag_lines
            )
            for lang in (src_lang, tgt_lang)
        }
        aligned("train.tags", raw[src_lang], raw[tgt_lang])
        toks = {lang: tok[lang].tokenize_lines(raw[lang]) for lang in raw}
        kept, clean = filter_pairs(
            toks[src_lang], toks[tgt_lang], max_len=clean_max_len, min_len=1, ratio=clean_ratio
        )
        splits: dict[str, list[int]] = {"train": [], "valid": []}
        for pos, i in enumerate(kept, start=1):
            splits["valid" if pos % valid_every == 0 else "train"].append(i)
        texts = {
            name: _SplitText(
                *([toks[lang][i] for i in idx] for lang in (src_lang, tgt_lang)),
                *([raw[lang][i] for i in idx] for lang in (src_lang, tgt_lang)),
            )
            for name, idx in splits.items()
        }
        test = _SplitText([], [], [], [])
        test_sizes = {}
        for name in IWSLT14_TEST_SETS:
            segs = {
                lang: read_iwslt_xml_segments(input_files[f"{name}.{lang}"])
                for lang in (src_lang, tgt_lang)
            }
            aligned(name, segs[src_lang], segs[tgt_lang])
            test.src_tok += tok[src_lang].tokenize_lines(segs[src_lang])
            test.tgt_tok += tok[tgt_lang].tokenize_lines(segs[tgt_lang])
            test.src_ref += segs[src_lang]
            test.tgt_ref += segs[tgt_lang]
            test_sizes[name] = len(segs[src_lang])
        texts["test"] = test
        counts = {
            "train_tags_lines": len(raw[src_lang]),
            "moses_clean": clean.to_dict(),
            "test_sets": test_sizes,
        }
        return texts, counts

    pipeline = {
        "name": "iwslt14",
        "clean_max_len": clean_max_len,
        "clean_ratio": clean_ratio,
        "valid_every": valid_every,
        "test_sets": list(IWSLT14_TEST_SETS),
        "drop_all_tag_lines": drop_all_tag_lines,
    }
    return _run(out_dir, config, pipeline, input_files, build, overwrite)


@dataclass(frozen=True)
class PreparedData:
    """A prepared folder (see the module docstring), read by :func:`load_prepared`.

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
        from g2lstm.mt.data import read_lines

        return read_lines(self.path(split, lang, kind))

    def encoded(self, split: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(src_ids, tgt_ids)`` int32 arrays of every pair, without ``<s>``/``</s>``
        (:func:`g2lstm.mt.batching.collate` adds them)."""
        src = self.lines(split, self.src_lang)
        tgt = self.lines(split, self.tgt_lang)
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
