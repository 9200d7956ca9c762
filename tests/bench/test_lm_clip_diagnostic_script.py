"""``benchmarks/lm_clip_diagnostic.py``: weight and gate numbers of round & clip per run."""

from __future__ import annotations

import importlib.util
import json
import math
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
    weights, ppl = (t.splitlines() for t in capsys.readouterr().out.strip().split("\n\n"))
    assert weights[0].startswith("| run | seeds | clipped %") and len(weights) == 3
    assert ppl[0].startswith("| run | seeds | valid ppl | Δ round") and len(ppl) == 3
    assert weights[2].startswith("| g2 | 2 | ") and ppl[2].startswith("| g2 | 2 | ")  # seeds
    record = json.loads(out.read_text())
    assert record["settings"] == {"tokens": 60, "ppl_tokens": 0, "step": 0.05, "clip": 0.1}
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
        assert row["valid_ppl"] > 1 and row["ppl_tokens"] >= 60  # the whole validation text
        assert set(row["ppl_increase"]) == {
            "round",
            "clip",
            "round_clip",
            "round_clip_ih",
            "round_clip_hh",
        }
        assert all(math.isfinite(v) for v in row["ppl_increase"].values())


def test_clip_only_clamps_the_gate_blocks_of_a_copy(script, tmp_path: Path, write_lm_corpus):
    data = write_lm_corpus(tmp_path / "data")
    train(preset_config("tiny", {"data": str(data), "train.progress": False}), tmp_path / "run")
    model = load_model(tmp_path / "run").model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clipped = script.clip_only(model, 0.1)
    after = clipped.state_dict()
    blocks = select_blocks(before)
    for name, tensor in before.items():
        assert torch.equal(model.state_dict()[name], tensor)  # the original is left as it is
        rows = torch.zeros(tensor.shape[0] if tensor.dim() else 0, dtype=torch.bool)
        for b in blocks:
            if b.param == name:
                rows[b.start : b.stop] = True
        assert torch.equal(after[name][~rows], tensor[~rows])  # other rows untouched
        if rows.any():
            assert torch.equal(after[name][rows], tensor[rows].clamp(-0.1, 0.1))


def test_valid_ppl_carries_the_state_across_segments(script, tmp_path: Path, write_lm_corpus):
    data = write_lm_corpus(tmp_path / "data")
    train(preset_config("tiny", {"data": str(data), "train.progress": False}), tmp_path / "run")
    model = load_model(tmp_path / "run").model.eval()
    ids = torch.randint(0, model.config.vocab_size, (41, 3))
    with torch.no_grad():
        logits = model(ids[:-1]).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[1:].flatten())
    expected = math.exp(float(loss))
    assert script.valid_ppl(model, ids, segment=7) == pytest.approx(expected, rel=1e-5)
    assert script.valid_ppl(model, ids, segment=100) == pytest.approx(expected, rel=1e-5)


def test_a_run_folder_that_is_not_a_model_is_one_line(
    script, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert script.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lm_clip_diagnostic: ") and str(tmp_path) in err[0]
