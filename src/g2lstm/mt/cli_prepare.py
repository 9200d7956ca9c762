"""``g2lstm mt prepare``: tokenise, learn BPE and build the vocabularies of a translation corpus.

Writes the prepared folder that ``g2lstm mt train --data`` reads (Multi30k, IWSLT'14 De-En or a
folder of ``{train,valid,test}.{src,tgt}`` files). Heavy imports happen when the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from g2lstm.errors import ConfigError

__all__ = ["register_prepare"]


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


def register_prepare(sub: Any) -> None:
    """Add ``prepare`` to the ``mt`` command group's sub-parsers ``sub``."""
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
