"""``benchmarks/lm_clip_diagnostic.py``: weight and gate numbers of round & clip per run."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from g2lstm.compress.blocks import select_blocks
from g2lstm.lm import load_model, preset_config, train

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "lm_clip_diagnostic.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("lm_clip_diagnostic", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_run_is_measured_recorded_and_tabled_by_name(
    script, tmp_path: Path, write_lm_corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    runs = [tmp_path / "g2-seed1", tmp_path / "g2-seed2"]
    train(preset_config("tiny", {"data": str(data), "train.progress": False}), runs[0])
    shutil.copytree(runs[0], runs[1])  # a second seed's folder, for the grouping
    capsys.readouterr()  # the training's log
    out = tmp_path / "clip.json"
    argv = [str(r) for r in runs] + ["--tokens", "60", "--step", "0.05", "--clip", "0.1"]
    assert script.main([*argv, "--out", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| run | seeds | clipped %") and len(table) == 3
    assert table[2].startswith("| g2 | 2 | ")  # both seeds under one name
    record = json.loads(out.read_text())
    assert record["settings"] == {"tokens": 60, "step": 0.05, "clip": 0.1}
    for run, row in zip(runs, record["runs"]):
        state = load_model(run).model.state_dict()
        w = torch.cat(
            [state[b.param][b.start : b.stop].flatten() for b in select_blocks(state)]
        ).abs()
        assert row["weights"] == w.numel()
        assert row["clipped_pct"] == pytest.approx(100 * float((w > 0.125).double().mean()))
        assert row["clipped_pct"] > 0  # the small clip changes some weights of this model
        # the clip only adds error: every clipped weight moves at least step / 2
        assert row["rel_error_round_clip"] > row["rel_error_round"] > 0
        assert row["tokens"] == 60  # 20 streams of 3 tokens
        for key in ("near_binary", "near_binary_round", "near_binary_round_clip"):
            assert set(row[key]) == {"input", "forget"}
            assert all(0 <= v <= 100 for v in row[key].values())


def test_a_run_folder_that_is_not_a_model_is_one_line(
    script, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert script.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lm_clip_diagnostic: ") and str(tmp_path) in err[0]
