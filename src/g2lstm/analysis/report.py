"""``report.md``: the figures, each with one sentence computed from its numbers.

The ``*_sentence`` helpers turn the numbers behind a figure into the sentence printed under it,
e.g. "G2-LSTM: 71.2% of forget gates are near 0 or 1, against 14.0% for LSTM."
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from g2lstm.errors import G2LSTMError
from g2lstm.train.atomic import atomic_write_text

__all__ = [
    "PAPER_NEAR_BINARY",
    "ReportSection",
    "class_sentence",
    "hard_gate_sentence",
    "heatmap_sentence",
    "paper_reference",
    "polarisation_sentence",
    "sensitivity_sentence",
    "write_report",
]


#: Paper Figs. 1/3 (IWSLT'14 De→En decoder layer 1, digest §4): fraction of values < 0.1 or
#: >= 0.9, read from the PDF's vector data.
PAPER_NEAR_BINARY = {
    "G2-LSTM": {"input": 0.747, "forget": 0.619},
    "LSTM": {"input": 0.221, "forget": 0.130},
}


def paper_reference() -> str:
    """One line quoting the paper's near-0/1 fractions, for comparison."""
    g2, base = PAPER_NEAR_BINARY["G2-LSTM"], PAPER_NEAR_BINARY["LSTM"]
    return (
        f"Paper (IWSLT'14 De→En, decoder layer 1, Figs. 1/3): {_pct(g2['forget'])} of forget and "
        f"{_pct(g2['input'])} of input gates near 0 or 1 for G2-LSTM, against "
        f"{_pct(base['forget'])} and {_pct(base['input'])} for the LSTM."
    )


@dataclass
class ReportSection:
    """One section: a title, a figure (PNG path or None), its sentence and its data files."""

    title: str
    sentence: str
    figure: Path | None = None
    files: list[Path] = field(default_factory=list)
    table: str | None = None


def _pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _fixed(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"


def _versus(values: Mapping[str, str], what: str) -> str:
    """'A: v0 <what>, against v1 for B and v2 for C.'"""
    models = list(values)
    head = f"{models[0]}: {values[models[0]]} {what}"
    if len(models) == 1:
        return head + "."
    rest = " and ".join(f"{values[m]} for {m}" for m in models[1:])
    return f"{head}, against {rest}."


def polarisation_sentence(near: Mapping[str, Mapping[str, float]], layer: str = "") -> str:
    """One sentence from ``near[model][gate]`` (fraction near 0 or 1), forget then input.

    Example: "G2-LSTM: 61.9% of forget and 74.7% of input gates are near 0 or 1, against
    13.0% and 22.1% for LSTM."
    """
    gates = [g for g in ("forget", "input") if any(g in v for v in near.values())]
    if not gates:
        return "No input or forget gate values were recorded."
    where = f", {layer}" if layer else ""
    first, *others = list(near)

    def pcts(model: str) -> list[str]:
        return [_pct(near[model].get(g, float("nan"))) for g in gates]

    of = " and ".join(f"{p} of {g}" for p, g in zip(pcts(first), gates))
    head = f"{first}: {of} gates are near 0 or 1 (< 0.1 or ≥ 0.9{where})"
    rest = [f"{' and '.join(pcts(m))} for {m}" for m in others]
    return head + (", against " + "; ".join(rest) if rest else "") + "."


def heatmap_sentence(
    values: Mapping[str, Mapping[str, Sequence[float]]], tokens: Sequence[str]
) -> str:
    """From ``values[model][gate]`` per-token means: lowest forget token and mean input gate."""
    parts = []
    for model, gates in values.items():
        bits = []
        f = gates.get("forget")
        if f is not None and len(f):
            k = min(range(len(f)), key=lambda i: f[i])
            bits.append(f"lowest forget gate at '{tokens[k]}' ({f[k]:.2f})")
        i = gates.get("input")
        if i is not None and len(i):
            bits.append(f"mean input gate {sum(i) / len(i):.2f}")
        if bits:
            parts.append(f"{model}: " + ", ".join(bits))
    return ("; ".join(parts) + ".") if parts else "No gate values for this sentence."


def class_sentence(stats: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]]) -> str:
    """From ``stats[model][gate][class]``: forget-gate means on punctuation/function/content."""
    classes = ("punctuation", "function", "content")
    vals = []
    for model, gates in stats.items():
        f = gates.get("forget")
        if f:
            nums = " / ".join(_fixed(f.get(c, {}).get("mean", float("nan"))) for c in classes)
            vals.append(f"{model} {nums}")
    if not vals:
        return "No forget-gate statistics by token class were collected."
    return (
        "Mean forget gate on punctuation / function words / content words: "
        + "; ".join(vals)
        + " (the paper expects G2-LSTM's lowest forget gates on function words and punctuation)."
    )


