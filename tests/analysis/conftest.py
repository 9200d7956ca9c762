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
        (
            torch.randint(0, VOCAB, (steps, width), generator=g),
            torch.randint(0, VOCAB, (steps, width), generator=g),
        )
        for _ in range(n)
    ]


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


# ---------------------------------------------------------------- tiny translation runs
#: Target words by source word index: English function words, punctuation and content words.
MT_WORDS = ["the", "a", "man", "dog", "and", ",", ".", "of", "street", "walking", "red", "is"]


def _mt_pair(rng) -> tuple[str, str]:
    """Source ``s3 s7 s1`` -> target ``man walking a``: word-by-word, in reverse order."""
    ids = [rng.randrange(len(MT_WORDS)) for _ in range(rng.randint(2, 7))]
    return " ".join(f"s{i}" for i in ids), " ".join(MT_WORDS[i] for i in reversed(ids))


def make_mt_runs(root: Path, cells: tuple[str, ...] = ("g2", "lstm")) -> dict[str, Path]:
    """A prepared toy corpus (joint BPE, 25 merges) and one 2-layer tiny run per cell.

    Returns ``{"data": prepared folder, cell: run folder, ...}``. About 2 s on one core.
    """
    import random

    from g2lstm.mt.config import load_config
    from g2lstm.mt.prepare import prepare_dataset
    from g2lstm.mt.trainer import train

    rng = random.Random(0)
    raw = root / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 300), ("valid", 24), ("test", 12)):
        pairs = [_mt_pair(rng) for _ in range(n)]
        (raw / f"{split}.de").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
        (raw / f"{split}.en").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    prep = root / "prep"
    prepare_dataset(raw, prep, "de", "en", tokenize=False, bpe_merges=25)
    out: dict[str, Path] = {"data": prep}
    for cell in cells:
        cfg = load_config(
            "tiny",
            overrides=[
                f"train.data={prep}",
                f"model.cell={cell}",
                "model.layers=2",
                "model.emb=16",
                "model.hidden=16",
                "train.valid_bleu=false",
                "train.max_tokens=300",
                "train.max_updates=12",
                "train.epochs=1",
                "decode.beam=1",
            ],
        )
        train(cfg, root / cell, show_progress=False)
        out[cell] = root / cell
    return out


@pytest.fixture(scope="session")
def mt_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny trained MT runs (G2-LSTM and LSTM) and their prepared data (see make_mt_runs)."""
    torch.set_num_threads(1)
    return make_mt_runs(tmp_path_factory.mktemp("mt"))


def make_lm_runs(root: Path, cells: tuple[str, ...] = ("g2", "lstm")) -> dict[str, Path]:
    """A toy word corpus and one tiny one-epoch LM run per cell: ``{"data": dir, cell: run}``."""
    import random

    from g2lstm.lm import preset_config, train

    rng = random.Random(0)
    words = ["the", "and", ".", "economy", "is", "of", "w1", "w2", "w3"]
    data = root / "data"
    data.mkdir(parents=True)
    for split, n in (("train", 40), ("valid", 12), ("test", 4)):
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) for _ in range(n)]
        (data / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = {"data": data}
    for cell in cells:
        cfg = preset_config(
            "tiny",
            {
                "data": str(data),
                "model.cell": cell,
                "train.epochs": 1,
                "train.progress": False,
                "train.threads": 1,
            },
        )
        train(cfg, root / cell)
        out[cell] = root / cell
    return out


@pytest.fixture(scope="session")
def lm_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny trained LM runs (G2-LSTM and LSTM) and their corpus (see make_lm_runs)."""
    torch.set_num_threads(1)
    return make_lm_runs(tmp_path_factory.mktemp("lm"))
