"""The same mistakes raise the same exception types as ``nn.LSTM`` / ``nn.LSTMCell``, with
messages that contain theirs (prefixed ``G2LSTM:`` / ``G2LSTMCell:``), case by case."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from g2lstm import G2LSTM, G2LSTMCell
from g2lstm.errors import G2LSTMError

Z = torch.zeros

LSTM_CASES = {
    "input 4-D": (lambda: Z(1, 2, 3, 4), None),
    "input 1-D": (lambda: Z(4), None),
    "wrong input size": (lambda: Z(5, 2, 7), None),
    "wrong dtype": (lambda: Z(5, 2, 4, dtype=torch.float64), None),
    "empty sequence": (lambda: Z(0, 2, 4), None),
    "h0 wrong batch": (lambda: Z(5, 2, 4), lambda: (Z(2, 3, 3), Z(2, 2, 3))),
    "c0 wrong size": (lambda: Z(5, 2, 4), lambda: (Z(2, 2, 3), Z(2, 2, 5))),
    "h0 wrong layers": (lambda: Z(5, 2, 4), lambda: (Z(1, 2, 3), Z(2, 2, 3))),
    "batched input, 2-D states": (lambda: Z(5, 2, 4), lambda: (Z(2, 3), Z(2, 3))),
    "unbatched input, 3-D states": (lambda: Z(5, 4), lambda: (Z(2, 1, 3), Z(2, 1, 3))),
    "unbatched input, wrong state size": (lambda: Z(5, 4), lambda: (Z(2, 4), Z(2, 3))),
}


def _catch(fn):
    try:
        fn()
    except Exception as e:  # the exception is what is compared
        return e
    return None


@pytest.mark.parametrize("case", sorted(LSTM_CASES))
@pytest.mark.parametrize("training", [True, False])
def test_lstm_errors_match(case, training):
    make_x, make_hx = LSTM_CASES[case]
    torch.manual_seed(0)
    ref = nn.LSTM(4, 3, num_layers=2).train(training)
    g2 = G2LSTM.from_lstm(ref).train(training)
    args = (make_x(),) if make_hx is None else (make_x(), make_hx())
    want, got = _catch(lambda: ref(*args)), _catch(lambda: g2(*args))
    assert want is not None, f"nn.LSTM accepted {case}"
    assert got is not None, f"G2LSTM accepted {case}"
    assert isinstance(got, type(want)), (type(got), type(want))
    assert isinstance(got, G2LSTMError)
    assert str(want) in str(got), (str(got), str(want))
    assert "\n" not in str(got)


CELL_CASES = {
    "input 3-D": (lambda: Z(1, 2, 4), None),
    "wrong input size": (lambda: Z(2, 5), None),
    "state batch": (lambda: Z(2, 4), lambda: (Z(2, 3), Z(1, 3))),
    "state size": (lambda: Z(2, 4), lambda: (Z(2, 2), Z(2, 3))),
    "state 3-D": (lambda: Z(2, 4), lambda: (Z(1, 2, 3), Z(2, 3))),
    "wrong dtype": (lambda: Z(2, 4, dtype=torch.float64), None),
}


@pytest.mark.parametrize("case", sorted(CELL_CASES))
def test_cell_errors_match(case):
    make_x, make_hx = CELL_CASES[case]
    ref = nn.LSTMCell(4, 3)
    g2 = G2LSTMCell.from_lstm_cell(ref)
    args = (make_x(),) if make_hx is None else (make_x(), make_hx())
    want, got = _catch(lambda: ref(*args)), _catch(lambda: g2(*args))
    assert want is not None and got is not None
    assert isinstance(got, type(want)), (type(got), type(want))
    assert isinstance(got, G2LSTMError)
    if case != "wrong dtype":  # nn.LSTMCell's is a GEMM message; ours names both dtypes
        assert re.sub(r"^LSTMCell: ", "", str(want)) in str(got), (str(got), str(want))
    else:
        assert "mat1 and mat2 must have the same dtype" in str(got)
