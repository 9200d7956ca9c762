"""BLEU wrappers against sacrebleu and Moses multi-bleu.perl on fixed strings."""

from __future__ import annotations

import json

import pytest
import sacrebleu

from g2lstm.errors import ConfigError, DataError
from g2lstm.mt.bleu import BleuResult, detok_bleu, score_bleu, tok_bleu, tok_lowercase

REFS_TOK = [
    "The cat sat on the mat .",
    "a dog is running in the park .",
    "a man stands on the street .",
    "Two children play with a red ball near the house .",
]
HYPS_TOK = [
    "the cat sat on the mat .",
    "a dog runs in the park .",
    "there is a man on the street",
    "two kids play with a red ball by the house .",
]
# Moses scripts/generic/multi-bleu.perl on these files:
#   multi-bleu.perl -lc ref < hyp  ->  BLEU = 54.530584 (84.4/67.9/50.0/35.0, BP=0.969)
#   multi-bleu.perl ref < hyp      ->  BLEU = 49.685550
MULTI_BLEU_LC = 54.530584
MULTI_BLEU_CASED = 49.685550


def test_perfect_match_is_100() -> None:
    refs = ["A man rides a horse.", "Two dogs play."]
    score, sig = detok_bleu(refs, refs)
    assert score == pytest.approx(100.0)
    assert "tok:13a" in sig and "case:mixed" in sig and "nrefs:1" in sig
    assert tok_bleu(REFS_TOK, REFS_TOK)[0] == pytest.approx(100.0)


def test_tok_bleu_equals_multi_bleu_perl() -> None:
    score, sig = tok_bleu(HYPS_TOK, REFS_TOK)
    assert score == pytest.approx(MULTI_BLEU_LC, abs=1e-5)
    assert "tok:none" in sig and "case:lc" in sig and "smooth:none" in sig
    assert tok_bleu(HYPS_TOK, REFS_TOK, lowercase=False)[0] == pytest.approx(
        MULTI_BLEU_CASED, abs=1e-5
    )


def test_detok_bleu_equals_sacrebleu_defaults() -> None:
    hyps = ["The cat sat on the mat.", "A dog runs in the park!"]
    refs = ["The cat sat on a mat.", "A dog is running in the park!"]
    metric = sacrebleu.BLEU()
    expected = metric.corpus_score(hyps, [refs])
    score, sig = detok_bleu(hyps, refs)
    assert score == pytest.approx(expected.score)
    assert 0 < score < 100
    assert sig == str(metric.get_signature())
    lc, lc_sig = detok_bleu([h.lower() for h in hyps], refs, lowercase=True)
    assert lc == pytest.approx(score) and "case:lc" in lc_sig


def test_tok_bleu_is_not_smoothed_like_multi_bleu() -> None:
    # no matching 4-gram: multi-bleu.perl prints 0, sacreBLEU's default exp smoothing does not
    assert tok_bleu(["a b c d"], ["a b c e"])[0] == 0.0
    assert detok_bleu(["a b c d"], ["a b c e"])[0] > 0.0


def test_result_has_both_labelled_numbers() -> None:
    refs_detok = ["The cat sat on the mat.", "A dog is running in the park."]
    hyps_detok = ["the cat sat on the mat.", "a dog runs in the park."]
    res = score_bleu(HYPS_TOK[:2], REFS_TOK[:2], hyps_detok, refs_detok, detok_lowercase=True)
    assert isinstance(res, BleuResult)
    assert res.tok_bleu == pytest.approx(tok_bleu(HYPS_TOK[:2], REFS_TOK[:2])[0])
    assert res.detok_bleu == pytest.approx(
        sacrebleu.corpus_bleu(hyps_detok, [refs_detok], lowercase=True).score
    )
    d = json.loads(json.dumps(res.to_dict()))
    assert set(d) == {"detok_bleu", "detok_signature", "tok_bleu", "tok_signature", "num_sentences"}
    assert d["num_sentences"] == 2
    assert "sacreBLEU (detokenised)" in str(res) and "tokenised BLEU" in str(res)


def test_misaligned_inputs() -> None:
    with pytest.raises(DataError, match="2 hypotheses but 1 references"):
        detok_bleu(["a", "b"], ["a"])
    with pytest.raises(DataError, match="no sentences"):
        tok_bleu([], [])


def test_tokenised_bleu_case_follows_the_target_language() -> None:
    # auto: case-sensitive into German (WMT En->De), lowercased into English (IWSLT De->En)
    assert tok_lowercase("auto", "de") is False and tok_lowercase("auto", "DE-de") is False
    assert tok_lowercase("auto", "en") is True and tok_lowercase("auto", "fr") is True
    assert tok_lowercase("lc", "de") is True and tok_lowercase("mixed", "en") is False
    with pytest.raises(ConfigError, match=r"tok_case='upper'.*auto, lc, mixed"):
        tok_lowercase("upper", "de")
    cased = score_bleu(
        HYPS_TOK, REFS_TOK, HYPS_TOK, REFS_TOK, tok_lowercase=tok_lowercase("auto", "de")
    )
    assert cased.tok_bleu == pytest.approx(MULTI_BLEU_CASED, abs=1e-5)
    assert "case:mixed" in cased.tok_signature
