"""Report writer and verdicts on hand-made numbers (no training)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from g2lstm.reproduce.report import SECTIONS, write_report
from g2lstm.reproduce.verdicts import (
    DID_NOT_HOLD,
    HELD,
    INCONCLUSIVE,
    NOT_RUN,
    Stats,
    compare,
    evaluate_claims,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("a", "b", "higher", "status"),
    [
        ([1.0, 1.2, 1.1], [2.0, 2.1, 1.9], False, HELD),  # lower is better, A clearly lower
        ([1.0, 1.2, 1.1], [2.0, 2.1, 1.9], True, DID_NOT_HOLD),
        ([1.0, 2.0], [1.4, 1.6], False, INCONCLUSIVE),  # gap 0.0 within std
        ([1.0, 1.1], [1.2, 1.25], False, HELD),  # gap 0.175 > max std 0.07
        ([1.0, 1.1], [1.10, 1.11], False, INCONCLUSIVE),  # gap 0.055 <= std 0.0707
        ([1.0], [5.0], False, INCONCLUSIVE),  # one seed: no spread to judge by
        ([], [5.0, 6.0], False, NOT_RUN),
        (None, None, True, NOT_RUN),
    ],
)
def test_compare_rule(a, b, higher, status) -> None:
    assert compare("x", a, b, higher_is_better=higher).status == status


def test_stats_format() -> None:
    assert Stats.of([1.0, 3.0]).format(1) == "2.0 ± 1.4"
    assert Stats.of([2.0]).format(2) == "2.00"
    assert Stats.of([]).format() == "–"
    assert Stats.of([float("nan"), 4.0]).n == 1


def _cell(ppl, comp, near, soft, hard, bleu, bleu_comp, mt_near):
    return (
        {
            "valid_ppl": [p + 3 for p in ppl],
            "test_ppl": ppl,
            "num_parameters": 24_000_000,
            "compression": comp,
            "near_binary": near,
            "hard": {"soft": soft, "hard": hard},
            "seeds": [1, 2, 3],
        },
        {
            "tok_bleu": bleu,
            "detok_bleu": [b - 1 for b in bleu],
            "compression": bleu_comp,
            "near_binary": mt_near,
            "hard": {"soft": [20.0] * 3, "hard": [21.0] * 3},
            "seeds": [1, 2, 3],
        },
    )


def numbers(tmp_path: Path) -> dict:
    """Three seeds where G2 is clearly better on everything except BLEU (equal)."""
    lstm = _cell(
        [60.0, 61.0, 59.0],
        {
            "round": [61.0, 62.0, 60.0],
            "round_clip": [62.0, 63.0, 61.0],
            "svd_high": [64.0, 65.0, 63.0],
            "svd_low": [72.0, 73.0, 71.0],
        },
        {"input": [0.2, 0.21, 0.22], "forget": [0.13, 0.12, 0.14]},
        [62.0, 63.0, 61.0],
        [90.0, 95.0, 85.0],
        [30.0, 31.0, 29.0],
        {
            "round": [28.0, 29.0, 27.0],
            "round_clip": [20.0, 22.0, 21.0],
            "svd_high": [29.0, 30.0, 28.0],
            "svd_low": [28.0, 29.0, 27.0],
        },
        {"input": [0.2, 0.22, 0.21], "forget": [0.1, 0.12, 0.11]},
    )
    g2 = _cell(
        [56.0, 56.5, 55.5],
        {
            "round": [56.1, 56.6, 55.6],
            "round_clip": [56.7, 57.2, 56.2],
            "svd_high": [57.0, 57.5, 56.5],
            "svd_low": [60.0, 60.5, 59.5],
        },
        {"input": [0.75, 0.74, 0.76], "forget": [0.6, 0.62, 0.61]},
        [58.0, 58.5, 57.5],
        [59.0, 59.5, 58.5],
        [30.0, 31.0, 29.0],
        {
            "round": [29.5, 30.5, 28.5],
            "round_clip": [29.5, 30.5, 28.5],
            "svd_high": [29.7, 30.7, 28.7],
            "svd_low": [29.4, 30.4, 28.4],
        },
        {"input": [0.7, 0.72, 0.71], "forget": [0.6, 0.62, 0.61]},
    )
    sharp = _cell(
        [58.0, 58.5, 57.5],
        lstm[0]["compression"],
        {"input": [0.3, 0.3, 0.3], "forget": [0.3, 0.31, 0.29]},
        [60.0] * 3,
        [61.0] * 3,
        [29.0, 30.0, 28.0],
        lstm[1]["compression"],
        {"input": [0.3] * 3, "forget": [0.3] * 3},
    )
    curve = [
        {"step": 10, "ppl": 900.0},
        {"step": 20, "valid_ppl": 400.0},
        {"step": 30, "ppl": 500.0},
        {"step": 40, "valid_ppl": 300.0},
    ]
    fig = tmp_path / "analysis_hist.png"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.figure(figsize=(1, 1))
    plt.savefig(fig)
    plt.close("all")
    return {
        "lm": {"lstm": lstm[0], "sharpened": sharp[0], "g2": g2[0]},
        "mt": {"lstm": lstm[1], "sharpened": sharp[1], "g2": g2[1]},
        "curves": {"lm": {c: [curve] * 3 for c in ("lstm", "g2")}, "mt": {"g2": [curve]}},
        "figures": {"lm": {"gate_histograms": str(fig)}, "mt": {}},
        "info": {"seconds": 120.0},
        "seeds": [1, 2, 3],
    }


def test_verdicts_from_numbers(tmp_path: Path) -> None:
    v = {x.claim: x.status for x in evaluate_claims(numbers(tmp_path))}
    assert list(v.values()) == [
        HELD,  # LM polarisation
        HELD,  # MT polarisation
        HELD,  # test ppl G2 < LSTM
        HELD,  # G2 beats sharpened, more polarised
        HELD,  # low rank
        HELD,  # round & clip
        HELD,  # hard gates
        INCONCLUSIVE,  # BLEU equal
        HELD,  # MT compression
    ]
    empty = evaluate_claims({"lm": {}, "mt": {}})
    assert {x.status for x in empty} == {NOT_RUN}


def test_write_report_sections_numbers_and_images(tmp_path: Path) -> None:
    paths = write_report(
        numbers(tmp_path), tmp_path / "report", info={"scale": "test", "mt_dataset": "multi30k"}
    )
    md = paths["md"].read_text(encoding="utf-8")
    html = paths["html"].read_text(encoding="utf-8")
    for title in SECTIONS:
        assert f"## {title}" in md
        assert title.replace("&", "&amp;") in html
    assert "56.00 ± 0.50" in md  # G2 test perplexity, mean ± std
    assert "(+4.00)" in md  # G2 low-rank increase
    assert "74.7" in md and "61.9" in md and "13.0" in md and "22.1" in md  # paper Figs 1/3
    assert "57.3" in md and "31.95" in md  # paper Tables 1/2
    assert md.count("**held**") >= 8
    # every image linked from the markdown exists and is a PNG; the HTML embeds them all
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 4
    for link in links:
        assert (paths["md"].parent / link).read_bytes().startswith(PNG)
    assert html.count('src="data:image/png;base64,') == len(links)
    assert not re.search(r'src="(?!data:)', html)  # no external assets
    assert "<script" not in html


def test_report_with_missing_part(tmp_path: Path) -> None:
    n = numbers(tmp_path)
    n["mt"], n["curves"]["mt"] = {}, {}
    paths = write_report(n, tmp_path / "r")
    md = paths["md"].read_text(encoding="utf-8")
    assert "**not run**" in md
    assert paths["fig:learning_curves"].read_bytes().startswith(PNG)
