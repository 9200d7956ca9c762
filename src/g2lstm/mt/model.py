"""Attention encoder-decoder with G2-LSTM layers (paper §4.1.2, ``docs/paper.md`` §2.2).

Architecture (every LSTM is a :class:`~g2lstm.nn.G2LSTM` with the same gate options, so the
Gumbel-gate noise reaches the encoder and the decoder, as in the authors' code)::

    source ids (S, N) -> embedding -> dropout
      -> bidirectional G2LSTM (hidden H per direction)         (packed: padding is skipped)
      -> dropout -> (layers - 1) unidirectional G2LSTM layers  -> memory (S, N, M)
         M = 2H when layers == 1, else H
    decoder initial state: layer 0 <- bridge of the bidirectional layer's final states
        (h = tanh(W_h [h_fwd; h_bwd]), c = W_c [c_fwd; c_bwd]); layer k >= 1 <- encoder layer k
    target ids (T, N) -> embedding -> dropout [-> concat previous attentional vector when
        input_feeding] -> G2LSTM (layers, hidden H) -> h_t (T, N, H)
      -> attention(h_t, memory) -> context (T, N, M)
      -> attentional vector a_t = tanh(W [context; h_t]) (T, N, A) -> dropout
      -> output layer (A -> V), optionally tied to the target embedding (then A = emb)

Without input feeding (the default) the decoder LSTM runs over the whole target in one call in
training; with it, it runs step by step. Decoding always runs :meth:`Seq2Seq.step`, which
calls the *same* modules with ``T = 1`` and explicit states, so training and decoding compute
the same function (tested: teacher-forced steps equal the full-sequence decoder).

Gate noise is drawn once per call of an LSTM, so a decoder fed one step per call would turn
the per-sequence schedules (``mask_per_sequence``, ``noise_per_sequence``) into per-step
noise. The step-by-step teacher-forced decoder therefore runs inside the decoder LSTM's
``noise_scope()``, and so should a caller of :meth:`Seq2Seq.step` that decodes one batch with
noisy gates (:meth:`Seq2Seq.noise_scope`; greedy decoding in :mod:`g2lstm.mt.translate` does).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from g2lstm.errors import ShapeError
from g2lstm.mt.attention import Attention
from g2lstm.mt.config import ModelConfig
from g2lstm.nn import G2LSTM

__all__ = ["DecoderState", "Seq2Seq"]


@dataclass
class DecoderState:
    """Everything the decoder needs between steps; batch dimension ``N`` everywhere.

    Attributes:
        h, c: ``(layers, N, H)`` decoder LSTM states.
        feed: ``(N, A)`` previous attentional vector (input feeding) or ``None``.
        memory: ``(S, N, M)`` encoder states.
        keys: ``(N, S, K)`` precomputed attention keys.
        mask: ``(S, N)`` bool, True at real source positions.
        src_lengths: ``(N,)`` source lengths (for the maximum output length).
    """

    h: Tensor
    c: Tensor
    feed: Tensor | None
    memory: Tensor
    keys: Tensor
    mask: Tensor
    src_lengths: Tensor

    def select(self, index: Tensor) -> DecoderState:
        """The state of batch entries ``index`` (repeats allowed: beam expansion/reordering)."""
        src_index = index.to(self.src_lengths.device)
        index = index.to(self.h.device)
        return DecoderState(
            h=self.h.index_select(1, index),
            c=self.c.index_select(1, index),
            feed=None if self.feed is None else self.feed.index_select(0, index),
            memory=self.memory.index_select(1, index),
            keys=self.keys.index_select(0, index),
            mask=self.mask.index_select(1, index),
            src_lengths=self.src_lengths.index_select(0, src_index),
        )


def _between(config: ModelConfig, num_layers: int) -> float:
    """Dropout between the layers of a stack (none for a single layer, as nn.LSTM wants)."""
    return config.dropout if num_layers > 1 else 0.0


class Seq2Seq(nn.Module):
    """The encoder-decoder.

    Args:
        config: :class:`~g2lstm.mt.config.ModelConfig`.
        src_vocab_size, tgt_vocab_size: vocabulary sizes.
        pad_id: the padding id of both vocabularies (``Vocab.pad_id`` = 0).

    ``forward(src, src_lengths, tgt_in)`` returns logits ``(T, N, V)``; training uses
    :meth:`encode` + :meth:`decode` + :meth:`logits` on the non-pad positions only.
    """

    def __init__(
        self, config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int, pad_id: int = 0
    ) -> None:
        super().__init__()
        self.config = config
        self.pad_id = pad_id
        e, h, layers = config.emb, config.hidden, config.layers
        gate = config.gate_kwargs()
        self.src_embed = nn.Embedding(src_vocab_size, e, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, e, padding_idx=pad_id)
        self.enc_bi = G2LSTM(e, h, bidirectional=True, **gate)
        self.enc_rest = (
            G2LSTM(2 * h, h, num_layers=layers - 1, dropout=_between(config, layers - 1), **gate)
            if layers > 1
            else None
        )
        self.memory_dim = 2 * h if layers == 1 else h
        self.bridge_h = nn.Linear(2 * h, h)
        self.bridge_c = nn.Linear(2 * h, h)
        a = config.attn_dim
        dec_in = e + (a if config.input_feeding else 0)
        self.dec_rnn = G2LSTM(
            dec_in, h, num_layers=layers, dropout=_between(config, layers), **gate
        )
        self.attention = Attention(config.attention, h, self.memory_dim)
        self.combine = nn.Linear(self.memory_dim + h, a, bias=False)
        self.out = nn.Linear(a, tgt_vocab_size)
        self.drop = nn.Dropout(config.dropout)
        self.reset_parameters()
        if config.tie_embeddings:
            self.out.weight = self.tgt_embed.weight

    def reset_parameters(self) -> None:
        """Embeddings ``U(-0.1, 0.1)`` with a zero padding row, output bias 0; the LSTMs and
        the other linear layers keep their PyTorch initialisation."""
        for emb in (self.src_embed, self.tgt_embed):
            nn.init.uniform_(emb.weight, -0.1, 0.1)
            with torch.no_grad():
                emb.weight[self.pad_id].zero_()
        nn.init.zeros_(self.out.bias)

    @property
    def num_parameters(self) -> int:
        """Trainable parameters (tied weights counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ---------------------------------------------------------------------- encoder
    def encode(self, src: Tensor, src_lengths: Tensor) -> DecoderState:
        """Encode a padded batch and build the decoder's initial state.

        Args:
            src: ``(S, N)`` source ids, padded with ``pad_id``.
            src_lengths: ``(N,)`` true lengths (any order; CPU or same device).

        Returns:
            The initial :class:`DecoderState` (``feed`` is zeros with input feeding).
        """
        if src.dim() != 2:
            raise ShapeError(f"Seq2Seq.encode: src must be (S, N), got {tuple(src.shape)}")
        steps, batch = src.shape
        lengths_cpu = src_lengths.detach().to("cpu", torch.int64)
        if lengths_cpu.shape != (batch,) or int(lengths_cpu.min()) < 1:
            raise ShapeError(
                f"Seq2Seq.encode: src_lengths must be ({batch},) with values >= 1, got "
                f"{tuple(lengths_cpu.shape)}"
            )
        x = self.drop(self.src_embed(src))
        packed = pack_padded_sequence(x, lengths_cpu, enforce_sorted=False)
        out, (h_bi, c_bi) = self.enc_bi(packed)
        h_states = [torch.tanh(self.bridge_h(torch.cat([h_bi[0], h_bi[1]], dim=-1)))]
        c_states = [self.bridge_c(torch.cat([c_bi[0], c_bi[1]], dim=-1))]
        if self.enc_rest is not None:
            out = PackedSequence(
                self.drop(out.data), out.batch_sizes, out.sorted_indices, out.unsorted_indices
            )
            out, (h_r, c_r) = self.enc_rest(out)
            h_states += list(h_r.unbind(0))
            c_states += list(c_r.unbind(0))
        memory, _ = pad_packed_sequence(out, total_length=steps)  # (S, N, M), original order
        positions = torch.arange(steps).unsqueeze(1)
        mask = (positions < lengths_cpu.unsqueeze(0)).to(src.device)
        feed = None
        if self.config.input_feeding:
            feed = memory.new_zeros(batch, self.config.attn_dim)
        return DecoderState(
            h=torch.stack(h_states),
            c=torch.stack(c_states),
            feed=feed,
            memory=memory,
            keys=self.attention.keys(memory),
            mask=mask,
            src_lengths=lengths_cpu,
        )

    # ---------------------------------------------------------------------- decoder
    def _attend(self, out: Tensor, state: DecoderState) -> Tensor:
        """``(T, N, H)`` decoder outputs -> ``(T, N, A)`` attentional vectors (after dropout)."""
        context, _ = self.attention(out, state.keys, state.memory, state.mask)
        return self.drop(torch.tanh(self.combine(torch.cat([context, out], dim=-1))))

    def _step_features(self, emb_t: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """One decoder step from an embedded ``(N, E)`` input; returns ``(N, A)`` features."""
        x = emb_t if state.feed is None else torch.cat([emb_t, state.feed], dim=-1)
        out, (h, c) = self.dec_rnn(x.unsqueeze(0), (state.h, state.c))
        feat = self._attend(out, state)[0]
        new = DecoderState(
            h,
            c,
            feat if state.feed is not None else None,
            state.memory,
            state.keys,
            state.mask,
            state.src_lengths,
        )
        return feat, new

    def decode(self, tgt_in: Tensor, state: DecoderState) -> Tensor:
        """Teacher-forced decoder over a whole target.

        Args:
            tgt_in: ``(T, N)`` decoder input ids (``<s> y_1 .. y_{T-1}``, padded).
            state: from :meth:`encode`.

        Returns:
            ``(T, N, A)`` attentional vectors (feed them to :meth:`logits`).
        """
        emb = self.drop(self.tgt_embed(tgt_in))
        if not self.config.input_feeding:
            out, _ = self.dec_rnn(emb, (state.h, state.c))
            return self._attend(out, state)
        feats = []
        with self.noise_scope():  # one call per step: hold per-sequence noise across them
            for emb_t in emb.unbind(0):
                feat, state = self._step_features(emb_t, state)
                feats.append(feat)
        return torch.stack(feats)

    def noise_scope(self) -> AbstractContextManager[Any]:
        """Hold the decoder LSTM's per-sequence gate noise across calls of :meth:`step`.

        ``with model.noise_scope(): ...`` around the steps of one batch (same rows at every
        step, as in greedy decoding) gives each sequence the ``mask_per_sequence`` /
        ``noise_per_sequence`` noise it would get from one full-sequence call; ``per_step``
        noise and noise-free gates are unaffected (see ``G2LSTM.noise_scope``).
        """
        return self.dec_rnn.noise_scope()

    def decoder_noise_per_sequence(self) -> bool:
        """Whether the decoder LSTM draws per-sequence gate noise in the current mode."""
        g = self.dec_rnn.gate_config
        return g.noise_active(self.training) and g.noise_schedule.value != "per_step"

    def logits(self, features: Tensor) -> Tensor:
        """Output layer: ``(..., A)`` -> ``(..., V)`` unnormalised scores."""
        return self.out(features)

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """One decoding step.

        Args:
            tokens: ``(N,)`` previous output ids (``<s>`` at the first step).
            state: the current state.

        Returns:
            ``(log_probs (N, V), new_state)``.
        """
        emb_t = self.drop(self.tgt_embed(tokens))
        feat, new = self._step_features(emb_t, state)
        return F.log_softmax(self.logits(feat), dim=-1), new

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits ``(T, N, V)``."""
        return self.logits(self.decode(tgt_in, self.encode(src, src_lengths)))
