"""``g2lstm reproduce --reuse``: finished runs satisfy training steps (hand-made run folders,
no training), and a tiny LM and MT run made with the public commands is reused for real."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from g2lstm.cli import main
from g2lstm.reproduce import reuse_scan
from g2lstm.reproduce.collect import collect
from g2lstm.reproduce.context import RunContext
from g2lstm.reproduce.plan import build_plan, format_plan, get_scale, read_marker, read_markers
from g2lstm.reproduce.report import write_report
from g2lstm.reproduce.reuse import POINTER, ReuseFinder
from g2lstm.reproduce.run import run_plan
from g2lstm.train.progress import format_duration

SCALE = get_scale("tiny")


def _no_training(kind: str):
    def run(step, ctx):
        raise AssertionError(f"{step.id} should not run")

    return run


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


class Study:
    """A tiny-scale plan whose data steps are done with hand-made data (no corpora)."""

    def __init__(self, tmp_path: Path, part: str) -> None:
        self.root = tmp_path
        self.out = tmp_path / "out"
        self.runs = tmp_path / "runs"
        self.runs.mkdir()
        self.lines: list[str] = []
        self.steps = build_plan(SCALE, 1, self.out, only=(part,))
        self.ctx = RunContext(SCALE, self.out, log=self.lines.append, reuse=(self.runs,))
        self.data = tmp_path / "data"
        self.data.mkdir()
        if part == "lm":
            for split in ("train", "valid", "test"):
                (self.data / f"{split}.txt").write_text(f"the {split} cat sat\n", "utf-8")
            result = {"data": str(self.data), "source": str(self.data), "slice": None}
        else:
            (self.data / "prepare.json").write_text(json.dumps(self._prepare()), "utf-8")
            result = {"prepared": str(self.data), "source": "x", "dataset": "multi30k"}
        run_plan(self.steps[:1], self.ctx, functions=lambda kind: lambda s, c: result)

    @staticmethod
    def _prepare(**outputs: str) -> dict:
        return {
            "format_version": 1,
            "settings": {"pipeline": {"name": "parallel"}, "config": {"bpe_merges": 800}},
            "inputs": {"train.de": {"path": "/elsewhere/train.de", "sha256": "s1"}},
            "outputs": {"vocab.json": "v1", "train.de": "t1", **outputs},
        }

    def step(self, step_id: str):
        return next(s for s in self.steps if s.id == step_id)

    def copy_of_data(self, name: str, **outputs: str) -> Path:
        """The same data at another path (``outputs``: MT output hashes that differ)."""
        dst = self.root / name
        shutil.copytree(self.data, dst)
        if outputs:
            info = self._prepare(**outputs)
            info["inputs"]["train.de"]["path"] = "/yet/another/path"
            (dst / "prepare.json").write_text(json.dumps(info), "utf-8")
        return dst

    def fake_run(
        self, name: str, step_id: str, data: Path, *, finished: bool = True, **changes
    ) -> Path:
        """A run folder as the trainers of an earlier version left it (the result files of
        both tasks in their old layouts, read by migration): config.yaml (with
        ``section.key`` changes), checkpoints/, metrics and, if ``finished``, the result
        file."""
        step = self.step(step_id)
        folder = self.runs / name
        (folder / "checkpoints" / "step-000000005").mkdir(parents=True)
        (folder / "checkpoints" / "step-000000005" / "model.safetensors").write_bytes(b"w")
        (folder / "metrics.jsonl").write_text('{"step": 5, "loss": 1.0}\n', "utf-8")
        if step.part == "lm":
            from g2lstm.reproduce.steps_lm import lm_train_config as _config

            cfg = _config(step, self.ctx, str(data)).replace({"model.vocab_size": 5, **changes})
            text = cfg.to_yaml()
            result = {
                "run_dir": f"runs/{name}",
                "complete": True,
                "stopped": None,
                "steps": 5,
                "epochs": 2,
                "valid_ppl": 9.0,
                "test_ppl": 9.5,
                "num_parameters": 10,
                "cell": step.cell,
                "seed": step.seed,
            }
            result_name = "results.json"
        else:
            from g2lstm.reproduce.steps_mt import mt_train_config as _config

            cfg = _config(step, self.ctx, str(data)).with_assignments(
                [f"{k}={v}" for k, v in changes.items()]
            )
            text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
            result = {
                "run_dir": f"runs/{name}",
                "step": 5,
                "epoch": 2,
                "stopped": "epochs",
                "train_seconds": 1.0,
                "best_valid_loss": 3.0,
                "best_checkpoint": f"runs/{name}/checkpoints/step-000000005",
                "num_parameters": 10,
                "valid_bleu": None,
            }
            result_name = "result.json"
        (folder / "config.yaml").write_text(text, "utf-8")
        if finished:
            (folder / result_name).write_text(json.dumps(result), "utf-8")
        (folder / ".g2lstm.lock").write_bytes(b"")
        return folder


def test_equal_run_is_reused_linked_recorded_and_released(tmp_path: Path) -> None:
    st = Study(tmp_path, "lm")
    # trained on a copy of the data elsewhere, with other threads/logging (ignored fields)
    run = st.fake_run(
        "lstm-seed1",
        "lm-train-lstm-s1",
        st.copy_of_data("copy"),
        **{"train.threads": 3, "train.log_interval": 7, "preset": None},
    )
    before = _files(run)
    train = st.step("lm-train-lstm-s1")
    summary = run_plan([st.steps[0], train], st.ctx, functions=_no_training)

    assert summary.reused == {train.id: str(run.resolve())}
    marker = read_marker(train.out_dir)
    assert marker["reused_from"] == str(run.resolve())
    assert re.fullmatch(r"[0-9a-f]{16}", marker["config_hash"])
    assert marker["result"]["run_dir"] == str(train.out_dir)
    assert marker["result"]["test_ppl"] == 9.5 and marker["result"]["reused_from"]
    assert (train.out_dir / "checkpoints").is_symlink()
    assert (train.out_dir / "checkpoints").resolve() == (run / "checkpoints").resolve()
    assert not (train.out_dir / ".g2lstm.lock").exists()
    assert any(f"{train.id} reused {run.resolve()}" in line for line in st.lines)
    assert _files(run) == before  # nothing written into the reused run
    assert collect(read_markers([train.out_dir]))["reused"] == [
        {"step": train.id, "path": str(run.resolve()), "config_hash": marker["config_hash"]}
    ]

    # the step is done; once the reused run is gone it is not, and training never writes
    # through the old links
    assert train.done()
    run.rename(tmp_path / "moved")
    assert not train.done()
    seen: list[bool] = []

    def trainer(kind: str):
        def fn(step, ctx):
            seen.append(any(p.is_symlink() for p in step.out_dir.iterdir()))
            return {"trained": True}

        return fn

    run_plan(
        [st.steps[0], train], RunContext(SCALE, st.out, log=st.lines.append), functions=trainer
    )
    assert seen == [False]
    assert not (train.out_dir / POINTER).exists()
    assert "reused_from" not in read_marker(train.out_dir)


def test_eta_leaves_out_what_reuse_satisfies(tmp_path: Path) -> None:
    st = Study(tmp_path, "lm")
    st.fake_run("lstm-seed1", "lm-train-lstm-s1", st.data)
    train, ev = st.step("lm-train-lstm-s1"), st.step("lm-eval-lstm-s1")
    run_plan([st.steps[0], train, ev], st.ctx, functions=lambda kind: lambda s, c: {"x": 1})
    # the reused training costs nothing: what is left is the evaluation's estimate
    expected = f"about {format_duration(ev.estimate_s)} left in all"
    assert any(line.startswith(f"[2/3] {train.id} ...") and expected in line for line in st.lines)


def test_differing_run_is_named_and_the_step_trains(tmp_path: Path) -> None:
    st = Study(tmp_path, "lm")
    other = tmp_path / "other-data"
    shutil.copytree(st.data, other)
    (other / "valid.txt").write_text("another valid text\n", "utf-8")
    run = st.fake_run("lstm-seed1", "lm-train-lstm-s1", other, **{"train.bptt": 8})
    st.fake_run("g2-seed2", "lm-train-g2-s1", st.data, **{"train.seed": 2})  # another seed
    calls: list[str] = []

    def trainer(kind: str):
        return lambda step, ctx: calls.append(step.id) or {"trained": True}

    train = st.step("lm-train-lstm-s1")
    g2 = st.step("lm-train-g2-s1")
    run_plan([st.steps[0], train, g2], st.ctx, functions=trainer)
    assert calls == [train.id, g2.id]
    lines = [ln for ln in st.lines if "not reusing" in ln]
    assert lines == [
        f"{train.id}: not reusing {run.resolve()}: differs in train.bptt=8 (needed "
        "20), data='" + str(other) + "' (other content: valid.txt)"
    ]
    assert "reused_from" not in read_marker(train.out_dir)


@pytest.mark.parametrize("state", ["no result", "incomplete", "training now"])
def test_unfinished_run_is_not_reused(tmp_path: Path, state: str) -> None:
    st = Study(tmp_path, "lm")
    run = st.fake_run("lstm", "lm-train-lstm-s1", st.data, finished=state != "no result")
    if state == "incomplete":
        info = json.loads((run / "results.json").read_text())
        (run / "results.json").write_text(json.dumps({**info, "complete": False}))
    if state == "training now":
        (run / ".g2lstm.pid").write_text(f"{os.getpid()}\n")
    decision = ReuseFinder(st.ctx.reuse, st.ctx).decide(st.step("lm-train-lstm-s1"))
    assert decision.run is None
    expected = {
        "no result": "not finished (no results.json)",
        "incomplete": "not finished (results.json: finished=false, stopped=None)",
        "training now": "being trained now",
    }[state]
    head = f"lm-train-lstm-s1: not reusing {run.resolve()}: same config"
    assert decision.message.startswith(head)
    assert expected in decision.message


def _trainer_process(run: Path) -> subprocess.Popen:
    """A live process named by the run's ``.g2lstm.pid`` (reaped when it ends, as a trainer
    that is not our child would be)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.0)"])
    threading.Thread(target=proc.wait, daemon=True).start()
    (run / ".g2lstm.pid").write_text(f"{proc.pid}\n")
    return proc


