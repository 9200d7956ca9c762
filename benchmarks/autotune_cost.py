#!/usr/bin/env python
"""What the GEMM-route autotuner costs the first call of a shape on CPU, per group of timings.

The first forward pass of a shape bucket on CPU float32 times the forward's products on every
route (:func:`g2lstm.nn.fast.routes.resolve_route`); the first backward pass times the
backward's products on the chosen route (:func:`g2lstm.nn.fast.routes.backward_packing`). This
measures the CPU time of each, with the memory cache cleared before every repeat and the disk
cache off (``$G2LSTM_AUTOTUNE=memory``), minimum over the repeats. One thread by default: the
calling thread's CPU time, which other processes on the machine do not inflate.

    PYTHONPATH=src python benchmarks/autotune_cost.py [--threads 1] [--repeats 3] \
        [--json benchmarks/results/autotune_cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from g2lstm.nn.fast import autotune, gemm
from g2lstm.nn.fast.routes import backward_packing, resolve_route

#: ``(steps, batch, input_size, hidden)``: PTB `small`-like, AWD-LSTM-like, translation-like
SHAPES = [(35, 20, 650, 650), (35, 80, 1150, 1150), (20, 64, 256, 256)]


def measure(shape: tuple[int, int, int, int], repeats: int) -> dict[str, object]:
    """``{"shape", "route", "forward_ms", "backward_ms"}``: the best of ``repeats``."""
    like = torch.zeros(2, 2)
    forward, backward, route = [], [], ""
    for _ in range(repeats):
        autotune.clear()
        t0 = time.thread_time()
        route = resolve_route(like, shape=shape)
        t1 = time.thread_time()
        backward_packing(like, route, shape)
        t2 = time.thread_time()
        forward.append(t1 - t0)
        backward.append(t2 - t1)
    return {
        "shape": list(shape),
        "route": route,
        "forward_ms": round(1000 * min(forward), 1),
        "backward_ms": round(1000 * min(backward), 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    if not gemm.onednn_available():
        print("oneDNN is not available: the autotuner has one route and measures nothing")
        return 0
    os.environ["G2LSTM_AUTOTUNE"] = "memory"  # measure in memory, never touch the disk cache
    torch.set_num_threads(args.threads)
    rows = [measure(s, args.repeats) for s in SHAPES]
    print(f"{autotune.cpu_model()}, torch {torch.__version__}, {args.threads} thread(s), "
          f"CPU time, best of {args.repeats}")  # fmt: skip
    print(f"{'T, N, I, H':>22}  {'route':>6}  {'forward ms':>10}  {'backward ms':>11}")
    for r in rows:
        shape = ", ".join(map(str, r["shape"]))  # type: ignore[call-overload]
        print(f"{shape:>22}  {r['route']:>6}  {r['forward_ms']:>10}  {r['backward_ms']:>11}")
    if args.json:
        meta = {"cpu": autotune.cpu_model(), "torch": torch.__version__, "threads": args.threads}
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({**meta, "repeats": args.repeats, "rows": rows}, fh, indent=1)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
