"""``g2lstm bench layer``: the quick smoke mode runs and prints the table; argument checks."""

from __future__ import annotations

import json

import pytest
import torch

from g2lstm.bench.layer import Shape, _peak_bytes, parse_shape
from g2lstm.cli import main
from g2lstm.errors import ConfigError


def test_bench_layer_quick_prints_table_and_saves_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "layer", "--quick", "--no-memory", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| shape | task | impl |" in text and "torch=" in text and "cpu=" in text
    data = json.loads(out.read_text())
    rows = data["results"][0]["rows"]
    seen = {(r["task"], r["impl"]) for r in rows}
    for task in ("train", "soft", "hard"):
        assert (
            (task, "nn.LSTM") in seen and (task, "G2LSTM") in seen and (task, "reference") in seen
        )
    assert all(r["median_ms"] > 0 for r in rows)
    assert all(r["ratio"] == 1.0 for r in rows if r["impl"] == "nn.LSTM")
    assert data["environment"]["threads"] == 2
    if data["environment"]["cpu_kernel"]:  # what the fused step kernel saves, same run
        assert ("train", "G2LSTM ATen step") in seen and ("hard", "G2LSTM ATen step") in seen
    else:
        assert not any(impl == "G2LSTM ATen step" for _, impl in seen)


def test_bench_layer_memory_rows(capsys):
    assert (
        main(
            [
                "bench",
                "layer",
                "--shapes",
                "3,4,8,8",
                "--repeats",
                "1",
                "--warmup",
                "0",
                "--no-reference",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "training-step peak memory" in text


def test_peak_bytes_counts_allocations():
    def alloc():
        a = torch.empty(1 << 20, dtype=torch.uint8)
        b = torch.empty(1 << 19, dtype=torch.uint8)
        del a, b

    peak = _peak_bytes(alloc, "cpu")
    assert (1 << 20) + (1 << 19) <= peak < (1 << 20) + (1 << 19) + (1 << 16)


def test_parse_shape_and_errors(capsys):
    assert parse_shape("20,35,650,650") == Shape(20, 35, 650, 650)
    assert parse_shape("64,100,1024,1024,bf16").dtype == "bf16"
    with pytest.raises(ConfigError, match="batch,steps"):
        parse_shape("20x35")
    with pytest.raises(ConfigError, match="dtype"):
        Shape(1, 1, 1, 1, "int8")
    assert main(["bench", "layer", "--shapes", "1,2"]) == 2
    assert "batch,steps" in capsys.readouterr().err
