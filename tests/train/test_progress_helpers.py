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
