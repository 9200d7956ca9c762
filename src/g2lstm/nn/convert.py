"""Weight converters: ``nn.LSTM`` <-> ``G2LSTM``, and the authors' PyTorch layout.

``nn.LSTM`` and ``G2LSTM`` share names, shapes and the i, f, g, o gate order, so converting
is copying. Folding the temperature (``to_lstm``) uses paper §3.2: ``sigmoid(a / tau)`` is a
sigmoid of weights and biases divided by ``tau``.

The authors' cell (``zhuohan123/g2-lstm``, ``language-modeling/g2_lstm.py``) stores per layer
``cell_{k}.weight_ih`` of shape ``(H_in, 4H)``, ``cell_{k}.weight_hh`` ``(H, 4H)`` and one
``cell_{k}.bias`` ``(4H,)``, with the gate blocks in order **f, i, o, g**.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from g2lstm.errors import CheckpointError
from g2lstm.nn.config import EvalTemperature
from g2lstm.nn.fused import scale_gate_rows

if TYPE_CHECKING:
    from g2lstm.nn.cell import G2LSTMCell
    from g2lstm.nn.lstm import G2LSTM

__all__ = [
    "authors_cell_weights",
    "cell_from_g2",
    "from_authors",
    "g2_cell_from_cell",
    "g2_from_lstm",
    "lstm_from_g2",
]

#: Our gate k (i, f, g, o) is the authors' block AUTHORS_BLOCK[k] (their order f, i, o, g).
AUTHORS_BLOCK = (1, 0, 3, 2)


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


def _reorder_rows(w: Tensor, hidden: int) -> Tensor:
    blocks = w.reshape(4, hidden, *w.shape[1:])
    return torch.cat([blocks[AUTHORS_BLOCK[k]] for k in range(4)], dim=0)


def authors_cell_weights(
    weight_ih: Tensor, weight_hh: Tensor, bias: Tensor | None, layer: int = 0
) -> dict[str, Tensor]:
    """Convert one authors' cell to ``nn.LSTM`` names for layer ``layer``.

    Args:
        weight_ih: ``(H_in, 4H)``, blocks f, i, o, g.
        weight_hh: ``(H, 4H)``.
        bias: ``(4H,)`` or ``None``. It becomes ``bias_ih``; ``bias_hh`` is zero.

    Returns:
        ``{"weight_ih_l{k}": (4H, H_in), "weight_hh_l{k}": (4H, H), "bias_ih_l{k}",
        "bias_hh_l{k}"}`` in gate order i, f, g, o.
    """
    hidden = weight_hh.shape[0]
    if weight_ih.shape[1] != 4 * hidden or weight_hh.shape[1] != 4 * hidden:
        raise CheckpointError(
            f"authors' cell {layer}: expected weight_ih (H_in, 4H) and weight_hh (H, 4H) with "
            f"4H = {4 * hidden}, got {tuple(weight_ih.shape)} and {tuple(weight_hh.shape)}"
        )
    out = {
        f"weight_ih_l{layer}": _reorder_rows(weight_ih.t().contiguous(), hidden),
        f"weight_hh_l{layer}": _reorder_rows(weight_hh.t().contiguous(), hidden),
    }
    if bias is not None:
        out[f"bias_ih_l{layer}"] = _reorder_rows(bias, hidden)
        out[f"bias_hh_l{layer}"] = torch.zeros_like(bias)
    return out


def from_authors(
    state_dict: Mapping[str, Tensor], prefix: str = "", **g2_options: object
) -> G2LSTM:
    """A :class:`G2LSTM` holding the weights of the authors' ``LSTM`` module.

    Args:
        state_dict: the authors' module state dict, with ``{prefix}cell_{k}.weight_ih`` ...
        prefix: key prefix in front of ``cell_{k}.`` (e.g. ``"rnns.0."``).
        g2_options: G2 keyword arguments. Map the authors' flags as follows: ``noise_p =
            gumbel_noise_p``; ``tau = divide_temp`` when they used ``--divide-temp`` (the
            temperature then also acts at test time, as ours does), else
            ``tau = gumbel_noise_t``. With ``gumbel_noise_t != 1`` and no ``divide_temp``
            their eval gate is ``sigmoid(a)``: use ``tau=1`` for an exact eval copy.
    """
    from g2lstm.nn.lstm import G2LSTM

    pat = re.compile(re.escape(prefix) + r"cell_(\d+)\.weight_ih$")
    layers = sorted(int(m.group(1)) for k in state_dict if (m := pat.match(k)))
    if not layers or layers != list(range(len(layers))):
        raise CheckpointError(
            f"no authors' G2-LSTM cells found under prefix {prefix!r}: expected keys "
            f"'{prefix}cell_0.weight_ih', '{prefix}cell_0.weight_hh', '{prefix}cell_0.bias'"
        )
    state: dict[str, Tensor] = {}
    for k in layers:
        key = f"{prefix}cell_{k}."
        state.update(
            authors_cell_weights(
                state_dict[key + "weight_ih"],
                state_dict[key + "weight_hh"],
                state_dict.get(key + "bias"),
                layer=k,
            )
        )
    w0 = state["weight_ih_l0"]
    hidden = w0.shape[0] // 4
    for k in layers[1:]:
        if state[f"weight_ih_l{k}"].shape[1] != hidden:
            raise CheckpointError(
                f"authors' cell {k} takes inputs of size {state[f'weight_ih_l{k}'].shape[1]}, "
                f"but a stacked G2LSTM needs {hidden}; convert each cell as its own layer"
            )
    has_bias = "bias_ih_l0" in state
    g2 = G2LSTM(
        w0.shape[1], hidden, len(layers), bias=has_bias, dtype=w0.dtype, device=w0.device,
        **g2_options,  # type: ignore[arg-type]
    )  # fmt: skip
    g2.load_state_dict(state)
    return g2
