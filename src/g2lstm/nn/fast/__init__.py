"""Fast implementations of one G2-LSTM layer-direction (chosen by :mod:`g2lstm.nn.backends`).

- :func:`recurrence_fast`: a ``torch.autograd.Function`` with a hand-written backward in the
  structure of haste's kernels; GEMMs on oneDNN (CPU float32) or ``torch.mm``.
- :mod:`g2lstm.nn.fast.gemm`: the two GEMM routes and the capability probe of the private
  oneDNN op.
- :mod:`g2lstm.nn.fast.kernel`: the fused C++ step kernel for CPU (built just in time,
  optional: without it each step's pointwise ops run as ATen ops).

Imports torch alone.
"""

from __future__ import annotations

from g2lstm.nn.fast.gemm import ROUTES, onednn_available, resolve_route
from g2lstm.nn.fast.plan import GatePlan
from g2lstm.nn.fast.recurrence import recurrence_fast

__all__ = ["ROUTES", "GatePlan", "onednn_available", "recurrence_fast", "resolve_route"]
