"""The evaluation-gate flags: parsed, applied to a loaded model, and described."""

from __future__ import annotations

import argparse

import torch

from g2lstm import G2LSTM
from g2lstm.config.flags import (
    add_eval_gate_flags,
    apply_eval_gate_flags,
    describe_eval_gates,
    eval_gate_changes,
)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_eval_gate_flags(parser)
    return parser.parse_args(argv)


def test_unset_flags_keep_the_models_own_options() -> None:
    model = torch.nn.Sequential(G2LSTM(3, 4, eval_gates="hard"))
    args = _parse([])
    assert eval_gate_changes(args) == {}
    settings = apply_eval_gate_flags(model, args)
    # the report is the model's configured value, not the flag's default
    assert settings == {"eval_gates": "hard", "eval_temperature": "divide"}
    assert describe_eval_gates(settings) == "gates hard, eval temperature divide"


def test_flags_change_every_g2_module_in_place() -> None:
    model = torch.nn.Sequential(G2LSTM(3, 4), G2LSTM(4, 4))
    args = _parse(["--eval-gates", "sample", "--eval-temperature", "drop"])
    assert apply_eval_gate_flags(model, args) == {
        "eval_gates": "sample",
        "eval_temperature": "drop",
    }
    assert all(m.gate_config.eval_gates.value == "sample" for m in model)


def test_a_model_without_g2_layers_is_described_as_such() -> None:
    settings = apply_eval_gate_flags(torch.nn.LSTM(3, 4), _parse(["--eval-gates", "hard"]))
    assert settings == {"eval_gates": None, "eval_temperature": None}
    assert describe_eval_gates(settings) == "no G2 gates"
