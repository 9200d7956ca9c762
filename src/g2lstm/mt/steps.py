"""The state and steps of one MT training run: :class:`MTTrainer`.

It holds the model, the optimiser, the token-batch sampler and the loop position
(:class:`_Progress`, saved in every checkpoint), and does one update (:meth:`MTTrainer.train_step`:
re-seeded from ``(seed, step)``, scheduled lr, non-finite check, clipping), a validation pass,
and the checkpoint save and exact restore. The epochs around it, the budgets and the run folder
are :func:`g2lstm.mt.trainer.train`'s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from g2lstm.errors import CheckpointError
from g2lstm.limits import build_checked
from g2lstm.mt.batching import TokenBatchSampler, collate
from g2lstm.mt.config import MTConfig
from g2lstm.mt.model import Seq2Seq
from g2lstm.mt.objective import batch_loss, build_optimizer
from g2lstm.mt.prepare import PreparedData
from g2lstm.mt.resume import check_resume_config, check_same_vocab
from g2lstm.mt.schedule import scheduled_lr
from g2lstm.mt.translate import META_KIND, data_meta
from g2lstm.train import check_state_dict_compat, derive_seed, seed_everything
from g2lstm.train.checkpoint import read_model_shapes
from g2lstm.train.manifest import read_manifest


@dataclass
class _Progress:
    """Loop position and history, saved in every checkpoint's meta."""

    step: int = 0
    epoch: int = 0
    batches_done: int = 0
    lr: float = 0.0  # the lr reached by the plateau rule (the other schedules ignore it)
    best_valid_loss: float = math.inf
    best_epoch_loss: float = math.inf  # best end-of-epoch validation loss (drives lr decay)
    train_seconds: float = 0.0
    cpu_seconds: float | None = 0.0  # CPU time of the same spans (None: resumed from older)
    finished: bool = False
    # running sums of the current log window, so rows after a resume match an unbroken run
    window_loss: float = 0.0
    window_nll: float = 0.0
    window_tokens: int = 0


class MTTrainer:
    """State and steps of one training run (used by :func:`~g2lstm.mt.trainer.train`)."""

    def __init__(
        self,
        config: MTConfig,
        prepared: PreparedData,
        device: torch.device,
        resume_from: Path | None = None,
    ) -> None:
        self.cfg, self.prepared, self.device = config, prepared, device
        self.pad = prepared.tgt_vocab.pad_id
        t = config.train
        self.train_pairs = prepared.encoded("train", t.limit_sentences)
        self.valid_pairs = prepared.encoded("valid", t.limit_sentences)
        self.sampler = TokenBatchSampler.for_pairs(
            self.train_pairs, t.max_tokens, seed=t.seed, bucket_width=t.bucket_width
        )
        seed_everything(t.seed)  # the initial weights depend on the seed only
        # sizes checked (against the checkpoint resumed from) before anything is allocated
        if resume_from is not None:
            check_same_vocab(read_manifest(resume_from)["meta"], prepared, resume_from)
        self.model = build_checked(
            lambda: Seq2Seq(
                config.model, len(prepared.src_vocab), len(prepared.tgt_vocab), pad_id=self.pad
            ),
            None if resume_from is None else read_model_shapes(resume_from),
            str(resume_from or "the run configuration"),
        ).to(device)
        self.optimizer = build_optimizer(self.model, config)
        self.progress = _Progress(lr=config.optim.effective_lr)

    def batch(self, pairs: list, idx: list[int]) -> tuple[torch.Tensor, ...]:
        v = self.prepared.tgt_vocab
        src, src_len, tgt_in, tgt_out = collate(
            [pairs[i] for i in idx], v.pad_id, v.bos_id, v.eos_id
        )
        return src.to(self.device), src_len, tgt_in.to(self.device), tgt_out.to(self.device)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor, int]:
        return batch_loss(self.model, batch, self.pad, self.cfg.optim.label_smoothing)

    def train_step(self, idx: list[int], guard: Any) -> dict[str, float]:
        p, o = self.progress, self.cfg.optim
        torch.manual_seed(derive_seed(self.cfg.train.seed, p.step))  # dropout + gate noise
        for group in self.optimizer.param_groups:
            group["lr"] = scheduled_lr(o, p.step + 1, p.epoch, p.lr)
        self.model.train()
        loss, nll, ntok = self.loss(self.batch(self.train_pairs, idx))
        (loss / ntok).backward()
        params = [q for q in self.model.parameters() if q.grad is not None]
        # the norm first and clipping after the check: clipping by a NaN norm would spread NaN
        # to every gradient and hide which parameter went non-finite (same numbers as
        # clip_grad_norm_, which is exactly these two calls)
        norm = torch.nn.utils.get_total_norm([q.grad for q in params])
        if guard.check(loss / ntok, self.model, p.step, grad_norm=norm):
            if o.clip > 0:
                torch.nn.utils.clip_grads_with_norm_(params, o.clip, norm)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        p.step += 1
        p.batches_done += 1
        return {
            "loss": float(loss.detach()) / ntok,
            "nll": float(nll) / ntok,
            "tokens": ntok,
            "grad_norm": float(norm),
            "lr": self.current_lr,
        }

    @property
    def current_lr(self) -> float:
        """The lr of the optimiser's last (or, before the first update, next) update."""
        return float(self.optimizer.param_groups[0]["lr"])

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.model.eval()
        pairs = self.valid_pairs
        sampler = TokenBatchSampler.for_pairs(pairs, self.cfg.train.max_tokens, shuffle=False)
        total_nll, total_tok = 0.0, 0
        for idx in sampler:
            _, nll, ntok = self.loss(self.batch(pairs, idx))
            total_nll += float(nll)
            total_tok += ntok
        loss = total_nll / max(total_tok, 1)
        return {"valid_loss": loss, "valid_ppl": math.exp(min(loss, 50.0))}

    def set_lr(self, lr: float) -> None:
        """Set the plateau rule's lr (and the optimiser's, until the next update sets it)."""
        self.progress.lr = lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def save(self, manager: Any, guard: Any, metric: float | None) -> Path:
        p = self.progress
        meta = {
            "kind": META_KIND,
            "config": self.cfg.to_dict(),
            "data": data_meta(self.prepared),
            "progress": asdict(p),
            "sampler": self.sampler.state_dict(batches_done=p.batches_done),
        }
        trainer_state = {"optimizer": self.optimizer.state_dict(), "guard": guard.state_dict()}
        return manager.save(
            p.step,
            model_state=self.model.state_dict(),
            trainer_state=trainer_state,
            meta=meta,
            metric=metric,
        )

    def restore(self, ckpt: Any, guard: Any) -> None:
        if ckpt.meta.get("kind") != META_KIND:
            raise CheckpointError(f"{ckpt.path} is not an MT checkpoint")
        check_resume_config(ckpt.meta["config"], self.cfg, ckpt.path)
        check_same_vocab(ckpt.meta, self.prepared, ckpt.path)
        check_state_dict_compat(self.model, ckpt.model_state, str(ckpt.path))
        self.model.load_state_dict(ckpt.model_state)
        self.optimizer.load_state_dict(ckpt.trainer_state["optimizer"])
        guard.load_state_dict(ckpt.trainer_state["guard"])
        saved = {k: v for k, v in ckpt.meta["progress"].items() if k in _Progress.__annotations__}
        saved.setdefault("cpu_seconds", None)  # a checkpoint from before CPU time was kept
        self.progress = _Progress(**saved)
        self.set_lr(self.progress.lr)
        self.sampler.load_state_dict(ckpt.meta["sampler"])
