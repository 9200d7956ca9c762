"""Language-model steps of the plan: data, training, evaluation + compression, gate analysis.

Each function takes the :class:`~g2lstm.reproduce.plan.Step` and the
:class:`~g2lstm.reproduce.context.RunContext` and returns the JSON-ready numbers that go into
the step's ``DONE.json`` (the report reads only those markers and the trainers' metrics).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from g2lstm.compress import compress
from g2lstm.datasets import resolve_dataset
from g2lstm.reproduce.context import RunContext, dep_marker, lines_head
from g2lstm.reproduce.plan import Step
from g2lstm.reproduce.steps_common import analyze_step, summarize_analysis, train_step, trained_runs
from g2lstm.tasks import EvalDataOptions, get_task

LM = get_task("lm")

__all__ = [
    "lm_analyze",
    "lm_data",
    "lm_eval",
    "lm_train",
    "lm_train_config",
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
    overrides.update({"model.gates.cell": step.cell, "train.seed": step.seed, "data": data})
    return LM.preset_config(ctx.scale.lm_preset, overrides)


def lm_train(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Train one model (resuming from the run folder's checkpoints if there are any)."""
    data = dep_marker(step, "data/lm")["data"]
    return train_step(LM, lm_train_config(step, ctx, data), step, "cpu")


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
    result = analyze_step(LM.eval_data(runs, options, list(labels)), step, ctx, tokens=True)
    return summarize_analysis(result.results, labels, result.files, first_layer="layer 0")
