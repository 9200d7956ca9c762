"""Paper-style figures (matplotlib, Agg canvas), each written with the numbers it plots.

Every ``plot_*`` function writes ``<stem>.png`` plus ``<stem>.csv`` (the plotted numbers, one
row per bar/point) and ``<stem>.json`` (the same, structured), and returns
``{"png": path, "csv": path, "json": path}``. Figures are drawn on a
``matplotlib.figure.Figure`` with an explicit Agg canvas: no pyplot, no global backend change,
safe in headless runs. The PNG is exactly ``figsize * dpi`` pixels (no tight bounding box) and
carries no timestamp, so the same numbers give the same file.

matplotlib is imported lazily; it is the optional extra ``g2lstm[plots]``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from g2lstm.analysis.histogram import BINS, GateHistogram
from g2lstm.errors import G2LSTMError
from g2lstm.train.atomic import atomic_path, atomic_write_text

__all__ = [
    "add_legend",
    "new_figure",
    "plot_class_stats",
    "plot_gate_histograms",
    "plot_hard_gates",
    "plot_sensitivity",
    "save_figure",
    "write_csv",
    "write_json",
]

DPI = 100
_GATE_STYLE = {"input": "-", "forget": "--", "output": ":"}


def new_figure(figsize: tuple[float, float], dpi: int = DPI) -> Any:
    """A ``matplotlib.figure.Figure`` on an Agg canvas, constrained layout."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise G2LSTMError(
            "gate figures need matplotlib; install it with: pip install 'g2lstm[plots]'"
        ) from e
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` as PNG at its own dpi (size = figsize * dpi), without metadata dates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # a symlink planted at ``path`` is replaced, not followed
        fig.savefig(tmp, format="png", dpi=fig.dpi, metadata={"Software": None})
    return path


def add_legend(ax: Any, **kwargs: Any) -> None:
    """The legend of ``ax`` where it has labelled artists (none: nothing had data to draw,
    and an empty legend would only warn)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _clean(obj: Any) -> Any:
    """Make ``obj`` strict JSON: NaN/inf -> None, numpy scalars/arrays -> Python."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented strict JSON (non-finite floats become ``null``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_clean(data), indent=2, allow_nan=False)
    atomic_write_text(path, text + "\n")
    return path


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write dict rows as CSV; columns are the union of the keys in first-seen order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    buffer = io.StringIO(newline="")
    w = csv.DictWriter(buffer, fieldnames=fields)
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    atomic_write_text(path, buffer.getvalue())
    return path


def _outputs(stem: Path, fig: Any, rows: list[dict[str, Any]], data: Any) -> dict[str, Path]:
    stem = Path(stem)
    return {
        "png": save_figure(fig, stem.with_suffix(".png")),
        "csv": write_csv(stem.with_suffix(".csv"), rows),
        "json": write_json(stem.with_suffix(".json"), data),
    }


def _bar_offsets(n: int, width: float = 0.8) -> tuple[np.ndarray, float]:
    w = width / max(n, 1)
    return (np.arange(n) - (n - 1) / 2) * w, w


def plot_gate_histograms(
    data: Mapping[str, Mapping[str, Mapping[str, GateHistogram]]],
    stem: Path,
    *,
    title: str = "Distribution of gate values",
    row_titles: Mapping[str, str] | None = None,
    dpi: int = DPI,
) -> dict[str, Path]:
    """Paper Figs. 1/3: fraction of gate values per 0.1-bin, bars side by side per model.

    Args:
        data: ``data[row_label][model][gate]`` -> histogram; one figure row per row label
            (e.g. a layer), one column per gate present.
        stem: output path without suffix.
        row_titles: text shown for a row label in panel titles (e.g. ``"layer 2: dec_rnn[0]"``;
            default: the label itself). The CSV/JSON keep the row labels.
    """
    rows_l = list(data)
    if not rows_l:
        raise G2LSTMError("plot_gate_histograms: no histograms to plot")
    gates = list(dict.fromkeys(g for r in data.values() for m in r.values() for g in m))
    fig = new_figure((4.2 * len(gates), 3.2 * len(rows_l)), dpi)
    axes = fig.subplots(len(rows_l), len(gates), squeeze=False)
    csv_rows: list[dict[str, Any]] = []
    js: dict[str, Any] = {}
    for r, row in enumerate(rows_l):
        models = list(data[row])
        offs, w = _bar_offsets(len(models))
        for c, gate in enumerate(gates):
            ax = axes[r][c]
            bins = BINS
            for m, model in enumerate(models):
                h = data[row][model].get(gate)
                if h is None:
                    continue
                bins = h.bins
                fr = h.fractions()
                step = 1.0 / h.bins
                x = h.edges[:-1] + step * (0.5 + offs[m])
                ax.bar(x, fr, w * step, label=f"{model} (near 0/1: {100 * h.near_binary:.1f}%)")
                js.setdefault(row, {}).setdefault(model, {})[gate] = h.to_dict()
                for b in range(h.bins):
                    csv_rows.append(
                        {
                            "row": row,
                            "model": model,
                            "gate": gate,
                            "bin_lo": h.edges[b],
                            "bin_hi": h.edges[b + 1],
                            "fraction": fr[b],
                            "count": h.counts[b],
                        }
                    )
            ax.set_xticks(np.linspace(0.0, 1.0, bins + 1))
            ax.tick_params(axis="x", labelsize=7)
            ax.set_xlim(0, 1)
            ax.set_xlabel(f"{gate} gate value")
            ax.set_ylabel("fraction of values")
            ax.set_ylim(0, 1)
            shown = (row_titles or {}).get(row, row)
            ax.set_title(f"{shown}: {gate} gate", fontsize=10 if len(shown) < 30 else 8)
            ax.legend(fontsize=7, loc="upper center")
    fig.suptitle(title)
    return _outputs(stem, fig, csv_rows, js)


def plot_class_stats(
    data: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]],
    stem: Path,
    *,
    title: str = "Mean gate value by token class",
    dpi: int = DPI,
) -> dict[str, Path]:
    """Mean (± std over occurrences) gate value per token class, bars per model.

    Args:
        data: ``data[model][gate][class]`` -> ``{"mean", "std", "count"}``; one panel per gate.
    """
    models = list(data)
    gates = list(dict.fromkeys(g for m in data.values() for g in m))
    classes = list(
        dict.fromkeys(
            c for m in data.values() for g in m.values() for c, v in g.items() if v["count"] > 0
        )
    )
    if not models or not gates or not classes:
        raise G2LSTMError("plot_class_stats: no token statistics to plot")
    fig = new_figure((max(4.0, 0.9 * len(classes) + 1.4) * len(gates), 3.6), dpi)
    axes = fig.subplots(1, len(gates), squeeze=False)[0]
    offs, w = _bar_offsets(len(models))
    rows: list[dict[str, Any]] = []
    for ax, gate in zip(axes, gates):
        for m, model in enumerate(models):
            st = data[model].get(gate, {})
            means = [st.get(c, {}).get("mean", float("nan")) for c in classes]
            stds = [st.get(c, {}).get("std", float("nan")) for c in classes]
            ax.bar(np.arange(len(classes)) + offs[m], means, w, yerr=stds, capsize=2, label=model)
            for c, mean, std in zip(classes, means, stds):
                cnt = st.get(c, {}).get("count", 0.0)
                rows.append(
                    {
                        "model": model,
                        "gate": gate,
                        "class": c,
                        "mean": mean,
                        "std": std,
                        "count": cnt,
                    }
                )
        ax.set_xticks(range(len(classes)))
        ax.set_xticklabels(classes)
        ax.set_xlabel("token class")
        ax.set_ylabel(f"mean {gate} gate value")
        ax.set_ylim(0, 1)
        ax.set_title(f"{gate} gate")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _outputs(stem, fig, rows, {m: dict(data[m]) for m in models})


def plot_sensitivity(
    data: Mapping[str, Sequence[Mapping[str, Any]]],
    stem: Path,
    *,
    title: str = "Sensitivity to small perturbations",
    dpi: int = DPI,
) -> dict[str, Path]:
    """Mean |Δgate| (top) and Δloss (bottom) against the relative noise scale sigma.

    Args:
        data: ``data[model]`` -> rows ``{"target", "sigma", "gate", "mean_abs_delta",
            "delta_loss"}`` (see :mod:`g2lstm.analysis.sensitivity`); one column per target.
    """
    models = list(data)
    targets = list(dict.fromkeys(r["target"] for m in models for r in data[m]))
    if not targets:
        raise G2LSTMError("plot_sensitivity: no sensitivity rows to plot")
    fig = new_figure((4.6 * len(targets), 6.4), dpi)
    axes = fig.subplots(2, len(targets), squeeze=False)
    rows: list[dict[str, Any]] = []
    for c, target in enumerate(targets):
        top, bottom = axes[0][c], axes[1][c]
        for m, model in enumerate(models):
            color = f"C{m}"
            mine = [r for r in data[model] if r["target"] == target and r["sigma"] > 0]
            rows += [{"model": model, **r} for r in mine]
            for gate in dict.fromkeys(r["gate"] for r in mine):
                pts = sorted((r["sigma"], r["mean_abs_delta"]) for r in mine if r["gate"] == gate)
                top.plot(
                    *zip(*pts),
                    _GATE_STYLE.get(gate, "-"),
                    marker="o",
                    color=color,
                    label=f"{model} {gate}",
                )
            loss = sorted(dict.fromkeys((r["sigma"], r["delta_loss"]) for r in mine))
            loss = [p for p in loss if p[1] is not None and math.isfinite(p[1])]
            if loss:
                bottom.plot(*zip(*loss), marker="o", color=color, label=model)
        sigmas = sorted({r["sigma"] for m in models for r in data[m] if r["sigma"] > 0})
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_xticks(sigmas, [f"{x:g}" for x in sigmas])
            ax.minorticks_off()
            ax.set_xlabel("relative noise scale sigma")
            ax.grid(alpha=0.3)
        top.set_ylabel("mean |Δ gate value|")
        bottom.set_ylabel("Δ loss (perturbed − clean)")
        top.set_title(f"perturbed: {target}")
        add_legend(top, fontsize=7)
        add_legend(bottom, fontsize=7)
    fig.suptitle(title)
    return _outputs(stem, fig, rows, {m: list(data[m]) for m in models})


def plot_hard_gates(
    data: Mapping[str, Mapping[str, float]],
    stem: Path,
    *,
    metric: str = "metric",
    higher_is_better: bool | None = None,
    title: str = "Soft vs hard (exactly 0/1) input/forget gates",
    dpi: int = DPI,
) -> dict[str, Path]:
    """Bars of the metric with soft and hard gates per model (log scale if it spans >20x).

    Args:
        data: ``data[model]`` -> ``{"soft": m, "hard": m2, ...}``.
        metric: the metric's name (axis label and CSV column), e.g. ``"BLEU"``.
        higher_is_better: adds "(higher is better)" or "(lower is better)" to the axis label.
    """
    models = list(data)
    if not models:
        raise G2LSTMError("plot_hard_gates: no results to plot")
    fig = new_figure((max(4.5, 1.6 * len(models) + 2), 3.6), dpi)
    ax = fig.subplots()
    offs, w = _bar_offsets(2)
    rows = []
    vals = []
    for k, mode in enumerate(("soft", "hard")):
        ys = [float(data[m][mode]) for m in models]
        vals += ys
        bars = ax.bar(np.arange(len(models)) + offs[k], ys, w, label=f"{mode} gates")
        ax.bar_label(bars, fmt="%.4g", fontsize=7)
        rows += [{"model": m, "mode": mode, metric: y} for m, y in zip(models, ys)]
    finite = [v for v in vals if math.isfinite(v) and v > 0]
    shown = [v for v in vals if math.isfinite(v)]
    if finite and max(finite) / min(finite) > 20:
        ax.set_yscale("log")
        ax.margins(y=0.2)
    elif shown and min(shown) >= 0:  # BLEU, perplexity: bars start at 0 (room for labels)
        ax.set_ylim(0, 1.2 * max(shown) or 1.0)
    else:
        ax.margins(y=0.2)
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels(models)
    ax.set_xlabel("model")
    better = {True: " (higher is better)", False: " (lower is better)"}.get(higher_is_better, "")
    ax.set_ylabel(metric + better)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper center", ncols=2)
    return _outputs(stem, fig, rows, {m: dict(data[m]) for m in models})
