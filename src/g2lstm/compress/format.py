"""A compressed model as one ``.safetensors`` file.

Layout (format version 1). Tensors:

- every tensor that is not compressed, under its own name (tensors sharing storage, such as
  tied embeddings, stored once; the others listed in the ``aliases`` metadata);
- per compressed block ``B`` of parameter ``P`` (key prefix ``"P::gate.start:stop::"``):
  ``low_rank``: ``U`` ``(m, r)`` and ``V`` ``(r, n)`` (float32 or float16);
  ``round``: ``codes``, the packed unsigned values ``code - offset``;
  ``quantize``: ``codes`` (``(q - offset) / stride``, ``bits`` bits each) and ``scales``
  float32 ``(m, 1)`` (per row) or ``(1, 1)``;
- ``"P::rest"``: the rows of ``P`` no block covers (e.g. the g and o gates), concatenated.

String metadata, each value JSON: ``format`` (``"g2lstm-compressed"``), ``format_version``,
``config`` (the caller's model config, or null), ``compressed`` (per parameter: shape, dtype,
blocks with method, params and storage, rest rows), ``aliases``, ``order`` (state-dict key
order) and ``report`` (:meth:`CompressionReport.to_dict`).

:func:`load_compressed` rebuilds a dense state dict; build the model from ``meta["config"]``
and ``load_state_dict`` it. The values are bit-identical to the compressed model in memory.
How each block and dense tensor is encoded for writing: :mod:`g2lstm.compress.storage`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from g2lstm.errors import CheckpointError, ConfigError
from g2lstm.limits import ENV_MAX_PARAMETERS, check_limit, max_parameters
from g2lstm.train.tensor_header import read_header

from .blocks import Block, model_state, reject_overlaps
from .codecs import Payload, full_params, get_codec
from .packing import unpack_codes
from .report import CompressionReport
from .storage import atomic_save, encode_payload, payload_for, store_dense, store_rest

FORMAT_NAME = "g2lstm-compressed"
FORMAT_VERSION = 1
DENSE_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


def _as_report(report_or_spec: object) -> CompressionReport:
    if isinstance(report_or_spec, CompressionReport):
        return report_or_spec
    if isinstance(report_or_spec, Mapping):
        return CompressionReport.from_dict(report_or_spec)
    if isinstance(report_or_spec, Sequence) and not isinstance(report_or_spec, str):
        return CompressionReport.from_dict({"blocks": list(report_or_spec)})
    raise ConfigError(
        "report_or_spec must be a CompressionReport, its to_dict() or a list of block dicts, "
        f"got {type(report_or_spec).__name__}"
    )


def save_compressed(
    path: str | os.PathLike[str],
    model_or_state_dict: nn.Module | Mapping[str, torch.Tensor],
    report_or_spec: CompressionReport | Mapping[str, Any] | Sequence[Mapping[str, Any]],
    config: Mapping[str, Any] | None = None,
    *,
    tolerance: float = 1e-5,
    overwrite: bool = True,
) -> Path:
    """Write the compressed model to ``path`` (one ``.safetensors`` file, written atomically).

    Args:
        path: output file; its directory must exist.
        model_or_state_dict: the *compressed* model (output of ``low_rank``/``round_clip``/
            ``quantize``, possibly fine-tuned and re-projected) or its state dict.
        report_or_spec: the :class:`CompressionReport` of that compression (its payloads give a
            bit-exact file), or a spec without payloads (``report.to_dict()`` or a list of
            block dicts), in which case each block is re-encoded from the model's values.
        config: JSON-able model config stored as ``meta["config"]`` for the loader.
        tolerance: largest relative Frobenius distance accepted between a block and its
            re-encoding when the payload does not match (a warning is issued).
        overwrite: replace an existing ``path``; ``False`` publishes the file only if
            ``path`` does not exist when the write completes (exclusive, race-free).

    Returns:
        The path written.

    Raises:
        ConfigError: a block is missing from the model or not on its compressed structure,
            config not JSON-serialisable, or the directory does not exist.
        OutputError: ``overwrite=False`` and ``path`` exists (it is left untouched).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write {path}: directory {path.parent} does not exist")
    report = _as_report(report_or_spec)
    reject_overlaps([b.block for b in report.blocks])
    state, described = model_state(model_or_state_dict)
    try:
        config_json = json.dumps(None if config is None else dict(config))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config for {path} must be JSON-serialisable: {exc}") from exc
    tensors: dict[str, torch.Tensor] = {}
    compressed: dict[str, dict[str, Any]] = {}
    for br in report.blocks:
        br = replace(br, params=full_params(br.method, br.params))
        param = state.get(br.block.param)
        if (
            param is None
            or param.dim() != 2
            or param.shape[0] < br.block.stop
            or (param.shape[1] != br.block.n_cols)
        ):
            raise ConfigError(
                f"block {br.block.name!r} of shape {br.block.shape} does not fit the {described}"
            )
        entry = compressed.setdefault(
            br.block.param,
            {
                "shape": list(param.shape),
                "dtype": str(param.dtype).removeprefix("torch."),
                "blocks": [],
            },
        )
        if entry["dtype"] not in DENSE_DTYPES:
            raise ConfigError(f"{br.block.param!r} has unsupported dtype {param.dtype}")
        payload = payload_for(br, param[br.block.rows].detach(), tolerance)
        key = f"{br.block.param}::{br.block.gate}.{br.block.start}:{br.block.stop}::"
        entry["blocks"].append(
            {
                "block": br.block.to_dict(),
                "method": br.method,
                "params": dict(br.params),
                "storage": encode_payload(key, br, payload, tensors),
            }
        )
    for name, entry in compressed.items():
        store_rest(name, entry, state[name], tensors)
    aliases = store_dense(state, set(compressed), tensors)
    compact = {"separators": (",", ":")}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "config": config_json,
        "compressed": json.dumps(compressed, **compact),
        "aliases": json.dumps(aliases, **compact),
        "order": json.dumps(list(state), **compact),
        "report": json.dumps(report.to_dict(), **compact),
    }
    atomic_save(tensors, metadata, path, exclusive=not overwrite)
    return path


