"""``g2lstm bench``: the ``layer`` speed benchmark (see :mod:`g2lstm.bench.layer`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command group (subcommand ``layer``) to the ``g2lstm`` parser."""
    bench = subparsers.add_parser("bench", help="speed benchmarks (bench layer)")
    sub = bench.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")
    p = sub.add_parser(
        "layer",
        help="time G2LSTM (train, soft and hard inference, memory) against nn.LSTM",
        description="Times, interleaved, median of --repeats runs: a training step "
        "(noise_p=0.2, tau=0.9) and soft/hard inference of G2LSTM with its automatic fast "
        "path, torch.nn.LSTM (oneDNN on CPU, cuDNN on GPU) and the reference loop; prints "
        "a table with the ratios G2 / nn.LSTM and the environment.",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="also save the results as JSON")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="cpu, cuda, or auto (cuda when available; default)",
    )
    p.add_argument(
        "--shapes",
        nargs="+",
        metavar="B,T,I,H[,dtype]",
        help="sizes to time (default: 20,35,650,650 and 80,70,400,1150; on GPU "
        "also 64,100,1024,1024 in fp32 and bf16)",
    )
    p.add_argument("--repeats", type=int, default=5, help="timed runs per row (median; >= 1)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per row first")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--no-reference", action="store_true", help="skip the reference-loop rows")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument(
        "--quick", action="store_true", help="smoke mode: one tiny shape, 2 repeats, no warm-up"
    )
    p.set_defaults(func=_run_layer)
    bench.set_defaults(func=lambda args: bench.print_help() or 2)


def _run_layer(args: argparse.Namespace) -> int:
    import torch

    from g2lstm.bench.layer import (
        CPU_SHAPES,
        GPU_SHAPES,
        QUICK_SHAPES,
        BenchConfig,
        format_table,
        parse_shape,
        run_layer_benchmark,
    )
    from g2lstm.safe_files import check_output_file
    from g2lstm.train.atomic import atomic_write_text

    if args.json is not None:  # before minutes of timing
        check_output_file(args.json, "--json", create_parent=True)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.shapes:
        shapes = tuple(parse_shape(s) for s in args.shapes)
    elif args.quick:
        shapes = QUICK_SHAPES
    else:
        shapes = GPU_SHAPES if device == "cuda" else CPU_SHAPES
    repeats, warmup = (2, 0) if args.quick else (args.repeats, args.warmup)
    cfg = BenchConfig(
        shapes=shapes,
        device=device,
        threads=args.threads,
        repeats=repeats,
        warmup=warmup,
        reference=not args.no_reference,
        memory=not args.no_memory,
    )
    result = run_layer_benchmark(cfg, progress=lambda msg: print(msg, file=sys.stderr))
    print(format_table(result))
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
        print(f"saved {args.json}", file=sys.stderr)
    return 0
