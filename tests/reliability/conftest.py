"""Shared helpers for the reliability tests: CLI runs, file snapshots, a trained tiny LM.

The tiny corpora come from the ``write_lm_corpus`` / ``write_parallel_corpus`` fixtures of
``tests/conftest.py``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from g2lstm.cli import main


def lm_train_argv(data: Path, out: Path, *extra: str) -> list[str]:
    """``g2lstm lm train`` on the tiny preset, one thread, no progress bar."""
    return [
        "lm",
        "train",
        "--preset",
        "tiny",
        "--data",
        str(data),
        "--out",
        str(out),
        "--threads",
        "1",
        "--no-progress",
        *extra,
    ]


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime (ns) of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".g2lstm")
    }


@pytest.fixture
def cli_error(capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """Run ``g2lstm ARGV``; assert exit 2 and one ``g2lstm: error:`` line; return that line."""

    def run(argv: list[str], *needles: str) -> str:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("g2lstm: error: "), err
        assert "Traceback" not in err
        for needle in needles:
            assert needle in lines[0], (needle, lines[0])
        return lines[0]

    return run


@pytest.fixture(scope="session")
def trained_lm(tmp_path_factory: pytest.TempPathFactory, write_lm_corpus) -> tuple[Path, Path]:
    """(data folder, run folder) of a 3-step tiny LM run, trained once per session."""
    root = tmp_path_factory.mktemp("trained_lm")
    data = write_lm_corpus(root / "data")
    run = root / "run"
    assert main(lm_train_argv(data, run, "--max-steps", "3")) == 0
    return data, run


@pytest.fixture
def lm_run(trained_lm: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of :func:`trained_lm` that a test may damage."""
    data, run = trained_lm
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return data, copy


def mt_prepare_argv(raw: Path, out: Path, *extra: str) -> list[str]:
    """``g2lstm mt prepare`` of a pre-tokenised ``{split}.src``/``.tgt`` folder, no BPE."""
    return [
        "mt",
        "prepare",
        "--dataset",
        "folder",
        "--raw",
        str(raw),
        "--src",
        "src",
        "--tgt",
        "tgt",
        "--pretokenized",
        "--bpe-merges",
        "0",
        "--out",
        str(out),
        *extra,
    ]


def mt_train_argv(prep: Path, out: Path, *extra: str) -> list[str]:
    """``g2lstm mt train`` on the tiny preset, no BLEU at the end, no progress bar."""
    return [
        "mt",
        "train",
        "--preset",
        "tiny",
        "--data",
        str(prep),
        "--out",
        str(out),
        "--threads",
        "1",
        "--no-progress",
        "--set",
        "train.valid_bleu=false",
        *extra,
    ]


@pytest.fixture(scope="session")
def trained_mt(
    tmp_path_factory: pytest.TempPathFactory, write_parallel_corpus
) -> tuple[Path, Path]:
    """(prepared folder, run folder) of a 4-update tiny MT run, trained once per session."""
    root = tmp_path_factory.mktemp("trained_mt")
    raw = write_parallel_corpus(root / "raw", {"train": 120, "valid": 12, "test": 12})
    prep, run = root / "prep", root / "run"
    assert main(mt_prepare_argv(raw, prep)) == 0
    assert main(mt_train_argv(prep, run, "--max-updates", "4")) == 0
    return prep, run
