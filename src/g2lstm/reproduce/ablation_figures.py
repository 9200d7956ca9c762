"""The ablation figures (matplotlib, Agg): perplexity and compression deltas against the noise
probability and the temperature, and train-valid gap curves over training.

Inputs are ``numbers["ablations"]["runs"]`` (:mod:`~g2lstm.reproduce.ablation_collect`);
error bars are the sample std over seeds (none for one seed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from g2lstm.analysis.plots import add_legend, new_figure, save_figure
from g2lstm.reproduce.ablations import PROBE_COLUMNS
from g2lstm.reproduce.paper import CELL_LABELS
from g2lstm.reproduce.verdicts import Stats

__all__ = ["plot_gap_curves", "plot_sweep"]

_CELL_COLORS = {"lstm": "#4477aa", "sharpened": "#ccbb44", "g2": "#ee6677"}
_COLUMN_COLORS = ("#4477aa", "#66ccee", "#228833", "#ccbb44", "#aa3377")


def _stats(values: Sequence[Any] | None) -> Stats:
    return Stats.of([v for v in values or [] if v is not None])


def _err(st: Stats) -> float:
    return 0.0 if math.isnan(st.std) else st.std


def _series(
    runs: Mapping[str, Any], points: Sequence[tuple[float, str]], get: Any
) -> tuple[list[float], list[float], list[float]]:
    xs, ys, es = [], [], []
    for value, key in points:
        st = _stats(get(runs.get(key) or {}))
        if st.n:
            xs.append(value)
            ys.append(st.mean)
            es.append(_err(st))
    return xs, ys, es


def _delta(run: Mapping[str, Any], column: str, what: str) -> list[float]:
    orig = (run.get("test") or {}).get("soft_pointer" if what == "test_pointer" else "soft") or []
    comp = ((run.get("compression") or {}).get(column) or {}).get(what) or []
    return [c - o for o, c in zip(orig, comp) if o is not None and c is not None]


def plot_sweep(
    runs: Mapping[str, Any],
    points: Sequence[tuple[float, str]],
    baseline: str,
    path: Path,
    *,
    name: str,
    log_x: bool = False,
) -> Path:
    """Test perplexity (soft gates, without and with the cache pointer) and the perplexity
    increase under each compression against the swept value.

    Args:
        runs: the ablation runs.
        points: ``(value, run key)`` of the sweep, in value order.
        baseline: run key of the LSTM baseline (dashed lines).
        name: the swept quantity for the axis (``noise probability p``).
    """
    fig = new_figure((11, 3.8))
    left, right = fig.subplots(1, 2)
    base = runs.get(baseline) or {}
    for mode, label, style in (
        ("soft", "test ppl", "o-"),
        ("soft_pointer", "test ppl + cache pointer", "s--"),
    ):
        xs, ys, es = _series(runs, points, lambda r, m=mode: (r.get("test") or {}).get(m))
        if xs:
            left.errorbar(xs, ys, yerr=es, fmt=style, capsize=3, color="#ee6677", label=label)
        st = _stats((base.get("test") or {}).get(mode))
        if st.n:
            left.axhline(
                st.mean,
                color="#4477aa",
                ls=":" if mode == "soft" else "-.",
                lw=1,
                label=f"baseline LSTM ({label})",
            )
    left.set_xlabel(name)
    left.set_ylabel("perplexity")
    left.set_title(f"G2-LSTM test perplexity against {name}")
    for k, (column, label) in enumerate(PROBE_COLUMNS.items()):
        xs, ys, es = _series(runs, points, lambda r, c=column: _delta(r, c, "test"))
        if xs:
            right.errorbar(
                xs, ys, yerr=es, fmt="o-", capsize=3, color=_COLUMN_COLORS[k], label=label
            )
    right.axhline(0, color="k", lw=0.6)
    right.set_xlabel(name)
    right.set_ylabel("Δ test perplexity (lower is better)")
    right.set_title("perplexity increase under compression (i/f gates)")
    values = [v for v, _ in points]
    for ax in (left, right):
        if log_x:
            ax.set_xscale("log")
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        add_legend(ax, fontsize=7)
    if not any(runs.get(k) for _, k in points):
        left.text(0.5, 0.5, "no runs", ha="center", transform=left.transAxes)
    return save_figure(fig, path)


def plot_gap_curves(runs: Mapping[str, Any], keys: Sequence[str], path: Path) -> Path:
    """Generalisation gap ``log(valid ppl) - log(train ppl)`` (nats; train ppl as the trainer
    logged it, with G2's noise) per epoch, and against the training perplexity; one faint
    line per seed, the mean in bold."""
    fig = new_figure((11, 3.8))
    left, right = fig.subplots(1, 2)
    drawn = False
    for key in keys:
        color = _CELL_COLORS.get(key.split("-")[0])
        label = CELL_LABELS.get(key, key)
        per_epoch: dict[int, list[float]] = {}
        for k, rows in enumerate((runs.get(key) or {}).get("curves") or []):
            pts = [
                (int(r["epoch"]), float(r["train_ppl"]), float(r["valid_ppl"]))
                for r in rows
                if r.get("train_ppl") and r.get("valid_ppl")
            ]
            if not pts:
                continue
            drawn = True
            gaps = [math.log(v) - math.log(t) for _, t, v in pts]
            left.plot([e for e, _, _ in pts], gaps, color=color, alpha=0.3, lw=0.8)
            right.plot(
                [t for _, t, _ in pts],
                gaps,
                color=color,
                marker="o",
                ms=2.5,
                lw=1,
                label=label if k == 0 else None,
            )
            for (e, _, _), g in zip(pts, gaps):
                per_epoch.setdefault(e, []).append(g)
        if per_epoch:
            epochs = sorted(per_epoch)
            left.plot(
                epochs,
                [sum(per_epoch[e]) / len(per_epoch[e]) for e in epochs],
                color=color,
                lw=2,
                label=f"{label} (mean)",
            )
    left.set_xlabel("epoch")
    left.set_title("train-valid gap over training")
    right.set_xscale("log")
    right.invert_xaxis()
    right.set_xlabel("training perplexity (logged; falls to the right)")
    right.set_title("the gap at equal training loss")
    for ax in (left, right):
        ax.set_ylabel("log valid ppl - log train ppl (nats)")
        ax.axhline(0, color="k", lw=0.6)
        ax.grid(alpha=0.3)
        add_legend(ax, fontsize=7)
    if not drawn:
        left.text(0.5, 0.5, "no runs", ha="center", transform=left.transAxes)
    return save_figure(fig, path)
