"""Checkpoint directories: exact round trip, verification, safe refusal of pickles."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn

from g2lstm.errors import CheckpointError
from g2lstm.nn.fast.autotune import cpu_model
from g2lstm.train import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from g2lstm.train import checkpoint as checkpoint_module


class TiedLM(nn.Module):
    """Embedding -> LSTM -> Linear with the decoder weight tied to the embedding."""

    def __init__(self, vocab: int = 11, hidden: int = 6) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.rnn = nn.LSTM(hidden, hidden)
        self.decoder = nn.Linear(hidden, vocab)
        self.decoder.weight = self.embedding.weight
        self.register_buffer("steps_seen", torch.tensor(7, dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.rnn(self.embedding(x))[0])


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int = 3) -> None:
    for _ in range(steps):
        optimizer.zero_grad()
        out = model(torch.randint(0, 11, (5, 2)))
        out.logsumexp(-1).mean().backward()
        optimizer.step()


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.99)),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    ],
    ids=["adam", "sgd-momentum"],
)
def test_round_trip_is_bit_identical_and_training_continues_identically(tmp_path, make_optimizer):
    model = TiedLM()
    optimizer = make_optimizer(model.parameters())
    _train(model, optimizer)
    meta = {"config": {"vocab": 11, "hidden": 6}, "vocab": ["<unk>", "a"], "epoch": 2}
    path = save_checkpoint(
        tmp_path / "ckpt",
        model_state=model.state_dict(),
        trainer_state={"optimizer": optimizer.state_dict(), "offset": 42, "best": 1.5},
        meta=meta,
    )
    assert sorted(p.name for p in path.iterdir()) == [
        "meta.json",
        "model.safetensors",
        "trainer.safetensors",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]

    ckpt = load_checkpoint(path)
    assert ckpt.meta == meta
    assert ckpt.info["format_version"] == CHECKPOINT_FORMAT
    assert ckpt.info["versions"]["torch"] == torch.__version__
    assert ckpt.info["versions"]["cpu"] == cpu_model()  # results differ between CPU models
    for name, tensor in model.state_dict().items():
        assert ckpt.model_state[name].dtype == tensor.dtype
        assert torch.equal(ckpt.model_state[name], tensor), name
    # the tied weight is stored once and comes back as one tensor
    assert ckpt.model_state["decoder.weight"] is ckpt.model_state["embedding.weight"]
    assert ckpt.info["files"]["model.safetensors"]["aliases"] == {
        "decoder.weight": "embedding.weight"
    }
    assert ckpt.trainer_state["offset"] == 42

    clone = TiedLM()
    clone_opt = make_optimizer(clone.parameters())
    clone.load_state_dict(ckpt.model_state)
    clone_opt.load_state_dict(ckpt.trainer_state["optimizer"])
    state = torch.get_rng_state()
    _train(model, optimizer, 2)
    torch.set_rng_state(state)
    _train(clone, clone_opt, 2)
    for (name, a), b in zip(model.state_dict().items(), clone.state_dict().values()):
        assert torch.equal(a, b), name


def test_model_only_checkpoint_and_file_path_accepted(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(0)}
    save_checkpoint(tmp_path / "c", model_state=state)
    ckpt = load_checkpoint(tmp_path / "c" / "model.safetensors")
    assert ckpt.trainer_state is None and ckpt.meta == {}
    assert torch.equal(ckpt.model_state["w"], state["w"])
    assert ckpt.model_state["b"].shape == (0,)


def test_views_of_shared_memory_are_stored_as_copies(tmp_path):
    base = torch.arange(12.0)
    state = {"all": base, "head": base[:4], "strided": base.view(3, 4).t()}
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "c", model_state=state))
    for name, tensor in state.items():
        assert torch.equal(ckpt.model_state[name], tensor), name


def test_overwriting_keeps_a_complete_directory(tmp_path):
    save_checkpoint(tmp_path / "c", model_state={"w": torch.ones(2)}, meta={"v": 1})
    save_checkpoint(tmp_path / "c", model_state={"w": torch.zeros(2)}, meta={"v": 2})
    assert load_checkpoint(tmp_path / "c").meta == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["c"]


def test_failed_save_leaves_previous_checkpoint_untouched(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c", model_state={"w": torch.ones(3)})
    before = {p.name: p.read_bytes() for p in path.iterdir()}

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(CheckpointError, match="no space left"):
        save_checkpoint(tmp_path / "c", model_state={"w": torch.zeros(3)})
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["c"]


def test_meta_must_be_json(tmp_path):
    with pytest.raises(CheckpointError, match="JSON-serialisable"):
        save_checkpoint(tmp_path / "c", model_state={}, meta={"t": torch.ones(1)})
    with pytest.raises(CheckpointError, match=r"trainer_state\['opt'\]"):
        save_checkpoint(tmp_path / "c", model_state={}, trainer_state={"opt": nn.Linear(1, 1)})
    assert list(tmp_path.iterdir()) == []


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nothing")


def test_truncated_file_names_file_and_previous_checkpoint(tmp_path):
    older = save_checkpoint(tmp_path / "step-000000010", model_state={"w": torch.ones(100)})
    path = save_checkpoint(tmp_path / "step-000000020", model_state={"w": torch.ones(100)})
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated") as info:
        load_checkpoint(path)
    assert "model.safetensors" in str(info.value)
    assert str(older) in str(info.value)
    # without verification the safetensors parser error is wrapped too
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*truncated or corrupt"):
        load_checkpoint(path, verify=False)


def test_flipped_byte_fails_sha256(tmp_path):
    path = save_checkpoint(
        tmp_path / "c", model_state={"w": torch.ones(4)}, trainer_state={"m": torch.ones(50)}
    )
    data = bytearray((path / "trainer.safetensors").read_bytes())
    data[-7] ^= 0xFF
    (path / "trainer.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"trainer\.safetensors is corrupt: sha256"):
        load_checkpoint(path)


def test_newer_format_version_asks_to_upgrade(tmp_path):
    path = save_checkpoint(tmp_path / "c", model_state={"w": torch.ones(1)})
    record = json.loads((path / "meta.json").read_text())
    record["format_version"] = CHECKPOINT_FORMAT + 1
    (path / "meta.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match=r"format version 2.*upgrade g2lstm"):
        load_checkpoint(path)


def test_missing_manifest_is_incomplete(tmp_path):
    path = save_checkpoint(tmp_path / "c", model_state={"w": torch.ones(1)})
    (path / "meta.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete checkpoint"):
        load_checkpoint(path)


class _Marker:
    """Unpickling this object creates a file: proof that the loader executed pickle code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("where", ["pt-file", "zip-pt-file", "inside-directory", "meta-json"])
