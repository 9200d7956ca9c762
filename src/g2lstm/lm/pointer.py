"""Continuous cache pointer (Grave et al., 2016), as in AWD-LSTM's ``pointer.py``.

The model reads the text as one stream (batch 1). At position ``g`` the cache holds the last
``window`` pairs ``(h_j, y_j)``: the last layer's output ``h_j`` at an earlier position and the
word ``y_j`` that followed it. The pointer distribution is
``p_ptr(w) = sum_j softmax_j(theta * h_j . h_g) [y_j = w]`` and the prediction is
``(1 - lambdah) * p_vocab + lambdah * p_ptr``. As in AWD-LSTM the pointer is used only once
the cache is full (``g > window``); earlier positions use ``p_vocab`` alone.

Only the target's probability is needed, so nothing of vocabulary size is materialised
beyond the softmax: ``p_ptr(y_g) = sum_j a_gj [y_j = y_g]``, computed for a chunk of
positions at once against the chunk plus the ``window`` positions before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from g2lstm.errors import ConfigError

__all__ = ["PointerConfig", "cache_pointer_log_probs"]


@dataclass(frozen=True)
class PointerConfig:
    """Cache-pointer settings (defaults: AWD-LSTM's PTB recipe, window 500, theta 1,
    lambda 0.1). ``bptt``: segment length of the evaluation pass."""

    window: int = 500
    theta: float = 1.0
    lambdah: float = 0.1
    bptt: int = 500

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ConfigError(f"pointer window={self.window!r} must be an integer >= 1")
        if isinstance(self.bptt, bool) or not isinstance(self.bptt, int) or self.bptt < 1:
            raise ConfigError(f"pointer bptt={self.bptt!r} must be an integer >= 1")
        if not math.isfinite(self.theta) or self.theta < 0:
            raise ConfigError(f"pointer theta={self.theta!r} must be a finite number >= 0")
        if not 0.0 <= self.lambdah <= 1.0:
            raise ConfigError(f"pointer lambdah={self.lambdah!r} must lie in [0, 1]")


def cache_pointer_log_probs(
    log_p_vocab: Tensor,
    hiddens: Tensor,
    targets: Tensor,
    config: PointerConfig,
    history: tuple[Tensor, Tensor] | None = None,
    offset: int = 0,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Log-probability of each target under the cache-mixed distribution.

    Args:
        log_p_vocab: ``(T,)`` the model's log-probability of each target.
        hiddens: ``(T, H)`` last-layer outputs at those positions.
        targets: ``(T,)`` target ids.
        config: window, theta and lambda.
        history: ``(h, y)`` of up to ``window`` earlier positions, ``(W, H)`` and ``(W,)``,
            as returned by the previous call (None at the start of the text).
        offset: global position of the first of the ``T`` positions (number of earlier
            positions), which decides when the cache is full.

    Returns:
        ``(log_probs (T,), new_history)``.
    """
    h_hist, y_hist = (
        history
        if history is not None
        else (hiddens.new_zeros(0, hiddens.size(1)), targets.new_zeros(0))
    )
    keys = torch.cat([h_hist, hiddens])  # (W' + T, H), position j in global order
    words = torch.cat([y_hist, targets])
    steps, n_hist = hiddens.size(0), h_hist.size(0)
    scores = config.theta * (hiddens @ keys.t())  # (T, W' + T)
    # position t (row) may attend to columns n_hist + t - window .. n_hist + t - 1
    col = torch.arange(keys.size(0), device=keys.device).unsqueeze(0)
    row = torch.arange(steps, device=keys.device).unsqueeze(1) + n_hist
    allowed = (col < row) & (col >= row - config.window)
    scores = scores.masked_fill(~allowed, float("-inf"))
    attn = torch.softmax(scores, dim=1).nan_to_num(0.0)
    same = words.unsqueeze(0) == targets.unsqueeze(1)  # (T, W' + T)
    p_ptr = (attn * same).sum(dim=1)
    use = (torch.arange(steps, device=keys.device) + offset) > config.window
    p_vocab = log_p_vocab.exp()
    mixed = (1.0 - config.lambdah) * p_vocab + config.lambdah * p_ptr
    out = torch.where(use, mixed.log(), log_p_vocab)
    new_history = (keys[-config.window :].detach(), words[-config.window :])
    return out, new_history


def vocab_log_probs(logits: Tensor, targets: Tensor) -> Tensor:
    """``log softmax(logits)[target]`` per position; ``logits`` ``(T, V)``, ``targets`` ``(T,)``."""
    return -F.cross_entropy(logits, targets, reduction="none")
