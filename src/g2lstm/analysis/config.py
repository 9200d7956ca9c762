"""Options of :func:`g2lstm.analysis.analyze_models` (:class:`AnalysisConfig`), validated at
construction, and their JSON form (:func:`config_dict`, stored in ``results.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from g2lstm.analysis.histogram import GATES
from g2lstm.analysis.sensitivity import SensitivityConfig
from g2lstm.errors import ConfigError

__all__ = ["AnalysisConfig", "config_dict"]


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


def config_dict(cfg: AnalysisConfig) -> dict[str, Any]:
    """``cfg`` as plain JSON (the sensitivity options as a dict, or ``None``)."""
    d = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__ if k != "sensitivity"}
    s = cfg.sensitivity
    d["sensitivity"] = None if s is None else {k: getattr(s, k) for k in s.__dataclass_fields__}
    return d
