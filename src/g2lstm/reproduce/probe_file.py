"""A probe's numbers kept beside the run they measure, and their reuse by ``--reuse``.

``benchmarks/lm_ptb.py`` and ``benchmarks/lm_ablations.py`` probe every run as soon as it has
trained (:func:`~g2lstm.reproduce.steps_probe.probe_run`, the function of the ``lm-probe``
step) and write the numbers to ``<run>.probe.json`` beside the run folder (not in it: a run
folder holds only what the trainer wrote). When ``g2lstm reproduce --reuse`` adopts that
run for a training step, the run's ``lm-probe`` step takes the kept numbers instead of
measuring them again (about 2.5 CPU minutes a run at the ``small`` preset), but only if
they were measured on the same inputs (:func:`probe_inputs`): the same weights (sha256 of
the checkpoint's ``model.safetensors``), run config and vocabulary, evaluation text (sha256 of
``train/valid/test.txt``), probe settings (:data:`~g2lstm.reproduce.ablations.PROBE`),
analysis segments and seed, and the same :data:`PROBE_VERSION`. Otherwise (a file without
``inputs`` too) the step measures again; its result names the file it took, if it took one
(``probe_reused_from``). The machine is not among the inputs: numbers kept on another CPU
are taken (the same computation on the same weights; float rounding aside, the same numbers).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from g2lstm.datasets import resolve_dataset
from g2lstm.reproduce.ablations import PROBE
from g2lstm.reproduce.digest import json_sha256
from g2lstm.reproduce.plan import Step
from g2lstm.reproduce.reuse_scan import file_sha256, lm_fingerprint
from g2lstm.tasks import LoadedRun

__all__ = ["PROBE_VERSION", "kept_preview", "probe_file", "probe_inputs", "read_probe_file"]

#: Bumped whenever :func:`~g2lstm.reproduce.steps_probe.probe_run` measures differently, so
#: that numbers kept by an earlier version are measured again.
PROBE_VERSION = 1


def probe_file(run_dir: str | Path) -> Path:
    """Where the probe numbers of the run in ``run_dir`` are kept: ``<run_dir>.probe.json``."""
    run = Path(run_dir)
    return run.parent / f"{run.name}.probe.json"


def _data_folder(data: str) -> Path:
    """The folder of ``data``: a folder with ``train.txt``, else a dataset name (no download)."""
    folder = Path(data)
    if (folder / "train.txt").is_file():
        return folder
    return resolve_dataset(data, None, download=False, progress=False, verify="none", kind="lm")


def probe_inputs(run: LoadedRun, data: str, *, analysis_batches: int, seed: int) -> dict[str, Any]:
    """What the probe numbers of ``run`` evaluated on ``data`` depend on (module docstring).

    Args:
        run: the loaded run (``path``: its checkpoint folder).
        data: the dataset name or folder the probe evaluates on.
        analysis_batches: validation segments of the gate fractions and the sensitivity.
        seed: the seed of the sensitivity draws.
    """
    ckpt = Path(run.path)
    weights = ckpt / "model.safetensors" if ckpt.is_dir() else ckpt
    model = {k: v for k, v in run.file_config.items() if k != "source"}  # config, vocabulary
    return {
        "version": PROBE_VERSION,
        "weights": file_sha256(weights),
        "model": json_sha256(model),
        "data": lm_fingerprint(_data_folder(data)),
        "settings": json_sha256(dataclasses.asdict(PROBE)),
        "analysis_batches": analysis_batches,
        "seed": seed,
    }


def _read(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None if absent, a link, unreadable or not an object."""
    if not path.is_file() or path.is_symlink():
        return None
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return kept if isinstance(kept, dict) else None


def read_probe_file(run_dir: str | Path, inputs: dict[str, Any]) -> dict[str, Any] | None:
    """The numbers kept beside ``run_dir`` if they were measured on ``inputs``; None when there
    is no such file, it cannot be read, or it was measured on anything else."""
    kept = _read(probe_file(run_dir))
    return kept if kept is not None and kept.get("inputs") == inputs else None


def kept_preview(steps: Sequence[Step], reused: Mapping[Path, Path]) -> dict[str, str]:
    """``--dry-run`` statuses of the ``lm-probe`` steps not done whose trained run ``--reuse``
    adopts (``reused``: training step folder -> run folder) and beside which numbers of this
    :data:`PROBE_VERSION` are kept. Whether they were measured on the same inputs is checked
    when the step runs (it loads the model); until then they are only likely to be taken."""
    out = {}
    for step in steps:
        if step.kind != "lm-probe" or step.done():
            continue
        run = next((reused[d] for d in step.deps if d in reused), None)
        if run is None:
            continue
        kept = _read(probe_file(run))
        if kept is not None and (kept.get("inputs") or {}).get("version") == PROBE_VERSION:
            out[step.id] = f"kept {probe_file(run)} (checked when run)"
    return out
