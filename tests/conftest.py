"""Shared test fixtures: deterministic seeds, one thread, the real-data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$G2LSTM_DATA`` if set, else ``../shared/data`` beside the checkout, if present."""
    env = os.environ.get("G2LSTM_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if (c / "ptb" / "train.txt").is_file():
            return c
    return None


@pytest.fixture
def real_data() -> Path:
    """The folder with the real corpora (``ptb/``, ``multi30k/``); skips the test if absent."""
    d = shared_data_dir()
    if d is None:
        pytest.skip("real corpora not found: set G2LSTM_DATA or put shared/data beside the repo")
    return d


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
