"""Fuzzing the readers of files a user may hand us (issue 17): any bytes in a checkpoint's
``meta.json``, a safetensors header or a compressed file give either a valid load or the typed
:class:`~g2lstm.errors.CheckpointError` (or its ConfigError/LimitError siblings for sizes),
never another exception, a parser panic, a deep recursion or a huge allocation."""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from g2lstm.compress import load_compressed, quantize, save_compressed
from g2lstm.errors import CheckpointError, ConfigError
from g2lstm.train import load_checkpoint, save_checkpoint
from g2lstm.train.tensor_header import read_header

_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_EXPECTED = (CheckpointError, ConfigError)  # LimitError is a ConfigError

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _loads_or_typed(load: Any, *args: Any, **kwargs: Any) -> None:
    # anything but the typed errors (KeyError, RecursionError, a PanicException, ...) fails
    with contextlib.suppress(*_EXPECTED):
        load(*args, **kwargs)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A valid checkpoint (with a tied alias and an optimizer state) and a compressed file."""
    root = tmp_path_factory.mktemp("fuzz")
    torch.manual_seed(0)
    model = torch.nn.LSTM(4, 3)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 1, 4))[0].sum().backward()
    opt.step()
    state = dict(model.state_dict())
    state["tied"] = state["weight_ih_l0"]
    ckpt = save_checkpoint(
        root / "ckpt",
        model_state=state,
        trainer_state={"optimizer": opt.state_dict()},
        meta={"config": {"nhid": 3}, "step": 1},
    )
    small, report = quantize(torch.nn.LSTM(4, 8), 4, "gates_if")
    compressed = save_compressed(root / "c.safetensors", small, report, {"kind": "x"})
    return {"root": root, "ckpt": ckpt, "compressed": compressed}


def _copy(good: dict[str, Path], name: str) -> Path:
    work = good["root"] / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    src = good[name]
    return Path(
        shutil.copytree(src, work / src.name) if src.is_dir() else shutil.copy(src, work / src.name)
    )


@_SETTINGS
@given(st.binary(max_size=600))
def test_meta_json_any_bytes(good: dict[str, Path], data: bytes) -> None:
    ckpt = _copy(good, "ckpt")
    (ckpt / "meta.json").write_bytes(data)
    _loads_or_typed(load_checkpoint, ckpt)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@_SETTINGS
@given(st.data(), _json)
def test_meta_json_any_field_replaced(good: dict[str, Path], data: Any, value: Any) -> None:
    ckpt = _copy(good, "ckpt")
    record = json.loads((ckpt / "meta.json").read_text(encoding="utf-8"))
    path = data.draw(st.sampled_from(_paths(record)[1:]))
    node = record
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (ckpt / "meta.json").write_text(json.dumps(record), encoding="utf-8")
    _loads_or_typed(load_checkpoint, ckpt)


@_SETTINGS
@given(st.binary(max_size=600), st.booleans())
def test_safetensors_any_bytes(good: dict[str, Path], data: bytes, verify: bool) -> None:
    ckpt = _copy(good, "ckpt")
    (ckpt / "model.safetensors").write_bytes(data)
    _loads_or_typed(load_checkpoint, ckpt, verify=verify)
    _loads_or_typed(read_header, ckpt / "model.safetensors")


_entry = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.sampled_from(["F32", "F16", "I64", "U8", "BOOL", "X9"]) | _json,
        "shape": st.lists(st.integers(-2, 2**40), max_size=3) | _json,
        "data_offsets": st.lists(st.integers(-2, 2**40), min_size=2, max_size=2) | _json,
    },
)


@_SETTINGS
@given(st.dictionaries(st.text(max_size=6), _entry | _json, max_size=4), st.binary(max_size=64))
def test_safetensors_any_header(good: dict[str, Path], header: dict, payload: bytes) -> None:
    ckpt = _copy(good, "ckpt")
    raw = json.dumps(header).encode()
    (ckpt / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + payload)
    _loads_or_typed(load_checkpoint, ckpt, verify=False)


@_SETTINGS
@given(st.binary(max_size=600))
def test_compressed_any_bytes(good: dict[str, Path], data: bytes) -> None:
    path = _copy(good, "compressed")
    path.write_bytes(data)
    _loads_or_typed(load_compressed, path)


@_SETTINGS
@given(st.data(), _json)
def test_compressed_any_metadata_field_replaced(
    good: dict[str, Path], data: Any, value: Any
) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = _copy(good, "compressed")
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        meta = dict(f.metadata())
    key = data.draw(st.sampled_from(sorted(meta)))
    parsed = json.loads(meta[key]) if key != "format" else meta[key]
    spots = _paths(parsed)
    spot = data.draw(st.sampled_from(spots))
    if spot:
        node = parsed
        for k in spot[:-1]:
            node = node[k]
        node[spot[-1]] = value
    else:
        parsed = value
    meta[key] = json.dumps(parsed) if key != "format" else str(parsed)
    save_file(tensors, str(path), metadata=meta)
    _loads_or_typed(load_compressed, path)
