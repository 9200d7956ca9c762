"""Prepare an MT dataset: tokenise, learn and apply joint BPE, filter, build the vocabulary.

:func:`prepare_dataset` (any line-aligned corpus), :func:`prepare_multi30k` and
:func:`g2lstm.mt.iwslt.prepare_iwslt14` (built on this module's pipeline) write one output
folder; :func:`load_prepared` reads it back::

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

import itertools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from g2lstm.config_checks import flatten
from g2lstm.datasets.verify import sha256_file
from g2lstm.errors import ConfigError, DataError
from g2lstm.mt.bpe import BPE, learn_bpe
from g2lstm.mt.data import Tokenizer, filter_pairs, read_parallel
from g2lstm.mt.prepared import (
    _CODES,
    _FORMAT_VERSION,
    _INFO,
    _VOCAB,
    PrepareConfig,
    PreparedData,
    load_prepared,
)
from g2lstm.mt.vocab import Vocab
from g2lstm.train.atomic import atomic_path, atomic_write_text

__all__ = [
    "MULTI30K_SPLITS",
    "PrepareConfig",
    "PreparedData",
    "load_prepared",
    "multi30k_files",
    "prepare_dataset",
    "prepare_multi30k",
]

log = logging.getLogger(__name__)

#: Multi30k split name -> file prefix (``train``, ``val``, ``test2016``).
MULTI30K_SPLITS = {"train": "train", "valid": "val", "test": "test2016"}


@dataclass
class _SplitText:
    """One split after tokenisation: aligned tokenised lines and their original text."""

    src_tok: list[str]
    tgt_tok: list[str]
    src_ref: list[str]
    tgt_ref: list[str]


def _write_lines(path: Path, lines: list[str]) -> None:
    # a fresh temporary name (never a fixed "X.tmp" a planted symlink could occupy), renamed
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(line + "\n" for line in lines)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("g2lstm", "sacremoses", "subword-nmt"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "unknown"
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
        old, new = flatten(info.get("settings", {})), flatten(settings)
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return f"it was prepared with other settings (differences in {diff})"
    old_sums = {k: v.get("sha256") for k, v in info.get("inputs", {}).items()}
    if old_sums != {k: v["sha256"] for k, v in inputs.items()}:
        return "it was prepared from other input files (sha256 differ)"
    for name, digest in info.get("outputs", {}).items():
        path = out_dir / name
        if not path.is_file() or sha256_file(path) != digest:
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
        key: {"path": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size}
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
            "outputs": {name: sha256_file(out_dir / name) for name in outputs},
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
