"""The top-level ``g2lstm`` command: error lines and global options."""

from __future__ import annotations

import subprocess
import sys

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


_NO_TORCH = """
import sys
from g2lstm.cli import main
for argv in ([], ["--help"], ["--version"], ["nope"], ["--bogus"]):
    try:
        main(argv)
    except SystemExit:
        pass
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("g2lstm."))
assert "torch" not in sys.modules, loaded
print("ok", loaded)
"""


def test_help_version_and_top_level_errors_do_not_import_torch() -> None:
    """``g2lstm``, ``--help``, ``--version`` and a wrong command answer at once: only the
    placeholders of the command groups are built (a fresh interpreter, so nothing that this
    test process already imported counts)."""
    proc = subprocess.run(
        [sys.executable, "-c", _NO_TORCH], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr


def test_the_command_group_still_gets_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    """The first pass's placeholder of ``lm`` has no ``--help`` of its own: the real one
    answers, listing the group's commands."""
    with pytest.raises(SystemExit) as exit_:
        main(["lm", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: g2lstm lm") and "train" in out and "generate" in out
    assert main(["lm", "train", "--preset", "tiny"]) == 2  # the real parser: --out required
    assert "the following arguments are required: --out" in capsys.readouterr().err


def test_the_package_names_resolve_on_first_use() -> None:
    import g2lstm
    from g2lstm import G2LSTM, convert
    from g2lstm.nn import G2LSTM as LAYER

    assert G2LSTM is LAYER and callable(convert)
    assert {"G2LSTM", "GateConfig", "__version__"} <= set(dir(g2lstm))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = g2lstm.nope
