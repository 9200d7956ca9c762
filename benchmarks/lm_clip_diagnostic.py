#!/usr/bin/env python
"""Why does round & clip cost more perplexity as the noise probability p grows? (issue 19)

The PTB sweeps show it: round & clip 0.2/0.4 of the input/forget gate weights (paper Eqs.
17-18) costs -1.39, +1.19, +1.73, +2.36 test perplexity at p = 0.05, 0.2, 0.5, 1, while
round 0.2 alone, SVD and 2-bit cost less as p grows. This script measures, per language-model
run (its best-validation weights), two candidate causes on the blocks `g2lstm compress`
changes (``gates_if``: the i and f rows of every ``weight_ih`` / ``weight_hh``):

- the weights: the share whose magnitude exceeds ``clip + step / 2`` (changed by the clip
  beyond what rounding does), mean and 99th percentile of ``|w|``, and the relative Frobenius
  error of round alone and of round & clip (:class:`g2lstm.compress.CompressionReport`);
- the gates: the share of input and forget gate values near 0 or 1 (``< 0.1`` or ``>= 0.9``,
  all layers) on the first ``--tokens`` validation tokens, before and after round & clip;

and, to find which part of round & clip the cost comes from, the validation perplexity
(the whole validation text, or its first ``--ppl-tokens``, read as 20 streams from a zero
state) of the model as it is and after: round alone; the clip alone (``clamp`` to
``[-clip, clip]``, no rounding); round & clip; round & clip of the input-to-hidden blocks
(``weight_ih``) alone; and of the recurrent blocks (``weight_hh``) alone.

It prints two Markdown tables, weights and gates, then perplexity (mean ± std over the seeds
of each run name without its ``-seed<k>``), and writes every run's numbers to ``--out`` (JSON)::

    G2LSTM_DATA=../shared/data python benchmarks/lm_clip_diagnostic.py \\
        runs/bench-ptb-small/*-seed? runs/ablate-ptb-small/*-seed? \\
        --out benchmarks/results/lm_clip_diagnostic_ptb.json
"""

from __future__ import annotations

import argparse
import copy
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from g2lstm.analysis import GateStats, ensure_recordable
from g2lstm.compress import round_clip
from g2lstm.compress.blocks import select_blocks
from g2lstm.datasets import resolve_dataset
from g2lstm.errors import G2LSTMError
from g2lstm.lm import evaluate, load_model
from g2lstm.lm.batching import batchify
from g2lstm.lm.data import Corpus
from g2lstm.lm.evaluate import perplexity
from g2lstm.nn import GateRecorder
from g2lstm.nn.fast.autotune import cpu_model
from g2lstm.train import atomic_write_json

#: Parallel streams the validation tokens are read as (columns of the ``(T, B)`` batch).
STREAMS = 20
#: The gates round & clip compresses (``gates_if``) and whose near-0/1 share is measured.
GATES = ("input", "forget")


def gate_weights(model: torch.nn.Module) -> torch.Tensor:
    """All weights of the blocks ``round_clip`` changes (``gates_if``), flattened: ``(n,)``."""
    state = model.state_dict()
    blocks = select_blocks(state, "gates_if")
    return torch.cat([state[b.param][b.start : b.stop].flatten() for b in blocks])


def clip_only(model: torch.nn.Module, clip: float) -> torch.nn.Module:
    """A copy of ``model`` with the ``gates_if`` blocks clamped to ``[-clip, clip]`` (Eq. 18
    without the rounding of Eq. 17)."""
    new = copy.deepcopy(model)
    params = dict(new.named_parameters())
    with torch.no_grad():
        for b in select_blocks(new, "gates_if"):
            params[b.param][b.start : b.stop].clamp_(-clip, clip)
    return new


def valid_ppl(model: torch.nn.Module, ids: torch.Tensor, segment: int = 200) -> float:
    """Perplexity of ``model`` (eval mode, soft gates) predicting ``ids[1:]`` from ``ids[:-1]``,
    ``ids`` ``(T, B)`` read in segments of ``segment`` steps that carry the state
    (:func:`g2lstm.lm.evaluate`)."""
    return perplexity(evaluate(model, ids, segment, desc=None))


def near_binary(model: torch.nn.Module, ids: torch.Tensor) -> dict[str, float]:
    """Percent of input and forget gate values near 0/1 over all layers (the paper's outer
    bins, as the probe counts them: :attr:`g2lstm.analysis.GateHistogram.near_binary`),
    reading ``ids`` ``(T, B)`` from a zero state in eval mode."""
    model = ensure_recordable(model).eval()
    stats = GateStats(GATES)
    with torch.no_grad(), GateRecorder(model, keep=False, callback=stats):
        model(ids)
    return {gate: 100.0 * stats.merged(gate).near_binary for gate in GATES}


def streams(valid: torch.Tensor, tokens: int, run: Path) -> torch.Tensor:
    """The first ``tokens`` of ``valid`` (all for 0) as :data:`STREAMS` columns: ``(T, B)``
    (:func:`g2lstm.lm.batching.batchify`)."""
    return batchify(valid[: tokens if tokens > 0 else None], STREAMS, name=f"{run}: validation")


