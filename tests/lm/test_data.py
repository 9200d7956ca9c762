"""Tests of g2lstm.lm.data: tokenisation, vocabulary, token-id cache (batching: test_batching)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from g2lstm.errors import DataError
from g2lstm.lm import data
from g2lstm.lm.data import (
    EOS,
    UNK,
    Corpus,
    Vocabulary,
    batchify,
    read_lines,
    tokenize_lines,
)

SHARED_DATA = Path(
    os.environ.get("G2LSTM_DATA") or Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def write_corpus(folder: Path, train: bytes, valid: bytes, test: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"{name}.txt").write_bytes(text)
    return folder


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    # BOM, CRLF, an empty line, non-ASCII tokens; no <unk> in train.
    train = "\ufeff the cat sat\r\n\r\n on the mat ünïcode\n".encode()
    return write_corpus(tmp_path / "c", train, b" the dog sat\n", " the cat ünïcode\n".encode())


# ----------------------------------------------------------------------------- tokenisation
def test_tokenize_lines_adds_one_eos_per_line_even_when_empty() -> None:
    lines = [" a  b\n", "\n", "c\td\r\n"]
    assert list(tokenize_lines(lines)) == [["a", "b", EOS], [EOS], ["c", "d", EOS]]


def test_read_lines_strips_bom_and_accepts_crlf(corpus_dir: Path) -> None:
    lines = list(read_lines(corpus_dir / "train.txt"))
    assert lines == [" the cat sat\n", "\n", " on the mat ünïcode\n"]


def test_non_utf8_bytes_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "train.txt"
    bad.write_bytes(b"fine line\nstill fine\ncaf\xe9 au lait\n")
    with pytest.raises(DataError, match=r"train\.txt, line 3: byte 0xe9 at column 4"):
        list(read_lines(bad))
    folder = write_corpus(tmp_path / "c", b"a\n", b"a\n\xff\n", b"a\n")
    with pytest.raises(DataError, match=r"valid\.txt, line 2.*UTF-8"):
        Corpus.load(folder)


# ----------------------------------------------------------------------------- vocabulary
def test_vocabulary_roundtrip_and_equality(tmp_path: Path) -> None:
    vocab = Vocabulary(["a", EOS, "b"])
    assert len(vocab) == 3
    assert vocab.index("b") == 2
    assert vocab.eos_id == 1
    assert vocab.unk_id is None
    assert "a" in vocab
    assert "z" not in vocab
    with pytest.raises(KeyError, match="no <unk>"):
        vocab.index("z")
    assert vocab.encode(["b", "a"]) == [2, 0]
    assert vocab.decode(np.array([0, 2])) == ["a", "b"]
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab
    assert Vocabulary(["b", "a", EOS]) != vocab
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json") == vocab
    assert Vocabulary.load(tmp_path / "v.json").sha256() == vocab.sha256()
    assert vocab.add(UNK) == 3
    assert vocab.index("z") == 3
    with pytest.raises(DataError, match="not a g2lstm vocabulary"):
        Vocabulary.from_dict({"tokens": ["a"]})
    with pytest.raises(DataError, match="not a g2lstm vocabulary"):
        Vocabulary.from_dict(["a"])  # type: ignore[arg-type]
    with pytest.raises(DataError, match="duplicate"):
        Vocabulary(["a", "a"])


# ----------------------------------------------------------------------------- corpus
def test_corpus_counts_ids_and_oov(corpus_dir: Path) -> None:
    corpus = Corpus.load(corpus_dir, cache=False)
    # First-appearance order over train; <unk> appended because valid has an OOV word.
    assert list(corpus.vocab) == ["the", "cat", "sat", EOS, "on", "mat", "ünïcode", UNK]
    assert corpus.vocab.decode(corpus.train) == [
        "the",
        "cat",
        "sat",
        EOS,
        EOS,
        "on",
        "the",
        "mat",
        "ünïcode",
        EOS,
    ]
    assert corpus.vocab.decode(corpus.valid) == ["the", UNK, "sat", EOS]
    assert (corpus.info["train"].n_lines, corpus.info["train"].n_tokens) == (3, 10)
    assert corpus.oov_rate("train") == 0.0
    assert corpus.oov_rate("valid") == pytest.approx(1 / 4)
    assert corpus.oov_rate("test") == 0.0
    assert corpus.train.dtype == np.int32
    assert corpus.tensor("valid").dtype == torch.int64
    assert corpus.cache_path is None
    assert not (corpus_dir / ".g2lstm-cache").exists()


def test_existing_unk_is_reused(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "c", b"a <unk> b\n", b"a zz\n", b"b\n")
    corpus = Corpus.load(folder, cache=False)
    assert len(corpus.vocab) == 4
    assert corpus.vocab.decode(corpus.valid) == ["a", UNK, EOS]


def test_fixed_vocabulary_without_unk_refuses_oov(corpus_dir: Path) -> None:
    vocab = Vocabulary(["the", "cat", "sat", EOS, "on", "mat", "ünïcode"])
    with pytest.raises(DataError, match=r"'valid': 1.*no <unk>"):
        Corpus.load(corpus_dir, vocab=vocab)
    with pytest.raises(DataError, match="no <eos>"):
        Corpus.load(corpus_dir, vocab=Vocabulary(["the"]))
    with_unk = Corpus.load(corpus_dir, vocab=Vocabulary([*vocab, UNK]))
    assert with_unk.oov_rate("valid") == pytest.approx(1 / 4)


def test_missing_and_empty_splits(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "train.txt").write_text("a\n")
    with pytest.raises(DataError, match=r"missing valid\.txt, test\.txt.*expected layout"):
        Corpus.load(folder)
    folder = write_corpus(tmp_path / "d", b"a\n", b"", b"a\n")
    with pytest.raises(DataError, match=r"valid\.txt has 0 tokens"):
        Corpus.load(folder)


def test_cache_hit_skips_tokenisation(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = Corpus.load(corpus_dir)
    assert first.cache_path is not None
    assert first.cache_path.parent == corpus_dir / ".g2lstm-cache"

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("re-tokenised although the cache is valid")

    monkeypatch.setattr(data, "_tokenize", boom)
    second = Corpus.load(corpus_dir)
    assert isinstance(second.train, np.memmap)
    assert second.vocab == first.vocab
    for split in data.SPLITS:
        np.testing.assert_array_equal(second[split], first[split])
    assert second.info == first.info


def test_cache_invalidated_when_a_file_changes(corpus_dir: Path) -> None:
    first = Corpus.load(corpus_dir)
    (corpus_dir / "valid.txt").write_bytes(b" the mat\n the cat\n")
    second = Corpus.load(corpus_dir)
    assert second.cache_path != first.cache_path
    assert second.vocab.decode(second.valid) == ["the", "mat", EOS, "the", "cat", EOS]
    assert second.oov_rate("valid") == 0.0
    # The stale entry of this folder is pruned.
    assert [p.name for p in (corpus_dir / ".g2lstm-cache").iterdir()] == [second.cache_path.name]


def test_corrupt_cache_entry_is_rebuilt(corpus_dir: Path) -> None:
    first = Corpus.load(corpus_dir)
    np.save(first.cache_path / "train.npy", np.zeros(3, dtype=np.int32))
    again = Corpus.load(corpus_dir)
    assert again.info["train"].n_tokens == 10
    assert len(again.train) == 10


def test_read_only_folder_caches_in_user_dir(corpus_dir: Path, tmp_path: Path) -> None:
    corpus_dir.chmod(0o555)
    try:
        corpus = Corpus.load(corpus_dir)
        assert sorted(p.name for p in corpus_dir.iterdir()) == [
            "test.txt",
            "train.txt",
            "valid.txt",
        ]
        assert corpus.cache_path is not None
        assert corpus.cache_path.parent == tmp_path / "xdg" / "g2lstm" / "lm"
        assert Corpus.load(corpus_dir).cache_path == corpus.cache_path
    finally:
        corpus_dir.chmod(0o755)


def test_explicit_cache_dir_and_meta(corpus_dir: Path, tmp_path: Path) -> None:
    corpus = Corpus.load(corpus_dir, cache_dir=tmp_path / "cache")
    assert corpus.cache_path is not None
    assert corpus.cache_path.parent == tmp_path / "cache"
    meta = json.loads((corpus.cache_path / "meta.json").read_text())
    assert meta["tokenizer"] == data.TOKENIZER_VERSION
    assert meta["splits"]["valid"] == [1, 4, 1]


# ----------------------------------------------------------------------------- real data
@pytest.mark.data
def test_real_ptb(tmp_path: Path) -> None:
    folder = SHARED_DATA / "ptb"
    if not (folder / "train.txt").is_file():
        pytest.skip(f"PTB not found under {folder}")
    t0 = time.perf_counter()
    corpus = Corpus.load(folder, cache_dir=tmp_path / "cache")
    first = time.perf_counter() - t0
    assert len(corpus.vocab) == 10_000
    assert UNK in corpus.vocab
    assert [len(corpus[s]) for s in data.SPLITS] == [929_589, 73_760, 82_430]
    assert corpus.oov_rate("valid") == 0.0
    assert corpus.oov_rate("test") == 0.0
    t0 = time.perf_counter()
    again = Corpus.load(folder, cache_dir=tmp_path / "cache")
    assert time.perf_counter() - t0 < max(0.5, first / 4)
    assert again.vocab == corpus.vocab
    train = batchify(again.train, 20, name="train")
    assert train.shape == (929_589 // 20, 20)
