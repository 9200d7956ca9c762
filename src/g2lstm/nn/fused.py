"""Noise-free passes through the vendor-fused LSTM kernel (oneDNN on CPU, cuDNN on GPU).

Without noise, the G2 gate ``sigmoid(a / tau)`` is a sigmoid of the noisy rows scaled by
``1 / tau`` (paper §3.2: sharpening only rescales the parameters). Scaling those rows of
``W_ih``, ``W_hh``, ``b_ih`` and ``b_hh`` inside autograd and calling ``torch._VF.lstm``
computes it exactly, gradients included. This serves soft-gate inference, the LSTM and
"Sharpened Sigmoid" baselines (``noise_p=0``) and :meth:`G2LSTM.to_lstm`.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["row_scale", "scale_gate_rows"]


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
