"""Execute a plan in order: skip done steps, run the others, write their markers, show ETA.

Progress lines look like::

    [3/22] lm-train-sharpened-s1 ... (estimate 15.0s; about 2m10s left in all)
    [3/22] lm-train-sharpened-s1 done in 14.2s

The trainers print their own per-epoch lines (and tqdm bars on a terminal) in between. A
step that fails leaves no marker, so the next invocation runs it again (training steps
resume from their last checkpoint); the error propagates to the caller.

With ``ctx.reuse`` (``--reuse DIR``), a training step that a finished run with the same
config satisfies is not trained: its folder points to that run and its marker records
``reused_from`` and ``config_hash`` (:mod:`g2lstm.reproduce.reuse`)::

    [2/17] lm-train-lstm-s1 reused /runs/bench/lstm-seed1 (config 3f2a...)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from g2lstm.reproduce.context import RunContext
from g2lstm.reproduce.plan import DONE, Step

__all__ = ["RunSummary", "run_plan", "step_function"]

StepFn = Callable[[Step, RunContext], dict[str, Any]]


def step_function(kind: str) -> StepFn:
    """The function that runs steps of ``kind`` (imported lazily)."""
    from g2lstm.reproduce import report, steps_lm, steps_mt

    table: dict[str, StepFn] = {
        "lm-data": steps_lm.lm_data, "lm-train": steps_lm.lm_train,
        "lm-eval": steps_lm.lm_eval, "lm-analyze": steps_lm.lm_analyze,
        "mt-data": steps_mt.mt_data, "mt-train": steps_mt.mt_train,
        "mt-eval": steps_mt.mt_eval, "mt-analyze": steps_mt.mt_analyze,
        "report": report.report_step,
    }  # fmt: skip
    return table[kind]


@dataclass
class RunSummary:
    """What an invocation did: ids run and skipped, seconds per step run, and the training
    steps satisfied by a reused run (``id -> run folder``; also counted in ``ran``)."""

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    reused: dict[str, str] = field(default_factory=dict)


def _eta(remaining: Sequence[Step], spent: float, estimated: float) -> float:
    """Estimates of the remaining steps, scaled by how fast this machine was so far."""
    ratio = spent / estimated if estimated > 0 and spent > 0 else 1.0
    return ratio * sum(s.estimate_s for s in remaining if not s.done())


def run_plan(
    steps: Sequence[Step],
    ctx: RunContext,
    *,
    functions: Callable[[str], StepFn] = step_function,
) -> RunSummary:
    """Run every step that is not done, in order; see the module docstring.

    Args:
        steps: from :func:`~g2lstm.reproduce.plan.build_plan`.
        ctx: scale, folders, device and the ``log`` function for progress lines.
        functions: ``kind -> step function`` (injectable for tests).
    """
    from g2lstm.reproduce.reuse import ReuseFinder, adopt, release
    from g2lstm.train import atomic_write_json
    from g2lstm.train.progress import format_duration

    finder = ReuseFinder(ctx.reuse, ctx) if ctx.reuse else None
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(ctx.out_dir / "plan.json",
                      {"scale": ctx.scale.name, "steps": [s.to_dict() for s in steps]})  # fmt: skip
    summary = RunSummary()
    spent = estimated = 0.0
    n = len(steps)
    for k, step in enumerate(steps, 1):
        if step.done():
            summary.skipped.append(step.id)
            ctx.log(f"[{k}/{n}] {step.id} ... already done, skipped")
            continue
        left = _eta(steps[k - 1 :], spent, estimated)
        ctx.log(f"[{k}/{n}] {step.id} ... (estimate {format_duration(step.estimate_s)}; "
                f"about {format_duration(left)} left in all)")  # fmt: skip
        inputs = step.inputs()
        step.out_dir.mkdir(parents=True, exist_ok=True)
        decision = None
        if step.kind.endswith("-train"):
            release(step.out_dir)  # never train through the links of an earlier reuse
            decision = finder.decide(step) if finder is not None else None
            if decision is not None and decision.message:
                ctx.log(decision.message)
        extra: dict[str, Any] = {}
        t0 = time.perf_counter()
        if decision is not None and decision.run is not None:
            extra = {"reused_from": str(decision.run.path), "config_hash": decision.config_hash}
            result = adopt(step, decision)
        else:
            result = functions(step.kind)(step, ctx)
        seconds = time.perf_counter() - t0
        marker = {
            "id": step.id, "kind": step.kind, "cell": step.cell, "seed": step.seed,
            "inputs": inputs, "seconds": seconds,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **extra, "result": result,
        }  # fmt: skip
        atomic_write_json(step.out_dir / DONE, marker)
        summary.ran.append(step.id)
        summary.seconds[step.id] = seconds
        if extra:
            summary.reused[step.id] = extra["reused_from"]
            ctx.log(f"[{k}/{n}] {step.id} reused {extra['reused_from']} (finished run with "
                    f"the same config, hash {extra['config_hash']})")  # fmt: skip
            continue
        spent += seconds
        estimated += step.estimate_s
        ctx.log(f"[{k}/{n}] {step.id} done in {format_duration(seconds)}")
    return summary
