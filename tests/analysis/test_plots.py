"""Figures: valid PNGs of the expected size, and CSV/JSON holding exactly the plotted numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")

from g2lstm.analysis import (
    GateHeatmap,
    GateHistogram,
    heatmap_from_traces,
    plot_class_stats,
    plot_gate_histograms,
    plot_hard_gates,
    plot_heatmap,
    plot_sensitivity,
)
from g2lstm.analysis.heatmap import heatmap_figsize
from g2lstm.analysis.plots import write_json
from g2lstm.errors import ConfigError, ShapeError
from g2lstm.nn import GateTrace

DPI = 40


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_histogram_figure_size_and_numbers(tmp_path: Path, read_png_size) -> None:
    g = torch.Generator().manual_seed(0)
    hists = {
        name: {
            gate: GateHistogram().update(torch.rand(500, generator=g) ** p)
            for gate in ("input", "forget")
        }
        for name, p in (("G2-LSTM", 4.0), ("LSTM", 1.0))
    }
    paths = plot_gate_histograms({"layer 0": hists}, tmp_path / "hist", dpi=DPI)
    assert set(paths) == {"png", "csv", "json"} and all(p.is_file() for p in paths.values())
    assert read_png_size(paths["png"]) == (int(4.2 * 2 * DPI), int(3.2 * DPI))
    rows = _read_csv(paths["csv"])
    assert len(rows) == 2 * 2 * 10
    for r in rows:
        h = hists[r["model"]][r["gate"]]
        k = round(float(r["bin_lo"]) * 10)
        assert float(r["fraction"]) == pytest.approx(h.fractions()[k], abs=1e-12)
        assert float(r["count"]) == h.counts[k]
    js = json.loads(paths["json"].read_text())
    assert js["layer 0"]["LSTM"]["forget"]["counts"] == hists["LSTM"]["forget"].counts.tolist()


def _hand_trace() -> GateTrace:
    inp = torch.tensor(
        [[[0.0, 0.2], [1.0, 1.0]], [[0.5, 0.7], [0.0, 0.0]], [[1.0, 0.9], [0.3, 0.3]]]
    )
    forget = torch.tensor(
        [[[1.0, 1.0], [0.0, 0.5]], [[0.1, 0.3], [0.2, 0.2]], [[0.0, 0.0], [0, 0]]]
    )
    return GateTrace(0, 0, inp, forget, inp / 2, torch.ones(3, 2, dtype=torch.bool))


def test_heatmap_of_a_hand_made_trace(tmp_path: Path, read_png_size) -> None:
    tokens = ["the", "economy", "."]
    heat = heatmap_from_traces({"G2": _hand_trace()}, tokens, ("input", "forget"))
    expected = np.array([[0.1, 0.6, 0.95], [1.0, 0.2, 0.0]])
    assert heat.rows == ["G2 input", "G2 forget"]
    np.testing.assert_allclose(heat.values, expected, rtol=1e-6)
    paths = plot_heatmap(heat, tmp_path / "heat", dpi=DPI)
    w, h = heatmap_figsize(heat)
    assert read_png_size(paths["png"]) == (int(w * DPI), int(h * DPI))
    rows = _read_csv(paths["csv"])
    assert [r["token"] for r in rows[:3]] == tokens
    got = np.array([float(r["value"]) for r in rows]).reshape(2, 3)
    np.testing.assert_array_equal(got, heat.values)  # CSV repr round-trips float64 exactly
    js = json.loads(paths["json"].read_text())
    assert js["values"] == heat.values.tolist() and js["tokens"] == tokens
    # second sequence of the batch
    other = heatmap_from_traces({"G2": _hand_trace()}, ["a", "b", "c"], ("forget",), batch_index=1)
    np.testing.assert_allclose(other.values, [[0.25, 0.2, 0.0]], rtol=1e-6)


def test_heatmap_validation() -> None:
    with pytest.raises(ShapeError, match="tokens"):
        heatmap_from_traces({"G2": _hand_trace()}, ["only", "two"])
    with pytest.raises(ShapeError):
        GateHeatmap(["a"], ["r1", "r2"], np.zeros((1, 1)))
    with pytest.raises(ConfigError):
        GateHeatmap(["a"], ["r"], np.array([[1.5]]))


def test_class_sensitivity_and_hard_gate_figures(tmp_path: Path, read_png_size) -> None:
    cls = {
        m: {
            "forget": {
                c: {"mean": v, "std": 0.1, "count": 3.0}
                for c, v in (("punctuation", 0.2), ("function", 0.3), ("content", 0.8))
            }
        }
        for m in ("G2", "LSTM")
    }
    p = plot_class_stats(cls, tmp_path / "cls", dpi=DPI)
    assert read_png_size(p["png"]) == (int(max(4.0, 0.9 * 3 + 1.4) * DPI), int(3.6 * DPI))
    assert len(_read_csv(p["csv"])) == 2 * 3
    sens = {
        m: [
            {"target": t, "sigma": s, "gate": g, "mean_abs_delta": s * k, "delta_loss": s}
            for t in ("inputs", "weights")
            for s in (0.0, 0.1, 0.3)
            for g in ("input", "forget")
        ]
        for m, k in (("G2", 0.1), ("LSTM", 0.5))
    }
    p = plot_sensitivity(sens, tmp_path / "sens", dpi=DPI)
    assert read_png_size(p["png"]) == (int(4.6 * 2 * DPI), int(6.4 * DPI))
    rows = _read_csv(p["csv"])
    assert len(rows) == 2 * 2 * 2 * 2 and all(float(r["sigma"]) > 0 for r in rows)
    hard = {"G2": {"soft": 60.0, "hard": 64.0}, "LSTM": {"soft": 58.0, "hard": 5000.0}}
    p = plot_hard_gates(hard, tmp_path / "hard", metric="perplexity", dpi=DPI)
    read_png_size(p["png"])
    assert {(r["model"], r["mode"]) for r in _read_csv(p["csv"])} == {
        (m, k) for m in hard for k in ("soft", "hard")
    }


def test_write_json_is_strict(tmp_path: Path) -> None:
    path = write_json(tmp_path / "x.json", {"a": float("nan"), "b": np.float32(0.5), "c": [np.inf]})
    assert json.loads(path.read_text()) == {"a": None, "b": 0.5, "c": [None]}
