"""The ``g2lstm`` command line.

Each command group lives beside the code it drives and exposes ``register(subparsers)``;
this module only assembles them. The command line is read twice: first with a placeholder
per group (names and one-line help from :data:`COMMANDS`, nothing imported), which answers
``g2lstm``, ``--help``, ``--version`` and top-level mistakes without loading torch; then, once
the command is known, with that group's real parser alone. Errors raised on purpose
(:class:`~g2lstm.errors.G2LSTMError`) are printed as one line and exit with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Collection, Sequence
from typing import NoReturn

from g2lstm import __version__
from g2lstm.errors import EXIT_INTERRUPTED, ConfigError, G2LSTMError

#: (command, module with ``register(subparsers)``, one-line help)
COMMANDS: list[tuple[str, str, str]] = [
    ("lm", "g2lstm.lm.cli", "language modelling: train, eval, generate, truncate"),
    ("mt", "g2lstm.mt.cli", "machine translation: prepare, train, translate, eval"),
    (
        "compress",
        "g2lstm.compress.cli",
        "compress a checkpoint's gate weights (SVD, rounding, bits)",
    ),
    ("analyze", "g2lstm.analysis.cli", "gate histograms, heatmaps, sensitivity, hard gates"),
    ("bench", "g2lstm.bench.cli", "speed benchmarks (bench layer)"),
    ("reproduce", "g2lstm.reproduce.cli", "run the paper's study and write a report"),
]


class _UsageError(ConfigError):
    """A command line argparse refused (unknown choice, missing or malformed argument)."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors become one ``g2lstm: error:`` line.

    Sub-command parsers are made with the parent's class, so every level raises
    :class:`_UsageError` instead of printing the whole usage text and calling ``sys.exit``.
    """

    def error(self, message: str) -> NoReturn:
        # main() prints "g2lstm: error: "; name the sub-command after it, not "g2lstm" again
        sub = self.prog.partition(" ")[2]
        where = f"{sub}: " if sub else ""
        raise _UsageError(f"{where}{message}; see '{self.prog} --help'")


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The ``g2lstm`` parser with the real sub-parsers of ``commands`` (default: every group)
    and a placeholder for the other groups (their name and help line, no import)."""
    parser = _Parser(
        prog="g2lstm",
        description="G2-LSTM (Gumbel-gate LSTM, Li et al. ICML 2018): train, evaluate, "
        "compress and analyse LSTMs with binary-valued gates.",
    )
    parser.add_argument("--version", action="version", version=f"g2lstm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument(
        "--progress-every",
        type=float,
        metavar="SECONDS",
        help="when stderr is not a terminal, print a progress line (step, epoch, loss/ppl, "
        "tokens/s, ETA) every SECONDS; 0 turns them off (default: $G2LSTM_PROGRESS_EVERY, "
        "else 30)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_ in COMMANDS:
        if commands is not None and name not in commands:
            # add_help=False: "g2lstm lm --help" must reach the real parser of "lm"
            sub.add_parser(name, help=help_, add_help=False)
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and (e.name == module or module.startswith(e.name + ".")):
                continue  # command not built into this version
            _missing_extra(sub, name, help_, e)
            continue
        mod.register(sub)
    return parser


def _missing_extra(sub, name: str, help_: str, err: ModuleNotFoundError) -> None:
    """Register a placeholder that explains which optional dependency is missing."""
    p = sub.add_parser(name, help=f"{help_} [needs: pip install 'g2lstm[all]']")

    def run(args: argparse.Namespace) -> int:
        raise G2LSTMError(
            f"'g2lstm {name}' needs the optional package {err.name!r}; "
            "install it with: pip install 'g2lstm[all]'"
        )

    p.set_defaults(func=run)


def _one_line(error: BaseException) -> str:
    """The message on one line: a multi-line list (e.g. every mismatched tensor) joined by '; '."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(commands=())
        known, _ = parser.parse_known_args(argv)
        if known.command is None:
            args = parser.parse_args(argv)  # no command: refuse what is left over
        else:
            parser = build_parser(commands=(known.command,))
            args = parser.parse_args(argv)
    except _UsageError as e:
        print(f"g2lstm: error: {_one_line(e)}", file=sys.stderr)
        return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        if args.progress_every is not None:
            # imported here: g2lstm.train needs the `train` extra, `g2lstm --help` does not
            from g2lstm.train.progress import set_progress_every

            set_progress_every(args.progress_every)
        return int(args.func(args) or 0)
    except G2LSTMError as e:
        if args.debug:
            raise
        print(f"g2lstm: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("g2lstm: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (MemoryError, RuntimeError) as e:
        # a size that passed every cap but not the machine: one line, not a traceback
        if args.debug or not _out_of_memory(e):
            raise
        print(
            f"g2lstm: error: out of memory ({_one_line(e)[:200] or type(e).__name__}); use "
            "smaller sizes (model, --batch-size, --beam) or a machine with more memory",
            file=sys.stderr,
        )
        return 2


def _out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure (Python's MemoryError, or PyTorch's
    RuntimeError / torch.OutOfMemoryError from the CPU or GPU allocator)."""
    if isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    return "out of memory" in text or "can't allocate memory" in text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
