"""``g2lstm mt translate`` and ``g2lstm mt eval``: decode with a trained model.

Both load a run's checkpoint into a :class:`~g2lstm.mt.translate.Translator` with the same
decoding flags (beam, length normalisation, gates at inference); ``translate`` writes the
translations of a file or stdin, ``eval`` scores a prepared split (tokenised BLEU and
sacreBLEU) into a JSON record. Output paths are checked before any model is loaded; heavy
imports happen when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from g2lstm.config.flags import add_eval_gate_flags, apply_eval_gate_flags, describe_eval_gates
from g2lstm.errors import DataError
from g2lstm.limits import DEFAULT_MAX_BEAM, check_limit

__all__ = ["register_eval", "register_translate"]


def _threads(n: int | None) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


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

    _threads(args.threads)
    tr = load_translator(args.checkpoint, device=args.device, which=args.which)
    tr.decode = replace(tr.decode, **_decode_changes(args))
    check_limit(
        tr.decode.beam, args.max_beam, f"the beam size of {tr.checkpoint}", "pass --max-beam N"
    )
    apply_eval_gate_flags(tr.model, args)
    return tr


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
    from g2lstm.nn import eval_gate_settings
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
    gating = eval_gate_settings(tr.model)  # after the flags: what the decode really uses
    print(
        f"g2lstm mt eval: {ckpt} on {args.data or 'its data'}/{args.split}, beam "
        f"{tr.decode.beam}, alpha {tr.decode.alpha}, {describe_eval_gates(gating)} "
        f"-> {json_path}",
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
        **gating,
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
    add_eval_gate_flags(p)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")


def register_translate(sub: Any) -> None:
    """Add ``translate`` to the ``mt`` command group's sub-parsers ``sub``."""
    tr = sub.add_parser("translate", help="translate a file or stdin to stdout (batched)")
    _add_decode_flags(tr)
    tr.add_argument("--input", help="input file (default stdin), one sentence per line")
    tr.add_argument("--output", help="output file (default stdout)")
    tr.add_argument("--input-format", choices=["raw", "tok", "bpe"], default="raw")
    tr.add_argument("--output-format", choices=["detok", "tok", "bpe"], default="detok")
    tr.set_defaults(func=_cmd_translate)


def register_eval(sub: Any) -> None:
    """Add ``eval`` to the ``mt`` command group's sub-parsers ``sub``."""
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
