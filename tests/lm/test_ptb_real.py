"""A short real run of the ``small`` preset on Penn Treebank (needs ../shared/data/ptb)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from g2lstm.cli import main

REPO = Path(__file__).resolve().parents[2]


def _ptb() -> Path:
    env = os.environ.get("G2LSTM_DATA")
    for root in ([Path(env)] if env else []) + [REPO / ".." / "shared" / "data"]:
        if (root / "ptb" / "train.txt").is_file():
            return root / "ptb"
    pytest.skip("PTB not found: set G2LSTM_DATA or put shared/data beside the repo")


@pytest.mark.data
@pytest.mark.slow
def test_small_preset_learns_on_ptb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    argv = [
        "lm",
        "train",
        "--preset",
        "small",
        "--cell",
        "g2",
        "--data",
        str(_ptb()),
        "--out",
        str(run),
        "--threads",
        "1",
        "--max-steps",
        "60",
        "--log-interval",
        "20",
        "--no-progress",
    ]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    ppl = [r["ppl"] for r in rows if "ppl" in r]
    assert len(ppl) == 3 and ppl[-1] < ppl[0] and ppl[-1] < 2000  # 10k vocab: starts at ~10^4
    capsys.readouterr()
    assert main(["lm", "eval", str(run), "--split", "valid", "--json", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 100 < result["ppl"] < 2000
