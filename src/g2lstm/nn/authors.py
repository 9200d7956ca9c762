"""The authors' PyTorch G2-LSTM weights (``zhuohan123/g2-lstm``) as a :class:`G2LSTM`.

The authors' cell (``zhuohan123/g2-lstm``, ``language-modeling/g2_lstm.py``) stores per layer
``cell_{k}.weight_ih`` of shape ``(H_in, 4H)``, ``cell_{k}.weight_hh`` ``(H, 4H)`` and one
``cell_{k}.bias`` ``(4H,)``, with the gate blocks in order **f, i, o, g**.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor

from g2lstm.errors import CheckpointError
from g2lstm.nn.lstm import G2LSTM

__all__ = ["AUTHORS_BLOCK", "authors_cell_weights", "from_authors"]

#: Our gate k (i, f, g, o) is the authors' block AUTHORS_BLOCK[k] (their order f, i, o, g).
AUTHORS_BLOCK = (1, 0, 3, 2)


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
