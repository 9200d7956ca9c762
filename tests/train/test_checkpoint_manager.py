"""CheckpointManager: last N + best retention, pointers, stale temporaries, resume."""

from __future__ import annotations

import json

import pytest
import torch

from g2lstm.errors import CheckpointError, ConfigError
from g2lstm.train import CheckpointManager


def _save(manager, step, metric=None, **kwargs):
    return manager.save(
        step,
        model_state={"w": torch.full((3,), float(step))},
        trainer_state={"optimizer": {"state": {}, "param_groups": []}},
        meta={"epoch": step // 10},
        metric=metric,
        **kwargs,
    )


def _steps(manager):
    return [int(p.name.split("-")[1]) for p in manager.checkpoints()]


def test_empty_run_has_no_checkpoint(tmp_path):
    manager = CheckpointManager(tmp_path)
    assert manager.latest() is None
    assert manager.best() is None
    assert manager.load_latest() is None


def test_keep_last_and_best_lower_is_better(tmp_path):
    manager = CheckpointManager(tmp_path / "run", keep_last=2)
    losses = {100: 5.0, 200: 3.0, 300: 4.0, 400: 4.5, 500: 6.0}
    for step, loss in losses.items():
        path = _save(manager, step, metric=loss)
    assert path.name == "step-000000500"
    assert _steps(manager) == [200, 400, 500]  # best (200) kept beyond the last two
    assert manager.best().name == "step-000000200"
    assert manager.best_metric() == 3.0
    assert manager.latest() == path
    last = json.loads((manager.directory / "last.json").read_text())
    assert last == {"path": "step-000000500", "step": 500}

    ckpt = manager.load_latest()
    assert ckpt.step == 500
    assert ckpt.meta == {"epoch": 50, "step": 500, "metric": 6.0}
    assert torch.equal(ckpt.model_state["w"], torch.full((3,), 500.0))

    _save(manager, 600, metric=2.0)  # new best: the old best may now be pruned
    assert _steps(manager) == [500, 600]
    assert manager.best().name == "step-000000600"


def test_higher_is_better_and_nan_never_best(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=1)
    _save(manager, 1, metric=float("nan"), higher_is_better=True)
    assert manager.best() is None
    _save(manager, 2, metric=20.0, higher_is_better=True)
    _save(manager, 3, metric=25.0, higher_is_better=True)
    _save(manager, 4, metric=24.0, higher_is_better=True)
    _save(manager, 5, metric=float("nan"), higher_is_better=True)
    assert manager.best().name == "step-000000003"
    assert _steps(manager) == [3, 5]


def test_keep_all(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=None)
    for step in range(4):
        _save(manager, step)
    assert _steps(manager) == [0, 1, 2, 3]


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_bad_keep_last(tmp_path, bad):
    with pytest.raises(ConfigError, match="keep_last"):
        CheckpointManager(tmp_path, keep_last=bad)


def test_pointers_are_files_and_survive_deletion(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=3)
    _save(manager, 10, metric=1.0)
    _save(manager, 20, metric=2.0)
    assert not any(p.is_symlink() for p in manager.directory.iterdir())
    # losing last.json falls back to the highest complete step
    (manager.directory / "last.json").unlink()
    assert manager.latest().name == "step-000000020"
    # a pointer to a deleted checkpoint is ignored, never dangling
    import shutil

    shutil.rmtree(manager.directory / "step-000000010")
    assert manager.best() is None
    _save(manager, 30, metric=3.0)
    assert manager.best().name == "step-000000030"


def test_incomplete_and_stale_directories_are_ignored_then_cleaned(tmp_path):
    manager = CheckpointManager(tmp_path)
    _save(manager, 1)
    stale = manager.directory / "step-000000002.tmp-abcd"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"partial")
    no_manifest = manager.directory / "step-000000003"
    no_manifest.mkdir()
    assert manager.latest().name == "step-000000001"
    _save(manager, 4)
    assert not stale.exists()
    assert manager.latest().name == "step-000000004"


def test_corrupt_latest_points_to_previous(tmp_path):
    manager = CheckpointManager(tmp_path)
    previous = _save(manager, 1)
    latest = _save(manager, 2)
    (latest / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match=str(previous)):
        manager.load_latest()


def test_resave_same_step_replaces_it(tmp_path):
    manager = CheckpointManager(tmp_path)
    _save(manager, 7, metric=1.0)
    path = manager.save(7, model_state={"w": torch.zeros(1)}, metric=2.0)
    assert _steps(manager) == [7]
    assert torch.equal(manager.load_latest().model_state["w"], torch.zeros(1))
    assert manager.best() == path
    assert manager.best_metric() == 2.0  # the pointer describes what is on disk now
    manager.save(7, model_state={"w": torch.zeros(1)})
    assert manager.best() is None
