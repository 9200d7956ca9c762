"""Verdicts on the paper's claims, computed from our numbers with an explicit rule.

Every claim is a comparison "model A is better than model B on metric M" (lower perplexity,
higher BLEU, a larger fraction of near-0/1 gates, a smaller loss under compression). With the
per-seed values ``a`` and ``b``:

1. fewer than 2 seeds on either side -> **inconclusive at this scale** (no spread to judge by);
2. ``|mean(a) - mean(b)| <= max(std(a), std(b))`` (sample std, ``ddof=1``), i.e. the gap is
   within one standard deviation -> **inconclusive at this scale**;
3. otherwise **held** if A is better, **did not hold** if B is.

A claim made of several comparisons (input *and* forget gates) holds if all hold, did not hold
if any did not hold, and is inconclusive otherwise. A claim whose numbers are missing (a part
not run) is **not run**. These rules are stated in the report next to the verdicts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DID_NOT_HOLD",
    "HELD",
    "INCONCLUSIVE",
    "NOT_RUN",
    "RULE",
    "Comparison",
    "Stats",
    "Verdict",
    "compare",
    "evaluate_claims",
]

HELD, DID_NOT_HOLD, INCONCLUSIVE, NOT_RUN = (
    "held",
    "did not hold",
    "inconclusive at this scale",
    "not run",
)
RULE = (
    "A comparison needs at least 2 seeds per model; it *held* when the better mean is on the "
    "side the paper claims and the gap exceeds the larger of the two sample standard "
    "deviations, *did not hold* when the gap exceeds it the other way, and is *inconclusive at "
    "this scale* otherwise (fewer than 2 seeds, or a gap within 1 std). A claim with several "
    "comparisons holds only if all hold."
)


@dataclass(frozen=True)
class Stats:
    """Mean, sample standard deviation (``nan`` for one value) and count of finite values."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        if not vals:
            return cls(math.nan, math.nan, 0)
        std = statistics.stdev(vals) if len(vals) > 1 else math.nan
        return cls(statistics.fmean(vals), std, len(vals))

    def format(self, digits: int = 2, scale: float = 1.0) -> str:
        """``"12.34 ± 0.56"``, ``"12.34"`` for one value, ``"–"`` for none."""
        if self.n == 0:
            return "–"
        if self.n == 1:
            return f"{self.mean * scale:.{digits}f}"
        return f"{self.mean * scale:.{digits}f} ± {self.std * scale:.{digits}f}"


@dataclass(frozen=True)
class Comparison:
    """One "A better than B" comparison with its outcome."""

    label: str
    a: Stats
    b: Stats
    higher_is_better: bool
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "status": self.status,
            "a": vars(self.a),
            "b": vars(self.b),
            "higher_is_better": self.higher_is_better,
        }


def compare(
    label: str, a: Sequence[float] | None, b: Sequence[float] | None, *, higher_is_better: bool
) -> Comparison:
    """Apply the rule of the module docstring to "A better than B"."""
    sa, sb = Stats.of(a or []), Stats.of(b or [])
    if sa.n == 0 or sb.n == 0:
        status = NOT_RUN
    elif sa.n < 2 or sb.n < 2:
        status = INCONCLUSIVE
    else:
        gap = sa.mean - sb.mean if higher_is_better else sb.mean - sa.mean
        status = (
            INCONCLUSIVE if abs(gap) <= max(sa.std, sb.std) else (HELD if gap > 0 else DID_NOT_HOLD)
        )
    return Comparison(label, sa, sb, higher_is_better, status)


@dataclass(frozen=True)
class Verdict:
    """A claim of the paper and the outcome of its comparisons."""

    claim: str
    source: str
    comparisons: tuple[Comparison, ...]

    @property
    def status(self) -> str:
        st = [c.status for c in self.comparisons]
        if not st or all(s == NOT_RUN for s in st):
            return NOT_RUN
        if DID_NOT_HOLD in st:
            return DID_NOT_HOLD
        if all(s == HELD for s in st):
            return HELD
        return INCONCLUSIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "source": self.source,
            "status": self.status,
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


def _get(numbers: Mapping[str, Any], *path: str) -> list[float] | None:
    node: Any = numbers
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return list(node) if isinstance(node, Sequence) else None


def _drop(
    numbers: Mapping[str, Any],
    part: str,
    cell: str,
    setting: str,
    metric: str,
    lower_is_better: bool,
) -> list[float] | None:
    """Per-seed loss of quality under compression ``setting`` (positive = worse)."""
    orig = _get(numbers, part, cell, metric)
    comp = _get(numbers, part, cell, "compression", setting)
    if not orig or not comp or len(orig) != len(comp):
        return None
    return [(c - o) if lower_is_better else (o - c) for o, c in zip(orig, comp)]


