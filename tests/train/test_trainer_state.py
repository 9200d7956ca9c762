"""Optimizer state <-> tensors + JSON, and state-dict compatibility messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from g2lstm.errors import CheckpointError
from g2lstm.train import (
    check_state_dict_compat,
    flatten_state,
    load_checkpoint,
    save_checkpoint,
    unflatten_state,
)

OPTIMIZERS = {
    "sgd-momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-3, amsgrad=True),
    "asgd": lambda p: torch.optim.ASGD(p, lr=0.5, t0=0, lambd=0.0),
    "adadelta": lambda p: torch.optim.Adadelta(p),
}


def _assert_same(a, b, where="state"):
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_state_round_trip_is_exact(tmp_path, name):
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    optimizer = OPTIMIZERS[name](model.parameters())
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(5, 3)).pow(2).mean().backward()
        optimizer.step()
    state = optimizer.state_dict()

    tensors, structure = flatten_state(state)
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())
    rebuilt = unflatten_state(tensors, json.loads(json.dumps(structure)))
    _assert_same(state, rebuilt)
    assert isinstance(next(iter(rebuilt["state"])), int)  # int keys survive JSON

    path = save_checkpoint(
        tmp_path / "c", model_state=model.state_dict(), trainer_state={"optimizer": state}
    )
    loaded = load_checkpoint(path).trainer_state["optimizer"]
    _assert_same(state, loaded)
    fresh = OPTIMIZERS[name](model.parameters())
    fresh.load_state_dict(loaded)
    _assert_same(optimizer.state_dict(), fresh.state_dict())


def test_nested_values_and_key_types():
    state = {
        "a": (1, 2.5, None, True, "x"),
        3: [torch.ones(2), {"b": torch.zeros(1, dtype=torch.int64)}],
        "a.b": torch.full((1,), 2.0),
        "np": np.float32(0.5),
        "nan": float("nan"),
    }
    state["a"] = {"b": torch.full((1,), 1.0)} | {"t": state["a"]}  # "a.b" path collision
    tensors, structure = flatten_state(state)
    assert len(tensors) == 4
    rebuilt = unflatten_state(tensors, json.loads(json.dumps(structure)))
    assert rebuilt["a"]["t"] == (1, 2.5, None, True, "x")
    assert torch.equal(rebuilt["a"]["b"], torch.ones(1))
    assert torch.equal(rebuilt["a.b"], torch.full((1,), 2.0))
    assert rebuilt["np"] == 0.5 and type(rebuilt["np"]) is float
    assert rebuilt["nan"] != rebuilt["nan"]
    assert list(rebuilt) == ["a", 3, "a.b", "np", "nan"]


def test_unsupported_value_location_is_named():
    with pytest.raises(
        CheckpointError, match=r"function at trainer_state\['param_groups'\]\[0\]\['f'\]"
    ):
        flatten_state({"param_groups": [{"f": lambda: 0}]})
    with pytest.raises(CheckpointError, match="dict key"):
        flatten_state({(1, 2): 0})


def test_compatible_state_passes():
    model = nn.LSTM(4, 5)
    check_state_dict_compat(model, model.state_dict(), "ckpt")


def test_incompatible_state_lists_every_problem():
    model = nn.Sequential(nn.Embedding(9876, 8), nn.Linear(8, 3))
    state = dict(model.state_dict())
    state["0.weight"] = torch.zeros(10000, 8)
    del state["1.bias"]
    state["2.weight"] = torch.zeros(2, 2)
    with pytest.raises(CheckpointError) as info:
        check_state_dict_compat(model, state, "run/checkpoints/step-000000100")
    message = str(info.value)
    assert "run/checkpoints/step-000000100" in message
    assert "0.weight: checkpoint [10000, 8] vs model [9876, 8]" in message
    assert "missing from run/checkpoints/step-000000100 (1):\n    1.bias: model [3]" in message
    assert "unexpected in run/checkpoints/step-000000100 (1):\n    2.weight: checkpoint [2, 2]" in (
        message
    )


def test_compile_prefix_hint():
    model = nn.Linear(2, 2)
    state = {f"_orig_mod.{k}": v for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match="torch.compile"):
        check_state_dict_compat(model, state)
