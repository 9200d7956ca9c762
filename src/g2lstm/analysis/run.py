"""``analyze_models``: every gate analysis for several models, figures and ``report.md``.

Given ``{name: model}``, the batches and the generic callables of
:mod:`g2lstm.analysis.collect`, it writes into ``out_dir``:

- ``gate_histograms.{png,csv,json}``: paper Figs. 1/3 per layer (directions pooled), plus
  ``gate_stats.{csv,json}`` with every (module, layer, direction, gate) histogram.
- ``token_classes.{png,csv,json}`` and ``token_extremes.json`` (with ``tokens_fn`` + ``itos``).
- ``heatmap_<k>.{png,csv,json}`` per sentence (paper Fig. 4; with ``sentences`` + ``encode_fn``).
- ``sensitivity.{png,csv,json}`` (unless ``config.sensitivity`` is None).
- ``hard_gates.{png,csv,json}`` (with ``evaluate_fn``).
- ``results.json`` (all numbers) and ``report.md``.

Outputs are a deterministic function of the models, data and ``config.seed``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from g2lstm.analysis import report as rep
from g2lstm.analysis.collect import (
    BatchSource,
    ForwardFn,
    TokensFn,
    ensure_recordable,
    record_pass,
    record_traces,
)
from g2lstm.analysis.hard_gates import check_binary_gates, hard_gate_eval
from g2lstm.analysis.heatmap import heatmap_from_traces, plot_heatmap
from g2lstm.analysis.histogram import GATES, GateHistogram, GateStats
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
from g2lstm.nn import g2_modules

__all__ = [
    "AnalysisConfig",
    "AnalysisResult",
    "EncodeFn",
    "analyze_models",
    "layer_names",
    "recorded_layers",
]

#: ``encode_fn(sentence) -> (tokens, batch)``: the tokens shown as heatmap columns and a batch
#: for ``forward_fn`` whose sequence 0 has exactly ``len(tokens)`` valid steps.
EncodeFn = Callable[[str], tuple[list[str], Any]]


@dataclass(frozen=True)
class AnalysisConfig:
    """Options of :func:`analyze_models`.

    Args:
        seed: seeds torch before each model's passes and the sensitivity noise.
        max_batches: cap on the batches used for histograms and token statistics.
        gates: gates histogrammed.
        heatmap_gates: gates shown in heatmaps (paper: input and forget).
        layer: index into :func:`recorded_layers` of the layer used for heatmaps and token
            classes (paper: the first layer).
        summary_layer: index into :func:`recorded_layers` of the layer whose near-0/1
            fractions the report's histogram sentence quotes (``None``: all layers pooled, or
            the only layer; MT: the first decoder layer, as the paper's Figs. 1/3).
        sensitivity: perturbation options, or ``None`` to skip the sensitivity analysis.
        sensitivity_batches: batches used for the sensitivity analysis (it costs
            ``targets x sigmas x draws`` forward passes per batch).
        hard_gates: gates binarised for hard-gate inference.
        min_token_count: tokens seen fewer times are left out of the lowest/highest lists.
        dpi: figure resolution.
    """

    seed: int = 0
    max_batches: int | None = None
    gates: tuple[str, ...] = GATES
    heatmap_gates: tuple[str, ...] = ("input", "forget")
    layer: int = 0
    summary_layer: int | None = None
    sensitivity: SensitivityConfig | None = field(default_factory=SensitivityConfig)
    sensitivity_batches: int = 2
    hard_gates: tuple[str, ...] = ("input", "forget")
    min_token_count: int = 5
    dpi: int = 100

    def __post_init__(self) -> None:
        for name in ("layer", "summary_layer", "sensitivity_batches", "min_token_count", "dpi"):
            v = getattr(self, name)
            low = 0 if name in ("layer", "summary_layer") else 1
            if name == "summary_layer" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"AnalysisConfig.{name}={v!r} must be an int >= {low}")
        if self.max_batches is not None and self.max_batches < 1:
            raise ConfigError(f"AnalysisConfig.max_batches={self.max_batches!r} must be >= 1")
        for name in ("gates", "heatmap_gates", "hard_gates"):
            v = tuple(getattr(self, name))
            if not v or any(g not in GATES for g in v):
                raise ConfigError(f"AnalysisConfig.{name}={v!r}: expected a subset of {GATES}")
            object.__setattr__(self, name, v)


@dataclass
class AnalysisResult:
    """Where everything went: ``report``, ``files[figure] = {"png", "csv", "json"}``, numbers."""

    report: Path
    files: dict[str, dict[str, Path]]
    results: dict[str, Any]


def recorded_layers(model: nn.Module) -> list[tuple[str, int]]:
    """``(module name, layer)`` of every recorded layer, in module (= depth) order."""
    return [(n, k) for n, m in g2_modules(model) for k in range(getattr(m, "num_layers", 1))]


def layer_names(model: nn.Module) -> list[str]:
    """A label per :func:`recorded_layers` entry: ``"module[k]"``, plus ``" (bidirectional)"``
    for a bidirectional module (its two directions are pooled in the per-layer figures)."""
    mods = dict(g2_modules(model))
    return [
        f"{n}[{k}]" + (" (bidirectional)" if getattr(mods[n], "bidirectional", False) else "")
        for n, k in recorded_layers(model)
    ]


def _pick_layer(model: nn.Module, index: int, name: str) -> tuple[str, int]:
    layers = recorded_layers(model)
    if index >= len(layers):
        raise ConfigError(f"layer={index} but model {name!r} has only {len(layers)} layers")
    return layers[index]


def analyze_models(
    models: Mapping[str, nn.Module],
    batches: Iterable[Any] | Callable[[], Iterable[Any]],
    forward_fn: ForwardFn,
    out_dir: str | Path,
    *,
    evaluate_fn: Callable[[nn.Module], float] | None = None,
    metric: str = "metric",
    higher_is_better: bool | None = None,
    tokens_fn: TokensFn | None = None,
    itos: Sequence[str] | None = None,
    sentences: Sequence[str] = (),
    encode_fn: EncodeFn | None = None,
    config: AnalysisConfig | None = None,
    gate_data: str = "",
    metric_data: str = "",
) -> AnalysisResult:
    """Run every analysis on ``models`` and write figures, numbers and ``report.md``.

    Args:
        models: ``{label: model}``; labels name the models in figures (e.g. ``"G2-LSTM"``).
        batches: the data (see :class:`~g2lstm.analysis.collect.BatchSource`).
        forward_fn: ``forward_fn(model, batch) -> loss | None``.
        out_dir: output folder (created).
        evaluate_fn: ``evaluate_fn(model) -> float``; enables hard-gate inference.
        metric: name of ``evaluate_fn``'s metric (e.g. ``"perplexity"``, ``"BLEU"``).
        higher_is_better: the metric's direction (perplexity: False, BLEU: True); ``None``
            leaves "better"/"worse" out of the hard-gate wording.
        tokens_fn, itos: ``(T, N)`` token ids of a batch and the vocabulary; enable the
            token-class statistics.
        sentences, encode_fn: sentences for heatmaps and how to turn one into a batch.
        config: :class:`AnalysisConfig`.
        gate_data, metric_data: what the gate statistics and ``evaluate_fn`` run on (split and
            subset, e.g. ``"ptb/valid, first 20,000 of 73,760 tokens"``), named in the report
            and in the hard-gate figure's title.
    """
    cfg = config or AnalysisConfig()
    if not models:
        raise ConfigError("analyze_models: no models given")
    if sentences and encode_fn is None:
        raise ConfigError("analyze_models: sentences need encode_fn(sentence) -> (tokens, batch)")
    if (tokens_fn is None) != (itos is None):
        raise ConfigError("analyze_models: tokens_fn and itos go together (give both or neither)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    encoded = [encode_fn(s) for s in sentences] if encode_fn is not None else []
    recs = {name: ensure_recordable(m) for name, m in models.items()}
    source = BatchSource(batches, cfg.max_batches)
    files: dict[str, dict[str, Path]] = {}
    results: dict[str, Any] = {"config": _config_dict(cfg), "models": {}}
    sections: list[rep.ReportSection] = []

    stats: dict[str, GateStats] = {}
    tokens: dict[str, TokenGateStats] = {}
    for name, model in recs.items():
        torch.manual_seed(cfg.seed)
        st = GateStats(cfg.gates)
        callbacks: list[Any] = [st]
        bind = None
        if tokens_fn is not None and itos is not None:
            mod, layer = _pick_layer(model, cfg.layer, name)
            tok = TokenGateStats(itos, cfg.gates, module=mod, layer=layer)
            callbacks.append(tok)
            tokens[name] = tok

            def bind(batch: Any, tok: TokenGateStats = tok) -> None:
                tok.bind(tokens_fn(batch))

        res = record_pass(model, source, forward_fn, callbacks, before_batch=bind)
        stats[name] = st
        results["models"][name] = {"batches": res.batches, "loss": res.loss, "means": st.means()}

    sections.append(_histogram_section(stats, recs, out, cfg, files, results))
    if tokens:
        sections.append(_token_section(tokens, out, cfg, files, results))
    for k, (sentence, (toks, batch)) in enumerate(zip(sentences, encoded)):
        sections.append(
            _heatmap_section(k, sentence, toks, batch, recs, forward_fn, out, cfg, files)
        )
    if cfg.sensitivity is not None:
        sens = {}
        for name, model in recs.items():
            torch.manual_seed(cfg.seed)
            data = itertools.islice(iter(source), cfg.sensitivity_batches)
            sens[name] = gate_sensitivity(model, data, forward_fn, cfg.sensitivity)
        files["sensitivity"] = plot_sensitivity(sens, out / "sensitivity", dpi=cfg.dpi)
        results["sensitivity"] = sens
        sections.append(
            rep.ReportSection(
                "Sensitivity to perturbations",
                rep.sensitivity_sentence(sens),
                files["sensitivity"]["png"],
                [files["sensitivity"]["csv"]],
            )
        )
    if evaluate_fn is not None:
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
        sections.append(
            rep.ReportSection(
                "Hard-gate inference",
                rep.hard_gate_sentence(hard, metric, higher_is_better)
                + (f" Evaluated on {metric_data}." if metric_data else ""),
                files["hard_gates"]["png"],
                [files["hard_gates"]["csv"]],
            )
        )
    results["files"] = {  # relative to out_dir, so the folder can be moved
        k: {kk: Path(p).relative_to(out).as_posix() for kk, p in v.items()}
        for k, v in files.items()
    }
    results["data"] = {"gates": gate_data, "metric": metric_data}
    write_json(out / "results.json", results)
    intro = (
        f"Models: {', '.join(models)}. Batches: "
        f"{', '.join(str(r['batches']) for r in results['models'].values())}; seed {cfg.seed}."
        + (f" Gate statistics on {gate_data}." if gate_data else "")
        + (f" Hard-gate metric on {metric_data}." if metric_data and evaluate_fn else "")
    )
    path = rep.write_report(out, sections, intro=intro)
    return AnalysisResult(path, files, results)


def _config_dict(cfg: AnalysisConfig) -> dict[str, Any]:
    d = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__ if k != "sensitivity"}
    s = cfg.sensitivity
    d["sensitivity"] = None if s is None else {k: getattr(s, k) for k in s.__dataclass_fields__}
    return d


def _histogram_section(
    stats: Mapping[str, GateStats],
    recs: Mapping[str, nn.Module],
    out: Path,
    cfg: AnalysisConfig,
    files: dict[str, dict[str, Path]],
    results: dict[str, Any],
) -> rep.ReportSection:
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


def _token_section(
    tokens: Mapping[str, TokenGateStats],
    out: Path,
    cfg: AnalysisConfig,
    files: dict[str, dict[str, Path]],
    results: dict[str, Any],
) -> rep.ReportSection:
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


def _heatmap_section(
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
    traces, where = {}, []
    for name, model in recs.items():
        torch.manual_seed(cfg.seed)
        mod, layer = _pick_layer(model, cfg.layer, name)
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
