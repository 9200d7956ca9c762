"""Training infrastructure shared by the language-model and translation trainers.

Building blocks, not a framework: each trainer writes its own loop and uses

- :mod:`~g2lstm.train.atomic`: crash-safe file writes (``atomic_write_json``, ``atomic_path``);
- :mod:`~g2lstm.train.checkpoint` / :mod:`~g2lstm.train.manager`: safetensors + JSON
  checkpoints, verified on load, never pickle; ``CheckpointManager`` keeps last N + best;
- :mod:`~g2lstm.train.manifest`: a checkpoint's ``meta.json``, format version, pickle refusal;
- :mod:`~g2lstm.train.state`: optimizer state <-> tensors + JSON, state-dict compatibility;
- :mod:`~g2lstm.train.rng`: seeding, RNG capture/restore, per-step generators;
- :mod:`~g2lstm.train.signals`: ``GracefulInterrupt`` (save and exit on Ctrl-C/SIGTERM);
- :mod:`~g2lstm.train.metrics`: ``MetricsLogger`` (JSONL + CSV [+ TensorBoard]);
- :mod:`~g2lstm.train.nonfinite`: NaN/inf policy (raise or skip);
- :mod:`~g2lstm.train.lock`: one run per output directory, writable-directory check;
- :mod:`~g2lstm.train.distributed`: torchrun/DDP helpers;
- :mod:`~g2lstm.train.progress`: tqdm bars and throughput;
- :mod:`~g2lstm.train.result`: ``RunResult``, the one ``results.json`` of every task's run.

A resumable loop, in outline::

    out = ensure_writable_dir(out_dir)
    with RunLock(out), GracefulInterrupt() as stop, MetricsLogger(out) as log:
        manager = CheckpointManager(out, keep_last=3)
        if (ckpt := manager.load_latest()) is not None:
            check_state_dict_compat(model, ckpt.model_state, str(ckpt.path))
            model.load_state_dict(ckpt.model_state)
            optimizer.load_state_dict(ckpt.trainer_state["optimizer"])
            restore_rng_state(ckpt.meta["rng"])
            start = ckpt.step
            log.drop_after(start)
        ...
        manager.save(step, model_state=model.state_dict(),
                     trainer_state={"optimizer": optimizer.state_dict()},
                     meta={"config": config_dict, "rng": capture_rng_state()},
                     metric=valid_loss)
"""

from __future__ import annotations

from g2lstm.train.atomic import (
    atomic_directory,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from g2lstm.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from g2lstm.train.distributed import DistributedContext, init_distributed
from g2lstm.train.lock import RunLock, ensure_writable_dir
from g2lstm.train.manager import CheckpointManager, resolve_checkpoint
from g2lstm.train.manifest import CHECKPOINT_FORMAT
from g2lstm.train.metrics import MetricsLogger, read_metrics
from g2lstm.train.nonfinite import NonFiniteGuard, NonFinitePolicy, first_nonfinite_grad
from g2lstm.train.progress import Throughput, format_duration, progress
from g2lstm.train.result import RESULT_FILE, RunResult, read_result
from g2lstm.train.rng import (
    capture_rng_state,
    derive_seed,
    restore_rng_state,
    seed_everything,
    step_generator,
)
from g2lstm.train.rundir import claim_run_dir
from g2lstm.train.signals import GracefulInterrupt
from g2lstm.train.state import check_state_dict_compat, flatten_state, unflatten_state

__all__ = [
    "CHECKPOINT_FORMAT",
    "RESULT_FILE",
    "Checkpoint",
    "CheckpointManager",
    "DistributedContext",
    "GracefulInterrupt",
    "MetricsLogger",
    "NonFiniteGuard",
    "NonFinitePolicy",
    "RunLock",
    "RunResult",
    "Throughput",
    "atomic_directory",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "capture_rng_state",
    "check_state_dict_compat",
    "claim_run_dir",
    "derive_seed",
    "ensure_writable_dir",
    "first_nonfinite_grad",
    "flatten_state",
    "format_duration",
    "init_distributed",
    "load_checkpoint",
    "progress",
    "read_metrics",
    "read_result",
    "resolve_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
    "seed_everything",
    "step_generator",
    "unflatten_state",
]
