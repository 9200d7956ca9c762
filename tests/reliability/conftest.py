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
def trained_lm(
    tmp_path_factory: pytest.TempPathFactory, write_lm_corpus, cli_argv
) -> tuple[Path, Path]:
    """(data folder, run folder) of a 3-step tiny LM run, trained once per session."""
    root = tmp_path_factory.mktemp("trained_lm")
    data = write_lm_corpus(root / "data")
    run = root / "run"
    assert main(cli_argv.lm_train(data, run, "--max-steps", "3")) == 0
    return data, run


@pytest.fixture
def lm_run(trained_lm: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of :func:`trained_lm` that a test may damage."""
    data, run = trained_lm
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return data, copy


@pytest.fixture(scope="session")
def trained_mt(
    tmp_path_factory: pytest.TempPathFactory, write_parallel_corpus, cli_argv
) -> tuple[Path, Path]:
    """(prepared folder, run folder) of a 4-update tiny MT run, trained once per session."""
    root = tmp_path_factory.mktemp("trained_mt")
    raw = write_parallel_corpus(root / "raw", {"train": 120, "valid": 12, "test": 12})
    prep, run = root / "prep", root / "run"
    assert main(cli_argv.mt_prepare(raw, prep)) == 0
    assert main(cli_argv.mt_train(prep, run, "--max-updates", "4")) == 0
    return prep, run
