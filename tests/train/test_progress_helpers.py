"""Progress bar wrapper and timing helpers."""

from __future__ import annotations

import math

import pytest

from g2lstm.train import Throughput, format_duration, progress


def test_progress_iterates_and_can_be_disabled():
    assert list(progress(range(3), desc="x", disable=True)) == [0, 1, 2]
    bar = progress(total=4, disable=True)
    bar.update(4)
    bar.close()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(4.24, "4.2s"), (65, "1m05s"), (3725.4, "1h02m05s"), (-1, "?"), (math.inf, "?")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_throughput_and_eta():
    now = [100.0]
    meter = Throughput(clock=lambda: now[0])
    assert meter.per_second == 0.0 and meter.eta(10) == math.inf
    meter.update(500)
    now[0] = 102.0
    assert meter.per_second == 250.0
    assert meter.eta(1000) == 4.0
    meter.reset()
    assert meter.count == 0 and meter.elapsed == 0.0


def test_log_lines_print_on_schedule_with_eta() -> None:
    import io

    from g2lstm.train.progress import LogLines

    now, out = [0.0], io.StringIO()
    bar = LogLines(
        total=100,
        desc="main epoch 2",
        every=10,
        unit="batch",
        initial=20,
        stream=out,
        clock=lambda: now[0],
    )
    bar.set_postfix(step=120, loss="4.951", ppl="141.3", tok_s="10412")
    for _ in range(10):  # 1 s per batch: a line only once 10 s have passed
        now[0] += 1.0
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "g2lstm: main epoch 2 | batch 30/100 (30%) | step=120 loss=4.951 ppl=141.3 "
        "tok_s=10412 | 1 batch/s | 10.0s elapsed | ETA 1m10s"
    )
    assert lines[1].endswith("| done") and len(lines) == 2
    quiet = io.StringIO()
    short = LogLines(total=5, every=10, stream=quiet, clock=lambda: now[0])
    short.update(5)
    short.close()
    assert quiet.getvalue() == ""  # a loop shorter than the interval prints nothing


def test_progress_off_a_terminal_logs_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    from g2lstm.errors import ConfigError
    from g2lstm.train.progress import ENV_PROGRESS_EVERY, LogLines, set_progress_every

    monkeypatch.setenv(ENV_PROGRESS_EVERY, "5")  # stderr is captured: not a terminal
    bar = progress(total=3, desc="x", disable=True, unit="batch")
    assert isinstance(bar, LogLines) and bar.every == 5 and bar.unit == "batch"
    assert not isinstance(progress(total=3, log=False), LogLines)  # e.g. rank > 0
    set_progress_every(0)
    assert not isinstance(progress(total=3), LogLines)
    monkeypatch.setenv(ENV_PROGRESS_EVERY, "soon")
    with pytest.raises(ConfigError, match="G2LSTM_PROGRESS_EVERY='soon'"):
        progress(total=3)
