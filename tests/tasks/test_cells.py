"""One table of the compared cells and their labels (g2lstm.config.GateConfig) behind every
report."""

from __future__ import annotations

from g2lstm.analysis.cli import _labels
from g2lstm.compress import sweep_report
from g2lstm.config import GateConfig
from g2lstm.nn.config import CELL_KINDS
from g2lstm.reproduce import paper
from g2lstm.tasks import CELL_LABELS, CELLS, cell_label


def test_cells_are_the_layers_cell_kinds_in_table_order():
    assert set(CELLS) == set(CELL_KINDS) == set(CELL_LABELS)
    assert CELLS[0] == "lstm" and list(CELL_LABELS) == list(CELLS)


def test_every_report_prints_the_same_labels():
    assert paper.CELL_LABELS is CELL_LABELS and paper.CELLS is CELLS
    assert sweep_report.CELL_LABELS is CELL_LABELS
    assert _labels(list(CELLS), None, 3) == [CELL_LABELS[c] for c in CELLS]
    assert cell_label("g2") == "G2-LSTM" and cell_label("custom") == "custom"
    assert [GateConfig.for_cell(c).label for c in CELLS] == [CELL_LABELS[c] for c in CELLS]
