"""Whole-model conversion: every ``nn.LSTM`` / ``nn.LSTMCell`` in a model to G2, and back.

``convert(model, **g2_options)`` swaps each ``torch.nn.LSTM`` for a :class:`G2LSTM` and each
``torch.nn.LSTMCell`` for a :class:`G2LSTMCell` with the same hyper-parameters, a copy of the
weights, the same device, dtype and train/eval flag, at any depth. ``revert(model)`` does
the inverse with the soft-eval gates folded into the weights (paper §3.2: ``sigmoid(a /
tau)`` is a sigmoid of rescaled weights), so the reverted model computes the G2 model's
noise-free output exactly and runs on the vendor kernels. Like
``torch.nn.SyncBatchNorm.convert_sync_batchnorm``, both replace the submodules of ``model``
in place and return it (or the new module when ``model`` itself is an LSTM); forward hooks
of the replaced modules are not carried over.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from g2lstm.nn.cell import G2LSTMCell
from g2lstm.nn.lstm import G2LSTM

__all__ = ["convert", "revert"]


def _swap(model: nn.Module, make: Callable[[nn.Module], nn.Module | None]) -> nn.Module:
    """Replace every submodule ``m`` of ``model`` for which ``make(m)`` is not None."""
    new = make(model)
    if new is not None:
        return new
    for name, child in list(model.named_children()):
        replaced = _swap(child, make)
        if replaced is not child:
            setattr(model, name, replaced)
    return model


def convert(model: nn.Module, **g2_options: object) -> nn.Module:
    """Replace every ``nn.LSTM`` / ``nn.LSTMCell`` inside ``model`` by its G2 version.

    Args:
        model: any module (or an ``nn.LSTM`` / ``nn.LSTMCell`` itself).
        g2_options: the keyword-only G2 options (``tau``, ``noise_p``, ``eval_gates``, ...),
            given to every new module; modules that already are G2 are left as they are.

    Returns:
        ``model`` with its LSTMs replaced (the new module if ``model`` is one). Weights are
        copied; device, dtype and ``training`` are kept.

    Example: ``model = g2lstm.convert(model, tau=0.9, noise_p=0.2)``.
    """

    def make(m: nn.Module) -> nn.Module | None:
        if isinstance(m, (G2LSTM, G2LSTMCell)):
            return m
        if isinstance(m, nn.LSTM):
            new: nn.Module = G2LSTM.from_lstm(m, **g2_options)
        elif isinstance(m, nn.LSTMCell):
            new = G2LSTMCell.from_lstm_cell(m, **g2_options)
        else:
            return None
        return new.train(m.training)

    return _swap(model, make)


def revert(model: nn.Module) -> nn.Module:
    """Replace every ``G2LSTM`` / ``G2LSTMCell`` inside ``model`` by a plain ``nn.LSTM`` /
    ``nn.LSTMCell`` computing its soft-eval output exactly (temperature folded in).

    Returns ``model`` (or the new module if ``model`` itself is a G2 module).
    """

    def make(m: nn.Module) -> nn.Module | None:
        if isinstance(m, G2LSTM):
            return m.to_lstm()
        if isinstance(m, G2LSTMCell):
            return m.to_lstm_cell()
        return None

    return _swap(model, make)
