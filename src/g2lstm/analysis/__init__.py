"""Gate analysis: histograms, per-token heatmaps, token classes, sensitivity, hard gates.

Everything works on any model holding G2 modules (or plain ``nn.LSTM`` layers, recorded as
exact ``noise_p=0, tau=1`` G2LSTMs) through generic callables: ``forward_fn(model, batch)``,
``tokens_fn(batch)``, ``evaluate_fn(model)`` (see :mod:`g2lstm.analysis.collect`). Figures need
matplotlib (``pip install 'g2lstm[plots]'``), imported only when a figure is drawn.

Entry point: :func:`analyze_models`; CLI: ``g2lstm analyze``. The batches and callables of a
trained model come from its task (:meth:`g2lstm.tasks.Task.eval_data`; word LMs:
:mod:`g2lstm.tasks.lm_probe`, translation models, with encoder and decoder gates and hard gates
in BLEU: :mod:`g2lstm.tasks.mt_probe`).
"""

from __future__ import annotations

from g2lstm.analysis.collect import BatchSource, ensure_recordable, record_pass, record_traces
from g2lstm.analysis.config import AnalysisConfig
from g2lstm.analysis.hard_gates import check_binary_gates, hard_gate_eval, hard_gate_model
from g2lstm.analysis.heatmap import GateHeatmap, heatmap_from_traces, plot_heatmap
from g2lstm.analysis.histogram import BINS, GATES, GateHistogram, GateKey, GateStats
from g2lstm.analysis.layers import layer_names, recorded_layers
from g2lstm.analysis.plots import (
    plot_class_stats,
    plot_gate_histograms,
    plot_hard_gates,
    plot_sensitivity,
)
from g2lstm.analysis.report import ReportSection, write_report
from g2lstm.analysis.run import AnalysisResult, analyze_models
from g2lstm.analysis.sensitivity import SensitivityConfig, gate_sensitivity
from g2lstm.analysis.tokens import (
    FUNCTION_WORDS,
    TOKEN_CLASSES,
    TokenGateStats,
    position_means,
    token_class,
)

__all__ = [
    "BINS",
    "FUNCTION_WORDS",
    "GATES",
    "TOKEN_CLASSES",
    "AnalysisConfig",
    "AnalysisResult",
    "BatchSource",
    "GateHeatmap",
    "GateHistogram",
    "GateKey",
    "GateStats",
    "ReportSection",
    "SensitivityConfig",
    "TokenGateStats",
    "analyze_models",
    "check_binary_gates",
    "ensure_recordable",
    "gate_sensitivity",
    "hard_gate_eval",
    "hard_gate_model",
    "heatmap_from_traces",
    "layer_names",
    "plot_class_stats",
    "plot_gate_histograms",
    "plot_hard_gates",
    "plot_heatmap",
    "plot_sensitivity",
    "position_means",
    "record_pass",
    "record_traces",
    "recorded_layers",
    "token_class",
    "write_report",
]
