"""Speed benchmarks of the G2-LSTM layer (``g2lstm bench layer``).

Import :mod:`g2lstm.bench.layer` for the programmatic API (:func:`run_layer_benchmark`).
"""

from __future__ import annotations

__all__: list[str] = []
