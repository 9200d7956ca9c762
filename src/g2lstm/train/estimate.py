"""How long a training run will take, from a short measurement on this machine.

``g2lstm lm train`` and ``g2lstm mt train`` without ``--preset`` start the paper's models
(``paper`` / ``iwslt``), which take days to weeks of CPU time. Before such a run starts on
a machine without a GPU, the command times a few training steps of the configured model
(:func:`time_steps`, task code builds the step), states the size, the epochs and the
estimated time, and refuses a run of more than :data:`COST_LIMIT_S` unless ``--yes`` is
given (:func:`check_run_cost`). Task-neutral: each task supplies its step and its sentence.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

from g2lstm.errors import ConfigError
from g2lstm.train.progress import format_duration

__all__ = ["COST_LIMIT_S", "RunEstimate", "check_run_cost", "time_steps"]

D = TypeVar("D")

#: A run without --preset that would take longer than this on a CPU-only machine needs --yes.
COST_LIMIT_S = 3600.0


@dataclass(frozen=True)
class RunEstimate:
    """The measured cost of one training step and what it adds up to.

    Attributes:
        parameters: trainable scalars of the model.
        steps: training steps (updates) of the whole run, every epoch and cap included.
        seconds_per_step: mean over the measured steps (after one warm-up step).
        measured_steps: how many steps were timed.
        max_seconds: a time budget that stops the run earlier (``None``: none).
    """

    parameters: int
    steps: int
    seconds_per_step: float
    measured_steps: int
    max_seconds: float | None = None

    @property
    def seconds(self) -> float:
        """Estimated training time (steps x seconds per step, at most ``max_seconds``;
        evaluation not included)."""
        total = self.steps * self.seconds_per_step
        return total if self.max_seconds is None else min(total, self.max_seconds)

    def timing(self) -> str:
        """``about 3 h 5 min of training on this machine (0.41 s per step, measured over 2
        steps)``, with the time budget when it is what ends the run."""
        budget = ""
        if self.max_seconds is not None and self.seconds < self.steps * self.seconds_per_step:
            budget = f", stopped by the time budget of {format_duration(self.max_seconds)}"
        return (
            f"about {format_duration(self.seconds)} of training on this machine "
            f"({self.seconds_per_step:.3g} s per step, measured over {self.measured_steps} "
            f"steps{budget})"
        )


def time_steps(step: Callable[[], object], measure_steps: int = 2, threads: int = 0) -> float:
    """Mean wall-clock seconds of ``step()`` over ``measure_steps`` calls, after one untimed
    warm-up call (it builds kernels and warms caches).

    Args:
        step: one training step (forward, backward, optimiser update) of the run's model.
        measure_steps: calls to time (>= 1).
        threads: ``torch.set_num_threads`` while timing (0: leave it); restored after.
    """
    if measure_steps < 1:
        raise ValueError(f"measure_steps must be >= 1, got {measure_steps}")
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        step()
        start = time.perf_counter()
        for _ in range(measure_steps):
            step()
        return (time.perf_counter() - start) / measure_steps
    finally:
        torch.set_num_threads(before)


def check_run_cost(
    command: str,
    preset: str,
    load: Callable[[], D],
    estimate: Callable[[D], tuple[RunEstimate, str]],
    *,
    hint: str,
    limit_s: float = COST_LIMIT_S,
) -> RunEstimate | None:
    """A run without ``--preset``: on a machine without a GPU, say what is about to run and
    how long it will take; refuse (:class:`~g2lstm.errors.ConfigError`) when that is more
    than ``limit_s``.

    Args:
        command: ``"lm train"`` / ``"mt train"`` (prefixes the lines on stderr).
        preset: the preset the run starts from.
        load: reads what the estimate needs (the data); called before anything is printed,
            so that bad input fails with its own one-line error.
        estimate: measures the run on what ``load`` returned; returns the estimate and one
            sentence that names the model size, the epochs and the data and ends with
            :meth:`RunEstimate.timing`.
        hint: the presets to suggest instead, e.g. ``"--preset tiny: seconds"``.
        limit_s: the longest run started without ``--yes``.

    Returns:
        The estimate, or ``None`` on a machine with a GPU (nothing is measured there).
    """
    if torch.cuda.is_available():
        return None
    data = load()
    print(
        f"g2lstm {command}: no --preset given, so this is the '{preset}' preset on a machine "
        "without a GPU; timing a few training steps ...",
        file=sys.stderr,
        flush=True,
    )
    est, sentence = estimate(data)
    print(f"g2lstm {command}: {sentence}", file=sys.stderr, flush=True)
    if est.seconds > limit_s:
        raise ConfigError(
            f"{command} without --preset would run the '{preset}' preset for about "
            f"{est.seconds / 3600:,.0f} h on this machine; pick a preset ({hint}) or pass "
            "--yes to run it anyway"
        )
    return est
