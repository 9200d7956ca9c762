"""GateConfig: the one source of the compared cells, their options and labels."""

from __future__ import annotations

import pytest

from g2lstm.config import CELL_LABELS, CELLS, GateConfig, cell_label
from g2lstm.errors import ConfigError
from g2lstm.nn.config import CELL_KINDS


@pytest.mark.parametrize("cell", CELLS)
def test_for_cell_gives_the_cells_options_and_label(cell: str) -> None:
    gates = GateConfig.for_cell(cell)
    assert (gates.tau, gates.noise_p) == (CELL_KINDS[cell]["tau"], CELL_KINDS[cell]["noise_p"])
    assert gates.label == CELL_LABELS[cell] == cell_label(cell)
    layer = gates.layer_config()
    assert (layer.tau, layer.noise_p, layer.noisy_gates) == (
        gates.tau,
        gates.noise_p,
        gates.noisy_gates,
    )
    assert GateConfig.for_cell(cell, tau=0.5).tau == 0.5


def test_paper_cells() -> None:
    assert CELLS == ("lstm", "sharpened", "g2")
    assert [GateConfig.for_cell(c).label for c in CELLS] == [
        "Baseline LSTM",
        "Sharpened Sigmoid",
        "G2-LSTM",
    ]
    assert GateConfig() == GateConfig.for_cell("g2")


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"cell": "gru"}, "model.gates.cell='gru' is not valid; expected 'lstm' (Baseline LSTM"),
        ({"tau": 0.0}, "model.gates.tau"),
        ({"noise_p": 1.5}, "model.gates.noise_p"),
        ({"eval_gates": "fuzzy"}, "model.gates: eval_gates='fuzzy'"),
        ({"noisy_gates": ("input", "g")}, "unknown gate 'g'"),
    ],
)
def test_bad_options_name_the_key(options: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        GateConfig(**options)


def test_options_are_normalised() -> None:
    gates = GateConfig(noisy_gates="f,i", eval_gates="HARD")  # type: ignore[arg-type]
    assert gates.noisy_gates == ("input", "forget") and gates.eval_gates == "hard"
    assert gates.layer_options()["noisy_gates"] == ("input", "forget")