def sensitivity_sentence(rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """At the largest sigma of each target: mean |Δ forget gate| and Δloss per model."""
    parts = []
    targets = list(dict.fromkeys(r["target"] for rs in rows.values() for r in rs))
    for target in targets:
        sigma = max(r["sigma"] for rs in rows.values() for r in rs if r["target"] == target)
        vals, gate = [], "forget"
        for model, rs in rows.items():
            at = [r for r in rs if r["target"] == target and r["sigma"] == sigma]
            row = next((r for r in at if r["gate"] == "forget"), at[0] if at else None)
            if row is None:
                continue
            gate = row["gate"]
            dl = row.get("delta_loss")
            loss = "" if dl is None else f" (loss {'+' if dl >= 0 else ''}{_num(dl)})"
            vals.append(f"{_num(row['mean_abs_delta'])} for {model}{loss}")
        if vals:
            what = "i/f gate weights" if target == "weights" else "inputs"
            parts.append(
                f"With {what} perturbed at sigma = {sigma:g}, {gate} gates move by "
                + ", ".join(vals)
                + " on average."
            )
    return " ".join(parts) or "No sensitivity measurements."


def hard_gate_sentence(
    results: Mapping[str, Mapping[str, Any]],
    metric: str = "metric",
    higher_is_better: bool | None = None,
) -> str:
    """From ``results[model]`` = ``{"soft", "hard", "relative"}``.

    With ``higher_is_better`` known, each change is called better or worse and the sentence
    says which direction is better, e.g. "G2-LSTM: BLEU 30.1 → 29.8 (-1.0%, worse) with
    exactly 0/1 gates, against ... Higher BLEU is better."
    """
    vals = {}
    for m, r in results.items():
        change = _signed_pct(r.get("relative"))
        verdict = _verdict(r.get("soft"), r.get("hard"), higher_is_better)
        vals[m] = f"{metric} {_num(r['soft'], 4)} → {_num(r['hard'], 4)} ({change}{verdict})"
    if not vals:
        return "No hard-gate evaluation."
    text = _versus(vals, "with exactly 0/1 gates")
    if higher_is_better is not None:
        text += f" {'Higher' if higher_is_better else 'Lower'} {metric} is better."
    return text


def _verdict(soft: float | None, hard: float | None, higher_is_better: bool | None) -> str:
    """``", better"`` / ``", worse"`` / ``", unchanged"`` for hard vs soft ("" if unknown)."""
    if higher_is_better is None or soft is None or hard is None:
        return ""
    if math.isnan(soft) or math.isnan(hard):
        return ""
    if soft == hard:
        return ", unchanged"
    return ", better" if (hard > soft) == higher_is_better else ", worse"


def _signed_pct(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:+.1f}%"


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), root.resolve())).as_posix()


def write_report(
    out_dir: str | os.PathLike[str],
    sections: Sequence[ReportSection],
    *,
    title: str = "Gate analysis",
    intro: str = "",
) -> Path:
    """Write ``out_dir/report.md`` embedding each section's figure with its sentence.

    Raises:
        G2LSTMError: a section's figure or data file does not exist.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro, ""]
    for s in sections:
        for p in ([s.figure] if s.figure else []) + list(s.files):
            if not Path(p).is_file():
                raise G2LSTMError(f"report section {s.title!r}: file {p} does not exist")
        lines += [f"## {s.title}", ""]
        if s.figure is not None:
            lines += [f"![{s.title}]({_rel(s.figure, root)})", ""]
        lines += [s.sentence, ""]
        if s.table:
            lines += [s.table, ""]
        if s.files:
            links = ", ".join(f"[{Path(p).name}]({_rel(p, root)})" for p in s.files)
            lines += [f"Numbers: {links}", ""]
    path = root / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
