"""Translation steps of the plan: data preparation, training, BLEU + compression, gates.

Every step reaches the translation model through its task (:class:`g2lstm.tasks.Task`); the
gate analysis drives :func:`g2lstm.analysis.analyze_models` with the task's
:meth:`~g2lstm.tasks.Task.eval_data`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from g2lstm.analysis import GateStats
from g2lstm.compress import compress
from g2lstm.config_checks import flatten
from g2lstm.datasets import resolve_dataset
from g2lstm.reproduce.context import RunContext, dep_marker, lines_head
from g2lstm.reproduce.plan import Step
from g2lstm.reproduce.steps_common import analyze_step, summarize_analysis, train_step, trained_runs
from g2lstm.tasks import EvalDataOptions, get_task

MT = get_task("mt")

__all__ = [
    "SPLIT_PREFIXES",
    "mt_analyze",
    "mt_data",
    "mt_eval",
    "mt_train",
    "mt_train_config",
]

#: Multi30k/IWSLT split -> file prefix in the source folder.
SPLIT_PREFIXES = {
    "multi30k": {"train": "train", "valid": "val", "test": "test2016"},
    "iwslt14": {"train": "train", "valid": "valid", "test": "test"},
}


def mt_data(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Resolve the MT corpus, optionally slice it, and prepare it (tokenised lowercase text,
    joint BPE, train pairs over 64 subwords dropped, as in the paper)."""
    sc = ctx.scale
    source = resolve_dataset(sc.mt_dataset, ctx.data_dir, kind="mt", progress=False)
    src_dir = source / "tok" if sc.mt_dataset == "multi30k" else source
    prefixes = SPLIT_PREFIXES[sc.mt_dataset]
    files: dict[str, tuple[Path, Path]] = {
        split: (src_dir / f"{p}.de", src_dir / f"{p}.en") for split, p in prefixes.items()
    }
    counts = None
    if sc.mt_slice is not None:
        counts = {}
        sliced = {}
        for (split, (de, en)), n in zip(files.items(), sc.mt_slice):
            dst = step.out_dir / "slice"
            counts[split] = lines_head(de, dst / f"{split}.de", n)
            lines_head(en, dst / f"{split}.en", n)
            sliced[split] = (dst / f"{split}.de", dst / f"{split}.en")
        files = sliced
    prepared = MT.prepare_data(
        files,
        step.out_dir / "prepared",
        src_lang="de",
        tgt_lang="en",
        overwrite=True,
        tokenize=False,
        lowercase=True,
        escape=True,
        max_len=64,
        bpe_merges=sc.mt_bpe_merges,
    )
    return {
        "prepared": str(prepared),
        "source": str(source),
        "slice": counts,
        "dataset": sc.mt_dataset,
    }


def mt_train_config(step: Step, ctx: RunContext, prepared: str) -> Any:
    """The resolved config a ``mt-train`` step trains (also what ``--reuse`` compares)."""
    overrides = flatten(ctx.scale.mt_overrides)
    overrides.update(
        {"model.gates.cell": step.cell, "train.seed": step.seed, "train.data": prepared}
    )
    return MT.preset_config(ctx.scale.mt_preset, overrides)


def mt_train(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Train one translation model (resuming from its checkpoints if there are any)."""
    prepared = dep_marker(step, "data/mt")["prepared"]
    config = mt_train_config(step, ctx, prepared)
    return train_step(MT, config, step, ctx.device)


def mt_eval(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Test BLEU (tokenised and sacreBLEU) of the best checkpoint, then after each of the
    paper's compressions of the i/f gate blocks (Tables 4/5 settings, no retraining)."""
    trained = dep_marker(step, "train")
    run = MT.load(trained["run_dir"], device=ctx.device)
    evaluator = MT.evaluator(data=dep_marker(step, "data/mt")["prepared"], split="test")
    base = evaluator.scores(run, run.model)
    out: dict[str, Any] = {
        "cell": step.cell,
        "seed": step.seed,
        "tok_bleu": base["BLEU"],
        "detok_bleu": base["detok_bleu"],
        "tok_signature": base["tok_signature"],
        "detok_signature": base["detok_signature"],
        "num_sentences": base["num_sentences"],
        "valid_loss": trained["best_valid_loss"],
        "num_parameters": trained["num_parameters"],
        "compression": {},
        "compression_detok": {},
    }
    for column, (method, params) in ctx.scale.mt_compression.settings().items():
        model, _ = compress(run.model, method, "gates_if", **params)
        bleu = evaluator.scores(run, model)
        out["compression"][column] = bleu["BLEU"]
        out["compression_detok"][column] = bleu["detok_bleu"]
    return out


def mt_analyze(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Gate histograms (paper Figs. 1/3 use the first decoder layer) and hard-gate
    validation perplexity of the translation models of one seed."""
    labels, runs = trained_runs(step, ctx.device)
    options = EvalDataOptions(
        data=dep_marker(step, "data/mt")["prepared"],
        split="valid",
        max_batches=ctx.scale.analysis_batches,
        metric="perplexity",
        device=ctx.device,
    )
    result = analyze_step(MT.eval_data(runs, options, list(labels)), step, ctx, tokens=False)
    stats = json.loads((step.out_dir / "gate_stats.json").read_text(encoding="utf-8"))
    decoder: dict[str, dict[str, float]] = {}
    for label, d in stats.items():
        st = GateStats.from_dict(d)
        dec = [m for m, _ in st.layers() if "dec" in m]
        module = dec[0] if dec else st.layers()[0][0]
        decoder[label] = {g: st.merged(g, module, 0).near_binary for g in ("input", "forget")}
    return summarize_analysis(result.results, labels, result.files, near_binary=decoder)


def overrides_text(overrides: Mapping[str, Mapping[str, Any]]) -> str:
    """``section.key=value`` text of MT overrides (for the report)."""
    return ", ".join(f"{s}.{k}={v}" for s, kv in overrides.items() for k, v in kv.items())
