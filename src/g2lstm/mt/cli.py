"""``g2lstm mt prepare|train|translate|eval``: the machine-translation commands.

Each command lives in a module of its own, with its flags: :mod:`~g2lstm.mt.cli_prepare`,
:mod:`~g2lstm.mt.cli_train` (the layered configuration of ``train`` and ``--resume``) and
:mod:`~g2lstm.mt.cli_decode` (``translate`` and ``eval``); this one assembles the ``mt``
command group.
"""

from __future__ import annotations

import argparse
from typing import Any

from g2lstm.mt.cli_decode import register_eval, register_translate
from g2lstm.mt.cli_prepare import register_prepare
from g2lstm.mt.cli_train import register_train

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``mt`` command group to the top-level ``g2lstm`` parser."""
    mt = subparsers.add_parser(
        "mt",
        help="machine translation: prepare, train, translate, eval",
        description="Attention encoder-decoder with G2-LSTM layers (paper §4.1.2).",
    )
    sub = mt.add_subparsers(dest="mt_command", metavar="COMMAND")
    register_prepare(sub)
    register_train(sub)
    register_translate(sub)
    register_eval(sub)

    def _help(args: argparse.Namespace) -> int:
        mt.print_help()
        return 2

    mt.set_defaults(func=_help)
