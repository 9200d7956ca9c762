"""No write follows a symlink planted in a run or output folder; pointer files stay inside
their run; ``--out`` never merges into a foreign folder; ``compress -o`` is created exclusively
(issue 17, cases 1, 2 and 5)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest
import torch

from g2lstm.cli import main
from g2lstm.compress import load_compressed, quantize, save_compressed
from g2lstm.errors import OutputError
from g2lstm.lm.evaluate import load_model
from g2lstm.train import CheckpointManager, MetricsLogger, RunLock, claim_run_dir

from .conftest import snapshot

SECRET = b"KEY=do-not-touch\n"
#: every name ``lm train`` writes or appends to in its run folder (files and folders)
_RUN_NAMES = [
    ".g2lstm.pid",
    ".g2lstm.lock",
    ".g2lstm-run",
    "metrics.csv",
    "metrics.jsonl",
    "config.yaml",
    "vocab.json",
    "results.json",
    "checkpoints",
    "tensorboard",
]


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    victim.write_bytes(SECRET)
    return victim


@pytest.mark.parametrize("name", _RUN_NAMES)
def test_link_planted_in_a_new_run_folder_is_refused(
    name: str, tmp_path: Path, cli_error, write_lm_corpus, cli_argv
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    victim = _victim(tmp_path)
    target = victim
    if name in ("checkpoints", "tensorboard"):
        target = tmp_path / "elsewhere"
        target.mkdir()
    run = tmp_path / "r"
    run.mkdir()
    (run / name).symlink_to(target)
    cli_error(cli_argv.lm_train(data, run, "--max-steps", "2"), str(run / name), "symbolic link")
    assert victim.read_bytes() == SECRET
    assert not (tmp_path / "elsewhere").exists() or not any((tmp_path / "elsewhere").iterdir())


@pytest.mark.parametrize("name", ["metrics.csv", "metrics.jsonl", ".g2lstm.pid", "vocab.json"])
def test_link_planted_in_an_existing_run_is_refused_on_resume(
    name: str, lm_run, tmp_path: Path, cli_error
) -> None:
    _, run = lm_run
    victim = _victim(tmp_path)
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(victim)
    cli_error(
        ["lm", "train", "--out", str(run), "--resume", "--max-steps", "5", "--no-progress"],
        "symbolic link",
        name,
    )
    assert victim.read_bytes() == SECRET


def test_run_lock_and_metrics_logger_refuse_links(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    for name in (".g2lstm.lock", ".g2lstm.pid"):
        run = tmp_path / f"run{name}"
        run.mkdir()
        (run / name).symlink_to(victim)
        with pytest.raises(OutputError, match="symbolic link"):
            RunLock(run).acquire()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "metrics.jsonl").symlink_to(victim)
    with pytest.raises(OutputError, match="symbolic link"):
        MetricsLogger(tmp_path / "m")
    assert victim.read_bytes() == SECRET
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "m" / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    manager = CheckpointManager(tmp_path / "m")  # reading through a linked run is allowed
    assert manager.latest() is None
    with pytest.raises(OutputError, match="symbolic link"):
        manager.save(1, model_state={"w": torch.zeros(2)})
    assert list(elsewhere.iterdir()) == []


def test_pointer_files_cannot_lead_outside_the_run(lm_run, tmp_path: Path, capsys) -> None:
    _, run = lm_run
    manager = CheckpointManager(run, keep_last=None)
    own = manager.latest()
    outside = tmp_path / "outside" / "step-000000999"
    shutil.copytree(own, outside)
    ckpts = run / "checkpoints"
    for record in (
        {"path": str(outside), "step": 999},  # absolute path
        {"path": "../../outside/step-000000999"},  # climbs out
        {"path": ["step-000000003"]},
        [1, 2],
        "step",
    ):  # wrong types
        for pointer in ("last.json", "best.json"):
            (ckpts / pointer).write_text(json.dumps(record), encoding="utf-8")
        assert CheckpointManager(run).latest() == own
        assert CheckpointManager(run).best() is None
    # a checkpoint directory that is itself a link is not one of the run's checkpoints
    (ckpts / "step-000000999").symlink_to(outside, target_is_directory=True)
    assert CheckpointManager(run).checkpoints() == [own]
    assert CheckpointManager(run).latest() == own
    assert main(["lm", "eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoint"] == str(own)


def test_out_that_is_a_foreign_folder_is_refused(
    tmp_path: Path, cli_error, write_lm_corpus, trained_mt, cli_argv
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my: settings\n")
    (mine / "metrics.csv").write_text("a,b\n1,2\n")
    before = snapshot(mine)
    cli_error(
        cli_argv.lm_train(data, mine, "--max-steps", "2"),
        str(mine),
        "not empty",
        "not a g2lstm run",
    )
    prep, _ = trained_mt
    cli_error(cli_argv.mt_train(prep, mine, "--max-updates", "1"), "not a g2lstm run")
    assert snapshot(mine) == before and sorted(os.listdir(mine)) == ["config.yaml", "metrics.csv"]


def test_a_run_of_another_kind_is_refused(
    tmp_path: Path, lm_run, trained_mt, cli_error, cli_argv
) -> None:
    _, lm = lm_run
    prep, mt = trained_mt
    before = snapshot(lm)
    claim_run_dir(lm, "lm")  # legacy runs and marked runs of the same kind are accepted
    cli_error(cli_argv.mt_train(prep, lm, "--max-updates", "1"), "not a mt run")
    assert snapshot(lm) == before
    with pytest.raises(Exception, match="not a lm run"):
        claim_run_dir(mt, "lm")


def test_compress_output_link_is_replaced_not_followed(lm_run, tmp_path: Path) -> None:
    _, run = lm_run
    victim = _victim(tmp_path)
    out = tmp_path / "model.g2c.safetensors"
    out.symlink_to(victim)
    argv = [
        "compress",
        str(run),
        "--method",
        "round",
        "--step",
        "0.2",
        "--clip",
        "0.4",
        "-o",
        str(out),
        "--force",
    ]
    assert main(argv) == 0
    assert victim.read_bytes() == SECRET and not out.is_symlink()
    load_compressed(out)


def test_compress_without_force_creates_exclusively(
    lm_run, tmp_path: Path, cli_error, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, run = lm_run
    out = tmp_path / "m.safetensors"
    argv = ["compress", str(run), "--method", "quant", "--bits", "4", "-o", str(out)]
    assert main(argv) == 0
    first = out.read_bytes()
    cli_error(argv, str(out), "exists", "--force")  # refused before any work
    # the race: the file appears after the early check (another process): still refused
    import g2lstm.compress.cli as compress_cli

    monkeypatch.setattr(compress_cli, "check_output_file", lambda p, *a, **k: Path(p))
    cli_error(argv, str(out), "exists", "--force")
    assert out.read_bytes() == first
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_two_concurrent_exclusive_saves_one_wins(lm_run, tmp_path: Path) -> None:
    _, run = lm_run
    model, report = quantize(load_model(run).model, 4)
    out = tmp_path / "same.safetensors"
    barrier, results = threading.Barrier(4), []

    def save() -> None:
        barrier.wait()
        try:
            save_compressed(out, model, report, overwrite=False)
            results.append("ok")
        except OutputError:
            results.append("exists")

    threads = [threading.Thread(target=save) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["exists", "exists", "exists", "ok"]
    load_compressed(out)


def test_mt_prepare_never_writes_through_a_planted_temporary_name(
    tmp_path: Path, write_parallel_corpus, cli_argv
) -> None:
    raw = write_parallel_corpus(tmp_path / "raw", {"train": 30, "valid": 5, "test": 5})
    victim = _victim(tmp_path)
    prep = tmp_path / "prep"
    prep.mkdir()
    for name in ("train.src.tmp", "train.src", "prepare.json.tmp", "vocab.json.tmp"):
        (prep / name).symlink_to(victim)
    assert main(cli_argv.mt_prepare(raw, prep, "--overwrite")) == 0
    assert victim.read_bytes() == SECRET
    assert not (prep / "train.src").is_symlink()
