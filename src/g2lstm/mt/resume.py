"""Which configuration changes a resumed MT run accepts, and the vocabulary check.

A run resumed with ``--resume`` must train the model it started: only the fields in
:data:`RESUMABLE_CHANGES` (budgets and bookkeeping) may differ from the configuration saved in
the checkpoint (:func:`check_resume_config`), and the prepared data must have the vocabulary
the checkpoint was trained with (:func:`check_same_vocab`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from g2lstm.config import changed_keys
from g2lstm.errors import CheckpointError
from g2lstm.mt.config import MTConfig
from g2lstm.mt.prepare import PreparedData

__all__ = ["RESUMABLE_CHANGES", "check_resume_config", "check_same_vocab"]

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


def check_resume_config(saved: dict[str, Any], current: MTConfig, path: Path) -> None:
    """CheckpointError unless ``current`` differs from the ``saved`` config of the checkpoint
    at ``path`` only in :data:`RESUMABLE_CHANGES`."""
    # a key the checkpoint lacks was added later: the run trained with its default
    old = MTConfig.from_dict(saved, source=f"{path}/meta.json")
    resumable = {f"{section}.{key}" for section, keys in RESUMABLE_CHANGES.items() for key in keys}
    diffs = changed_keys(old, current, resumable)
    if diffs:
        raise CheckpointError(
            f"cannot resume from {path}: the configuration changed ({'; '.join(diffs)}). "
            "Use the original settings, or another --out to start a new run."
        )


def check_same_vocab(meta: dict[str, Any], prepared: PreparedData, path: Path) -> None:
    """CheckpointError unless the checkpoint ``meta`` (of ``path``) was trained with the source
    vocabulary of ``prepared``."""
    data = meta.get("data")
    if not isinstance(data, dict) or data.get("src_vocab") != list(prepared.src_vocab.tokens):
        raise CheckpointError(
            f"cannot resume from {path}: its vocabulary differs from {prepared.root}; resume "
            "with the data it was trained on"
        )
