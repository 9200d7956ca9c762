"""The command-line flags the task commands share, and what they set.

``--preset``, ``--config FILE``, ``--cell`` / ``--tau`` / ``--noise-p`` (the gates, described
from :class:`~g2lstm.config.GateConfig`'s cells), ``--set section.key=value`` and
``--print-config`` of every ``train`` command: :func:`train_config` turns the parsed arguments
into the run config of a new run, or of a resumed one (its saved config, :func:`saved_config`,
with the flags applied). ``--eval-gates`` / ``--eval-temperature`` of the evaluation commands:
:func:`add_eval_gate_flags`, read back by :func:`eval_gate_changes` or applied to a loaded model
by :func:`apply_eval_gate_flags`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from g2lstm.config.gates import CELLS, GateConfig
from g2lstm.config.tree import ConfigTree, command_line_config, flag_overrides
from g2lstm.errors import ConfigError
from g2lstm.nn import eval_gate_settings, set_gate_options_
from g2lstm.nn.config import EvalGates, EvalTemperature
from g2lstm.train import CheckpointManager
from g2lstm.train.manifest import read_manifest

__all__ = [
    "GATE_FLAGS",
    "add_config_flags",
    "add_eval_gate_flags",
    "add_override_flags",
    "apply_eval_gate_flags",
    "describe_eval_gates",
    "eval_gate_changes",
    "saved_config",
    "train_config",
]

C = TypeVar("C", bound=ConfigTree)

#: flag dest -> dotted config key of the gate flags (a new ``--cell`` brings its own tau/noise_p)
GATE_FLAGS = {
    "cell": "model.gates.cell",
    "tau": "model.gates.tau",
    "noise_p": "model.gates.noise_p",
}


def _cells_help() -> str:
    cells = [GateConfig.for_cell(c) for c in CELLS]
    return ", ".join(f"{g.cell} (tau={g.tau:g}, p={g.noise_p:g})" for g in cells)


def add_config_flags(
    parser: argparse.ArgumentParser, presets: Iterable[str], *, preset_help: str
) -> None:
    """``--preset``, ``--config FILE`` and the gate flags ``--cell``, ``--tau``, ``--noise-p``."""
    parser.add_argument("--preset", choices=sorted(presets), help=preset_help)
    parser.add_argument("--config", metavar="FILE", help="YAML config (layout of config.yaml)")
    parser.add_argument("--cell", choices=CELLS, help=_cells_help())
    parser.add_argument("--tau", type=float, help="override the cell's temperature")
    parser.add_argument("--noise-p", type=float, help="override the cell's noise probability")


def add_eval_gate_flags(parser: argparse.ArgumentParser, *, gates: bool = True) -> None:
    """``--eval-gates`` (left out when ``gates`` is False) and ``--eval-temperature``: how the
    G2 gates of a loaded model compute at evaluation; unset, the model keeps its own."""
    if gates:
        parser.add_argument(
            "--eval-gates",
            choices=[g.value for g in EvalGates],
            help="G2 gates at evaluation: soft sigmoid(a / tau), hard 1[a >= 0], or sample "
            "(noise kept); default: the model's (soft)",
        )
    parser.add_argument(
        "--eval-temperature",
        choices=[t.value for t in EvalTemperature],
        help="soft gates: sigmoid(a / tau) (divide, the default) or sigmoid(a) (drop, as the "
        "authors' MT code and their LM code without --divide-temp evaluate)",
    )


def eval_gate_changes(args: argparse.Namespace) -> dict[str, str]:
    """The gate options :func:`add_eval_gate_flags` set in ``args`` (for
    ``set_gate_options``); ``{}`` when none was given."""
    keys = ("eval_gates", "eval_temperature")
    return {k: v for k in keys if (v := getattr(args, k, None))}


def apply_eval_gate_flags(model: Any, args: argparse.Namespace) -> dict[str, str | None]:
    """Set the gate options of ``--eval-gates`` / ``--eval-temperature`` on every G2 module of
    ``model`` (in place: a loaded model is used once), and return how it now evaluates
    (:func:`g2lstm.nn.eval_gate_settings`), for the command's report."""
    return eval_gate_settings(set_gate_options_(model, **eval_gate_changes(args)))


def describe_eval_gates(settings: Mapping[str, str | None]) -> str:
    """``"gates soft, eval temperature divide"`` from :func:`apply_eval_gate_flags`' result;
    ``"no G2 gates"`` for a model without G2 modules."""
    if settings.get("eval_gates") is None:
        return "no G2 gates"
    return f"gates {settings['eval_gates']}, eval temperature {settings['eval_temperature']}"


def add_override_flags(parser: argparse.ArgumentParser, *, example: str) -> None:
    """``--progress/--no-progress``, ``--set KEY=VALUE`` (repeatable; ``example`` shows one),
    ``--print-config`` and ``--yes`` (start a run estimated at more than an hour:
    :func:`g2lstm.train.estimate.check_run_cost`)."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tqdm progress bars (default: only on a terminal)",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help=f"any config value, e.g. --set {example} (repeatable)",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="without --preset on a machine with no GPU, start even a run estimated at more "
        "than an hour",
    )


def saved_config(cls: type[C], run_dir: str | Path) -> C | None:
    """The config saved in the latest checkpoint of ``run_dir`` (old layouts migrated), or
    None if it has none."""
    out = Path(run_dir)
    if not (out / "checkpoints").is_dir():
        return None
    latest = CheckpointManager(out, keep_last=None).latest()
    if latest is None:
        return None
    meta = read_manifest(latest)["meta"]
    return cls.from_dict(meta.get("config"), source=f"{latest}/meta.json")


def train_config(
    cls: type[C],
    args: Any,
    keys: Mapping[str, str],
    *,
    default_preset: str,
    saved: C | None = None,
    resume: Callable[[C, dict[str, Any]], C] | None = None,
) -> C:
    """The config of a ``train`` command: a new run's (:func:`command_line_config`), or,
    when resuming (``saved``: the run's :func:`saved_config`), the saved config with the
    flags and ``--set`` applied by ``resume(saved, overrides)`` (default: as they are; a task
    may refuse changes there). ``--preset``/``--config`` are refused when resuming."""
    if saved is None:
        return command_line_config(cls, args, keys, default_preset=default_preset)
    if args.preset or args.config:
        raise ConfigError(
            "--resume continues with the run's saved config; drop --preset/--config (flags "
            "such as --epochs may still be given)"
        )
    overrides = flag_overrides(cls, vars(args), keys, args.set or [])
    return resume(saved, overrides) if resume is not None else saved.replace(overrides)
