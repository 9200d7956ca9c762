"""Every script under ``examples/`` runs (with small settings) and shows what it promises."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_example_has_a_test() -> None:
    tested = {"convert_existing_model", "lightning_module", "compress_and_evaluate"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_convert_existing_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    ex = _load("convert_existing_model")
    results = ex.main(["--steps", "30", "--plot", str(tmp_path / "gates.png")])
    out = capsys.readouterr().out
    assert set(results) == {"LSTM", "G2-LSTM"}
    assert "forget gate values, G2-LSTM:" in out and "[0.9, 1.0)" in out
    assert (tmp_path / "gates.png").stat().st_size > 1000
    assert all(0.0 <= r["forget_near_0_or_1"] <= 1.0 for r in results.values())


def test_lightning_module_fast_dev_run(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pytorch_lightning", reason="the `lightning` extra is not installed")
    ex = _load("lightning_module")
    metrics = ex.main(["--fast-dev-run", "--seq-len", "16"])
    assert {"train_loss", "val_loss", "val_ppl", "input_near_0_or_1", "forget_near_0_or_1"} <= set(
        metrics
    )
    assert 1.0 < metrics["val_ppl"] < 1000.0


@pytest.mark.slow
def test_compress_and_evaluate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write_lm_corpus: Callable[..., Path]
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    ex = _load("compress_and_evaluate")
    rows = ex.main(["--data", str(data), "--out", str(tmp_path / "out"), "--rank", "2"])
    assert [r["model"] for r in rows] == ["original", "svd --rank 2", "quant --bits 2"]
    for r in rows[1:]:
        assert r["checkpoint_kind"] == "compressed" and r["checkpoint"].endswith(".safetensors")
        assert 0 < r["bytes"] < r["checkpoint_weights_bytes"]
        assert 1.0 < r["ppl"] < 1000.0
    assert "test ppl" in capsys.readouterr().out
