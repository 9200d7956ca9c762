"""``g2lstm analyze``: argument parsing, labels, and a run on two tiny trained checkpoints."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from g2lstm.analysis.cli import _labels
from g2lstm.cli import build_parser, main
from g2lstm.errors import ConfigError


def test_parser_defaults() -> None:
    args = build_parser().parse_args(["analyze", "a", "b", "-o", "out"])
    assert args.checkpoints == ["a", "b"] and args.split == "valid" and args.seed == 0
    assert args.max_batches == 20 and len(args.sentences) == 2 and not args.no_sensitivity


def test_labels() -> None:
    assert _labels(["g2", "lstm"], None, 2) == ["G2-LSTM", "LSTM"]
    assert _labels(["g2", "g2"], None, 2) == ["G2-LSTM #1", "G2-LSTM #2"]
    assert _labels(["g2"], ["mine"], 1) == ["mine"]
    with pytest.raises(ConfigError):
        _labels(["g2", "lstm"], ["x", "x"], 2)


def test_bad_option_is_a_clean_error(tmp_path: Path, capsys) -> None:
    assert main(["analyze", str(tmp_path), "-o", str(tmp_path / "o"), "--bptt", "0"]) == 2
    assert "--bptt" in capsys.readouterr().err


@pytest.mark.slow
def test_analyze_two_trained_checkpoints(tmp_path: Path, read_png_size) -> None:
    pytest.importorskip("matplotlib")
    from g2lstm.lm import preset_config, train

    rng = random.Random(0)
    words = ["the", "and", ".", "economy", "is", "of", "w1", "w2", "w3"]
    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 40), ("valid", 12), ("test", 4)):
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) for _ in range(n)]
        (data / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for cell in ("g2", "lstm"):
        cfg = preset_config("tiny", {"data": str(data), "model.cell": cell, "train.epochs": 1,
                                     "train.progress": False, "train.threads": 1})  # fmt: skip
        train(cfg, tmp_path / cell)
    out = tmp_path / "out"
    rc = main(["analyze", str(tmp_path / "g2"), str(tmp_path / "lstm"), "-o", str(out),
               "--batch-size", "2", "--bptt", "8", "--max-batches", "2", "--no-sensitivity",
               "--sentences", "the economy is w1 .", "w2 zzz"])  # fmt: skip
    assert rc == 2  # 'zzz' is not in the vocabulary and the corpus has no <unk>
    rc = main(["analyze", str(tmp_path / "g2"), str(tmp_path / "lstm"), "-o", str(out),
               "--batch-size", "2", "--bptt", "8", "--max-batches", "2", "--no-sensitivity",
               "--sentences", "the economy is w1 ."])  # fmt: skip
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == ["G2-LSTM", "LSTM"]
    assert results["models"]["G2-LSTM"]["batches"] == 2
    hard = results["hard_gates"]["G2-LSTM"]
    assert hard["check"]["binary"] and hard["soft"] > 1 and hard["hard"] > 1
    for name in ("gate_histograms", "token_classes", "heatmap_0", "hard_gates"):
        read_png_size(out / f"{name}.png")
    assert "![" in (out / "report.md").read_text()
