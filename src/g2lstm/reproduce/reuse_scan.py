"""Find finished training runs under folders and fingerprint the data they were trained on.

Used by :mod:`g2lstm.reproduce.reuse` (``g2lstm reproduce --reuse DIR``). A *run folder* is
any folder holding the ``config.yaml`` that :func:`g2lstm.lm.train` / :func:`g2lstm.mt.train`
save (the resolved config); it is recognised by that config, never by its name. A run is
*finished* when its trainer marked it so: ``results.json`` (:class:`~g2lstm.train.RunResult`,
the same for every task) with ``"finished": true`` (language model: the last epoch ended and
the best weights were evaluated; translation: epochs, ``max_updates`` or ``max_minutes``
reached). Runs of earlier versions (the language model's flat ``results.json``, the
translation model's ``result.json``) are read too.

A run whose ``.g2lstm.pid`` names a live process is being trained (or resumed) right now and
is never finished. Nothing here writes into the scanned folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from g2lstm.config_checks import flatten
from g2lstm.datasets.verify import sha256_file
from g2lstm.errors import CheckpointError, ConfigError
from g2lstm.tasks import TASKS
from g2lstm.train import RESULT_FILE, read_result

__all__ = [
    "RunFolder",
    "file_sha256",
    "lm_fingerprint",
    "prepared_fingerprint",
    "prepared_inputs",
    "resolve_near",
    "scan_runs",
    "training_now",
    "wait_while_training",
]

#: Folders never descended into while scanning (checkpoint trees, analysis outputs).
_NO_DESCEND = {"checkpoints", "figures", "tensorboard", "__pycache__"}
_LM_SPLITS = ("train.txt", "valid.txt", "test.txt")


@dataclass(frozen=True)
class RunFolder:
    """One training run found under a ``--reuse`` folder.

    Attributes:
        path: absolute folder.
        task: ``lm`` or ``mt``.
        config: the saved resolved config, normalised by the task's config class and
            flattened (``train.seed``).
        finished: the trainer marked the run finished (module docstring).
        status: ``finished`` or why it is not (shown to the user).
        result: the trainer's result file as one flat dict (:meth:`RunResult.flat
            <g2lstm.train.RunResult.flat>`; empty if unfinished).
    """

    path: Path
    task: str
    config: dict[str, Any]
    finished: bool
    status: str
    result: dict[str, Any]

    @property
    def training(self) -> bool:
        """A live process trained (or resumed) the run when it was scanned (its
        ``.g2lstm.pid``)."""
        return self.status == TRAINING_NOW


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _normalised(raw: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """``(task, flattened config)`` of a saved ``config.yaml``, or None if it is no task's."""
    for task in TASKS.values():
        if task.recognizes_config(raw):
            try:
                return task.name, flatten(task.config_from_dict(raw).to_dict())
            except (ConfigError, TypeError, ValueError):
                return None
    return None


#: The status of a run that a live process trains now.
TRAINING_NOW = "being trained now (its .g2lstm.pid is a live process)"


def training_now(folder: Path) -> bool:
    """Whether a live process trains the run in ``folder`` right now: its ``.g2lstm.pid``
    names a running process."""
    try:
        pid = int((Path(folder) / ".g2lstm.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


#: Seconds between two looks at a run that ``--reuse-wait`` waits for.
POLL_S = 30.0


def wait_while_training(
    folder: Path,
    log: Callable[[str], None],
    *,
    poll_s: float | None = None,
    note_every_s: float = 1800.0,
) -> float:
    """Block until no live process trains the run in ``folder``; the seconds waited. Looks
    every ``poll_s`` seconds (default :data:`POLL_S`) and prints a line through ``log`` every
    ``note_every_s`` seconds of waiting."""
    start = last = time.monotonic()
    while training_now(folder):
        time.sleep(POLL_S if poll_s is None else poll_s)
        now = time.monotonic()
        if now - last >= note_every_s:
            log(f"still waiting for {folder} ({(now - start) / 60:.0f} min)")
            last = now
    return time.monotonic() - start


def _status(folder: Path) -> tuple[bool, str, dict[str, Any]]:
    if training_now(folder):
        return False, TRAINING_NOW, {}
    try:
        result = read_result(folder)
    except CheckpointError as exc:
        return False, f"not finished ({exc})", {}
    if result is None:
        return False, f"not finished (no {RESULT_FILE})", {}
    if not result.finished:
        why = f"finished=false, stopped={result.stopped!r}"
        return False, f"not finished ({RESULT_FILE}: {why})", {}
    if not (folder / "checkpoints").is_dir():
        return False, "has no checkpoints/ folder", {}
    return True, "finished", result.flat()


def _config_folders(root: Path, max_depth: int) -> Iterable[Path]:
    """Folders under ``root`` (itself included, symlinks not followed) with a config.yaml."""
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        if (folder / "config.yaml").is_file():
            yield folder
        if depth < max_depth:
            subs = [e for e in entries if e.is_dir() and not e.is_symlink()]
            stack += [(e, depth + 1) for e in reversed(subs) if e.name not in _NO_DESCEND]


def scan_runs(
    dirs: Sequence[str | Path], *, max_depth: int = 4, skip_marker: str | None = None
) -> list[RunFolder]:
    """Every LM/MT run folder under ``dirs`` (in path order, each once).

    ``skip_marker``: folders holding a file of this name are left out (the links that an
    earlier ``--reuse`` made inside a reproduction's own output).
    """
    seen: set[Path] = set()
    runs = []
    for d in dirs:
        for folder in _config_folders(Path(d).expanduser().resolve(), max_depth):
            if folder in seen or (skip_marker and (folder / skip_marker).exists()):
                continue
            seen.add(folder)
            try:
                raw = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue
            parsed = _normalised(raw) if isinstance(raw, dict) else None
            if parsed is None:
                continue
            task, config = parsed
            finished, status, result = _status(folder)
            runs.append(RunFolder(folder, task, config, finished, status, result))
    return runs


def resolve_near(value: str, run_dir: Path, marker: str) -> Path | None:
    """The folder a relative path in a run's config meant: tried against the current folder
    and every ancestor of the run folder (the trainer's working folder is usually one of
    them, as with ``--out runs/x``); it must hold ``marker``. Absolute paths as they are."""
    p = Path(value).expanduser()
    bases = [Path()] if p.is_absolute() else [Path.cwd(), *run_dir.parents]
    for base in bases:
        cand = base / p
        if (cand / marker).is_file():
            return cand.resolve()
    return None


_HASHES: dict[tuple[str, int, int, int | None], str] = {}


def file_sha256(path: Path, n_lines: int | None = None) -> str:
    """sha256 of a file, or of its first ``n_lines`` lines (cached by size and mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, n_lines)
    if key not in _HASHES:
        if n_lines is None:
            _HASHES[key] = sha256_file(path)
        else:
            h = hashlib.sha256()
            with path.open("rb") as f:
                for _, line in zip(range(n_lines), f):
                    h.update(line)
            _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def lm_fingerprint(folder: Path, slice_: Sequence[int] | None = None) -> dict[str, str]:
    """``split file -> sha256`` of a language-model data folder (``train/valid/test.txt``);
    with ``slice_`` (line counts), of the first lines that a sliced copy would hold."""
    counts: Sequence[int | None] = slice_ or (None, None, None)
    return {name: file_sha256(folder / name, n) for name, n in zip(_LM_SPLITS, counts)}


def prepared_fingerprint(folder: Path) -> dict[str, Any] | None:
    """What makes two prepared MT folders equivalent, from their ``prepare.json``: the
    format, every preparation setting and the sha256 of every output file (vocabulary, BPE
    codes, encoded splits). Paths of the inputs are left out on purpose."""
    info = _read_json(folder / "prepare.json")
    if info is None:
        return None
    return {
        "format_version": info.get("format_version"),
        "settings": info.get("settings"),
        "outputs": info.get("outputs"),
    }


def prepared_inputs(folder: Path) -> dict[str, str]:
    """``train.de -> sha256`` of the files a prepared folder was made from."""
    info = _read_json(folder / "prepare.json") or {}
    return {
        k: v.get("sha256") for k, v in (info.get("inputs") or {}).items() if isinstance(v, dict)
    }
