"""The report's own figures (matplotlib, Agg backend): learning curves, compression curves and
near-0/1 gate fractions beside the paper's. Gate histograms, heatmaps and hard-gate plots come
from :mod:`g2lstm.analysis` and are reused as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from g2lstm.analysis.plots import add_legend, new_figure, save_figure
from g2lstm.reproduce.paper import CELL_LABELS, CELLS, FIG_NEAR_BINARY
from g2lstm.reproduce.verdicts import Stats

__all__ = ["COLUMNS", "plot_compression", "plot_learning_curves", "plot_near_binary"]

#: Compression columns in table order, with their labels.
COLUMNS = {
    "original": "original",
    "round": "round",
    "round_clip": "round & clip",
    "svd_high": "SVD (high rank)",
    "svd_low": "SVD (low rank)",
}
_COLORS = {"lstm": "#4477aa", "sharpened": "#ccbb44", "g2": "#ee6677"}


def plot_learning_curves(
    curves: Mapping[str, Mapping[str, Sequence[Sequence[Mapping[str, Any]]]]], path: Path
) -> Path:
    """Validation (solid, dots) and training (faint) perplexity against the update step.

    Args:
        curves: ``part title -> cell -> [metrics rows of each seed]`` (rows of
            ``metrics.jsonl``: ``step`` with ``valid_ppl`` or ``ppl``).
        path: the PNG to write.
    """
    parts = [p for p in curves if curves[p]]
    fig = new_figure((5.5 * max(len(parts), 1), 3.6))
    axes = fig.subplots(1, max(len(parts), 1), squeeze=False)
    for ax, part in zip(axes[0], parts):
        for cell, runs in curves[part].items():
            color = _COLORS.get(cell)
            for k, rows in enumerate(runs):
                train = [(r["step"], r["ppl"]) for r in rows if _finite(r.get("ppl"))]
                valid = [(r["step"], r["valid_ppl"]) for r in rows if _finite(r.get("valid_ppl"))]
                if train:
                    ax.plot(*zip(*train), color=color, alpha=0.25, lw=0.8)
                if valid:
                    ax.plot(
                        *zip(*valid),
                        color=color,
                        marker="o",
                        ms=3,
                        lw=1.5,
                        label=CELL_LABELS.get(cell, cell) if k == 0 else None,
                    )
        ax.set_yscale("log")
        ax.set_title(part)
        ax.set_xlabel("update step")
        ax.set_ylabel("perplexity (valid: dots; train: faint)")
        ax.grid(alpha=0.3)
        add_legend(ax, fontsize=8)
    if not parts:
        axes[0][0].text(0.5, 0.5, "no runs", ha="center")
    return save_figure(fig, path)


def plot_compression(
    tables: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]],
    path: Path,
    *,
    ylabels: Mapping[str, str],
) -> Path:
    """Change of the metric under each compression (mean ± std over seeds), per model.

    Args:
        tables: ``part title -> cell -> column -> [per-seed change vs original]``.
        ylabels: ``part title -> axis label``.
    """
    parts = [p for p in tables if tables[p]]
    fig = new_figure((5.5 * max(len(parts), 1), 3.6))
    axes = fig.subplots(1, max(len(parts), 1), squeeze=False)
    for ax, part in zip(axes[0], parts):
        for cell, cols in tables[part].items():
            xs, ys, es = [], [], []
            for i, col in enumerate(COLUMNS):
                st = Stats.of(cols.get(col, []))
                if st.n:
                    xs.append(i)
                    ys.append(st.mean)
                    es.append(0.0 if math.isnan(st.std) else st.std)
            ax.errorbar(
                xs,
                ys,
                yerr=es,
                marker="o",
                capsize=3,
                color=_COLORS.get(cell),
                label=CELL_LABELS.get(cell, cell),
            )
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xticks(range(len(COLUMNS)), list(COLUMNS.values()), rotation=20, fontsize=8)
        ax.set_title(part)
        ax.set_ylabel(ylabels.get(part, "change"))
        ax.grid(alpha=0.3)
        add_legend(ax, fontsize=8)
    if not parts:
        axes[0][0].text(0.5, 0.5, "no runs", ha="center")
    return save_figure(fig, path)


def plot_near_binary(
    fractions: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]], path: Path
) -> Path:
    """Fraction of input/forget gate values below 0.1 or above 0.9: ours (mean ± std over
    seeds, solid) beside the paper's Figs. 1/3 (hatched; LSTM and G2-LSTM only).

    Args:
        fractions: ``part title -> cell -> gate -> [per-seed fraction]``.
    """
    parts = [p for p in fractions if fractions[p]]
    fig = new_figure((5.5 * max(len(parts), 1), 3.6))
    axes = fig.subplots(1, max(len(parts), 1), squeeze=False)
    gates = ("input", "forget")
    for ax, part in zip(axes[0], parts):
        cells = [c for c in CELLS if c in fractions[part]]
        width = 0.8 / (2 * len(cells))
        for j, cell in enumerate(cells):
            for g_i, gate in enumerate(gates):
                st = Stats.of(fractions[part][cell].get(gate, []))
                x = g_i + (2 * j) * width - 0.4 + width / 2
                ax.bar(
                    x,
                    100 * st.mean if st.n else 0,
                    width,
                    yerr=None if math.isnan(st.std) else 100 * st.std,
                    color=_COLORS.get(cell),
                    label=f"{CELL_LABELS[cell]} (ours)" if g_i == 0 else None,
                )
                paper = FIG_NEAR_BINARY.get(cell, {}).get(gate)
                if paper is not None:
                    ax.bar(
                        x + width,
                        100 * paper,
                        width,
                        color="white",
                        edgecolor=_COLORS.get(cell),
                        hatch="//",
                        label=f"{CELL_LABELS[cell]} (paper)" if g_i == 0 else None,
                    )
        ax.set_xticks(range(len(gates)), [f"{g} gate" for g in gates])
        ax.set_ylabel("% of values < 0.1 or ≥ 0.9")
        ax.set_ylim(0, 100)
        ax.set_title(part)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    if not parts:
        axes[0][0].text(0.5, 0.5, "no runs", ha="center")
    return save_figure(fig, path)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
