"""analyze_models end to end: every output written, report links resolve, deterministic."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

pytest.importorskip("matplotlib")

from g2lstm.analysis import (
    AnalysisConfig,
    BatchSource,
    ReportSection,
    SensitivityConfig,
    analyze_models,
    write_report,
)
from g2lstm.analysis.report import polarisation_sentence
from g2lstm.errors import ConfigError, G2LSTMError


def _encoder(itos: list[str]):
    def encode(sentence: str):
        toks = sentence.split()
        x = torch.tensor([itos.index(t) for t in toks]).view(-1, 1)
        return toks, (x, x)

    return encode


def _run(out: Path, g2_model, lstm_model, batches, forward, itos, *, full: bool):
    def perplexity(m):
        m.eval()
        with torch.no_grad():
            return math.exp(sum(float(forward(m, b)) for b in batches) / len(batches))

    sens = SensitivityConfig(sigmas=(0.0, 0.1), draws=1) if full else None
    cfg = AnalysisConfig(seed=5, sensitivity=sens, sensitivity_batches=1, dpi=30)
    return analyze_models(
        {"G2-LSTM": g2_model(), "LSTM": lstm_model()},
        iter(batches),  # a one-shot iterator is kept so every model sees the same batches
        forward,
        out,
        evaluate_fn=perplexity if full else None,
        metric="perplexity",
        tokens_fn=lambda b: b[0],
        itos=itos,
        sentences=["the w1 . and w2"],
        encode_fn=_encoder(itos),
        config=cfg,
    )


def test_analyze_models_writes_every_output(
    tmp_path: Path, g2_model, lstm_model, batches, forward, itos, read_png_size
) -> None:
    res = _run(tmp_path, g2_model, lstm_model, batches, forward, itos, full=True)
    assert set(res.files) == {
        "gate_histograms",
        "token_classes",
        "heatmap_0",
        "sensitivity",
        "hard_gates",
    }
    for paths in res.files.values():
        w, h = read_png_size(paths["png"])
        assert w > 50 and h > 50
        assert paths["csv"].stat().st_size > 0
        json.loads(paths["json"].read_text())
    report = res.report.read_text()
    links = re.findall(r"\]\(([^)]+)\)", report)
    assert len([x for x in links if x.endswith(".png")]) == 5
    for link in links:
        assert (tmp_path / link).is_file(), link
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["models"]["G2-LSTM"]["batches"] == 3
    near = results["near_binary"]["all layers"]["G2-LSTM"]["forget"]
    assert f"{100 * near:.1f}% of forget" in report
    hard = results["hard_gates"]
    assert hard["LSTM"]["check"]["binary"] and hard["G2-LSTM"]["check"]["binary"]
    sens = results["sensitivity"]["G2-LSTM"]
    assert all(r["mean_abs_delta"] == 0 for r in sens if r["sigma"] == 0)
    stats = json.loads((tmp_path / "gate_stats.json").read_text())
    counts = [h["count"] for h in stats["LSTM"]["histograms"]]
    assert counts == [3 * 6 * 2 * 5] * 6  # batches x T x N x H, per (layer, gate)


@pytest.mark.slow
def test_outputs_are_deterministic(
    tmp_path: Path, g2_model, lstm_model, batches, forward, itos
) -> None:
    a = _run(tmp_path / "a", g2_model, lstm_model, batches, forward, itos, full=False)
    b = _run(tmp_path / "b", g2_model, lstm_model, batches, forward, itos, full=False)
    for key, paths in a.files.items():
        for kind, path in paths.items():
            assert path.read_bytes() == b.files[key][kind].read_bytes(), (key, kind)
    assert (tmp_path / "a" / "report.md").read_text() == (tmp_path / "b" / "report.md").read_text()


def test_argument_errors(tmp_path: Path, g2_model, batches, forward) -> None:
    with pytest.raises(ConfigError, match="no models"):
        analyze_models({}, batches, forward, tmp_path)
    with pytest.raises(ConfigError, match="encode_fn"):
        analyze_models({"a": g2_model()}, batches, forward, tmp_path, sentences=["x"])
    with pytest.raises(ConfigError, match="together"):
        analyze_models({"a": g2_model()}, batches, forward, tmp_path, tokens_fn=lambda b: b[0])
    with pytest.raises(ConfigError, match="layer"):
        AnalysisConfig(layer=-1)
    with pytest.raises(ConfigError, match="no batches"):
        analyze_models(
            {"a": g2_model()}, [], forward, tmp_path, config=AnalysisConfig(sensitivity=None)
        )
    with pytest.raises(ConfigError, match="no G2LSTM"):
        analyze_models({"a": torch.nn.Linear(2, 2)}, batches, forward, tmp_path)


def test_batch_source_replays_iterators_and_caps() -> None:
    src = BatchSource(iter(range(10)), max_batches=3)
    assert list(src) == [0, 1, 2] == list(src)
    assert list(BatchSource(lambda: range(5), 2)) == [0, 1]
    assert list(BatchSource([1, 2, 3])) == [1, 2, 3]
    with pytest.raises(ConfigError):
        BatchSource([1], max_batches=0)


def test_report_refuses_missing_files_and_sentence_wording(tmp_path: Path) -> None:
    with pytest.raises(G2LSTMError, match="does not exist"):
        write_report(tmp_path, [ReportSection("x", "s", tmp_path / "missing.png")])
    text = polarisation_sentence(
        {"G2-LSTM": {"forget": 0.712, "input": 0.5}, "LSTM": {"forget": 0.14, "input": 0.2}}
    )
    assert text.startswith("G2-LSTM: 71.2% of forget and 50.0% of input gates are near 0 or 1")
    assert "14.0% and 20.0% for LSTM" in text
