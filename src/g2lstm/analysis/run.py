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

Outputs are a deterministic function of the models, data and ``config.seed``. The options are
in :mod:`g2lstm.analysis.config`, each analysis' figure, files and report section in
:mod:`g2lstm.analysis.sections`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
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
)
from g2lstm.analysis.config import AnalysisConfig, config_dict
from g2lstm.analysis.histogram import GateStats
from g2lstm.analysis.layers import pick_layer
from g2lstm.analysis.plots import write_json
from g2lstm.analysis.sections import (
    hard_gate_section,
    heatmap_section,
    histogram_section,
    sensitivity_section,
    token_section,
)
from g2lstm.analysis.tokens import TokenGateStats
from g2lstm.errors import ConfigError

__all__ = ["AnalysisResult", "EncodeFn", "analyze_models"]

#: ``encode_fn(sentence) -> (tokens, batch)``: the tokens shown as heatmap columns and a batch
#: for ``forward_fn`` whose sequence 0 has exactly ``len(tokens)`` valid steps.
EncodeFn = Callable[[str], tuple[list[str], Any]]


@dataclass
class AnalysisResult:
    """Where everything went: ``report``, ``files[figure] = {"png", "csv", "json"}``, numbers."""

    report: Path
    files: dict[str, dict[str, Path]]
    results: dict[str, Any]


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
    results: dict[str, Any] = {"config": config_dict(cfg), "models": {}}
    sections: list[rep.ReportSection] = []

    stats: dict[str, GateStats] = {}
    tokens: dict[str, TokenGateStats] = {}
    for name, model in recs.items():
        torch.manual_seed(cfg.seed)
        st = GateStats(cfg.gates)
        callbacks: list[Any] = [st]
        bind = None
        if tokens_fn is not None and itos is not None:
            mod, layer = pick_layer(model, cfg.layer, name)
            tok = TokenGateStats(itos, cfg.gates, module=mod, layer=layer)
            callbacks.append(tok)
            tokens[name] = tok

            def bind(batch: Any, tok: TokenGateStats = tok) -> None:
                tok.bind(tokens_fn(batch))

        res = record_pass(model, source, forward_fn, callbacks, before_batch=bind)
        stats[name] = st
        results["models"][name] = {"batches": res.batches, "loss": res.loss, "means": st.means()}

    sections.append(histogram_section(stats, recs, out, cfg, files, results))
    if tokens:
        sections.append(token_section(tokens, out, cfg, files, results))
    for k, (sentence, (toks, batch)) in enumerate(zip(sentences, encoded)):
        sections.append(
            heatmap_section(k, sentence, toks, batch, recs, forward_fn, out, cfg, files)
        )
    if cfg.sensitivity is not None:
        sections.append(
            sensitivity_section(recs, source, forward_fn, cfg.sensitivity, out, cfg, files, results)
        )
    if evaluate_fn is not None:
        sections.append(
            hard_gate_section(
                recs,
                source,
                forward_fn,
                evaluate_fn,
                out,
                cfg,
                files,
                results,
                metric=metric,
                higher_is_better=higher_is_better,
                metric_data=metric_data,
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
