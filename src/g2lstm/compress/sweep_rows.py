"""The records of a compression sweep (:func:`g2lstm.compress.sweep.run_sweep`): a setting, one
row per checkpoint x setting, the summary over seeds, and the whole result. What
:mod:`g2lstm.compress.sweep` measures and :mod:`g2lstm.compress.sweep_report` writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from g2lstm.config import CELLS

__all__ = ["Setting", "SummaryRow", "SweepResult", "SweepRow"]


@dataclass(frozen=True)
class Setting:
    """One compression setting.

    Attributes:
        key: unique short name (CSV), e.g. ``"svd_25"``.
        label: column header, e.g. ``"SVD (rank=25)"``.
        method: ``"round"``, ``"low_rank"`` or ``"quantize"``.
        params: the method's parameters.
        paper: a column of the paper's table.
        tags: names used by the verdict (``"H/8"``, ``"round"``, ``"paper a"``, ...).
    """

    key: str
    label: str
    method: str
    params: Mapping[str, Any]
    paper: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepRow:
    """One checkpoint under one setting (``setting == "original"``: uncompressed)."""

    checkpoint: str
    cell: str
    seed: int
    setting: str
    label: str
    method: str
    params: str
    metric: str
    original: float
    value: float
    delta: float
    degradation: float
    compression_ratio: float
    model_compression_ratio: float
    rel_error: float
    finetune_steps: int
    seconds: float


@dataclass(frozen=True)
class SummaryRow:
    """Mean and sample std (``None`` with one checkpoint) over the checkpoints of a cell."""

    cell: str
    setting: str
    n: int
    mean: float
    std: float | None
    delta_mean: float
    delta_std: float | None
    degradation_mean: float
    compression_ratio: float


@dataclass
class SweepResult:
    """Everything :func:`run_sweep` measured and wrote."""

    metric: str
    hidden: int
    settings: list[Setting]
    rows: list[SweepRow]
    summary: list[SummaryRow]
    verdicts: list[str]
    description: str
    paths: dict[str, Path] = field(default_factory=dict)

    def cell(self, cell: str, setting: str) -> SummaryRow | None:
        """The summary of one cell kind under one setting key (None if absent)."""
        return next((s for s in self.summary if s.cell == cell and s.setting == setting), None)

    def cells(self) -> list[str]:
        """The cell kinds present, in the paper's row order."""
        present = {r.cell for r in self.rows}
        return [c for c in CELLS if c in present] + sorted(present - set(CELLS))
