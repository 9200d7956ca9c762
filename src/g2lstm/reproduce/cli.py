"""``g2lstm reproduce``: run the paper's study at a chosen scale and write a report.

Examples::

    g2lstm reproduce --scale tiny -o repro-tiny            # minutes on a laptop
    g2lstm reproduce --scale cpu --seeds 3 -o repro-cpu    # a few hours on 2 cores
    g2lstm reproduce --scale paper --dry-run               # the plan and its estimated time
    g2lstm reproduce --scale cpu --reuse runs/ -o repro    # reuse finished runs under runs/
    g2lstm reproduce --scale cpu --seeds 3 --only lm --ablations -o repro  # + the sweeps
    g2lstm reproduce --scale cpu --seeds 3 -o repro --report-only  # the report so far
    torchrun --nproc-per-node 4 -m g2lstm.cli reproduce --scale paper --device cuda -o repro

Running the same command again skips finished steps and resumes an interrupted training run.

Under ``torchrun`` the LM training steps are data parallel over all processes (the global
batch is the scale's, split over the ranks, so it must divide by their number); everything
else (data, translation training, evaluation, compression, analysis, report) runs on rank 0
while the other ranks wait, and only rank 0 reads and writes the step markers and prints
(:mod:`g2lstm.reproduce.ranks`). The output folder must be visible to every rank (one machine,
or a shared filesystem). A step that fails on rank 0 stops the other ranks with an error that
names it; a failure inside LM training ends the job as any ``torchrun`` job does (torchrun
stops the other processes). ``--dry-run`` needs no process group: rank 0 prints the plan.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from g2lstm.errors import ConfigError

if TYPE_CHECKING:
    from g2lstm.reproduce.context import RunContext
    from g2lstm.reproduce.plan import Scale, Step

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
    p.add_argument(
        "--scale",
        choices=list(SCALES),
        default="tiny",
        help="tiny: minutes (smoke run); cpu: hours on 2 cores; paper: GPUs (default tiny)",
    )
    p.add_argument("--seeds", type=int, help="seeds per model (default: the scale's)")
    p.add_argument("-o", "--out", default=None, help="output folder (default: reproduce-SCALE)")
    p.add_argument(
        "--only",
        choices=list(PARTS),
        action="append",
        help="run only this part (repeatable); the report is always written",
    )
    p.add_argument(
        "--data-dir",
        help="root of named datasets (ptb/, multi30k/); default: $G2LSTM_DATA, else the user cache",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="device for translation and analysis (cpu, cuda); LM training picks its own",
    )
    p.add_argument(
        "--reuse",
        metavar="DIR",
        action="append",
        help="folder searched (recursively) for finished training runs; a run "
        "whose resolved config and data equal a training step's satisfies it "
        "without training (repeatable; the report lists reused runs)",
    )
    p.add_argument(
        "--reuse-wait",
        action="store_true",
        help="when a run under --reuse with a training step's config is being trained right "
        "now (e.g. by a benchmark script beside the reproduction), wait for it to end and "
        "reuse it instead of training the step a second time",
    )
    p.add_argument(
        "--ablations",
        action="store_true",
        help="add the sweeps of claims 3, 7, 8, 9 on PTB (noise probability, temperature, "
        "output-gate noise) and a probe of every LM run (cache pointer, hard gates, "
        "compression); see g2lstm.reproduce.ablations",
    )
    p.add_argument(
        "--ablation-seeds",
        type=int,
        default=None,
        help="seeds per sweep variant (default 2; the paper's cells use --seeds)",
    )
    p.add_argument(
        "--ablation-epochs",
        type=int,
        default=None,
        help="train the sweeps (and their baselines) for this many epochs instead of the "
        "preset's; the plan first checks on its full-budget runs that the cells rank the same "
        "after this many epochs with at least half of each gap between them, and stops if not",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run", action="store_true", help="print the plan with estimated times and exit"
    )
    mode.add_argument(
        "--report-only",
        action="store_true",
        help="write the report from the steps finished so far and exit, running nothing else "
        "(a partial report says how many steps are missing; a later full run rewrites it)",
    )
    p.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from pathlib import Path

    from g2lstm.reproduce.context import RunContext
    from g2lstm.reproduce.plan import PARTS, build_plan, get_scale
    from g2lstm.reproduce.ranks import env_rank, on_main, open_ranks

    scale = get_scale(args.scale)
    out = Path(args.out or f"reproduce-{scale.name}").resolve()
    steps = build_plan(scale, args.seeds, out, only=tuple(args.only or PARTS))
    steps = _with_ablations(args, steps, scale, out)
    reuse = tuple(Path(d).resolve() for d in args.reuse or ())
    if args.reuse_wait and not reuse:
        raise ConfigError("--reuse-wait waits for runs under --reuse folders: add --reuse DIR")
    if args.dry_run or args.report_only:
        if env_rank() == 0:  # neither needs the other ranks
            ctx = RunContext(
                scale, out, args.data_dir, args.device, reuse=reuse, reuse_wait=args.reuse_wait
            )
            if args.dry_run:
                _show_plan(steps, ctx, dry_run=True)
            else:
                _report_only(steps, ctx)
        return 0
    _check_world_size(scale, steps)
    ranks = open_ranks()
    try:
        log = _print_line if ranks.is_main else _quiet
        ctx = RunContext(
            scale,
            out,
            args.data_dir,
            args.device,
            log=log,
            reuse=reuse,
            reuse_wait=args.reuse_wait,
        )
        on_main(ranks, "the plan preview", _show_plan, steps, ctx)
        from g2lstm.reproduce.run import run_plan

        summary = run_plan(steps, ctx, ranks=ranks)
    finally:
        ranks.close()
    if ranks.is_main:
        report = out / "report"
        reused = f" ({len(summary.reused)} reused)" if summary.reused else ""
        print(
            f"\n{len(summary.ran)} step(s) run{reused}, {len(summary.skipped)} skipped. "
            f"Report: {report / 'report.md'} and {report / 'report.html'}",
            flush=True,
        )
    return 0


def _with_ablations(
    args: argparse.Namespace, steps: list[Step], scale: Scale, out: Any
) -> list[Step]:
    """The plan with the sweeps of ``--ablations`` (unchanged without it)."""
    from g2lstm.reproduce.ablations import AblationSettings, add_ablations

    if not args.ablations:
        if args.ablation_seeds is not None or args.ablation_epochs is not None:
            raise ConfigError("--ablation-seeds and --ablation-epochs need --ablations")
        return steps
    seeds = AblationSettings().seeds if args.ablation_seeds is None else args.ablation_seeds
    settings = AblationSettings(seeds=seeds, epochs=args.ablation_epochs)
    return add_ablations(steps, scale, out, args.seeds or scale.seeds, settings)


def _report_only(steps: Sequence[Step], ctx: RunContext) -> None:
    """Write the report step's output from the markers there are, without running any step
    and without the report's own marker (so that a later full run still writes it)."""
    from g2lstm.reproduce.steps_report import report_step

    if not ctx.out_dir.is_dir():
        raise ConfigError(
            f"--report-only: {ctx.out_dir} does not exist; pass the -o folder of a "
            "reproduction that has run (with the same --scale, --seeds, --only, --ablations)"
        )
    report, todo = steps[-1], [s for s in steps[:-1] if not s.done()]
    report.out_dir.mkdir(parents=True, exist_ok=True)
    status = None
    if todo:
        status = (
            f"**Partial report**: {len(steps) - 1 - len(todo)} of the plan's {len(steps) - 1} "
            f"steps have finished (not yet: {', '.join(s.id for s in todo[:3])}"
            f"{', ...' if len(todo) > 3 else ''}); what needs the others shows as missing "
            "(*not run*). The same command without `--report-only` runs them."
        )
    result = report_step(report, ctx, status)
    print(
        f"{len(steps) - 1 - len(todo)} of {len(steps) - 1} steps finished. "
        f"Report: {result['report_md']} and {result['report_html']}",
        flush=True,
    )


