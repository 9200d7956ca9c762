"""One configuration machinery for every task: typed sections, presets, YAML, overrides.

- :mod:`g2lstm.config.sections`: frozen dataclass sections built from nested dicts (unknown
  keys refused, old layouts migrated) and back;
- :mod:`g2lstm.config.tree`: :class:`ConfigTree`, the base of a task's run config, and how it
  is assembled (:func:`resolve`: preset, YAML file, ``--set`` overrides) and saved
  (``config.yaml``);
- :mod:`g2lstm.config.gates`: :class:`GateConfig`, the ``model.gates`` section every task's
  model config nests, the one source of the three compared cells and their labels.
- :mod:`g2lstm.config.flags`: the flags every task's ``train`` command shares (``--preset``,
  ``--config``, ``--cell``/``--tau``/``--noise-p``, ``--set``, ``--print-config``, ``--yes``).

The language model (:class:`g2lstm.lm.config.RunConfig`) and translation
(:class:`g2lstm.mt.config.MTConfig`) configs are both ``ConfigTree`` subclasses.
"""

from __future__ import annotations

from g2lstm.config.gates import CELL_LABELS, CELLS, LEGACY_GATE_KEYS, GateConfig, cell_label
from g2lstm.config.sections import build, check_field, deep_merge, migrate, set_field, to_dict
from g2lstm.config.tree import (
    CONFIG_FILE,
    ConfigTree,
    apply_overrides,
    changed_keys,
    command_line_config,
    flag_overrides,
    load_yaml,
    parse_assignments,
    preset_dict,
    resolve,
)

__all__ = [
    "CELLS",
    "CELL_LABELS",
    "CONFIG_FILE",
    "LEGACY_GATE_KEYS",
    "ConfigTree",
    "GateConfig",
    "apply_overrides",
    "build",
    "cell_label",
    "changed_keys",
    "check_field",
    "command_line_config",
    "deep_merge",
    "flag_overrides",
    "load_yaml",
    "migrate",
    "parse_assignments",
    "preset_dict",
    "resolve",
    "set_field",
    "to_dict",
]
