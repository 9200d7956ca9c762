"""Weight converters: ``nn.LSTM`` <-> ``G2LSTM`` and ``nn.LSTMCell`` <-> ``G2LSTMCell``.

``nn.LSTM`` and ``G2LSTM`` share names, shapes and the i, f, g, o gate order, so converting
is copying. Folding the temperature (``to_lstm``) uses paper §3.2: ``sigmoid(a / tau)`` is a
sigmoid of weights and biases divided by ``tau``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from g2lstm.nn.config import EvalTemperature
from g2lstm.nn.fused import scale_gate_rows

if TYPE_CHECKING:
    from g2lstm.nn.cell import G2LSTMCell
    from g2lstm.nn.lstm import G2LSTM

__all__ = ["cell_from_g2", "g2_cell_from_cell", "g2_from_lstm", "lstm_from_g2"]


def _hyper(lstm: nn.LSTM) -> dict[str, object]:
    p = next(lstm.parameters())
    return {
        "input_size": lstm.input_size,
        "hidden_size": lstm.hidden_size,
        "num_layers": lstm.num_layers,
        "bias": lstm.bias,
        "batch_first": lstm.batch_first,
        "dropout": float(lstm.dropout),
        "bidirectional": lstm.bidirectional,
        "proj_size": lstm.proj_size,
        "device": p.device,
        "dtype": p.dtype,
    }


def g2_from_lstm(cls: type[G2LSTM], lstm: nn.LSTM, **g2_options: object) -> G2LSTM:
    """Build ``cls`` with ``lstm``'s hyper-parameters and load a copy of its weights."""
    if not isinstance(lstm, nn.LSTM):
        raise TypeError(f"from_lstm expects a torch.nn.LSTM, got {type(lstm).__name__}")
    hyper = _hyper(lstm)
    if isinstance(lstm, cls) and not g2_options:
        g2_options = dict(lstm.gate_config.to_dict(), weight_dropout=lstm.weight_dropout)
    new = cls(**hyper, **g2_options)  # type: ignore[arg-type]
    new.load_state_dict(lstm.state_dict())
    return new


def lstm_from_g2(g2: G2LSTM) -> nn.LSTM:
    """``nn.LSTM`` equal to ``g2``'s soft-eval forward (tau folded into the noisy rows; with
    ``eval_temperature="drop"`` the weights are copied unscaled)."""
    lstm = nn.LSTM(**_hyper(g2))  # type: ignore[arg-type]
    cfg = g2.gate_config
    tau = _eval_tau(g2)
    state = {}
    with torch.no_grad():
        for layer in range(g2.num_layers):
            for d in range(g2.num_directions):
                names = g2._flat_weights_names
                per = len(names) // (g2.num_layers * g2.num_directions)
                start = (layer * g2.num_directions + d) * per
                ws = g2.direction_weights(layer, d)
                scaled = scale_gate_rows(ws, g2.hidden_size, cfg.gate_rows, tau, g2.bias)
                for name, w in zip(names[start : start + per], scaled):
                    state[name] = w.detach().clone()
    lstm.load_state_dict(state)
    lstm.train(g2.training)
    return lstm


def _eval_tau(g2: G2LSTM | G2LSTMCell) -> float:
    cfg = g2.gate_config
    return 1.0 if cfg.eval_temperature is EvalTemperature.DROP else cfg.tau


def g2_cell_from_cell(
    cls: type[G2LSTMCell], cell: nn.LSTMCell, **g2_options: object
) -> G2LSTMCell:
    """Build ``cls`` with ``cell``'s hyper-parameters and load a copy of its weights."""
    if not isinstance(cell, nn.LSTMCell):
        raise TypeError(f"from_lstm_cell expects a torch.nn.LSTMCell, got {type(cell).__name__}")
    p = cell.weight_ih
    if isinstance(cell, cls) and not g2_options:
        g2_options = dict(cell.gate_config.to_dict(), weight_dropout=cell.weight_dropout)
    new = cls(cell.input_size, cell.hidden_size, cell.bias, device=p.device, dtype=p.dtype,
              **g2_options)  # type: ignore[arg-type]  # fmt: skip
    new.load_state_dict(cell.state_dict())
    return new.train(cell.training)


def cell_from_g2(g2: G2LSTMCell) -> nn.LSTMCell:
    """``nn.LSTMCell`` equal to ``g2``'s soft-eval step (tau folded into the noisy rows)."""
    p = g2.weight_ih
    cell = nn.LSTMCell(g2.input_size, g2.hidden_size, g2.bias, device=p.device, dtype=p.dtype)
    ws = [g2.weight_ih, g2.weight_hh] + ([g2.bias_ih, g2.bias_hh] if g2.bias else [])
    with torch.no_grad():
        scaled = scale_gate_rows(ws, g2.hidden_size, g2.gate_config.gate_rows, _eval_tau(g2),
                                 g2.bias)  # fmt: skip
    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"][: len(ws)]
    cell.load_state_dict({n: w.detach().clone() for n, w in zip(names, scaled)})
    return cell.train(g2.training)
