"""The reference G2-LSTM recurrence: a readable loop, the ground truth for every fast path.

One layer and one direction at a time. The input projection ``x W_ih^T + b`` is computed once
for all steps by the caller; the loop does the recurrent matmul, the gates and the state
update of each step (paper Eqs. 11-16, see :mod:`g2lstm.nn.functional`).

Variable lengths (packed input) are handled with a mask: a sequence whose length is ``<= t``
keeps its state at step ``t`` and outputs zeros, so ``h_n``/``c_n`` are the states at each
sequence's last valid step, as in ``torch.nn.LSTM``. Reverse directions are run by the caller
on sequences reversed within their lengths (:func:`reverse_padded`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from g2lstm.nn.functional import GateSpec, lstm_step

__all__ = [
    "RecurrenceOutput",
    "length_mask",
    "recurrence_reference",
    "repack_like",
    "reverse_padded",
]


@dataclass
class RecurrenceOutput:
    """Result of one layer-direction.

    Attributes:
        output: ``(T, N, H_out)``, zero at padded steps.
        h_n: ``(N, H_out)`` and ``c_n``: ``(N, H)``, states at each sequence's last valid step.
        gates: ``(i, f, o)`` each ``(T, N, H)`` (zero at padded steps) when recorded.
    """

    output: Tensor
    h_n: Tensor
    c_n: Tensor
    gates: tuple[Tensor, Tensor, Tensor] | None = None


def length_mask(lengths: Tensor, steps: int, device: torch.device) -> Tensor:
    """``(T, N)`` bool mask, True where step ``t`` < the sequence's length."""
    t = torch.arange(steps, device=device).unsqueeze(1)
    return t < lengths.to(device).unsqueeze(0)


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of a time-major ``(T, N, *)`` tensor within its length.

    Padded steps (``t >= length``) stay where they are. With ``lengths=None`` the whole time
    axis is flipped. Applying it twice gives back ``x``.
    """
    if lengths is None:
        return x.flip(0)
    steps, batch = x.shape[0], x.shape[1]
    t = torch.arange(steps, device=x.device).unsqueeze(1).expand(steps, batch)
    lens = lengths.to(x.device).unsqueeze(0)
    idx = torch.where(t < lens, lens - 1 - t, t)
    idx = idx.view(steps, batch, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, idx)


def recurrence_reference(
    xw: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    w_hr: Tensor | None,
    spec: GateSpec,
    noise: Tensor | None = None,
    lengths: Tensor | None = None,
    record: bool = False,
) -> RecurrenceOutput:
    """Run one layer-direction of G2-LSTM step by step.

    Args:
        xw: ``(T, N, 4H)`` input projection plus biases, in processing order.
        h0: ``(N, H_out)``; c0: ``(N, H)`` initial states.
        w_hh: ``(4H, H_out)``; w_hr: ``(H_out, H)`` or ``None``.
        spec: resolved gate behaviour.
        noise: ``(T, N, len(spec.rows) * H)`` gate noise (step ``t`` of the loop uses
            ``noise[t]``) or ``None`` for no noise.
        lengths: ``(N,)`` valid lengths, or ``None`` when every sequence has ``T`` steps.
        record: also return the gate values.

    Returns:
        :class:`RecurrenceOutput`.
    """
    steps = xw.shape[0]
    h, c = h0, c0
    mask = None if lengths is None else length_mask(lengths, steps, xw.device).unsqueeze(-1)
    outs: list[Tensor] = []
    trace: list[tuple[Tensor, Tensor, Tensor]] = []
    # unbind, not xw[t]: indexing inside autograd allocates a full-size gradient per step.
    xs = xw.unbind(0)
    ns = noise.unbind(0) if noise is not None else [None] * steps
    for t in range(steps):
        h_new, c_new, gates = lstm_step(xs[t], h, c, w_hh, w_hr, ns[t], spec)
        if mask is not None:
            m = mask[t]
            h = torch.where(m, h_new, h)
            c = torch.where(m, c_new, c)
            outs.append(h_new * m)
        else:
            h, c = h_new, c_new
            outs.append(h_new)
        if record:
            m_t = None if mask is None else mask[t]
            trace.append(tuple(g.detach() if m_t is None else g.detach() * m_t for g in gates))
    if outs:
        output = torch.stack(outs)
    else:
        output = xw.new_zeros(0, h0.shape[0], h0.shape[1])
    gates_out = None
    if record:
        if trace:
            gates_out = tuple(torch.stack(g) for g in zip(*trace))  # type: ignore[assignment]
        else:
            empty = xw.new_zeros(0, c0.shape[0], c0.shape[1])
            gates_out = (empty, empty, empty)
    return RecurrenceOutput(output, h, c, gates_out)  # type: ignore[arg-type]


def repack_like(x: Tensor, lengths: Tensor, like: PackedSequence) -> PackedSequence:
    """Padded ``(T, N, *)`` output in original order -> PackedSequence laid out as ``like``."""
    if like.sorted_indices is not None:
        x = x.index_select(1, like.sorted_indices)
        lengths = lengths.index_select(0, like.sorted_indices.cpu())
    data = pack_padded_sequence(x, lengths, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)
