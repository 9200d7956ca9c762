"""``g2lstm mt train``: train (or resume) the attention encoder-decoder.

Configuration is layered: ``--preset`` (default :data:`DEFAULT_PRESET`, ``iwslt``), then
``--config FILE`` (YAML with sections ``model``, ``optim``, ``train``, ``decode``; the
``config.yaml`` of every run has this layout), then the flags and ``--set section.key=value``.
``--resume`` continues the run in ``--out`` with its saved configuration (flags may only change
budgets and bookkeeping, :data:`~g2lstm.mt.resume.RESUMABLE_CHANGES`). Without ``--preset`` or
``--yes`` a new run's cost is checked first (:func:`g2lstm.train.estimate.check_run_cost`).
Heavy imports happen when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from g2lstm.config.flags import GATE_FLAGS, add_config_flags, add_override_flags
from g2lstm.errors import EXIT_INTERRUPTED, ConfigError
from g2lstm.mt.presets import PRESETS

__all__ = ["DEFAULT_PRESET", "register_train"]

#: The preset of ``mt train`` without ``--preset``: the paper's IWSLT'14 model.
DEFAULT_PRESET = "iwslt"

#: flag dest -> dotted config key (``train`` flags)
_FLAG_KEYS = {
    **GATE_FLAGS,
    "attention": "model.attention",
    "data": "train.data",
    "seed": "train.seed",
    "epochs": "train.epochs",
    "max_updates": "train.max_updates",
    "max_minutes": "train.max_minutes",
    "max_tokens": "train.max_tokens",
    "threads": "train.threads",
    "eval_every": "train.eval_every",
    "optimizer": "optim.name",
    "lr": "optim.lr",
    "clip": "optim.clip",
    "beam": "decode.beam",
}


def _cmd_train(args: argparse.Namespace) -> int:
    from g2lstm.config.flags import saved_config, train_config
    from g2lstm.mt.config import MTConfig
    from g2lstm.mt.trainer import train

    out = Path(args.out)
    saved = saved_config(MTConfig, out) if args.resume else None
    config = train_config(MTConfig, args, _FLAG_KEYS, default_preset=DEFAULT_PRESET, saved=saved)
    if args.print_config:
        print(config.to_yaml(), end="")
        return 0
    if not config.train.data:
        raise ConfigError("no data: pass --data FOLDER written by 'g2lstm mt prepare'")
    if saved is None and not (args.yes or args.preset):
        _check_cost(config)
    m, t, g = config.model, config.train, config.model.gates
    budget = f"{t.epochs} epochs"
    budget += f", <= {t.max_updates} updates" if t.max_updates else ""
    budget += f", <= {t.max_minutes:g} min" if t.max_minutes else ""
    if t.limit_sentences is not None:
        budget += f", first {t.limit_sentences:,} sentence pairs of train/valid"
    what = "resuming" if saved is not None else "training"
    print(
        f"g2lstm mt train: {what} {g.cell} (tau={g.tau}, noise_p={g.noise_p}) {m.layers}x"
        f"{m.hidden} {m.attention} attention on {t.data}, {config.optim.name}, seed {t.seed}, "
        f"{budget} -> {out}",
        flush=True,
    )
    result = train(config, out, device=args.device, resume=args.resume, show_progress=args.progress)
    summary = f"stopped ({result.stopped}) at step {result.steps}, epoch {result.epochs}; best "
    summary += f"valid loss {result.best_valid_loss:.4f}"
    if result.valid_bleu:
        summary += (
            f"; valid BLEU tok {result.valid_bleu['tok_bleu']:.2f} / sacreBLEU "
            f"{result.valid_bleu['detok_bleu']:.2f}"
        )
    print(summary)
    if result.stopped == "interrupted":
        print(f"continue with: g2lstm mt train --out {out} --resume", file=sys.stderr)
        return EXIT_INTERRUPTED  # not finished: scripts must not go on as if it were
    return 0


def _check_cost(config: Any) -> None:
    """No --preset: on a machine without a GPU, say what is about to run and how long it
    will take (a few timed updates); refuse a run of more than an hour without --yes."""
    from g2lstm.mt.estimate import describe_run, estimate_run
    from g2lstm.mt.prepare import load_prepared
    from g2lstm.train.estimate import RunEstimate, check_run_cost

    def estimate(prepared: Any) -> tuple[RunEstimate, str]:
        est = estimate_run(config, prepared)
        return est, describe_run(est, config, prepared)

    check_run_cost(
        "mt train",
        DEFAULT_PRESET,
        lambda: load_prepared(config.train.data),
        estimate,
        hint="--preset tiny: seconds on any data, or keep this one within --max-minutes / "
        "--max-updates",
    )


def register_train(sub: Any) -> None:
    """Add ``train`` to the ``mt`` command group's sub-parsers ``sub``."""
    t = sub.add_parser(
        "train",
        help="train an MT model",
        description="Train the encoder-decoder. Config layers: --preset, "
        "--config FILE, then flags / --set. Saved as OUT/config.yaml.",
    )
    add_config_flags(
        t,
        PRESETS,
        preset_help="default iwslt; multi30k: the iwslt model with the recipe that "
        "converges on Multi30k",
    )
    t.add_argument("--attention", choices=["luong", "bahdanau"])
    t.add_argument("--data", help="prepared folder ('g2lstm mt prepare --out')")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--optimizer", choices=["adam", "adadelta"])
    for flag, typ in (
        ("--seed", int),
        ("--epochs", int),
        ("--max-updates", int),
        ("--max-minutes", float),
        ("--max-tokens", int),
        ("--threads", int),
        ("--eval-every", int),
        ("--lr", float),
        ("--clip", float),
        ("--beam", int),
    ):
        t.add_argument(flag, type=typ)
    t.add_argument("--device", default="cpu")
    add_override_flags(t, example="model.dropout=0.3")
    t.set_defaults(func=_cmd_train)
