"""The cost per experiment: which record each step's time comes from, grouping, the table,
and the CPU time the runner writes into every marker."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from g2lstm.reproduce.ablations import run_key, split_key
from g2lstm.reproduce.context import RunContext
from g2lstm.reproduce.cost import cost_section, experiment_costs, experiment_of, step_cost
from g2lstm.reproduce.document import Document
from g2lstm.reproduce.plan import DONE, build_plan, get_scale, read_markers
from g2lstm.reproduce.run import run_plan


def _marker(kind: str, **fields: Any) -> dict[str, Any]:
    return {"id": f"{kind}-x", "kind": kind, **fields}


@pytest.mark.parametrize(
    ("marker", "want"),
    [
        # any step but a training: the reproduction's own record
        (_marker("lm-eval", seconds=90.0, cpu_seconds=85.5), (90.0, 85.5)),
        (_marker("lm-probe", seconds=90.0), (90.0, None)),
        # a probe's numbers kept beside a reused run: what measuring them took, then
        (
            _marker(
                "lm-probe",
                seconds=0.4,
                cpu_seconds=0.4,
                result={
                    "probe_reused_from": "/r.probe.json",
                    "cost": {"wall_s": 160.0, "cpu_s": 150.0},
                },
            ),
            (160.0, 150.0),
        ),
        (  # kept by a version that did not record it: unknown, never the adoption's 0.4 s
            _marker("lm-probe", seconds=0.4, result={"probe_reused_from": "/r.probe.json"}),
            (None, None),
        ),
        # a training: the run's own record (all parts of a resumed run), reused or not
        (
            _marker(
                "lm-train",
                seconds=0.1,
                cpu_seconds=0.1,
                reused_from="/runs/lstm-seed2",
                result={"train_time_s": 4000.0, "wall_time_s": 4200.0, "cpu_time_s": 3700.0},
            ),
            (4200.0, 3700.0),
        ),
        (  # trained before CPU time was recorded: unknown, never the adoption's 0.1 s
            _marker("lm-train", seconds=0.1, cpu_seconds=0.1, reused_from="/r", result={"a": 1}),
            (None, None),
        ),
        (  # MT records training time only
            _marker("mt-train", seconds=700.0, result={"train_time_s": 650.0, "cpu_time_s": 640.0}),
            (650.0, 640.0),
        ),
        (  # a run without its own wall record, trained here: the step's wall time
            _marker("mt-train", seconds=700.0, cpu_seconds=690.0, result={"cpu_time_s": None}),
            (700.0, None),
        ),
    ],
)
def test_step_cost(marker: dict[str, Any], want: tuple[float | None, float | None]) -> None:
    assert step_cost(marker) == want


@pytest.mark.parametrize(
    ("marker", "experiment"),
    [
        (_marker("lm-train", cell="g2"), "PTB: cells"),
        (_marker("lm-eval", cell="g2"), "PTB: cells"),
        (_marker("lm-data"), "PTB: cells"),
        (_marker("lm-probe", cell="lstm"), "PTB: probes of the cells"),
        (_marker("lm-train", variant="g2-p0.05"), "noise probability p"),
        (_marker("lm-probe", variant="g2-p1-e8"), "noise probability p"),
        (_marker("lm-train", variant="g2-tau0.5-e8"), "temperature tau"),
        (_marker("lm-probe", variant="g2-ifo"), "output gate"),
        (_marker("lm-train", variant="lstm-e8"), "reduced budget"),
        (_marker("lm-ranking"), "reduced budget"),
        (_marker("mt-eval", cell="g2"), "Translation"),
        (_marker("report"), "Report"),
    ],
)
def test_experiment_of(marker: dict[str, Any], experiment: str) -> None:
    assert experiment in experiment_of(marker)


@pytest.mark.parametrize("name", ["g2", "g2-p0.05", "g2-tau1", "lstm", "g2-ifo"])
@pytest.mark.parametrize("epochs", [None, 6, 12])
def test_split_key_inverts_run_key(name: str, epochs: int | None) -> None:
    assert split_key(run_key(name, epochs)) == (name, epochs)


def test_experiment_costs_and_table(tmp_path: Path) -> None:
    markers = {
        "a": _marker(
            "lm-train", reused_from="/r1", result={"wall_time_s": 3600.0, "cpu_time_s": 3000.0}
        ),
        "b": _marker("lm-train", reused_from="/r2", result={"wall_time_s": 1800.0}),
        "c": _marker("lm-eval", seconds=120.0, cpu_seconds=100.0),
        "d": _marker(
            "lm-train", variant="g2-p0.5", result={"wall_time_s": 60.0, "cpu_time_s": 50.0}
        ),
        "e": _marker("lm-probe", variant="g2-p0.5", seconds=30.0, cpu_seconds=20.0),
        "f": _marker("report", seconds=2.0),
    }
    for name, marker in markers.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / DONE).write_text(json.dumps(marker))
    folders = [tmp_path / n for n in (*markers, "not-done")]
    (tmp_path / "not-done").mkdir()
    rows = {r["experiment"].split(" (")[0]: r for r in experiment_costs(read_markers(folders))}
    assert list(rows) == ["PTB: cells", "PTB sweep: noise probability p", "Report"]
    cells = rows["PTB: cells"]
    assert (cells["steps"], cells["trainings"], cells["reused"]) == (3, 2, 2)
    assert cells["wall_s"] == 3600.0 + 1800.0 + 120.0
    assert (cells["cpu_s"], cells["cpu_missing"]) == (3100.0, 1)
    sweep = rows["PTB sweep: noise probability p"]
    assert (sweep["wall_s"], sweep["cpu_s"], sweep["reused"]) == (90.0, 70.0, 0)

    doc = Document("t")
    cost_section(doc, experiment_costs(read_markers(folders)))
    text = doc.markdown(tmp_path)
    assert "| 3 | 2 (2 reused) | 1h32m00s | 51m40s + 1 without a record |" in text
    assert "| 2 | 1 (0 reused) | 1m30s | 1m10s |" in text
    assert "| Report | 1 | 0 | 2.0s | - |" in text
    empty = Document("t")
    cost_section(empty, [])
    assert "No step has finished yet" in empty.markdown(tmp_path)


def test_runner_records_cpu_time_of_each_step(tmp_path: Path) -> None:
    scale = get_scale("tiny")
    steps = build_plan(scale, 1, tmp_path, only=("lm",))

    def function(kind: str):  # type: ignore[no-untyped-def]
        def run(step, ctx):  # type: ignore[no-untyped-def]
            if step.id == "lm-eval-g2-s1":  # burn CPU; sleep (no CPU) elsewhere
                end = time.process_time() + 0.3
                while time.process_time() < end:
                    pass
            else:
                time.sleep(0.01)
            return {}

        return run

    run_plan(steps, RunContext(scale, tmp_path, log=lambda line: None), functions=function)
    busy = json.loads((tmp_path / "lm" / "g2-s1" / "eval" / DONE).read_text())
    idle = json.loads((tmp_path / "lm" / "g2-s1" / "train" / DONE).read_text())
    assert busy["cpu_seconds"] >= 0.25 and busy["seconds"] >= 0.25
    assert idle["seconds"] >= 0.01 and idle["cpu_seconds"] < 0.2
