"""Language-model steps of the plan: data, training, evaluation + compression, gate analysis.

Each function takes the :class:`~g2lstm.reproduce.plan.Step` and the
:class:`~g2lstm.reproduce.context.RunContext` and returns the JSON-ready numbers that go into
the step's ``DONE.json`` (the report reads only those markers and the trainers' metrics).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from g2lstm.errors import TrainingError
from g2lstm.reproduce.context import RunContext, dep_marker, lines_head
from g2lstm.reproduce.paper import CELL_LABELS
from g2lstm.reproduce.plan import Step

__all__ = ["lm_analyze", "lm_data", "lm_eval", "lm_train", "lm_train_config"]

_SPLITS = ("train", "valid", "test")

#: Analysis segments: streams x length (as ``g2lstm analyze``'s defaults, shorter segments).
_ANALYSIS_BATCH, _ANALYSIS_BPTT = 10, 35


def lm_data(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Find PTB; at scales with ``lm_slice``, copy the first lines of each split into the
    step folder (the real corpus is never modified)."""
    from g2lstm.datasets import resolve_dataset

    source = resolve_dataset("ptb", ctx.data_dir, kind="lm", progress=False)
    if ctx.scale.lm_slice is None:
        return {"data": str(source), "source": str(source), "slice": None}
    folder = step.out_dir / "ptb"
    counts = {}
    for split, n in zip(_SPLITS, ctx.scale.lm_slice):
        counts[split] = lines_head(source / f"{split}.txt", folder / f"{split}.txt", n)
    if ctx.scale.lm_vocab is not None:
        _cap_vocabulary(folder, ctx.scale.lm_vocab)
    return {"data": str(folder), "source": str(source), "slice": counts,
            "vocab": ctx.scale.lm_vocab}  # fmt: skip


def _cap_vocabulary(folder: Path, size: int) -> None:
    """Rewrite the splits in ``folder`` keeping the ``size - 1`` most frequent training words
    (ties: first seen) and ``<unk>`` for every other word."""
    from collections import Counter

    texts = {s: (folder / f"{s}.txt").read_text(encoding="utf-8") for s in _SPLITS}
    counts = Counter(texts["train"].split())
    counts.pop("<unk>", None)
    keep = {w for w, _ in counts.most_common(size - 1)}
    for split, text in texts.items():
        lines = [" ".join(w if w in keep else "<unk>" for w in ln.split())
                 for ln in text.splitlines()]  # fmt: skip
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def lm_train_config(step: Step, ctx: RunContext, data: str) -> Any:
    """The resolved config a ``lm-train`` step trains (also what ``--reuse`` compares)."""
    from g2lstm.lm import preset_config

    overrides = dict(ctx.scale.lm_overrides)
    overrides.update({"model.cell": step.cell, "train.seed": step.seed, "data": data})
    return preset_config(ctx.scale.lm_preset, overrides)


def lm_train(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Train one model (resuming from the run folder's checkpoints if there are any)."""
    from g2lstm.lm import train

    data = dep_marker(step, "data/lm")["data"]
    result = train(lm_train_config(step, ctx, data), step.out_dir, resume=True)
    if not result.complete:
        raise TrainingError(
            f"{step.id} stopped early ({result.stopped}) at step {result.steps}; run the same "
            "command again to resume it"
        )
    return {**asdict(result), "metrics": str(step.out_dir / "metrics.jsonl")}


def lm_eval(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Valid/test perplexity of the best weights, then test perplexity after each of the
    paper's compressions of the i/f gate blocks (Table 3 settings, no retraining, no cache)."""
    from g2lstm.compress import compress
    from g2lstm.lm.data import Corpus, batchify
    from g2lstm.lm.evaluate import evaluate, load_model, perplexity

    trained = dep_marker(step, "train")
    data = dep_marker(step, "data/lm")["data"]
    loaded = load_model(Path(trained["run_dir"]), map_location="cpu")
    cfg = loaded.config.train
    corpus = Corpus.load(data)
    test = batchify(corpus.test, cfg.test_batch_size, name="test")
    out: dict[str, Any] = {
        "cell": step.cell, "seed": step.seed, "valid_ppl": trained["valid_ppl"],
        "test_ppl": trained["test_ppl"], "num_parameters": trained["num_parameters"],
        "compression": {}, "compression_bytes": {},
    }  # fmt: skip
    for column, (method, params) in ctx.scale.lm_compression.settings().items():
        model, report = compress(loaded.model, method, "gates_if", **params)
        out["compression"][column] = perplexity(evaluate(model, test, cfg.bptt))
        out["compression_bytes"][column] = {"before": report.bytes_before,
                                            "after": report.bytes_after}  # fmt: skip
    out["compression_params"] = {k: {"method": m, **p} for k, (m, p) in
                                 ctx.scale.lm_compression.settings().items()}  # fmt: skip
    return out


def lm_analyze(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Gate histograms, near-0/1 fractions, per-token heatmaps and hard-gate perplexity of the
    models of one seed (:func:`g2lstm.analysis.analyze_models`)."""
    from g2lstm.analysis import AnalysisConfig, analyze_models
    from g2lstm.analysis.cli import DEFAULT_SENTENCES
    from g2lstm.analysis.lm_adapter import LMAdapter, lm_batches, lm_forward, lm_tokens
    from g2lstm.lm.data import Corpus
    from g2lstm.lm.evaluate import load_model

    data = dep_marker(step, "data/lm")["data"]
    corpus = Corpus.load(data)
    labels: dict[str, str] = {}
    models = {}
    for dep in step.deps:
        if dep.name == "train":
            cell = dep.parent.name.rsplit("-s", 1)[0]
            labels[CELL_LABELS[cell]] = cell
            models[CELL_LABELS[cell]] = load_model(dep, map_location="cpu").model
    ids = corpus["valid"]
    n = ctx.scale.eval_tokens
    adapter = LMAdapter.from_vocab(corpus.vocab, ids[:n] if n else ids,
                                   batch_size=_ANALYSIS_BATCH, bptt=_ANALYSIS_BPTT)  # fmt: skip
    batches = lm_batches(ids, _ANALYSIS_BATCH, _ANALYSIS_BPTT, ctx.scale.analysis_batches)
    config = AnalysisConfig(seed=step.seed or 0, max_batches=ctx.scale.analysis_batches,
                            sensitivity=None)  # fmt: skip
    result = analyze_models(
        models, batches, lm_forward, step.out_dir, evaluate_fn=adapter.evaluate,
        metric="perplexity", tokens_fn=lm_tokens, itos=adapter.itos,
        sentences=DEFAULT_SENTENCES, encode_fn=adapter.encode, config=config,
    )  # fmt: skip
    return summarize_analysis(result.results, labels, result.files, first_layer="layer 0")


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
    out: dict[str, Any] = {"cells": {}, "figures": {k: str(v["png"]) for k, v in files.items()
                                                   if "png" in v}}  # fmt: skip
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
