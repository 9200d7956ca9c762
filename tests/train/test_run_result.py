"""RunResult: the one results.json of every task, and the two layouts of earlier versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from g2lstm.errors import CheckpointError
from g2lstm.train import RESULT_FILE, RunResult, read_result

OLD_LM = {
    "run_dir": "runs/a",
    "complete": True,
    "stopped": None,
    "steps": 50,
    "epochs": 2,
    "valid_loss": 4.0,
    "valid_ppl": 54.6,
    "test_loss": 4.1,
    "test_ppl": 60.3,
    "train_time_s": 3.0,
    "wall_time_s": 4.0,
    "tokens_per_s": 100.0,
    "num_parameters": 12,
    "cell": "g2",
    "seed": 1,
    "test_streams": 10,
}
OLD_MT = {
    "run_dir": "runs/b",
    "step": 30,
    "epoch": 1,
    "stopped": "max_updates",
    "train_seconds": 2.5,
    "best_valid_loss": 3.2,
    "best_checkpoint": "runs/b/checkpoints/step-000000030",
    "num_parameters": 99,
    "valid_bleu": None,
}


def test_round_trip_and_flat_view(tmp_path: Path) -> None:
    result = RunResult.of("lm", {**OLD_LM, "finished": True})
    result.write(tmp_path)
    stored = json.loads((tmp_path / RESULT_FILE).read_text())
    assert stored["format"] == "g2lstm-run-result" and stored["version"] == 1
    assert read_result(tmp_path) == result
    assert result.flat()["test_ppl"] == 60.3 and result.details["test_streams"] == 10
    assert "details" not in result.flat()  # each detail once, at the top


def test_old_language_model_results_json_is_migrated(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(OLD_LM))
    result = read_result(tmp_path)
    assert result is not None and (result.task, result.finished, result.steps) == ("lm", True, 50)
    assert result.details["test_ppl"] == 60.3 and "complete" not in result.flat()
    incomplete = RunResult.from_dict({**OLD_LM, "complete": False})
    assert not incomplete.finished


@pytest.mark.parametrize(("stopped", "finished"), [("max_updates", True), ("interrupted", False)])
def test_old_translation_result_json_is_migrated(
    tmp_path: Path, stopped: str, finished: bool
) -> None:
    (tmp_path / "result.json").write_text(json.dumps({**OLD_MT, "stopped": stopped}))
    result = read_result(tmp_path)
    assert result is not None and (result.task, result.finished) == ("mt", finished)
    assert (result.steps, result.epochs, result.train_time_s) == (30, 1, 2.5)
    assert result.details == {
        "best_valid_loss": 3.2,
        "best_checkpoint": OLD_MT["best_checkpoint"],
        "valid_bleu": None,
    }


def test_bad_result_files_are_one_typed_error(tmp_path: Path) -> None:
    assert read_result(tmp_path) is None
    (tmp_path / RESULT_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_result(tmp_path)
    with pytest.raises(CheckpointError, match="not a g2lstm run result"):
        RunResult.from_dict({"hello": 1})
    with pytest.raises(CheckpointError, match="version 9"):
        RunResult.from_dict({"format": "g2lstm-run-result", "version": 9})
    with pytest.raises(CheckpointError, match="malformed"):
        RunResult.from_dict({"best_valid_loss": 1.0})  # an MT result without its step
