"""``g2lstm reproduce``: run the paper's study at a chosen scale and write a report.

Examples::

    g2lstm reproduce --scale tiny -o repro-tiny            # minutes on a laptop
    g2lstm reproduce --scale cpu --seeds 3 -o repro-cpu    # a few hours on 2 cores
    g2lstm reproduce --scale paper --dry-run               # the plan and its estimated time
    g2lstm reproduce --scale cpu --reuse runs/ -o repro    # reuse finished runs under runs/

Running the same command again skips finished steps and resumes an interrupted training run.
``reproduce`` itself is one process: it is not rank-aware under ``torchrun`` (every rank would
run the evaluation and report steps). For multi-GPU training, train the runs with
``torchrun --nproc-per-node N -m g2lstm.cli lm train ...`` (data parallel) using the scale's
settings (``--dry-run`` and the report's Setup list them) and pass their folder with
``--reuse``.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``reproduce`` command to the top-level ``g2lstm`` parser."""
    from g2lstm.reproduce.plan import PARTS, SCALES

    p = subparsers.add_parser(
        "reproduce",
        help="run the paper's study and write a report",
        description="Train the LSTM baseline, Sharpened Sigmoid and G2-LSTM on PTB and on "
        "translation, evaluate, compress and analyse them, and write report.md/report.html "
        "with the paper's tables, figures and a verdict per claim. Re-running skips finished "
        "steps and resumes interrupted ones.",
    )
    p.add_argument("--scale", choices=list(SCALES), default="tiny",
                   help="tiny: minutes (smoke run); cpu: hours on 2 cores; paper: GPUs "
                   "(default tiny)")  # fmt: skip
    p.add_argument("--seeds", type=int, help="seeds per model (default: the scale's)")
    p.add_argument("-o", "--out", default=None, help="output folder (default: reproduce-SCALE)")
    p.add_argument("--only", choices=list(PARTS), action="append",
                   help="run only this part (repeatable); the report is always "
                   "written")  # fmt: skip
    p.add_argument("--data-dir", help="root of named datasets (ptb/, multi30k/); default: "
                   "$G2LSTM_DATA, else the user cache")  # fmt: skip
    p.add_argument("--device", default="cpu", help="device for translation and analysis "
                   "(cpu, cuda); LM training picks its own")  # fmt: skip
    p.add_argument("--reuse", metavar="DIR", action="append",
                   help="folder searched (recursively) for finished training runs; a run "
                   "whose resolved config and data equal a training step's satisfies it "
                   "without training (repeatable; the report lists reused runs)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan with estimated times and exit")  # fmt: skip
    p.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from pathlib import Path

    from g2lstm.reproduce.context import RunContext
    from g2lstm.reproduce.plan import PARTS, build_plan, format_plan, get_scale

    scale = get_scale(args.scale)
    out = Path(args.out or f"reproduce-{scale.name}").resolve()
    steps = build_plan(scale, args.seeds, out, only=tuple(args.only or PARTS))
    reuse = tuple(Path(d).resolve() for d in args.reuse or ())
    ctx = RunContext(scale, out, args.data_dir, args.device,
                     log=lambda line: print(line, flush=True), reuse=reuse)  # fmt: skip
    preview = {}
    if reuse:
        from g2lstm.reproduce.reuse import ReuseFinder

        preview = ReuseFinder(reuse, ctx).preview(steps)
    labels = {k: d.label() for k, d in preview.items() if d.run is not None}
    print(format_plan(steps, scale, out, reuse=labels), flush=True)
    if args.dry_run:
        for d in preview.values():
            if d.message:
                print(d.message, flush=True)
        return 0
    from g2lstm.reproduce.run import run_plan

    summary = run_plan(steps, ctx)
    report = out / "report"
    reused = f" ({len(summary.reused)} reused)" if summary.reused else ""
    print(f"\n{len(summary.ran)} step(s) run{reused}, {len(summary.skipped)} skipped. Report: "
          f"{report / 'report.md'} and {report / 'report.html'}", flush=True)  # fmt: skip
    return 0