@pytest.mark.parametrize("finishes", [True, False])
def test_reuse_wait_waits_for_a_live_run(tmp_path: Path, monkeypatch, finishes: bool) -> None:
    monkeypatch.setattr(reuse_scan, "POLL_S", 0.05)
    st = Study(tmp_path, "lm")
    run = st.fake_run("lstm-seed1", "lm-train-lstm-s1", st.data, finished=finishes)
    proc = _trainer_process(run)
    train = st.step("lm-train-lstm-s1")
    decision = ReuseFinder(st.ctx.reuse, st.ctx, wait=True).decide(train)
    assert decision.run is None and decision.waiting_on.path == run.resolve()
    assert decision.label() == f"wait {run.resolve()} (being trained now)"
    # its time is unknown: the plan and the running ETA name the wait instead of counting it
    labels = ReuseFinder(st.ctx.reuse, st.ctx, wait=True).preview_labels([st.steps[0], train])
    waits = "plus the end of 1 run(s) trained beside it"
    assert waits in format_plan([st.steps[0], train], SCALE, st.out, reuse=labels)
    calls: list[str] = []

    def trainer(kind: str):
        return lambda step, ctx: calls.append(step.id) or {"trained": True}

    ctx = RunContext(SCALE, st.out, log=st.lines.append, reuse=(st.runs,), reuse_wait=True)
    summary = run_plan([st.steps[0], train], ctx, functions=trainer)
    assert proc.poll() is not None  # the step went on only once the trainer had ended
    assert any(line.startswith(f"[2/2] {train.id} ...") and waits in line for line in st.lines)
    assert f"{train.id}: {run.resolve()} being trained now with the same config" in "".join(
        st.lines
    )
    if finishes:  # adopted, not trained again
        assert calls == [] and summary.reused == {train.id: str(run.resolve())}
    else:  # it stopped unfinished: the step trains as usual
        assert calls == [train.id] and not summary.reused
        assert any("not finished (no results.json)" in line for line in st.lines)


