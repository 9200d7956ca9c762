"""Writing the results of a compression sweep: ``sweep.csv``, ``table.md``, ``sweep.png``.

:func:`~g2lstm.compress.sweep.run_sweep` measures; this module renders what it measured: the
CSV of every checkpoint x setting, the paper's table layout (``value (+delta)`` with ``± std``
over seeds), the verdict on the paper's claim (G2-LSTM degradation at most half the
baseline's) and the plot of the metric against the compression ratio.
"""

from __future__ import annotations

import csv
import io
import math
import os
import statistics
from pathlib import Path

from g2lstm.config import CELL_LABELS, cell_label
from g2lstm.train.atomic import atomic_path, atomic_write_text

from .sweep_rows import Setting, SummaryRow, SweepResult, SweepRow

__all__ = [
    "CELL_LABELS",
    "NOISE_FLOOR",
    "VERDICT_TAGS",
    "noise_floor",
    "to_markdown",
    "verdicts",
    "write_csv",
    "write_plot",
]

#: Settings whose verdict is reported (the headline is the first).
VERDICT_TAGS = ("H/8", "H/4", "H/16", "round", "round & clip", "paper a", "paper b")
#: Smallest baseline degradation that makes the "at most half" claim testable: below it the
#: baseline did not measurably degrade and "half of it" would compare noise with noise.
#: Perplexity: 0.5% of the baseline's uncompressed perplexity; BLEU: 0.5 points (about the
#: run-to-run spread of a decode of a ~1,000-sentence test set).
NOISE_FLOOR = {"ppl": ("relative", 0.005), "BLEU": ("absolute", 0.5)}


def noise_floor(result: SweepResult) -> float:
    """The degradation below which the baseline counts as not degraded (:data:`NOISE_FLOOR`)."""
    kind, value = NOISE_FLOOR.get(result.metric, ("absolute", 0.0))
    if kind == "absolute":
        return value
    originals = [r.original for r in result.rows if r.cell == "lstm"]
    return value * abs(statistics.mean(originals)) if originals else 0.0


def verdicts(result: SweepResult) -> list[str]:
    """One line per verdict setting: G2 degradation <= half the baseline's?"""
    lines, done = [], set()
    floor = noise_floor(result)
    for tag in VERDICT_TAGS:
        s = next((s for s in result.settings if tag in s.tags), None)
        if s is None or s.key in done:
            continue
        done.add(s.key)
        g2, base = result.cell("g2", s.key), result.cell("lstm", s.key)
        if g2 is None or base is None:
            continue
        if base.degradation_mean <= 0:
            outcome = "not testable, the baseline did not degrade"
        elif base.degradation_mean < floor:
            outcome = (
                f"not testable, the baseline's degradation is below the noise floor {floor:.3g}"
            )
        elif g2.degradation_mean <= 0.5 * base.degradation_mean:
            outcome = "held"
        else:
            outcome = "did not hold"
        word = "increase" if result.metric == "ppl" else "drop"
        lines.append(
            f"G2 {result.metric} {word} <= half the baseline's at {s.label} [{', '.join(s.tags)}]: "
            f"{outcome} (G2 {g2.degradation_mean:+.4g} over "
            f"{g2.n} run(s), baseline {base.degradation_mean:+.4g} over {base.n}, half of it "
            f"{0.5 * base.degradation_mean:+.4g})"
        )
    return lines


def write_csv(path: Path, rows: list[SweepRow]) -> Path:
    """``sweep.csv``: one row per :class:`~g2lstm.compress.sweep_rows.SweepRow`; returns
    ``path``."""
    names = list(SweepRow.__dataclass_fields__)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(names)
    for r in rows:
        writer.writerow([getattr(r, n) for n in names])
    return atomic_write_text(path, buffer.getvalue())  # replaces a planted symlink


