"""One function per analysis of :func:`g2lstm.analysis.analyze_models`: each writes its
figure and files into ``out`` (recording their paths in ``files[figure]``), adds its numbers to
``results`` and returns its :class:`~g2lstm.analysis.report.ReportSection` for ``report.md``.

``recs`` maps model labels to recordable models (see
:func:`g2lstm.analysis.collect.ensure_recordable`); ``cfg`` is the
:class:`~g2lstm.analysis.config.AnalysisConfig`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from g2lstm.analysis import report as rep
from g2lstm.analysis.collect import BatchSource, ForwardFn, record_traces
from g2lstm.analysis.config import AnalysisConfig
from g2lstm.analysis.hard_gates import check_binary_gates, hard_gate_eval
from g2lstm.analysis.heatmap import heatmap_from_traces, plot_heatmap
from g2lstm.analysis.histogram import GateHistogram, GateStats
from g2lstm.analysis.layers import layer_names, pick_layer, recorded_layers
from g2lstm.analysis.plots import (
    plot_class_stats,
    plot_gate_histograms,
    plot_hard_gates,
    plot_sensitivity,
    write_csv,
    write_json,
)
from g2lstm.analysis.sensitivity import SensitivityConfig, gate_sensitivity
from g2lstm.analysis.tokens import TokenGateStats
from g2lstm.errors import ConfigError

__all__ = [
    "hard_gate_section",
    "heatmap_section",
    "histogram_section",
    "sensitivity_section",
    "token_section",
]


def histogram_section(
    stats: Mapping[str, GateStats],
    recs: Mapping[str, nn.Module],
    out: Path,
    cfg: AnalysisConfig,
    files: dict[str, dict[str, Path]],
    results: dict[str, Any],
) -> rep.ReportSection:
    """Gate histograms per layer (all layers pooled first when there are several) and
    ``gate_stats.{csv,json}``; the section quotes ``cfg.summary_layer``'s near-0/1 fractions."""
    data: dict[str, dict[str, dict[str, GateHistogram]]] = {}
    where: dict[str, str] = {}  # row -> which module(s) it shows
    n_layers = max(len(recorded_layers(m)) for m in recs.values())
    if n_layers > 1:
        data["all layers"] = {m: {g: s.merged(g) for g in cfg.gates} for m, s in stats.items()}
        where["all layers"] = "all modules"
    names = {m: layer_names(model) for m, model in recs.items()}
    results["layers"] = names
    for i in range(n_layers):
        row = data.setdefault(f"layer {i}", {})
        for m, s in stats.items():
            layers = recorded_layers(recs[m])
            if i < len(layers):
                mod, k = layers[i]
                row[m] = {g: s.merged(g, mod, k) for g in cfg.gates}
        where[f"layer {i}"] = " / ".join(dict.fromkeys(n[i] for n in names.values() if i < len(n)))
    files["gate_histograms"] = plot_gate_histograms(
        data,
        out / "gate_histograms",
        dpi=cfg.dpi,
        row_titles={r: f"{r}: {w}" for r, w in where.items()},
    )
    all_rows = [{"model": m, **r} for m, s in stats.items() for r in s.rows()]
    write_csv(out / "gate_stats.csv", all_rows)
    write_json(out / "gate_stats.json", {m: s.to_dict() for m, s in stats.items()})
    first = next(iter(data))
    if cfg.summary_layer is not None and f"layer {cfg.summary_layer}" in data:
        first = f"layer {cfg.summary_layer}"
    near = {m: {g: h.near_binary for g, h in gh.items()} for m, gh in data[first].items()}
    results["near_binary"] = {
        row: {m: {g: h.near_binary for g, h in gh.items()} for m, gh in models.items()}
        for row, models in data.items()
    }
    table = ["| layer | module | model | " + " | ".join(f"{g} near 0/1" for g in cfg.gates) + " |"]
    table.append("|" + "---|" * (3 + len(cfg.gates)))
    for row, models in data.items():
        for m, gh in models.items():
            cells = " | ".join(f"{100 * gh[g].near_binary:.1f}%" for g in cfg.gates)
            table.append(f"| {row} | {where[row]} | {m} | {cells} |")
    return rep.ReportSection(
        "Gate value histograms (paper Figs. 1 and 3)",
        rep.polarisation_sentence(
            near, first if first == "all layers" else f"{first}: {where[first]}"
        ),
        files["gate_histograms"]["png"],
        [files["gate_histograms"]["csv"], out / "gate_stats.csv"],
        "\n".join(table) + "\n\n" + rep.paper_reference(),
    )


