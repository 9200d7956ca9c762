"""Where a layer call's CPU time goes: ``torch.profiler`` self time per kind of operator.

    PYTHONPATH=src .venv/bin/python benchmarks/profile_step.py [--task train|soft|hard]
        [--batch 20 --steps 35 --input 650 --hidden 650] [--threads 2] [--repeats 5]
        [--json out.json]

The rows are exactly the calls ``g2lstm bench layer`` times for ``--task``
(:func:`g2lstm.bench.layer.layer_tasks`, without the reference loop): ``train`` = zero
grads, forward of a ``(T, B, I)`` input that needs its gradient, ``backward`` of a fixed
``dy``, for ``nn.LSTM``, ``G2LSTM`` (``backend="auto"``, noise_p 0.2, tau 0.9, same weights)
and ``G2LSTM ATen step``; ``soft`` / ``hard`` = inference under ``torch.no_grad()`` with
soft or exact hard 0/1 gates (``hard`` adds the ``fused-hard`` row). Each is warmed up twice,
then ``--repeats`` steps run under the profiler; the table gives milliseconds of self CPU time
per step, summed by kind (the operator names each kind matches are in ``KINDS``), and the
wall time per step.
Self CPU time adds up the work of the op's own thread only; with several threads the GEMMs'
worker threads are not in it, so compare kinds within one row, and rows at 1 thread.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from g2lstm.bench.layer import BenchConfig, Shape, layer_tasks
from g2lstm.nn.fast.autotune import cpu_model

#: kind -> substrings of profiler event names (first match wins, in this order)
KINDS = {
    "GEMM": ("linear_pointwise", "mkl_linear", "aten::mm", "aten::addmm", "aten::bmm"),
    "fused LSTM (oneDNN)": ("mkldnn_rnn",),
    # the custom operators' own time: the time loop and, on the fused path, the C++ step
    "g2lstm ops (loop, C++ step)": ("g2lstm::",),
    "weight packing": ("reorder_linear_weight", "mkl_pack"),
    "copies / transposes": ("aten::copy_", "aten::clone", "aten::contiguous"),
    "pointwise (ATen)": tuple(
        f"aten::{op}"
        for op in (
            *("sigmoid", "tanh", "mul", "add", "sub", "div", "where", "lt"),
            *("rand", "uniform_", "log", "sum", "fill_", "zero_"),
        )
    ),
}


def _kind(name: str) -> str:
    for kind, keys in KINDS.items():
        if any(k in name for k in keys):
            return kind
    return "other"


def _profile(step, repeats: int) -> tuple[dict[str, float], float]:
    """``({kind: self CPU ms per step}, median wall ms per step)``."""
    step()
    step()
    walls = []
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            t = time.perf_counter()
            step()
            walls.append(time.perf_counter() - t)
    by_kind: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        by_kind[_kind(event.key)] += event.self_cpu_time_total / 1e3 / repeats
    return dict(by_kind), sorted(walls)[len(walls) // 2] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=["train", "soft", "hard"], default="train")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--steps", type=int, default=35)
    parser.add_argument("--input", type=int, default=650)
    parser.add_argument("--hidden", type=int, default=650)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = Shape(args.batch, args.steps, args.input, args.hidden)
    # exactly the calls `g2lstm bench layer` times (no reference loop rows)
    rows = layer_tasks(shape, BenchConfig(shapes=(shape,), reference=False))[args.task]
    results = {name: _profile(step, args.repeats) for name, step in rows.items()}
    kinds = [k for k in (*KINDS, "other") if any(r[0].get(k, 0) > 0 for r in results.values())]
    label = f"{args.task}, B{args.batch} T{args.steps} I{args.input} H{args.hidden}"
    print(
        f"{label}, {args.threads} threads, {args.repeats} profiled steps after 2 warm-ups; "
        f"torch {torch.__version__}, cpu {cpu_model()}"
    )
    print("\n| row | wall ms | self CPU ms | " + " | ".join(kinds) + " |")
    print("|---|---|---|" + "---|" * len(kinds))
    for name, (by_kind, wall) in results.items():
        cells = " | ".join(f"{by_kind.get(k, 0.0):.1f}" for k in kinds)
        print(f"| {name} | {wall:.1f} | {sum(by_kind.values()):.1f} | {cells} |")
    if args.json:
        out = {
            "shape": label,
            "threads": args.threads,
            "torch": torch.__version__,
            "cpu": cpu_model(),
            "rows": {n: {"wall_ms": w, "self_cpu_ms": k} for n, (k, w) in results.items()},
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
