#!/usr/bin/env python
"""How the CPU inference loop should project its input: all ``T`` steps at once, or in chunks.

The inference loop (:func:`g2lstm.nn.fast.loop.forward_inference`) projects ``x W_ih^T`` for
:func:`~g2lstm.nn.fast.loop.projection_chunk` steps at a time. This measures, on the running
machine, what that choice is made of: for each shape, the projection of all steps into one
``(T, N, 4H)`` buffer, then one read of every step's rows (as the loop's steps read them),
against the same in chunks of ``K`` steps (a fresh buffer per chunk), for several ``K``,
including the library's rule. Wall-clock, median of interleaved rounds, the GEMM route the
layer would use for the shape; the ``(N, 4H)`` reads stand for the step kernel's.

    PYTHONPATH=src python benchmarks/projection_chunk.py [--threads 2] [--repeats 7] \
        [--json benchmarks/results/projection_chunk.json]

Needs an otherwise idle machine (wall-clock at several threads).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from g2lstm.nn.fast import loop
from g2lstm.nn.fast.autotune import cpu_model
from g2lstm.nn.fast.gemm import linear
from g2lstm.nn.fast.routes import resolve_route

SHAPES = [(20, 35, 650, 650), (80, 70, 400, 1150), (32, 200, 256, 1024), (1, 2000, 400, 1150)]
CHUNKS = (1, 2, 4, 8, 16, 32)


def _job(x: torch.Tensor, w: torch.Tensor, chunk: int, route: str) -> Callable[[], None]:
    steps, batch, feat = x.shape

    def run() -> None:
        for t0 in range(0, steps, chunk):
            part = x[t0 : t0 + chunk]
            pre = linear(part.reshape(-1, feat), w, None, route).view(part.shape[0], batch, -1)
            for t in range(part.shape[0]):
                pre[t].sum()

    return run


def measure(shape: tuple[int, int, int, int], repeats: int) -> dict[str, object]:
    """``{"shape", "route", "rule", "ms": {label: median ms}}`` for one ``(B, T, I, H)``."""
    batch, steps, feat, hid = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(steps, batch, feat, generator=gen)
    w = torch.randn(4 * hid, feat, generator=gen)
    route = resolve_route(x, "auto", shape=(steps, batch, feat, hid))
    rule = loop.projection_chunk(x, 4 * hid)
    sizes = sorted({c for c in CHUNKS if c < steps and c * batch >= 32} | {rule, steps})
    jobs = {("whole" if c == steps else f"K={c}"): _job(x, w, c, route) for c in sizes}
    for fn in jobs.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(repeats):
        for k, fn in jobs.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {
        "shape": {"batch": batch, "steps": steps, "input": feat, "hidden": hid},
        "route": route,
        "rule": "whole" if rule == steps else f"K={rule}",
        "whole_mb": steps * batch * 4 * hid * 4 / 2**20,
        "ms": {k: statistics.median(v) * 1e3 for k, v in times.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = [measure(s, args.repeats) for s in SHAPES]
    print(f"{args.threads} threads, median of {args.repeats}; torch {torch.__version__}, "
          f"cpu {cpu_model()}")  # fmt: skip
    for r in results:
        s = r["shape"]
        cells = ", ".join(f"{k} {v:.1f}" for k, v in r["ms"].items())  # type: ignore[union-attr]
        print(
            f"B{s['batch']} T{s['steps']} I{s['input']} H{s['hidden']} "  # type: ignore[index]
            f"({r['whole_mb']:.0f} MB whole, {r['route']}; rule {r['rule']}): {cells} ms"
        )
    if args.json:
        env = {"threads": args.threads, "torch": torch.__version__, "cpu": cpu_model()}
        with open(args.json, "w") as f:
            json.dump({"environment": env, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
