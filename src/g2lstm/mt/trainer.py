"""The MT training run: run folder, epochs and budgets, validation, exact resume, valid BLEU.

:func:`train` writes into one run folder::

    run_dir/
      config.yaml           the full configuration of the run (:mod:`g2lstm.config`)
      metrics.jsonl / .csv  one row per ``log_every`` updates ("train") and per validation
      checkpoints/          safetensors checkpoints (g2lstm.train): last ``keep_last`` + best
                            by validation loss; each is self-contained (vocab, BPE, settings)
      results.json          final summary (:class:`~g2lstm.train.RunResult`: steps, time; details:
                            best validation loss, best checkpoint, valid BLEU, CPU time
                            ``cpu_time_s``: all threads, None if resumed from a checkpoint
                            written before CPU time was kept)

Randomness (batch order, dropout, gate noise) is a function of ``(seed, step)``: the batch
order of epoch ``e`` comes from ``(seed, e)`` and each update re-seeds torch with
``derive_seed(seed, step)``. Together with the saved optimizer and sampler state, a run that
is stopped (time budget, Ctrl-C, crash after a checkpoint) and resumed computes exactly the
same weights as an uninterrupted run.

Loss: label-smoothed cross-entropy averaged over target tokens (``</s>`` included, padding
excluded; :mod:`g2lstm.mt.objective`); reported perplexity uses the plain NLL. The learning
rate of each update follows ``optim.schedule`` (:mod:`g2lstm.mt.schedule`): by default it is
multiplied by ``optim.lr_decay`` after an epoch whose validation loss did not improve
(``plateau``).

This module holds the run (:func:`train`: run folder, resume, budgets, epochs, final BLEU);
one update, validation and the checkpoint contents are :class:`g2lstm.mt.steps.MTTrainer`'s,
the configuration changes a resume accepts are :mod:`g2lstm.mt.resume`'s.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from g2lstm.config import CONFIG_FILE
from g2lstm.errors import CheckpointError
from g2lstm.mt.config import MTConfig
from g2lstm.mt.prepare import load_prepared
from g2lstm.mt.steps import MTTrainer
from g2lstm.mt.translate import Translator, evaluate_split
from g2lstm.train import (
    CheckpointManager,
    GracefulInterrupt,
    MetricsLogger,
    NonFiniteGuard,
    NonFinitePolicy,
    RunLock,
    RunResult,
    atomic_write_text,
    claim_run_dir,
    load_checkpoint,
    progress,
)

# the objective is re-exported: it is part of this module's API (g2lstm.tasks.mt uses it)
__all__ = ["TrainResult", "train"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """Summary of :func:`train` (also written to ``run_dir/results.json``, the layout every
    task shares: :meth:`to_run_result`)."""

    run_dir: str
    steps: int
    epochs: int
    stopped: str
    train_time_s: float
    best_valid_loss: float
    best_checkpoint: str | None
    num_parameters: int
    valid_bleu: dict[str, Any] | None
    cell: str = ""
    seed: int | None = None
    cpu_time_s: float | None = None

    @property
    def finished(self) -> bool:
        """Whether a budget ended the run (not an interruption)."""
        return self.stopped != "interrupted"

    def to_run_result(self) -> RunResult:
        """The task-neutral :class:`~g2lstm.train.RunResult` written to ``results.json``."""
        return RunResult.of("mt", {**asdict(self), "finished": self.finished})


def train(
    config: MTConfig,
    out_dir: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    resume: bool = False,
    show_progress: bool | None = None,
) -> TrainResult:
    """Train (or resume) an MT model; see the module docstring for what is written.

    Args:
        config: the run configuration; ``config.train.data`` is a prepared folder.
        out_dir: the run folder. If it holds checkpoints and ``resume``, training continues
            from the latest one (the configuration must match except budgets/bookkeeping).
        device: ``"cpu"``, ``"cuda"``, ...
        resume: ``False`` refuses to start in a folder that already has checkpoints.
        show_progress: tqdm bar (``None``: only on a terminal).

    Returns:
        :class:`TrainResult`. ``stopped`` is ``"epochs"``, ``"max_updates"``,
        ``"max_minutes"`` or ``"interrupted"``.
    """
    t = config.train
    if t.threads:
        torch.set_num_threads(t.threads)
    device = torch.device(device)
    prepared = load_prepared(t.data)
    out = claim_run_dir(out_dir, "mt")
    latest = CheckpointManager(out, keep_last=None).latest() if resume else None
    trainer = MTTrainer(config, prepared, device, latest)
    guard = NonFiniteGuard(NonFinitePolicy(t.on_nonfinite))
    with RunLock(out), GracefulInterrupt() as stop, MetricsLogger(out) as metrics:
        manager = CheckpointManager(out, keep_last=t.keep_last)
        ckpt = manager.load_latest(map_location=device)
        if ckpt is not None:
            if not resume:
                raise CheckpointError(
                    f"{out} already holds checkpoints; pass resume or a new --out"
                )
            trainer.restore(ckpt, guard)
            metrics.drop_after(trainer.progress.step)
            log.info("resumed %s at step %d", ckpt.path, trainer.progress.step)
        atomic_write_text(out / CONFIG_FILE, config.to_yaml())
        p = trainer.progress
        stopped = _loop(trainer, manager, guard, metrics, stop, progress, show_progress)
        best = manager.best() or manager.latest()
        bleu = None
        if stopped != "interrupted" and t.valid_bleu and best is not None:
            bleu = _valid_bleu(trainer, best, metrics)
        result = TrainResult(
            str(out),
            p.step,
            p.epoch,
            stopped,
            p.train_seconds,
            p.best_valid_loss,
            None if best is None else str(best),
            trainer.model.num_parameters,
            bleu,
            config.model.gates.cell,
            t.seed,
            p.cpu_seconds,
        )
        result.to_run_result().write(out)
    return result


def _loop(trainer, manager, guard, metrics, stop, progress, show) -> str:  # type: ignore[no-untyped-def]
    """Epochs and updates until a budget is reached; returns the reason for stopping."""
    t, o, p = trainer.cfg.train, trainer.cfg.optim, trainer.progress
    sampler = trainer.sampler
    last = window_start = time.perf_counter()
    last_cpu = time.process_time()

    def clock() -> None:
        nonlocal last, last_cpu
        now, now_cpu = time.perf_counter(), time.process_time()
        p.train_seconds += now - last
        if p.cpu_seconds is not None:
            p.cpu_seconds += now_cpu - last_cpu
        last, last_cpu = now, now_cpu

    def checkpoint(end_of_epoch: bool) -> None:
        valid = trainer.validate()
        clock()
        p.best_valid_loss = min(p.best_valid_loss, valid["valid_loss"])
        if end_of_epoch:  # only epoch ends decide the lr, so extra validations change nothing
            if valid["valid_loss"] < p.best_epoch_loss:
                p.best_epoch_loss = valid["valid_loss"]
            elif o.schedule == "plateau" and o.lr_decay < 1.0:
                trainer.set_lr(max(p.lr * o.lr_decay, o.min_lr))
        metrics.log(
            {
                "kind": "valid",
                "epoch": p.epoch,
                **valid,
                "lr": trainer.current_lr,
                "train_seconds": p.train_seconds,
            },
            step=p.step,
        )
        trainer.save(manager, guard, valid["valid_loss"])

    while True:
        if p.epoch >= t.epochs:
            return "epochs"
        sampler.set_epoch(p.epoch, skip_batches=p.batches_done)
        bar = progress(
            total=sampler.num_batches,
            initial=p.batches_done,
            desc=f"epoch {p.epoch + 1}",
            unit="batch",
            disable=None if show is None else not show,
        )
        reason = None
        for idx in sampler:
            row = trainer.train_step(idx, guard)
            clock()
            p.window_loss += row["loss"] * row["tokens"]
            p.window_nll += row["nll"] * row["tokens"]
            p.window_tokens += row["tokens"]
            bar.update(1)
            if p.step % t.log_every == 0:
                tok = p.window_tokens
                tps = tok / max(time.perf_counter() - window_start, 1e-9)
                metrics.log(
                    {
                        "kind": "train",
                        "epoch": p.epoch,
                        "loss": p.window_loss / tok,
                        "ppl": math.exp(min(p.window_nll / tok, 50.0)),
                        "lr": row["lr"],
                        "grad_norm": row["grad_norm"],
                        "tokens_per_s": tps,
                        "train_seconds": p.train_seconds,
                    },
                    step=p.step,
                )
                bar.set_postfix(
                    step=p.step,
                    loss=f"{p.window_loss / tok:.3f}",
                    ppl=f"{math.exp(min(p.window_nll / tok, 50.0)):.1f}",
                    tok_s=f"{tps:.0f}",
                )
                p.window_loss, p.window_nll, p.window_tokens = 0.0, 0.0, 0
                window_start = time.perf_counter()
            if t.max_updates and p.step >= t.max_updates:
                reason = "max_updates"
            elif t.max_minutes and p.train_seconds >= 60 * t.max_minutes:
                reason = "max_minutes"
            elif stop.requested:
                reason = "interrupted"
            if reason or (t.eval_every and p.step % t.eval_every == 0):
                if reason and p.batches_done == sampler.num_batches:
                    break  # the epoch is complete: close it below
                checkpoint(end_of_epoch=False)
                if reason:
                    bar.close()
                    return reason
        bar.close()
        p.epoch += 1
        p.batches_done = 0
        checkpoint(end_of_epoch=True)
        if reason:
            return reason


def _valid_bleu(trainer: MTTrainer, best: Path, metrics: Any) -> dict[str, Any]:
    """Decode the validation set with the best checkpoint's weights; log and return BLEU."""
    model = trainer.model
    model.load_state_dict(load_checkpoint(best, map_location=trainer.device).model_state)
    prepared = trainer.prepared
    translator = Translator(
        model,
        prepared.src_vocab,
        prepared.tgt_vocab,
        prepared.config,
        trainer.cfg.decode,
        prepared.bpe(),
    )
    limit = trainer.cfg.train.limit_sentences
    result = evaluate_split(translator, "valid", prepared, limit=limit).to_dict()
    metrics.log(
        {"kind": "valid_bleu", **{k: v for k, v in result.items() if k != "split"}},
        step=trainer.progress.step,
    )
    log.info("valid BLEU: %s", result)
    return result
