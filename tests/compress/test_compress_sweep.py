"""``g2lstm compress sweep``: settings scaled to the model size, the paper's table layout with
mean ± std over seeds, the CSV, the plot, and the verdict computed from the numbers."""

from __future__ import annotations

import csv
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest

from g2lstm.cli import main
from g2lstm.compress.evaluators import load_target
from g2lstm.compress.sweep import (
    SweepResult,
    SweepRow,
    _summarise,
    _verdicts,
    default_settings,
    run_sweep,
)
from g2lstm.errors import ConfigError
from g2lstm.lm import preset_config, train
from g2lstm.tasks.lm import LMEvaluator


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, write_lm_corpus: Callable[..., Path]
) -> list[Path]:
    """Tiny LMs (H=32): an LSTM baseline and two G2-LSTM seeds, one epoch each (~2 s)."""
    root = tmp_path_factory.mktemp("compress-sweep")
    data = write_lm_corpus(root / "data")
    out = []
    for cell, seed in (("lstm", 1), ("g2", 1), ("g2", 2)):
        config = preset_config(
            "tiny",
            {
                "data": str(data),
                "model.cell": cell,
                "model.nhid": 32,
                "train.seed": seed,
                "train.epochs": 1,
                "train.progress": False,
                "train.threads": 1,
            },
        )
        train(config, root / f"{cell}-seed{seed}")
        out.append(root / f"{cell}-seed{seed}")
    return out


def test_default_settings_scale_the_paper_ranks() -> None:
    lm = {s.key: s for s in default_settings("lm", 1150)}
    assert lm["round"].params == {"step": 0.2}
    assert lm["round_clip"].params == {"step": 0.2, "clip": 0.4}
    assert [s.params["rank"] for s in lm.values() if s.paper and s.method == "low_rank"] == [
        128,
        64,
    ]
    small = default_settings("lm", 200)
    tags = {t: s.params.get("rank") for s in small for t in s.tags}
    assert (tags["paper a"], tags["paper b"]) == (22, 11)  # round(200*128/1150), round(200*64/1150)
    assert (tags["H/4"], tags["H/8"], tags["H/16"]) == (50, 25, 12)
    assert {s.params["bits"] for s in small if s.method == "quantize"} == {1, 2, 3, 4, 8}
    mt = default_settings("mt", 256, grid=False)
    assert [s.label for s in mt] == [
        "Round (r=0.5)",
        "Round & clip (c=1.0)",
        "SVD (rank=32)",
        "SVD (rank=16)",
    ]
    clamped = default_settings("lm", 1150, max_rank=100)
    assert max(s.params.get("rank", 0) for s in clamped) == 100
    with pytest.raises(ConfigError, match="kind"):
        default_settings("asr", 10)


def _row(cell: str, seed: int, setting: str, original: float, value: float) -> SweepRow:
    return SweepRow(
        "ckpt",
        cell,
        seed,
        setting,
        setting,
        "low_rank",
        "{}",
        "ppl",
        original,
        value,
        value - original,
        value - original,
        4.0,
        1.5,
        0.1,
        0,
        0.0,
    )


@pytest.mark.parametrize(
    ("base_increase", "g2_increase", "verdict"),
    [
        (2.0, 1.0, "held"),
        (2.0, 1.01, "did not hold"),
        (0.0, 0.0, "not testable"),
        # below the noise floor (0.5% of the baseline's ~81 ppl = 0.405): not testable either
        (0.4, 0.0, "not testable, the baseline's degradation is below the noise floor 0.405"),
    ],
)
def test_verdict_follows_the_numbers(
    base_increase: float, g2_increase: float, verdict: str
) -> None:
    settings = default_settings("lm", 200, grid=True)
    h8 = next(s for s in settings if "H/8" in s.tags)
    rows = [
        _row("lstm", 1, h8.key, 80.0, 80.0 + base_increase - 0.5),
        _row("lstm", 2, h8.key, 82.0, 82.0 + base_increase + 0.5),
        _row("g2", 1, h8.key, 79.0, 79.0 + g2_increase),
        _row("g2", 2, h8.key, 81.0, 81.0 + g2_increase),
    ]
    result = SweepResult("ppl", 200, settings, rows, _summarise(rows), [], "test")
    lines = _verdicts(result)
    assert len(lines) == 1 and "SVD (rank=25)" in lines[0] and "H/8" in lines[0]
    assert lines[0].split(": ")[1].startswith(verdict)  # held: g2 <= half the baseline's


def test_sweep_writes_table_csv_and_plot(
    runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    argv = [
        "compress",
        "sweep",
        *map(str, runs),
        "-o",
        str(out),
        "--batch-size",
        "4",
        "--max-batches",
        "6",
        "--threads",
        "1",
    ]
    assert main(argv) == 0
    assert "## Verdict" in capsys.readouterr().out
    settings = default_settings("lm", 32, max_rank=16)
    with open(out / "sweep.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * (1 + len(settings))
    assert {(r["cell"], r["seed"]) for r in rows} == {("lstm", "1"), ("g2", "1"), ("g2", "2")}
    for r in rows:
        assert float(r["delta"]) == pytest.approx(float(r["value"]) - float(r["original"]))
        assert (float(r["compression_ratio"]) > 1) == (r["setting"] != "original")

    # the CSV's originals are the evaluator's numbers, and the table shows their mean ± std
    evaluator = LMEvaluator(batch_size=4, max_batches=6)
    target = load_target(runs[1])
    g2 = sorted(float(r["value"]) for r in rows if r["cell"] == "g2" and r["setting"] == "original")
    assert evaluator.score(target, target.model) in g2
    table = (out / "table.md").read_text(encoding="utf-8")
    header = (
        "| Model | Original | Round (r=0.2) | Round & clip (c=0.4) | SVD (rank=4) | SVD (rank=2) |"
    )
    assert header in table
    g2_line = next(line for line in table.splitlines() if line.startswith("| G2-LSTM (n=2) |"))
    cells = [c.strip() for c in g2_line.split("|")[1:-1]]
    assert cells[1] == f"{statistics.fmean(g2):.2f} ± {statistics.stdev(g2):.2f}"
    assert all("(" in c and "±" in c for c in cells[2:])
    base_line = next(
        line for line in table.splitlines() if line.startswith("| Baseline LSTM (n=1) |")
    )
    assert "±" not in base_line and len(base_line.split("|")) == len(g2_line.split("|"))
    assert "## Finer grid" in table and "2-bit" in table
    verdict = next(line for line in table.splitlines() if "rank=4) [paper a, H/8]: " in line)
    outcome = verdict.split("]: ", 1)[1]
    assert outcome.startswith(("held", "did not hold", "not testable")), verdict
    if outcome.startswith("not testable, the baseline's"):  # tiny models barely degrade
        with (out / "sweep.csv").open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        base = next(r for r in rows if r["cell"] == "lstm" and r["label"] == "SVD (rank=4)")
        assert float(base["degradation"]) < 0.005 * float(base["original"])
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_refuses_mixed_sizes(runs: list[Path], tmp_path: Path) -> None:
    root = runs[0].parent
    config = preset_config(
        "tiny",
        {
            "data": str(root / "data"),
            "model.cell": "lstm",
            "train.max_steps": 2,
            "train.progress": False,
            "train.threads": 1,
        },
    )
    train(config, root / "other-size")
    with pytest.raises(ConfigError, match="H=24"):
        run_sweep(
            [runs[0], root / "other-size"],
            LMEvaluator(batch_size=4, max_batches=1),
            None,
            tmp_path / "s",
            grid=False,
            plot=False,
        )
