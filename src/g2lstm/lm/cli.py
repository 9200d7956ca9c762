"""``g2lstm lm train|eval|generate|truncate``: the language-model commands.

Configuration is layered: ``--preset`` (default: the config file's ``preset`` key, else
``paper``), then ``--config FILE`` (YAML, same layout as the ``config.yaml`` saved in every
run), then the flags and ``--set section.key=value``. ``--resume`` continues the run in
``--out`` from its latest checkpoint with its saved config (flags may only change
:data:`~g2lstm.lm.trainer.RESUMABLE_KEYS`); without ``--resume`` a directory that already has
checkpoints is refused, and a second process on the same directory is refused by its lock.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from g2lstm.config.flags import GATE_FLAGS
from g2lstm.errors import EXIT_INTERRUPTED
from g2lstm.limits import DEFAULT_MAX_WORDS
from g2lstm.lm.cli_eval import add_eval

__all__ = ["register"]

#: flag dest -> dotted config key
_FLAG_KEYS = {
    **GATE_FLAGS,
    "data": "data",
    "data_dir": "data_dir",
    "seed": "train.seed",
    "epochs": "train.epochs",
    "finetune_epochs": "train.finetune_epochs",
    "lr": "optim.lr",
    "clip": "optim.clip",
    "batch_size": "train.batch_size",
    "bptt": "train.bptt",
    "threads": "train.threads",
    "max_steps": "train.max_steps",
    "on_nonfinite": "train.on_nonfinite",
    "log_interval": "train.log_interval",
    "tensorboard": "train.tensorboard",
    "progress": "train.progress",
    "checkpoint_every": "train.checkpoint_every",
}


def _cmd_train(args: argparse.Namespace) -> int:
    from g2lstm.config.flags import saved_config, train_config
    from g2lstm.lm.config import RunConfig
    from g2lstm.lm.trainer import merge_resume_config, train

    out = Path(args.out)
    saved = saved_config(RunConfig, out) if args.resume else None

    def resume(saved: Any, overrides: dict[str, Any]) -> Any:
        # --max-steps limits one invocation: a resumed run goes on unless it is given again
        return merge_resume_config(saved, {"train.max_steps": None, **overrides})

    config = train_config(
        RunConfig, args, _FLAG_KEYS, default_preset="paper", saved=saved, resume=resume
    )
    if args.print_config:
        print(config.to_yaml(), end="")
        return 0
    if saved is None and not (args.yes or args.max_steps or _preset_named(args)):
        _check_cost(config)
    m, t = config.model, config.train
    what = "resuming" if saved is not None else "training"
    print(
        f"g2lstm lm train: {what} {m.gates.cell} (tau={m.gates.tau}, noise_p={m.gates.noise_p}) "
        f"{m.nlayers}x{m.nhid} on {config.data}, preset {config.preset}, seed {t.seed}, "
        f"{t.epochs} epochs (+{t.finetune_epochs} finetune) -> {out}",
        flush=True,
    )
    result = train(config, out, resume=args.resume)
    if not result.complete:
        print(
            f"stopped ({result.stopped}) after step {result.steps}; continue with: "
            f"g2lstm lm train --out {out} --resume",
            file=sys.stderr,
        )
        if result.stopped == "interrupted":
            return EXIT_INTERRUPTED  # not finished: scripts must not go on as if it were
    return 0


def _preset_named(args: argparse.Namespace) -> bool:
    from g2lstm.config import load_yaml

    return bool(args.preset or (args.config and load_yaml(args.config).get("preset")))


def _check_cost(config: Any) -> None:
    """No --preset: on a machine without a GPU, say what is about to run and how long it
    will take (from a short measurement); refuse a run of more than an hour without --yes."""
    from g2lstm.datasets import resolve_dataset
    from g2lstm.lm.data import Corpus
    from g2lstm.lm.estimate import describe_run, estimate_run
    from g2lstm.train.estimate import RunEstimate, check_run_cost

    def load() -> Corpus:
        corpus = Corpus.load(resolve_dataset(config.data, config.data_dir, kind="lm"))
        return corpus.head(config.train.limit_tokens)

    def estimate(corpus: Corpus) -> tuple[RunEstimate, str]:
        sized = config.replace({"model.vocab_size": len(corpus.vocab)})
        est = estimate_run(sized, len(corpus.train))
        return est, describe_run(est, sized, len(corpus.train))

    check_run_cost(
        "lm train",
        config.preset,
        load,
        estimate,
        hint="--preset tiny: seconds; --preset small: about an hour on PTB with 2 cores",
    )


def _cmd_generate(args: argparse.Namespace) -> int:
    from g2lstm.limits import check_limit
    from g2lstm.lm.evaluate import load_model
    from g2lstm.lm.generate import iter_generate, write_words

    check_limit(args.words, args.max_words, "--words", "pass --max-words N")
    loaded = load_model(args.checkpoint)
    prompt = args.prompt.split() if args.prompt else None
    # iter_generate checks its arguments at this call, before the first word is printed
    words = iter_generate(
        loaded.model,
        loaded.vocab,
        args.words,
        temperature=args.temperature,
        seed=args.seed,
        prompt=prompt,
    )
    print(
        f"g2lstm lm generate: {args.words} words from {loaded.checkpoint.path} "
        f"(temperature {args.temperature}, seed {args.seed})",
        file=sys.stderr,
    )
    write_words(words, sys.stdout)  # streamed: each line appears as soon as it is sampled
    return 0


def _add_train(sub: Any) -> None:
    from g2lstm.config.flags import add_config_flags, add_override_flags
    from g2lstm.lm.presets import PRESETS

    p = sub.add_parser(
        "train",
        help="train a language model (AWD-LSTM recipe)",
        description="Train a word language model. Config layers: --preset, "
        "--config FILE, then flags / --set. The resolved config is saved as "
        "OUT/config.yaml.",
    )
    add_config_flags(
        p, PRESETS, preset_help="starting configuration (default: the config file's, else 'paper')"
    )
    p.add_argument(
        "--data", help="dataset name (ptb, wikitext-2, ...) or folder with train/valid/test.txt"
    )
    p.add_argument("--data-dir", help="root of named datasets (default $G2LSTM_DATA or cache)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    for flag, typ in (
        ("--seed", int),
        ("--epochs", int),
        ("--finetune-epochs", int),
        ("--lr", float),
        ("--clip", float),
        ("--batch-size", int),
        ("--bptt", int),
        ("--threads", int),
        ("--max-steps", int),
        ("--log-interval", int),
        ("--checkpoint-every", int),
    ):
        p.add_argument(flag, type=typ)
    p.add_argument("--on-nonfinite", choices=["raise", "skip"])
    p.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=None)
    add_override_flags(p, example="model.nhid=650")
    p.set_defaults(func=_cmd_train)


def _cmd_truncate(args: argparse.Namespace) -> int:
    from g2lstm.lm.truncate import truncate_run

    r = truncate_run(
        args.run, args.epochs, args.out, checkpoint_dirs=args.checkpoints, threads=args.threads
    )
    numbers = {
        "out": args.out,
        "epochs": r.epochs,
        "valid_ppl": r.valid_ppl,
        "test_ppl": r.test_ppl,
    }
    print(
        json.dumps(numbers) if args.json else f"{args.run} cut to {r.epochs} epochs -> {args.out}"
    )
    return 0


def _add_truncate(sub: Any) -> None:
    p = sub.add_parser(
        "truncate",
        help="a run as if trained for fewer epochs (from its kept checkpoints)",
        description="Write RUN cut to its first --epochs epochs into --out: the checkpoint "
        "of that epoch and the best one before it, the config and metrics, then evaluate it "
        "as at the end of training. The first E epochs of a longer run are an E-epoch run; "
        "keep them with `lm train --set train.keep_last=N`. RUN is only read.",
    )
    p.add_argument("run", help="run directory (g2lstm lm train --out)")
    p.add_argument("--epochs", type=int, required=True, help="the shorter budget")
    p.add_argument("--out", required=True, help="new or empty run directory")
    p.add_argument(
        "--checkpoints",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of copies of RUN's step-N checkpoints (repeatable)",
    )
    p.add_argument("--threads", type=int, help="CPU threads (default: the run's)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.set_defaults(func=_cmd_truncate)


def register(subparsers: Any) -> None:
    """Add the ``lm`` command group to the top-level ``g2lstm`` parser."""
    lm = subparsers.add_parser(
        "lm",
        help="language modelling: train, eval, generate, truncate",
        description="Word-level language modelling (AWD-LSTM recipe).",
    )
    sub = lm.add_subparsers(dest="lm_command", metavar="COMMAND")
    _add_train(sub)

    add_eval(sub)

    g = sub.add_parser("generate", help="sample text from a checkpoint")
    g.add_argument("checkpoint", help="run directory or checkpoint directory")
    g.add_argument("--words", type=int, default=50)
    g.add_argument(
        "--max-words",
        type=int,
        default=DEFAULT_MAX_WORDS,
        help=f"refuse --words above this (default {DEFAULT_MAX_WORDS:,})",
    )
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--prompt", help="words to start from")
    g.set_defaults(func=_cmd_generate)
    _add_truncate(sub)

    def _help(args: argparse.Namespace) -> int:
        lm.print_help()
        return 2

    lm.set_defaults(func=_help)