def test_pickle_is_refused_without_unpickling(tmp_path, where):
    marker = tmp_path / "PWNED"
    payload = pickle.dumps({"w": _Marker(str(marker))}, protocol=4)
    if where == "pt-file":
        target = tmp_path / "model.pt"
        target.write_bytes(payload)
    elif where == "zip-pt-file":
        target = tmp_path / "ckpt.bin"
        torch.save({"w": _Marker(str(marker))}, target)  # writes the zip archive, runs nothing
    else:
        target = save_checkpoint(tmp_path / "c", model_state={"w": torch.ones(1)})
        name = "model.safetensors" if where == "inside-directory" else "meta.json"
        (target / name).write_bytes(payload)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="looks like a pickle/torch.save file"):
        load_checkpoint(target)
    assert not marker.exists()
    # sanity check of the fixture: unpickling it *would* have created the marker
    pickle.loads(payload).get("w").close()
    assert marker.exists()


def test_other_non_checkpoint_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="is a file; a g2lstm checkpoint is a directory"):
        load_checkpoint(tmp_path / "notes.txt")


def test_no_pickle_or_unsafe_torch_load_in_package():
    unsafe_load = re.compile(r"torch\.load\((?![^)]*weights_only=True)")
    files = list(Path(checkpoint_module.__file__).parent.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from) (pickle|dill|cloudpickle)\b", text, re.M), path
        assert not unsafe_load.search(text), path


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_round_trip_and_map_location(tmp_path):
    model = TiedLM().cuda()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randint(0, 11, (5, 2), device="cuda")).sum().backward()
    optimizer.step()
    path = save_checkpoint(
        tmp_path / "c",
        model_state=model.state_dict(),
        trainer_state={"optimizer": optimizer.state_dict()},
    )
    on_cpu = load_checkpoint(path)
    assert all(t.device.type == "cpu" for t in on_cpu.model_state.values())
    on_gpu = load_checkpoint(path, map_location="cuda:0")
    for name, tensor in model.state_dict().items():
        assert on_gpu.model_state[name].device == tensor.device
        assert torch.equal(on_gpu.model_state[name], tensor), name
