"""Training loop of the MT model: token batches, label smoothing, clipping, exact resume.

:func:`train` writes into one run folder::

    run_dir/
      config.yaml           the full configuration of the run (:mod:`g2lstm.config`)
      metrics.jsonl / .csv  one row per ``log_every`` updates ("train") and per validation
      checkpoints/          safetensors checkpoints (g2lstm.train): last ``keep_last`` + best
                            by validation loss; each is self-contained (vocab, BPE, settings)
      results.json          final summary (:class:`~g2lstm.train.RunResult`: steps, time; details:
                            best validation loss, best checkpoint, valid BLEU)

Randomness (batch order, dropout, gate noise) is a function of ``(seed, step)``: the batch
order of epoch ``e`` comes from ``(seed, e)`` and each update re-seeds torch with
``derive_seed(seed, step)``. Together with the saved optimizer and sampler state, a run that
is stopped (time budget, Ctrl-C, crash after a checkpoint) and resumed computes exactly the
same weights as an uninterrupted run.

Loss: label-smoothed cross-entropy averaged over target tokens (``</s>`` included, padding
excluded); reported perplexity uses the plain NLL. The learning rate of each update follows
``optim.schedule`` (:mod:`g2lstm.mt.schedule`): by default it is multiplied by
``optim.lr_decay`` after an epoch whose validation loss did not improve (``plateau``).
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
import torch.nn.functional as F

from g2lstm.config import CONFIG_FILE, changed_keys
from g2lstm.errors import CheckpointError
from g2lstm.limits import build_checked
from g2lstm.mt.batching import TokenBatchSampler, collate
from g2lstm.mt.config import MTConfig
from g2lstm.mt.model import Seq2Seq
from g2lstm.mt.prepare import PreparedData, load_prepared
from g2lstm.mt.schedule import scheduled_lr
from g2lstm.mt.translate import META_KIND, Translator, data_meta, evaluate_split
from g2lstm.train import (
    CheckpointManager,
    GracefulInterrupt,
    MetricsLogger,
    NonFiniteGuard,
    NonFinitePolicy,
    RunLock,
    RunResult,
    atomic_write_text,
    check_state_dict_compat,
    claim_run_dir,
    derive_seed,
    load_checkpoint,
    progress,
    seed_everything,
)
from g2lstm.train.checkpoint import read_manifest, read_model_shapes

__all__ = ["TrainResult", "batch_loss", "build_optimizer", "label_smoothed_loss", "train"]

log = logging.getLogger(__name__)

#: Config fields that may change when a run is resumed (budgets and bookkeeping).
RESUMABLE_CHANGES = {
    "train": {
        "epochs",
        "max_updates",
        "max_minutes",
        "eval_every",
        "log_every",
        "threads",
        "keep_last",
        "valid_bleu",
        "on_nonfinite",
        "data",
    },
    "decode": {"beam", "alpha", "max_len_a", "max_len_b", "batch_size"},
}


def label_smoothed_loss(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed label-smoothed loss and summed NLL of ``(K, V)`` logits for ``(K,)`` targets.

    ``loss = (1 - eps) * nll + eps * mean_v(-log p_v)``, as ``F.cross_entropy(...,
    label_smoothing=eps)``, with the log-softmax computed once for both numbers.
    """
    lprobs = F.log_softmax(logits.float(), dim=-1)
    nll = -lprobs.gather(1, target.unsqueeze(1)).squeeze(1)
    loss = nll if smoothing == 0 else (1 - smoothing) * nll - smoothing * lprobs.mean(dim=-1)
    return loss.sum(), nll.detach().sum()


