"""Tests of g2lstm.config_checks: accepted values come back (numbers as float), refused ones
raise ConfigError naming the value and the expected range."""

from __future__ import annotations

import math

import pytest

from g2lstm.config_checks import check_bool, check_choice, check_float, check_int
from g2lstm.errors import ConfigError


def test_accepted_values_are_returned() -> None:
    assert check_int("a.n", 3, 1) == 3
    assert check_int("a.n", 5, 0, 5) == 5
    got = check_float("a.x", 1, 0.0, 1.0)
    assert got == 1.0 and isinstance(got, float)
    assert check_choice("a.c", "sgd", ("sgd", "adam")) == "sgd"
    assert check_bool("a.b", False) is False


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_int("train.bptt", 0, 1), r"train\.bptt=0 is invalid; .*integer >= 1"),
        (lambda: check_int("train.seed", 7, 0, 5), r"train\.seed=7 .*integer in \[0, 5\]"),
        (lambda: check_int("train.bptt", True, 0), r"train\.bptt=True"),
        (lambda: check_int("train.bptt", 2.0, 0), r"train\.bptt=2\.0"),
        (lambda: check_float("optim.lr", "1e-3", 0.0), r"optim\.lr='1e-3' is not a number"),
        (lambda: check_float("optim.lr", False, 0.0), r"optim\.lr=False is not a number"),
        (lambda: check_float("optim.lr", 0.0, 0.0, lo_open=True), r"in \(0\.0, inf\]"),
        (lambda: check_float("m.p", 1.0, 0.0, 1.0, hi_open=True), r"m\.p=1\.0 .*\[0\.0, 1\.0\)"),
        (lambda: check_float("m.p", math.nan, 0.0), r"m\.p=nan"),
        (lambda: check_float("m.p", math.inf, 0.0), r"m\.p=inf"),
        (lambda: check_choice("m.cell", "gru", ("lstm", "g2")), r"m\.cell='gru'.*lstm, g2"),
        (lambda: check_bool("m.tie", 1), r"m\.tie=1 must be true or false"),
    ],
)
def test_refused_values_name_the_field_and_the_range(call, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()


def test_flatten_gives_dotted_keys_and_keeps_lists() -> None:
    from g2lstm.config_checks import flatten

    tree = {"train": {"seed": 1, "opt": {"lr": 0.1}}, "data": "ptb", "ranks": [1, 2], "e": {}}
    assert flatten(tree) == {"train.seed": 1, "train.opt.lr": 0.1, "data": "ptb", "ranks": [1, 2]}
    assert flatten({"a": 1}, "x.") == {"x.a": 1}
