"""How a run's config is assembled and kept, the same for every task.

Layers, in order (:func:`resolve`): a preset of the task's table (:attr:`ConfigTree.PRESETS`),
a YAML file (the layout of the ``config.yaml`` saved in every run), then dotted overrides
(``--cell`` and the other flags, ``--set section.key=value``). Each layer may use the layout of
an earlier version (:attr:`ConfigTree.LEGACY_KEYS`, moved on read). The resolved config is
saved as :data:`CONFIG_FILE` in the run folder (by the task's trainer) and inside each
checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, TypeVar

from g2lstm.config.sections import (
    build,
    coerce,
    deep_merge,
    field_type,
    migrate,
    set_path,
    to_dict,
)
from g2lstm.config_checks import flatten
from g2lstm.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "ConfigTree",
    "apply_overrides",
    "changed_keys",
    "command_line_config",
    "flag_overrides",
    "load_yaml",
    "parse_assignments",
    "preset_dict",
    "resolve",
]

#: The resolved config of a run, in its folder.
CONFIG_FILE = "config.yaml"

C = TypeVar("C", bound="ConfigTree")


def _yaml() -> ModuleType:
    """PyYAML, of the ``train`` extra: imported when a config is read or written, so that the
    core (and ``g2lstm --help``) imports with torch alone."""
    import yaml

    return yaml


class ConfigTree:
    """Base of a task's whole run config: a frozen dataclass of sections.

    A subclass sets :attr:`PRESETS` (its presets table: name -> nested dicts) and
    :attr:`LEGACY_KEYS` (dotted keys of old layouts -> their new place).
    """

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    LEGACY_KEYS: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_dict(cls: type[C], data: Any, source: str = "config") -> C:
        """Build from nested dicts (old layouts migrated; unknown keys refused)."""
        return build(cls, migrate(data, cls.LEGACY_KEYS), source)

    @classmethod
    def from_preset(cls: type[C], name: str) -> C:
        """The config of preset ``name`` of :attr:`PRESETS`."""
        return cls.from_dict(preset_dict(cls, name), source=f"preset {name}")

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dicts (what ``config.yaml`` and checkpoints store)."""
        return dict(to_dict(self))

    def to_yaml(self) -> str:
        """The resolved config as YAML text."""
        return str(_yaml().safe_dump(self.to_dict(), sort_keys=False))

    def flat(self) -> dict[str, Any]:
        """Every value by its dotted key (``{"model.gates.cell": "g2", ...}``)."""
        return flatten(self.to_dict())

    def merged(self: C, data: Mapping[str, Any] | None) -> C:
        """A copy with the sections/keys of nested ``data`` replaced (validated)."""
        if not data:
            return self
        cls = type(self)
        if not isinstance(data, Mapping):
            raise ConfigError(f"config: expected a mapping, got {type(data).__name__}")
        return cls.from_dict(deep_merge(self.to_dict(), migrate(data, cls.LEGACY_KEYS)))

    def replace(self: C, overrides: Mapping[str, Any]) -> C:
        """A copy with dotted overrides applied (``{"train.seed": 2}``; a new ``cell`` resets
        ``tau``/``noise_p``)."""
        cls = type(self)
        return cls.from_dict(apply_overrides(cls, self.to_dict(), overrides))

    def with_assignments(self: C, items: Iterable[str]) -> C:
        """A copy with ``section.key=value`` strings applied (:func:`parse_assignments`)."""
        return self.replace(parse_assignments(type(self), items))


def preset_dict(cls: type[ConfigTree], name: str) -> dict[str, Any]:
    """A deep copy of preset ``name`` of ``cls.PRESETS`` as nested dicts (its ``preset`` key
    set when the config has one)."""
    if not isinstance(name, str) or name not in cls.PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(cls.PRESETS)}")
    out = deep_merge(migrate(cls.PRESETS[name], cls.LEGACY_KEYS), {})
    if field_type(cls, "preset") is not None:
        out["preset"] = name
    return out


def _resets(cls: type, key: str) -> tuple[str, ...]:
    """Dotted keys that an override of ``key`` resets (a section's ``RESETS``)."""
    section, _, name = key.rpartition(".")
    owner = field_type(cls, section) if section else cls
    resets = getattr(owner, "RESETS", {}) if isinstance(owner, type) else {}
    return tuple(f"{section}.{r}" if section else r for r in resets.get(name, ()))


