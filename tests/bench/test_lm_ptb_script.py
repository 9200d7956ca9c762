"""``benchmarks/lm_ptb.py`` trains the cells it is asked for, probes them, keeps a record that
outlives the run folders, and skips finished runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "lm_ptb.py"


def _bench(out: Path, data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), "--out", str(out), "--data", str(data),
           "--preset", "tiny", "--cells", "g2", "--seeds", "1", "--jobs", "1",
           "--results", str(out.parent / "record.json"), *extra]  # fmt: skip
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


def test_the_record_keeps_every_runs_numbers_after_its_folder_is_lost(tmp_path, write_lm_corpus):
    data = write_lm_corpus(tmp_path / "corpus")
    out = tmp_path / "bench"
    proc = _bench(out, data)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    probe = json.loads((out / "g2-seed1.probe.json").read_text())
    assert set(probe["ppl"]) == {"valid", "test"}
    assert set(probe["ppl"]["test"]) == {"soft", "hard", "soft_pointer", "hard_pointer"}
    assert {"svd_h8", "svd_h16", "round", "round_clip", "2bit"} <= set(probe["compression"])
    assert probe["config"]["noise_p"] == 0.2
    record = json.loads((tmp_path / "record.json").read_text())
    (run,) = record["runs"]
    assert (run["run"], run["cell"], run["seed"]) == ("g2-seed1", "g2", 1)
    assert run["probe"] == probe and run["cpu"] and "--preset tiny" in run["command"]
    assert [row["epoch"] for row in run["curve"]] == [1, 2]  # tiny: 2 epochs
    assert run["result"]["test_ppl"] == pytest.approx(probe["ppl"]["test"]["soft"], rel=1e-3)
    # the run folder lost (a new machine): summarising again keeps what the record holds
    shutil.rmtree(out)
    again = _bench(out, data, "--summarize-only")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads((tmp_path / "record.json").read_text()) == record
    summary = json.loads((out / "summary.json").read_text())  # the table from the record
    assert summary["g2"] == [run["result"]] and summary["lstm"] == []
