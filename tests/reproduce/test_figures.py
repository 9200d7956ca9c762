"""The report's figures: written as PNGs at the size asked, empty input drawn without a
legend warning, and a symlink planted at the output replaced rather than followed."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from g2lstm.reproduce.figures import plot_compression, plot_learning_curves, plot_near_binary

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"

CURVES = {"PTB": {"lstm": [[{"step": 10, "ppl": 300.0, "valid_ppl": 250.0},
                            {"step": 20, "ppl": 200.0, "valid_ppl": 180.0}]],
                  "g2": [[{"step": 10, "ppl": 310.0, "valid_ppl": 240.0}]]}}  # fmt: skip
TABLES = {"PTB": {"lstm": {"round": [1.0, 1.5], "svd_low": [8.0, 9.0]}, "g2": {"round": [0.2]}}}
FRACTIONS = {"PTB": {"lstm": {"input": [0.1, 0.2], "forget": [0.3]}, "g2": {"input": [0.6]}}}


def _draw(name: str, path: Path) -> Path:
    if name == "curves":
        return plot_learning_curves(CURVES, path)
    if name == "compression":
        return plot_compression(TABLES, path, ylabels={"PTB": "Δ perplexity"})
    return plot_near_binary(FRACTIONS, path)


@pytest.mark.parametrize("name", ["curves", "compression", "near"])
def test_each_figure_is_a_png(tmp_path: Path, name: str) -> None:
    path = _draw(name, tmp_path / "sub" / f"{name}.png")
    assert path.read_bytes().startswith(PNG)


@pytest.mark.parametrize("name", ["curves", "compression", "near"])
def test_a_planted_symlink_is_replaced_not_followed(tmp_path: Path, name: str) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (tmp_path / "figs").mkdir()
    path = tmp_path / "figs" / f"{name}.png"
    path.symlink_to(outside)
    _draw(name, path)
    assert outside.read_text() == "keep me"
    assert not path.is_symlink() and path.read_bytes().startswith(PNG)


def test_nothing_to_draw_gives_a_figure_and_no_warning(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = plot_learning_curves({"PTB": {"lstm": [[]]}}, tmp_path / "empty.png")
    assert path.read_bytes().startswith(PNG)
