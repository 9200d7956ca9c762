"""The AWD-LSTM training loop: NT-ASGD, finetune stage, exact resume, DDP.

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
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from g2lstm.datasets import resolve_dataset
from g2lstm.errors import ConfigError, TrainingError
from g2lstm.limits import build_checked
from g2lstm.lm.asgd import AveragedSGD, NTASGDTrigger
from g2lstm.lm.checkpointing import check_resumable, load_lm_checkpoint, save_lm_checkpoint
from g2lstm.lm.config import RunConfig
from g2lstm.lm.data import BPTTIterator, Corpus, batchify
from g2lstm.lm.evaluate import evaluate, load_model, perplexity
from g2lstm.lm.model import Hidden, RNNLanguageModel, detach_hidden
from g2lstm.lm.results import TrainResult, finish_run
from g2lstm.lm.resume import RESUMABLE_KEYS, merge_resume_config
from g2lstm.nn.regularizers import activation_regularization, temporal_activation_regularization
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
    derive_seed,
    init_distributed,
    progress,
)

__all__ = ["RESUMABLE_KEYS", "LMTrainer", "TrainResult", "merge_resume_config", "train"]

#: The running sums of the current log interval (part of the checkpointed state).
_NEW_INTERVAL = {
    "interval_loss": 0.0,
    "interval_n": 0,
    "interval_tokens": 0,
    "interval_seconds": 0.0,
}


class LMTrainer:
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
        self.state: dict[str, Any] = {
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
            "complete": False,
            **_NEW_INTERVAL,
        }
        self.hidden: Hidden | None = None

    def _make_optimizer(self, averaging: bool) -> torch.optim.Optimizer:
        o = self.config.optim
        if o.optimizer == "adam":
            return torch.optim.Adam(self.module.parameters(), lr=o.lr, weight_decay=o.wdecay)
        opt = AveragedSGD(self.module.parameters(), lr=o.lr, weight_decay=o.wdecay)
        if averaging:
            opt.start_averaging()
        return opt

    # ------------------------------------------------------------------ checkpoints
    def _averaging(self) -> bool:
        return isinstance(self.optimizer, AveragedSGD) and self.optimizer.averaging

    def _save(
        self, manager: CheckpointManager, ctx: DistributedContext, metric: float | None = None
    ) -> None:
        self.state["wall_time"] += time.perf_counter() - self._t_wall
        self._t_wall = time.perf_counter()
        if ctx.is_main:
            save_lm_checkpoint(
                manager,
                self.module,
                self.optimizer,
                self.hidden,
                config=self.config,
                vocab=self.corpus.vocab,
                state=self.state,
                guard=self.guard,
                metric=metric,
            )
        ctx.barrier()

    def _restore(self, manager: CheckpointManager, ctx: DistributedContext) -> bool:
        ckpt = load_lm_checkpoint(
            manager, self.module, vocab=self.corpus.vocab, data=self.config.data, device=ctx.device
        )
        if ckpt is None:
            return False
        self.state = {**_NEW_INTERVAL, **ckpt.meta["state"]}  # older checkpoints lack it
        if self.state["stage"] == "finetune":
            self.optimizer = self._make_optimizer(averaging=True)
        self.optimizer.load_state_dict(ckpt.trainer_state["optimizer"])
        self.guard.load_state_dict(ckpt.meta["guard"])
        hidden = ckpt.trainer_state.get("hidden") or []
        self.hidden = [(h, c) for h, c in hidden] if hidden else None
        return True

    # ------------------------------------------------------------------ one step
    def _step(
        self, inp: torch.Tensor, target: torch.Tensor, lr: float, ctx: DistributedContext
    ) -> tuple[float, float, bool]:
        t, step = self.config.train, self.state["step"]
        torch.manual_seed(derive_seed(t.seed, step, 1, ctx.rank))
        self.noise_gen.manual_seed(derive_seed(t.seed, step, 2, ctx.rank))
        if self.hidden is None:
            self.hidden = self.module.init_hidden(inp.size(1))
        out = self.model(inp, self.hidden)
        self.hidden = detach_hidden(out.hidden)
        raw_loss = F.cross_entropy(out.logits.view(-1, out.logits.size(-1)), target.reshape(-1))
        loss = raw_loss
        if t.alpha:
            loss = loss + activation_regularization(out.dropped_outputs[-1], t.alpha)
        if t.beta:
            loss = loss + temporal_activation_regularization(out.raw_outputs[-1], t.beta)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.config.optim.clip
        params = [p for p in self.module.parameters() if p.grad is not None]
        # the norm first, clipping after the check: clipping by a NaN norm would spread NaN to
        # every gradient and hide which parameter was non-finite (same result as
        # clip_grad_norm_, which is exactly these two calls)
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        value = float(ctx.all_reduce_mean(raw_loss.detach().clone()))
        ok = self.guard.check(value, self.module, step, grad_norm=norm)
        if ok:
            if clip:
                torch.nn.utils.clip_grads_with_norm_(params, clip, norm)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
        self.state["step"] = step + 1
        return value, float(norm), ok

    # ------------------------------------------------------------------ epochs
    def _train_epoch(
        self,
        ctx: DistributedContext,
        stop: GracefulInterrupt,
        manager: CheckpointManager,
        log: MetricsLogger | None,
    ) -> str | None:
        """Train from ``state["row"]`` to the end of the epoch; return why it stopped early."""
        cfg, st = self.config, self.state
        t = cfg.train
        epoch_lr = cfg.optim.epoch_lr(st["epoch"]) if st["stage"] == "main" else cfg.optim.lr
        rng = np.random.default_rng(
            derive_seed(t.seed, st["epoch"], 0 if st["stage"] == "main" else 1)
        )
        n_rows = self.train_data.size(0)
        segments = BPTTIterator(
            n_rows,
            t.bptt,
            rng=rng,
            variable=t.bptt_random,
            max_extra=t.bptt_max_extra,
            start=st["row"],
        )
        bar = progress(
            total=math.ceil((n_rows - 1) / t.bptt),
            initial=st["row"] // t.bptt,
            desc=f"{st['stage']} epoch {st['epoch']}",
            unit="batch",
            disable=True if not (t.progress and ctx.is_main) else None,
            log=ctx.is_main,
        )
        # the log interval's running sums live in the checkpointed state, so the first row
        # after a resume is the one an uninterrupted run logs
        t0 = time.perf_counter() - st["interval_seconds"]
        try:
            for seg in segments:
                i, seq_len = seg.start, seg.seq_len
                inp, target = (
                    self.train_data[i : i + seq_len],
                    self.train_data[i + 1 : i + 1 + seq_len],
                )
                lr = epoch_lr * (seg.lr_scale if t.bptt_random else 1.0)
                t_step = time.perf_counter()
                loss, norm, _ = self._step(inp, target, lr, ctx)
                tokens = seq_len * t.batch_size
                st["train_time"] += time.perf_counter() - t_step
                st["train_tokens"] += tokens
                st["row"] = i + seq_len
                if math.isfinite(loss):
                    st["epoch_loss"] += loss * tokens
                    st["epoch_tokens"] += tokens
                    st["interval_loss"] += loss
                    st["interval_n"] += 1
                st["interval_tokens"] += tokens
                st["interval_seconds"] = time.perf_counter() - t0
                bar.update(1)
                if st["step"] % t.log_interval == 0 and st["interval_n"]:
                    elapsed, n = time.perf_counter() - t0, st["interval_n"]
                    mean = st["interval_loss"] / n
                    row = {
                        "stage": st["stage"],
                        "epoch": st["epoch"],
                        "lr": lr,
                        "loss": mean,
                        "ppl": perplexity(mean),
                        "grad_norm": norm,
                        "tokens_per_s": st["interval_tokens"] / elapsed,
                        "ms_per_batch": 1000 * elapsed / n,
                    }
                    bar.set_postfix(
                        step=st["step"],
                        loss=f"{row['loss']:.3f}",
                        ppl=f"{row['ppl']:.1f}",
                        tok_s=f"{row['tokens_per_s']:.0f}",
                    )
                    if log is not None:
                        log.log(row, step=st["step"])
                    st.update(_NEW_INTERVAL)
                    t0 = time.perf_counter()
                why = None
                if t.max_steps is not None and st["step"] >= t.max_steps:
                    why = "max_steps"
                elif ctx.any_true(stop.requested):
                    why = "interrupted"
                periodic = t.checkpoint_every and st["step"] % t.checkpoint_every == 0
                if (why is not None or periodic) and st["row"] < n_rows - 1:
                    self._save(manager, ctx)  # mid-epoch; the epoch end saves anyway
                if why is not None and st["row"] < n_rows - 1:
                    return why
        finally:
            bar.close()
        return None

    def _end_epoch(
        self, manager: CheckpointManager, ctx: DistributedContext, log: MetricsLogger | None
    ) -> bool:
        """Validate, apply NT-ASGD / finetune stop, save. Returns True to end the stage."""
        cfg, st = self.config, self.state
        with (
            self.optimizer.averaged_parameters()
            if isinstance(self.optimizer, AveragedSGD)
            else contextlib.nullcontext()
        ):
            val = evaluate(
                self.module,
                self.valid_data,
                cfg.train.bptt,
                desc=f"valid after epoch {st['epoch']}" if ctx.is_main else None,
            )
        trigger = NTASGDTrigger(cfg.optim.nonmono)
        trigger.load_state_dict(st["trigger"])
        end_stage, switched = False, False
        if st["stage"] == "finetune":
            end_stage = trigger.stalled(val)
        elif cfg.optim.asgd and not self._averaging():
            switched = trigger.should_switch(val)
            if switched:
                self.optimizer.start_averaging()  # type: ignore[union-attr]
        st["trigger"] = trigger.state_dict()
        train_loss = st["epoch_loss"] / max(st["epoch_tokens"], 1)
        row = {
            "stage": st["stage"],
            "epoch": st["epoch"],
            "train_loss": train_loss,
            "train_ppl": perplexity(train_loss),
            "valid_loss": val,
            "valid_ppl": perplexity(val),
            "asgd": self._averaging(),
            "train_time_s": st["train_time"],
        }
        if log is not None:
            log.log(row, step=st["step"])
        if ctx.is_main:
            note = " (switching to ASGD)" if switched else ""
            print(
                f"| {st['stage']} epoch {st['epoch']:3d} | train ppl {row['train_ppl']:8.2f} | "
                f"valid ppl {row['valid_ppl']:8.2f}{note}",
                flush=True,
            )
        if st["best_val"] is None or val < st["best_val"]:
            st["best_val"] = val
        st["epoch"] += 1
        st["row"], st["epoch_loss"], st["epoch_tokens"] = 0, 0.0, 0
        st.update(_NEW_INTERVAL)  # each epoch starts a new log interval
        self.hidden = None
        self._save(manager, ctx, metric=val)
        return end_stage

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
            self._t_wall = time.perf_counter()
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