def batch_loss(
    model: torch.nn.Module, batch: tuple[torch.Tensor, ...], pad: int, smoothing: float
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Teacher-forced summed label-smoothed loss, summed NLL and target-token count of a
    :func:`~g2lstm.mt.batching.collate` batch ``(src, src_len, tgt_in, tgt_out)``, padding
    excluded."""
    src, src_len, tgt_in, tgt_out = batch
    feats = model.decode(tgt_in, model.encode(src, src_len))  # (T, B, H)
    keep = tgt_out != pad
    logits = model.logits(feats[keep])  # (K, V), K = target tokens
    loss, nll = label_smoothed_loss(logits, tgt_out[keep], smoothing)
    return loss, nll, int(keep.sum())


def build_optimizer(model: torch.nn.Module, config: MTConfig) -> torch.optim.Optimizer:
    """Adam (default) or AdaDelta (paper: rho 0.95, eps 1e-6), with ``optim.lr``."""
    o = config.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.effective_lr, weight_decay=o.weight_decay)
    return torch.optim.Adadelta(
        params, lr=o.effective_lr, rho=0.95, eps=1e-6, weight_decay=o.weight_decay
    )


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
    finished: bool = False
    # running sums of the current log window, so rows after a resume match an unbroken run
    window_loss: float = 0.0
    window_nll: float = 0.0
    window_tokens: int = 0


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

    @property
    def finished(self) -> bool:
        """Whether a budget ended the run (not an interruption)."""
        return self.stopped != "interrupted"

    def to_run_result(self) -> RunResult:
        """The task-neutral :class:`~g2lstm.train.RunResult` written to ``results.json``."""
        return RunResult.of("mt", {**asdict(self), "finished": self.finished})


def _check_resume(saved: dict[str, Any], current: MTConfig, path: Path) -> None:
    # a key the checkpoint lacks was added later: the run trained with its default
    old = MTConfig.from_dict(saved, source=f"{path}/meta.json")
    resumable = {f"{section}.{key}" for section, keys in RESUMABLE_CHANGES.items() for key in keys}
    diffs = changed_keys(old, current, resumable)
    if diffs:
        raise CheckpointError(
            f"cannot resume from {path}: the configuration changed ({'; '.join(diffs)}). "
            "Use the original settings, or another --out to start a new run."
        )


def _check_same_vocab(meta: dict[str, Any], prepared: PreparedData, path: Path) -> None:
    data = meta.get("data")
    if not isinstance(data, dict) or data.get("src_vocab") != list(prepared.src_vocab.tokens):
        raise CheckpointError(
            f"cannot resume from {path}: its vocabulary differs from {prepared.root}; resume "
            "with the data it was trained on"
        )


class _Trainer:
    """State and steps of one training run (used by :func:`train`)."""

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
        self.sampler = TokenBatchSampler(
            [len(s) + 1 for s, _ in self.train_pairs],
            [len(y) + 1 for _, y in self.train_pairs],
            t.max_tokens,
            shuffle=True,
            seed=t.seed,
            bucket_width=t.bucket_width,
        )
        seed_everything(t.seed)  # the initial weights depend on the seed only
        # sizes checked (against the checkpoint resumed from) before anything is allocated
        if resume_from is not None:
            _check_same_vocab(read_manifest(resume_from)["meta"], prepared, resume_from)
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
        sampler = TokenBatchSampler(
            [len(s) + 1 for s, _ in pairs],
            [len(y) + 1 for _, y in pairs],
            self.cfg.train.max_tokens,
            shuffle=False,
        )
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
        _check_resume(ckpt.meta["config"], self.cfg, ckpt.path)
        _check_same_vocab(ckpt.meta, self.prepared, ckpt.path)
        check_state_dict_compat(self.model, ckpt.model_state, str(ckpt.path))
        self.model.load_state_dict(ckpt.model_state)
        self.optimizer.load_state_dict(ckpt.trainer_state["optimizer"])
        guard.load_state_dict(ckpt.trainer_state["guard"])
        saved = {k: v for k, v in ckpt.meta["progress"].items() if k in _Progress.__annotations__}
        self.progress = _Progress(**saved)
        self.set_lr(self.progress.lr)
        self.sampler.load_state_dict(ckpt.meta["sampler"])


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
    trainer = _Trainer(config, prepared, device, latest)
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
        )
        result.to_run_result().write(out)
    return result


def _loop(trainer, manager, guard, metrics, stop, progress, show) -> str:  # type: ignore[no-untyped-def]
    """Epochs and updates until a budget is reached; returns the reason for stopping."""
    t, o, p = trainer.cfg.train, trainer.cfg.optim, trainer.progress
    sampler = trainer.sampler
    last = window_start = time.perf_counter()

    def clock() -> None:
        nonlocal last
        now = time.perf_counter()
        p.train_seconds += now - last
        last = now

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


def _valid_bleu(trainer: _Trainer, best: Path, metrics: Any) -> dict[str, Any]:
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
