"""Keep the last N checkpoints of a run plus the best one, with crash-safe pointers.

Layout under ``run_dir``::

    checkpoints/
      step-000000100/      # complete checkpoint directories (see g2lstm.train.checkpoint)
      step-000000200/
      last.json            # {"path": "step-000000200", "step": 200}
      best.json            # {"path": "step-000000100", "step": 100, "metric": 4.61, ...}

Pointers are small JSON files written atomically (never symlinks, which can dangle). Order of a
save: write the new checkpoint, update ``last.json``, update ``best.json``, and only then prune
old checkpoints, never the best one. Only one process may write a run directory (use
:class:`~g2lstm.train.lock.RunLock`; under DDP only rank 0 saves).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from g2lstm.errors import CheckpointError, ConfigError
from g2lstm.safe_files import refuse_symlink
from g2lstm.train.atomic import atomic_write_json
from g2lstm.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from g2lstm.train.manifest import META_FILE

__all__ = ["CheckpointManager", "checkpoint_dirs", "resolve_checkpoint"]

_STEP_DIR = re.compile(r"^step-(\d+)$")
_TMP_DIR = re.compile(r"^step-\d+\.(tmp|old)-")


class CheckpointManager:
    """Save checkpoints as ``run_dir/checkpoints/step-XXXXXXXXX/`` and keep last N + best.

    Args:
        run_dir: the run's output directory (created if missing).
        keep_last: how many most recent checkpoints to keep (>= 1), or ``None`` for all.
            The best checkpoint is kept in addition.
    """

    def __init__(self, run_dir: str | os.PathLike[str], keep_last: int | None = 3) -> None:
        if keep_last is not None and (not isinstance(keep_last, int) or keep_last < 1):
            raise ConfigError(f"keep_last={keep_last!r} must be an integer >= 1 or None")
        self.run_dir = Path(run_dir)
        self.keep_last = keep_last
        self.directory = self.run_dir / "checkpoints"
        self.directory.mkdir(parents=True, exist_ok=True)

    # ----------------------------------------------------------------- queries
    def checkpoints(self) -> list[Path]:
        """Complete checkpoint directories (with ``meta.json``), oldest step first."""
        return checkpoint_dirs(self.directory)

    def _pointer(self, name: str) -> dict[str, Any] | None:
        """The record of ``NAME.json`` if it names a complete checkpoint of this run.

        A pointer may only name a ``step-N`` directory inside ``checkpoints/`` that is not a
        symlink: one from a tampered or copied run that points elsewhere is ignored.
        """
        pointer = self.directory / f"{name}.json"
        try:
            if pointer.is_symlink() or pointer.stat().st_size > 65536:
                return None
            record = json.loads(pointer.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return None
        if not isinstance(record, dict) or not isinstance(record.get("path"), str):
            return None
        if not _STEP_DIR.match(record["path"]):
            return None
        target = self.directory / record["path"]
        if target.is_symlink() or not (target / META_FILE).is_file():
            return None
        metric = record.get("metric")
        if isinstance(metric, bool) or not isinstance(metric, (int, float, type(None))):
            record["metric"] = None
        return record

    def latest(self) -> Path | None:
        """The newest complete checkpoint (``last.json``, else the highest step), or None."""
        record = self._pointer("last")
        if record is not None:
            return self.directory / record["path"]
        found = self.checkpoints()
        return found[-1] if found else None

    def best(self) -> Path | None:
        """The checkpoint with the best metric so far, or None."""
        record = self._pointer("best")
        return self.directory / record["path"] if record else None

    def best_metric(self) -> float | None:
        """The metric of :meth:`best`, or None."""
        record = self._pointer("best")
        return record.get("metric") if record else None

    def load_latest(self, map_location: str | torch.device = "cpu") -> Checkpoint | None:
        """Load :meth:`latest`, or return None when the run has no checkpoint yet.

        Raises:
            CheckpointError: the latest checkpoint is corrupt; the message names the file and
                the previous checkpoint, which can be passed to ``load_checkpoint``.
        """
        path = self.latest()
        return None if path is None else load_checkpoint(path, map_location=map_location)

    # ------------------------------------------------------------------ saving
    def path_for(self, step: int) -> Path:
        """The directory a checkpoint of ``step`` is written to."""
        return self.directory / f"step-{step:09d}"

    def save(
        self,
        step: int,
        *,
        model_state: dict[str, torch.Tensor],
        trainer_state: Any = None,
        meta: dict[str, Any] | None = None,
        metric: float | None = None,
        higher_is_better: bool = False,
    ) -> Path:
        """Save a checkpoint for ``step``, update ``last``/``best`` and prune old ones.

        Args:
            step: the global step (optimizer updates so far); it names the directory and is
                stored as ``meta["step"]``.
            model_state, trainer_state, meta: as for
                :func:`~g2lstm.train.checkpoint.save_checkpoint`.
            metric: validation metric of this checkpoint (e.g. loss or BLEU); stored as
                ``meta["metric"]``. A NaN metric never becomes the best.
            higher_is_better: ``True`` for BLEU/accuracy, ``False`` for loss/perplexity.

        Returns:
            The checkpoint directory.
        """
        if not isinstance(step, int) or step < 0:
            raise ConfigError(f"step={step!r} must be a non-negative integer")
        meta = dict(meta or {})
        meta["step"] = step
        if metric is not None:
            metric = float(metric)
            meta["metric"] = metric
        refuse_symlink(self.directory)  # reading a linked run is fine, writing through it is not
        self._remove_stale_temporaries()
        path = save_checkpoint(
            self.path_for(step), model_state=model_state, trainer_state=trainer_state, meta=meta
        )
        self.point("last", path, step)
        best = self._pointer("best")
        replaced_best = best is not None and best["path"] == path.name
        if metric is not None and (replaced_best or self._is_better(metric, higher_is_better)):
            self.point("best", path, step, metric, higher_is_better)
        elif replaced_best:  # the best directory was overwritten without a metric
            (self.directory / "best.json").unlink()
        self._prune(keep=path)
        return path

    def point(
        self,
        name: str,
        path: Path,
        step: int,
        metric: float | None = None,
        higher_is_better: bool = False,
    ) -> None:
        """Write the ``last`` or ``best`` pointer (atomically) to the checkpoint ``path`` of
        ``step`` in this run's ``checkpoints/`` (``best`` with its ``metric``)."""
        record: dict[str, Any] = {"path": path.name, "step": step}
        if name == "best":
            record.update(metric=metric, higher_is_better=higher_is_better)
        elif name != "last":
            raise ConfigError(f"pointer {name!r}: expected 'last' or 'best'")
        atomic_write_json(self.directory / f"{name}.json", record)

    def _is_better(self, metric: float, higher_is_better: bool) -> bool:
        if math.isnan(metric):
            return False
        best = self._pointer("best")
        if best is None or best.get("metric") is None or math.isnan(best["metric"]):
            return True
        return metric > best["metric"] if higher_is_better else metric < best["metric"]

    def _prune(self, keep: Path) -> None:
        if self.keep_last is None:
            return
        protected = {keep, self.best(), self.latest()}
        for old in self.checkpoints()[: -self.keep_last]:
            if old not in protected:
                shutil.rmtree(old)

    def _remove_stale_temporaries(self) -> None:
        """Delete ``step-*.tmp-*``/``.old-*`` leftovers of a save that was killed."""
        for p in self.directory.iterdir():
            if _TMP_DIR.match(p.name) and p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)

    def __repr__(self) -> str:
        return f"CheckpointManager({str(self.run_dir)!r}, keep_last={self.keep_last})"