def _fail(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: {what}")


def _read_payload(path: Path, handle: Any, block: Block, spec: Mapping[str, Any]) -> Payload:
    payload: Payload = {}
    for part, info in spec["storage"].items():
        shape = tuple(int(s) for s in info["shape"])
        tensor = handle.get_tensor(info["key"])
        if "width" in info:
            count = 1
            for s in shape:
                count *= s
            try:
                codes = unpack_codes(tensor, int(info["width"]), count)
            except ConfigError as exc:
                raise _fail(path, f"tensor {info['key']!r}: {exc}") from exc
            tensor = (codes * int(info["stride"]) + int(info["offset"])).reshape(shape)
        elif tuple(tensor.shape) != shape:
            raise _fail(
                path,
                f"tensor {info['key']!r} has shape {tuple(tensor.shape)}, metadata says {shape}",
            )
        payload[part] = tensor
    method, params = spec["method"], spec["params"]
    m, n = block.shape
    expected: dict[str, tuple[int, ...]] = {}
    if method == "low_rank":
        r = int(params["rank"])
        if r < 1:
            raise _fail(path, f"block {block.name!r}: rank {r} must be >= 1")
        expected = {"U": (m, r), "V": (r, n)}
    elif method == "round":
        expected = {"codes": (m, n)}
    elif method == "quantize":
        expected = {"codes": (m, n), "scales": (m if params["per"] == "row" else 1, 1)}
    for part, shape in expected.items():
        if part not in payload or tuple(payload[part].shape) != shape:
            got = tuple(payload[part].shape) if part in payload else "missing"
            raise _fail(path, f"block {block.name!r}: {part} should have shape {shape}, got {got}")
    return payload


def _meta(path: Path, metadata: Mapping[str, str] | None) -> dict[str, Any]:
    if not metadata or metadata.get("format") != FORMAT_NAME:
        raise _fail(
            path,
            f"no {FORMAT_NAME!r} metadata; not written by save_compressed "
            "(plain weights load with safetensors.torch.load_file)",
        )
    try:
        version = int(metadata["format_version"])
        parsed = {k: json.loads(metadata[k]) for k in ("config", "compressed", "aliases", "order")}
        parsed["report"] = json.loads(metadata.get("report", "null"))
    except (KeyError, ValueError) as exc:
        raise _fail(path, f"corrupt compression metadata ({exc})") from exc
    if version > FORMAT_VERSION:
        raise _fail(
            path,
            f"format version {version} is newer than this g2lstm reads "
            f"({FORMAT_VERSION}); upgrade g2lstm",
        )
    if version < 1:
        raise _fail(path, f"invalid format version {version}")
    parsed["format_version"] = version
    return parsed


def compressed_layout(
    path: str | os.PathLike[str],
) -> tuple[dict[str, tuple[int, ...]], dict[str, Any]]:
    """``(shapes, meta)``: name -> shape of every dense tensor :func:`load_compressed` would
    rebuild (state-dict order) and the parsed metadata (as :func:`load_compressed` returns
    it), read from the header only: nothing is decoded or allocated.

    Raises:
        CheckpointError: not a valid compressed file, or a metadata shape that is malformed,
            does not cover its rows exactly once, or adds up to more than
            :func:`g2lstm.limits.max_parameters` elements.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "no such file")
    header = read_header(path)
    try:
        meta = _meta(path, header.metadata)
        shapes: dict[str, tuple[int, ...]] = {}
        for name, entry in meta["compressed"].items():
            rows, cols = (int(s) for s in entry["shape"])
            spans = [(int(b["block"]["start"]), int(b["block"]["stop"])) for b in entry["blocks"]]
            spans += [(int(a), int(b)) for a, b in entry["rest"]]
            edges = [0] + [e for span in sorted(spans) for e in span] + [rows]
            tiled = all(a == b for a, b in zip(edges[::2], edges[1::2]))
            if rows < 0 or cols < 0 or not tiled or any(a > b for a, b in spans):
                raise _fail(path, f"rows of {name!r} are not each stored exactly once")
            shapes[name] = (rows, cols)
        for name in meta["order"]:
            target = meta["aliases"].get(name, name)
            if name not in shapes:
                shapes[name] = shapes[target] if target in shapes else header.shapes[target]
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _fail(path, f"inconsistent compressed file ({type(exc).__name__}: {exc})") from None
    total = sum(math.prod(s) for n, s in shapes.items() if n not in meta["aliases"])
    check_limit(
        total,
        max_parameters(),
        f"the weight count of {path}",
        f"set {ENV_MAX_PARAMETERS} to a larger count",
    )
    return {name: shapes[name] for name in meta["order"]}, meta


def load_compressed(
    path: str | os.PathLike[str],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by :func:`save_compressed` and rebuild dense tensors.

    Returns:
        ``(state_dict, meta)``: the dense state dict (CPU, keys in the original order, values
        bit-identical to the compressed model) and ``meta`` with ``format_version``, ``config``
        (as saved, or None), ``compressed`` (per-parameter storage description), ``aliases``,
        ``order`` and ``report`` (the saved report dict).

    Raises:
        CheckpointError: the file is missing, not safetensors, lacks our metadata, has a newer
            format version, or holds tensors of the wrong shape (the message names the file).
    """
    from safetensors import safe_open

    path = Path(path)
    compressed_layout(path)  # sizes checked before anything is allocated
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = _meta(path, handle.metadata())
            state = _load_tensors(path, handle, meta)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, f"inconsistent compressed file ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:
        raise _fail(
            path, f"not a readable safetensors file, truncated or corrupt? ({exc})"
        ) from exc
    return state, meta


def _load_tensors(path: Path, handle: Any, meta: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    keys = set(handle.keys())
    state: dict[str, torch.Tensor] = {}
    for name, entry in meta["compressed"].items():
        if entry["dtype"] not in DENSE_DTYPES:
            raise _fail(path, f"{name!r}: unsupported dtype {entry['dtype']!r}")
        rows, cols = (int(s) for s in entry["shape"])
        dense = torch.empty(rows, cols, dtype=DENSE_DTYPES[entry["dtype"]])
        filled = torch.zeros(rows, dtype=torch.int64)
        for spec in entry["blocks"]:
            block = Block.from_dict(spec["block"])
            if block.stop > rows or block.n_cols != cols:
                raise _fail(path, f"block {block.name!r} does not fit {name!r} {(rows, cols)}")
            payload = _read_payload(path, handle, block, spec)
            dense[block.rows] = get_codec(spec["method"]).decode(
                payload, spec["params"], dense.dtype
            )
            filled[block.rows] += 1
        if entry["rest"]:
            rest = handle.get_tensor(f"{name}::rest")
            sizes = [b - a for a, b in entry["rest"]]
            if tuple(rest.shape) != (sum(sizes), cols):
                raise _fail(
                    path,
                    f"{name}::rest has shape {tuple(rest.shape)}, expected {(sum(sizes), cols)}",
                )
            for (a, b), part in zip(entry["rest"], rest.split(sizes)):
                dense[a:b] = part
                filled[a:b] += 1
        if not bool((filled == 1).all()):
            raise _fail(path, f"rows of {name!r} are not each stored exactly once")
        state[name] = dense
    for name in meta["order"]:
        if name in state or name in meta["aliases"]:
            continue
        if name not in keys:
            raise _fail(path, f"tensor {name!r} is missing")
        state[name] = handle.get_tensor(name)
    for name, target in meta["aliases"].items():
        state[name] = state[target]
    return {name: state[name] for name in meta["order"]}
