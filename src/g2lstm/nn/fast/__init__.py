"""Fast implementations of one G2-LSTM layer-direction (chosen by :mod:`g2lstm.nn.backends`).

- :func:`recurrence_fast`: the entry point; calls the custom operators of
  :mod:`g2lstm.nn.fast.ops` (``g2lstm::recurrence_train`` / ``_backward`` / ``_inference``),
  which run the loops of :mod:`g2lstm.nn.fast.loop` in the structure of haste's kernels.
- :mod:`g2lstm.nn.fast.steps`: one time step's pointwise work behind one signature: the fused
  C++ CPU kernel (:mod:`g2lstm.nn.fast.kernel`, built just in time, optional), the fused
  Triton kernel (:mod:`g2lstm.nn.fast.triton_step`, CUDA), or ATen ops.
- :mod:`g2lstm.nn.fast.gemm`: the GEMM routes (MKL packed, oneDNN, ``torch.mm``/cuBLAS);
  :mod:`g2lstm.nn.fast.routes` picks the route and the backward's packing, measured
  (:mod:`g2lstm.nn.fast.autotune`, timings kept on disk by :mod:`g2lstm.nn.fast.route_cache`).

Imports torch alone.
"""

from __future__ import annotations

from g2lstm.nn.fast.gemm import ROUTES, onednn_available
from g2lstm.nn.fast.plan import GatePlan
from g2lstm.nn.fast.recurrence import POINTWISE, recurrence_fast
from g2lstm.nn.fast.routes import resolve_route
from g2lstm.nn.fast.steps import STEPS

__all__ = [
    "POINTWISE",
    "ROUTES",
    "STEPS",
    "GatePlan",
    "onednn_available",
    "recurrence_fast",
    "resolve_route",
]
