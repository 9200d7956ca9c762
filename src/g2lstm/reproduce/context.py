"""What every step function gets: the scale, folders, device and a way to print progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from g2lstm.errors import G2LSTMError
from g2lstm.reproduce.plan import Scale, Step, read_marker

__all__ = ["RunContext", "dep_marker", "lines_head"]


@dataclass(frozen=True)
class RunContext:
    """Shared settings of one ``g2lstm reproduce`` invocation.

    Attributes:
        scale: the sizes of the study.
        out_dir: the output folder.
        data_dir: root of named datasets (``--data-dir``; None: ``$G2LSTM_DATA`` / user cache).
        device: ``cpu`` or ``cuda`` (MT and analysis; LM training picks its own device).
        log: prints one progress line.
        reuse: folders searched for finished training runs that satisfy training steps
            (``--reuse``; :mod:`g2lstm.reproduce.reuse`).
        reuse_wait: wait for a run with a step's config that a live process trains now
            instead of training the step again (``--reuse-wait``).
    """

    scale: Scale
    out_dir: Path
    data_dir: str | None = None
    device: str = "cpu"
    log: Callable[[str], None] = print
    reuse: tuple[Path, ...] = ()
    reuse_wait: bool = False


def dep_marker(step: Step, kind_suffix: str) -> dict[str, Any]:
    """The ``result`` recorded in the ``DONE.json`` of the dependency of ``step`` whose folder
    ends with ``kind_suffix`` (``data/lm``, ``train``); G2LSTMError if it is missing."""
    for dep in step.deps:
        if dep.as_posix().endswith(kind_suffix):
            marker = read_marker(dep)
            if marker is None:
                raise G2LSTMError(
                    f"step {step.id} needs {dep}/DONE.json, which is missing; run the whole "
                    "plan (without --only) or the step that writes it first"
                )
            return marker.get("result", {})
    raise G2LSTMError(f"step {step.id} has no dependency ending in {kind_suffix!r}")


def lines_head(src: Path, dst: Path, n: int) -> int:
    """Copy the first ``n`` lines of ``src`` to ``dst`` (UTF-8); return how many were copied."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = dst.with_name(dst.name + ".tmp")
    with src.open(encoding="utf-8") as fin, tmp.open("w", encoding="utf-8") as fout:
        for line in fin:
            if count >= n:
                break
            fout.write(line)
            count += 1
    tmp.replace(dst)
    return count
