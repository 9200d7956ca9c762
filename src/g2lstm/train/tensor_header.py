"""Read and check the header of a ``.safetensors`` file before any tensor is loaded.

A safetensors file is ``[8-byte little-endian header length N][N bytes of JSON][data]``; the
JSON maps every tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets
into the data part) plus an optional ``"__metadata__"`` of string pairs. :func:`read_header`
checks all of it against the file's size, so whatever the bytes are, the result is either a
header whose tensors really fit in the file or one :class:`~g2lstm.errors.CheckpointError`
line (never a parser panic, a huge allocation or a deep recursion). Callers use the shapes to
compare a model configuration with the stored weights before building the model.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from g2lstm.errors import CheckpointError

__all__ = ["MAX_HEADER_BYTES", "TensorHeader", "read_header"]

#: Largest header accepted (the safetensors library's own limit is 100,000,000 bytes).
MAX_HEADER_BYTES = 100_000_000
_ITEMSIZE = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}


@dataclass(frozen=True)
class TensorHeader:
    """What a safetensors header says.

    Attributes:
        shapes: tensor name -> shape, in file order.
        dtypes: tensor name -> safetensors dtype name (``"F32"``, ...).
        metadata: the ``__metadata__`` string pairs (empty if none).
    """

    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    metadata: dict[str, str]


def _bad(path: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"{path} is not a valid safetensors file ({what}); it is truncated or corrupt"
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_header(path: str | os.PathLike[str]) -> TensorHeader:
    """Parse and check the header of the safetensors file ``path``.

    Raises:
        CheckpointError: the file is unreadable, too short, its header length or JSON is
            invalid, a tensor has an unknown dtype, a malformed shape, or data offsets that
            do not match its size or lie outside the file.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if length < 2 or length > min(size - 8, MAX_HEADER_BYTES):
                raise _bad(p, f"header length {length} does not fit a file of {size} bytes")
            raw = f.read(length)
    except OSError as exc:
        raise CheckpointError(f"cannot read {p}: {exc.strerror or exc}") from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _bad(p, f"header is not JSON: {type(exc).__name__}") from None
    if not isinstance(header, dict):
        raise _bad(p, "header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _bad(p, "__metadata__ must map strings to strings")
    data_size = size - 8 - length
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, str] = {}
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict):
            raise _bad(p, f"entry {name!r} is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _ITEMSIZE:
            raise _bad(p, f"tensor {name!r} has unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
            raise _bad(p, f"tensor {name!r} has a malformed shape")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_size
        ):
            raise _bad(p, f"tensor {name!r} has data offsets outside the file")
        if (offsets[1] - offsets[0]) != math.prod(shape) * _ITEMSIZE[dtype]:
            raise _bad(p, f"tensor {name!r}: shape {shape} does not match its data size")
        shapes[name], dtypes[name] = tuple(shape), dtype
        spans.append((offsets[0], offsets[1]))
    spans.sort()
    if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
        raise _bad(p, "tensor data overlap")
    return TensorHeader(shapes, dtypes, metadata)