def checkpoint_dirs(folder: str | os.PathLike[str]) -> list[Path]:
    """The complete ``step-N`` checkpoint directories in ``folder`` (with ``meta.json``, not
    symlinks), oldest step first: a run's ``checkpoints/`` or a folder of copies."""
    found = []
    for p in Path(folder).iterdir():
        m = _STEP_DIR.match(p.name)
        if m and not p.is_symlink() and (p / META_FILE).is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def resolve_checkpoint(path: str | os.PathLike[str], which: str = "best") -> Path:
    """The checkpoint directory that ``path`` names, for any task's runs.

    ``path`` is a checkpoint directory (with ``meta.json``) or a file (returned as is), a run
    directory (its ``best`` checkpoint, else the latest; ``which="last"``: the latest) or a run's
    ``checkpoints/`` folder.

    Raises:
        CheckpointError: nothing that holds a checkpoint, or a run without a complete one.
    """
    p = Path(path)
    if p.is_file() or (p / META_FILE).is_file():
        return p
    run = p.parent if p.name == "checkpoints" and not (p / "checkpoints").is_dir() else p
    if not (run / "checkpoints").is_dir():
        raise CheckpointError(
            f"no checkpoint at {p}: pass a run directory (with checkpoints/) or a checkpoint "
            "directory (with meta.json)"
        )
    manager = CheckpointManager(run, keep_last=None)
    found = (manager.best() if which == "best" else None) or manager.latest()
    if found is None:
        raise CheckpointError(f"run directory {run} has no complete checkpoint yet")
    return found
