"""``benchmarks/projection_chunk.py`` measures the chunk sizes around the library's rule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from g2lstm.nn.fast import loop

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "projection_chunk.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("projection_chunk", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_times_whole_chunks_and_the_rule(script, monkeypatch):
    monkeypatch.setattr(loop, "CHUNK_FROM_BYTES", 0)
    monkeypatch.setattr(loop, "CHUNK_BYTES", 3 * 16 * 4 * 8 * 4)  # 3 steps of (16, 4H=32) fp32
    out = script.measure((16, 10, 4, 8), repeats=1)
    assert out["rule"] == "K=3"
    assert set(out["ms"]) == {"K=2", "K=3", "K=4", "K=8", "whole"}  # 1 step = 16 rows < 32
    assert all(ms > 0 for ms in out["ms"].values())
    assert out["route"] in ("onednn", "torch")