def measure(run: Path, tokens: int, step: float, clip: float, ppl_tokens: int) -> dict[str, Any]:
    """The weight, gate and perplexity numbers of one run (module docstring)."""
    loaded = load_model(run)
    cfg, model = loaded.config, loaded.model
    corpus = Corpus.load(resolve_dataset(cfg.data, cfg.data_dir, kind="lm"))
    valid = corpus.tensor("valid")
    ids, ppl_ids = streams(valid, tokens, run), streams(valid, ppl_tokens, run)
    n = ids.numel()
    w = gate_weights(model).abs().double()
    rounded, round_report = round_clip(model, step)
    clipped, clip_report = round_clip(model, step, clip=clip)
    by_matrix = {
        f"round_clip_{m}": round_clip(model, step, clip=clip, blocks=[f"*.weight_{m}_l*@if"])[0]
        for m in ("ih", "hh")
    }
    variants = {"round": rounded, "clip": clip_only(model, clip), "round_clip": clipped}
    base = valid_ppl(model, ppl_ids)
    return {
        "run": str(run),
        "weights": int(w.numel()),
        "clipped_pct": 100.0 * float((w > clip + step / 2).double().mean()),
        "mean_abs": float(w.mean()),
        "p99_abs": float(torch.quantile(w.float(), 0.99)),
        "rel_error_round": round_report.rel_error,
        "rel_error_round_clip": clip_report.rel_error,
        "tokens": n,
        "near_binary": near_binary(model, ids),
        "near_binary_round_clip": near_binary(clipped, ids),
        "near_binary_round": near_binary(rounded, ids),
        "ppl_tokens": int(ppl_ids.numel()),
        "valid_ppl": base,
        "ppl_increase": {
            name: valid_ppl(m, ppl_ids) - base for name, m in {**variants, **by_matrix}.items()
        },
    }


def group_name(run: str) -> str:
    """The run's folder name without its ``-seed<k>``."""
    return re.sub(r"-seed\d+$", "", Path(run).name)


def _mean_std(values: list[float], digits: int) -> str:
    if len(values) < 2:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


Column = tuple[str, int, Callable[[dict[str, Any]], float]]

#: The weight and gate numbers: name, digits, value of a row.
WEIGHT_COLUMNS: list[Column] = [
    ("clipped %", 2, lambda r: r["clipped_pct"]),
    ("mean abs(w)", 3, lambda r: r["mean_abs"]),
    ("p99 abs(w)", 3, lambda r: r["p99_abs"]),
    ("rel. error, round", 3, lambda r: r["rel_error_round"]),
    ("rel. error, round & clip", 3, lambda r: r["rel_error_round_clip"]),
    ("forget near 0/1 %", 1, lambda r: r["near_binary"]["forget"]),
    ("forget, round & clip", 1, lambda r: r["near_binary_round_clip"]["forget"]),
    ("input near 0/1 %", 1, lambda r: r["near_binary"]["input"]),
    ("input, round & clip", 1, lambda r: r["near_binary_round_clip"]["input"]),
]
#: The validation perplexity and its increase under each part of round & clip.
PPL_COLUMNS: list[Column] = [
    ("valid ppl", 2, lambda r: r["valid_ppl"]),
    ("Δ round", 2, lambda r: r["ppl_increase"]["round"]),
    ("Δ clip alone", 2, lambda r: r["ppl_increase"]["clip"]),
    ("Δ round & clip", 2, lambda r: r["ppl_increase"]["round_clip"]),
    ("Δ round & clip, W_ih only", 2, lambda r: r["ppl_increase"]["round_clip_ih"]),
    ("Δ round & clip, W_hh only", 2, lambda r: r["ppl_increase"]["round_clip_hh"]),
]


def table(rows: list[dict[str, Any]], columns: list[Column]) -> str:
    """Markdown: one line per run name, mean ± std over its seeds."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[group_name(r["run"])].append(r)
    lines = [
        "| run | seeds | " + " | ".join(name for name, _, _ in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for name, runs in groups.items():
        cells = [_mean_std([get(r) for r in runs], digits) for _, digits, get in columns]
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="language-model run folders")
    parser.add_argument("--tokens", type=int, default=8000, help="validation tokens read")
    parser.add_argument("--step", type=float, default=0.2, help="rounding step (paper: 0.2)")
    parser.add_argument("--clip", type=float, default=0.4, help="clip (paper: 0.4)")
    parser.add_argument(
        "--ppl-tokens", type=int, default=0, help="validation tokens for perplexity (0: all)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", help="JSON file for every run's numbers")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.process_time()
    rows = []
    try:
        for run in args.runs:
            rows.append(measure(Path(run), args.tokens, args.step, args.clip, args.ppl_tokens))
            print(f"measured {run}", file=sys.stderr, flush=True)
    except G2LSTMError as exc:
        print(f"lm_clip_diagnostic: {exc}", file=sys.stderr)
        return 2
    print(table(rows, WEIGHT_COLUMNS), table(rows, PPL_COLUMNS), sep="\n\n")
    if args.out:
        atomic_write_json(
            Path(args.out),
            {
                "command": " ".join(["python", "benchmarks/lm_clip_diagnostic.py", *sys.argv[1:]]),
                "cpu": cpu_model(),
                "torch": torch.__version__,
                "cpu_time_s": time.process_time() - start,
                "settings": {
                    "tokens": args.tokens,
                    "ppl_tokens": args.ppl_tokens,
                    "step": args.step,
                    "clip": args.clip,
                },
                "runs": rows,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
