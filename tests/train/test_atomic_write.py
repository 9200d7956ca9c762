"""Atomic writes: the final name only ever holds a complete file."""

from __future__ import annotations

import errno
import json
import os

import pytest

from g2lstm.errors import CheckpointError
from g2lstm.train import (
    atomic_directory,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)


def test_write_bytes_text_json(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "b.txt", "héllo")
    atomic_write_json(tmp_path / "c.json", {"x": [1, 2.5, None]})
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo"
    assert json.loads((tmp_path / "c.json").read_text()) == {"x": [1, 2.5, None]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.json"]


def test_overwrite_keeps_permissions(tmp_path):
    target = tmp_path / "f"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o640


def test_exception_mid_write_keeps_previous_file(tmp_path):
    target = tmp_path / "ckpt.bin"
    original = os.urandom(4096)
    target.write_bytes(original)
    with pytest.raises(RuntimeError, match="killed"), atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"half of the new checkpoint")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.bin"]  # no temporary left


def test_enospc_is_checkpoint_error_and_previous_file_survives(tmp_path, monkeypatch):
    target = tmp_path / "meta.json"
    target.write_text('{"old": true}')
    real_fsync = os.fsync

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(CheckpointError, match="no space left") as info:
        atomic_write_json(target, {"new": True})
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert str(target) in str(info.value)
    assert "disk space" in str(info.value)
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"]


def test_enospc_from_the_writer_itself(tmp_path):
    target = tmp_path / "x"
    with pytest.raises(CheckpointError, match=r"no space left.*x"), atomic_path(target):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_missing_parent_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        atomic_write_text(tmp_path / "nope" / "f.txt", "x")


def test_not_json_serialisable(tmp_path):
    with pytest.raises(CheckpointError, match="not JSON-serialisable"):
        atomic_write_json(tmp_path / "f.json", {"x": object()})
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_replaces_whole_or_nothing(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"

    with pytest.raises(ValueError, match="boom"), atomic_directory(target) as tmp:
        (tmp / "a").write_text("2")
        raise ValueError("boom")
    assert (target / "a").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]

    with atomic_directory(target) as tmp:
        (tmp / "b").write_text("3")
    assert [p.name for p in target.iterdir()] == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
