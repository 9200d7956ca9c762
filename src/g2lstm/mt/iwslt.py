"""IWSLT'14 De-En preparation, step for step as fairseq's ``prepare-iwslt14.sh``.

:func:`prepare_iwslt14` runs the pipeline of :mod:`g2lstm.mt.prepare` (whose module docstring
describes the output folder) on the IWSLT'14 release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from g2lstm.errors import ConfigError, DataError
from g2lstm.mt.data import Tokenizer, filter_pairs, read_iwslt_train_tags, read_iwslt_xml_segments
from g2lstm.mt.prepare import _run, _SplitText
from g2lstm.mt.prepared import PrepareConfig, PreparedData

__all__ = ["IWSLT14_TEST_SETS", "prepare_iwslt14"]

#: fairseq prepare-iwslt14.sh: test = these TED sets concatenated, in this order.
IWSLT14_TEST_SETS = (
    "IWSLT14.TED.dev2010",
    "IWSLT14.TEDX.dev2012",
    "IWSLT14.TED.tst2010",
    "IWSLT14.TED.tst2011",
    "IWSLT14.TED.tst2012",
)


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
