"""The AWD-LSTM word language model (Merity et al. 2017, ``model.py``) on G2-LSTM layers.

Embedding (with embedding dropout) -> input dropout -> ``nlayers`` single-layer
:class:`~g2lstm.nn.G2LSTM` (weight drop on ``weight_hh``, dropout between layers) -> output
dropout -> linear decoder, tied to the embedding when ``tie_weights`` (the last layer then
has ``emsize`` units). The same code serves the LSTM baseline, Sharpened Sigmoid and
G2-LSTM: only the gate options differ (:data:`g2lstm.lm.config.CELLS`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from g2lstm.errors import ConfigError, ShapeError
from g2lstm.lm.config import ModelConfig
from g2lstm.nn import G2LSTM
from g2lstm.nn.regularizers import embedding_dropout, locked_dropout

__all__ = ["Hidden", "LMOutput", "RNNLanguageModel", "detach_hidden"]

#: One ``(h, c)`` pair per layer, each ``(1, B, H_layer)``.
Hidden = list[tuple[Tensor, Tensor]]


class LMOutput(NamedTuple):
    """Result of :meth:`RNNLanguageModel.forward`.

    Attributes:
        logits: ``(T, B, V)`` unnormalised next-word scores.
        hidden: the new state, one ``(h, c)`` per layer.
        raw_outputs: per layer, its ``(T, B, H_layer)`` output before dropout (TAR, cache).
        dropped_outputs: per layer, the output after the dropout that follows it (AR).
    """

    logits: Tensor
    hidden: Hidden
    raw_outputs: list[Tensor]
    dropped_outputs: list[Tensor]


def detach_hidden(hidden: Hidden) -> Hidden:
    """Cut the graph between truncated-BPTT segments (AWD ``repackage_hidden``)."""
    return [(h.detach(), c.detach()) for h, c in hidden]


class RNNLanguageModel(nn.Module):
    """AWD-LSTM language model.

    Args:
        config: a :class:`~g2lstm.lm.config.ModelConfig` with ``vocab_size > 0``.

    Shapes: ``input`` ``(T, B)`` int64 word ids; logits ``(T, B, V)``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.vocab_size < 1:
            raise ConfigError("model.vocab_size must be set (> 0) before building the model")
        self.config = config
        c = config
        self.encoder = nn.Embedding(c.vocab_size, c.emsize)
        sizes = [c.emsize] + [c.nhid] * (c.nlayers - 1) + [c.emsize if c.tie_weights else c.nhid]
        self.rnns = nn.ModuleList(
            G2LSTM(sizes[k], sizes[k + 1], weight_dropout=c.wdrop, **c.gates.layer_options())
            for k in range(c.nlayers)
        )
        self.decoder = nn.Linear(sizes[-1], c.vocab_size)
        if c.tie_weights:
            self.decoder.weight = self.encoder.weight
        self.reset_parameters()

    @property
    def layer_sizes(self) -> list[int]:
        """Hidden size of every layer."""
        return [rnn.hidden_size for rnn in self.rnns]

    def reset_parameters(self) -> None:
        """AWD init (embedding ``U(-r, r)``, decoder bias 0, LSTM default) or all ``U(-r, r)``."""
        r = self.config.init_range
        with torch.no_grad():
            if self.config.init == "uniform":
                for p in self.parameters():
                    p.uniform_(-r, r)
            else:
                for rnn in self.rnns:
                    rnn.reset_parameters()
                self.encoder.weight.uniform_(-r, r)
                if not self.config.tie_weights:
                    self.decoder.weight.uniform_(-r, r)
                self.decoder.bias.zero_()

    def set_generator(self, generator: torch.Generator | None) -> None:
        """Draw the gate noise of every layer from ``generator`` (None: global RNG)."""
        for rnn in self.rnns:
            rnn.generator = generator

    def init_hidden(self, batch_size: int) -> Hidden:
        """Zero state for ``batch_size`` streams, on the model's device and dtype."""
        w = self.encoder.weight
        return [
            (w.new_zeros(1, batch_size, h), w.new_zeros(1, batch_size, h)) for h in self.layer_sizes
        ]

    def _dropout(self, x: Tensor, p: float) -> Tensor:
        if self.config.locked_dropout:
            return locked_dropout(x, p, self.training)
        return F.dropout(x, p, self.training)

    def forward(self, input: Tensor, hidden: Hidden | None = None) -> LMOutput:
        """Run ``input`` ``(T, B)`` from ``hidden`` (zeros if None); see :class:`LMOutput`."""
        if input.dim() != 2:
            raise ShapeError(f"RNNLanguageModel: expected input (T, B), got {tuple(input.shape)}")
        if hidden is None:
            hidden = self.init_hidden(input.size(1))
        c = self.config
        emb = embedding_dropout(self.encoder, input, c.dropoute, self.training)
        x = self._dropout(emb, c.dropouti)
        new_hidden: Hidden = []
        raw_outputs: list[Tensor] = []
        dropped_outputs: list[Tensor] = []
        last = len(self.rnns) - 1
        for k, rnn in enumerate(self.rnns):
            x, state = rnn(x, hidden[k])
            new_hidden.append(state)
            raw_outputs.append(x)
            x = self._dropout(x, c.dropout if k == last else c.dropouth)
            dropped_outputs.append(x)
        logits = self.decoder(x)
        return LMOutput(logits, new_hidden, raw_outputs, dropped_outputs)

    def num_parameters(self) -> int:
        """Number of distinct trainable scalars (tied weights counted once)."""
        return sum(p.numel() for p in self.parameters())
