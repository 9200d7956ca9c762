"""``g2lstm reproduce`` under ``torchrun``: rank 0 decides, writes and prints; LM training runs
on every rank. Fast tests run two ranks as threads with an in-memory broadcast; one slow test
launches two real gloo processes through torchrun on a tiny corpus."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import g2lstm.train
from g2lstm.errors import G2LSTMError
from g2lstm.reproduce.context import RunContext
from g2lstm.reproduce.plan import DONE, Step, build_plan, get_scale, read_marker
from g2lstm.reproduce.ranks import Ranks, env_rank, on_main, open_ranks
from g2lstm.reproduce.run import ALL_RANKS, run_plan

SCALE = get_scale("tiny")
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class _Wire:
    """What two thread-ranks share: a slot per rank and a barrier (times out, never hangs)."""

    def __init__(self, world: int) -> None:
        self.slots: list[Any] = [None] * world
        self.barrier = threading.Barrier(world, timeout=20)


class ThreadRanks(Ranks):
    """One rank of a job whose ranks are threads; messages are deep-copied like pickles."""

    def __init__(self, rank: int, wire: _Wire) -> None:
        super().__init__(rank, len(wire.slots))
        self.wire = wire
        self.messages = 0

    def broadcast(self, obj: Any) -> Any:
        self.messages += 1
        if self.is_main:
            self.wire.slots[0] = copy.deepcopy(obj)
        self.wire.barrier.wait()
        value = copy.deepcopy(self.wire.slots[0])
        self.wire.barrier.wait()
        return value

    def all_gather(self, obj: Any) -> list[Any]:
        self.wire.slots[self.rank] = copy.deepcopy(obj)
        self.wire.barrier.wait()
        values = copy.deepcopy(self.wire.slots)
        self.wire.barrier.wait()
        return values


def _run_ranks(job: Callable[[Ranks], Any], world: int = 2) -> list[Any]:
    """``job(ranks)`` on ``world`` threads; each entry is the return value or the exception
    (a rank left waiting gets ``BrokenBarrierError`` from the barrier's timeout)."""
    wire = _Wire(world)
    out: list[Any] = [None] * world

    def target(rank: int) -> None:
        try:
            out[rank] = job(ThreadRanks(rank, wire))
        except Exception as exc:  # handed to the test
            out[rank] = exc

    threads = [threading.Thread(target=target, args=(r,), name=f"rank{r}") for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a rank hangs"
    return out


class Recorder:
    """Step functions that record ``(rank, step id)`` and may fail at one step on one rank."""

    def __init__(self, fail: tuple[int, str] | None = None) -> None:
        self.calls: list[tuple[int, str]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def functions(self, rank: int) -> Callable[[str], Any]:
        def function(kind: str) -> Callable[[Step, RunContext], dict[str, Any]]:
            def run(step: Step, ctx: RunContext) -> dict[str, Any]:
                if self.fail == (rank, step.id):
                    raise G2LSTMError(f"{step.id} broke")
                with self.lock:
                    self.calls.append((rank, step.id))
                return {"rank": rank}

            return run

        return function

    def ids(self, rank: int) -> list[str]:
        return [s for r, s in self.calls if r == rank]


def _plan(tmp_path: Path) -> list[Step]:
    return build_plan(SCALE, 1, tmp_path / "out", only=("lm",))


def _job(
    steps: list[Step],
    tmp_path: Path,
    rec: Recorder,
    logs: dict[int, list[str]],
    reuse: tuple[Path, ...] = (),
):
    def job(ranks: Ranks):
        lines = logs.setdefault(ranks.rank, [])
        ctx = RunContext(SCALE, tmp_path / "out", log=lines.append, reuse=reuse)
        return run_plan(steps, ctx, functions=rec.functions(ranks.rank), ranks=ranks)

    return job


def test_rank0_decides_and_writes_all_ranks_train(tmp_path: Path, monkeypatch) -> None:
    steps = _plan(tmp_path)
    seen: list[str] = []
    done, write = Step.done, g2lstm.train.atomic_write_json

    def spy_done(self: Step) -> bool:
        seen.append(threading.current_thread().name)
        return done(self)

    def spy_write(path: Path, data: Any) -> None:
        seen.append(threading.current_thread().name)
        write(path, data)

    monkeypatch.setattr(Step, "done", spy_done)
    monkeypatch.setattr("g2lstm.train.atomic_write_json", spy_write)
    rec, logs = Recorder(), {}
    s0, s1 = _run_ranks(_job(steps, tmp_path, rec, logs))
    assert rec.ids(0) == [s.id for s in steps]
    assert rec.ids(1) == [s.id for s in steps if s.kind in ALL_RANKS] != []
    assert set(seen) == {"rank0"}  # markers read and written, plan.json written: rank 0 only
    assert logs[1] == [] and any(line.startswith("[1/9] lm-data ...") for line in logs[0])
    assert s0 == s1 and s0.ran == [s.id for s in steps] and not s0.skipped
    for step in steps:
        marker = read_marker(step.out_dir)
        assert marker is not None and marker["result"] == {"rank": 0}
        assert marker.get("world_size") == (2 if step.kind in ALL_RANKS else None)

    rec2 = Recorder()
    s0, s1 = _run_ranks(_job(steps, tmp_path, rec2, {}))
    assert rec2.calls == [] and s0 == s1 and s0.skipped == [s.id for s in steps]


def test_rank0_failure_stops_the_others_with_its_step(tmp_path: Path) -> None:
    steps = _plan(tmp_path)
    rec = Recorder(fail=(0, "lm-eval-lstm-s1"))
    e0, e1 = _run_ranks(_job(steps, tmp_path, rec, {}))
    assert isinstance(e0, G2LSTMError) and str(e0) == "lm-eval-lstm-s1 broke"
    assert isinstance(e1, G2LSTMError)
    assert re.search(
        r"rank 0 failed in lm-eval-lstm-s1 \(G2LSTMError: lm-eval-lstm-s1 broke\)"
        r"; rank 1 stops too",
        str(e1),
    )
    assert rec.ids(1) == ["lm-train-lstm-s1"]
    assert read_marker(tmp_path / "out" / "lm" / "lstm-s1" / "train") is not None
    assert not (tmp_path / "out" / "lm" / "lstm-s1" / "eval" / DONE).exists()

    rec2 = Recorder()  # the next invocation goes on where it stopped, on both ranks
    s0, s1 = _run_ranks(_job(steps, tmp_path, rec2, {}))
    assert rec2.ids(0)[0] == "lm-eval-lstm-s1" and "lm-train-lstm-s1" in s0.skipped
    assert rec2.ids(1) == ["lm-train-sharpened-s1", "lm-train-g2-s1"] and s0 == s1


def test_reuse_is_decided_on_rank0_and_skips_training_everywhere(
    tmp_path: Path, monkeypatch
) -> None:
    steps = _plan(tmp_path)
    finished = tmp_path / "runs" / "g2"
    finished.mkdir(parents=True)
    decided: list[str] = []

    class Finder:
        def __init__(self, dirs: Any, ctx: RunContext, *, wait: bool = False) -> None:
            pass

        def preview_labels(self, steps: Any) -> dict[str, str]:
            return {}  # (the running ETA's preview: not a decision)

        def decide(self, step: Step) -> Any:
            decided.append(threading.current_thread().name)
            run = SimpleNamespace(path=finished) if step.id == "lm-train-g2-s1" else None
            return SimpleNamespace(message=None, config_hash="abc", run=run, waiting_on=None)

    monkeypatch.setattr("g2lstm.reproduce.reuse.ReuseFinder", Finder)
    monkeypatch.setattr("g2lstm.reproduce.reuse.adopt", lambda step, run, h: {"adopted": step.id})
    rec = Recorder()
    s0, s1 = _run_ranks(_job(steps, tmp_path, rec, {}, reuse=(tmp_path / "runs",)))
    assert set(decided) == {"rank0"} and len(decided) == 3
    assert rec.ids(1) == ["lm-train-lstm-s1", "lm-train-sharpened-s1"]
    assert "lm-train-g2-s1" not in rec.ids(0)
    assert s0 == s1 and s0.reused == {"lm-train-g2-s1": str(finished)}
    marker = read_marker(tmp_path / "out" / "lm" / "g2-s1" / "train")
    assert marker is not None and marker["reused_from"] == str(finished)
    assert "world_size" not in marker


def test_single_process_ranks(monkeypatch) -> None:
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    ranks = open_ranks()
    assert type(ranks) is Ranks and ranks.is_main and ranks.world_size == 1
    assert env_rank() == 0 and ranks.broadcast("x") == "x" and ranks.all_gather(3) == [3]
    assert on_main(ranks, "w", lambda a: {"a": a}, 1) == {"a": 1}
    with pytest.raises(KeyError):  # one process: the error itself, unwrapped
        on_main(ranks, "w", lambda: {}["missing"])
    ranks.close()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert env_rank() == 1
    with pytest.raises(G2LSTMError, match="need 0 <= rank < size"):
        Ranks(2, 2)


def test_trainer_joins_a_running_group_and_leaves_it(monkeypatch) -> None:
    import torch.distributed as dist

    from g2lstm.train import init_distributed

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "1")  # never used: the group is running already
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        ctx = init_distributed()
        assert not ctx.owns_group and ctx.backend == "gloo" and ctx.is_distributed
        ctx.cleanup()
        assert dist.is_initialized()  # the caller that started it destroys it
    finally:
        dist.destroy_process_group()


def _tiny_study(tmp_path: Path, write_lm_corpus: Callable[..., Path]) -> Path:
    """An output folder whose ``lm-data`` step is done with a tiny corpus (the real PTB is
    checksum-verified); ``<unk>`` lets the gate analysis encode its example sentences."""
    data = write_lm_corpus(tmp_path / "ptb")
    for split in ("train", "valid", "test"):
        with (data / f"{split}.txt").open("a", encoding="utf-8") as f:
            f.write("<unk> w1 w2\n")
    out = tmp_path / "out"
    steps = build_plan(SCALE, None, out, only=("lm",))
    result = {"data": str(data), "source": str(data), "slice": None}
    run_plan(
        steps[:1],
        RunContext(SCALE, out, log=lambda _: None),
        functions=lambda kind: lambda step, ctx: result,
    )
    return out


def _torchrun(out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in TORCHRUN_VARS:
        env.pop(var, None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "g2lstm.cli",
        "reproduce",
        "--scale",
        "tiny",
        "--only",
        "lm",
        "--data-dir",
        str(out.parent / "no-data"),
        "-o",
        str(out),
    ]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_torchrun_two_ranks_tiny_lm(tmp_path: Path, write_lm_corpus: Callable[..., Path]) -> None:
    out = _tiny_study(tmp_path, write_lm_corpus)
    steps = build_plan(SCALE, None, out, only=("lm",))
    text = _torchrun(out).stdout
    # one copy of every line: only rank 0 prints
    assert text.count("g2lstm reproduce --scale tiny") == 1
    assert text.count("[1/9] lm-data ... already done, skipped") == 1
    for k, step in enumerate(steps[1:], 2):
        assert len(re.findall(rf"^\[{k}/9\] {step.id} done in ", text, re.M)) == 1, text
    assert text.count("| end of training |") == 3
    assert text.count("8 step(s) run, 1 skipped. Report:") == 1
    assert "## Table 1" in (out / "report" / "report.md").read_text(encoding="utf-8")
    plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    assert [s["id"] for s in plan["steps"]] == [s.id for s in steps]
    for step in steps[1:]:
        marker = read_marker(step.out_dir)
        assert marker is not None and marker["id"] == step.id, step.id
        if step.kind == "lm-train":  # trained by both ranks through the data-parallel trainer
            assert marker["world_size"] == 2 and marker["result"]["finished"]
            assert (step.out_dir / "results.json").is_file()
        else:
            assert "world_size" not in marker
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    text = _torchrun(out).stdout
    assert text.count("0 step(s) run, 9 skipped.") == 1
    assert text.count("already done, skipped") == 9
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_process_count_that_cannot_share_the_lm_batch_is_refused_at_once(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    from g2lstm.cli import main

    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "3")  # tiny's LM batch is 20
    monkeypatch.setenv("RANK", "1")
    out = tmp_path / "out"
    assert main(["reproduce", "--scale", "tiny", "--only", "lm", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "batch size 20, which 3 processes cannot share" in err and "2, 4, 5, 10" in err
    assert not out.exists()
    # a dry run needs no process group: rank 1 prints nothing, rank 0 the plan
    assert main(["reproduce", "--scale", "tiny", "-o", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("RANK", "0")
    assert main(["reproduce", "--scale", "tiny", "-o", str(out), "--dry-run"]) == 0
    assert "17 steps, 0 done" in capsys.readouterr().out
