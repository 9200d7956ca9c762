"""The command-line flags every task's ``train`` command shares, and what they set.

``--preset``, ``--config FILE``, ``--cell`` / ``--tau`` / ``--noise-p`` (the gates, described
from :class:`~g2lstm.config.GateConfig`'s cells), ``--set section.key=value`` and
``--print-config``; :func:`~g2lstm.config.command_line_config` turns the parsed arguments into
the run config.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from g2lstm.config.gates import CELLS, GateConfig

__all__ = ["GATE_FLAGS", "add_config_flags", "add_override_flags"]

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


def add_override_flags(parser: argparse.ArgumentParser, *, example: str) -> None:
    """``--set KEY=VALUE`` (repeatable; ``example`` shows one), ``--print-config`` and
    ``--yes`` (start a run estimated at more than an hour:
    :func:`g2lstm.train.estimate.check_run_cost`)."""
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
