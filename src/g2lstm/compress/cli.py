"""``g2lstm compress``: compress a checkpoint, evaluate a compressed file, sweep settings.

::

    g2lstm compress CKPT --method svd --rank 64 -o model.g2c.safetensors
    g2lstm compress CKPT --method round --step 0.2 --clip 0.4 -o OUT
    g2lstm compress CKPT --method quant --bits 2 -o OUT
    g2lstm compress eval OUT [--data ptb] [--split test]
    g2lstm compress sweep RUN1 RUN2 ... -o sweep-dir [--max-batches 50]

``CKPT`` is a run or checkpoint directory of ``g2lstm lm train`` / ``g2lstm mt train``. The
compressed file is one ``.safetensors`` file holding the compressed blocks (factors or packed
codes), the other weights, the run config and vocabulary, so it is evaluated without the
original checkpoint. ``compress apply CKPT ...`` is the long form of the first command (it
accepts the options in any order).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from g2lstm.errors import ConfigError
from g2lstm.limits import DEFAULT_MAX_BEAM, check_limit
from g2lstm.safe_files import check_output_dir, check_output_file

__all__ = ["register"]

#: CLI method name -> library method
_METHODS = {
    "svd": "low_rank",
    "low_rank": "low_rank",
    "round": "round",
    "quant": "quantize",
    "quantize": "quantize",
}
#: library method -> (its CLI options, required ones)
_PARAMS = {
    "low_rank": (("rank", "factor_dtype"), ("rank",)),
    "round": (("step", "clip"), ("step",)),
    "quantize": (("bits", "per"), ("bits",)),
}


class _AnyName(dict):  # type: ignore[type-arg]
    """A view of the subcommand map that lets argparse accept any first word."""

    def __init__(self, parsers: dict[str, Any]) -> None:
        super().__init__()
        self._parsers = parsers

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Any:
        return iter(self._parsers)

    def __len__(self) -> int:
        return len(self._parsers)

    def __getitem__(self, key: str) -> Any:
        return self._parsers[key]


class _DefaultCommand(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Subcommands where an unknown first word is the checkpoint of the default one."""

    fallback = "apply"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = _AnyName(self._name_parser_map)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        if values and values[0] not in self._name_parser_map:
            values = [self.fallback, *values]
        super().__call__(parser, namespace, values, option_string)


def _blocks(text: str) -> str | list[str]:
    """``gates_if`` (a preset) or ``a,b@if`` (a list of names/globs)."""
    from .blocks import PRESETS

    items = [t.strip() for t in text.split(",") if t.strip()]
    if len(items) == 1 and (items[0] in PRESETS or not set(items[0]) & set(".*?[@")):
        return items[0]  # a preset, or a typo of one (the library lists the presets)
    if not items:
        raise ConfigError(f"--blocks {text!r} is empty; give a preset {list(PRESETS)} or names")
    return items


