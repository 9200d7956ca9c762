"""The ``tiny`` scale end to end on the real corpora (PTB and Multi30k slices), reusing the
LSTM LM and G2 MT runs that the public commands trained (``public_tiny_runs``)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import torch

from g2lstm.cli import main
from g2lstm.nn.fast.autotune import cpu_model
from g2lstm.reproduce.report import SECTIONS

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.data
@pytest.mark.slow
def test_tiny_reproduction_and_resume(
    real_data: Path,
    tmp_path: Path,
    capsys,
    request: pytest.FixtureRequest,
    public_tiny_runs: Path,
) -> None:
    out = tmp_path / "repro"
    args = ["reproduce", "--scale", "tiny", "--data-dir", str(real_data), "-o", str(out)]
    # two of the six trainings come from the public commands' runs (trained once per session
    # for test_reuse too); the other four run here
    assert main([*args, "--reuse", str(public_tiny_runs)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"\[1/17\] lm-data \.\.\.", text)
    assert "[17/17] report done" in text
    assert "17 step(s) run (2 reused), 0 skipped" in text
    for step, run in (("lm-train-lstm-s1", "lm-lstm"), ("mt-train-g2-s1", "mt-g2")):
        assert f"] {step} reused {(public_tiny_runs / run).resolve()} " in text

    report = out / "report"
    md = (report / "report.md").read_text(encoding="utf-8")
    html = (report / "report.html").read_text(encoding="utf-8")
    for title in SECTIONS:
        assert f"## {title}" in md
    # our rows carry numbers (not the "–" of a missing value)
    for row in ("Baseline LSTM (ours)", "Sharpened Sigmoid (ours)", "G2-LSTM (ours)"):
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {row} | 0."))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert all(re.match(r"^-?\d+\.\d+", c) for c in cells[2:4]), line
    table2 = md.split("## Table 2")[1].split("##")[0]
    assert len(re.findall(r"\| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \|", table2)) == 3
    assert "**2 training run(s) were reused**" in md
    assert f"- trained on: {cpu_model()}: 6 run(s)\n" in md  # the reused ones too
    assert f"- report written on: {cpu_model()}, torch {torch.__version__}\n" in md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 6
    for link in links:
        assert (report / link).read_bytes().startswith(PNG), link
    assert html.count("data:image/png;base64,") == len(links)
    try:  # the report as a browser shows it: every figure decodes (Debian's chromium)
        browser = request.getfixturevalue("browser")
    except pytest.skip.Exception:
        browser = None
    if browser is not None:
        title, images = browser.page_images(report, "report.html")
        assert "reproduction report" in title.lower(), title
        assert len(images) == len(links) and all(w > 0 for _, w in images), images

    # second invocation: every step is done, nothing is recomputed
    t0 = time.perf_counter()
    assert main(args) == 0
    assert time.perf_counter() - t0 < 20
    text = capsys.readouterr().out
    assert "0 step(s) run, 17 skipped" in text
    assert "17 steps, 17 done" in text
