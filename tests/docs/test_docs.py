"""The documentation site builds with ``mkdocs build --strict`` (broken links, missing pages
and unresolved API references fail), carries every generated page, and renders in Chromium."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs", reason="the `docs` extra is not installed")
    pytest.importorskip("mkdocstrings", reason="the `docs` extra is not installed")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.mark.slow
def test_site_has_every_generated_page(site: Path) -> None:
    from g2lstm.cli import COMMANDS

    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    for name, _, _ in COMMANDS:
        assert f"usage: g2lstm {name}" in cli, name
    for sub in ("lm train", "lm eval", "mt train", "compress sweep"):
        assert f"usage: g2lstm {sub}" in cli, sub
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## ", results, flags=re.M)
    pages = [p for p in (site / "results").iterdir() if (p / "index.html").is_file()]
    assert len(pages) == len(sections)
    api = (site / "reference" / "nn" / "index.html").read_text(encoding="utf-8")
    assert 'id="g2lstm.nn.G2LSTM.from_lstm"' in api and 'id="g2lstm.nn.revert"' in api
    works = (site / "works-with" / "index.html").read_text(encoding="utf-8")
    assert "torch.compile" in works and "torch.onnx.export" in works  # the README's table


@pytest.mark.slow
def test_a_page_with_figures_renders_in_chromium(site: Path, browser) -> None:
    page = next(p for p in sorted((site / "results").glob("gate-analysis-ptb*/index.html")))
    title, images = browser.page_images(site, page.relative_to(site).as_posix())
    assert title.startswith("Gate analysis (PTB small")
    assert images and all(width > 0 for _, width in images), images