def _show_plan(steps: Sequence[Step], ctx: RunContext, *, dry_run: bool = False) -> dict[str, Any]:
    """Print the plan table (with the runs ``--reuse`` would adopt); with ``dry_run`` also
    why other runs would not be reused."""
    from g2lstm.reproduce.plan import format_plan

    preview: dict[str, Any] = {}
    labels: dict[str, str] = {}
    if ctx.reuse:
        from g2lstm.reproduce.reuse import ReuseFinder

        finder = ReuseFinder(ctx.reuse, ctx, wait=ctx.reuse_wait)
        preview = finder.preview(steps)
        labels = finder.preview_labels(steps, preview)
    print(format_plan(steps, ctx.scale, ctx.out_dir, reuse=labels), flush=True)
    if dry_run:
        for d in preview.values():
            if d.message:
                print(d.message, flush=True)
    return {}


def _check_world_size(scale: Scale, steps: Sequence[Step]) -> None:
    """Under torchrun, refuse at once (on every rank, before any work) a number of processes
    that does not divide the LM batch: the LM trainer splits the batch over the ranks."""
    from g2lstm.tasks import get_task
    from g2lstm.train.distributed import DistributedContext

    world = DistributedContext.from_env().world_size
    if world == 1 or not any(s.kind == "lm-train" for s in steps):
        return
    batch = get_task("lm").preset_config(scale.lm_preset, scale.lm_overrides).train.batch_size
    if batch % world:
        fits = [n for n in range(2, batch + 1) if batch % n == 0 and n <= 16]
        raise ConfigError(
            f"--scale {scale.name} trains language models with batch size {batch}, which "
            f"{world} processes cannot share evenly; start torchrun with --nproc-per-node "
            f"one of {', '.join(map(str, fits))}, or run --only mt"
        )


def _print_line(line: str) -> None:
    print(line, flush=True)


def _quiet(line: str) -> None:
    """The progress printer of ranks other than 0."""
