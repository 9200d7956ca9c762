"""``g2lstm lm eval``: the perplexity of a run's best checkpoint, another checkpoint, or a
compressed model file, on a split.

The default protocol is the run's own: its validation or test batch size and segment length;
a test batch size of 1 (AWD-LSTM's test protocol) runs as warmed-up streams, equal within
rounding (``--batch-size 1`` runs the exact batch-1 loop). ``--cache-pointer`` adds the
continuous cache pointer (Grave et al.; the window, theta and lambda of AWD-LSTM's PTB
recipe by default). ``--eval-gates`` and ``--eval-temperature`` change how the G2 gates are
computed at evaluation. Prints one line, or one JSON object with ``--json``; a checkpoint
that is not the run's best validation checkpoint is named as such.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from g2lstm.config.flags import add_eval_gate_flags, apply_eval_gate_flags, describe_eval_gates
from g2lstm.errors import ConfigError

__all__ = ["add_eval", "cmd_eval"]


class _FileRef:
    """Stands in for a checkpoint where only its path is used (messages, vocab checks)."""

    def __init__(self, path: object) -> None:
        self.path = path


def cmd_eval(args: argparse.Namespace) -> int:
    """``g2lstm lm eval``: the perplexity of a checkpoint on a split (module docstring)."""
    import torch

    from g2lstm.datasets import resolve_dataset
    from g2lstm.lm.data import Corpus, batchify
    from g2lstm.lm.evaluate import (
        TEST_STREAMS,
        WARMUP_TOKENS,
        LoadedModel,
        check_vocab,
        evaluate,
        evaluate_pointer,
        evaluate_stream,
        load_model,
        perplexity,
        stream_batch_size,
    )
    from g2lstm.lm.pointer import PointerConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    if Path(args.checkpoint).is_file() and args.checkpoint.endswith(".safetensors"):
        # a compact file written by `g2lstm compress`: it carries config and vocab
        from g2lstm.compress import load_compressed_model

        cm = load_compressed_model(args.checkpoint)
        if cm.kind != "lm":
            raise ConfigError(f"{args.checkpoint} is a compressed {cm.kind} model, not an LM")
        loaded = LoadedModel(cm.model, cm.config, cm.vocab, _FileRef(cm.path))
    else:
        loaded = load_model(args.checkpoint)
    cfg = loaded.config
    data = args.data or cfg.data
    folder = resolve_dataset(data, args.data_dir or cfg.data_dir, kind="lm")
    corpus = Corpus.load(folder).head(cfg.train.limit_tokens)
    check_vocab(loaded.vocab, corpus.vocab, str(loaded.checkpoint.path), str(data))
    if cfg.train.limit_tokens is not None:
        print(
            f"g2lstm lm eval: the first {cfg.train.limit_tokens:,} tokens of each split, as "
            "in training (train.limit_tokens)",
            file=sys.stderr,
        )
    gating = apply_eval_gate_flags(loaded.model, args)
    mode = "cache pointer" if args.cache_pointer else "plain"
    print(
        f"g2lstm lm eval: {loaded.checkpoint.path} on {data}/{args.split} ({mode}, "
        f"{describe_eval_gates(gating)})",
        file=sys.stderr,
    )
    default_bs = cfg.train.test_batch_size if args.split == "test" else cfg.train.eval_batch_size
    batch_size, warmup = args.batch_size or default_bs, 0
    if args.cache_pointer:
        bptt = args.bptt or 500
        pc = PointerConfig(args.window, args.theta, args.lambdah, bptt)
        loss = evaluate_pointer(loaded.model, corpus.tensor(args.split), pc)
    elif args.batch_size is None and batch_size == 1:
        # the run asks for batch-1 numbers (AWD-LSTM's test protocol): the same number within
        # rounding from streams that each read the 200 tokens before them
        bptt, ids = args.bptt or cfg.train.bptt, corpus.tensor(args.split)
        batch_size = stream_batch_size(len(ids), TEST_STREAMS)
        warmup = WARMUP_TOKENS if batch_size > 1 else 0
        if warmup:
            print(
                f"g2lstm lm eval: batch-1 perplexity from {batch_size} streams, each reading "
                f"the {warmup} tokens before it first (equal within rounding; --batch-size 1 "
                "runs the exact batch-1 loop)",
                file=sys.stderr,
            )
        loss = evaluate_stream(loaded.model, ids, bptt, batch_size)
    else:
        bptt = args.bptt or cfg.train.bptt
        source = batchify(corpus[args.split], batch_size, name=args.split)
        loss = evaluate(loaded.model, source, bptt)
    kind = _checkpoint_kind(Path(args.checkpoint), Path(loaded.checkpoint.path))
    if kind != "best-valid":
        print(
            f"g2lstm lm eval: note: {loaded.checkpoint.path} is not a best-validation "
            f"checkpoint ({kind}); a finished run's best is what its results.json reports",
            file=sys.stderr,
        )
    result = {
        "checkpoint": str(loaded.checkpoint.path),
        "checkpoint_kind": kind,
        "best_valid": kind == "best-valid",
        "split": args.split,
        "loss": loss,
        "ppl": perplexity(loss),
        "cache_pointer": bool(args.cache_pointer),
        **gating,
        "batch_size": 1 if args.cache_pointer else batch_size,
        "warmup": warmup,
        "bptt": bptt,
        "limit_tokens": cfg.train.limit_tokens,
    }
    print(
        json.dumps(result)
        if args.json
        else f"{args.split} loss {loss:.4f} | ppl {result['ppl']:.2f}"
    )
    return 0


def _checkpoint_kind(given: Path, used: Path) -> str:
    """Which checkpoint ``lm eval`` ran: ``best-valid`` (a run's best, or that checkpoint named
    directly), ``latest`` (a run with no validated epoch yet), ``compressed`` or ``checkpoint``
    (a checkpoint directory that is not its run's best)."""
    from g2lstm.train import CheckpointManager

    if used.is_file():
        return "compressed"
    run = given if (given / "checkpoints").is_dir() else used.parent.parent
    if not (run / "checkpoints").is_dir():
        return "checkpoint"
    best = CheckpointManager(run, keep_last=None).best()
    if best is not None and best.resolve() == used.resolve():
        return "best-valid"
    return "latest" if given == run else "checkpoint"


def add_eval(sub: Any) -> None:
    """Add ``eval`` to the ``lm`` command group's subparsers ``sub``."""
    e = sub.add_parser(
        "eval",
        help="perplexity of a checkpoint on a split",
        description="Evaluate a run directory (its best checkpoint) or a checkpoint directory.",
    )
    e.add_argument("checkpoint", help="run directory or checkpoint directory")
    e.add_argument("--data", help="dataset name or folder (default: the run's)")
    e.add_argument("--data-dir", help="root of named datasets")
    e.add_argument("--split", choices=["valid", "test"], default="test")
    e.add_argument(
        "--batch-size",
        type=int,
        help="default: the run's eval/test batch size; a test batch size of 1 runs as 10 "
        "warmed-up streams (the batch-1 number within 0.01), --batch-size 1 as the exact "
        "batch-1 loop",
    )
    e.add_argument(
        "--bptt", type=int, help="segment length (default: the run's; 500 with --cache-pointer)"
    )
    e.add_argument("--cache-pointer", action="store_true", help="continuous cache pointer")
    e.add_argument("--window", type=int, default=500, help="cache size (PTB: 500)")
    e.add_argument("--theta", type=float, default=1.0, help="cache sharpness (PTB: 1.0)")
    e.add_argument("--lambdah", type=float, default=0.1, help="cache weight (PTB: 0.1)")
    add_eval_gate_flags(e)
    e.add_argument("--threads", type=int, default=0)
    e.add_argument("--json", action="store_true", help="print one JSON line")
    e.set_defaults(func=cmd_eval)
