"""Small LSTM models shared by the compression tests."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import pytest
import torch
from torch import nn


class TinyLM(nn.Module):
    """Embedding -> LSTM (2 layers, bidirectional by default) -> Linear, built from a config."""

    def __init__(self, vocab: int, emb: int, hidden: int, layers: int, bidirectional: bool) -> None:
        super().__init__()
        self.config = {
            "vocab": vocab,
            "emb": emb,
            "hidden": hidden,
            "layers": layers,
            "bidirectional": bidirectional,
        }
        self.embedding = nn.Embedding(vocab, emb)
        self.rnn = nn.LSTM(emb, hidden, num_layers=layers, bidirectional=bidirectional)
        self.decoder = nn.Linear(hidden * (2 if bidirectional else 1), vocab)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TinyLM:
        return cls(**config)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(T, B)`` token ids -> ``(T, B, vocab)`` logits."""
        return self.decoder(self.rnn(self.embedding(tokens))[0])


def state_checksum(model: nn.Module | Mapping[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes of a state dict."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture
def tiny_lm() -> TinyLM:
    torch.manual_seed(0)
    return TinyLM(vocab=30, emb=12, hidden=10, layers=2, bidirectional=True).eval()


@pytest.fixture
def tokens() -> torch.Tensor:
    return torch.randint(0, 30, (7, 3), generator=torch.Generator().manual_seed(1))


@pytest.fixture
def checksum():
    return state_checksum


@pytest.fixture
def model_cls() -> type[TinyLM]:
    return TinyLM
