"""Append-only training metrics: ``metrics.jsonl`` + ``metrics.csv`` (+ optional TensorBoard).

Each :meth:`MetricsLogger.log` call appends one JSON line and one CSV row and flushes both, so
a crash loses at most the row being written. The CSV header comes from the first row; when a
later row brings new keys, the CSV is rewritten atomically with the wider header (older rows
get empty cells). After a resume, :meth:`MetricsLogger.drop_after` removes rows logged after
the checkpoint's step so the files match an uninterrupted run.

TensorBoard is used only when asked for *and* the ``tensorboard`` package is importable;
otherwise a one-line notice is logged and training goes on.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

from g2lstm.errors import ConfigError, DataError
from g2lstm.safe_files import open_nofollow, refuse_symlink
from g2lstm.train.atomic import atomic_write_text

__all__ = ["MetricsLogger", "read_metrics"]

logger = logging.getLogger(__name__)
Scalar = str | int | float | bool | None


def _scalar(key: str, value: Any) -> Scalar:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if type(value).__module__ == "numpy" and getattr(value, "size", 0) == 1:
        return value.item()  # numpy scalar or one-element array
    raise ConfigError(
        f"metric {key!r} has a value of type {type(value).__name__}; log numbers or strings"
    )


def _parse_csv_cell(text: str) -> Scalar:
    if text == "":
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


class MetricsLogger:
    """Write metric rows to ``run_dir/metrics.jsonl`` and ``run_dir/metrics.csv``.

    Args:
        run_dir: output directory (created if missing). Existing files are appended to; a
            symlink in place of one is refused (:class:`~g2lstm.errors.OutputError`).
        tensorboard: also write scalars to ``run_dir/tensorboard`` if possible.

    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, run_dir: str | os.PathLike[str], tensorboard: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.run_dir / "metrics.jsonl"
        self.csv_path = self.run_dir / "metrics.csv"
        self._fields: list[str] = []
        self._jsonl = open_nofollow(self.jsonl_path, "a")
        try:
            self._csv = open_nofollow(self.csv_path, "a", newline="")
        except BaseException:
            self._jsonl.close()
            raise
        with open(self.csv_path, newline="", encoding="utf-8") as f:
            self._fields = next(csv.reader(f), [])
        self._writer = None
        if tensorboard:
            refuse_symlink(self.run_dir / "tensorboard")
            if importlib.util.find_spec("tensorboard") is None:
                logger.warning(
                    "tensorboard is not installed; metrics go to metrics.jsonl/csv only "
                    "(pip install tensorboard to enable it)"
                )
            else:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> dict[str, Scalar]:
        """Append one row; ``step`` (if given) becomes its first column. Returns the row.

        Values may be Python numbers/strings/bools/None, one-element tensors or numpy scalars.
        """
        row: dict[str, Scalar] = {} if step is None else {"step": int(step)}
        row.update({str(k): _scalar(str(k), v) for k, v in metrics.items()})
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()
        new = [k for k in row if k not in self._fields]
        if new and self._fields:
            self._fields += new
            self._rewrite_csv(read_metrics(self.csv_path))
        elif new:
            self._fields = list(row)
            csv.writer(self._csv).writerow(self._fields)
        csv.DictWriter(self._csv, self._fields).writerow(row)
        self._csv.flush()
        if self._writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._writer.add_scalar(key, value, global_step=step)
            self._writer.flush()
        return row

    def drop_after(self, step: int) -> None:
        """Remove rows whose ``step`` is greater than ``step`` (call after resuming)."""
        rows = [r for r in read_metrics(self.jsonl_path) if (r.get("step") or 0) <= step]
        self._jsonl.close()
        atomic_write_text(self.jsonl_path, "".join(json.dumps(r) + "\n" for r in rows))
        self._jsonl = open_nofollow(self.jsonl_path, "a")
        csv_rows = [r for r in read_metrics(self.csv_path) if (r.get("step") or 0) <= step]
        self._rewrite_csv(csv_rows)

    def _rewrite_csv(self, rows: list[dict[str, Scalar]]) -> None:
        buffer = io.StringIO()
        if self._fields:  # no columns yet (nothing logged): leave the file empty
            writer = csv.DictWriter(buffer, self._fields, lineterminator="\r\n")
            writer.writeheader()
            writer.writerows(rows)
        self._csv.close()
        atomic_write_text(self.csv_path, buffer.getvalue())
        self._csv = open_nofollow(self.csv_path, "a", newline="")

    def close(self) -> None:
        """Flush and close the files (and the TensorBoard writer)."""
        self._jsonl.close()
        self._csv.close()
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Scalar]]:
    """Read the rows written by :class:`MetricsLogger`.

    Args:
        path: ``metrics.jsonl``, ``metrics.csv``, or a run directory (reads its
            ``metrics.jsonl``). CSV cells are converted back to int/float/bool; empty cells
            become None.

    Raises:
        DataError: the file is missing or a line other than the last is not valid JSON (a
            torn last line, from a crash mid-write, is skipped).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.jsonl"
    if not p.is_file():
        raise DataError(f"no metrics file at {p}")
    if p.suffix == ".csv":
        with open(p, newline="", encoding="utf-8") as f:
            return [{k: _parse_csv_cell(v) for k, v in r.items()} for r in csv.DictReader(f)]
    lines = p.read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines):
                logger.warning("%s: skipping a torn last line (crash while writing?)", p)
                break
            raise DataError(f"{p}, line {number}: not valid JSON ({exc})") from exc
    return rows
