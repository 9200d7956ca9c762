"""Packaging: the sdist carries every tracked file (check-manifest), and the wheel works in
a clean virtual environment holding torch alone (train one step, run the CLI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _git_checkout() -> bool:
    return shutil.which("git") is not None and (ROOT / ".git").exists()


def test_license_and_metadata() -> None:
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert meta["license"] == "MIT" and meta["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert meta["urls"]
    assert "tensorboard" in " ".join(meta["optional-dependencies"]["all"])


@pytest.mark.slow
def test_sdist_has_every_tracked_file() -> None:
    pytest.importorskip("check_manifest", reason="check-manifest (test extra) is not installed")
    if not _git_checkout():
        pytest.skip("not a git checkout: check-manifest compares the sdist with git's files")
    proc = subprocess.run(
        [sys.executable, "-m", "check_manifest", "--no-build-isolation", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


SMOKE = textwrap.dedent("""
    import importlib.util, torch, g2lstm
    assert importlib.util.find_spec("numpy") is None, "the core must not need numpy"
    torch.manual_seed(0)
    lstm = g2lstm.G2LSTM(8, 16, num_layers=2, batch_first=True, tau=0.9, noise_p=0.2)
    head = torch.nn.Linear(16, 1)
    opt = torch.optim.SGD([*lstm.parameters(), *head.parameters()], lr=0.1)
    x, y = torch.randn(4, 5, 8), torch.randn(4, 1)
    loss = torch.nn.functional.mse_loss(head(lstm(x)[0][:, -1]), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss), loss
    from g2lstm.cli import main
    assert main([]) == 0
    print("smoke ok", g2lstm.__version__)
""")


@pytest.mark.slow
def test_wheel_in_a_clean_venv_with_torch_only(tmp_path: Path) -> None:
    pytest.importorskip("build", reason="build (test extra) is not installed")
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = dist.glob("g2lstm-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    # no PYTHONPATH: pip runs inside the new venv and must not see a source checkout
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # torch==2.13.0 from the local wheel / pip cache (the CPU build), then the wheel alone
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--quiet",
            f"torch=={_torch_version()}",
            str(wheel),
        ],
        check=True,
        env=env,
        timeout=900,
    )
    env["G2LSTM_CPU_KERNEL"] = "0"  # no ninja in this venv: the ATen step, without a notice
    out = subprocess.run(
        [str(py), "-c", SMOKE],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0 and "smoke ok" in out.stdout, out.stdout + out.stderr
    cli = subprocess.run(
        [str(env_dir / "bin" / "g2lstm"), "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert cli.returncode == 0 and cli.stdout.startswith("g2lstm "), cli.stdout + cli.stderr


def _torch_version() -> str:
    import torch

    return torch.__version__.split("+")[0]
