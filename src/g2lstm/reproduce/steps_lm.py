"""Language-model steps of the plan: data, training, evaluation + compression, gate analysis.

Each function takes the :class:`~g2lstm.reproduce.plan.Step` and the
:class:`~g2lstm.reproduce.context.RunContext` and returns the JSON-ready numbers that go into
the step's ``DONE.json`` (the report reads only those markers and the trainers' metrics).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from g2lstm.analysis import AnalysisConfig, analyze_models
from g2lstm.compress import compress
from g2lstm.datasets import resolve_dataset
from g2lstm.errors import TrainingError
from g2lstm.reproduce.context import RunContext, dep_marker, lines_head
from g2lstm.reproduce.paper import CELL_LABELS
from g2lstm.reproduce.plan import Step
from g2lstm.tasks import EvalDataOptions, get_task

LM = get_task("lm")

__all__ = [
    "lm_analyze",
    "lm_data",
    "lm_eval",
    "lm_train",
    "lm_train_config",
    "summarize_analysis",
    "trained_runs",
]

_SPLITS = ("train", "valid", "test")

#: Analysis segments: streams x length (as ``g2lstm analyze``'s defaults, shorter segments).
_ANALYSIS_BATCH, _ANALYSIS_BPTT = 10, 35


def lm_data(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Find PTB; at scales with ``lm_slice``, copy the first lines of each split into the
    step folder (the real corpus is never modified)."""
    source = resolve_dataset("ptb", ctx.data_dir, kind="lm", progress=False)
    if ctx.scale.lm_slice is None:
        return {"data": str(source), "source": str(source), "slice": None}
    folder = step.out_dir / "ptb"
    counts = {}
    for split, n in zip(_SPLITS, ctx.scale.lm_slice):
        counts[split] = lines_head(source / f"{split}.txt", folder / f"{split}.txt", n)
    if ctx.scale.lm_vocab is not None:
        _cap_vocabulary(folder, ctx.scale.lm_vocab)
    return {
        "data": str(folder),
        "source": str(source),
        "slice": counts,
        "vocab": ctx.scale.lm_vocab,
    }


def _cap_vocabulary(folder: Path, size: int) -> None:
    """Rewrite the splits in ``folder`` keeping the ``size - 1`` most frequent training words
    (ties: first seen) and ``<unk>`` for every other word."""
    texts = {s: (folder / f"{s}.txt").read_text(encoding="utf-8") for s in _SPLITS}
    counts = Counter(texts["train"].split())
    counts.pop("<unk>", None)
    keep = {w for w, _ in counts.most_common(size - 1)}
    for split, text in texts.items():
        lines = [
            " ".join(w if w in keep else "<unk>" for w in ln.split()) for ln in text.splitlines()
        ]
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def lm_train_config(step: Step, ctx: RunContext, data: str) -> Any:
    """The resolved config a ``lm-train`` step trains (also what ``--reuse`` compares): the
    scale's preset and overrides, then the step's own (an ablation variant's), cell and seed."""
    overrides = dict(ctx.scale.lm_overrides)
    overrides.update(dict(step.overrides))
    overrides.update({"model.cell": step.cell, "train.seed": step.seed, "data": data})
    return LM.preset_config(ctx.scale.lm_preset, overrides)


def lm_train(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Train one model (resuming from the run folder's checkpoints if there are any)."""
    data = dep_marker(step, "data/lm")["data"]
    result = LM.train(lm_train_config(step, ctx, data), step.out_dir, resume=True)
    if LM.unfinished(result) is not None:
        raise TrainingError(
            f"{step.id} stopped early ({result['stopped']}) at step {result['steps']}; run the "
            "same command again to resume it"
        )
    return {**result, "metrics": str(step.out_dir / "metrics.jsonl")}


def lm_eval(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Valid/test perplexity of the best weights, then test perplexity after each of the
    paper's compressions of the i/f gate blocks (Table 3 settings, no retraining, no cache)."""
    trained = dep_marker(step, "train")
    data = dep_marker(step, "data/lm")["data"]
    run = LM.load(Path(trained["run_dir"]), device="cpu")
    evaluator = LM.evaluator(data=data, split="test")  # the run's test batch size and bptt
    out: dict[str, Any] = {
        "cell": step.cell,
        "seed": step.seed,
        "valid_ppl": trained["valid_ppl"],
        "test_ppl": trained["test_ppl"],
        "num_parameters": trained["num_parameters"],
        "compression": {},
        "compression_bytes": {},
    }
    for column, (method, params) in ctx.scale.lm_compression.settings().items():
        model, report = compress(run.model, method, "gates_if", **params)
        out["compression"][column] = evaluator.score(run, model)
        out["compression_bytes"][column] = {
            "before": report.bytes_before,
            "after": report.bytes_after,
        }
    out["compression_params"] = {
        k: {"method": m, **p} for k, (m, p) in ctx.scale.lm_compression.settings().items()
    }
    return out


def lm_analyze(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Gate histograms, near-0/1 fractions, per-token heatmaps and hard-gate perplexity of the
    models of one seed (:func:`g2lstm.analysis.analyze_models`)."""
    data = dep_marker(step, "data/lm")["data"]
    labels, runs = trained_runs(step, "cpu")
    options = EvalDataOptions(
        data=data,
        split="valid",
        batch_size=_ANALYSIS_BATCH,
        bptt=_ANALYSIS_BPTT,
        max_batches=ctx.scale.analysis_batches,
        eval_tokens=ctx.scale.eval_tokens or None,
    )
    inputs = LM.eval_data(runs, options, list(labels))
    config = AnalysisConfig(
        seed=step.seed or 0, max_batches=ctx.scale.analysis_batches, sensitivity=None
    )
    result = analyze_models(
        inputs.models,
        inputs.batches,
        inputs.forward,
        step.out_dir,
        evaluate_fn=inputs.evaluate,
        metric=inputs.metric,
        tokens_fn=inputs.tokens,
        itos=inputs.itos,
        sentences=inputs.sentences,
        encode_fn=inputs.encode,
        config=config,
    )
    return summarize_analysis(result.results, labels, result.files, first_layer="layer 0")


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