def _num(x: float, digits: int = 2, sign: bool = False) -> str:
    if not math.isfinite(x):
        return "inf" if x > 0 else ("-inf" if x < 0 else "nan")
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _cell_text(s: SummaryRow | None, original: bool) -> str:
    if s is None:
        return "–"
    text = _num(s.mean) + (f" ± {_num(s.std)}" if s.std is not None else "")
    if original:
        return text
    delta = _num(s.delta_mean, sign=True) + (
        f" ± {_num(s.delta_std)}" if s.delta_std is not None else ""
    )
    return f"{text} ({delta})"


def _table(result: SweepResult, settings: list[Setting]) -> list[str]:
    head = ["Model", "Original", *[s.label for s in settings]]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for cell in result.cells():
        n = max((s.n for s in result.summary if s.cell == cell), default=0)
        label = f"{cell_label(cell)} (n={n})"
        values = [_cell_text(result.cell(cell, "original"), True)]
        values += [_cell_text(result.cell(cell, s.key), False) for s in settings]
        lines.append("| " + " | ".join([label, *values]) + " |")
    ratios = ["1.0x"] + [_ratio(result, s.key) for s in settings]
    lines.append("| *compression of the blocks* | " + " | ".join(ratios) + " |")
    return lines


def _ratio(result: SweepResult, key: str) -> str:
    found = [s.compression_ratio for s in result.summary if s.setting == key]
    return f"{statistics.fmean(found):.1f}x" if found else "–"


def to_markdown(result: SweepResult, higher_is_better: bool = False) -> str:
    """``table.md``: the paper's table, the grid, the verdicts."""
    better = "higher" if higher_is_better else "lower"
    paper = [s for s in result.settings if s.paper]
    rest = [s for s in result.settings if not s.paper]
    lines = [
        "# Compression robustness",
        "",
        f"Metric: {result.description} ({better} is better); H = {result.hidden}. Cells: "
        "mean ± sample std over the runs of each model (n), in parentheses the change from the "
        "uncompressed model (mean ± std of the per-run changes). Compressed blocks: the input- "
        "and forget-gate rows of every LSTM weight matrix, no retraining"
        + (" except the stated fine-tune" if any(r.finetune_steps for r in result.rows) else "")
        + ".",
        "",
        "## Paper settings",
        "",
        *_table(result, paper),
    ]
    if rest:
        lines += ["", "## Finer grid", "", *_table(result, rest)]
    lines += ["", "## Verdict", ""]
    lines += [f"- {v}" for v in result.verdicts] or [
        "- not computed: the verdict needs both baseline (lstm) and G2-LSTM (g2) checkpoints"
    ]
    return "\n".join(lines) + "\n"


def write_plot(result: SweepResult, path: str | os.PathLike[str]) -> Path:
    """Metric against compression ratio (log x), one colour per cell kind; returns ``path``."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    methods = {s.key: s.method for s in result.settings}
    styles = {
        "low_rank": ("-", "o", "SVD"),
        "quantize": ("--", "s", "bits"),
        "round": ("", "^", "round"),
    }
    for k, cell in enumerate(result.cells()):
        color = f"C{k}"
        name = cell_label(cell)
        orig = result.cell(cell, "original")
        if orig is not None and math.isfinite(orig.mean):
            ax.axhline(orig.mean, color=color, linestyle=":", linewidth=1)
        for method, (ls, marker, what) in styles.items():
            pts = sorted(
                (s.compression_ratio, s.mean, s.std or 0.0)
                for s in result.summary
                if s.cell == cell and methods.get(s.setting) == method and math.isfinite(s.mean)
            )
            if pts:
                xs, ys, es = zip(*pts, strict=True)
                ax.errorbar(
                    xs,
                    ys,
                    yerr=es,
                    color=color,
                    linestyle=ls or "none",
                    marker=marker,
                    capsize=2,
                    label=f"{name}, {what}",
                )
    ax.set_xscale("log")
    ticks = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x")
    ax.xaxis.set_major_formatter(ticks)
    ax.xaxis.set_minor_formatter(ticks)
    ax.set_xlabel("compression ratio of the compressed blocks (dense fp32 / stored)")
    ax.set_ylabel(result.metric)
    ax.set_title(f"Robustness to compression (dotted: uncompressed), H={result.hidden}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, format=out.suffix.lstrip(".") or "png")
    plt.close(fig)
    return out
