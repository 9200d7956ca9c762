"""Nested trainer state <-> named tensors + a JSON skeleton, and state-dict compatibility checks.

An optimizer ``state_dict()`` (or any nested trainer state) mixes tensors with Python values:
``{"state": {0: {"step": tensor(3.), "exp_avg": tensor(...)}}, "param_groups": [{"lr": 1e-3,
"betas": (0.9, 0.999), "params": [0, 1]}]}``. :func:`flatten_state` splits it into a flat
``{name: tensor}`` mapping that safetensors can store and a JSON structure that records
everything else, including dict key types (``0`` stays an ``int``) and tuples;
:func:`unflatten_state` rebuilds the original object exactly. No pickle is involved.

Structure encoding: a tensor becomes ``{"__tensor__": name}``, a dict
``{"__dict__": [[key, value], ...]}``, a tuple ``{"__tuple__": [...]}``, a list a JSON array,
and ``str``/``int``/``float``/``bool``/``None`` stay as they are (numpy scalars are converted
with ``.item()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from g2lstm.errors import CheckpointError

__all__ = ["check_state_dict_compat", "flatten_state", "unflatten_state"]

_SCALARS = (str, int, float, bool, type(None))


def flatten_state(state: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state into named tensors and a JSON-serialisable structure.

    Args:
        state: nested dicts (keys: str/int/float/bool/None), lists and tuples whose leaves are
            tensors or JSON scalars, e.g. ``optimizer.state_dict()``.
        prefix: optional prefix of every tensor name.

    Returns:
        ``(tensors, structure)``: ``tensors`` maps readable dotted names such as
        ``"state.0.exp_avg"`` to the (unchanged, not copied) tensors; ``structure`` is the JSON
        skeleton for :func:`unflatten_state`.

    Raises:
        CheckpointError: a value of another type (module, dtype, Namespace, ...) is found; the
            message gives its location.
    """
    tensors: dict[str, torch.Tensor] = {}

    def name_for(path: str) -> str:
        name, n = path, 1
        while name in tensors:  # keys containing "." may collide with nesting; keep unique
            name, n = f"{path}#{n}", n + 1
        return name

    def walk(obj: Any, path: str, where: str) -> Any:
        if isinstance(obj, torch.Tensor):
            if obj.is_sparse or obj.layout != torch.strided:
                raise CheckpointError(f"cannot store a {obj.layout} tensor at {where}; densify it")
            name = name_for(path or "tensor")
            tensors[name] = obj
            return {"__tensor__": name}
        if isinstance(obj, Mapping):
            items = []
            for key, value in obj.items():
                if not isinstance(key, _SCALARS):
                    raise CheckpointError(
                        f"cannot store dict key {key!r} of type {type(key).__name__} at {where}; "
                        "keys must be str, int, float, bool or None"
                    )
                sub = f"{path}.{key}" if path else str(key)
                items.append([key, walk(value, sub, f"{where}[{key!r}]")])
            return {"__dict__": items}
        if isinstance(obj, (list, tuple)):
            out = [
                walk(v, f"{path}.{i}" if path else str(i), f"{where}[{i}]")
                for i, v in enumerate(obj)
            ]
            return out if isinstance(obj, list) else {"__tuple__": out}
        if isinstance(obj, _SCALARS):
            return obj
        if (
            type(obj).__module__ == "numpy"
            and hasattr(obj, "item")
            and getattr(obj, "ndim", 1) == 0
        ):
            return obj.item()
        raise CheckpointError(
            f"cannot store a value of type {type(obj).__module__}.{type(obj).__qualname__} at "
            f"{where}; trainer state may hold only tensors, dicts, lists, tuples and JSON "
            "scalars (str, int, float, bool, None). Convert it (e.g. to a dict or tensor) first."
        )

    structure = walk(state, prefix.rstrip("."), "trainer_state")
    return tensors, structure


def unflatten_state(tensors: Mapping[str, torch.Tensor], structure: Any) -> Any:
    """Rebuild the nested object described by ``structure`` (see :func:`flatten_state`).

    Raises:
        CheckpointError: the structure refers to a tensor that ``tensors`` lacks, or is
            malformed.
    """

    def build(node: Any) -> Any:
        if isinstance(node, list):
            return [build(v) for v in node]
        if isinstance(node, dict):
            if "__tensor__" in node:
                name = node["__tensor__"]
                if name not in tensors:
                    raise CheckpointError(f"trainer state refers to tensor {name!r}, not stored")
                return tensors[name]
            if "__dict__" in node:
                return {k: build(v) for k, v in node["__dict__"]}
            if "__tuple__" in node:
                return tuple(build(v) for v in node["__tuple__"])
            raise CheckpointError(f"malformed trainer-state structure node {sorted(node)}")
        return node

    return build(structure)


def _shape(t: Any) -> str:
    return str(list(t.shape)) if hasattr(t, "shape") else type(t).__name__


def check_state_dict_compat(
    model: torch.nn.Module | Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    source: str = "checkpoint",
) -> None:
    """Check that ``state`` can be loaded into ``model`` with ``load_state_dict(strict=True)``.

    Args:
        model: the module (or its ``state_dict()``) that will receive the weights.
        state: the weights read from ``source``.
        source: what to call the weights in the message (typically the checkpoint path).

    Raises:
        CheckpointError: listing, in one message, every missing key, every unexpected key and
            every shape mismatch (``name: checkpoint [a, b] vs model [c, d]``), with a hint
            when the keys carry a ``torch.compile`` (``_orig_mod.``) or DDP (``module.``)
            prefix.
    """
    expected = model.state_dict() if isinstance(model, torch.nn.Module) else model
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        k
        for k in expected
        if k in state and tuple(getattr(state[k], "shape", ())) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    lines = [f"the weights in {source} do not fit the model:"]
    if missing:
        lines.append(f"  missing from {source} ({len(missing)}):")
        lines += [f"    {k}: model {_shape(expected[k])}" for k in missing]
    if unexpected:
        lines.append(f"  unexpected in {source} ({len(unexpected)}):")
        lines += [f"    {k}: checkpoint {_shape(state[k])}" for k in unexpected]
    if mismatched:
        lines.append(f"  shape mismatch ({len(mismatched)}):")
        lines += [
            f"    {k}: checkpoint {_shape(state[k])} vs model {_shape(expected[k])}"
            for k in mismatched
        ]
    for pre, what in (("_orig_mod.", "a torch.compile'd"), ("module.", "a DDP-wrapped")):
        if unexpected and all(k.startswith(pre) for k in unexpected):
            lines.append(
                f"hint: the checkpoint keys start with {pre!r}: it was saved from {what} model; "
                "save the unwrapped module's state_dict() (or strip the prefix)."
            )
    lines.append(
        "hint: rebuild the model from the configuration stored with the checkpoint, and check "
        "that the vocabulary / language direction is the one it was trained with."
    )
    raise CheckpointError("\n".join(lines))
