"""Token classes and per-token gate statistics from hand-made traces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from g2lstm.analysis import FUNCTION_WORDS, TokenGateStats, position_means, token_class
from g2lstm.analysis.tokens import function_word_group
from g2lstm.errors import ConfigError, ShapeError
from g2lstm.nn import GateTrace


@pytest.mark.parametrize(
    ("token", "cls"),
    [
        (".", "punctuation"),
        (",", "punctuation"),
        ("&quot;", "punctuation"),
        ("-lrb-", "punctuation"),
        ("$", "punctuation"),
        ("the", "function"),
        ("And", "function"),
        ("&apos;s", "function"),
        ("n't", "function"),
        ("is", "function"),
        ("economy", "content"),
        ("wrong", "content"),
        ("N", "content"),
        ("2002", "content"),
        ("<eos>", "special"),
        ("<unk>", "special"),
    ],
)
def test_token_class(token: str, cls: str) -> None:
    assert token_class(token) == cls


def test_function_word_groups() -> None:
    assert function_word_group("and") == "conjunction"
    assert function_word_group("The") == "determiner"
    assert function_word_group("economy") is None
    assert {"and", "or", "but", "of", "the", "is"} <= FUNCTION_WORDS


def _trace(values: torch.Tensor, mask: torch.Tensor | None = None) -> GateTrace:
    """A trace whose input/forget/output gates are values, 1 - values and values / 2."""
    if mask is None:
        mask = torch.ones(values.shape[:2], dtype=torch.bool)
    return GateTrace(0, 0, values, 1 - values, values / 2, mask)


def test_position_means_averages_hidden_units_over_valid_steps() -> None:
    v = torch.tensor([[[0.0, 1.0], [0.2, 0.2]], [[0.5, 0.7], [0.9, 0.9]], [[1.0, 1.0], [0, 0]]])
    mask = torch.tensor([[True, True], [True, True], [True, False]])
    tr = _trace(v, mask)
    np.testing.assert_allclose(position_means(tr, "input", 0), [0.5, 0.6, 1.0])
    np.testing.assert_allclose(position_means(tr, "forget", 1), [0.8, 0.1], rtol=1e-6)
    with pytest.raises(ShapeError):
        position_means(tr, "input", 2)


def test_token_gate_stats_by_token_and_class() -> None:
    itos = [".", "the", "economy", "<eos>"]
    ids = torch.tensor([[1, 2], [2, 0], [0, 3]])
    v = torch.tensor([[[0.1, 0.3], [0.6, 0.6]], [[0.8, 1.0], [0.0, 0.2]], [[0.4, 0.4], [1.0, 1.0]]])
    mask = torch.tensor([[True, True], [True, True], [True, False]])  # the last <eos> is padding
    stats = TokenGateStats(itos, gates=("input", "forget"))
    stats.bind(ids)
    stats("enc", _trace(v, mask))
    stats("other-module", _trace(torch.ones(3, 2, 2)))  # ignored: follows the first module seen
    assert stats.module == "enc"
    np.testing.assert_array_equal(stats.counts, [2, 1, 2, 0])
    means = stats.token_means("input")
    np.testing.assert_allclose(means[:3], [(0.1 + 0.4) / 2, 0.2, (0.6 + 0.9) / 2])
    assert np.isnan(means[3])
    cls = stats.class_stats("forget")
    assert cls["punctuation"]["count"] == 2
    assert cls["punctuation"]["mean"] == pytest.approx(1 - 0.25)
    assert cls["punctuation"]["std"] == pytest.approx(0.15)
    assert cls["function"]["mean"] == pytest.approx(0.8)
    assert cls["special"]["count"] == 0 and np.isnan(cls["special"]["mean"])
    low = stats.extremes("input", k=2, min_count=1)
    assert [r["token"] for r in low] == ["the", "."]
    high = stats.extremes("input", k=1, min_count=2, lowest=False)
    assert [r["token"] for r in high] == ["economy"]
    assert stats.to_dict()["tokens_seen"] == 5


def test_token_gate_stats_errors() -> None:
    stats = TokenGateStats(["a", "b"])
    tr = _trace(torch.full((2, 1, 3), 0.5))
    with pytest.raises(ConfigError, match="bind"):
        stats("m", tr)
    with pytest.raises(ShapeError, match="aligned"):
        stats.bind(torch.zeros(3, 1, dtype=torch.long))("m", tr)
    with pytest.raises(ShapeError, match="outside"):
        stats.bind(torch.tensor([[0], [5]]))("m", tr)
    with pytest.raises(ConfigError):
        TokenGateStats([])
