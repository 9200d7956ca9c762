"""Verdicts on claims 3, 7, 8 and 9 (docs ``paper.md`` §6) from the ablation numbers.

The comparisons use the rule of :mod:`g2lstm.reproduce.verdicts` (:func:`compare`: two seeds
per side at least, a gap beyond the larger sample std). Claim 8 says that something does
*not* change much, so it uses the same rule the other way round (:func:`equivalent`): with a
margin ``m`` (half the G2-LSTM's test-perplexity gain over the baseline LSTM, the effect the
paper is about), a gap ``d`` between the means and the larger std ``s``, it **held** when
``d + s <= m``, **did not hold** when ``d - s > m``, and is inconclusive otherwise.

``numbers["ablations"]["runs"]`` is :func:`g2lstm.reproduce.ablation_collect.collect_ablations`'s;
at a reduced budget (``budget.epochs``) claims 7-9 are judged on the reduced runs, claim 3
always on the plan's full-budget cells.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from g2lstm.reproduce.ablations import G2_TAU, PROBE, run_key, sweep_keys
from g2lstm.reproduce.verdicts import (
    DID_NOT_HOLD,
    HELD,
    INCONCLUSIVE,
    NOT_RUN,
    Comparison,
    Stats,
    Verdict,
    compare,
)

__all__ = [
    "EQUIVALENCE_RULE",
    "ablation_claims",
    "equivalent",
    "final_gap",
    "gap_at_equal_loss",
]

EQUIVALENCE_RULE = (
    "Claim 8 (the temperature changes the result little) is judged the other way round, "
    "against a margin of half the G2-LSTM's test-perplexity gain over the baseline LSTM: "
    "*held* when the gap between the two means plus the larger std is within the margin, "
    "*did not hold* when the gap minus that std exceeds it, *inconclusive at this scale* "
    "otherwise (or with fewer than 2 seeds)."
)


def equivalent(
    label: str, a: Sequence[float] | None, b: Sequence[float] | None, margin: float | None
) -> Comparison:
    """ "A is within ``margin`` of B" by the rule of the module docstring."""
    sa, sb = Stats.of(a or []), Stats.of(b or [])
    if sa.n == 0 or sb.n == 0:
        status = NOT_RUN
    elif sa.n < 2 or sb.n < 2 or margin is None or not math.isfinite(margin):
        status = INCONCLUSIVE
    else:
        gap, spread = abs(sa.mean - sb.mean), max(sa.std, sb.std)
        status = (
            HELD
            if gap + spread <= margin
            else DID_NOT_HOLD
            if gap - spread > margin
            else INCONCLUSIVE
        )
    return Comparison(label, sa, sb, False, status)


def _values(runs: Mapping[str, Any], key: str, *path: str) -> list[float] | None:
    node: Any = runs.get(key)
    for p in path:
        if not isinstance(node, Mapping) or p not in node:
            return None
        node = node[p]
    if not isinstance(node, Sequence):
        return None
    return [float(v) if v is not None else math.nan for v in node]


def _delta(runs: Mapping[str, Any], key: str, column: str) -> list[float] | None:
    """Per-seed test-perplexity increase under compression ``column`` (no cache)."""
    orig = _values(runs, key, "test", "soft")
    comp = _values(runs, key, "compression", column, "test")
    if not orig or not comp or len(orig) != len(comp):
        return None
    return [c - o for o, c in zip(orig, comp)]


def final_gap(runs: Mapping[str, Any], key: str) -> list[float] | None:
    """Per-seed generalisation gap of the probed (best-validation) weights:
    ``log(valid ppl) - log(clean train ppl)`` in nats per token. The best epoch is the last
    one unless validation stopped improving (the LSTM's can be epoch 6 of 13)."""
    valid, train = _values(runs, key, "valid", "soft"), _values(runs, key, "train_ppl")
    if not valid or not train or len(valid) != len(train):
        return None
    return [
        math.log(v) - math.log(t) if v > 0 and t > 0 else math.nan for v, t in zip(valid, train)
    ]


def _points(rows: Sequence[Mapping[str, Any]]) -> list[tuple[float, float]]:
    """``(train loss, valid - train loss)`` per epoch of one run's log (nats)."""
    out = []
    for r in rows:
        t, v = r.get("train_ppl"), r.get("valid_ppl")
        if isinstance(t, (int, float)) and isinstance(v, (int, float)) and t > 0 and v > 0:
            out.append((math.log(t), math.log(v) - math.log(t)))
    return out


def _interp(points: Sequence[tuple[float, float]], x: float) -> float:
    pts = sorted(points)
    if not pts or x < pts[0][0] or x > pts[-1][0]:
        return math.nan
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return pts[0][1]


def gap_at_equal_loss(
    runs: Mapping[str, Any], keys: Sequence[str], at: float | None = None
) -> tuple[dict[str, list[float]], float | None]:
    """Per-seed gap ``log(valid) - log(train)`` of each run in ``keys``, interpolated between
    epochs at the same logged training loss ``at`` (nats; default: the highest final training
    loss among them, so that every run reached it; a run that never reached ``at`` gives NaN).
    Returns ``(key -> values, that loss in nats)``."""
    curves = {k: [_points(rows) for rows in (runs.get(k) or {}).get("curves") or []] for k in keys}
    finals = [min(p[0] for p in pts) for runs_k in curves.values() for pts in runs_k if pts]
    if not finals:
        return {k: [] for k in keys}, None
    level = max(finals) if at is None else at
    return {
        k: [_interp(pts, level) for pts in runs_k if pts] for k, runs_k in curves.items()
    }, level


def _lower_ppl(runs: Mapping[str, Any], label: str, a: str, b: str) -> Comparison:
    """ "Run ``a`` has a lower test perplexity (soft gates, no cache) than run ``b``"."""
    test_a, test_b = _values(runs, a, "test", "soft"), _values(runs, b, "test", "soft")
    return compare(label, test_a, test_b, higher_is_better=False)


def _margin(runs: Mapping[str, Any], lstm: str, g2: str) -> float | None:
    a, b = (
        Stats.of(_values(runs, lstm, "test", "soft") or []),
        Stats.of(_values(runs, g2, "test", "soft") or []),
    )
    if a.n == 0 or b.n == 0:
        return None
    return abs(a.mean - b.mean) / 2


def ablation_claims(numbers: Mapping[str, Any]) -> list[Verdict]:
    """The verdicts on claims 3, 7, 8 and 9 (``not run`` without ablation numbers)."""
    abl = numbers.get("ablations") or {}
    runs: Mapping[str, Any] = abl.get("runs") or {}
    epochs = (abl.get("budget") or {}).get("epochs")
    lower = {"higher_is_better": False}
    lstm, g2 = run_key("lstm", epochs), run_key("g2", epochs)
    gaps, level = gap_at_equal_loss(runs, ("g2", "lstm"))
    at = f" (train ppl {math.exp(level):.1f})" if level is not None else ""
    out = [
        Verdict(
            "G2-LSTM generalises better: a smaller train-valid gap than the baseline LSTM",
            "§6 claim 3 (ICLR version's abstract)",
            (
                compare(
                    "valid - train loss of the best-validation weights (nats, clean train ppl), "
                    "G2 vs LSTM",
                    final_gap(runs, "g2"),
                    final_gap(runs, "lstm"),
                    **lower,
                ),
                compare(
                    f"valid - train loss at equal logged training loss{at}, G2 vs LSTM",
                    gaps.get("g2") or None,
                    gaps.get("lstm") or None,
                    **lower,
                ),
                compare(
                    f"loss increase, i/f gate weights perturbed (sigma {PROBE.sensitivity_sigma:g}"
                    " x row rms; flatness proxy), G2 vs LSTM",
                    _values(runs, "g2", "sensitivity"),
                    _values(runs, "lstm", "sensitivity"),
                    **lower,
                ),
            ),
        )
    ]
    p_keys = sweep_keys("p", epochs)
    out.append(
        Verdict(
            "G2-LSTM beats the baseline LSTM at every noise probability p",
            "README; §6 claim 7",
            tuple(_lower_ppl(runs, f"test ppl, G2 p={p:g} vs LSTM", k, lstm) for p, k in p_keys),
        )
    )
    (p_lo, k_lo), (p_hi, k_hi) = p_keys[0], p_keys[-1]
    out.append(
        Verdict(
            f"The smallest p ({p_lo:g}) gives the best uncompressed perplexity",
            "README; §6 claim 7",
            tuple(
                _lower_ppl(runs, f"test ppl, p={p_lo:g} vs p={p:g}", k_lo, k) for p, k in p_keys[1:]
            ),
        )
    )
    out.append(
        Verdict(
            f"The largest p ({p_hi:g}) loses the least under low rank and rounding",
            "README; §6 claim 7",
            tuple(
                compare(
                    f"ppl increase under {label}, p={p_hi:g} vs p={p:g}",
                    _delta(runs, k_hi, column),
                    _delta(runs, k, column),
                    **lower,
                )
                for column, label in (("svd_h16", "SVD H/16"), ("round", "round 0.2"))
                for p, k in p_keys[:-1]
            ),
        )
    )
    margin = _margin(runs, lstm, g2)
    width = f"±{margin:.2f}" if margin is not None else "± half the G2 gain"
    out.append(
        Verdict(
            "The temperature tau changes the result little",
            "§3.2 / §4 ('no significant effects'); §6 claim 8",
            tuple(
                equivalent(
                    f"test ppl, tau={t:g} vs tau={G2_TAU:g}, within {width}",
                    _values(runs, k, "test", "soft"),
                    _values(runs, g2, "test", "soft"),
                    margin,
                )
                for t, k in sweep_keys("tau", epochs)
                if k != g2
            ),
        )
    )
    out.append(
        Verdict(
            "Noise on the output gate as well hurts perplexity",
            "§3.2; §6 claim 9",
            (
                _lower_ppl(
                    runs,
                    "test ppl, G2 (input/forget noise) vs G2 (input/forget/output noise)",
                    g2,
                    run_key("g2-ifo", epochs),
                ),
            ),
        )
    )
    return out
