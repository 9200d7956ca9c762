"""Robustness of trained models to compression (paper §4.3, Tables 3-5), over seeds.

:func:`run_sweep` evaluates every checkpoint before and after each compression setting,
groups the checkpoints by cell kind (``lstm``/``sharpened``/``g2``, from their run config) and
seed, and writes to ``out_dir``:

- ``sweep.csv``: one row per checkpoint x setting (the ``original`` setting included);
- ``table.md``: the paper's layout (rows Baseline / Sharpened Sigmoid / G2-LSTM, columns
  Original, Round, Round & clip, SVD (rank=a), SVD (rank=b), each ``value (+delta)``, with
  ``± std`` over seeds when there are several), the finer grid, the compression ratios and
  the verdict on the paper's claim;
- ``sweep.png``: metric against the compression ratio of the compressed blocks, one colour per
  cell kind (needs matplotlib).

(The writing of these files lives in :mod:`g2lstm.compress.sweep_report`.)

Paper settings (``blocks="gates_if"``): LM round ``r=0.2``, round & clip ``c=0.4``, SVD ranks
128 and 64 of ``H=1150``; MT ``r=0.5``, ``c=1.0``, ranks 32 and 16 of ``H=256``. Ranks are
scaled to the swept models' size, ``round(H * 128 / 1150)`` etc. The grid adds SVD ranks
``H/2 ... H/32`` and 1, 2, 3, 4 and 8-bit quantisation. The claim tested: the G2-LSTM's
degradation (perplexity increase, BLEU drop) is at most half the baseline LSTM's.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from g2lstm.errors import ConfigError
from g2lstm.train.atomic import atomic_write_text

from .blocks import select_blocks
from .evaluators import Evaluator, load_target
from .finetune import finetune_task
from .methods import compress
from .sweep_report import CELL_LABELS, to_markdown, write_csv, write_plot
from .sweep_report import verdicts as _verdicts
from .sweep_rows import Setting, SummaryRow, SweepResult, SweepRow

__all__ = [
    "CELL_LABELS",
    "PAPER",
    "Setting",
    "SummaryRow",
    "SweepResult",
    "SweepRow",
    "default_settings",
    "run_sweep",
    "to_markdown",
    "write_plot",
]

#: The paper's settings per model kind: rounding step, clip, SVD ranks and the H they are of.
PAPER: dict[str, dict[str, Any]] = {
    "lm": {"step": 0.2, "clip": 0.4, "ranks": (128, 64), "hidden": 1150},
    "mt": {"step": 0.5, "clip": 1.0, "ranks": (32, 16), "hidden": 256},
}
GRID_DIVISORS = (2, 4, 8, 16, 32)
GRID_BITS = (1, 2, 3, 4, 8)


def default_settings(
    kind: str, hidden: int, max_rank: int | None = None, grid: bool = True
) -> list[Setting]:
    """The paper's settings for ``kind`` (``"lm"``/``"mt"``) scaled to ``H=hidden``, then the grid.

    Ranks are clamped to ``[1, max_rank]`` (the smallest ``min(shape)`` of the blocks) and
    merged when equal (one setting then carries several tags).
    """
    if kind not in PAPER:
        raise ConfigError(f"unknown model kind {kind!r}; expected one of {list(PAPER)}")
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ConfigError(f"hidden size must be an integer >= 1, got {hidden!r}")
    p = PAPER[kind]
    cap = max_rank or hidden
    out = [
        Setting("round", f"Round (r={p['step']})", "round", {"step": p["step"]}, True, ("round",)),
        Setting(
            "round_clip",
            f"Round & clip (c={p['clip']})",
            "round",
            {"step": p["step"], "clip": p["clip"]},
            True,
            ("round & clip",),
        ),
    ]
    ranks: dict[int, list[str]] = {}
    for name, paper_rank in zip(("paper a", "paper b"), p["ranks"], strict=True):
        ranks.setdefault(min(cap, max(1, round(hidden * paper_rank / p["hidden"]))), []).append(
            name
        )
    paper_ranks = set(ranks)
    if grid:
        for d in GRID_DIVISORS:
            rank = max(1, hidden // d)
            if rank < cap or rank in ranks:  # a full-rank "compression" stores more, skip it
                ranks.setdefault(min(cap, rank), []).append(f"H/{d}")
    for rank in sorted(ranks, reverse=True):
        out.append(
            Setting(
                f"svd_{rank}",
                f"SVD (rank={rank})",
                "low_rank",
                {"rank": rank},
                rank in paper_ranks,
                tuple(ranks[rank]),
            )
        )
    if grid:
        out += [
            Setting(f"quant_{b}b", f"{b}-bit", "quantize", {"bits": b}, tags=(f"{b}-bit",))
            for b in GRID_BITS
        ]
    return out


def _max_rank(model: Any, blocks: Any) -> int:
    return min(min(b.shape) for b in select_blocks(model, blocks))


def _stats(values: list[float]) -> tuple[float, float | None]:
    mean = statistics.fmean(values) if all(math.isfinite(v) for v in values) else math.inf
    if len(values) < 2 or not math.isfinite(mean):
        return mean, None
    return mean, statistics.stdev(values)


def run_sweep(
    checkpoints: Sequence[str | os.PathLike[str]],
    evaluator: Evaluator,
    settings: Sequence[Setting] | None,
    out_dir: str | os.PathLike[str],
    *,
    blocks: str | Sequence[str] = "gates_if",
    grid: bool = True,
    finetune_steps: int = 0,
    finetune_lr: float | None = None,
    finetune_data: str | os.PathLike[str] | None = None,
    plot: bool = True,
    log: Callable[[str], None] | None = None,
) -> SweepResult:
    """Evaluate each checkpoint uncompressed and under each setting; write CSV, table, plot.

    Args:
        checkpoints: run/checkpoint directories (or compressed files), all of one kind and
            one hidden size.
        evaluator: :class:`~g2lstm.compress.evaluators.LMEvaluator` or ``MTEvaluator``.
        settings: the settings (default: :func:`default_settings` for the models' ``H``).
        out_dir: created if missing; receives ``sweep.csv``, ``table.md``, ``sweep.png``.
        blocks: which blocks every setting compresses (default: the i and f gate rows).
        grid: with default settings, add the finer grid of ranks and bits.
        finetune_steps: if > 0, fine-tune each compressed model that many steps (structure
            kept) before evaluating it, with the run's batches, loss and optimizer
            (:func:`~g2lstm.compress.finetune.finetune_task`).
        finetune_lr: fine-tune learning rate (default: a tenth of the run's).
        finetune_data: fine-tune training data, LM dataset or MT prepared folder (default:
            the evaluator's ``data`` if set, else each run's own).
        plot: write ``sweep.png``.
        log: called with one line per evaluation (progress).

    Raises:
        ConfigError: no checkpoints, mixed kinds or hidden sizes, invalid settings.
    """
    if not checkpoints:
        raise ConfigError("compress sweep needs at least one checkpoint")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = log or (lambda line: None)
    rows: list[SweepRow] = []
    chosen: list[Setting] | None = list(settings) if settings is not None else None
    hidden = 0
    for path in checkpoints:
        target = evaluator.check(load_target(path))
        if chosen is None:
            hidden = target.hidden
            chosen = default_settings(target.kind, hidden, _max_rank(target.model, blocks), grid)
        elif hidden and target.hidden != hidden:
            raise ConfigError(
                f"{path} has H={target.hidden} but the first checkpoint has H={hidden}; the "
                "settings are scaled to one size, so sweep each model size separately"
            )
        hidden = hidden or target.hidden
        keys = [s.key for s in chosen]
        if len(set(keys)) != len(keys) or "original" in keys:
            raise ConfigError(f"setting keys must be unique and not 'original', got {keys}")
        t0 = time.perf_counter()
        original = evaluator.score(target, target.model)
        base = {
            "checkpoint": str(target.path),
            "cell": target.cell,
            "seed": target.seed,
            "metric": evaluator.metric,
            "original": original,
        }
        rows.append(
            SweepRow(
                **base,
                setting="original",
                label="Original",
                method="none",
                params="{}",
                value=original,
                delta=0.0,
                degradation=0.0,
                compression_ratio=1.0,
                model_compression_ratio=1.0,
                rel_error=0.0,
                finetune_steps=0,
                seconds=time.perf_counter() - t0,
            )
        )
        say(
            f"{target.path} ({target.cell}, seed {target.seed}): original "
            f"{evaluator.metric} {original:.3f}"
        )
        task = None
        if finetune_steps:
            data = finetune_data if finetune_data is not None else getattr(evaluator, "data", None)
            task = finetune_task(target, data=data, data_dir=getattr(evaluator, "data_dir", None))
        for s in chosen:
            t0 = time.perf_counter()
            model, report = compress(target.model, s.method, blocks, **s.params)
            if task is not None:
                report = task.run(model, report, finetune_steps, finetune_lr)
            value = evaluator.score(target, model)
            rows.append(
                SweepRow(
                    **base,
                    setting=s.key,
                    label=s.label,
                    method=s.method,
                    params=json.dumps(dict(s.params), sort_keys=True),
                    value=value,
                    delta=value - original,
                    degradation=evaluator.degradation(original, value),
                    compression_ratio=report.compression_ratio,
                    model_compression_ratio=report.model_compression_ratio,
                    rel_error=report.rel_error,
                    finetune_steps=finetune_steps,
                    seconds=time.perf_counter() - t0,
                )
            )
            say(
                f"  {s.label}: {evaluator.metric} {value:.3f} ({value - original:+.3f}), "
                f"blocks {report.compression_ratio:.1f}x smaller"
            )
    assert chosen is not None
    result = SweepResult(
        evaluator.metric, hidden, chosen, rows, _summarise(rows), [], evaluator.describe()
    )
    result.verdicts = _verdicts(result)
    result.paths["csv"] = write_csv(out / "sweep.csv", rows)
    result.paths["table"] = out / "table.md"
    atomic_write_text(result.paths["table"], to_markdown(result, evaluator.higher_is_better))
    if plot:
        result.paths["plot"] = write_plot(result, out / "sweep.png")
    return result


def _summarise(rows: list[SweepRow]) -> list[SummaryRow]:
    groups: dict[tuple[str, str], list[SweepRow]] = {}
    for r in rows:
        groups.setdefault((r.cell, r.setting), []).append(r)
    out = []
    for (cell, setting), members in groups.items():
        mean, std = _stats([r.value for r in members])
        dmean, dstd = _stats([r.delta for r in members])
        deg, _ = _stats([r.degradation for r in members])
        ratio = statistics.fmean(r.compression_ratio for r in members)
        out.append(SummaryRow(cell, setting, len(members), mean, std, dmean, dstd, deg, ratio))
    return out
