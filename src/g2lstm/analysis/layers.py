"""Which layers of a model the analysis records, in depth order, and their labels.

A layer is ``(module name, layer index)`` of a G2 module (see :func:`g2lstm.nn.g2_modules`);
the two directions of a bidirectional module share one entry.
"""

from __future__ import annotations

from torch import nn

from g2lstm.errors import ConfigError
from g2lstm.nn import g2_modules

__all__ = ["layer_names", "pick_layer", "recorded_layers"]


def recorded_layers(model: nn.Module) -> list[tuple[str, int]]:
    """``(module name, layer)`` of every recorded layer, in module (= depth) order."""
    return [(n, k) for n, m in g2_modules(model) for k in range(getattr(m, "num_layers", 1))]


def layer_names(model: nn.Module) -> list[str]:
    """A label per :func:`recorded_layers` entry: ``"module[k]"``, plus ``" (bidirectional)"``
    for a bidirectional module (its two directions are pooled in the per-layer figures)."""
    mods = dict(g2_modules(model))
    return [
        f"{n}[{k}]" + (" (bidirectional)" if getattr(mods[n], "bidirectional", False) else "")
        for n, k in recorded_layers(model)
    ]


def pick_layer(model: nn.Module, index: int, name: str) -> tuple[str, int]:
    """Entry ``index`` of :func:`recorded_layers` of model ``name``; a clear error if absent."""
    layers = recorded_layers(model)
    if index >= len(layers):
        raise ConfigError(f"layer={index} but model {name!r} has only {len(layers)} layers")
    return layers[index]
