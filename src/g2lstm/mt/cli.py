"""``g2lstm mt prepare|train|translate|eval``: the machine-translation commands.

Configuration of ``train`` is layered: ``--preset`` (default ``iwslt``), then ``--config
FILE`` (YAML with sections ``model``, ``optim``, ``train``, ``decode``; the ``config.yaml`` of
every run has this layout), then the flags and ``--set section.key=value``. ``--resume``
continues the run in ``--out`` with its saved configuration (flags may only change budgets
and bookkeeping, :data:`~g2lstm.mt.resume.RESUMABLE_CHANGES`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from g2lstm.config.flags import GATE_FLAGS, add_config_flags, add_override_flags
from g2lstm.errors import EXIT_INTERRUPTED, ConfigError, DataError
from g2lstm.limits import DEFAULT_MAX_BEAM, check_limit
from g2lstm.mt.presets import PRESETS

__all__ = ["DEFAULT_PRESET", "register"]

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


def _threads(n: int | None) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


def _cmd_prepare(args: argparse.Namespace) -> int:
    from g2lstm.mt.iwslt import prepare_iwslt14
    from g2lstm.mt.prepare import prepare_dataset, prepare_multi30k

    settings: dict[str, Any] = {}
    if args.bpe_merges is not None:
        settings["bpe_merges"] = args.bpe_merges
    if args.max_len is not None:
        settings["max_len"] = args.max_len
    print(
        f"g2lstm mt prepare: {args.dataset} {args.src}->{args.tgt} "
        f"(tokenise, BPE, vocabulary) -> {args.out}",
        flush=True,
    )
    if args.dataset == "multi30k":
        from g2lstm.datasets import resolve_dataset

        root = resolve_dataset("multi30k", args.data_dir, download=args.download, kind="mt")
        prepared = prepare_multi30k(
            root.parent,
            args.out,
            src_lang=args.src,
            tgt_lang=args.tgt,
            variant=args.variant,
            overwrite=args.overwrite,
            **settings,
        )
    elif args.dataset == "iwslt14":
        if not args.raw:
            raise ConfigError("--dataset iwslt14 needs --raw DIR (the extracted de-en folder)")
        prepared = prepare_iwslt14(
            args.raw,
            args.out,
            src_lang=args.src,
            tgt_lang=args.tgt,
            overwrite=args.overwrite,
            **settings,
        )
    else:
        if not args.raw:
            raise ConfigError("--dataset folder needs --raw DIR with {train,valid,test}.{src,tgt}")
        prepared = prepare_dataset(
            args.raw,
            args.out,
            args.src,
            args.tgt,
            overwrite=args.overwrite,
            tokenize=not args.pretokenized,
            lowercase=args.lowercase,
            **settings,
        )
    counts = prepared.info["counts"]
    print(f"prepared {prepared.root}: sizes {counts['sizes']}, vocabulary {counts['vocab_size']}")
    return 0


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


def _decode_changes(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("beam", "alpha", "batch_size", "max_len_a", "max_len_b")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _check_beam(args: argparse.Namespace) -> None:
    """Refuse a huge --beam before any work (the run's own beam is checked once loaded)."""
    if args.beam is not None:
        check_limit(args.beam, args.max_beam, "--beam", "pass --max-beam N")


def _load(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from g2lstm.mt.translate import load_translator
    from g2lstm.nn import g2_modules

    _threads(args.threads)
    tr = load_translator(args.checkpoint, device=args.device, which=args.which)
    tr.decode = replace(tr.decode, **_decode_changes(args))
    check_limit(
        tr.decode.beam, args.max_beam, f"the beam size of {tr.checkpoint}", "pass --max-beam N"
    )
    gates = {k: v for k in ("eval_gates", "eval_temperature") if (v := getattr(args, k))}
    for _, mod in g2_modules(tr.model) if gates else ():
        mod.set_gate_options(**gates)
    return tr


def _eval_temperature(tr: Any) -> dict[str, str]:
    """``{"eval_temperature": ...}`` of the model's G2 modules (all alike), or ``{}``."""
    from g2lstm.nn import g2_modules

    found = {m.gate_config.eval_temperature.value for _, m in g2_modules(tr.model)}
    return {"eval_temperature": found.pop()} if len(found) == 1 else {}


def _read_input(path: str | None) -> list[str]:
    """The lines of ``--input`` (or stdin) without their line ends; DataError names the file
    (and the line of undecodable bytes)."""
    from g2lstm.mt.data import read_lines

    if path is None:
        try:
            text = sys.stdin.read()
        except UnicodeDecodeError as exc:
            raise DataError(f"<stdin>: not valid UTF-8 ({exc.reason}); re-encode it") from None
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()  # the final line end
        return [line.removesuffix("\r") for line in lines]
    if Path(path).is_dir():
        raise DataError(f"--input {path} is a directory; give a text file")
    return read_lines(path)


def _cmd_translate(args: argparse.Namespace) -> int:
    from g2lstm.safe_files import check_output_file
    from g2lstm.train import atomic_write_text

    _check_beam(args)
    output = check_output_file(args.output, "--output") if args.output else None
    lines = _read_input(args.input)
    tr = _load(args)
    print(
        f"g2lstm mt translate: {len(lines)} sentences ({args.input_format}) with "
        f"{tr.checkpoint}, beam {tr.decode.beam} -> {args.output or 'stdout'} "
        f"({args.output_format})",
        file=sys.stderr,
        flush=True,
    )
    out = tr.translate(lines, input_format=args.input_format)
    text = "".join(line + "\n" for line in getattr(out, args.output_format))
    if output is not None:
        atomic_write_text(output, text)
    else:
        sys.stdout.write(text)
    print(
        f"{len(lines)} sentences in {out.seconds:.2f}s ({out.sentences_per_second:.1f} "
        "sentences/s)",
        file=sys.stderr,
    )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from g2lstm.mt.translate import evaluate_split
    from g2lstm.safe_files import check_output_file
    from g2lstm.train import atomic_write_json, atomic_write_text

    _check_beam(args)
    if args.json:
        check_output_file(args.json, "--json")
    if args.hyps:
        check_output_file(args.hyps, "--hyps")
    tr = _load(args)
    ckpt = Path(tr.checkpoint)
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else Path.cwd()
    json_path = Path(args.json) if args.json else run_dir / f"eval-{args.split}.json"
    check_output_file(json_path, "--json")
    temperature = _eval_temperature(tr).get("eval_temperature", "mixed")
    print(
        f"g2lstm mt eval: {ckpt} on {args.data or 'its data'}/{args.split}, beam "
        f"{tr.decode.beam}, alpha {tr.decode.alpha}, gates {args.eval_gates or 'soft'} "
        f"(eval temperature {temperature}) -> {json_path}",
        flush=True,
    )
    res = evaluate_split(tr, args.split, args.data, limit=args.limit, tok_case=args.tok_case)
    b = res.bleu
    case = "lowercased" if "case:lc" in b.tok_signature else "case-sensitive"
    print(f"tokenised BLEU ({case}, multi-bleu.perl style) = {b.tok_bleu:.2f}  [{b.tok_signature}]")
    print(f"sacreBLEU (detokenised) = {b.detok_bleu:.2f}  [{b.detok_signature}]")
    print(
        f"{b.num_sentences} sentences in {res.output.seconds:.1f}s "
        f"({res.output.sentences_per_second:.1f} sentences/s)"
    )
    record = {
        "checkpoint": str(ckpt),
        "beam": tr.decode.beam,
        "alpha": tr.decode.alpha,
        "eval_gates": args.eval_gates or "soft",
        **_eval_temperature(tr),
        "tok_case": args.tok_case,
        **res.to_dict(),
    }
    atomic_write_json(json_path, record)
    if args.hyps:
        atomic_write_text(args.hyps, "".join(h + "\n" for h in res.output.tok))
    return 0


def _add_decode_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="run folder (uses its best checkpoint) or checkpoint dir")
    p.add_argument(
        "--which",
        choices=["best", "last"],
        default="best",
        help="checkpoint of a run folder (default: best validation loss)",
    )
    p.add_argument("--beam", type=int, help="beam size (1 = greedy; default: the run's, 5)")
    p.add_argument(
        "--max-beam",
        type=int,
        default=DEFAULT_MAX_BEAM,
        help=f"refuse a beam above this (default {DEFAULT_MAX_BEAM})",
    )
    p.add_argument("--alpha", type=float, help="length normalisation exponent (default 1.0)")
    p.add_argument("--batch-size", type=int, help="sentences decoded together")
    p.add_argument("--max-len-a", type=float, help="max output length = a * src_len + b")
    p.add_argument("--max-len-b", type=int)
    p.add_argument(
        "--eval-gates",
        choices=["soft", "hard", "sample"],
        help="G2 gates at inference (default soft)",
    )
    p.add_argument(
        "--eval-temperature",
        choices=["divide", "drop"],
        help="soft gates at inference: sigmoid(a / tau) (divide, the default) or "
        "sigmoid(a) (drop, as the authors' code evaluates)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")


def register(subparsers: Any) -> None:
    """Add the ``mt`` command group to the top-level ``g2lstm`` parser."""
    mt = subparsers.add_parser(
        "mt",
        help="machine translation: prepare, train, translate, eval",
        description="Attention encoder-decoder with G2-LSTM layers (paper §4.1.2).",
    )
    sub = mt.add_subparsers(dest="mt_command", metavar="COMMAND")

    p = sub.add_parser(
        "prepare",
        help="tokenise, learn BPE, build vocabularies",
        description="Write a prepared folder for 'mt train'.",
    )
    p.add_argument("--dataset", choices=["multi30k", "iwslt14", "folder"], default="multi30k")
    p.add_argument(
        "--raw", help="iwslt14: extracted de-en folder; folder: files {train,valid,test}.{src,tgt}"
    )
    p.add_argument("--data-dir", help="root of named datasets (default $G2LSTM_DATA or cache)")
    p.add_argument("--download", action="store_true", help="download Multi30k if missing")
    p.add_argument(
        "--variant",
        choices=["tok", "raw"],
        default="tok",
        help="Multi30k: official lowercased tokenised files or raw text",
    )
    p.add_argument("--src", default="de")
    p.add_argument("--tgt", default="en")
    p.add_argument("--bpe-merges", type=int, help="joint BPE merges (0 = words)")
    p.add_argument("--max-len", type=int, help="drop train pairs longer than this (subwords)")
    p.add_argument("--pretokenized", action="store_true", help="folder: input is tokenised")
    p.add_argument("--lowercase", action="store_true", help="folder: lowercase")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_prepare)

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

    tr = sub.add_parser("translate", help="translate a file or stdin to stdout (batched)")
    _add_decode_flags(tr)
    tr.add_argument("--input", help="input file (default stdin), one sentence per line")
    tr.add_argument("--output", help="output file (default stdout)")
    tr.add_argument("--input-format", choices=["raw", "tok", "bpe"], default="raw")
    tr.add_argument("--output-format", choices=["detok", "tok", "bpe"], default="detok")
    tr.set_defaults(func=_cmd_translate)

    e = sub.add_parser("eval", help="BLEU (tokenised and sacreBLEU) on a prepared split")
    _add_decode_flags(e)
    e.add_argument("--split", default="test", help="valid/test (or val/test2016)")
    e.add_argument("--data", help="prepared folder (default: the run's)")
    e.add_argument("--limit", type=int, help="only the first N sentences")
    e.add_argument("--json", help="write the result here (default RUN/eval-SPLIT.json)")
    e.add_argument("--hyps", help="also write the tokenised hypotheses here")
    e.add_argument(
        "--tok-case",
        choices=["auto", "lc", "mixed"],
        default="auto",
        help="case of the tokenised BLEU: auto (default) is case-sensitive for a "
        "German target (WMT En->De) and lowercased otherwise (IWSLT De->En); the "
        "choice is printed in the signature beside the score",
    )
    e.set_defaults(func=_cmd_eval)

    def _help(args: argparse.Namespace) -> int:
        mt.print_help()
        return 2

    mt.set_defaults(func=_help)
