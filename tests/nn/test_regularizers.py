"""LockedDropout, embedding dropout, AR and TAR against their reference formulas."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from g2lstm.errors import ConfigError, ShapeError
from g2lstm.nn.regularizers import (
    LockedDropout,
    activation_regularization,
    check_dropout,
    embedding_dropout,
    locked_dropout,
    temporal_activation_regularization,
)


def test_locked_dropout_matches_formula_and_shares_mask_over_time() -> None:
    x = torch.randn(7, 3, 5)
    p = 0.4
    gen = torch.Generator().manual_seed(3)
    out = locked_dropout(x, p, True, gen)
    ref_mask = torch.empty(1, 3, 5).bernoulli_(1 - p, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, x * (ref_mask / (1 - p)))
    kept = out != 0  # the same mask at every step
    assert torch.equal(kept, kept[:1].expand_as(kept))
    torch.testing.assert_close(out[kept], x[kept] / (1 - p))


def test_locked_dropout_identity_in_eval_and_p0() -> None:
    x = torch.randn(4, 2, 3)
    module = LockedDropout(0.5).eval()
    assert module(x) is x
    assert locked_dropout(x, 0.0, True) is x


def test_locked_dropout_keeps_expectation() -> None:
    x = torch.ones(2, 400, 500)
    out = LockedDropout(0.3)(x)
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)


def test_locked_dropout_rejects_bad_input() -> None:
    with pytest.raises(ShapeError, match=r"\(T, B, H\)"):
        locked_dropout(torch.randn(3, 4), 0.5, True)
    with pytest.raises(ConfigError, match="p=1.0"):
        LockedDropout(1.0)
    with pytest.raises(ConfigError, match="dropouti"):
        check_dropout(-0.1, "dropouti")


def test_embedding_dropout_drops_whole_word_types() -> None:
    emb = nn.Embedding(20, 6)
    words = torch.randint(0, 20, (9, 4))
    p = 0.5
    out = embedding_dropout(emb, words, p, True, torch.Generator().manual_seed(1))
    mask = torch.empty(20, 1).bernoulli_(1 - p, generator=torch.Generator().manual_seed(1))
    ref = (emb.weight * mask / (1 - p))[words]
    torch.testing.assert_close(out, ref)
    # every occurrence of a word gets the same treatment
    for w in words.unique():
        rows = out[words == w]
        assert torch.equal(rows, rows[:1].expand_as(rows))


def test_embedding_dropout_eval_is_plain_lookup_and_grads_only_on_kept_rows() -> None:
    emb = nn.Embedding(10, 3)
    words = torch.arange(10).view(5, 2)
    assert torch.equal(embedding_dropout(emb, words, 0.5, training=False), emb(words))
    out = embedding_dropout(emb, words, 0.5, True, torch.Generator().manual_seed(0))
    out.sum().backward()
    dropped = (out == 0).all(-1).view(-1)
    assert torch.equal(emb.weight.grad[dropped], torch.zeros_like(emb.weight.grad[dropped]))


def test_ar_and_tar_formulas() -> None:
    h = torch.randn(6, 2, 4)
    assert activation_regularization(h, 2.0).item() == pytest.approx(2.0 * (h**2).mean().item())
    ref = sum(((h[t + 1] - h[t]) ** 2).sum() for t in range(5)) / (5 * 2 * 4)
    assert temporal_activation_regularization(h, 1.5).item() == pytest.approx(1.5 * ref.item())
    assert temporal_activation_regularization(h[:1], 1.0).item() == 0.0
