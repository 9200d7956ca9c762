"""Where the training runs of a reproduction ran (``collect.training_machines``)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from g2lstm.nn.fast.autotune import cpu_model
from g2lstm.reproduce.collect import NOT_RECORDED, training_machines
from g2lstm.train import CheckpointManager
from g2lstm.train.manifest import META_FILE


def _run(root: Path, name: str, cpus: list[str | None]) -> dict:
    """A run folder with one checkpoint per entry of ``cpus`` (None: saved without the field,
    as before checkpoints recorded it), and the marker of the step that trained it."""
    run = root / name
    manager = CheckpointManager(run, keep_last=None)
    for step, cpu in enumerate(cpus, 1):
        ckpt = manager.save(step, model_state={"w": torch.zeros(2)})
        meta = json.loads((ckpt / META_FILE).read_text())
        assert meta["versions"]["cpu"] == cpu_model()  # what a save records
        if cpu is None:
            del meta["versions"]["cpu"]
        else:
            meta["versions"]["cpu"] = cpu
        (ckpt / META_FILE).write_text(json.dumps(meta))
    return {"kind": "lm-train", "result": {"run_dir": str(run)}}


def test_training_machines_counts_runs_per_recorded_cpu(tmp_path: Path) -> None:
    a, b = "AMD EPYC (family 25 model 1, AVX2)", "AMD EPYC (family 25 model 17, AVX-512)"
    damaged = _run(tmp_path, "damaged", [a, a])
    (Path(damaged["result"]["run_dir"]) / "checkpoints" / "step-000000002" / META_FILE).write_text(
        "{not json"
    )
    markers = [
        _run(tmp_path, "one", [a, a]),
        _run(tmp_path, "resumed-elsewhere", [a, b]),  # counts under both
        _run(tmp_path, "old", [None]),
        damaged,  # its readable checkpoint still tells
        {"kind": "lm-train", "result": {"run_dir": str(tmp_path / "gone")}},
        {"kind": "lm-eval", "result": {"run_dir": str(tmp_path / "one")}},  # not a training
        {"kind": "report", "result": {}},
    ]
    assert training_machines(markers) == {a: 3, b: 1, NOT_RECORDED: 2}
    assert training_machines([]) == {}
