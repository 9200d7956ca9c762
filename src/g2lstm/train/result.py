"""The one result file of a training run, the same for every task (``<run>/results.json``).

A trainer writes it when a run ends (finished, stopped by a budget, or interrupted): common
fields every task has, plus the task's own final numbers under ``details`` (language model:
valid/test loss and perplexity, tokens/s; translation: best validation loss, best checkpoint,
validation BLEU)::

    {"format": "g2lstm-run-result", "version": 1, "task": "lm", "run_dir": "...",
     "finished": true, "stopped": null, "steps": 1200, "epochs": 2, "train_time_s": 31.4,
     "num_parameters": 1234, "cell": "g2", "seed": 1, "details": {"test_ppl": 120.3, ...}}

``finished`` means the run reached the end its config asks for (the trainer will not continue
it); ``stopped`` says why it stopped early or how it ended.

Runs written by earlier versions are read as well (:meth:`RunResult.from_dict`): the language
model's flat ``results.json`` (``complete``, ``valid_ppl``, ...) and the translation model's
``result.json`` (``step``, ``epoch``, ``train_seconds``, ``best_valid_loss``, ...).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from g2lstm.errors import CheckpointError
from g2lstm.train.atomic import atomic_write_json

__all__ = ["LEGACY_RESULT_FILE", "RESULT_FILE", "RunResult", "read_result"]

#: The result file of a run, in its folder.
RESULT_FILE = "results.json"
#: The name translation runs of earlier versions used (read, never written).
LEGACY_RESULT_FILE = "result.json"
FORMAT, VERSION = "g2lstm-run-result", 1
#: How a stop reason of the old translation layout maps to ``finished``.
_UNFINISHED_STOPS = (None, "interrupted")


@dataclass
class RunResult:
    """How a training run ended (see the module docstring).

    Attributes:
        task: the task's name (``"lm"``, ``"mt"``).
        run_dir: the run folder.
        finished: the run reached the end of its schedule.
        stopped: why it stopped (``"max_steps"``, ``"interrupted"``, ``"epochs"``, ...).
        steps, epochs: updates and epochs done.
        train_time_s: training time (resumed runs: all parts).
        num_parameters: trainable parameters of the model.
        cell, seed: the compared cell and the training seed ("" / None when unknown).
        details: the task's own final numbers (JSON values).
    """

    task: str
    run_dir: str
    finished: bool
    stopped: str | None
    steps: int
    epochs: int
    train_time_s: float = 0.0
    num_parameters: int = 0
    cell: str = ""
    seed: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, task: str, values: Mapping[str, Any]) -> RunResult:
        """A result from flat ``values``: the common fields by name, the rest as details."""
        common = {f.name for f in fields(cls)} - {"task", "details"}
        return cls(
            task=task,
            **{k: v for k, v in values.items() if k in common},
            details={k: v for k, v in values.items() if k not in common},
        )

    def flat(self) -> dict[str, Any]:
        """The common fields and the details in one flat dict."""
        out = asdict(self)
        details = out.pop("details")
        return {**out, **details}

    def to_dict(self) -> dict[str, Any]:
        """What :data:`RESULT_FILE` holds."""
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = RESULT_FILE) -> RunResult:
        """Read a result file's dict, in this layout or in an earlier version's.

        Raises:
            CheckpointError: not a run result, or a newer format version.
        """
        if not isinstance(data, Mapping):
            raise CheckpointError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            return _legacy(data, source)
        if data.get("version") != VERSION:
            raise CheckpointError(
                f"{source}: run-result version {data.get('version')!r}; this g2lstm reads "
                f"version {VERSION} (upgrade g2lstm)"
            )
        try:
            return cls(**{k: v for k, v in data.items() if k not in ("format", "version")})
        except TypeError as exc:
            raise CheckpointError(f"{source}: malformed run result ({exc})") from None

    def write(self, run_dir: str | os.PathLike[str]) -> Path:
        """Write :data:`RESULT_FILE` into ``run_dir`` (atomically)."""
        return atomic_write_json(Path(run_dir) / RESULT_FILE, self.to_dict())


def _legacy(data: Mapping[str, Any], source: str) -> RunResult:
    """A result file of an earlier version: the language model's flat ``results.json``
    (``complete``) or the translation model's ``result.json`` (``step``, ``epoch``,
    ``train_seconds``; finished unless interrupted)."""
    old = dict(data)
    try:
        if "complete" in old:
            finished = bool(old.pop("complete"))
            return RunResult.of("lm", {**old, "finished": finished})
        if "best_valid_loss" in old:
            renamed = {
                "steps": old.pop("step"),
                "epochs": old.pop("epoch"),
                "train_time_s": old.pop("train_seconds", 0.0),
                "finished": old.get("stopped") not in _UNFINISHED_STOPS,
            }
            return RunResult.of("mt", {**old, **renamed})
    except (TypeError, KeyError) as exc:
        raise CheckpointError(f"{source}: malformed run result ({exc})") from None
    raise CheckpointError(f"{source}: not a g2lstm run result (no 'format' key)")


def read_result(run_dir: str | os.PathLike[str]) -> RunResult | None:
    """The result of the run in ``run_dir`` (:data:`RESULT_FILE`, else an earlier version's
    :data:`LEGACY_RESULT_FILE`), or None if it has none.

    Raises:
        CheckpointError: a result file that cannot be read or parsed.
    """
    for name in (RESULT_FILE, LEGACY_RESULT_FILE):
        path = Path(run_dir) / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CheckpointError(f"cannot read {path}: {exc}") from None
        return RunResult.from_dict(data, str(path))
    return None
