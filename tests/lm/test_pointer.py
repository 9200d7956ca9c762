"""Continuous cache pointer against a direct transcription of AWD-LSTM's loop."""

from __future__ import annotations

import pytest
import torch

from g2lstm.errors import ConfigError
from g2lstm.lm.pointer import PointerConfig, cache_pointer_log_probs


def _awd_reference(logits, hiddens, targets, window, theta, lambdah):
    """AWD-LSTM pointer.py, one position at a time, with one-hot next-word history."""
    vocab = logits.size(1)
    p_vocab = torch.softmax(logits, -1)
    out = []
    for g in range(len(targets)):
        p = p_vocab[g]
        if g > window:
            hist = hiddens[g - window : g]
            nxt = torch.nn.functional.one_hot(targets[g - window : g], vocab).float()
            attn = torch.softmax(theta * (hist @ hiddens[g]), 0)
            p = lambdah * (attn.unsqueeze(1) * nxt).sum(0) + (1 - lambdah) * p
        out.append(torch.log(p[targets[g]]))
    return torch.stack(out)


@pytest.mark.parametrize("chunk", [3, 7, 40])
def test_matches_reference_across_chunks(chunk: int) -> None:
    g = torch.Generator().manual_seed(0)
    steps, vocab, hid = 40, 6, 5
    logits = torch.randn(steps, vocab, generator=g, dtype=torch.float64)
    hiddens = torch.randn(steps, hid, generator=g, dtype=torch.float64)
    targets = torch.randint(0, vocab, (steps,), generator=g)
    cfg = PointerConfig(window=5, theta=0.7, lambdah=0.3)
    ref = _awd_reference(logits, hiddens, targets, 5, 0.7, 0.3)
    log_pv = torch.log_softmax(logits, -1).gather(1, targets.unsqueeze(1)).squeeze(1)
    history, parts = None, []
    for start in range(0, steps, chunk):
        sl = slice(start, start + chunk)
        out, history = cache_pointer_log_probs(
            log_pv[sl], hiddens[sl], targets[sl], cfg, history, offset=start
        )
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts), ref)


def test_repeated_word_gets_boosted_and_lambda_zero_is_identity() -> None:
    # a toy stream where the target always equals the word that followed the same hidden state
    hiddens = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(6, 1)
    targets = torch.tensor([3, 4]).repeat(6)
    log_pv = torch.full((12,), torch.log(torch.tensor(0.1)).item())
    out, _ = cache_pointer_log_probs(log_pv, hiddens, targets, PointerConfig(2, 5.0, 0.5))
    assert torch.equal(out[:3], log_pv[:3])  # cache not full yet
    assert (out[3:] > log_pv[3:]).all()
    same, _ = cache_pointer_log_probs(log_pv, hiddens, targets, PointerConfig(2, 5.0, 0.0))
    torch.testing.assert_close(same, log_pv)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="window"):
        PointerConfig(window=0)
    with pytest.raises(ConfigError, match="lambdah"):
        PointerConfig(lambdah=1.5)
