"""The step and epoch half of the AWD-LSTM trainer: :class:`EpochLoop`, the base class of
:class:`~g2lstm.lm.trainer.LMTrainer`.

- :meth:`EpochLoop._step`: one update on a BPTT segment. The global torch generator (dropout,
  weight drop, embedding dropout) and the gate-noise generator are reseeded from
  ``(seed, step, rank)``; the loss is cross-entropy plus AR/TAR (AWD-LSTM), the gradient is
  checked for non-finite values before clipping.
- :meth:`EpochLoop._train_epoch`: the random BPTT segments of one epoch (numpy generator seeded
  by ``(seed, epoch)``, replayed from the saved row on resume), logging and mid-epoch
  checkpoints, budgets and interruption.
- :meth:`EpochLoop._end_epoch`: validation (with the ASGD averages), the NT-ASGD switch or the
  finetune stop, the epoch's metrics row and checkpoint.

Set-up, restore, the stage loop and the finetune stage are :class:`~g2lstm.lm.trainer.LMTrainer`'s.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from g2lstm.lm.asgd import AveragedSGD, NTASGDTrigger
from g2lstm.lm.checkpointing import save_lm_checkpoint
from g2lstm.lm.config import RunConfig
from g2lstm.lm.data import BPTTIterator
from g2lstm.lm.evaluate import evaluate, perplexity
from g2lstm.lm.model import Hidden, RNNLanguageModel, detach_hidden
from g2lstm.nn.regularizers import activation_regularization, temporal_activation_regularization
from g2lstm.train import (
    CheckpointManager,
    DistributedContext,
    GracefulInterrupt,
    MetricsLogger,
    NonFiniteGuard,
    derive_seed,
    progress,
)

__all__ = ["NEW_INTERVAL", "EpochLoop"]

#: The running sums of the current log interval (part of the checkpointed state).
NEW_INTERVAL = {
    "interval_loss": 0.0,
    "interval_n": 0,
    "interval_tokens": 0,
    "interval_seconds": 0.0,
}


class EpochLoop:
    """Training steps and epochs over the state a subclass builds (see
    :class:`~g2lstm.lm.trainer.LMTrainer`, the only one); not used on its own.

    ``state`` is the checkpointed loop state (stage, epoch, row, step, NT-ASGD bookkeeping,
    running sums); ``train_data`` is this rank's ``(rows, batch_size / world_size)`` slice of the
    batchified training tokens, ``valid_data`` the ``(rows, eval_batch_size)`` validation tokens;
    ``hidden`` the carried (detached) hidden state, ``None`` at the start of an epoch.
    """

    config: RunConfig
    corpus: Any
    module: RNNLanguageModel
    model: torch.nn.Module  # ``module``, wrapped for DDP when distributed
    noise_gen: torch.Generator
    optimizer: torch.optim.Optimizer
    guard: NonFiniteGuard
    train_data: torch.Tensor
    valid_data: torch.Tensor
    state: dict[str, Any]
    hidden: Hidden | None
    _t_wall: float  # perf_counter() since which wall time is not yet added to ``state``
    _t_cpu: float  # process_time() since which CPU time is not yet added to ``state``

    # ------------------------------------------------------------------ checkpoints
    def _averaging(self) -> bool:
        return isinstance(self.optimizer, AveragedSGD) and self.optimizer.averaging

    def _save(
        self, manager: CheckpointManager, ctx: DistributedContext, metric: float | None = None
    ) -> None:
        self.state["wall_time"] += time.perf_counter() - self._t_wall
        self._t_wall = time.perf_counter()
        if self.state.get("cpu_time") is not None:  # None: resumed from an older checkpoint
            self.state["cpu_time"] += time.process_time() - self._t_cpu
        self._t_cpu = time.process_time()
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
                    st.update(NEW_INTERVAL)
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
                self.optimizer.start_averaging()  # type: ignore[attr-defined]
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
        st.update(NEW_INTERVAL)  # each epoch starts a new log interval
        self.hidden = None
        self._save(manager, ctx, metric=val)
        return end_stage
