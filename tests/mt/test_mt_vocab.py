"""Vocab: special ids, frequency order, cut-offs, encode/decode, JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from g2lstm.errors import ConfigError, DataError
from g2lstm.mt.vocab import SPECIALS, Vocab

LINES = ["a b b c@@ d", "b c@@ d e", "a b"]  # b:4, a:2, c@@:2, d:2, e:1


def test_specials_then_frequency_order() -> None:
    v = Vocab.build(LINES)
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id) == (0, 1, 2, 3)
    assert v.tokens[:4] == SPECIALS == ("<pad>", "<unk>", "<s>", "</s>")
    assert v.tokens[4:] == ("b", "a", "c@@", "d", "e")  # ties in string order
    assert len(v) == 9 and "e" in v and "zzz" not in v


def test_min_freq_and_max_size() -> None:
    assert Vocab.build(LINES, min_freq=2).tokens[4:] == ("b", "a", "c@@", "d")
    assert Vocab.build(LINES, max_size=6).tokens == (*SPECIALS, "b", "a")
    with pytest.raises(ConfigError, match="max_size"):
        Vocab.build(LINES, max_size=3)
    with pytest.raises(ConfigError, match="min_freq"):
        Vocab.build(LINES, min_freq=0)


def test_encode_decode() -> None:
    v = Vocab.build(LINES)
    ids = v.encode("a c@@ d zzz", add_bos=True, add_eos=True)
    assert ids == [2, 5, 6, 7, 1, 3]
    assert v.encode(["b", "e"]) == [4, 8]
    # decode stops at </s>, drops <s> and <pad>, keeps <unk> unless asked
    assert v.decode([*ids, 4, 0, 0]) == "a c@@ d <unk>"
    assert v.decode(ids, keep_unk=False) == "a c@@ d"
    assert v.decode(torch.tensor([5, 4, 3, 5])) == "a b"
    assert v.decode_tokens(np.array([0, 2, 8])) == ["e"]
    with pytest.raises(ConfigError, match="outside the vocabulary"):
        v.decode([99])


def test_dict_and_file_round_trip(tmp_path: Path) -> None:
    v = Vocab.build(["ä ö ü ß", "ß"])
    data = json.loads(json.dumps(v.to_dict()))
    assert Vocab.from_dict(data) == v
    v.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json") == v


def test_invalid_vocabularies(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="first tokens"):
        Vocab(["a", "<pad>", "<unk>", "<s>", "</s>"])
    with pytest.raises(DataError, match="more than once"):
        Vocab([*SPECIALS, "a", "a"])
    with pytest.raises(DataError, match="whitespace"):
        Vocab([*SPECIALS, "a b"])
    with pytest.raises(DataError, match="version"):
        Vocab.from_dict({"format": "g2lstm.mt.vocab", "version": 99, "tokens": list(SPECIALS)})
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(DataError, match="not a JSON vocabulary"):
        Vocab.load(tmp_path / "bad.json")
