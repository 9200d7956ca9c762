"""The AWD-LSTM trainer: set-up, the NT-ASGD and finetune stages, exact resume, DDP.

Randomness is derived from ``(seed, step)`` (fairseq's trick): before every training step the
global torch generator (dropout, weight drop, embedding dropout) and the gate-noise generator
are reseeded from the seed, the global step and the rank; the random BPTT lengths of an
epoch come from a numpy generator seeded by ``(seed, epoch)`` and are replayed up to the saved
row on resume. So a checkpoint needs only the model, the optimizer (with the ASGD averages),
the carried hidden state, the data position (stage, epoch, row, step) and the bookkeeping of
NT-ASGD; a run interrupted anywhere and resumed ends with bit-identical weights on CPU.

Run directory: ``config.yaml`` (resolved config), ``vocab.json``, ``checkpoints/`` (last N +
best, see :class:`~g2lstm.train.CheckpointManager`), ``metrics.jsonl``/``.csv`` and, at the
end, ``results.json`` (best valid/test perplexity, time, tokens/s; :mod:`g2lstm.lm.results`).
What a checkpoint holds: :mod:`g2lstm.lm.checkpointing`.

This module holds :class:`LMTrainer`'s set-up (data, model, optimizer, restore from a
checkpoint), the loop over the main and finetune stages, and :func:`train`; the training step
and the epochs are its base class's, :class:`~g2lstm.lm.epochs.EpochLoop`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from g2lstm.datasets import resolve_dataset
from g2lstm.errors import ConfigError, TrainingError
from g2lstm.limits import build_checked
from g2lstm.lm.asgd import AveragedSGD, NTASGDTrigger
from g2lstm.lm.checkpointing import check_resumable, load_lm_checkpoint
from g2lstm.lm.config import RunConfig
from g2lstm.lm.data import Corpus, batchify
from g2lstm.lm.epochs import NEW_INTERVAL, EpochLoop
from g2lstm.lm.evaluate import load_model
from g2lstm.lm.model import RNNLanguageModel
from g2lstm.lm.results import TrainResult, finish_run
from g2lstm.lm.resume import RESUMABLE_KEYS, merge_resume_config
from g2lstm.train import (
    CheckpointManager,
    DistributedContext,
    GracefulInterrupt,
    MetricsLogger,
    NonFiniteGuard,
    NonFinitePolicy,
    RunLock,
    atomic_write_text,
    claim_run_dir,
    init_distributed,
)

# RESUMABLE_KEYS, merge_resume_config and TrainResult are re-exported (callers import them here)
__all__ = ["RESUMABLE_KEYS", "LMTrainer", "TrainResult", "merge_resume_config", "train"]


class LMTrainer(EpochLoop):
    """Train an :class:`~g2lstm.lm.model.RNNLanguageModel` into ``out_dir``.

    Args:
        config: the run configuration (``model.vocab_size`` 0 = from the data).
        out_dir: run directory (created; locked while training).
        resume: continue from the latest checkpoint in ``out_dir``. Without it, a directory
            that already has checkpoints is refused.
        corpus: an already loaded :class:`~g2lstm.lm.data.Corpus` (else loaded from
            ``config.data``).
    """

    def __init__(
        self,
        config: RunConfig,
        out_dir: str | os.PathLike[str],
        *,
        resume: bool = False,
        corpus: Any = None,
    ) -> None:
        self.config, self.out_dir, self.resume, self.corpus = config, Path(out_dir), resume, corpus

    # ------------------------------------------------------------------ setup
    def _load_data(self, ctx: DistributedContext) -> None:
        if self.corpus is None:
            for turn in (0, 1):  # rank 0 builds the token cache first
                if (turn == 0) == ctx.is_main:
                    folder = resolve_dataset(
                        self.config.data, self.config.data_dir, kind="lm", progress=ctx.is_main
                    )
                    self.corpus = Corpus.load(folder)
                ctx.barrier()
        self.corpus = self.corpus.head(self.config.train.limit_tokens)
        vocab_size = len(self.corpus.vocab)
        if self.config.model.vocab_size not in (0, vocab_size):
            raise ConfigError(
                f"vocabulary mismatch: model.vocab_size={self.config.model.vocab_size} but the "
                f"data {self.config.data} has {vocab_size} word types; pass the data the run was "
                "trained on (--data), or leave model.vocab_size at 0 in a new run to take it "
                "from the data"
            )
        self.config = self.config.replace({"model.vocab_size": vocab_size})

    def _build(self, ctx: DistributedContext) -> None:
        cfg = self.config
        t = cfg.train
        if t.batch_size % ctx.world_size:
            raise ConfigError(
                f"train.batch_size={t.batch_size} must be divisible by the number of processes "
                f"({ctx.world_size})"
            )
        torch.manual_seed(t.seed)  # initial weights depend on the seed only (same on all ranks)
        # an absurd size is refused before any allocation (a resumed run's sizes were checked
        # against its checkpoint by check_resumable)
        self.module = build_checked(
            lambda: RNNLanguageModel(cfg.model), None, "the run configuration"
        ).to(ctx.device)
        self.model = ctx.wrap_ddp(self.module)
        self.noise_gen = torch.Generator(device=ctx.device)
        self.module.set_generator(self.noise_gen)
        local = t.batch_size // ctx.world_size
        full = batchify(self.corpus.train, t.batch_size, name="train", device=ctx.device)
        self.train_data = full[:, ctx.rank * local : (ctx.rank + 1) * local].contiguous()
        self.valid_data = batchify(
            self.corpus.valid, t.eval_batch_size, name="valid", device=ctx.device
        )
        self.optimizer = self._make_optimizer(averaging=False)
        self.guard = NonFiniteGuard(NonFinitePolicy(t.on_nonfinite))
        self.state = {
            "stage": "main",
            "epoch": 1,
            "row": 0,
            "step": 0,
            "best_val": None,
            "trigger": NTASGDTrigger(cfg.optim.nonmono).state_dict(),
            "epoch_loss": 0.0,
            "epoch_tokens": 0,
            "train_time": 0.0,
            "train_tokens": 0,
            "wall_time": 0.0,
            "cpu_time": 0.0,
            "complete": False,
            **NEW_INTERVAL,
        }
        self.hidden = None

    def _make_optimizer(self, averaging: bool) -> torch.optim.Optimizer:
        o = self.config.optim
        if o.optimizer == "adam":
            return torch.optim.Adam(self.module.parameters(), lr=o.lr, weight_decay=o.wdecay)
        opt = AveragedSGD(self.module.parameters(), lr=o.lr, weight_decay=o.wdecay)
        if averaging:
            opt.start_averaging()
        return opt

    # ------------------------------------------------------------------ restore
    def _restore(self, manager: CheckpointManager, ctx: DistributedContext) -> bool:
        ckpt = load_lm_checkpoint(
            manager, self.module, vocab=self.corpus.vocab, data=self.config.data, device=ctx.device
        )
        if ckpt is None:
            return False
        # older checkpoints lack the interval sums, and their CPU time is unknown
        self.state = {**NEW_INTERVAL, "cpu_time": None, **ckpt.meta["state"]}
        if self.state["stage"] == "finetune":
            self.optimizer = self._make_optimizer(averaging=True)
        self.optimizer.load_state_dict(ckpt.trainer_state["optimizer"])
        self.guard.load_state_dict(ckpt.meta["guard"])
        hidden = ckpt.trainer_state.get("hidden") or []
        self.hidden = [(h, c) for h, c in hidden] if hidden else None
        return True

    # ------------------------------------------------------------------ run
    def run(self) -> TrainResult:
        """Train (or resume), evaluate the best weights on valid and test, write results."""
        ctx = init_distributed()
        try:
            return self._run(ctx)
        finally:
            ctx.cleanup()

    def _run(self, ctx: DistributedContext) -> TrainResult:
        t = self.config.train
        if t.threads:
            torch.set_num_threads(t.threads)
        out = claim_run_dir(self.out_dir, "lm") if ctx.is_main else self.out_dir
        ctx.barrier()
        lock = RunLock(out) if ctx.is_main else None
        if lock is not None:
            lock.acquire()
        try:
            self._t_wall, self._t_cpu = time.perf_counter(), time.process_time()
            manager = CheckpointManager(out, keep_last=t.keep_last)
            latest = manager.latest()
            has_ckpt = latest is not None
            if has_ckpt and not self.resume:
                raise TrainingError(
                    f"{out} already holds checkpoints of a run; pass --resume (resume=True) to "
                    "continue it, or choose a new --out"
                )
            self._load_data(ctx)
            if latest is not None:
                check_resumable(latest, self.config, self.corpus.vocab, self.config.data)
            self._build(ctx)
            if has_ckpt:
                self._restore(manager, ctx)
            if ctx.is_main:
                atomic_write_text(out / "config.yaml", self.config.to_yaml())
                self.corpus.vocab.save(out / "vocab.json")
            log = MetricsLogger(out, tensorboard=t.tensorboard) if ctx.is_main else None
            try:
                if log is not None and has_ckpt and _has_rows(out / "metrics.csv"):
                    log.drop_after(self.state["step"])
                stopped = self._loop(manager, ctx, log)
            finally:
                if log is not None:
                    log.close()
            return finish_run(
                out,
                self.state,
                self.config,
                num_parameters=self.module.num_parameters(),
                stopped=stopped,
                valid_data=self.valid_data,
                test_tokens=self.corpus.test,
                device=ctx.device,
                is_main=ctx.is_main,
            )
        finally:
            if lock is not None:
                lock.release()

    def _loop(
        self, manager: CheckpointManager, ctx: DistributedContext, log: MetricsLogger | None
    ) -> str | None:
        st, t = self.state, self.config.train
        with GracefulInterrupt() as stop:
            while not st["complete"]:
                limit = t.epochs if st["stage"] == "main" else t.finetune_epochs
                end_stage = st["epoch"] > limit
                if not end_stage:
                    why = self._train_epoch(ctx, stop, manager, log)
                    if why is not None:
                        return why
                    end_stage = self._end_epoch(manager, ctx, log)
                    if t.max_steps is not None and st["step"] >= t.max_steps:
                        return "max_steps"
                    if ctx.any_true(stop.requested):
                        return "interrupted"
                if end_stage or st["epoch"] > limit:
                    if st["stage"] == "main" and t.finetune_epochs > 0:
                        self._start_finetune(manager, ctx)
                    else:
                        st["complete"] = True
                        self._save(manager, ctx)
        return None

    def _start_finetune(self, manager: CheckpointManager, ctx: DistributedContext) -> None:
        """AWD ``finetune.py``: restart from the best weights with averaged SGD."""
        best = load_model(self.out_dir, map_location=str(ctx.device)).model
        self.module.load_state_dict(best.state_dict())
        self.optimizer = self._make_optimizer(averaging=True)
        st = self.state
        st.update(
            stage="finetune",
            epoch=1,
            row=0,
            trigger=NTASGDTrigger(self.config.optim.nonmono).state_dict(),
        )
        self.hidden = None
        self._save(manager, ctx)


def _has_rows(path: Path) -> bool:
    """Whether a metrics CSV has a header (``drop_after`` on an empty one writes a blank
    header line that breaks later reads: work-around for g2lstm.train.metrics)."""
    return path.is_file() and path.stat().st_size > 2


def train(
    config: RunConfig, out_dir: str | os.PathLike[str], *, resume: bool = False, corpus: Any = None
) -> TrainResult:
    """Train a language model; see :class:`LMTrainer`."""
    return LMTrainer(config, out_dir, resume=resume, corpus=corpus).run()
