#!/usr/bin/env python
"""PTB ``small`` preset: lstm vs g2 vs sharpened, 3 seeds each; mean and std of the results.

Runs ``g2lstm lm train`` for every (cell, seed), ``--jobs`` at a time with one thread each
(default 2, for a 2-core machine), into ``OUT/<cell>-seed<k>/``. A finished run (with
``results.json``) is skipped, an interrupted one is resumed with ``--resume``, so the script
can be stopped and restarted at any time. At the end it prints a Markdown table (mean ± std
of valid/test perplexity, wall and CPU time, training tokens/s, G2/LSTM throughput ratio) and writes
it with the raw numbers to ``OUT/summary.json`` and ``OUT/summary.md``.

    G2LSTM_DATA=../shared/data python benchmarks/lm_ptb.py --out runs/bench-ptb-small
    G2LSTM_DATA=../shared/data python benchmarks/lm_ptb.py --out runs/bench-ptb-small \
        --cells g2 --seeds 3 --jobs 1          # one cell and seed (e.g. one per shell)
    python benchmarks/lm_ptb.py --out runs/bench-ptb-small --summarize-only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from g2lstm.lm import preset_config
from g2lstm.train import read_result

CELLS = ("lstm", "g2", "sharpened")


def run_one(
    out: Path,
    cell: str,
    seed: int,
    args: argparse.Namespace,
    *,
    name: str | None = None,
    extra: tuple[str, ...] = (),
) -> dict:
    """Train (or resume, or read the result of) ``OUT/<name or cell>-seed<seed>``, with one
    thread; ``extra``: more ``g2lstm lm train`` arguments (``--set key=value``). Every
    epoch's checkpoint is kept, so that ``g2lstm lm truncate`` can cut the run to a shorter
    budget later (``benchmarks/lm_ablations.py --epochs``)."""
    run = out / f"{name or cell}-seed{seed}"
    if (done := _result(run)) is not None:
        return done
    t = preset_config(args.preset).train
    keep = ("--set", f"train.keep_last={t.epochs + t.finetune_epochs}")
    cmd = [
        sys.executable,
        "-m",
        "g2lstm.cli",
        "lm",
        "train",
        "--preset",
        args.preset,
        "--cell",
        cell,
        "--seed",
        str(seed),
        "--data",
        args.data,
        "--out",
        str(run),
        "--threads",
        "1",
        "--no-progress",
        *keep,
        *extra,
    ]
    if (run / "checkpoints" / "last.json").is_file():
        cmd = [
            sys.executable,
            "-m",
            "g2lstm.cli",
            "lm",
            "train",
            "--out",
            str(run),
            "--resume",
            "--threads",
            "1",
            "--no-progress",
            *keep,
        ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    # beside the run, not in it: `lm train` refuses a new run's folder that holds other files
    log_path = out / f"{run.name}.train.log"
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}  # {time.ctime()}\n")
        log.flush()
        proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    done = _result(run)
    if proc.returncode != 0 or done is None:
        raise SystemExit(f"{run}: training failed (exit {proc.returncode}); see {log_path}")
    return done


def _result(run: Path) -> dict | None:
    """The run's ``results.json`` (this version's layout or an earlier one's), flat."""
    result = read_result(run)
    return None if result is None else result.flat()


def _ms(values: list[float], fmt: str = ".1f") -> str:
    if not values:
        return "-"
    mean = f"{statistics.mean(values):{fmt}}"
    if len(values) == 1:
        return mean  # one seed: no spread to report (a "± 0.0" would claim one)
    return f"{mean} ± {statistics.stdev(values):{fmt}}"


def summarize(out: Path, seeds: list[int]) -> str:
    rows, raw = [], {}
    for cell in CELLS:
        res = [r for s in seeds if (r := _result(out / f"{cell}-seed{s}")) is not None]
        raw[cell] = res
        rows.append(
            f"| {cell} | {len(res)} | {_ms([r['valid_ppl'] for r in res])} | "
            f"{_ms([r['test_ppl'] for r in res])} | {_ms([r['wall_time_s'] / 60 for r in res])} | "
            f"{_ms([r['cpu_time_s'] / 60 for r in res if r.get('cpu_time_s') is not None])} | "
            f"{_ms([r['tokens_per_s'] for r in res], '.0f')} |"
        )
    tput = {c: statistics.mean([r["tokens_per_s"] for r in raw[c]]) for c in CELLS if raw[c]}
    ratio = f"{tput['g2'] / tput['lstm']:.2f}" if "g2" in tput and "lstm" in tput else "-"
    table = "\n".join(
        [
            "| cell | runs | valid ppl | test ppl | wall time (min) | CPU time (min) | "
            "train tokens/s |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"G2 / LSTM training throughput: {ratio}",
        ]
    )
    (out / "summary.md").write_text(table + "\n", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    return table


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/bench-ptb-small", help="benchmark directory")
    p.add_argument("--data", default="ptb", help="dataset name or folder (default: ptb)")
    p.add_argument("--preset", default="small")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument(
        "--cells",
        nargs="+",
        choices=CELLS,
        default=list(CELLS),
        help="cells to train (default: all three); one shell per cell list with --jobs 1 runs "
        "them side by side",
    )
    p.add_argument("--jobs", type=int, default=2, help="trainings at a time (1 thread each)")
    p.add_argument("--summarize-only", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    if not args.summarize_only:
        out.mkdir(parents=True, exist_ok=True)
        jobs = [(cell, seed) for seed in args.seeds for cell in args.cells]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for future in [pool.submit(run_one, out, c, s, args) for c, s in jobs]:
                future.result()
    print(summarize(out, args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
