"""Block selection: presets, explicit names, layouts, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from g2lstm.compress import Block, rank_for_fraction, select_blocks
from g2lstm.errors import ConfigError


def test_gates_if_covers_every_layer_direction_and_matrix(tiny_lm):
    blocks = select_blocks(tiny_lm)
    params = {b.param for b in blocks}
    expected = {
        f"rnn.{kind}_l{layer}{suffix}"
        for kind in ("weight_ih", "weight_hh")
        for layer in (0, 1)
        for suffix in ("", "_reverse")
    }
    assert params == expected
    assert len(blocks) == 2 * len(expected)
    hidden = 10
    for b in blocks:
        assert b.gate in ("i", "f")
        start = 0 if b.gate == "i" else hidden
        assert (b.start, b.stop) == (start, start + hidden)
        assert b.n_cols == tiny_lm.state_dict()[b.param].shape[1]
    assert blocks[0].name == "rnn.weight_ih_l0[i]"
    # layer 1 input is the concatenated bidirectional output (2H columns)
    assert {b.n_cols for b in blocks if b.param == "rnn.weight_ih_l1"} == {20}


def test_all_gates_and_all_recurrent(tiny_lm):
    all_gates = select_blocks(tiny_lm, "all_gates")
    assert len(all_gates) == 8 * 4
    assert [b.gate for b in all_gates[:4]] == ["i", "f", "g", "o"]
    recurrent = select_blocks(tiny_lm, "all_recurrent")
    assert [b.param for b in recurrent] == [
        "rnn.weight_hh_l0",
        "rnn.weight_hh_l0_reverse",
        "rnn.weight_hh_l1",
        "rnn.weight_hh_l1_reverse",
    ]
    assert all(b.gate == "all" and b.shape == (40, 10) for b in recurrent)


def test_projection_and_stacked_single_layer_lstms():
    torch.manual_seed(0)
    proj = nn.LSTM(5, 8, proj_size=3)
    recurrent = select_blocks(proj, "all_recurrent")
    assert {(b.param, b.shape) for b in recurrent} == {
        ("weight_hh_l0", (32, 3)),
        ("weight_hr_l0", (3, 8)),
    }
    assert {b.param for b in select_blocks(proj)} == {"weight_ih_l0", "weight_hh_l0"}

    stack = nn.Module()
    stack.rnns = nn.ModuleList([nn.LSTM(4, 6), nn.LSTM(6, 6), nn.GRU(6, 6)])
    params = {b.param for b in select_blocks(stack)}
    assert params == {f"rnns.{k}.weight_{m}_l0" for k in (0, 1) for m in ("ih", "hh")}


def test_state_dict_input_and_gru_is_not_an_lstm(tiny_lm):
    assert select_blocks(tiny_lm.state_dict()) == select_blocks(tiny_lm)
    with pytest.raises(ConfigError, match="GRU"):
        select_blocks(nn.GRU(4, 4))


def test_explicit_names_globs_and_gate_suffix(tiny_lm):
    whole = select_blocks(tiny_lm, ["rnn.weight_hh_l0", "decoder.weight"])
    assert [(b.param, b.gate, b.shape) for b in whole] == [
        ("rnn.weight_hh_l0", "all", (40, 10)),
        ("decoder.weight", "all", (30, 20)),
    ]
    glob = select_blocks(tiny_lm, ["rnn.weight_ih_l*@f"])
    assert [(b.param, b.gate) for b in glob] == [
        ("rnn.weight_ih_l0", "f"),
        ("rnn.weight_ih_l0_reverse", "f"),
        ("rnn.weight_ih_l1", "f"),
        ("rnn.weight_ih_l1_reverse", "f"),
    ]
    block = Block("rnn.weight_hh_l1", 20, 30, "g", 10)
    assert select_blocks(tiny_lm, [block]) == [block]


@pytest.mark.parametrize(
    ("blocks", "match"),
    [
        ("gates_io", r"unknown blocks 'gates_io'.*gates_if.*all_gates.*all_recurrent"),
        (["rnn.nothing*"], "matches no 2-D float parameter"),
        (["rnn.bias_ih_l0"], "is not a 2-D float matrix"),
        (["decoder.weight@i"], "needs an LSTM"),
        (["rnn.weight_hh_l0@ix"], "gate letters"),
        (["rnn.weight_hh_l0", "rnn.weight_hh_l0@f"], "overlap"),
        ([], "non-empty list"),
        ([Block("rnn.weight_hh_l0", 0, 50, "all", 10)], "does not fit"),
    ],
)
def test_selection_errors(tiny_lm, blocks, match):
    with pytest.raises(ConfigError, match=match):
        select_blocks(tiny_lm, blocks)


def test_no_lstm_names_the_model():
    with pytest.raises(ConfigError, match="Sequential"):
        select_blocks(nn.Sequential(nn.Linear(3, 3)))
    with pytest.raises(ConfigError, match="Module or a state dict"):
        select_blocks(42)  # type: ignore[arg-type]


def test_block_validation_and_rank_for_fraction():
    with pytest.raises(ConfigError, match="start < stop"):
        Block("w", 3, 3, "i", 4)
    with pytest.raises(ConfigError, match="gate"):
        Block("w", 0, 3, "x", 4)
    block = Block("w", 0, 10, "i", 40)
    assert Block.from_dict(block.to_dict()) == block
    assert rank_for_fraction(block, 0.5) == 5
    assert rank_for_fraction((100, 7), 0.01) == 1
    with pytest.raises(ConfigError, match="fraction"):
        rank_for_fraction(block, 0.0)
