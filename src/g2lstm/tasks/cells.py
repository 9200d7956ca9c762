"""The three models the paper compares (§4.2), by their ``--cell`` names: the order of the
paper's tables and the label every table, figure and report of the package prints for them.

The one source of these labels for the compression sweep (:mod:`g2lstm.compress.sweep_report`),
the gate analysis (``g2lstm analyze``'s default model names) and the reproduction report
(:mod:`g2lstm.reproduce.paper`). The gate options of each cell are
:data:`g2lstm.nn.config.CELL_KINDS`; a new cell of the comparison gets its label here.
"""

from __future__ import annotations

__all__ = ["CELLS", "CELL_LABELS", "cell_label"]

#: The compared cells in the order of the paper's tables (baseline first).
CELLS: tuple[str, ...] = ("lstm", "sharpened", "g2")
#: ``--cell`` name -> the label of the paper's tables.
CELL_LABELS: dict[str, str] = {
    "lstm": "Baseline LSTM",
    "sharpened": "Sharpened Sigmoid",
    "g2": "G2-LSTM",
}


def cell_label(cell: str) -> str:
    """The label of ``cell`` (a name the table does not know is its own label)."""
    return CELL_LABELS.get(cell, cell)
