"""g2lstm: the Gumbel-Gate LSTM (G2-LSTM) of Li et al., ICML 2018, for PyTorch.

``from g2lstm import G2LSTM`` gives a drop-in ``torch.nn.LSTM`` whose input and forget gates
are trained with logistic noise and a temperature so that they become nearly binary.
"""

from __future__ import annotations

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