def test_without_reuse_wait_a_live_run_is_named_with_the_option(tmp_path: Path, capsys) -> None:
    st = Study(tmp_path, "lm")
    run = st.fake_run("lstm-seed1", "lm-train-lstm-s1", st.data)
    (run / ".g2lstm.pid").write_text(f"{os.getpid()}\n")
    decision = ReuseFinder(st.ctx.reuse, st.ctx).decide(st.step("lm-train-lstm-s1"))
    assert decision.waiting_on is None and decision.run is None
    assert decision.message.endswith("is a live process) (--reuse-wait waits for it instead)")
    assert main(["reproduce", "--scale", "tiny", "--reuse-wait", "-o", str(st.out)]) != 0
    err = capsys.readouterr().err.strip()
    why = "--reuse-wait waits for runs under --reuse folders: add --reuse DIR"
    assert err == f"g2lstm: error: {why}"


def test_step_with_its_own_partial_training_keeps_it(tmp_path: Path) -> None:
    st = Study(tmp_path, "lm")
    run = st.fake_run("lstm", "lm-train-lstm-s1", st.data)
    train = st.step("lm-train-lstm-s1")
    (train.out_dir / "checkpoints").mkdir(parents=True)
    decision = ReuseFinder(st.ctx.reuse, st.ctx).decide(train)
    assert decision.run is None
    assert decision.message == (
        f"{train.id}: not reusing {run.resolve()}: {train.out_dir} holds files of an earlier "
        "training of this step, which goes on there (delete that folder to reuse the run instead)"
    )


