"""G2-LSTM layers: the layer, the cell, gate noise, converters and regularisers.

Importing this package needs torch alone.
"""

from __future__ import annotations

import copy

from torch import nn

from g2lstm.nn.authors import from_authors
from g2lstm.nn.cell import G2LSTMCell
from g2lstm.nn.config import Estimator, EvalGates, GateConfig, NoiseSchedule
from g2lstm.nn.convert_model import convert, revert
from g2lstm.nn.lstm import G2LSTM
from g2lstm.nn.noise import logistic_from_uniform, sample_gate_noise
from g2lstm.nn.recording import GateRecorder, GateTrace

__all__ = [
    "G2LSTM",
    "Estimator",
    "EvalGates",
    "G2LSTMCell",
    "GateConfig",
    "GateRecorder",
    "GateTrace",
    "NoiseSchedule",
    "convert",
    "eval_gate_settings",
    "from_authors",
    "g2_modules",
    "logistic_from_uniform",
    "revert",
    "sample_gate_noise",
    "set_gate_options_",
    "with_gate_options",
]


def g2_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every ``G2LSTM`` / ``G2LSTMCell`` inside ``model`` with its qualified name."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (G2LSTM, G2LSTMCell))]


def with_gate_options(model: nn.Module, **changes: object) -> nn.Module:
    """A deep copy of ``model`` with the G2 options of every G2 module changed.

    Example: ``hard = with_gate_options(model, eval_gates="hard")`` for binary-gate
    inference; ``model`` itself is left as it is.
    """
    return set_gate_options_(copy.deepcopy(model), **changes)


def set_gate_options_(model: nn.Module, **changes: object) -> nn.Module:
    """Change the G2 options of every G2 module of ``model`` in place, and return ``model``.

    The in-place twin of :func:`with_gate_options`, for a model used once (a command that loads
    a checkpoint to evaluate it). Each change is validated by the module's own
    ``set_gate_options``; with no changes nothing is touched.
    """
    for _, m in g2_modules(model) if changes else ():
        m.set_gate_options(**changes)  # type: ignore[operator]
    return model


def eval_gate_settings(model: nn.Module) -> dict[str, str | None]:
    """How the G2 modules of ``model`` gate in eval mode, for a report.

    Returns ``{"eval_gates": ..., "eval_temperature": ...}`` with the option's value when every
    G2 module agrees, ``"mixed"`` when they differ, and ``None`` for a model without G2 modules
    (a plain ``nn.LSTM`` baseline, to which neither option applies).
    """
    mods = [m for _, m in g2_modules(model)]
    out: dict[str, str | None] = {}
    for key in ("eval_gates", "eval_temperature"):
        found = {getattr(m.gate_config, key).value for m in mods}
        out[key] = found.pop() if len(found) == 1 else ("mixed" if found else None)
    return out
