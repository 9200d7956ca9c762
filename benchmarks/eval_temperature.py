#!/usr/bin/env python
"""PTB G2-LSTM runs evaluated with both eval temperatures: ``divide`` vs ``drop``.

``divide`` (the default) evaluates the soft gates as ``sigmoid(a / tau)``, the trained
function without its noise; ``drop`` as ``sigmoid(a)``, what the authors' LM code does
without ``--divide-temp``. For every finished run ``RUNS/g2-seed<k>`` (or the folders given
with ``--runs``) this evaluates the best checkpoint on the validation split (batch 10) and
the test split (batch 1 in 10 warmed-up streams, as the trainer's own test perplexity) with
each mode, one thread, and prints a Markdown table with the per-seed difference and its
mean; ``--json`` writes the numbers (default ``benchmarks/results/eval_temperature_ptb.json``).

    G2LSTM_DATA=../shared/data python benchmarks/eval_temperature.py --bench runs/bench-ptb-small
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from g2lstm.nn import with_gate_options
from g2lstm.tasks import get_task
from g2lstm.train import read_result

MODES = ("divide", "drop")


def evaluate(run_dir: Path, data: str) -> dict[str, dict[str, float]]:
    """``split -> mode -> perplexity`` of the run's best checkpoint."""
    lm = get_task("lm")
    run = lm.load(run_dir)
    out: dict[str, dict[str, float]] = {}
    for split in ("valid", "test"):
        opts = {"streams": True} if split == "test" else {}
        out[split] = {}
        for mode in MODES:
            model = with_gate_options(run.model, eval_temperature=mode)
            out[split][mode] = lm.evaluator(data=data, split=split, **opts).score(run, model)
    return out


def table(rows: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        "| run | valid divide | valid drop | test divide | test drop | test drop - divide |",
        "|---|---|---|---|---|---|",
    ]
    diffs = []
    for name, r in rows.items():
        d = r["test"]["drop"] - r["test"]["divide"]
        diffs.append(d)
        lines.append(
            f"| {name} | {r['valid']['divide']:.2f} | {r['valid']['drop']:.2f} | "
            f"{r['test']['divide']:.2f} | {r['test']['drop']:.2f} | {d:+.2f} |"
        )
    spread = f" ± {statistics.stdev(diffs):.2f}" if len(diffs) > 1 else ""
    lines.append(f"\nmean test difference (drop - divide): {statistics.fmean(diffs):+.2f}{spread}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bench", default="runs/bench-ptb-small", help="folder of g2-seed<k> runs")
    p.add_argument("--runs", nargs="+", help="run folders (default: BENCH/g2-seed*)")
    p.add_argument("--data", default="ptb", help="dataset name or folder (default: ptb)")
    p.add_argument("--json", default="benchmarks/results/eval_temperature_ptb.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    folders = (
        [Path(r) for r in args.runs] if args.runs else sorted(Path(args.bench).glob("g2-seed*"))
    )
    finished = [
        f for f in folders if f.is_dir() and (r := read_result(f)) is not None and r.finished
    ]
    if not finished:
        print(f"no finished G2-LSTM run among {', '.join(map(str, folders)) or args.bench}")
        return 1
    rows = {}
    for folder in finished:
        rows[folder.name] = evaluate(folder, args.data)
        print(f"{folder}: {rows[folder.name]}", flush=True)
    print(table(rows))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
