#!/usr/bin/env python
"""What one ``lm-probe`` step of ``g2lstm reproduce --ablations`` costs on PTB at ``small`` size.

Times, with one thread, each kind of evaluation the probe runs
(:mod:`g2lstm.reproduce.steps_probe`) once on a ``small`` G2-LSTM (2 x 200; trained for one
step: an evaluation's cost does not depend on the weights) and adds them up with the probe's
counts: 7 test evaluations at batch 1 (soft and hard gates, 5 compressions; in 10 warmed-up
streams, as the probe runs them), 7 with the cache
pointer, 2 + 2 on the validation split, the clean training perplexity on 100,000 tokens and
the gate fractions. Each is timed as CPU time of this process (what it costs on a loaded
machine too; the probe's total is in CPU time) and as wall time. Writes ``--json`` (default
``benchmarks/results/lm_probe_cost.json``).

    G2LSTM_DATA=../shared/data python benchmarks/lm_probe_cost.py --run runs/probe-cost
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from g2lstm.analysis import hard_gate_model
from g2lstm.compress import compress
from g2lstm.nn.fast.autotune import cpu_model
from g2lstm.reproduce.ablations import PROBE
from g2lstm.tasks import get_task

#: How many evaluations of each kind one probe runs (orig soft + hard, then 5 compressions).
COUNTS = {
    "test, batch 1": 2 + 5,
    "test, cache pointer": 2 + 5,
    "valid, batch 10": 2,
    "valid, cache pointer": 2,
    "train, 100k tokens": 1,
    "compress (SVD)": 5,
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", default="runs/probe-cost", help="run folder (trained if missing)")
    p.add_argument("--json", default="benchmarks/results/lm_probe_cost.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    lm = get_task("lm")
    run_dir = Path(args.run)
    if not (run_dir / "checkpoints").is_dir():
        overrides = {"model.cell": "g2", "data": "ptb", "train.max_steps": 1}
        cfg = lm.preset_config("small", {**overrides, "train.progress": False, "train.threads": 1})
        lm.train(cfg, run_dir)
    run = lm.load(run_dir)
    hard = hard_gate_model(run.model)
    pointer = dict(PROBE.pointer)
    timed = {
        "test, batch 1": lambda: lm.evaluator(split="test", streams=True).score(run, hard),
        "test, cache pointer": lambda: lm.evaluator(split="test", pointer=pointer).score(
            run, run.model
        ),
        "valid, batch 10": lambda: lm.evaluator(split="valid").score(run, run.model),
        "valid, cache pointer": lambda: lm.evaluator(split="valid", pointer=pointer).score(
            run, run.model
        ),
        "train, 100k tokens": lambda: lm.evaluator(
            split="train", batch_size=10, bptt=35, max_batches=PROBE.train_tokens // 350
        ).score(run, run.model),
        "compress (SVD)": lambda: compress(run.model, "low_rank", "gates_if", rank=12) and 0.0,
    }
    seconds, wall = {}, {}
    for name, fn in timed.items():
        t0, w0 = time.process_time(), time.perf_counter()
        fn()
        seconds[name], wall[name] = time.process_time() - t0, time.perf_counter() - w0
        print(f"{name}: {seconds[name]:.1f} s CPU ({wall[name]:.1f} wall) x {COUNTS[name]}")
    total = sum(seconds[k] * COUNTS[k] for k in COUNTS)
    print(f"one probe (without the gate fractions, a few seconds): {total / 60:.1f} min CPU")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"{cpu_model()}, {os.cpu_count()} CPUs, load average {load}")
    out = {
        "cpu_seconds_each": seconds,
        "wall_seconds_each": wall,
        "counts": COUNTS,
        "probe_cpu_seconds": total,
        "load_average_1min_at_end": load,
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "threads": 1,
        "torch": torch.__version__,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
