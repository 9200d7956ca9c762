"""Fixtures for the analysis tests: a tiny recorded language model and its batches."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from g2lstm import G2LSTM

VOCAB = 12
ITOS = [".", "the", "and", "<eos>", *(f"w{i}" for i in range(VOCAB - 4))]


class TinyLM(nn.Module):
    """Embedding -> 2-layer recurrent stack -> linear; ``rnn`` is a G2LSTM or an nn.LSTM."""

    def __init__(self, rnn: nn.LSTM) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 6)
        self.rnn = rnn
        self.out = nn.Linear(rnn.hidden_size, VOCAB)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.emb(x))
        return self.out(h)


def make_g2(seed: int = 0, **kw: object) -> TinyLM:
    torch.manual_seed(seed)
    return TinyLM(G2LSTM(6, 5, num_layers=2, **kw))


def make_lstm(seed: int = 1) -> TinyLM:
    torch.manual_seed(seed)
    return TinyLM(nn.LSTM(6, 5, num_layers=2))


def lm_forward(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))


def make_batches(n: int = 3, steps: int = 6, width: int = 2, seed: int = 3) -> list:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randint(0, VOCAB, (steps, width), generator=g),
         torch.randint(0, VOCAB, (steps, width), generator=g))
        for _ in range(n)
    ]  # fmt: skip


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; asserts the signature and chunk type."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert data[-8:-4] == b"IEND"
    return width, height


@pytest.fixture
def batches() -> list:
    """Three (input, target) batches of shape (6, 2)."""
    return make_batches()


@pytest.fixture
def g2_model():
    """Factory: ``g2_model(seed=0, **g2_options)`` -> a TinyLM on a 2-layer G2LSTM."""
    return make_g2


@pytest.fixture
def lstm_model():
    """Factory: ``lstm_model(seed=1)`` -> a TinyLM on a plain 2-layer nn.LSTM."""
    return make_lstm


@pytest.fixture
def forward():
    """``forward(model, batch) -> mean cross-entropy``."""
    return lm_forward


@pytest.fixture
def itos() -> list[str]:
    return list(ITOS)


@pytest.fixture
def read_png_size():
    """``read_png_size(path) -> (width, height)`` from the PNG header."""
    return png_size
