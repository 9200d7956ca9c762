"""MetricsLogger: JSONL + CSV rows, new columns, resume truncation, optional TensorBoard."""

from __future__ import annotations

import csv
import importlib.util
import logging

import numpy as np
import pytest
import torch

from g2lstm.errors import ConfigError, DataError
from g2lstm.train import MetricsLogger, read_metrics


def test_jsonl_and_csv_rows_with_new_keys(tmp_path):
    with MetricsLogger(tmp_path / "run") as log:
        log.log({"loss": torch.tensor(2.5), "lr": 0.1}, step=1)
        # each write is flushed: readable before close
        assert read_metrics(tmp_path / "run") == [{"step": 1, "loss": 2.5, "lr": 0.1}]
        log.log({"loss": np.float32(2.0), "ppl": 7.389, "note": "x"}, step=2)
        log.log({"loss": float("nan")}, step=3)
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert rows[1] == {"step": 2, "loss": 2.0, "ppl": 7.389, "note": "x"}
    assert rows[2]["loss"] != rows[2]["loss"]
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["step", "loss", "lr", "ppl", "note"]
    assert table[1] == ["1", "2.5", "0.1", "", ""]
    assert table[2] == ["2", "2.0", "", "7.389", "x"]
    csv_rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert csv_rows[0] == {"step": 1, "loss": 2.5, "lr": 0.1, "ppl": None, "note": None}
    assert csv_rows[1]["ppl"] == 7.389


def test_append_on_resume_and_drop_after(tmp_path):
    with MetricsLogger(tmp_path) as log:
        for step in range(1, 6):
            log.log({"loss": 1.0 / step}, step=step)
    with MetricsLogger(tmp_path) as log:  # resumed from the checkpoint at step 3
        log.drop_after(3)
        log.log({"loss": 0.3, "bleu": 10.0}, step=4)
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3, 4]
    csv_rows = read_metrics(tmp_path / "metrics.csv")
    assert [r["step"] for r in csv_rows] == [1, 2, 3, 4]
    assert csv_rows[3]["bleu"] == 10.0 and csv_rows[0]["bleu"] is None


def test_bad_value_and_torn_line(tmp_path):
    with MetricsLogger(tmp_path) as log, pytest.raises(ConfigError, match="'hist'"):
        log.log({"hist": torch.ones(3)})
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2, "lo')
    assert read_metrics(tmp_path) == [{"step": 1}]
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"st\n{"step": 3}\n')
    with pytest.raises(DataError, match="line 2"):
        read_metrics(tmp_path)
    with pytest.raises(DataError, match="no metrics file"):
        read_metrics(tmp_path / "missing")


def test_tensorboard_optional(tmp_path, caplog):
    with caplog.at_level(logging.WARNING), MetricsLogger(tmp_path, tensorboard=True) as log:
        log.log({"loss": 1.0}, step=1)
    if importlib.util.find_spec("tensorboard") is None:
        assert "tensorboard is not installed" in caplog.text
        assert not (tmp_path / "tensorboard").exists()
    else:
        assert any((tmp_path / "tensorboard").iterdir())


def test_drop_after_before_any_row_keeps_files_readable(tmp_path):
    from g2lstm.train import MetricsLogger, read_metrics

    with MetricsLogger(tmp_path) as log:
        log.drop_after(5)  # a run resumed before its first logged row
        log.log({"loss": 1.0}, step=6)
    assert read_metrics(tmp_path / "metrics.csv") == [{"step": 6, "loss": 1.0}]
    assert read_metrics(tmp_path / "metrics.jsonl")[0]["loss"] == 1.0
