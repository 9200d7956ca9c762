"""Encoding a compressed model's tensors for :func:`~g2lstm.compress.format.save_compressed`.

The writing side of the file layout described in :mod:`g2lstm.compress.format`: a block's
payload (checked to decode to the model's values, re-encoded otherwise), integer codes packed
to ``width`` bits as ``(code - offset) / stride``, the rows no block covers (``P::rest``), the
dense tensors (shared storage stored once) and the atomic write of the ``.safetensors`` file.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from g2lstm.errors import ConfigError
from g2lstm.safe_files import publish_exclusive

from .codecs import Payload, code_width, get_codec, quant_offset
from .packing import pack_codes
from .report import BlockReport

__all__ = [
    "atomic_save",
    "code_layout",
    "encode_payload",
    "payload_for",
    "store_dense",
    "store_rest",
]


def code_layout(method: str, params: Mapping[str, Any], codes: torch.Tensor) -> dict[str, int]:
    """``offset``, ``stride``, ``width`` with stored value ``(code - offset) / stride``."""
    if method == "quantize":
        bits = int(params["bits"])
        return {"offset": quant_offset(bits), "stride": 2 if bits == 1 else 1, "width": bits}
    offset, width = code_width(codes)
    return {"offset": offset, "stride": 1, "width": width}


def payload_for(br: BlockReport, current: torch.Tensor, tolerance: float) -> Payload:
    """A payload that decodes to ``current``: the report's, else a re-encoding of it."""
    codec = get_codec(br.method)
    codec.check(br.params, br.block)
    payload = br.payload
    if payload is not None and torch.equal(
        codec.decode(payload, br.params, current.dtype), current
    ):
        return payload
    payload = codec.encode(current, br.params)
    decoded = codec.decode(payload, br.params, current.dtype)
    if torch.equal(decoded, current):
        return payload
    norm = torch.linalg.matrix_norm(current.double()).item() or 1.0
    diff = torch.linalg.matrix_norm(current.double() - decoded.double()).item() / norm
    if diff > tolerance:
        raise ConfigError(
            f"block {br.block.name!r} is not {br.method}-compressed with {dict(br.params)} "
            f"(relative distance {diff:.3g} to its projection); compress the model with this "
            "report's settings, or call structure_projector(report)(model) after fine-tuning"
        )
    warnings.warn(
        f"block {br.block.name!r} was re-encoded: the file differs from the model by a relative "
        f"{diff:.2g}; pass the report returned by the compression function or projector for a "
        "bit-exact file",
        UserWarning,
        stacklevel=3,
    )
    return payload


def encode_payload(
    key: str, br: BlockReport, payload: Payload, tensors: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """Add ``payload``'s parts to ``tensors`` as ``key + part`` (codes packed); return the
    storage description (key, shape and, for codes, offset/stride/width) per part."""
    storage: dict[str, Any] = {}
    for part, tensor in payload.items():
        name = f"{key}{part}"
        if tensor.is_floating_point():
            tensors[name] = tensor.detach().cpu().contiguous()
            storage[part] = {"key": name, "shape": list(tensor.shape)}
        else:
            layout = code_layout(br.method, br.params, tensor)
            shifted = (tensor.to(torch.int64) - layout["offset"]) // layout["stride"]
            tensors[name] = pack_codes(shifted, layout["width"])
            storage[part] = {"key": name, "shape": list(tensor.shape), **layout}
    return storage


def store_rest(
    name: str, entry: dict[str, Any], param: torch.Tensor, tensors: dict[str, torch.Tensor]
) -> None:
    """Store the rows of ``param`` no block covers as ``name::rest``; list them in ``entry``."""
    covered = sorted((b["block"]["start"], b["block"]["stop"]) for b in entry["blocks"])
    rest, row = [], 0
    for start, stop in [*covered, (param.shape[0], param.shape[0])]:
        if start > row:
            rest.append([row, start])
        row = max(row, stop)
    entry["rest"] = rest
    if rest:
        rows = torch.cat([param[a:b] for a, b in rest]).detach().cpu().contiguous()
        tensors[f"{name}::rest"] = rows.clone()


def store_dense(
    state: Mapping[str, torch.Tensor], skip: set[str], tensors: dict[str, torch.Tensor]
) -> dict[str, str]:
    """Store every tensor not in ``skip`` as is, shared ones once; return ``{alias: name}``."""
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, int, tuple[int, ...], torch.dtype], str] = {}
    for name, tensor in state.items():
        if name in skip:
            continue
        key = (tensor.data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tensor.dtype)
        if tensor.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        if name in tensors:
            raise ConfigError(f"tensor name {name!r} collides with a compressed-storage key")
        tensors[name] = tensor.detach().cpu().contiguous().clone()
    return aliases


def atomic_save(
    tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: Path, exclusive: bool = False
) -> None:
    """Write ``tensors`` and string ``metadata`` to ``path`` as safetensors (temp file, fsync,
    rename: a crash leaves the old file or none, never a partial one). With ``exclusive`` the
    file is published only if ``path`` does not exist (link-then-unlink; OutputError if it
    does), so of two concurrent writers exactly one succeeds."""
    from safetensors.torch import save_file

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        if exclusive:
            publish_exclusive(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
