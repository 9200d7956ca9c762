"""The one canonical hash of settings and inputs (:mod:`g2lstm.reproduce.digest`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from g2lstm.reproduce.digest import json_sha256, short_hash


@dataclass
class _Settings:
    rank: int


def test_canonical_form_is_pinned():
    # Hashes are stored in DONE.json markers and probe files: their form must not drift.
    text = '{"a": [1, 2], "b": {"c": null, "d": 0.5}}'
    assert json_sha256({"b": {"d": 0.5, "c": None}, "a": (1, 2)}) == (
        hashlib.sha256(text.encode()).hexdigest()
    )


def test_key_order_and_tuples_do_not_matter():
    assert short_hash({"x": 1, "y": [2, 3]}) == short_hash({"y": (2, 3), "x": 1})
    assert short_hash([13]) != short_hash([14])
    assert len(short_hash({})) == 16
    assert json_sha256({}).startswith(short_hash({}))


def test_objects_json_cannot_write_enter_as_their_str():
    assert short_hash({"s": _Settings(4)}) == short_hash({"s": str(_Settings(4))})
    assert short_hash({"s": _Settings(4)}) != short_hash({"s": _Settings(8)})
    assert short_hash([Path("a/b")]) == short_hash(["a/b"])
