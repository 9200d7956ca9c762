"""Which configuration changes a resumed language-model run accepts.

A run resumed with ``--resume`` keeps its saved configuration; only the keys in
:data:`RESUMABLE_KEYS` (how long to train, logging, checkpointing, where the data lives) may be
overridden, since any other change would make the resumed run differ from an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

from g2lstm.config import changed_keys
from g2lstm.errors import ConfigError
from g2lstm.lm.config import RunConfig

__all__ = ["RESUMABLE_KEYS", "merge_resume_config"]

#: Config keys that may change when a run is resumed; any other difference is refused.
RESUMABLE_KEYS = frozenset(
    {
        "train.epochs",
        "train.finetune_epochs",
        "train.max_steps",
        "train.threads",
        "train.log_interval",
        "train.progress",
        "train.tensorboard",
        "train.keep_last",
        "train.checkpoint_every",
        "data",
        "data_dir",
    }
)


def merge_resume_config(saved: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """``saved`` with ``overrides`` applied; ConfigError if a non-resumable key changes."""
    new = saved.replace(overrides)
    changed = changed_keys(saved, new, RESUMABLE_KEYS)
    if changed:
        diffs = ", ".join(changed)
        raise ConfigError(
            f"cannot resume with a different configuration ({diffs}); only "
            f"{', '.join(sorted(RESUMABLE_KEYS))} may change. Use a new --out for a new run."
        )
    return new
