"""Plan, dry run, step markers and the runner (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from g2lstm.cli import main
from g2lstm.errors import ConfigError, G2LSTMError
from g2lstm.reproduce.context import RunContext
from g2lstm.reproduce.plan import DONE, SCALES, build_plan, get_scale
from g2lstm.reproduce.run import run_plan


def _ids(seeds: int, parts=("lm", "mt")) -> list[str]:
    ids = []
    for part in parts:
        ids.append(f"{part}-data")
        for s in range(1, seeds + 1):
            for cell in ("lstm", "sharpened", "g2"):
                ids += [f"{part}-train-{cell}-s{s}", f"{part}-eval-{cell}-s{s}"]
            ids.append(f"{part}-analyze-s{s}")
    return [*ids, "report"]


@pytest.mark.parametrize("scale", list(SCALES))
def test_dry_run_lists_every_step(scale: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["reproduce", "--scale", scale, "--seeds", "2", "-o", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    for step_id in _ids(2):
        assert f" {step_id} " in text
    assert "estimated time left" in text
    assert f"{len(_ids(2))} steps, 0 done" in text
    assert not out.exists()  # a dry run writes nothing


def test_plan_order_folders_and_only(tmp_path: Path) -> None:
    steps = build_plan(get_scale("tiny"), 3, tmp_path, only=("mt",))
    assert [s.id for s in steps] == _ids(3, ("mt",))
    assert len({s.out_dir for s in steps}) == len(steps)
    ev = next(s for s in steps if s.id == "mt-eval-g2-s2")
    assert ev.deps == (tmp_path / "data" / "mt", tmp_path / "mt" / "g2-s2" / "train")
    assert all(s.estimate_s > 0 for s in steps)
    # the report also reads the part not run this time (finished earlier, or "not run")
    report = steps[-1]
    assert tmp_path / "lm" / "g2-s1" / "eval" in report.deps
    assert report.deps == build_plan(get_scale("tiny"), 3, tmp_path)[-1].deps
    assert build_plan(get_scale("cpu"), None, tmp_path)[1].seed == 1
    assert len(build_plan(get_scale("cpu"), None, tmp_path)) == len(_ids(3))


@pytest.mark.parametrize("seeds", [0, -1, True])
def test_bad_seeds(seeds, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="seeds"):
        build_plan(get_scale("tiny"), seeds, tmp_path)


def test_unknown_scale_and_part(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown scale"):
        get_scale("huge")
    with pytest.raises(ConfigError, match="--only"):
        build_plan(get_scale("tiny"), 1, tmp_path, only=("cv",))


def _fake(calls: list[str], fail: str | None = None):
    def function(kind: str):
        def run(step, ctx):
            if step.id == fail:
                raise G2LSTMError(f"{step.id} failed")
            calls.append(step.id)
            return {"value": len(calls)}

        return run

    return function


def test_runner_skips_done_steps_and_reruns_dependents(tmp_path: Path) -> None:
    scale = get_scale("tiny")
    steps = build_plan(scale, 1, tmp_path, only=("lm",))
    lines: list[str] = []
    ctx = RunContext(scale, tmp_path, log=lines.append)
    calls: list[str] = []
    summary = run_plan(steps, ctx, functions=_fake(calls))
    assert calls == [s.id for s in steps] == summary.ran
    assert any(line.startswith(f"[1/{len(steps)}] lm-data ...") for line in lines)
    assert json.loads((tmp_path / "plan.json").read_text())["scale"] == "tiny"
    marker = json.loads((tmp_path / "lm" / "g2-s1" / "train" / DONE).read_text())
    assert marker["result"] == {"value": calls.index("lm-train-g2-s1") + 1}
    assert all(s.done() for s in steps)

    calls.clear()
    summary = run_plan(steps, ctx, functions=_fake(calls))
    assert calls == [] and len(summary.skipped) == len(steps)

    # a re-run training step invalidates what was computed from it, and nothing else
    (tmp_path / "lm" / "g2-s1" / "train" / DONE).unlink()
    run_plan(steps, ctx, functions=_fake(calls))
    assert calls == ["lm-train-g2-s1", "lm-eval-g2-s1", "lm-analyze-s1", "report"]


def test_eta_is_calibrated_only_after_a_minute_of_estimated_work(tmp_path: Path) -> None:
    from g2lstm.reproduce.run import CALIBRATE_AFTER_S, _eta

    steps = build_plan(get_scale("tiny"), 1, tmp_path, only=("lm",))
    total = sum(s.estimate_s for s in steps)
    # a 5-second data step that took 0.1 s says nothing about training: estimates kept
    assert _eta(steps, 0.1, 5.0) == pytest.approx(total)
    # a machine twice as slow on a minute of work doubles what is left
    assert _eta(steps, 2 * CALIBRATE_AFTER_S, CALIBRATE_AFTER_S) == pytest.approx(2 * total)
    free = frozenset({steps[1].id})
    assert _eta(steps, 0.0, 0.0, free) == pytest.approx(total - steps[1].estimate_s)


def test_failed_step_leaves_no_marker(tmp_path: Path) -> None:
    scale = get_scale("tiny")
    steps = build_plan(scale, 1, tmp_path, only=("lm",))
    calls: list[str] = []
    with pytest.raises(G2LSTMError, match="failed"):
        run_plan(
            steps,
            RunContext(scale, tmp_path, log=lambda _: None),
            functions=_fake(calls, fail="lm-train-sharpened-s1"),
        )
    assert calls == ["lm-data", "lm-train-lstm-s1", "lm-eval-lstm-s1"]
    assert not (tmp_path / "lm" / "sharpened-s1" / "train" / DONE).exists()
    calls.clear()
    run_plan(steps, RunContext(scale, tmp_path, log=lambda _: None), functions=_fake(calls))
    assert calls[0] == "lm-train-sharpened-s1"


def test_changed_scale_setting_reruns_only_the_steps_that_read_it(tmp_path: Path) -> None:
    import dataclasses

    from g2lstm.reproduce.plan import CompressionSettings

    scale = get_scale("tiny")
    other = dataclasses.replace(scale, lm_compression=CompressionSettings(0.2, 0.4, (6, 3)))
    before = {s.id: s.inputs() for s in build_plan(scale, 1, tmp_path)}
    after = {s.id: s.inputs() for s in build_plan(other, 1, tmp_path)}
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"lm-eval-lstm-s1", "lm-eval-sharpened-s1", "lm-eval-g2-s1"}


def test_report_only_writes_a_partial_report_and_runs_nothing(tmp_path: Path, capsys) -> None:
    scale = get_scale("tiny")
    steps = build_plan(scale, 1, tmp_path, only=("lm",))
    calls: list[str] = []
    finished = [s for s in steps if s.kind in ("lm-data", "lm-train")]
    run_plan(finished, RunContext(scale, tmp_path, log=lambda _: None), functions=_fake(calls))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob(DONE))

    argv = ["reproduce", "--scale", "tiny", "--seeds", "1", "--only", "lm", "-o", str(tmp_path)]
    assert main([*argv, "--report-only"]) == 0
    assert f"{len(finished)} of {len(steps) - 1} steps finished" in capsys.readouterr().out
    report = (tmp_path / "report" / "report.md").read_text()
    assert "**Partial report**" in report and "not run" in report
    assert "- LM: preset " in report and "- MT: not run\n" in report  # --only lm
    # nothing ran: the same markers, none for the report (a full run still writes it)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob(DONE)) == before
    assert not steps[-1].done()

    capsys.readouterr()
    assert main([*argv, "--report-only", "--dry-run"]) == 2  # not both
    assert "not allowed with" in capsys.readouterr().err
    assert main([*argv[:-1], str(tmp_path / "nowhere"), "--report-only"]) != 0
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()
