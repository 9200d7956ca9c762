"""Link a reused run into a reproduction step's folder, and undo it.

``g2lstm reproduce --reuse DIR`` (:mod:`g2lstm.reproduce.reuse` decides which run) satisfies a
training step with a finished run by linking every entry of the run folder into the step's
folder (:func:`adopt`): the evaluation and analysis steps read the checkpoints from there
unchanged, and nothing is written into the reused run. :data:`POINTER` records what was
linked, so that :func:`release` removes exactly that before the step ever trains itself.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from g2lstm.errors import G2LSTMError
from g2lstm.reproduce.plan import DONE, Step
from g2lstm.reproduce.reuse_scan import RunFolder
from g2lstm.train import atomic_write_json

__all__ = ["NOT_LINKED", "POINTER", "adopt", "own_files", "release"]

#: Written into a step folder that reuses a run: what it points to and which entries were
#: linked (so that :func:`release` removes exactly those).
POINTER = "REUSED.json"
#: Entries of a run folder (or a step folder) that are never linked: markers and locks.
NOT_LINKED = {DONE, POINTER, ".g2lstm.lock", ".g2lstm.pid"}


def own_files(folder: Path) -> list[str]:
    """Entries of a step folder that a training of the step itself wrote (not reuse links)."""
    if not folder.is_dir():
        return []
    try:
        linked = set(json.loads((folder / POINTER).read_text(encoding="utf-8"))["linked"])
    except (OSError, ValueError, KeyError, TypeError):
        linked = set()
    skip = NOT_LINKED | linked
    return [e.name for e in folder.iterdir() if not e.is_symlink() and e.name not in skip]


def release(folder: Path) -> bool:
    """Remove what :func:`adopt` put into ``folder`` (links or copies, and the pointer);
    True if there was something. Files of the step's own training are never touched."""
    pointer = Path(folder) / POINTER
    try:
        linked = json.loads(pointer.read_text(encoding="utf-8")).get("linked", [])
    except (OSError, ValueError):
        return False
    for name in linked:
        entry = Path(folder) / Path(name).name
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        elif entry.is_dir():
            shutil.rmtree(entry)
    pointer.unlink()
    return True


def adopt(step: Step, run: RunFolder, config_hash: str) -> dict[str, Any]:
    """Make ``step``'s folder point to the finished ``run`` and return the step's result.

    Every entry of the run folder (checkpoints, config, vocabulary, metrics, result file;
    not its lock files) gets a symbolic link in the step folder (a copy where links are not
    supported). The result is the trainer's own result file with ``run_dir`` (and the best
    checkpoint, ``metrics``) pointing to the step folder, plus ``reused_from``;
    ``config_hash`` (:class:`~g2lstm.reproduce.reuse.Decision`'s) is recorded in the pointer.
    """
    folder = step.out_dir
    folder.mkdir(parents=True, exist_ok=True)
    release(folder)
    linked = []
    for entry in sorted(run.path.iterdir()):
        if entry.name in NOT_LINKED or entry.name.startswith(".g2lstm"):
            continue
        target = folder / entry.name
        if target.exists() or target.is_symlink():
            raise G2LSTMError(
                f"cannot reuse {run.path} for {step.id}: {target} already exists; "
                "delete the step folder and run again"
            )
        linked.append(entry.name)
        atomic_write_json(
            folder / POINTER,
            {"reused_from": str(run.path), "config_hash": config_hash, "linked": linked},
        )
        try:
            target.symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
        except OSError:  # no symlinks here (some Windows setups): copy instead
            if entry.is_dir():
                shutil.copytree(entry, target)
            else:
                shutil.copy2(entry, target)
    result = dict(run.result)
    result["run_dir"] = str(folder)
    result["metrics"] = str(folder / "metrics.jsonl")
    if result.get("best_checkpoint"):
        best = Path(result["best_checkpoint"]).name
        result["best_checkpoint"] = str(folder / "checkpoints" / best)
    result["reused_from"] = str(run.path)
    return result