def token_section(
    tokens: Mapping[str, TokenGateStats],
    out: Path,
    cfg: AnalysisConfig,
    files: dict[str, dict[str, Path]],
    results: dict[str, Any],
) -> rep.ReportSection:
    """Gate values by token class and ``token_extremes.json`` (claim 12)."""
    data = {m: {g: t.class_stats(g) for g in cfg.gates} for m, t in tokens.items()}
    files["token_classes"] = plot_class_stats(data, out / "token_classes", dpi=cfg.dpi)
    extremes = {m: t.to_dict(min_count=cfg.min_token_count) for m, t in tokens.items()}
    write_json(out / "token_extremes.json", extremes)
    results["token_classes"] = extremes
    followed = "; ".join(
        dict.fromkeys(f"{t.module}[{t.layer}], direction {t.direction}" for t in tokens.values())
    )
    return rep.ReportSection(
        "Gate values by token class (claim 12)",
        f"{rep.class_sentence(data)} Layer followed: {followed}.",
        files["token_classes"]["png"],
        [files["token_classes"]["csv"], out / "token_extremes.json"],
    )


def heatmap_section(
    k: int,
    sentence: str,
    toks: list[str],
    batch: Any,
    recs: Mapping[str, nn.Module],
    forward_fn: ForwardFn,
    out: Path,
    cfg: AnalysisConfig,
    files: dict[str, dict[str, Path]],
) -> rep.ReportSection:
    """Heatmap ``k``: every model's average ``cfg.heatmap_gates`` per token of ``sentence``
    (``toks``, ``batch`` from ``encode_fn``) at layer ``cfg.layer`` (paper Fig. 4)."""
    traces, where = {}, []
    for name, model in recs.items():
        torch.manual_seed(cfg.seed)
        mod, layer = pick_layer(model, cfg.layer, name)
        recorded, _ = record_traces(model, batch, forward_fn)
        match = [t for n, t in recorded if n == mod and t.layer == layer and t.direction == 0]
        if not match:
            raise ConfigError(f"model {name!r} recorded no trace for {mod} layer {layer}")
        traces[name] = match[0]
        where.append(f"{mod}[{layer}]")
    title = f"Average gate value per token (layer {cfg.layer}: {' / '.join(dict.fromkeys(where))})"
    heat = heatmap_from_traces(traces, toks, cfg.heatmap_gates, title=title)
    key = f"heatmap_{k}"
    files[key] = plot_heatmap(heat, out / key, dpi=cfg.dpi)
    values = {
        m: {g: heat.values[heat.rows.index(f"{m} {g}")].tolist() for g in cfg.heatmap_gates}
        for m in traces
    }
    return rep.ReportSection(
        f"Per-token gates: “{sentence}” (paper Fig. 4)",
        rep.heatmap_sentence(values, toks),
        files[key]["png"],
        [files[key]["csv"]],
    )


def sensitivity_section(
    recs: Mapping[str, nn.Module],
    source: BatchSource,
    forward_fn: ForwardFn,
    options: SensitivityConfig,
    out: Path,
    cfg: AnalysisConfig,
    files: dict[str, dict[str, Path]],
    results: dict[str, Any],
) -> rep.ReportSection:
    """Metric change under gate perturbations (``options``) on ``cfg.sensitivity_batches``."""
    sens = {}
    for name, model in recs.items():
        torch.manual_seed(cfg.seed)
        data = itertools.islice(iter(source), cfg.sensitivity_batches)
        sens[name] = gate_sensitivity(model, data, forward_fn, options)
    files["sensitivity"] = plot_sensitivity(sens, out / "sensitivity", dpi=cfg.dpi)
    results["sensitivity"] = sens
    return rep.ReportSection(
        "Sensitivity to perturbations",
        rep.sensitivity_sentence(sens),
        files["sensitivity"]["png"],
        [files["sensitivity"]["csv"]],
    )


def hard_gate_section(
    recs: Mapping[str, nn.Module],
    source: BatchSource,
    forward_fn: ForwardFn,
    evaluate_fn: Callable[[nn.Module], float],
    out: Path,
    cfg: AnalysisConfig,
    files: dict[str, dict[str, Path]],
    results: dict[str, Any],
    *,
    metric: str,
    higher_is_better: bool | None,
    metric_data: str,
) -> rep.ReportSection:
    """``evaluate_fn``'s ``metric`` with soft and with hard ``cfg.hard_gates``, and a check on
    one batch that the hard gates are exactly 0/1."""
    hard = {}
    for name, model in recs.items():
        torch.manual_seed(cfg.seed)
        hard[name] = hard_gate_eval(
            model, evaluate_fn, gates=cfg.hard_gates, higher_is_better=higher_is_better
        )
        one = itertools.islice(iter(source), 1)
        hard[name]["check"] = check_binary_gates(model, one, forward_fn, gates=cfg.hard_gates)
    title = "Soft vs hard (exactly 0/1) input/forget gates" + (
        f"\non {metric_data}" if metric_data else ""
    )
    files["hard_gates"] = plot_hard_gates(
        hard,
        out / "hard_gates",
        metric=metric,
        higher_is_better=higher_is_better,
        dpi=cfg.dpi,
        title=title,
    )
    results["hard_gates"] = hard
    results["metric"] = {"name": metric, "higher_is_better": higher_is_better}
    return rep.ReportSection(
        "Hard-gate inference",
        rep.hard_gate_sentence(hard, metric, higher_is_better)
        + (f" Evaluated on {metric_data}." if metric_data else ""),
        files["hard_gates"]["png"],
        [files["hard_gates"]["csv"]],
    )