def _threads(n: int) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _method_params(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    method = _METHODS[args.method]
    allowed, required = _PARAMS[method]
    params = {}
    for name in ("rank", "factor_dtype", "step", "clip", "bits", "per"):
        value = getattr(args, name)
        flag = "--" + name.replace("_", "-")
        if value is None:
            if name in required:
                raise ConfigError(f"--method {args.method} needs {flag}")
            continue
        if name not in allowed:
            raise ConfigError(f"{flag} does not apply to --method {args.method}")
        params[name] = value
    return method, params


def _weights_bytes(path: Path) -> int | None:
    """Size of the dense weights of a checkpoint directory (or of a compressed file)."""
    if path.is_file():
        return path.stat().st_size
    model_file = path / "model.safetensors"
    return model_file.stat().st_size if model_file.is_file() else None


def _cmd_apply(args: argparse.Namespace) -> int:
    from .evaluators import load_target
    from .finetune import finetune_task
    from .format import save_compressed
    from .methods import compress

    _threads(args.threads)
    method, params = _method_params(args)
    # checked before the work; without --force the file is also created exclusively at the
    # end, so of two runs writing the same -o at once only one succeeds
    out = check_output_file(args.output, "-o", overwrite=args.force)
    target = load_target(args.checkpoint)
    print(
        f"g2lstm compress: {target.path} ({target.kind}, {target.cell}, H={target.hidden}) "
        f"-> {out}, {method} {params}",
        file=sys.stderr if args.json else sys.stdout,
        flush=True,
    )
    task = None
    if args.finetune_steps:  # read the training data before the (slower) compression
        task = finetune_task(target, data=args.finetune_data)
    model, report = compress(target.model, method, _blocks(args.blocks), **params)
    if task is not None:
        lr = task.lr if args.finetune_lr is None else args.finetune_lr
        print(
            f"fine-tuning {args.finetune_steps} steps at lr {lr:g} on {task.description} "
            "(structure kept)",
            file=sys.stderr,
            flush=True,
        )
        report = task.run(model, report, args.finetune_steps, lr)
    save_compressed(out, model, report, config=target.file_config, overwrite=args.force)
    size, dense = out.stat().st_size, _weights_bytes(target.path)
    if args.json:
        print(
            json.dumps(
                {
                    "checkpoint": str(target.path),
                    "output": str(out),
                    "bytes": size,
                    "checkpoint_weights_bytes": dense,
                    **report.to_dict(),
                }
            )
        )
        return 0
    print(report.to_markdown())
    against = f"; checkpoint weights {dense:,} bytes, {dense / size:.2f}x" if dense else ""
    print(f"wrote {out}: {size:,} bytes{against}")
    return 0


def _evaluator(kind: str, args: argparse.Namespace) -> Any:
    from .evaluators import evaluator_for

    if args.beam is not None:
        check_limit(args.beam, args.max_beam, "--beam", "pass --max-beam N")
    return evaluator_for(
        kind,
        data=args.data,
        data_dir=args.data_dir,
        split=args.split,
        batch_size=args.batch_size,
        bptt=args.bptt,
        max_batches=args.max_batches,
        limit=args.limit,
        beam=args.beam,
    )


def _cmd_eval(args: argparse.Namespace) -> int:
    from .evaluators import load_target

    _threads(args.threads)
    target = load_target(args.file)
    evaluator = _evaluator(target.kind, args)
    value = evaluator.score(target, target.model)
    result = {
        "file": str(args.file),
        "kind": target.kind,
        "cell": target.cell,
        "split": args.split,
        evaluator.metric: value,
    }
    if target.report:
        result["compression_ratio"] = target.report.get("totals", {}).get("compression_ratio")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"g2lstm compress eval: {args.file}: {evaluator.describe()} = {value:.3f}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .evaluators import checkpoint_kind
    from .sweep import run_sweep

    _threads(args.threads)
    kinds = {checkpoint_kind(c) for c in args.checkpoints}
    kinds.discard("compressed")
    if len(kinds) != 1:
        raise ConfigError(
            "compress sweep needs trained checkpoints of one kind (all LM or all MT), got "
            f"{sorted(kinds) or 'only compressed files'}"
        )
    kind = kinds.pop()
    evaluator = _evaluator(kind, args)
    check_output_dir(args.output, "-o")
    settings = "the paper's settings" if args.paper_only else "the paper's settings + a finer grid"
    print(
        f"g2lstm compress sweep: {len(args.checkpoints)} {kind} checkpoint(s) over {settings} "
        f"-> {args.output}",
        flush=True,
    )
    result = run_sweep(
        args.checkpoints,
        evaluator,
        None,
        args.output,
        blocks=_blocks(args.blocks),
        grid=not args.paper_only,
        finetune_steps=args.finetune_steps,
        finetune_lr=args.finetune_lr,
        finetune_data=args.finetune_data,
        plot=not args.no_plot,
        log=lambda line: print(line, flush=True),
    )
    print(result.paths["table"].read_text(encoding="utf-8"))
    print("wrote " + ", ".join(str(p) for p in result.paths.values()))
    return 0


def _add_eval_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("evaluation")
    g.add_argument(
        "--data",
        help="LM: dataset name or folder (default: the run's); "
        "MT: prepared data folder (default: the one in the checkpoint)",
    )
    g.add_argument("--data-dir", help="root of named datasets (LM)")
    g.add_argument("--split", default="test", help="valid or test (default: test)")
    g.add_argument("--batch-size", type=int, help="LM: streams (default: the run's)")
    g.add_argument("--bptt", type=int, help="LM: segment length (default: the run's)")
    g.add_argument("--max-batches", type=int, help="LM: score only the first N segments")
    g.add_argument("--limit", type=int, help="MT: score only the first N sentences")
    g.add_argument("--beam", type=int, help="MT: beam size (default: the run's)")
    g.add_argument(
        "--max-beam",
        type=int,
        default=DEFAULT_MAX_BEAM,
        help=f"MT: refuse a beam above this (default {DEFAULT_MAX_BEAM})",
    )
    g.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")


def _add_finetune_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fine-tune after compression (LM and MT)")
    g.add_argument(
        "--finetune-steps",
        type=int,
        default=0,
        metavar="N",
        help="after compressing, train N steps on the training data with the run's "
        "optimizer, batches and loss (MT: label smoothing), re-projecting onto the "
        "compressed structure after each step (default: 0, no fine-tune)",
    )
    g.add_argument(
        "--finetune-lr",
        type=float,
        metavar="LR",
        help="fine-tune learning rate (default: a tenth of the run's)",
    )
    g.add_argument(
        "--finetune-data",
        metavar="DATA",
        help="training data of the fine-tune: LM dataset name or folder, MT prepared "
        "folder (default: the run's; sweep: --data if given)",
    )


def register(subparsers: Any) -> None:
    """Add the ``compress`` command group to the top-level ``g2lstm`` parser."""
    from .blocks import PRESETS

    top = subparsers.add_parser(
        "compress",
        help="compress a checkpoint's gate weights (SVD, rounding, bits)",
        usage="g2lstm compress CKPT --method {svd,round,quant} ... -o OUT\n"
        "       g2lstm compress eval FILE [--data DATA] [--split SPLIT]\n"
        "       g2lstm compress sweep CKPT [CKPT ...] -o DIR",
        description="Compress the LSTM gate weights of a trained model without retraining "
        "(paper §4.3), evaluate the compact file, or sweep the paper's settings over seeds.",
    )
    sub = top.add_subparsers(
        dest="compress_command",
        metavar="{CKPT,eval,sweep}",
        action=_DefaultCommand,
        prog="g2lstm compress",
    )

    a = sub.add_parser("apply", help="compress one checkpoint (also: g2lstm compress CKPT ...)")
    a.add_argument("checkpoint", help="run or checkpoint directory (LM or MT)")
    a.add_argument(
        "--method",
        required=True,
        choices=sorted(_METHODS),
        help="svd (low rank), round (Eq. 17-18) or quant (uniform bits)",
    )
    a.add_argument("--rank", type=int, help="svd: rank of every block (1..min(shape))")
    a.add_argument("--factor-dtype", choices=["float32", "float16"], help="svd: factor dtype")
    a.add_argument("--step", type=float, help="round: grid step r (paper: 0.2 LM, 0.5 MT)")
    a.add_argument("--clip", type=float, help="round: clip c, a multiple of the step")
    a.add_argument("--bits", type=int, help="quant: bits per weight (1..16)")
    a.add_argument("--per", choices=["row", "tensor"], help="quant: one scale per row/tensor")
    a.add_argument(
        "--blocks",
        default="gates_if",
        help=f"a preset {list(PRESETS)} or comma-separated parameter names/globs, "
        "optionally with gates, e.g. 'rnns.0.weight_hh_l0@if' (default: gates_if)",
    )
    a.add_argument("-o", "--output", required=True, help="compressed file to write")
    a.add_argument("--force", action="store_true", help="overwrite an existing output")
    a.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    a.add_argument("--json", action="store_true", help="print the report as one JSON line")
    _add_finetune_flags(a)
    a.set_defaults(func=_cmd_apply)

    e = sub.add_parser(
        "eval",
        help="evaluate a compressed file (or a checkpoint)",
        description="Perplexity (LM) or tokenised BLEU (MT) of a compressed "
        "file written by g2lstm compress, or of a checkpoint.",
    )
    e.add_argument("file", help="compressed file, or a run/checkpoint directory")
    _add_eval_flags(e)
    e.add_argument("--json", action="store_true", help="print one JSON line")
    e.set_defaults(func=_cmd_eval)

    s = sub.add_parser(
        "sweep",
        help="metric of checkpoints across compression settings",
        description="Evaluate each checkpoint before and after the paper's "
        "settings (LM: r=0.2, c=0.4, ranks 128/64 of 1150 scaled to H; MT: "
        "r=0.5, c=1.0, ranks 32/16 of 256) and a finer grid of ranks and bits; "
        "write sweep.csv, table.md (paper layout, mean ± std over seeds) and "
        "sweep.png.",
    )
    s.add_argument("checkpoints", nargs="+", help="run or checkpoint directories")
    s.add_argument("-o", "--output", required=True, help="output directory")
    s.add_argument("--blocks", default="gates_if", help="as for compress (default: gates_if)")
    s.add_argument("--paper-only", action="store_true", help="skip the finer grid")
    s.add_argument("--no-plot", action="store_true", help="do not write sweep.png")
    _add_eval_flags(s)
    _add_finetune_flags(s)
    s.set_defaults(func=_cmd_sweep)

    def _help(args: argparse.Namespace) -> int:
        top.print_help()
        return 2

    top.set_defaults(func=_help)