def test_mt_prepared_data_compared_by_settings_and_hashes(tmp_path: Path) -> None:
    st = Study(tmp_path, "mt")
    same = st.fake_run(
        "lstm",
        "mt-train-lstm-s1",
        st.copy_of_data("prep-copy"),
        **{"train.threads": 2, "train.valid_bleu": True},
    )
    st.fake_run("g2", "mt-train-g2-s1", st.copy_of_data("prep-other", **{"vocab.json": "v2"}))
    finder = ReuseFinder(st.ctx.reuse, st.ctx)
    assert finder.decide(st.step("mt-train-lstm-s1")).path == same.resolve()
    refused = finder.decide(st.step("mt-train-g2-s1"))
    assert refused.run is None
    assert refused.message.endswith("differs in train.data (other prepared files: vocab.json)")
    st.fake_run("sharp", "mt-train-sharpened-s1", st.data, **{"decode.beam": 3})
    msg = finder.decide(st.step("mt-train-sharpened-s1")).message
    assert msg.endswith("differs in decode.beam=3 (needed 2)")


def test_dry_run_shows_reuse_and_refusals(tmp_path: Path, capsys) -> None:
    st = Study(tmp_path, "lm")
    run = st.fake_run("lstm-seed1", "lm-train-lstm-s1", st.data)
    st.fake_run("g2-seed1", "lm-train-g2-s1", st.data, **{"train.epochs": 3})
    args = [
        "reproduce",
        "--scale",
        "tiny",
        "--only",
        "lm",
        "-o",
        str(st.out),
        "--reuse",
        str(st.runs),
        "--dry-run",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert re.search(rf"lm-train-lstm-s1 +lm/lstm-s1/train +\S+ +reuse {run.resolve()}\n", text)
    assert re.search(r"lm-train-g2-s1 +lm/g2-s1/train +\S+ +todo\n", text)
    assert "lm-train-g2-s1: not reusing" in text and "train.epochs=3 (needed 4)" in text
    assert "1 done, 1 to be reused" in text
    assert not (st.out / "lm").exists()  # a dry run links nothing
    assert (
        main(["reproduce", "--reuse", str(tmp_path / "nope"), "--dry-run", "-o", str(st.out)]) != 0
    )


def test_reused_sweep_runs_are_counted_with_the_cells() -> None:
    def marker(step: str, cell: str, variant: str | None) -> dict:
        m = {"id": step, "kind": "lm-train", "cell": cell, "seed": 1, "result": {}}
        return (
            m
            | {"reused_from": f"/runs/{step}", "config_hash": "ab12"}
            | ({"variant": variant} if variant else {})
        )

    markers = [marker("lm-train-g2-s1", "g2", None), marker("lm-train-g2-p1-s1", "g2", "g2-p1")]
    reused = sorted(r["step"] for r in collect(markers)["reused"])
    assert reused == ["lm-train-g2-p1-s1", "lm-train-g2-s1"]


def test_report_lists_reused_runs(tmp_path: Path) -> None:
    reused = [{"step": "lm-train-lstm-s1", "path": "/runs/bench/lstm-seed1", "config_hash": "ab12"}]
    paths = write_report({"lm": {}, "mt": {}, "reused": reused}, tmp_path)
    md = paths["md"].read_text(encoding="utf-8")
    assert "**1 training run(s) were reused**" in md
    assert "- `lm-train-lstm-s1`: `/runs/bench/lstm-seed1` (config ab12)" in md
    assert "/runs/bench/lstm-seed1" in paths["html"].read_text(encoding="utf-8")


@pytest.mark.data
@pytest.mark.slow
def test_public_command_runs_are_reused(
    real_data: Path, tmp_path: Path, public_tiny_runs: Path
) -> None:
    """Tiny LM and MT runs trained with ``g2lstm lm/mt train`` on copies of the data satisfy
    the steps; evaluation then reads their checkpoints through the step folders."""
    out, runs = tmp_path / "out", public_tiny_runs
    steps = {s.id: s for s in build_plan(SCALE, 1, out)}
    ctx = RunContext(SCALE, out, str(real_data), log=lambda _: None, reuse=(runs,))
    before = {p: _files(runs / p) for p in ("lm-lstm", "mt-g2")}
    chosen = [
        steps[k]
        for k in (
            "lm-data",
            "lm-train-lstm-s1",
            "lm-eval-lstm-s1",
            "mt-data",
            "mt-train-g2-s1",
            "mt-eval-g2-s1",
        )
    ]
    summary = run_plan(chosen, ctx, functions=lambda kind: _guard(kind))
    assert summary.reused == {
        "lm-train-lstm-s1": str((runs / "lm-lstm").resolve()),
        "mt-train-g2-s1": str((runs / "mt-g2").resolve()),
    }
    lm_eval = read_marker(steps["lm-eval-lstm-s1"].out_dir)["result"]
    mt_eval = read_marker(steps["mt-eval-g2-s1"].out_dir)["result"]
    assert lm_eval["test_ppl"] > 1
    assert set(lm_eval["compression"]) == set(SCALE.lm_compression.settings())
    assert mt_eval["tok_bleu"] >= 0 and len(mt_eval["compression"]) == 4
    assert {p: _files(runs / p) for p in before} == before


def _guard(kind: str):
    from g2lstm.reproduce.run import step_function

    if kind.endswith("-train"):
        return _no_training(kind)
    return step_function(kind)
