"""g2lstm: the Gumbel-Gate LSTM (G2-LSTM) of Li et al., ICML 2018, for PyTorch.

``from g2lstm import G2LSTM`` gives a drop-in ``torch.nn.LSTM`` whose input and forget gates
are trained with logistic noise and a temperature so that they become nearly binary.

The layer's names are imported from :mod:`g2lstm.nn` on first use, so that ``import g2lstm``
alone (the ``g2lstm`` command's ``--help``, its argument errors) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from g2lstm.nn import (
        G2LSTM,
        G2LSTMCell,
        GateConfig,
        GateRecorder,
        convert,
        revert,
        with_gate_options,
    )

__version__ = "0.1.0"

__all__ = [
    "G2LSTM",
    "G2LSTMCell",
    "GateConfig",
    "GateRecorder",
    "__version__",
    "convert",
    "revert",
    "with_gate_options",
]

#: the names re-exported from :mod:`g2lstm.nn`, imported when first asked for
_FROM_NN = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name in _FROM_NN:
        value = getattr(importlib.import_module("g2lstm.nn"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'g2lstm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
