"""The ablation steps (:mod:`~g2lstm.reproduce.ablations`): the per-run probe and the
ranking check of a reduced budget.

``lm-probe`` measures one trained LM (the paper's cells and every variant alike), through the
task interface and the compression / analysis packages:

- valid and test perplexity with soft and hard (``1[a >= 0]``) input/forget gates, each
  without and with the continuous cache pointer (a test batch size of 1 is evaluated in
  warmed-up streams, as the trainer's own test perplexity and ``lm eval``);
- the clean training perplexity (eval mode: no gate noise) on the first tokens of ``train``,
  and the last training perplexity the trainer logged (with noise, for G2);
- near-0/1 fractions of every gate, first layer and all layers, and the loss increase under
  random perturbations of the input/forget gate weights (a flatness proxy, claim 3);
- test perplexity, without and with the cache pointer, after each compression of
  :data:`~g2lstm.reproduce.ablations.PROBE` (input and forget gate blocks, no retraining).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from torch import nn

from g2lstm.analysis import (
    GATES,
    GateStats,
    SensitivityConfig,
    ensure_recordable,
    gate_sensitivity,
    hard_gate_model,
    record_pass,
    recorded_layers,
)
from g2lstm.compress import compress
from g2lstm.errors import G2LSTMError
from g2lstm.reproduce.ablations import PROBE, preset_epochs
from g2lstm.reproduce.budget import records_from_runs, require_ranking
from g2lstm.reproduce.context import RunContext, dep_marker
from g2lstm.reproduce.plan import Step
from g2lstm.reproduce.probe_file import probe_file, probe_inputs, read_probe_file
from g2lstm.tasks import EvalDataOptions, LoadedRun, get_task
from g2lstm.train.metrics import read_metrics

__all__ = ["lm_probe", "lm_ranking", "probe_run"]

LM = get_task("lm")

#: Streams and segment length of the clean training perplexity and the gate fractions.
_BATCH, _BPTT = 10, 35


def _both(run: LoadedRun, model: nn.Module, hard: nn.Module, **options: Any) -> dict[str, float]:
    ev = LM.evaluator(**options)
    return {"soft": ev.score(run, model), "hard": ev.score(run, hard)}


def lm_probe(step: Step, ctx: RunContext) -> dict[str, Any]:
    """Every number of the ablation tables for one trained run (module docstring)."""
    trained = dep_marker(step, "train")
    data = dep_marker(step, "data/lm")["data"]
    reused = trained.get("reused_from")
    numbers = probe_run(
        Path(trained["run_dir"]),
        data,
        analysis_batches=ctx.scale.analysis_batches,
        seed=step.seed or 0,
        metrics=trained.get("metrics"),
        kept_beside=Path(reused) if reused else None,
    )
    return {"cell": step.cell, "seed": step.seed, "variant": step.variant, **numbers}


def probe_run(
    run_dir: Path,
    data: str,
    *,
    analysis_batches: int,
    seed: int | None = None,
    metrics: str | None = None,
    kept_beside: Path | None = None,
) -> dict[str, Any]:
    """The probe's numbers (module docstring) for the trained LM in ``run_dir``, evaluated on
    ``data`` (a dataset name or folder): ``config``, ``hidden``, ``ppl`` (valid/test x
    soft/hard x with/without pointer), ``train_ppl``, ``train_ppl_logged`` (from the
    trainer's ``metrics`` log, when given), ``near_binary``, ``sensitivity`` (seeded by
    ``seed``, default the run's training seed), ``compression``, ``pointer``, ``metrics``,
    ``inputs``, what they were measured on
    (:func:`~g2lstm.reproduce.probe_file.probe_inputs`), and ``cost``, the wall and CPU
    seconds of this process that measuring them took. ``analysis_batches`` validation
    segments feed the gate fractions and the sensitivity.

    ``kept_beside``: a run folder (the one ``run_dir`` reuses) whose kept numbers
    (``<folder>.probe.json``, :mod:`~g2lstm.reproduce.probe_file`) are returned instead of
    measuring, with ``probe_reused_from`` naming the file, when they were measured on the
    same ``inputs``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run = LM.load(Path(run_dir), device="cpu")
    seed = run.seed if seed is None else seed
    inputs = probe_inputs(run, data, analysis_batches=analysis_batches, seed=seed)
    if kept_beside is not None and (kept := read_probe_file(kept_beside, inputs)) is not None:
        return {**kept, "metrics": metrics, "probe_reused_from": str(probe_file(kept_beside))}
    model = run.model
    hard = hard_gate_model(model)
    pointer = dict(PROBE.pointer)
    ppl: dict[str, dict[str, float]] = {}
    for split in ("valid", "test"):
        plain = _both(run, model, hard, data=data, split=split, streams=True)
        cached = _both(run, model, hard, data=data, split=split, pointer=pointer)
        ppl[split] = {**plain, "soft_pointer": cached["soft"], "hard_pointer": cached["hard"]}
    train_ev = LM.evaluator(
        data=data,
        split="train",
        batch_size=_BATCH,
        bptt=_BPTT,
        max_batches=max(1, PROBE.train_tokens // (_BATCH * _BPTT)),
    )
    test_plain = LM.evaluator(data=data, split="test", streams=True)
    test_cached = LM.evaluator(data=data, split="test", pointer=pointer)
    compression: dict[str, dict[str, Any]] = {}
    for column, (method, params) in PROBE.compressions(run.hidden).items():
        small, report = compress(model, method, "gates_if", **params)
        compression[column] = {
            "method": method,
            **params,
            "test": test_plain.score(run, small),
            "test_pointer": test_cached.score(run, small),
            "bytes_before": report.bytes_before,
            "bytes_after": report.bytes_after,
        }
    cfg = run.config
    return {
        "config": {
            "noise_p": cfg.model.gates.noise_p,
            "tau": cfg.model.gates.tau,
            "noisy_gates": list(cfg.model.gates.noisy_gates),
            "epochs": cfg.train.epochs,
        },
        "hidden": run.hidden,
        "ppl": ppl,
        "train_ppl": train_ev.score(run, model),
        "train_ppl_logged": _last_logged(metrics),
        **_gates(run, data, analysis_batches, seed),
        "compression": compression,
        "pointer": pointer,
        "metrics": metrics,
        "inputs": inputs,
        "cost": {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu},
    }


def _last_logged(path: str | None) -> float | None:
    """The last end-of-epoch training perplexity of the trainer's log (None if absent)."""
    if not path or not Path(path).is_file():
        return None
    rows = [r for r in read_metrics(path) if r.get("train_ppl") is not None]
    value = float(rows[-1]["train_ppl"]) if rows else math.nan  # type: ignore[arg-type]
    return value if math.isfinite(value) else None


def _gates(run: LoadedRun, data: str, batches: int, seed: int) -> dict[str, Any]:
    """On validation segments: the fraction of gate values < 0.1 or >= 0.9 (first layer, all
    layers) and the loss increase under noise on the input/forget gate weights."""
    options = EvalDataOptions(
        data=data, split="valid", batch_size=_BATCH, bptt=_BPTT, max_batches=batches, sentences=()
    )
    inputs = LM.eval_data([run], options, ["model"])
    model = ensure_recordable(run.model)
    stats = GateStats(GATES)
    record_pass(model, inputs.batches, inputs.forward, [stats])
    module, layer = recorded_layers(model)[0]
    config = SensitivityConfig(
        sigmas=(PROBE.sensitivity_sigma,),
        draws=PROBE.sensitivity_draws,
        seed=seed,
        targets=("weights",),
        gates=("input", "forget"),
    )
    rows = gate_sensitivity(model, inputs.batches, inputs.forward, config)
    return {
        "near_binary": {
            "first_layer": {g: stats.merged(g, module, layer).near_binary for g in GATES},
            "all_layers": {g: stats.merged(g).near_binary for g in GATES},
        },
        "sensitivity": {
            "sigma": PROBE.sensitivity_sigma,
            "delta_loss": rows[0]["delta_loss"],
            "clean_loss": rows[0]["clean_loss"],
        },
    }


def lm_ranking(step: Step, ctx: RunContext) -> dict[str, Any]:
    """The ranking check of a reduced budget on the plan's full-budget runs
    (:func:`~g2lstm.reproduce.budget.require_ranking`); raises, stopping the plan before
    any reduced-budget training, unless it passes."""
    epochs = dict(step.overrides).get("train.epochs")
    if not isinstance(epochs, int):
        raise G2LSTMError(f"step {step.id} names no budget (train.epochs)")
    records = records_from_runs(step.deps)
    check = require_ranking(records, epochs, preset_epochs(ctx.scale))
    ctx.log(check.summary())
    return check.to_dict()
