"""The compressed .safetensors file: exact round trips, size, and rejected files."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from g2lstm.compress import (
    FORMAT_VERSION,
    load_compressed,
    low_rank,
    quantize,
    round_clip,
    save_compressed,
    structure_projector,
)
from g2lstm.compress.packing import pack_codes, packed_size, unpack_codes
from g2lstm.errors import CheckpointError, ConfigError

METHODS = [
    (low_rank, {"rank": 3}),
    (low_rank, {"rank": 4, "factor_dtype": "float16"}),
    (round_clip, {"step": 0.2}),
    (round_clip, {"step": 0.2, "clip": 0.4}),
    (quantize, {"bits": 1}),
    (quantize, {"bits": 2}),
    (quantize, {"bits": 5, "per": "tensor"}),
    (quantize, {"bits": 8, "blocks": "all_gates"}),
    (quantize, {"bits": 16}),
]


@pytest.mark.parametrize(("fn", "kwargs"), METHODS)
def test_round_trip_is_bit_exact(tmp_path, tiny_lm, model_cls, tokens, fn, kwargs):
    small, report = fn(tiny_lm, **kwargs)
    path = save_compressed(tmp_path / "m.safetensors", small, report, config=tiny_lm.config)
    state, meta = load_compressed(path)
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["config"] == tiny_lm.config
    assert meta["report"]["totals"]["bytes_after"] == report.bytes_after
    expected = small.state_dict()
    assert list(state) == list(expected)
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name
    fresh = model_cls.from_config(meta["config"]).eval()
    fresh.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(fresh(tokens), small(tokens))


def test_bare_lstm_and_state_dict_input(tmp_path):
    torch.manual_seed(0)
    lstm = nn.LSTM(6, 8, num_layers=2)
    small, report = quantize(lstm.state_dict(), 2)
    save_compressed(tmp_path / "q.safetensors", small, report, {"input_size": 6, "hidden_size": 8})
    state, meta = load_compressed(tmp_path / "q.safetensors")
    fresh = nn.LSTM(meta["config"]["input_size"], meta["config"]["hidden_size"], num_layers=2)
    fresh.load_state_dict(state)
    x = torch.randn(4, 2, 6)
    reference = nn.LSTM(6, 8, num_layers=2)
    reference.load_state_dict(small)
    with torch.no_grad():
        assert torch.equal(fresh(x)[0], reference(x)[0])


def test_file_is_really_smaller(tmp_path):
    torch.manual_seed(0)
    lstm = nn.LSTM(128, 128, num_layers=2)
    plain = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in lstm.state_dict().items()}, str(plain))
    sizes = {}
    for blocks in ("gates_if", "all_gates"):
        small, report = quantize(lstm, 2, blocks=blocks)
        path = save_compressed(tmp_path / f"{blocks}.safetensors", small, report)
        sizes[blocks] = path.stat().st_size
        # the tensor data after the JSON header is exactly what the report predicts
        header = int.from_bytes(path.read_bytes()[:8], "little")
        assert sizes[blocks] - 8 - header == report.model_bytes_after
    plain_size = plain.stat().st_size
    assert sizes["gates_if"] < 0.6 * plain_size  # half the weights at 2 bits
    assert sizes["all_gates"] < 0.15 * plain_size  # ~1/16 plus biases and metadata


def test_tied_weights_are_stored_once(tmp_path):
    torch.manual_seed(0)
    model = nn.Module()
    model.emb = nn.Embedding(50, 16)
    model.rnn = nn.LSTM(16, 16)
    model.out = nn.Linear(16, 50)
    model.out.weight = model.emb.weight
    small, report = round_clip(model, 0.25, clip=0.5)
    path = save_compressed(tmp_path / "tied.safetensors", small, report)
    state, meta = load_compressed(path)
    assert meta["aliases"] == {"out.weight": "emb.weight"}
    assert torch.equal(state["out.weight"], small.out.weight)
    model.load_state_dict(state)


def test_projected_model_saves_exactly_and_spec_path(tmp_path, tiny_lm):
    small, report = low_rank(tiny_lm, 2)
    project = structure_projector(report)
    with torch.no_grad():
        for p in small.parameters():
            p.add_(0.01 * torch.randn_like(p))
    # the old report no longer matches: re-encoding drifts by more than the tolerance
    with pytest.raises(ConfigError, match="structure_projector"):
        save_compressed(tmp_path / "stale.safetensors", small, report)
    new_report = project(small)
    save_compressed(tmp_path / "p.safetensors", small, new_report)
    state, _ = load_compressed(tmp_path / "p.safetensors")
    assert all(torch.equal(state[k], v) for k, v in small.state_dict().items())
    # a payload-free spec re-encodes rounding exactly
    rounded, r_report = round_clip(tiny_lm, 0.2, clip=0.4)
    save_compressed(tmp_path / "spec.safetensors", rounded, r_report.to_dict())
    state, _ = load_compressed(tmp_path / "spec.safetensors")
    assert all(torch.equal(state[k], v) for k, v in rounded.state_dict().items())


def _rewrite(src, dst, edit_meta=None, edit_tensors=None):
    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    if edit_meta:
        edit_meta(meta)
    if edit_tensors:
        edit_tensors(tensors)
    save_file(tensors, str(dst), metadata=meta)
    return dst


def test_rejected_files(tmp_path, tiny_lm):
    small, report = quantize(tiny_lm, 2)
    good = save_compressed(tmp_path / "good.safetensors", small, report)

    def newer(meta):
        meta["format_version"] = str(FORMAT_VERSION + 1)

    def truncate_codes(tensors):
        key = next(k for k in tensors if k.endswith("::codes"))
        tensors[key] = tensors[key][:-1].clone()

    def reshape_scales(tensors):
        key = next(k for k in tensors if k.endswith("::scales"))
        tensors[key] = torch.ones(3, 1)

    def drop_rest(tensors):
        del tensors["rnn.weight_hh_l0::rest"]

    cases = {
        "newer.safetensors": (newer, None, "newer than this g2lstm"),
        "nometa.safetensors": (lambda m: m.clear(), None, "no 'g2lstm-compressed' metadata"),
        "badjson.safetensors": (
            lambda m: m.update(compressed="{"),
            None,
            "corrupt compression metadata",
        ),
        "codes.safetensors": (None, truncate_codes, "packed codes must be"),
        "scales.safetensors": (None, reshape_scales, "scales"),
        "rest.safetensors": (None, drop_rest, "inconsistent compressed file|rest"),
    }
    for name, (edit_meta, edit_tensors, match) in cases.items():
        path = _rewrite(good, tmp_path / name, edit_meta, edit_tensors)
        with pytest.raises(CheckpointError, match=match) as info:
            load_compressed(path)
        assert name in str(info.value)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated.safetensors"):
        load_compressed(truncated)
    with pytest.raises(CheckpointError, match="no such file"):
        load_compressed(tmp_path / "missing.safetensors")


def test_metadata_is_json_and_save_errors(tmp_path, tiny_lm):
    small, report = quantize(tiny_lm, 2)
    path = save_compressed(tmp_path / "m.safetensors", small, report)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "g2lstm-compressed"
    compressed = json.loads(meta["compressed"])
    entry = compressed["rnn.weight_ih_l0"]
    assert entry["rest"] == [[20, 40]]
    assert [b["block"]["gate"] for b in entry["blocks"]] == ["i", "f"]
    assert entry["blocks"][0]["storage"]["codes"]["width"] == 2
    with pytest.raises(ConfigError, match="JSON"):
        save_compressed(tmp_path / "x.safetensors", small, report, config={"f": object()})
    with pytest.raises(ConfigError, match="does not exist"):
        save_compressed(tmp_path / "nodir" / "x.safetensors", small, report)
    with pytest.raises(ConfigError, match="does not fit"):
        save_compressed(tmp_path / "x.safetensors", nn.LSTM(3, 3), report)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("width", range(1, 17))
def test_packing_round_trip(width):
    gen = torch.Generator().manual_seed(width)
    codes = torch.randint(0, 2**width, (37,), generator=gen)
    codes[0], codes[1] = 0, 2**width - 1
    packed = pack_codes(codes, width)
    assert packed.dtype == torch.uint8 and packed.numel() == packed_size(37, width)
    assert torch.equal(unpack_codes(packed, width, 37), codes)
    with pytest.raises(ConfigError, match="do not fit"):
        pack_codes(torch.tensor([2**width]), width)


def test_minimal_spec_list_and_overlap(tmp_path, tiny_lm):
    rounded, report = round_clip(tiny_lm, 0.5)
    spec = [
        {"block": b.block.to_dict(), "method": "round", "params": {"step": 0.5}}
        for b in report.blocks
    ]
    save_compressed(tmp_path / "s.safetensors", rounded, spec)
    state, meta = load_compressed(tmp_path / "s.safetensors")
    assert all(torch.equal(state[k], v) for k, v in rounded.state_dict().items())
    stored = meta["compressed"]["rnn.weight_hh_l0"]["blocks"][0]["params"]
    assert stored == {"step": 0.5, "clip": None}
    with pytest.raises(ConfigError, match="overlap"):
        save_compressed(tmp_path / "o.safetensors", rounded, spec + spec[:1])
    with pytest.raises(ConfigError, match="needs the parameter"):
        save_compressed(tmp_path / "o.safetensors", rounded, [{**spec[0], "params": {}}])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_saves_and_loads_on_cpu(tmp_path, tiny_lm):
    cuda_model = tiny_lm.cuda()
    cases = ((quantize, {"bits": 4}), (round_clip, {"step": 0.2}), (low_rank, {"rank": 3}))
    for fn, kwargs in cases:
        small, report = fn(cuda_model, **kwargs)
        assert all(b.payload[next(iter(b.payload))].is_cuda for b in report.blocks)
        save_compressed(tmp_path / "c.safetensors", small, report)
        state, _ = load_compressed(tmp_path / "c.safetensors")
        for name, tensor in small.state_dict().items():
            # low-rank factors are multiplied by a different BLAS on the CPU: last-ulp only
            torch.testing.assert_close(state[name], tensor.cpu(), rtol=1e-6, atol=1e-7)


def test_tiny_drift_is_re_encoded_with_a_warning(tmp_path, tiny_lm):
    small, report = low_rank(tiny_lm, 2)
    with torch.no_grad():
        small.rnn.weight_hh_l0[0, 0] += 1e-7  # off the rank-2 set, but only just
    with pytest.warns(UserWarning, match=r"weight_hh_l0\[i\]' was re-encoded"):
        save_compressed(tmp_path / "d.safetensors", small, report)
    state, _ = load_compressed(tmp_path / "d.safetensors")
    block = state["rnn.weight_hh_l0"][:10].double()
    assert torch.linalg.svdvals(block)[2:].max() < 1e-5
    torch.testing.assert_close(state["rnn.weight_hh_l0"], small.rnn.weight_hh_l0.detach())
