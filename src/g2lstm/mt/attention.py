"""Attention over the encoder states, with a source padding mask.

Two scores, both computed from the decoder's top-layer output ``h_t`` (the placement of Luong
et al., 2015, which lets training run the decoder LSTM over the whole target at once):

- ``"luong"`` (multiplicative, Luong's "general"): ``score(h_t, h_s) = h_t^T W_a h_s``.
- ``"bahdanau"`` (additive, Bahdanau et al., 2015): ``score = v^T tanh(W_q h_t + W_k h_s)``.

Padded source positions get a score of ``-inf`` and therefore exactly zero weight.
Keys (``W_a h_s`` / ``W_k h_s``) depend only on the source, so :meth:`Attention.keys` computes
them once per batch and step-by-step decoding reuses them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from g2lstm.errors import ConfigError, ShapeError

__all__ = ["Attention"]


class Attention(nn.Module):
    """Luong ("general") or Bahdanau (additive) attention.

    Args:
        kind: ``"luong"`` or ``"bahdanau"``.
        query_dim: size of the decoder output ``h_t``.
        memory_dim: size of the encoder states ``h_s``.
        attn_hidden: inner size of the additive score (Bahdanau); default ``query_dim``.
    """

    def __init__(
        self, kind: str, query_dim: int, memory_dim: int, attn_hidden: int | None = None
    ) -> None:
        super().__init__()
        if kind not in ("luong", "bahdanau"):
            raise ConfigError(f"attention kind {kind!r} is not 'luong' or 'bahdanau'")
        self.kind = kind
        self.query_dim = query_dim
        self.memory_dim = memory_dim
        if kind == "luong":
            self.key_proj = nn.Linear(memory_dim, query_dim, bias=False)  # W_a
        else:
            inner = attn_hidden or query_dim
            self.key_proj = nn.Linear(memory_dim, inner)  # W_k (with the bias)
            self.query_proj = nn.Linear(query_dim, inner, bias=False)  # W_q
            self.v = nn.Linear(inner, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """Precompute the source side of the score.

        Args:
            memory: ``(S, N, memory_dim)`` encoder states.

        Returns:
            ``(N, S, K)`` keys, batch-first for ``bmm`` (``K = query_dim`` for Luong, the
            inner size for Bahdanau).
        """
        if memory.dim() != 3 or memory.shape[-1] != self.memory_dim:
            raise ShapeError(
                f"Attention.keys: memory must be (S, N, {self.memory_dim}), "
                f"got {tuple(memory.shape)}"
            )
        return self.key_proj(memory).transpose(0, 1)

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Attend from every query to the source.

        Args:
            query: ``(T, N, query_dim)`` decoder outputs.
            keys: ``(N, S, K)`` from :meth:`keys`.
            memory: ``(S, N, memory_dim)`` encoder states (the values).
            mask: ``(S, N)`` bool, True at real (non-pad) source positions; every column
                needs at least one True.

        Returns:
            ``context`` ``(T, N, memory_dim)`` and ``weights`` ``(N, T, S)`` (rows sum to 1,
            exactly 0 at padded positions).
        """
        if mask.shape != memory.shape[:2]:
            raise ShapeError(
                f"Attention: mask {tuple(mask.shape)} does not match memory "
                f"{tuple(memory.shape[:2])} (S, N)"
            )
        q = query.transpose(0, 1)  # (N, T, Hq)
        if self.kind == "luong":
            scores = torch.bmm(q, keys.transpose(1, 2))  # (N, T, S)
        else:
            qp = self.query_proj(q)  # (N, T, A)
            scores = self.v(torch.tanh(qp.unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)
        pad = ~mask.t().unsqueeze(1)  # (N, 1, S)
        scores = scores.masked_fill(pad, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        context = torch.bmm(weights, memory.transpose(0, 1))  # (N, T, Hm)
        return context.transpose(0, 1), weights