def _hard_cost(numbers: Mapping[str, Any], part: str, cell: str) -> list[float] | None:
    """Per-seed relative perplexity increase from soft to hard (0/1) gates."""
    soft, hard = (
        _get(numbers, part, cell, "hard", "soft"),
        _get(numbers, part, cell, "hard", "hard"),
    )
    if not soft or not hard or len(soft) != len(hard):
        return None
    return [(h - s) / s for s, h in zip(soft, hard)]


def evaluate_claims(numbers: Mapping[str, Any]) -> list[Verdict]:
    """The verdicts on the paper's claims (docs ``paper.md`` §6) from collected numbers.

    ``numbers`` (see :func:`g2lstm.reproduce.collect.collect`) maps ``"lm"``/``"mt"`` to
    ``cell -> {"test_ppl" | "tok_bleu": [per seed], "compression": {setting: [...]},
    "near_binary": {gate: [...]}, "hard": {"soft": [...], "hard": [...]}}``.
    """
    n = numbers
    lower, higher = {"higher_is_better": False}, {"higher_is_better": True}
    v: list[Verdict] = []
    for part, where in (("lm", "PTB LM, first layer"), ("mt", "MT, first decoder layer")):
        v.append(
            Verdict(
                f"G2-LSTM gates are closer to 0/1 than the baseline's ({where})",
                "Figs. 1/3; §6 claim 1",
                tuple(
                    compare(
                        f"{g} gates near 0/1, G2 vs LSTM",
                        _get(n, part, "g2", "near_binary", g),
                        _get(n, part, "lstm", "near_binary", g),
                        **higher,
                    )
                    for g in ("input", "forget")
                ),
            )
        )
    v.append(
        Verdict(
            "G2-LSTM reaches a lower test perplexity than the baseline LSTM",
            "Table 1; §6 claim 2",
            (
                compare(
                    "test ppl, G2 vs LSTM",
                    _get(n, "lm", "g2", "test_ppl"),
                    _get(n, "lm", "lstm", "test_ppl"),
                    **lower,
                ),
            ),
        )
    )
    v.append(
        Verdict(
            "Sharpened Sigmoid is no substitute: G2-LSTM beats it, with more polarised gates",
            "Tables 1/2; §6 claim 4",
            (
                compare(
                    "test ppl, G2 vs Sharpened",
                    _get(n, "lm", "g2", "test_ppl"),
                    _get(n, "lm", "sharpened", "test_ppl"),
                    **lower,
                ),
                compare(
                    "forget gates near 0/1, G2 vs Sharpened",
                    _get(n, "lm", "g2", "near_binary", "forget"),
                    _get(n, "lm", "sharpened", "near_binary", "forget"),
                    **higher,
                ),
            ),
        )
    )
    v.append(
        Verdict(
            "G2-LSTM loses less perplexity than the baseline under low-rank compression",
            "Table 3 (lower SVD rank); §6 claim 5",
            (
                compare(
                    "ppl increase at the low rank, G2 vs LSTM",
                    _drop(n, "lm", "g2", "svd_low", "test_ppl", True),
                    _drop(n, "lm", "lstm", "svd_low", "test_ppl", True),
                    **lower,
                ),
            ),
        )
    )
    v.append(
        Verdict(
            "G2-LSTM loses less perplexity than the baseline under round & clip",
            "Table 3 (round & clip); §6 claim 6",
            (
                compare(
                    "ppl increase under round & clip, G2 vs LSTM",
                    _drop(n, "lm", "g2", "round_clip", "test_ppl", True),
                    _drop(n, "lm", "lstm", "round_clip", "test_ppl", True),
                    **lower,
                ),
            ),
        )
    )
    v.append(
        Verdict(
            "Hard 0/1 gates at test time cost G2-LSTM less than the baseline (extension)",
            "§6 claim 10 (not tested in the paper)",
            (
                compare(
                    "relative ppl increase with hard i/f gates, G2 vs LSTM",
                    _hard_cost(n, "lm", "g2"),
                    _hard_cost(n, "lm", "lstm"),
                    **lower,
                ),
            ),
        )
    )
    v.append(
        Verdict(
            "G2-LSTM translates better than the baseline (tokenised BLEU)",
            "Table 2; §6 claim 11",
            (
                compare(
                    "test BLEU, G2 vs LSTM",
                    _get(n, "mt", "g2", "tok_bleu"),
                    _get(n, "mt", "lstm", "tok_bleu"),
                    **higher,
                ),
            ),
        )
    )
    v.append(
        Verdict(
            "G2-LSTM loses less BLEU than the baseline under round & clip and low rank",
            "Tables 4/5; §6 claim 11",
            tuple(
                compare(
                    f"BLEU drop under {label}, G2 vs LSTM",
                    _drop(n, "mt", "g2", s, "tok_bleu", False),
                    _drop(n, "mt", "lstm", s, "tok_bleu", False),
                    **lower,
                )
                for s, label in (("round_clip", "round & clip"), ("svd_low", "the low rank"))
            ),
        )
    )
    return v