def apply_overrides(
    cls: type[ConfigTree], tree: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """A copy of nested ``tree`` with dotted ``overrides`` set (``{"model.nhid": 650}``).

    Old keys (``model.cell``) are moved to their new place first; an override of a key a
    section resets others with (``model.gates.cell``) sets those to ``None`` (the section's
    default: the new cell's ``tau`` and ``noise_p``) unless they are overridden too.
    """
    legacy = cls.LEGACY_KEYS
    renamed = {legacy.get(k, k): v for k, v in overrides.items()}
    out = deep_merge(migrate(tree, legacy), {})
    for key in renamed:
        for reset in _resets(cls, key):
            if reset not in renamed:
                set_path(out, reset, None)
    for key, value in renamed.items():
        set_path(out, key, value)
    return out


def parse_assignments(cls: type[ConfigTree], items: Iterable[str]) -> dict[str, Any]:
    """``["model.gates.cell=lstm", "optim.lr=5e-4"]`` -> dotted overrides, values parsed as
    YAML (``0.1``, ``true``, ``null``) except for text fields, which keep the text as written
    (a data folder called ``1e3`` stays a string).

    Raises:
        ConfigError: an item that is not ``key=value``, or a value that is not plain YAML.
    """
    yaml = _yaml()
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected section.key=value (e.g. train.seed=2)")
        try:
            value = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"--set {item!r}: the value is not plain YAML ({why})") from None
        hint = field_type(cls, cls.LEGACY_KEYS.get(key, key))
        if value is not None and hint in (str, str | None):
            value = text
        out[key] = coerce(hint, value)
    return out


def flag_overrides(
    cls: type[ConfigTree],
    flags: Mapping[str, Any],
    keys: Mapping[str, str],
    assignments: Iterable[str] = (),
) -> dict[str, Any]:
    """The dotted overrides of a command line: each flag given (``flags``: name -> value, None
    when not given) under its config key (``keys``: flag name -> dotted key), then the
    ``--set`` items (:func:`parse_assignments`), which win. A new ``--cell`` brings its own
    tau/noise_p (:attr:`GateConfig.RESETS <g2lstm.config.GateConfig.RESETS>`)."""
    out = {key: flags[name] for name, key in keys.items() if flags.get(name) is not None}
    out.update(parse_assignments(cls, assignments))
    return out


def command_line_config(
    cls: type[C], args: Any, keys: Mapping[str, str], *, default_preset: str
) -> C:
    """The config a ``train`` command's parsed arguments describe: ``args.preset`` (else the
    file's, else ``default_preset``), the YAML file ``args.config``, then the flags named in
    ``keys`` and the ``args.set`` items (:func:`flag_overrides`)."""
    overrides = flag_overrides(cls, vars(args), keys, args.set or [])
    return resolve(cls, args.preset, args.config, overrides, default_preset=default_preset)


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML config file into nested dicts (safe loader); ConfigError names the file."""
    yaml = _yaml()
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        why = "; ".join(str(exc).splitlines()[:1]) or type(exc).__name__
        raise ConfigError(f"cannot read config file {p}: {why}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def resolve(
    cls: type[C],
    preset: str | None = None,
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    default_preset: str | None = None,
) -> C:
    """The config of a preset, then a YAML file, then dotted overrides (each optional).

    Without ``preset``, the file's ``preset`` key (when the config has one) or
    ``default_preset`` is used; with neither, the config's defaults.
    """
    file = migrate(load_yaml(path), cls.LEGACY_KEYS) if path is not None else {}
    name = preset or file.get("preset") or default_preset
    base = preset_dict(cls, name) if name else {}
    source = str(path) if path is not None else f"preset {name}" if name else "config"
    tree = apply_overrides(cls, deep_merge(base, file), overrides or {})
    return cls.from_dict(tree, source=source)


def changed_keys(old: ConfigTree, new: ConfigTree, allowed: Iterable[str] = ()) -> list[str]:
    """``"key: old -> new"`` for each dotted key whose value differs between two configs and
    is not in ``allowed`` (what a resumed run may change)."""
    keep = set(allowed)
    before, after = old.flat(), new.flat()
    return [
        f"{key}: {before.get(key)!r} -> {value!r}"
        for key, value in after.items()
        if value != before.get(key) and key not in keep
    ]
