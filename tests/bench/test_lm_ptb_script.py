"""``benchmarks/lm_ptb.py`` trains the cells it is asked for, then skips finished runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "lm_ptb.py"


def _bench(out: Path, data: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), "--out", str(out), "--data", str(data),
           "--preset", "tiny", "--cells", "g2", "--seeds", "1", "--jobs", "1"]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_trains_the_chosen_cell_with_its_log_beside_the_run(tmp_path, write_lm_corpus):
    data = write_lm_corpus(tmp_path / "corpus")
    out = tmp_path / "bench"
    proc = _bench(out, data)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the run folder holds the run alone (`lm train` refuses a new folder with other files)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["g2-seed1"]
    log = (out / "g2-seed1.train.log").read_text()
    assert "training g2" in log
    assert "train.keep_last=2" in log  # every epoch kept (tiny: 2), for `lm truncate`
    summary = json.loads((out / "summary.json").read_text())
    assert "g2" in json.dumps(summary) and "lstm-seed1" not in json.dumps(summary)
    # a second invocation finds the finished run and trains nothing
    log_size = (out / "g2-seed1.train.log").stat().st_size
    again = _bench(out, data)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (out / "g2-seed1.train.log").stat().st_size == log_size
