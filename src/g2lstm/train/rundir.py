"""Claiming a run directory: never merge a run into a folder that holds something else.

``g2lstm lm train --out X`` / ``mt train --out X`` write ``config.yaml``, ``vocab.json``,
``metrics.*``, ``checkpoints/`` and more into ``X``. If ``X`` is an existing folder of the
user's (notes, another tool's output), that would overwrite their ``config.yaml`` and append
to their ``metrics.csv``. :func:`claim_run_dir` therefore accepts only a new or empty folder,
or one that is already a g2lstm run of the same kind (it carries the marker file
``.g2lstm-run``, or, for runs written before the marker existed, a ``.g2lstm.lock`` or
``checkpoints/``), and refuses symlinks planted where a run writes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from g2lstm.errors import OutputError, TrainingError
from g2lstm.safe_files import open_nofollow, refuse_symlinks
from g2lstm.train.lock import LOCK_NAME, PID_NAME, ensure_writable_dir

__all__ = ["RUN_FILES", "RUN_MARKER", "claim_run_dir", "is_run_dir"]

RUN_MARKER = ".g2lstm-run"
#: Names a training run writes directly in its folder (a symlink at any of them is refused).
RUN_FILES = (
    RUN_MARKER,
    LOCK_NAME,
    PID_NAME,
    "config.yaml",
    "vocab.json",
    "metrics.jsonl",
    "metrics.csv",
    "results.json",
    "result.json",
    "checkpoints",
    "tensorboard",
)


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder written by a g2lstm training run."""
    p = Path(path)
    return any((p / name).exists() for name in (RUN_MARKER, LOCK_NAME, "checkpoints"))


def _marker_kind(marker: Path) -> str | None:
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    kind = record.get("kind") if isinstance(record, dict) else None
    return kind if isinstance(kind, str) else None


def claim_run_dir(path: str | os.PathLike[str], kind: str) -> Path:
    """Create or check the run folder ``path`` for a run of ``kind`` (``"lm"``, ``"mt"``).

    Returns:
        The folder as a ``Path`` (created, writable, marked as a ``kind`` run).

    Raises:
        TrainingError: ``path`` cannot be created or written (see
            :func:`~g2lstm.train.lock.ensure_writable_dir`), is a non-empty folder that is not a
            g2lstm run, or is a run of another kind.
        OutputError: one of :data:`RUN_FILES` in it is a symbolic link.
    """
    directory = ensure_writable_dir(path)
    refuse_symlinks(directory, RUN_FILES)
    marker = directory / RUN_MARKER
    if not is_run_dir(directory):
        entries = sorted(os.listdir(directory))
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise TrainingError(
                f"--out {directory} is not empty ({shown}) and is not a g2lstm run; g2lstm "
                "will not write its config, vocabulary and metrics among other files. Choose "
                "a new or empty folder"
            )
        try:
            with open_nofollow(marker, "w", exclusive=True) as f:
                f.write(json.dumps({"kind": kind}) + "\n")
        except OutputError:
            pass  # another process claimed it at the same moment; checked below
    found = _marker_kind(marker) if marker.exists() else kind
    if found != kind:
        raise TrainingError(
            f"--out {directory} holds a g2lstm {found or 'unknown'} run, not a {kind} run; "
            "choose another folder"
        )
    return directory
