"""Verdicts on claims 3, 7, 8, 9, the ranking check of a reduced budget, and the ablation part
of the report, on hand-made numbers (no training)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from g2lstm.errors import G2LSTMError
from g2lstm.reproduce.ablation_report import ABLATION_SECTIONS
from g2lstm.reproduce.ablation_verdicts import (
    ablation_claims,
    equivalent,
    final_gap,
    gap_at_equal_loss,
)
from g2lstm.reproduce.budget import (
    RunRecord,
    kendall_tau,
    ranking_check,
    records_from_runs,
    require_ranking,
    smallest_budget,
)
from g2lstm.reproduce.report import write_report
from g2lstm.reproduce.verdicts import DID_NOT_HOLD, HELD, INCONCLUSIVE, NOT_RUN
from g2lstm.train import RunResult

PNG = b"\x89PNG\r\n\x1a\n"
SEEDS = (-1.0, 0.0, 1.0)  # per-seed offsets (times the spread)


def _run(
    test: float,
    *,
    spread: float = 0.1,
    drops: dict | None = None,
    gap: float = 0.1,
    n: int = 3,
    sens: float = 0.02,
):
    """Numbers of one run key, ``n`` seeds around ``test``; ``drops``: column -> ppl increase;
    ``gap``: valid - train loss in nats (clean and logged); ``sens``: loss increase under
    perturbed gate weights."""
    tests = [test + spread * o for o in SEEDS[:n]]
    valid = [t + 3 for t in tests]
    train = [v / math.exp(gap) for v in valid]
    curve = [
        {"epoch": e, "train_ppl": 300.0 / e * math.exp(0), "valid_ppl": 300.0 / e * math.exp(gap)}
        for e in range(1, 6)
    ]
    comp = {
        c: {"test": [t + (drops or {}).get(c, 1.0) + spread * o for t, o in zip(tests, SEEDS)]}
        for c in ("round", "round_clip", "svd_h8", "svd_h16", "2bit")
    }
    near = {"input": [0.5] * n, "forget": [0.4] * n}
    for c in comp:
        comp[c]["test_pointer"] = [v - 10 for v in comp[c]["test"]]
    return {
        "seeds": [1, 2, 3][:n],
        "valid": {"soft": valid, "hard": valid, "soft_pointer": valid, "hard_pointer": valid},
        "test": {
            "soft": tests,
            "hard": [t * 1.2 for t in tests],
            "soft_pointer": [t - 10 for t in tests],
            "hard_pointer": [t * 1.2 - 10 for t in tests],
        },
        "train_ppl": train,
        "train_ppl_logged": train,
        "sensitivity": [sens + 0.001 * o for o in SEEDS[:n]],
        "near_binary": near,
        "compression": comp,
        "curves": [curve] * n,
    }


def _numbers(n: int = 3, **runs) -> dict:
    base = {
        "lstm": _run(113.0, gap=0.2, n=n, sens=0.05),
        "sharpened": _run(117.0, gap=0.15, n=n),
        "g2": _run(110.0, gap=0.1, n=n),
        "g2-p0.05": _run(109.0, drops={"svd_h16": 12.0, "round": 0.5}, n=n),
        "g2-p0.5": _run(110.5, drops={"svd_h16": 10.0, "round": 0.4}, n=n),
        "g2-p1": _run(111.0, drops={"svd_h16": 5.0, "round": 0.1}, n=n),
        "g2-tau0.5": _run(110.2, n=n),
        "g2-tau1": _run(109.9, n=n),
        "g2-ifo": _run(112.0, n=n),
    }
    base["g2"]["compression"]["svd_h16"]["test"] = [t + 11.0 for t in base["g2"]["test"]["soft"]]
    base["g2"]["compression"]["round"]["test"] = [t + 0.45 for t in base["g2"]["test"]["soft"]]
    base.update(runs)
    return {"ablations": {"runs": {k: v for k, v in base.items() if v}, "budget": {}}}


def _by_claim(numbers: dict) -> list[str]:
    return [v.status for v in ablation_claims(numbers)]


def test_every_claim_holds_on_clear_numbers() -> None:
    assert _by_claim(_numbers()) == [HELD] * 6


def test_each_claim_can_fail() -> None:
    bad = _numbers(
        g2=_run(110.0, gap=0.3, sens=0.08),  # G2 generalises worse than the LSTM (0.2)
        **{"g2-p1": _run(114.0, drops={"svd_h16": 20.0, "round": 2.0})},  # worse than LSTM
        **{"g2-tau0.5": _run(104.0)},  # tau matters: 6 ppl, far beyond half the gain
        **{"g2-ifo": _run(107.0)},  # the output gate's noise helps
    )
    claim3, beat, small_p, large_p, tau, output = _by_claim(bad)
    assert claim3 == DID_NOT_HOLD
    assert beat == DID_NOT_HOLD  # p = 1 loses to the LSTM
    assert small_p == HELD  # p = 0.05 still the best
    assert large_p == DID_NOT_HOLD  # p = 1 loses most under compression
    assert tau == DID_NOT_HOLD
    assert output == DID_NOT_HOLD


def test_noisy_or_single_seed_numbers_are_inconclusive_and_missing_ones_not_run() -> None:
    # tau 0.5: gap 1.4 +- std 0.3 against the margin 1.5 (half of 113 - 110)
    noisy = _numbers(**{"g2-ifo": _run(110.2, spread=3.0), "g2-tau0.5": _run(111.4, spread=0.3)})
    assert _by_claim(noisy)[4:] == [INCONCLUSIVE, INCONCLUSIVE]
    assert _by_claim(_numbers(n=1)) == [INCONCLUSIVE] * 6
    assert _by_claim({}) == [NOT_RUN] * 6
    assert _by_claim(_numbers(**{"g2-ifo": None}))[5] == NOT_RUN


@pytest.mark.parametrize(
    ("a", "b", "margin", "status"),
    [
        ([10.0, 10.2], [10.1, 10.3], 1.0, HELD),  # gap 0.1 + std 0.14 <= 1
        ([12.0, 12.2], [10.1, 10.3], 1.0, DID_NOT_HOLD),  # gap 1.9 - 0.14 > 1
        ([10.85, 11.15], [10.1, 10.3], 1.0, INCONCLUSIVE),  # gap 0.8 +- std 0.21 straddles 1
        ([10.0], [10.1, 10.3], 1.0, INCONCLUSIVE),  # one seed
        ([10.0, 10.2], [10.1, 10.3], None, INCONCLUSIVE),  # no baseline: no margin
        ([], [10.1], 1.0, NOT_RUN),
    ],
)
def test_equivalence_rule(a, b, margin, status) -> None:
    assert equivalent("x", a, b, margin).status == status


def test_gaps() -> None:
    runs = _numbers()["ablations"]["runs"]
    assert final_gap(runs, "lstm") == pytest.approx([0.2] * 3)
    curves = {
        "a": {
            "curves": [
                [{"train_ppl": 100.0, "valid_ppl": 110.0}, {"train_ppl": 50.0, "valid_ppl": 80.0}]
            ]
        },
        "b": {
            "curves": [
                [{"train_ppl": 120.0, "valid_ppl": 121.0}, {"train_ppl": 70.0, "valid_ppl": 90.0}]
            ]
        },
    }
    gaps, level = gap_at_equal_loss(curves, ("a", "b"))
    assert math.exp(level) == pytest.approx(70.0)  # the highest final training ppl
    x0, x1 = math.log(50.0), math.log(100.0)
    y0, y1 = math.log(80 / 50), math.log(110 / 100)
    expect = y0 + (y1 - y0) * (math.log(70.0) - x0) / (x1 - x0)
    assert gaps["a"] == pytest.approx([expect])
    assert gaps["b"] == pytest.approx([math.log(90 / 70)])
    # at a given level: a run that never trained down to it has no value there
    gaps, level = gap_at_equal_loss(curves, ("a", "b"), at=math.log(60.0))
    assert level == math.log(60.0) and math.isnan(gaps["b"][0])
    expect = y0 + (y1 - y0) * (math.log(60.0) - x0) / (x1 - x0)
    assert gaps["a"] == pytest.approx([expect])


# ---------------------------------------------------------------------- ranking check
def _records(curves: dict[str, list[float]], tests: dict[str, float], seeds=(1, 2)):
    return [
        RunRecord(c, s, min(curves[c]), tests[c] + 0.01 * s, tuple(v + 0.01 * s for v in curves[c]))
        for c in curves
        for s in seeds
    ]


def test_ranking_check() -> None:
    # sharpened leads early, falls behind after epoch 3; the final order is g2 < lstm < sharpened
    records = _records(
        {
            "lstm": [200.0, 150.0, 130.0, 120.0, 117.0],
            "sharpened": [180.0, 140.0, 125.0, 123.0, 121.0],
            "g2": [190.0, 145.0, 120.0, 116.0, 114.0],
        },
        {"lstm": 113.0, "sharpened": 117.0, "g2": 110.0},
    )
    early, later = ranking_check(records, 2), ranking_check(records, 4)
    assert not early.passed and later.passed
    assert [r["seed"] for r in later.rows] == ["seed 1", "seed 2", "mean"]
    assert later.rows[0]["full"] == ["g2", "lstm", "sharpened"]
    assert early.rows[0]["reduced"] == ["sharpened", "g2", "lstm"]
    assert early.rows[0]["tau"] == pytest.approx(
        kendall_tau(["g2", "lstm", "sharpened"], ["sharpened", "g2", "lstm"])
    )
    assert smallest_budget(records, 5) == 4
    assert require_ranking(records, 4, 5).passed
    with pytest.raises(G2LSTMError, match="smallest budget that passes is 4 epochs"):
        require_ranking(records, 3, 5)
    with pytest.raises(G2LSTMError, match="cannot be checked"):
        require_ranking(records, 9, 9)  # the logs are shorter than the budget
    # with the reduced runs' own numbers
    reduced = {
        "lstm": {1: 140.0, 2: 141.0},
        "sharpened": {1: 150.0, 2: 151.0},
        "g2": {1: 130.0, 2: 131.0},
    }
    assert ranking_check(records, 2, reduced).passed
    assert ranking_check(records, 2, reduced).source == "runs"
    assert "needs at least two cells" in ranking_check(records[:2], 2).reason
    assert kendall_tau(["a", "b", "c"], ["c", "b", "a"]) == -1.0


def test_ranking_check_refuses_a_budget_where_a_gap_has_not_opened() -> None:
    # as PTB small: the LSTM plateaus early, G2 catches up late; the order is the final one
    # from epoch 3 on, but the G2 lead is a tenth of its final size there
    records = _records(
        {"lstm": [150.0, 120.0, 117.4, 117.2, 117.0], "g2": [155.0, 121.0, 117.1, 115.0, 114.0]},
        {"lstm": 111.5, "g2": 110.4},
    )
    at3, at4 = ranking_check(records, 3), ranking_check(records, 4)
    assert at3.rows[0]["order"] and not at3.passed
    (gap,) = at3.rows[0]["gaps"]
    assert gap["pair"] == ["g2", "lstm"]
    assert gap["full"] == pytest.approx(3.0) and gap["reduced"] == pytest.approx(0.3)
    assert gap["kept"] == pytest.approx(0.1)
    assert "GAP LOST" in at3.summary() and "0.10 (lstm-g2)" in at3.summary()
    assert at4.passed and at4.rows[0]["gaps"][0]["kept"] == pytest.approx(2.2 / 3.0)
    assert smallest_budget(records, 5) == 4
    with pytest.raises(G2LSTMError, match="smallest budget that passes is 4 epochs"):
        require_ranking(records, 3, 5)
    assert ranking_check(records, 3, min_gap=0.0).passed  # the order alone
    assert ranking_check(records, 3, min_gap=0.05).passed
    # the reduced runs' test against the full test: 111.5 - 110.4 = 1.1 at the full budget
    kept = ranking_check(records, 3, {"lstm": {1: 120.0, 2: 120.0}, "g2": {1: 119.0, 2: 119.0}})
    assert kept.rows[-1]["gaps"][0]["kept"] == pytest.approx(1.0 / 1.1) and kept.passed


def test_records_from_run_folders(tmp_path: Path) -> None:
    run = tmp_path / "g2-seed1"
    run.mkdir()
    values = {"cell": "g2", "seed": 1, "valid_ppl": 114.5, "test_ppl": 109.7}
    finished = {"run_dir": str(run), "finished": True, "stopped": None, "steps": 9, "epochs": 2}
    RunResult.of("lm", {**values, **finished}).write(run)
    rows = [
        {"step": 10, "loss": 5.0, "ppl": 150.0},
        {"stage": "main", "epoch": 1, "train_ppl": 200.0, "valid_ppl": 160.0},
        {"stage": "main", "epoch": 2, "train_ppl": 150.0, "valid_ppl": 140.0},
        {"stage": "finetune", "epoch": 1, "train_ppl": 140.0, "valid_ppl": 139.0},
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "unfinished").mkdir()
    (records,) = records_from_runs([run, tmp_path / "unfinished"])
    assert (records.cell, records.seed, records.test_ppl) == ("g2", 1, 109.7)
    assert records.valid_curve == (160.0, 140.0)


# ---------------------------------------------------------------------- the report
def test_report_ablation_sections_and_figures(tmp_path: Path) -> None:
    numbers = _numbers()
    runs = numbers["ablations"]["runs"]  # the same numbers at a reduced budget of 6 epochs
    numbers["ablations"]["runs"] = {**runs, **{f"{k}-e6": v for k, v in runs.items()}}
    numbers["ablations"]["budget"] = {
        "epochs": 6,
        "check": ranking_check(
            _records({"lstm": [2.0] * 6, "g2": [1.0] * 6}, {"lstm": 2.0, "g2": 1.0}), 6
        ).to_dict(),
    }
    paths = write_report(numbers, tmp_path)
    md = paths["md"].read_text(encoding="utf-8")
    for title in ABLATION_SECTIONS:
        assert f"## {title}" in md
    for name in ("ablation_p", "ablation_tau", "ablation_gap"):
        assert paths[f"fig:{name}"].read_bytes().startswith(PNG)
    # Table 3: ours without and with the cache, the paper's with it, deltas in parentheses
    assert "| G2-LSTM (ours) | yes | 100.00 ± 0.10 |" in md
    assert re.search(
        r"\| G2-LSTM \(ours\) \| no \| 110\.00 ± 0\.10 \| [\d.]+ ± [\d.]+ \(\+0\.45\)", md
    )
    assert "| G2-LSTM (paper) | yes | 52.1 | 52.2 (+0.1) |" in md
    assert "| p = 0.05 | 3 | 112.00 ± 0.10 | 109.00 ± 0.10 |" in md
    assert "logs (best valid of the first epochs)" in md and "the reduced runs (test ppl)" in md
    verdicts = json.loads(paths["verdicts"].read_text())
    assert [v["status"] for v in verdicts[-6:]] == [HELD] * 6
    assert "Claim 8" in md  # the equivalence rule is stated
    empty = write_report({}, tmp_path / "empty")["md"].read_text(encoding="utf-8")
    assert "Not run. The sweeps" in empty and "--ablations" in empty
