"""What the language-model and translation steps of the plan share: training a run to its
end, loading the trained models of an analysis step, running the gate analysis and reading the
numbers the report needs from it. Everything goes through the task interface
(:mod:`g2lstm.tasks`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from g2lstm.analysis import AnalysisConfig, AnalysisResult, analyze_models
from g2lstm.config import CELL_LABELS
from g2lstm.errors import TrainingError
from g2lstm.reproduce.context import RunContext
from g2lstm.reproduce.plan import Step
from g2lstm.tasks import EvalData, Task, get_task

__all__ = ["analyze_step", "summarize_analysis", "train_step", "trained_runs"]


def train_step(task: Task, config: Any, step: Step, device: str) -> dict[str, Any]:
    """Train ``config`` into the step's folder (resuming from its checkpoints if there are
    any); the run's result (:class:`~g2lstm.train.RunResult`, flat) and its metrics file.

    Raises:
        TrainingError: the run stopped before its end (run the same command again).
    """
    result = task.train(config, step.out_dir, device=device, resume=True)
    if not result["finished"]:
        raise TrainingError(
            f"{step.id} stopped early ({result['stopped']}) at step {result['steps']}; run the "
            "same command again to resume it"
        )
    return {**result, "metrics": str(step.out_dir / "metrics.jsonl")}


def analyze_step(inputs: EvalData, step: Step, ctx: RunContext, *, tokens: bool) -> AnalysisResult:
    """The gate analysis of ``inputs`` into the step's folder (no sensitivity sweep); with
    ``tokens``, also token classes and heatmaps."""
    config = AnalysisConfig(
        seed=step.seed or 0, max_batches=ctx.scale.analysis_batches, sensitivity=None
    )
    extra: dict[str, Any] = {}
    if tokens:
        extra = {
            "tokens_fn": inputs.tokens,
            "itos": inputs.itos,
            "sentences": inputs.sentences,
            "encode_fn": inputs.encode,
        }
    return analyze_models(
        inputs.models,
        inputs.batches,
        inputs.forward,
        step.out_dir,
        evaluate_fn=inputs.evaluate,
        metric=inputs.metric,
        config=config,
        **extra,
    )


def trained_runs(step: Step, device: str) -> tuple[dict[str, str], list[Any]]:
    """``(label -> cell, runs)`` of the trained models an analysis step depends on, loaded
    with their task (one label per cell, :data:`CELL_LABELS`)."""
    labels: dict[str, str] = {}
    runs = []
    for dep in step.deps:
        if dep.name == "train":
            cell = dep.parent.name.rsplit("-s", 1)[0]
            labels[CELL_LABELS[cell]] = cell
            runs.append(get_task(step.part).load(dep, device=device))
    return labels, runs


def summarize_analysis(
    results: dict[str, Any],
    labels: dict[str, str],
    files: dict[str, dict[str, Path]],
    *,
    first_layer: str | None = None,
    near_binary: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """The numbers the report needs from :func:`analyze_models` results, keyed by cell.

    ``near_binary`` (``label -> gate -> fraction``) replaces the value read from the results'
    ``first_layer`` row (used for MT, whose paper figure is the first *decoder* layer).
    """
    rows = results.get("near_binary", {})
    first = rows.get(first_layer) if first_layer else None
    if first is None and rows:
        first = next(iter(rows.values()))
    all_layers = rows.get("all layers", first) or {}
    out: dict[str, Any] = {
        "cells": {},
        "figures": {k: str(v["png"]) for k, v in files.items() if "png" in v},
    }
    hard = results.get("hard_gates", {})
    for label, cell in labels.items():
        nb = (near_binary or {}).get(label) or (first or {}).get(label, {})
        h = hard.get(label, {})
        out["cells"][cell] = {
            "near_binary": {g: float(v) for g, v in nb.items()},
            "near_binary_all_layers": {g: float(v) for g, v in all_layers.get(label, {}).items()},
            "hard": {"soft": _num(h.get("soft")), "hard": _num(h.get("hard"))},
            "mean_gates": results.get("models", {}).get(label, {}).get("means", {}),
        }
    return out


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
