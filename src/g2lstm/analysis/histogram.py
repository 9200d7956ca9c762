"""Streaming histograms of gate values (paper Figs. 1 and 3).

The paper bins gate values into ten bins of width 0.1 on ``[0, 1]`` and plots the fraction of
values per bin. A value ``v`` falls in bin ``k`` when ``k/10 <= v < (k+1)/10``; the last bin is
closed, so ``1.0`` counts in bin 9. Edges are compared in the dtype of the values (as
``t >= 0.9`` does in PyTorch), so a float32 ``0.9`` counts as ``>= 0.9`` and ``0.1`` as not
``< 0.1``. "Near 0" is bin 0 (``v < 0.1``), "near 1" is bin 9 (``v >= 0.9``).

:class:`GateStats` is a :class:`~g2lstm.nn.GateRecorder` callback that keeps one
:class:`GateHistogram` per (module, layer, direction, gate). It never stores a trace: memory is
constant in the amount of data seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from g2lstm.errors import ConfigError
from g2lstm.nn.recording import GateTrace

__all__ = ["BINS", "GATES", "GateHistogram", "GateKey", "GateStats"]

#: Number of equal-width bins on [0, 1] (the paper's figures).
BINS = 10
#: The recorded gates, in the order the figures show them.
GATES = ("input", "forget", "output")


def _check_gates(gates: Iterable[str], name: str = "gates") -> tuple[str, ...]:
    out = tuple(gates)
    bad = [g for g in out if g not in GATES]
    if bad or not out:
        raise ConfigError(f"{name}={out!r}: expected a non-empty subset of {GATES}")
    return out


@dataclass
class GateHistogram:
    """Counts of gate values in ``bins`` equal bins on ``[0, 1]`` (last bin closed).

    Attributes:
        counts: ``(bins,)`` float64 counts.
        total: float64 sum of every value seen (for the mean).
        bins: number of bins (10 in the paper).
    """

    bins: int = BINS
    counts: np.ndarray = field(default=None)  # type: ignore[assignment]
    total: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 1:
            raise ConfigError(f"GateHistogram: bins={self.bins!r} must be a positive int")
        if self.counts is None:
            self.counts = np.zeros(self.bins, dtype=np.float64)
        else:
            self.counts = np.asarray(self.counts, dtype=np.float64).copy()
            if self.counts.shape != (self.bins,):
                raise ConfigError(
                    f"GateHistogram: counts has shape {self.counts.shape}, expected ({self.bins},)"
                )
        self.total = float(self.total)

    @property
    def edges(self) -> np.ndarray:
        """``(bins + 1,)`` bin edges ``0, 1/bins, ..., 1``."""
        return np.linspace(0.0, 1.0, self.bins + 1)

    @property
    def count(self) -> float:
        """Number of values seen."""
        return float(self.counts.sum())

    def update(self, values: Tensor) -> GateHistogram:
        """Add every element of ``values`` (any shape, values in ``[0, 1]``). Returns self.

        Raises:
            ConfigError: a value is NaN or outside ``[0, 1]``.
        """
        v = values.detach().reshape(-1)
        if not v.is_floating_point():
            v = v.double()
        if v.numel() == 0:
            return self
        lo, hi = torch.aminmax(v)
        if not (bool(lo >= 0) and bool(hi <= 1)):  # NaN fails both comparisons
            raise ConfigError(
                f"GateHistogram.update: gate values must lie in [0, 1], got min {lo.item()!r} "
                f"and max {hi.item()!r}; pass sigmoid outputs, not pre-activations"
            )
        inner = torch.linspace(0.0, 1.0, self.bins + 1, dtype=torch.float64)[1:-1]
        idx = torch.bucketize(v, inner.to(v.dtype).to(v.device), right=True)
        self.counts += torch.bincount(idx, minlength=self.bins).cpu().double().numpy()
        self.total += float(v.double().sum())
        return self

    def merge(self, other: GateHistogram) -> GateHistogram:
        """A new histogram holding the values of ``self`` and ``other`` (same ``bins``)."""
        if other.bins != self.bins:
            raise ConfigError(f"cannot merge histograms with {self.bins} and {other.bins} bins")
        return GateHistogram(self.bins, self.counts + other.counts, self.total + other.total)

    def fractions(self) -> np.ndarray:
        """``(bins,)`` fraction of values per bin (sums to 1; all zeros when empty)."""
        n = self.count
        return self.counts / n if n > 0 else np.zeros(self.bins, dtype=np.float64)

    @property
    def mean(self) -> float:
        """Mean value (NaN when empty)."""
        n = self.count
        return self.total / n if n > 0 else float("nan")

    @property
    def near_zero(self) -> float:
        """Fraction of values ``< 1/bins`` (``< 0.1``)."""
        return float(self.fractions()[0])

    @property
    def near_one(self) -> float:
        """Fraction of values ``>= 1 - 1/bins`` (``>= 0.9``)."""
        return float(self.fractions()[-1])

    @property
    def near_binary(self) -> float:
        """``near_zero + near_one``: the paper's "near 0 or 1"."""
        return self.near_zero + self.near_one

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: counts, fractions, edges, mean and the near-0/1 fractions."""
        return {
            "bins": self.bins,
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "fractions": self.fractions().tolist(),
            "count": self.count,
            "total": self.total,
            "mean": self.mean,
            "near_zero": self.near_zero,
            "near_one": self.near_one,
            "near_binary": self.near_binary,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateHistogram:
        """Inverse of :meth:`to_dict` (uses ``bins``, ``counts`` and ``total``)."""
        return cls(int(data["bins"]), np.asarray(data["counts"]), float(data.get("total", 0.0)))


class GateKey(NamedTuple):
    """Which histogram: recorded module name, layer, direction (0 fwd, 1 rev) and gate."""

    module: str
    layer: int
    direction: int
    gate: str


class GateStats:
    """Streaming gate histograms, one per (module, layer, direction, gate).

    Use as the callback of a :class:`~g2lstm.nn.GateRecorder`::

        stats = GateStats()
        with GateRecorder(model, keep=False, callback=stats):
            model(x)
        stats.histogram("rnn", 0, 0, "forget").near_binary

    Only the valid steps of each trace (``trace.mask``) are counted.

    Args:
        gates: which gates to count (default input, forget and output).
        bins: bins per histogram (10, as in the paper).
    """

    def __init__(self, gates: Sequence[str] = GATES, bins: int = BINS) -> None:
        self.gates = _check_gates(gates)
        self.bins = bins
        self.histograms: dict[GateKey, GateHistogram] = {}
        self.n_traces = 0

    def __call__(self, module: str, trace: GateTrace) -> None:
        self.update(module, trace)

    def update(self, module: str, trace: GateTrace) -> None:
        """Count the valid values of one trace."""
        self.n_traces += 1
        for gate in self.gates:
            key = GateKey(module, trace.layer, trace.direction, gate)
            hist = self.histograms.get(key)
            if hist is None:
                hist = self.histograms[key] = GateHistogram(self.bins)
            hist.update(trace.valid(gate))

    def keys(self) -> list[GateKey]:
        """Recorded keys in first-seen order."""
        return list(self.histograms)

    def layers(self) -> list[tuple[str, int]]:
        """Distinct ``(module, layer)`` pairs in first-seen order (= depth order)."""
        return list(dict.fromkeys((k.module, k.layer) for k in self.histograms))

    def histogram(self, module: str, layer: int, direction: int, gate: str) -> GateHistogram:
        """The histogram of one key (``KeyError`` naming the recorded keys if absent)."""
        key = GateKey(module, layer, direction, gate)
        if key not in self.histograms:
            raise KeyError(f"no gate values recorded for {key}; recorded: {self.keys()}")
        return self.histograms[key]

    def merged(
        self, gate: str, module: str | None = None, layer: int | None = None
    ) -> GateHistogram:
        """One histogram of ``gate`` pooled over directions (and modules/layers left as None)."""
        out = GateHistogram(self.bins)
        for k, h in self.histograms.items():
            if k.gate == gate and module in (None, k.module) and layer in (None, k.layer):
                out = out.merge(h)
        return out

    def merge(self, other: GateStats) -> GateStats:
        """New stats holding both (keys are united; equal keys are added)."""
        if other.bins != self.bins:
            raise ConfigError(f"cannot merge GateStats with {self.bins} and {other.bins} bins")
        out = GateStats(tuple(dict.fromkeys(self.gates + other.gates)), self.bins)
        for src in (self, other):
            for k, h in src.histograms.items():
                out.histograms[k] = out.histograms.get(k, GateHistogram(self.bins)).merge(h)
        out.n_traces = self.n_traces + other.n_traces
        return out

    def means(self) -> dict[str, float]:
        """Mean value per gate over every module, layer and direction."""
        return {g: self.merged(g).mean for g in self.gates}

    def rows(self) -> list[dict[str, Any]]:
        """One flat record per key (for CSV): key fields, count, mean, near-0/1, fractions."""
        out = []
        for k, h in self.histograms.items():
            row: dict[str, Any] = dict(k._asdict())
            row.update(
                count=h.count,
                mean=h.mean,
                near_zero=h.near_zero,
                near_one=h.near_one,
                near_binary=h.near_binary,
            )
            for i, f in enumerate(h.fractions()):
                row[f"bin{i}"] = float(f)
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"bins", "n_traces", "histograms": [{key fields, histogram}...]}``."""
        return {
            "bins": self.bins,
            "gates": list(self.gates),
            "n_traces": self.n_traces,
            "histograms": [{**k._asdict(), **h.to_dict()} for k, h in self.histograms.items()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateStats:
        """Inverse of :meth:`to_dict`."""
        out = cls(tuple(data["gates"]), int(data["bins"]))
        out.n_traces = int(data.get("n_traces", 0))
        for h in data["histograms"]:
            key = GateKey(str(h["module"]), int(h["layer"]), int(h["direction"]), str(h["gate"]))
            out.histograms[key] = GateHistogram.from_dict(h)
        return out
