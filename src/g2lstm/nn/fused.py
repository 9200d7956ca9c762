"""Noise-free passes through the vendor-fused LSTM kernel (oneDNN on CPU, cuDNN on GPU).

Without noise, the G2 gate ``sigmoid(a / tau)`` is a sigmoid of the noisy rows scaled by
``1 / tau`` (paper §3.2: sharpening only rescales the parameters). Scaling those rows of
``W_ih``, ``W_hh``, ``b_ih`` and ``b_hh`` inside autograd and calling ``torch._VF.lstm``
computes it exactly, gradients included. This serves soft-gate inference, the LSTM and
"Sharpened Sigmoid" baselines (``noise_p=0``) and :meth:`G2LSTM.to_lstm`.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

__all__ = ["fused_lstm_stack", "row_scale", "scale_gate_rows"]


def row_scale(hidden_size: int, rows: tuple[int, ...], factor: float, like: Tensor) -> Tensor:
    """``(4H,)`` vector equal to ``factor`` on the rows of gates ``rows`` and 1 elsewhere."""
    s = torch.ones(4, hidden_size, dtype=like.dtype, device=like.device)
    for k in rows:
        s[k] = factor
    return s.reshape(-1)


def scale_gate_rows(
    weights: list[Tensor], hidden_size: int, rows: tuple[int, ...], tau: float, has_bias: bool
) -> list[Tensor]:
    """Divide the ``rows`` gates of one layer-direction's fused weights by ``tau``.

    Args:
        weights: ``[w_ih, w_hh, (b_ih, b_hh), (w_hr)]`` as in ``nn.LSTM._flat_weights``.
        hidden_size: ``H``; rows: gate indices (0=i, 1=f, 3=o); tau: temperature.

    Returns:
        New list; differentiable with respect to the inputs. Unchanged when ``tau == 1``.
    """
    if tau == 1.0 or not rows:
        return list(weights)
    s = row_scale(hidden_size, rows, 1.0 / tau, weights[0])
    n_scaled = 4 if has_bias else 2
    out = [w * s.unsqueeze(1) if w.dim() == 2 else w * s for w in weights[:n_scaled]]
    return out + list(weights[n_scaled:])


def fused_lstm_stack(
    lstm: nn.LSTM,
    input: Tensor | PackedSequence,
    h0: Tensor,
    c0: Tensor,
    flat: list[Tensor],
    unbatched: bool,
) -> tuple[Tensor | PackedSequence, Tensor, Tensor]:
    """Run ``lstm``'s whole stack with the weights ``flat`` in one ``torch._VF.lstm`` call.

    Args:
        lstm: supplies the hyper-parameters (layers, bias, dropout, mode, layout).
        input: as ``nn.LSTM`` takes it (a 2-D unbatched input is handled with ``unbatched``).
        h0, c0: ``(D * num_layers, N, H_out)`` / ``(D * num_layers, N, H)`` in the caller's
            batch order (permuted here for a packed input, as ``nn.LSTM`` does).
        flat: weights in ``nn.LSTM._flat_weights`` order (e.g. with ``tau`` folded in).

    Returns:
        ``(output, h_n, c_n)`` exactly as ``nn.LSTM`` returns them (states still 3-D).
    """
    if torch.compiler.is_compiling():  # cannot trace warnings filters; never warns here
        return _vendor_call(lstm, input, h0, c0, flat, unbatched)
    with warnings.catch_warnings():
        # cuDNN warns when weights are not one flat buffer; scaled copies never are.
        warnings.filterwarnings("ignore", message=".*contiguous chunk of memory.*")
        return _vendor_call(lstm, input, h0, c0, flat, unbatched)


def _vendor_call(
    lstm: nn.LSTM,
    input: Tensor | PackedSequence,
    h0: Tensor,
    c0: Tensor,
    flat: list[Tensor],
    unbatched: bool,
) -> tuple[Tensor | PackedSequence, Tensor, Tensor]:
    """One ``torch._VF.lstm`` call (see :func:`fused_lstm_stack`)."""
    if isinstance(input, PackedSequence):
        idx = input.sorted_indices
        if idx is not None:
            h0, c0 = h0.index_select(1, idx), c0.index_select(1, idx)
        res = torch._VF.lstm(
            input.data, input.batch_sizes, (h0, c0), flat, lstm.bias,
            lstm.num_layers, float(lstm.dropout), lstm.training, lstm.bidirectional,
        )  # fmt: skip
        out = PackedSequence(
            res[0], input.batch_sizes, input.sorted_indices, input.unsorted_indices
        )
        h_n, c_n = res[1], res[2]
        if input.unsorted_indices is not None:
            h_n = h_n.index_select(1, input.unsorted_indices)
            c_n = c_n.index_select(1, input.unsorted_indices)
        return out, h_n, c_n
    batch_dim = 0 if lstm.batch_first else 1
    x = input.unsqueeze(batch_dim) if unbatched else input
    res = torch._VF.lstm(
        x, (h0, c0), flat, lstm.bias, lstm.num_layers, float(lstm.dropout),
        lstm.training, lstm.bidirectional, lstm.batch_first,
    )  # fmt: skip
    out_t = res[0].squeeze(batch_dim) if unbatched else res[0]
    return out_t, res[1], res[2]
