"""GracefulInterrupt: first signal sets a flag, a second Ctrl-C aborts, handlers restored."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from g2lstm.train import GracefulInterrupt


def test_first_signal_sets_flag_second_sigint_raises(capsys):
    before = signal.getsignal(signal.SIGINT)
    with GracefulInterrupt() as stop:
        assert stop.installed and not stop.requested
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and stop.received == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
    assert not stop.installed
    assert "received SIGINT" in capsys.readouterr().err


def test_sigterm_sets_flag_and_repeats_are_ignored():
    before = signal.getsignal(signal.SIGTERM)
    with GracefulInterrupt(quiet=True) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.received == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_loop_can_save_and_exit():
    saved = []
    with GracefulInterrupt(quiet=True) as stop:
        for step in range(100):
            if step == 3:
                os.kill(os.getpid(), signal.SIGTERM)
            if stop.requested:
                saved.append(step)
                break
    assert saved == [3]


def test_handlers_restored_after_exception():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(ValueError), GracefulInterrupt():
        raise ValueError
    assert signal.getsignal(signal.SIGINT) is before


def test_outside_main_thread_installs_nothing():
    result = {}

    def worker():
        with GracefulInterrupt() as stop:
            result["installed"] = stop.installed

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert result == {"installed": False}
