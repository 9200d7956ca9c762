"""RunLock refuses a second run on the same directory; ensure_writable_dir fails early."""

from __future__ import annotations

import os

import pytest

from g2lstm.errors import TrainingError
from g2lstm.train import RunLock, ensure_writable_dir


def test_second_run_is_refused_with_pid(tmp_path):
    with RunLock(tmp_path) as first:
        assert first.is_locked
        with pytest.raises(TrainingError) as info:
            RunLock(tmp_path).acquire()
        message = str(info.value)
        assert str(tmp_path) in message
        assert f"in use by another g2lstm run (pid {os.getpid()})" in message
        assert "--out" in message
    with RunLock(tmp_path) as again:  # released on exit
        assert again.is_locked
    assert not again.is_locked


def test_other_directories_are_independent(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with RunLock(tmp_path / "a"), RunLock(tmp_path / "b") as b:
        assert b.is_locked


def test_ensure_writable_dir_creates_parents(tmp_path):
    out = ensure_writable_dir(tmp_path / "x" / "y")
    assert out.is_dir()
    assert list(out.iterdir()) == []  # the probe file is removed


def test_ensure_writable_dir_under_a_regular_file(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(TrainingError, match="cannot create output directory") as info:
        ensure_writable_dir(tmp_path / "file" / "sub")
    assert str(tmp_path / "file" / "sub") in str(info.value)
    with pytest.raises(TrainingError, match="not a directory"):
        ensure_writable_dir(tmp_path / "file")


def test_ensure_writable_dir_unwritable(tmp_path, monkeypatch):
    # we run as root, where chmod does not stop writes: simulate EACCES on the probe file
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", denied)
    with pytest.raises(TrainingError, match=r"ro is not writable: Permission denied"):
        ensure_writable_dir(tmp_path / "ro")
