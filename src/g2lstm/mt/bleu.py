"""The two BLEU numbers of an MT run, computed with sacrebleu and clearly labelled.

* **detok BLEU** (:func:`detok_bleu`): sacreBLEU on detokenised text with its default ``13a``
  tokenizer, reported with its signature. This is the shareable number (Post, 2018).
* **tokenised BLEU** (:func:`tok_bleu`): BLEU on Moses-tokenised, BPE-removed text with
  ``tokenize="none"``, lowercased by default and without smoothing -- what ``multi-bleu.perl``
  (``-lc``) prints and what the G2-LSTM paper and most IWSLT'14 papers report. It depends on
  the tokenisation, so never put it in the same column as a detok BLEU.

Case of the tokenised BLEU (:func:`tok_lowercase`): ``auto`` scores case-sensitively where
the target language calls for it -- German (the paper's WMT'14 En->De scores, like every WMT
En->De result, are case-sensitive: German capitalises nouns) -- and lowercased otherwise (the
IWSLT'14 De->En convention, ``multi-bleu.perl -lc``); ``lc`` and ``mixed`` force either. The
choice is in the signature printed beside the score (``case:lc`` / ``case:mixed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from g2lstm.errors import ConfigError, DataError

__all__ = [
    "CASE_SENSITIVE_TARGETS",
    "TOK_CASES",
    "BleuResult",
    "detok_bleu",
    "score_bleu",
    "tok_bleu",
    "tok_lowercase",
]

#: ``tok_case`` values: ``auto`` (by target language), ``lc`` (lowercased), ``mixed`` (as is).
TOK_CASES = ("auto", "lc", "mixed")
#: Target languages whose tokenised BLEU ``auto`` scores case-sensitively (WMT En->De).
CASE_SENSITIVE_TARGETS = frozenset({"de"})


def tok_lowercase(tok_case: str, tgt_lang: str) -> bool:
    """Whether tokenised BLEU lowercases, for a ``tok_case`` of :data:`TOK_CASES` and the
    target language code (``auto``: case-sensitive for :data:`CASE_SENSITIVE_TARGETS`)."""
    if tok_case not in TOK_CASES:
        raise ConfigError(
            f"tok_case={tok_case!r} is invalid; expected one of {', '.join(TOK_CASES)}"
        )
    if tok_case == "auto":
        return tgt_lang.lower().split("-")[0].split("_")[0] not in CASE_SENSITIVE_TARGETS
    return tok_case == "lc"


def _check(name: str, hyps: Sequence[str], refs: Sequence[str]) -> tuple[list[str], list[str]]:
    hyps, refs = list(hyps), list(refs)
    if len(hyps) != len(refs):
        raise DataError(
            f"{name}: {len(hyps)} hypotheses but {len(refs)} references; they must be aligned "
            f"one to one (was a sentence dropped or the output truncated?)."
        )
    if not hyps:
        raise DataError(f"{name}: no sentences to score.")
    return hyps, refs


def detok_bleu(
    hyps_detok: Sequence[str], refs_detok: Sequence[str], *, lowercase: bool = False
) -> tuple[float, str]:
    """sacreBLEU with its default ``13a`` tokenizer on detokenised text.

    Args:
        hyps_detok: detokenised hypotheses, one per sentence.
        refs_detok: the single reference for each (original, untokenised text).
        lowercase: case-insensitive (``case:lc`` in the signature).

    Returns:
        ``(score, signature)``, e.g. ``(34.2, "nrefs:1|case:mixed|eff:no|tok:13a|...")``.
    """
    from sacrebleu.metrics import BLEU

    hyps, refs = _check("detok_bleu", hyps_detok, refs_detok)
    metric = BLEU(lowercase=lowercase)
    score = metric.corpus_score(hyps, [refs])
    return float(score.score), str(metric.get_signature())


def tok_bleu(
    hyps_tok: Sequence[str], refs_tok: Sequence[str], *, lowercase: bool = True
) -> tuple[float, str]:
    """BLEU on already-tokenised text, as ``multi-bleu.perl`` (``-lc`` when ``lowercase``).

    No tokenisation (``tok:none``) and no smoothing (``smooth:none``: a corpus with no
    matching 4-gram scores 0, like multi-bleu.perl). Remove BPE first.

    Returns:
        ``(score, signature)``.
    """
    from sacrebleu.metrics import BLEU

    hyps, refs = _check("tok_bleu", hyps_tok, refs_tok)
    metric = BLEU(lowercase=lowercase, tokenize="none", smooth_method="none", force=True)
    score = metric.corpus_score(hyps, [refs])
    return float(score.score), str(metric.get_signature())


@dataclass(frozen=True)
class BleuResult:
    """Both BLEU numbers of one test set.

    Attributes:
        detok_bleu, detok_signature: sacreBLEU on detokenised text (shareable).
        tok_bleu, tok_signature: tokenised BLEU (multi-bleu.perl style, paper-comparable).
        num_sentences: sentences scored.
    """

    detok_bleu: float
    detok_signature: str
    tok_bleu: float
    tok_signature: str
    num_sentences: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the result."""
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"sacreBLEU (detokenised) = {self.detok_bleu:.2f} [{self.detok_signature}]; "
            f"tokenised BLEU (multi-bleu.perl style) = {self.tok_bleu:.2f} "
            f"[{self.tok_signature}]; {self.num_sentences} sentences"
        )


def score_bleu(
    hyps_tok: Sequence[str],
    refs_tok: Sequence[str],
    hyps_detok: Sequence[str],
    refs_detok: Sequence[str],
    *,
    tok_lowercase: bool = True,
    detok_lowercase: bool = False,
) -> BleuResult:
    """Compute both numbers: :func:`tok_bleu` on tokenised and :func:`detok_bleu` on
    detokenised text of the same sentences."""
    if len(hyps_tok) != len(hyps_detok):
        raise DataError(
            f"score_bleu: {len(hyps_tok)} tokenised but {len(hyps_detok)} detokenised hypotheses."
        )
    tok, tok_sig = tok_bleu(hyps_tok, refs_tok, lowercase=tok_lowercase)
    detok, detok_sig = detok_bleu(hyps_detok, refs_detok, lowercase=detok_lowercase)
    return BleuResult(detok, detok_sig, tok, tok_sig, len(hyps_tok))
