#!/usr/bin/env python
"""Training-step CPU time at one thread: G2LSTM vs nn.LSTM, and the cost of the gate noise.

On a shared machine wall-clock medians at 2 threads swing by several times (other processes
take the cores; the threads of one op wait for each other). The CPU time of a 1-thread
process counts the work it did, so pairs of runs stay comparable under load. Two parts, in
one process, rounds interleaved, CPU time (``time.process_time``) of forward + backward:

- ``ratio``: G2LSTM (``backend="auto"``, noise_p=0.2, tau=0.9) / ``nn.LSTM`` with the same
  weights, at the ``g2lstm bench layer`` CPU shapes; median of the rounds and the median of
  the per-round (paired) ratios;
- ``noise``: one fast layer pass without noise, with the noise drawn as before the
  in-step generator (``torch.rand`` of the whole ``(T, N, 2H)`` block, transformed and added
  to the input projection) and with the noise drawn inside the fused step (this version).

    PYTHONPATH=src python benchmarks/train_cpu_time.py --repeats 7 --json out.json

Run it against two checkouts (``PYTHONPATH=<checkout>/src``) to compare versions;
``--no-noise`` skips the second part (which needs this version's ``draw_gate_noise``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from g2lstm import G2LSTM
from g2lstm.nn.fast import recurrence_fast
from g2lstm.nn.functional import GateSpec

SHAPES = [(20, 35, 650, 650), (80, 70, 400, 1150)]  # B, T, I, H


def _rounds(fns: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[float]]:
    """CPU seconds of each function per round, the order rotated every round."""
    names = list(fns)
    for fn in fns.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.process_time()
            fns[n]()
            times[n].append(time.process_time() - t0)
    return times


def _paired(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b))


def _ratio_one(b: int, t: int, i: int, h: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(i, h)
    g2 = G2LSTM.from_lstm(lstm, tau=0.9, noise_p=0.2).train()
    x = torch.randn(t, b, i, requires_grad=True)
    dy = torch.randn(t, b, h)
    fns = {n: (lambda m=m: m(x)[0].backward(dy)) for n, m in (("lstm", lstm), ("g2", g2))}
    ts = _rounds(fns, repeats)
    med = {n: statistics.median(v) for n, v in ts.items()}
    return {
        "lstm_ms": med["lstm"] * 1e3,
        "g2_ms": med["g2"] * 1e3,
        "ratio": med["g2"] / med["lstm"],
        "paired": _paired(ts["g2"], ts["lstm"]),
    }


def ratio_to_lstm(repeats: int) -> dict[str, dict[str, float]]:
    return {f"B{b} T{t} I{i} H{h}": _ratio_one(b, t, i, h, repeats) for b, t, i, h in SHAPES}


def _torch_rand_noise(steps: int, batch: int, width: int, p: float) -> torch.Tensor:
    """The gate noise as drawn before the in-step generator (``sample_gate_noise``)."""
    v = torch.rand(steps, batch, width)
    unselected = v >= p
    return v.mul_(1.0 / p).logit_(torch.finfo(v.dtype).eps / 2).masked_fill_(unselected, 0.0)


def _noise_one(b: int, t: int, i: int, h: int, repeats: int) -> dict[str, float]:
    from g2lstm.nn.noise import draw_gate_noise  # this version only (see --no-noise)

    spec = GateSpec((0, 1), 0.9, "relaxed", True)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(t, b, i, generator=g).requires_grad_()
    w_ih = (torch.randn(4 * h, i, generator=g) * 0.04).requires_grad_()
    w_hh = (torch.randn(4 * h, h, generator=g) * 0.04).requires_grad_()
    bias = torch.zeros(4 * h).requires_grad_()
    h0 = c0 = torch.zeros(b, h)
    dy = torch.randn(t, b, h, generator=g)
    draws = {
        "none": lambda: None,
        "torch_rand": lambda: _torch_rand_noise(t, b, 2 * h, 0.2),
        "in_step": lambda: draw_gate_noise(0.2, batch=b, width=2 * h),
    }

    def run(kind: str) -> None:
        noise = draws[kind]()
        recurrence_fast(x, w_ih, bias, w_hh, h0, c0, spec, noise).output.backward(dy)

    ts = _rounds({k: (lambda k=k: run(k)) for k in draws}, repeats)
    row = {f"{k}_ms": statistics.median(ts[k]) * 1e3 for k in draws}
    row["torch_rand/none"] = _paired(ts["torch_rand"], ts["none"])
    row["in_step/none"] = _paired(ts["in_step"], ts["none"])
    return row


def noise_cost(repeats: int) -> dict[str, dict[str, float]]:
    return {f"B{b} T{t} I{i} H{h}": _noise_one(b, t, i, h, repeats) for b, t, i, h in SHAPES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-noise", action="store_true", help="skip the noise-cost part")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result: dict[str, object] = {
        "threads": 1,
        "repeats": args.repeats,
        "clock": "process_time",
        "torch": torch.__version__,
        "ratio_to_lstm": ratio_to_lstm(args.repeats),
    }
    if not args.no_noise:
        result["noise_cost"] = noise_cost(args.repeats)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
