"""``benchmarks/eval_temperature.py`` evaluates G2 runs with both eval temperatures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from g2lstm.lm import preset_config, train

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "eval_temperature.py"


def test_both_modes_per_split_and_the_paired_table(tmp_path: Path, write_lm_corpus) -> None:
    data = write_lm_corpus(tmp_path / "data")
    cfg = preset_config("tiny", {"data": str(data), "model.cell": "g2", "train.progress": False})
    train(cfg, tmp_path / "bench" / "g2-seed1")
    (tmp_path / "bench" / "g2-seed2").mkdir()  # not a finished run: skipped
    out = tmp_path / "et.json"
    cmd = [sys.executable, str(SCRIPT), "--bench", str(tmp_path / "bench"), "--data", str(data),
           "--json", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    numbers = json.loads(out.read_text())
    assert list(numbers) == ["g2-seed1"]
    r = numbers["g2-seed1"]
    assert set(r) == {"valid", "test"} and all(set(v) == {"divide", "drop"} for v in r.values())
    assert r["test"]["divide"] != r["test"]["drop"]  # tau 0.9: the two functions differ
    stored = json.loads((tmp_path / "bench" / "g2-seed1" / "results.json").read_text())
    assert abs(r["test"]["divide"] - stored["details"]["test_ppl"]) < 1e-6  # the trainer's
    assert f"{r['test']['drop'] - r['test']['divide']:+.2f}" in proc.stdout
