"""How long a translation run will take, from a short measurement on this machine.

``g2lstm mt train`` without ``--preset`` starts the ``iwslt`` preset (2 x 256 encoder-decoder,
20 epochs), which is hours to days of CPU time on a real corpus. Before it starts such a run
on a machine without a GPU, the command times a few real updates of the configured run (its
model, optimiser and first token batches; :func:`estimate_run`) and states the size, the
epochs and the estimated time (:func:`describe_run`);
:func:`g2lstm.train.estimate.check_run_cost` does the asking.
"""

from __future__ import annotations

import itertools

import torch

from g2lstm.mt.config import MTConfig
from g2lstm.mt.prepared import PreparedData
from g2lstm.mt.steps import MTTrainer
from g2lstm.train.estimate import RunEstimate, time_steps
from g2lstm.train.nonfinite import NonFiniteGuard, NonFinitePolicy

__all__ = ["describe_run", "estimate_run"]


def estimate_run(
    config: MTConfig, prepared: PreparedData, *, measure_steps: int = 2
) -> RunEstimate:
    """Time ``measure_steps`` updates of the run ``config`` describes (the trainer's own
    update: teacher-forced loss, backward, clipping, optimiser step) on the first token
    batches of its first epoch, after one warm-up update, on the CPU with ``train.threads``
    threads (0: the current count). Nothing is written.

    The run's updates are ``epochs x batches per epoch``, at most ``train.max_updates``;
    ``train.max_minutes`` bounds the time. Validation and BLEU are not included.
    """
    t = config.train
    trainer = MTTrainer(config, prepared, torch.device("cpu"))
    guard = NonFiniteGuard(NonFinitePolicy("skip"))  # a NaN of an untrained model: no error
    trainer.sampler.set_epoch(0)
    batches = itertools.cycle(list(trainer.sampler))
    seconds = time_steps(
        lambda: trainer.train_step(next(batches), guard), measure_steps, threads=t.threads
    )
    steps = trainer.sampler.num_batches * t.epochs
    if t.max_updates:
        steps = min(steps, t.max_updates)
    return RunEstimate(
        trainer.model.num_parameters,
        steps,
        seconds,
        measure_steps,
        max_seconds=60 * t.max_minutes if t.max_minutes else None,
    )


def describe_run(est: RunEstimate, config: MTConfig, prepared: PreparedData) -> str:
    """One sentence: model size, epochs, data and the estimate."""
    m, t = config.model, config.train
    pairs = prepared.info["counts"]["sizes"]["train"]
    if t.limit_sentences is not None:
        pairs = min(pairs, t.limit_sentences)
    capped = ", train.max_updates" if t.max_updates and est.steps == t.max_updates else ""
    return (
        f"{m.layers} x {m.hidden} {m.gates.cell} encoder-decoder ({est.parameters / 1e6:.1f}M "
        f"parameters), {t.epochs} epochs of {pairs:,} sentence pairs of {t.data} "
        f"({est.steps:,} updates of <= {t.max_tokens:,} tokens{capped}): {est.timing()}"
    )
