"""A language-model run as if it had been trained for fewer epochs (``g2lstm lm truncate``).

Nothing in an epoch of the main stage depends on how many epochs follow it (the learning-rate
decay counts epochs from the start, NT-ASGD looks back, and every random stream is saved in
the checkpoints), so the first ``E`` epochs of a run of ``N > E`` epochs are a run of ``E``
epochs. :func:`truncate_run` builds that shorter run from the longer run's checkpoint at the
end of epoch ``E``, without training:

- ``OUT/config.yaml``: the run's configuration with ``train.epochs = E``;
- ``OUT/checkpoints/``: copies of the checkpoint at the end of epoch ``E`` (``last``) and of
  the one with the best validation loss of epochs ``1..E`` (``best``, what the shorter run
  would have kept);
- ``OUT/metrics.*``: the rows up to the end of epoch ``E``;
- ``OUT/results.json``: the best checkpoint evaluated on the validation and test splits, as at
  the end of any run (:func:`g2lstm.lm.results.finish_run`, through the trainer's resume).

A run keeps only ``train.keep_last`` checkpoints (plus the best), so truncating to ``E``
needs the epoch-``E`` checkpoint to have been kept: train with ``--set train.keep_last=N``
(every epoch), or pass folders holding copies of the run's ``step-*`` checkpoints
(``checkpoint_dirs``). A copy is only used when its saved configuration is the run's (up to
the keys a resume may change). The source run is only read.

The use: a reduced-budget study (``g2lstm reproduce --ablation-epochs E``) takes its
baselines from the full-budget runs instead of training them again.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from g2lstm.config import changed_keys, load_yaml
from g2lstm.errors import CheckpointError, ConfigError, DataError, TrainingError
from g2lstm.lm.config import RunConfig
from g2lstm.lm.results import TrainResult
from g2lstm.lm.resume import RESUMABLE_KEYS
from g2lstm.lm.trainer import train
from g2lstm.train import CheckpointManager, atomic_write_text, claim_run_dir, read_metrics
from g2lstm.train.atomic import atomic_directory
from g2lstm.train.manager import checkpoint_dirs as step_checkpoints
from g2lstm.train.manifest import META_FILE, read_manifest
from g2lstm.train.rundir import RUN_MARKER

__all__ = ["EpochCheckpoint", "find_epoch_checkpoints", "truncate_run"]

#: Files of the source run copied as they are (metrics are cut to the epoch by the trainer).
_COPIED = ("vocab.json", "metrics.jsonl", "metrics.csv")


@dataclass(frozen=True)
class EpochCheckpoint:
    """A checkpoint saved at the end of a main-stage epoch.

    Attributes:
        path: the ``step-N`` folder.
        epoch: the epoch it ends (its trainer state is at the start of ``epoch + 1``).
        step: optimizer updates so far.
        metric: the validation loss stored with it (None if it has none).
    """

    path: Path
    epoch: int
    step: int
    metric: float | None


def _epoch_checkpoint(path: Path, config: RunConfig) -> EpochCheckpoint | None:
    """The complete checkpoint ``path`` as an :class:`EpochCheckpoint` of the run configured
    by ``config``, or None (unreadable, mid-epoch, in the fine-tune stage, or another run's)."""
    try:
        meta = read_manifest(path)["meta"]
        saved = RunConfig.from_dict(meta.get("config"), source=f"{path}/{META_FILE}")
    except (CheckpointError, ConfigError, DataError, OSError, ValueError):
        return None
    if changed_keys(saved, config, RESUMABLE_KEYS):
        return None
    state = meta.get("state") or {}
    if state.get("stage") != "main" or state.get("row") != 0 or state.get("complete"):
        return None
    metric = meta.get("metric")
    return EpochCheckpoint(
        path,
        int(state["epoch"]) - 1,
        int(meta["step"]),
        float(metric) if isinstance(metric, (int, float)) else None,
    )


def find_epoch_checkpoints(
    run: Path, config: RunConfig, checkpoint_dirs: Iterable[str | os.PathLike[str]] = ()
) -> dict[int, EpochCheckpoint]:
    """``epoch -> checkpoint`` of the end-of-epoch checkpoints of the run in ``run`` (its
    ``checkpoints/`` folder first, then each of ``checkpoint_dirs``)."""
    found: dict[int, EpochCheckpoint] = {}
    for folder in (run / "checkpoints", *map(Path, checkpoint_dirs)):
        if not folder.is_dir():
            raise DataError(f"{folder}: no such checkpoint folder; give a folder of step-N copies")
        for path in step_checkpoints(folder):
            ckpt = _epoch_checkpoint(path, config)
            if ckpt is not None and ckpt.epoch >= 1:
                found.setdefault(ckpt.epoch, ckpt)
    return found


def _valid_losses(run: Path, epochs: int) -> dict[int, float]:
    """``epoch -> validation loss`` of the main stage's first ``epochs`` epochs (metrics)."""
    rows = read_metrics(run / "metrics.jsonl")
    out: dict[int, float] = {}
    for row in rows:
        loss, epoch = row.get("valid_loss"), row.get("epoch")
        if row.get("stage", "main") != "main" or not isinstance(loss, (int, float)):
            continue
        if isinstance(epoch, int) and 1 <= epoch <= epochs:
            out[epoch] = float(loss)
    missing = sorted(set(range(1, epochs + 1)) - set(out))
    if missing:
        raise DataError(
            f"{run}/metrics.jsonl has no validation loss for epoch(s) "
            f"{', '.join(map(str, missing))}; the run has not trained {epochs} epochs"
        )
    return out


def _best_epoch(losses: dict[int, float]) -> int:
    """The epoch whose checkpoint the shorter run keeps as best: the first with the lowest
    validation loss (a later equal loss does not replace it; NaN never is best)."""
    finite = {e: v for e, v in losses.items() if not math.isnan(v)}
    if not finite:
        raise DataError("every validation loss of the first epochs is NaN: no best checkpoint")
    return min(finite, key=lambda e: (finite[e], e))


def _copy_checkpoint(src: Path, dst: Path, config: RunConfig) -> None:
    """Copy checkpoint ``src`` into a new ``dst`` (written atomically), its manifest's saved
    configuration replaced by ``config`` (the tensor files, which the manifest hashes, are
    copied byte for byte)."""
    with atomic_directory(dst) as tmp:
        for entry in sorted(src.iterdir()):
            if entry.is_symlink() or not entry.is_file():
                raise CheckpointError(
                    f"{entry}: a checkpoint may only hold regular files; refusing to copy it"
                )
            if entry.name != META_FILE:
                shutil.copyfile(entry, tmp / entry.name)
        record = read_manifest(src)
        record["meta"]["config"] = config.to_dict()
        (tmp / META_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def truncate_run(
    run: str | os.PathLike[str],
    epochs: int,
    out: str | os.PathLike[str],
    *,
    checkpoint_dirs: Iterable[str | os.PathLike[str]] = (),
    threads: int | None = None,
) -> TrainResult:
    """Write the run in ``run`` cut to its first ``epochs`` epochs into ``out`` (module doc)
    and evaluate it.

    Args:
        run: a language-model run folder (``g2lstm lm train --out``), finished or not, that
            has trained at least ``epochs`` epochs of its main stage.
        epochs: the budget, ``1 <= epochs < train.epochs``.
        out: a new or empty folder.
        checkpoint_dirs: more folders holding copies of the run's ``step-N`` checkpoints.
        threads: CPU threads of the evaluation (default: the run's ``train.threads``).

    Returns:
        The shorter run's result (valid/test perplexity of its best checkpoint).

    Raises:
        ConfigError: ``epochs`` out of range, or a run with a fine-tune stage.
        DataError: ``run`` is not a language-model run, has not trained ``epochs`` epochs, or
            the checkpoints of epoch ``epochs`` and of the best epoch before it are not kept.
        TrainingError: ``out`` is not new or empty.
    """
    src = Path(run)
    config_file = src / "config.yaml"
    if not config_file.is_file() or config_file.is_symlink():
        raise DataError(f"{src}: no config.yaml; give the folder of a `g2lstm lm train` run")
    config = RunConfig.from_dict(load_yaml(config_file), source=str(config_file))
    t = config.train
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs < t.epochs:
        raise ConfigError(
            f"--epochs {epochs!r}: give a whole number from 1 to {t.epochs - 1} (the run "
            f"{src} trains {t.epochs} epochs)"
        )
    if t.finetune_epochs:
        raise ConfigError(
            f"{src} has a fine-tune stage ({t.finetune_epochs} epochs) after its main stage; "
            "a shorter main stage would change where the fine-tuning starts, so only runs "
            "without one can be truncated"
        )
    losses = _valid_losses(src, epochs)
    best_epoch = _best_epoch(losses)
    kept = find_epoch_checkpoints(src, config, checkpoint_dirs)
    missing = sorted({epochs, best_epoch} - set(kept))
    if missing:
        raise DataError(
            f"{src}: the checkpoint at the end of epoch(s) {', '.join(map(str, missing))} is "
            f"not kept (kept: epochs {', '.join(map(str, sorted(kept))) or 'none'}); train with "
            "--set train.keep_last=<epochs> to keep every epoch, or pass --checkpoints with "
            "a folder of copies"
        )
    target = claim_run_dir(out, "lm")
    if any(p.name != RUN_MARKER for p in target.iterdir()):
        raise TrainingError(f"--out {target} already holds a run; give a new or empty folder")
    overrides: dict[str, Any] = {"train.epochs": epochs}
    if threads is not None:
        overrides["train.threads"] = threads
    short = config.replace(overrides)
    for name in _COPIED:
        if (src / name).is_file() and not (src / name).is_symlink():
            shutil.copyfile(src / name, target / name)
    atomic_write_text(target / "config.yaml", short.to_yaml())
    manager = CheckpointManager(target, keep_last=None)
    last, best = kept[epochs], kept[best_epoch]
    for ckpt in {last.path: last, best.path: best}.values():
        _copy_checkpoint(ckpt.path, manager.directory / ckpt.path.name, short)
    manager.point("last", last.path, last.step)
    manager.point("best", best.path, best.step, losses[best_epoch])
    return train(short, target, resume=True)
