"""Regularisers of the AWD-LSTM recipe (Merity et al., 2017) that live outside the LSTM layer.

- :class:`LockedDropout` / :func:`locked_dropout`: variational dropout (Gal & Ghahramani,
  2016): one mask per sequence and feature, the same at every time step.
- :func:`embedding_dropout`: drops whole word types from the embedding matrix (every
  occurrence of a dropped word in the batch is zeroed), then rescales.
- :func:`activation_regularization` (AR) and :func:`temporal_activation_regularization` (TAR).

Weight drop (DropConnect on ``weight_hh``) is built into :class:`~g2lstm.nn.G2LSTM` as its
``weight_dropout`` option. Masks are drawn from ``generator`` when one is given, else from
torch's global generator. Needs torch alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from g2lstm.errors import ConfigError, ShapeError

__all__ = [
    "LockedDropout",
    "activation_regularization",
    "check_dropout",
    "embedding_dropout",
    "locked_dropout",
    "temporal_activation_regularization",
]


def check_dropout(p: float, name: str = "dropout") -> float:
    """Return ``p`` as a float if it is a probability in ``[0, 1)``, else raise ConfigError."""
    try:
        value = float(p)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name}={p!r} is not a number; expected a probability in [0, 1)"
        ) from None
    if not 0.0 <= value < 1.0:  # also rejects NaN
        raise ConfigError(f"{name}={p!r} is invalid; expected a probability in [0, 1)")
    return value


def locked_dropout(
    x: Tensor, p: float, training: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """Variational dropout over a time-major ``(T, B, H)`` tensor.

    One Bernoulli(1 - p) mask of shape ``(1, B, H)``, scaled by ``1 / (1 - p)``, multiplies
    every time step. Identity when ``p == 0`` or not ``training``.
    """
    if not training or p == 0.0:
        return x
    if x.dim() != 3:
        raise ShapeError(f"locked_dropout: expected a (T, B, H) tensor, got shape {tuple(x.shape)}")
    mask = x.new_empty(1, x.size(1), x.size(2)).bernoulli_(1.0 - p, generator=generator)
    return x * mask.div_(1.0 - p)


class LockedDropout(nn.Module):
    """Module form of :func:`locked_dropout` (AWD-LSTM ``LockedDropout``).

    Args:
        p: drop probability in ``[0, 1)``.

    Shape: input and output ``(T, B, H)``.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_dropout(p, "p")
        #: Optional generator for the masks (default: torch's global generator).
        self.generator: torch.Generator | None = None

    def forward(self, x: Tensor, p: float | None = None) -> Tensor:
        """Apply the mask; ``p`` overrides the module's probability for this call."""
        return locked_dropout(x, self.p if p is None else p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def embedding_dropout(
    embed: nn.Embedding,
    words: Tensor,
    p: float,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Embedding lookup with whole rows (word types) dropped (AWD-LSTM ``embedded_dropout``).

    Each row of ``embed.weight`` (``(V, E)``) is kept with probability ``1 - p`` and scaled by
    ``1 / (1 - p)``; ``words`` (any shape of ids) is then looked up in the masked matrix, so
    the output has shape ``words.shape + (E,)``. Identity lookup when ``p == 0`` or not
    ``training``. Gradients reach only the kept rows.
    """
    weight = embed.weight
    if training and p > 0.0:
        mask = weight.new_empty(weight.size(0), 1).bernoulli_(1.0 - p, generator=generator)
        weight = weight * mask.div_(1.0 - p)
    return F.embedding(
        words, weight, embed.padding_idx, embed.max_norm, embed.norm_type,
        embed.scale_grad_by_freq, embed.sparse,
    )  # fmt: skip


def activation_regularization(output: Tensor, alpha: float) -> Tensor:
    """AR: ``alpha * mean(output ** 2)`` over all elements (AWD applies it to the dropped
    output of the last layer)."""
    return alpha * output.pow(2).mean()


def temporal_activation_regularization(raw_output: Tensor, beta: float) -> Tensor:
    """TAR: ``beta * mean((h_{t+1} - h_t) ** 2)`` over a time-major ``(T, B, H)`` tensor (AWD
    applies it to the raw, undropped output of the last layer). Zero when ``T < 2``."""
    if raw_output.size(0) < 2:
        return raw_output.new_zeros(())
    return beta * (raw_output[1:] - raw_output[:-1]).pow(2).mean()
