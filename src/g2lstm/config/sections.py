"""Typed config sections: frozen dataclasses, nested, built from and turned into plain dicts.

A run config is a tree of frozen dataclasses (:class:`g2lstm.config.ConfigTree` at the root;
a field whose type is a dataclass is a nested section). :func:`build` makes one from nested
dicts (a saved ``config.yaml``, a preset, a checkpoint's metadata): unknown keys are refused
with the list of valid ones, old layouts are moved first (:func:`migrate`), and each section
validates its values in ``__post_init__`` (:func:`check_field` names the value
``section.key`` in errors).
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

from g2lstm.config_checks import flatten
from g2lstm.errors import ConfigError

__all__ = [
    "build",
    "check_field",
    "coerce",
    "deep_merge",
    "field_type",
    "migrate",
    "set_field",
    "set_path",
    "to_dict",
]

T = TypeVar("T")


def set_field(obj: object, name: str, value: object) -> None:
    """Set field ``name`` of a frozen dataclass (in its ``__post_init__``)."""
    object.__setattr__(obj, name, value)


def check_field(
    obj: Any, name: str, check: Callable[..., object], *args: Any, **kwargs: Any
) -> None:
    """Run ``check`` (:mod:`g2lstm.config_checks`) on field ``name`` of a frozen section, named
    ``<section>.<name>`` in errors (``obj.section``), and store the value it returns."""
    set_field(obj, name, check(f"{obj.section}.{name}", getattr(obj, name), *args, **kwargs))


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _section_type(hint: Any) -> type | None:
    """The dataclass of a nested-section field's type hint, else None."""
    return hint if isinstance(hint, type) and is_dataclass(hint) else None


def field_type(cls: type, path: str) -> Any:
    """The type hint of dotted ``path`` in config class ``cls`` (None: no such field)."""
    hint: Any = cls
    for part in path.split("."):
        section = _section_type(hint)
        if section is None:
            return None
        hint = _hints(section).get(part)
        if hint is None:
            return None
    return hint


def _wants(hint: Any, kind: type) -> bool:
    """Whether a field's type hint admits ``kind`` (``float``, ``float | None``, ...)."""
    if hint is kind:
        return True
    return isinstance(hint, types.UnionType) and kind in typing.get_args(hint)


def coerce(hint: Any, value: Any) -> Any:
    """YAML 1.1 reads ``5e-4`` as a string: a numeric string becomes a float where a float
    is expected."""
    if isinstance(value, str) and _wants(hint, float):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _check_keys(data: Mapping[str, Any], valid: set[str], where: str) -> None:
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: "
            f"{', '.join(sorted(valid))}"
        )


def build(cls: type[T], data: Any, where: str = "config") -> T:
    """An instance of config section ``cls`` from nested dicts; missing keys take defaults,
    ``None`` for a nested section means all of its defaults.

    Raises:
        ConfigError: not a mapping, an unknown key (listing the valid ones), or a bad value.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = _hints(cls)
    _check_keys(data, {f.name for f in fields(cls)}, where)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        section = _section_type(hints[key])
        if section is None:
            kwargs[key] = coerce(hints[key], value)
        elif value is not None:
            kwargs[key] = build(section, value, f"{where}: {key}")
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """Nested plain dicts of a config tree (JSON/YAML ready; tuples become lists)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    return obj


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of nested ``base`` with the keys of ``extra`` replaced (sections merged)."""
    out = copy.deepcopy(dict(base))
    for key, value in (extra or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _pop(tree: dict[str, Any], path: list[str]) -> tuple[bool, Any]:
    node: Any = tree
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and path[-1] in node:
        return True, node.pop(path[-1])
    return False, None


def set_path(tree: dict[str, Any], path: str, value: Any, where: str = "override") -> None:
    """Set dotted ``path`` in nested dicts ``tree``, making the sections on the way."""
    *sections, name = path.split(".")
    node = tree
    for i, part in enumerate(sections):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{where} {path!r}: {'.'.join(sections[: i + 1])!r} is not a section")
        node = child
    node[name] = value


def migrate(data: Any, legacy: Mapping[str, str]) -> Any:
    """A copy of nested ``data`` with the old dotted keys of ``legacy`` (old -> new) moved to
    their new place (a value already at the new place wins); anything else is returned as it
    is."""
    if not isinstance(data, Mapping) or not legacy:
        return data
    out = copy.deepcopy(dict(data))
    for old, new in legacy.items():
        found, value = _pop(out, old.split("."))
        if found and new not in flatten(out):
            set_path(out, new, value, "config key")
    return out
