"""Presets keep their promise: ``tiny`` takes seconds on any dataset (the real Multi30k
included); no ``--preset`` on a CPU-only machine states the cost and refuses a run of more
than an hour without ``--yes``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from g2lstm.cli import main
from g2lstm.mt.batching import TokenBatchSampler
from g2lstm.mt.config import MTConfig
from g2lstm.mt.prepare import load_prepared


def _prepare(raw: Path, out: Path) -> Path:
    argv = ["mt", "prepare", "--dataset", "folder", "--raw", str(raw), "--src", "src"]
    argv += ["--tgt", "tgt", "--pretokenized", "--bpe-merges", "0", "--out", str(out)]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def toy_prepared(tmp_path_factory: pytest.TempPathFactory, write_parallel_corpus) -> Path:
    root = tmp_path_factory.mktemp("mt_presets")
    raw = write_parallel_corpus(root / "raw", {"train": 120, "valid": 40, "test": 10})
    return _prepare(raw, root / "prep")


def _epoch_batches(prepared: Path, pairs: int, max_tokens: int) -> int:
    """Token batches of one epoch over the first ``pairs`` training pairs."""
    encoded = load_prepared(prepared).encoded("train", pairs)
    lengths = ([len(s) + 1 for s, _ in encoded], [len(y) + 1 for _, y in encoded])
    return TokenBatchSampler(*lengths, max_tokens, shuffle=True, seed=1).num_batches


def test_tiny_preset_caps_the_sentences() -> None:
    assert MTConfig.from_preset("tiny").train.limit_sentences == 500
    assert MTConfig.from_preset("iwslt").train.limit_sentences is None


def test_limit_sentences_caps_training_validation_and_bleu(
    toy_prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    argv = ["mt", "train", "--preset", "tiny", "--data", str(toy_prepared), "--out", str(run)]
    argv += ["--epochs", "1", "--threads", "1", "--no-progress"]
    argv += ["--set", "train.limit_sentences=30", "--set", "decode.beam=1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "first 30 sentence pairs of train/valid" in out.splitlines()[0]
    result = json.loads((run / "results.json").read_text())
    assert (
        result["steps"]
        == _epoch_batches(toy_prepared, 30, 256)
        < _epoch_batches(toy_prepared, 120, 256)
    )
    assert result["details"]["valid_bleu"]["num_sentences"] == 30  # of the 40 valid pairs


@pytest.mark.data
@pytest.mark.slow
def test_tiny_takes_seconds_on_multi30k(real_data: Path, tmp_path: Path, capsys) -> None:
    # the whole corpus (29,000 training pairs); word level, so the vocabulary (27k joint
    # types) and the output layer are larger than with the default BPE: the harder case
    prep = tmp_path / "m30k"
    prepare = ["mt", "prepare", "--dataset", "multi30k", "--data-dir", str(real_data)]
    assert main([*prepare, "--bpe-merges", "0", "--out", str(prep)]) == 0
    run = tmp_path / "run"
    start, cpu_start = time.perf_counter(), time.process_time()
    argv = ["mt", "train", "--preset", "tiny", "--data", str(prep), "--out", str(run)]
    assert main([*argv, "--threads", "1", "--no-progress"]) == 0
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    capsys.readouterr()
    result = json.loads((run / "results.json").read_text())
    assert result["stopped"] == "epochs"
    # 2 epochs of the first 500 pairs at 256 tokens a batch (~70 updates), not ~4,000
    assert result["steps"] == 2 * _epoch_batches(prep, 500, 256)
    assert result["details"]["valid_bleu"]["num_sentences"] == 500  # of 1,014
    # generous bounds: ~15 s of CPU (one thread) when idle; the CPU time of this process,
    # unlike the wall clock, does not grow with the load of a shared machine
    assert cpu < 60, f"tiny preset took {cpu:.0f} s of CPU time"
    assert seconds < 300, f"tiny preset took {seconds:.0f} s"


def test_no_preset_on_cpu_states_the_cost_and_asks_for_yes(
    toy_prepared: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    small = ["--data", str(toy_prepared), "--threads", "1", "--no-progress"]
    small += ["--set", "model.hidden=16", "--set", "model.emb=8", "--set", "train.valid_bleu=false"]
    long_run = ["mt", "train", *small, "--out", str(tmp_path / "a"), "--epochs", "10000000"]
    assert main(long_run) == 2
    err = capsys.readouterr().err
    assert "no --preset given, so this is the 'iwslt' preset" in err
    assert "2 x 16 g2 encoder-decoder" in err and "10000000 epochs of 120 sentence pairs" in err
    assert "s per step" in err
    assert "pick a preset (--preset tiny" in err and "--yes" in err
    assert not (tmp_path / "a").exists()  # nothing started

    bounded = [*long_run[:-1], "3", "--max-updates", "2"]  # 3 epochs, at most 2 updates
    bounded[bounded.index(str(tmp_path / "a"))] = str(tmp_path / "b")
    assert main(bounded) == 0  # within the hour: it says what it runs, then runs
    err = capsys.readouterr().err
    assert "(2 updates of <= 2,000 tokens, train.max_updates): about " in err
    assert json.loads((tmp_path / "b" / "results.json").read_text())["steps"] == 2

    assert main([*long_run, "--yes", "--max-updates", "1"]) == 0  # --yes: no question asked
    assert "no --preset given" not in capsys.readouterr().err
