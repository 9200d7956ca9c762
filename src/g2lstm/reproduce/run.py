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

Under ``torchrun`` (``ranks`` from :func:`g2lstm.reproduce.ranks.open_ranks`), every rank walks
the same plan. Rank 0 decides each step (done? reused?) and broadcasts the decision. The
steps of :data:`ALL_RANKS` (LM training, data parallel through the LM trainer) run on every
rank; every other step, the markers, ``plan.json`` and the progress lines are rank 0's alone
while the others wait (:func:`~g2lstm.reproduce.ranks.on_main`). The marker of a step of
:data:`ALL_RANKS` records ``world_size``, the number of ranks that finished it (1 without
torchrun). Every marker records the step's wall time ``seconds`` and ``cpu_seconds``, the CPU
time of this process (all threads) and of the child processes it waited for, on rank 0
(:mod:`g2lstm.reproduce.cost` turns them into the report's cost per experiment).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from g2lstm.reproduce.context import RunContext
from g2lstm.reproduce.plan import DONE, Step, is_wait_label, waits_note
from g2lstm.reproduce.ranks import Ranks, on_main

__all__ = ["ALL_RANKS", "RunSummary", "run_plan", "step_function"]

StepFn = Callable[[Step, RunContext], dict[str, Any]]

#: Step kinds run by every rank under torchrun (the LM trainer is data parallel); the others
#: run on rank 0 alone (the MT trainer, evaluation and analysis are single-process).
ALL_RANKS = frozenset({"lm-train"})


class _Clock:
    """Wall and CPU seconds since construction (CPU: this process's threads and its
    waited-for children, :func:`os.times`)."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), self._cpu()

    @staticmethod
    def _cpu() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def elapsed(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, self._cpu() - self.cpu


def step_function(kind: str) -> StepFn:
    """The function that runs steps of ``kind`` (imported lazily)."""
    from g2lstm.reproduce import steps_lm, steps_mt, steps_probe, steps_report

    table: dict[str, StepFn] = {
        "lm-data": steps_lm.lm_data,
        "lm-train": steps_lm.lm_train,
        "lm-eval": steps_lm.lm_eval,
        "lm-analyze": steps_lm.lm_analyze,
        "lm-probe": steps_probe.lm_probe,
        "lm-ranking": steps_probe.lm_ranking,
        "mt-data": steps_mt.mt_data,
        "mt-train": steps_mt.mt_train,
        "mt-eval": steps_mt.mt_eval,
        "mt-analyze": steps_mt.mt_analyze,
        "report": steps_report.report_step,
    }
    return table[kind]


@dataclass
class RunSummary:
    """What an invocation did: ids run and skipped, seconds per step run, and the training
    steps satisfied by a reused run (``id -> run folder``; also counted in ``ran``)."""

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    reused: dict[str, str] = field(default_factory=dict)


#: Estimated seconds of the steps run so far below which the ETA keeps the scale's own
#: estimates: a few seconds of data preparation say little about how fast training will be.
CALIBRATE_AFTER_S = 60.0


def _eta(
    remaining: Sequence[Step], spent: float, estimated: float, free: Set[str] = frozenset()
) -> float:
    """Estimates of the remaining steps not done and not in ``free`` (steps that reuse or
    kept numbers will satisfy, :meth:`~g2lstm.reproduce.reuse.ReuseFinder.preview_labels`),
    scaled by how fast this machine ran ``estimated`` seconds of estimated work in ``spent``
    seconds, once that is at least :data:`CALIBRATE_AFTER_S`."""
    ratio = spent / estimated if estimated >= CALIBRATE_AFTER_S and spent > 0 else 1.0
    return ratio * sum(s.estimate_s for s in remaining if not s.done() and s.id not in free)


def run_plan(
    steps: Sequence[Step],
    ctx: RunContext,
    *,
    functions: Callable[[str], StepFn] = step_function,
    ranks: Ranks | None = None,
) -> RunSummary:
    """Run every step that is not done, in order; see the module docstring.

    Args:
        steps: from :func:`~g2lstm.reproduce.plan.build_plan` (the same on every rank).
        ctx: scale, folders, device and the ``log`` function for progress lines.
        functions: ``kind -> step function`` (injectable for tests).
        ranks: this process's place in a ``torchrun`` job (None: one process).

    Returns:
        What was run, skipped and reused (the same on every rank).
    """
    return _Runner(steps, ctx, functions, ranks or Ranks()).run()


class _Runner:
    """State of one :func:`run_plan` call; the ``_main_*`` methods run on rank 0 only."""

    def __init__(
        self,
        steps: Sequence[Step],
        ctx: RunContext,
        functions: Callable[[str], StepFn],
        ranks: Ranks,
    ) -> None:
        self.steps, self.ctx, self.functions, self.ranks = steps, ctx, functions, ranks
        self.finder: Any = None
        self.free: frozenset[str] = frozenset()
        self.waits: frozenset[str] = frozenset()
        self.spent = self.estimated = 0.0

    def run(self) -> RunSummary:
        summary = RunSummary()
        on_main(self.ranks, "writing plan.json", self._main_start)
        for k, step in enumerate(self.steps, 1):
            outcome = on_main(self.ranks, step.id, self._main_prepare, k, step)
            if outcome["action"] == "all-ranks":
                clock = _Clock()
                result = self.functions(step.kind)(step, self.ctx)
                elapsed = clock.elapsed()
                world = len(self.ranks.all_gather(self.ranks.rank))
                outcome = on_main(
                    self.ranks,
                    step.id,
                    self._main_finish,
                    k,
                    step,
                    result,
                    elapsed,
                    {"world_size": world},
                )
            if outcome["action"] == "skipped":
                summary.skipped.append(step.id)
                continue
            summary.ran.append(step.id)
            summary.seconds[step.id] = outcome["seconds"]
            if outcome.get("reused_from"):
                summary.reused[step.id] = outcome["reused_from"]
        return summary

    def _main_start(self) -> dict[str, Any]:
        from g2lstm.reproduce.reuse import ReuseFinder
        from g2lstm.train import atomic_write_json

        ctx = self.ctx
        self.finder = ReuseFinder(ctx.reuse, ctx, wait=ctx.reuse_wait) if ctx.reuse else None
        if self.finder is not None:  # what reuse will satisfy costs the ETA nothing
            labels = self.finder.preview_labels(self.steps)
            self.free = frozenset(labels)
            # ... but a run still training beside us costs an unknown time: said, not counted
            self.waits = frozenset(k for k, v in labels.items() if is_wait_label(v))
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            ctx.out_dir / "plan.json",
            {"scale": ctx.scale.name, "steps": [s.to_dict() for s in self.steps]},
        )
        return {}

    def _main_prepare(self, k: int, step: Step) -> dict[str, Any]:
        """Skip, reuse or run ``step`` (rank 0); a step of :data:`ALL_RANKS` is left to be run
        by every rank (``action`` ``all-ranks``)."""
        from g2lstm.reproduce.reuse import adopt, release, wait_while_training
        from g2lstm.train.progress import format_duration

        ctx, n = self.ctx, len(self.steps)
        if step.done():
            ctx.log(f"[{k}/{n}] {step.id} ... already done, skipped")
            return {"action": "skipped"}
        left = _eta(self.steps[k - 1 :], self.spent, self.estimated, self.free)
        n_wait = sum(1 for s in self.steps[k - 1 :] if s.id in self.waits and not s.done())
        ctx.log(
            f"[{k}/{n}] {step.id} ... (estimate {format_duration(step.estimate_s)}; "
            f"about {format_duration(left)} left in all{waits_note(n_wait)})"
        )
        step.out_dir.mkdir(parents=True, exist_ok=True)
        decision = None
        if step.kind.endswith("-train"):
            release(step.out_dir)  # never train through the links of an earlier reuse
            decision = self.finder.decide(step) if self.finder is not None else None
            while decision is not None and decision.waiting_on is not None:  # --reuse-wait
                ctx.log(str(decision.message))
                wait_while_training(decision.waiting_on.path, ctx.log)
                decision = self.finder.decide(step)  # adopted now if it finished
            if decision is not None and decision.message:
                ctx.log(decision.message)
        if decision is not None and decision.run is not None:
            clock = _Clock()
            result = adopt(step, decision.run, decision.config_hash)
            extra = {"reused_from": str(decision.run.path), "config_hash": decision.config_hash}
            return self._main_finish(k, step, result, clock.elapsed(), extra)
        if step.kind in ALL_RANKS:
            return {"action": "all-ranks"}
        clock = _Clock()
        result = self.functions(step.kind)(step, ctx)
        return self._main_finish(k, step, result, clock.elapsed(), {})

    def _main_finish(
        self,
        k: int,
        step: Step,
        result: dict[str, Any],
        elapsed: tuple[float, float],
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        """Write the step's marker and its progress line (rank 0); ``elapsed``: the step's
        wall and CPU seconds."""
        from g2lstm.train import atomic_write_json
        from g2lstm.train.progress import format_duration

        n = len(self.steps)
        seconds, cpu_seconds = elapsed
        marker = {
            "id": step.id,
            "kind": step.kind,
            "cell": step.cell,
            "seed": step.seed,
            **({"variant": step.variant} if step.variant else {}),
            "inputs": step.inputs(),
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **extra,
            "result": result,
        }
        atomic_write_json(step.out_dir / DONE, marker)
        reused = extra.get("reused_from")
        if reused:
            self.ctx.log(
                f"[{k}/{n}] {step.id} reused {reused} (finished run with the same "
                f"config, hash {extra['config_hash']})"
            )
        else:
            self.spent += seconds
            self.estimated += step.estimate_s
            self.ctx.log(f"[{k}/{n}] {step.id} done in {format_duration(seconds)}")
        return {"action": "ran", "seconds": seconds, "reused_from": reused}
