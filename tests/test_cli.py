"""The top-level ``g2lstm`` command: error lines and global options."""

from __future__ import annotations

import pytest

from g2lstm.cli import main


@pytest.mark.parametrize(
    ("argv", "where"),
    [
        (["--bogus"], "g2lstm: error: unrecognized arguments: --bogus; see 'g2lstm --help'"),
        (["nope"], "g2lstm: error: argument COMMAND: invalid choice"),
        (
            ["lm", "train", "--preset", "huge", "--out", "x"],
            "g2lstm: error: lm train: argument --preset: invalid choice",
        ),
    ],
)
def test_usage_error_is_one_line_without_a_doubled_prefix(
    argv: list[str], where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(where), err
    assert "error: g2lstm" not in err
