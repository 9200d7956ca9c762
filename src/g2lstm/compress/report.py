"""What a compression did: per block error and storage, and totals.

Sizes follow one convention: ``bytes_before`` counts a block as dense float32 (4 bytes per
element, whatever the parameter's dtype); ``bytes_after`` is what the compressed file stores for
it (factors, packed codes plus scales). Metadata (steps, offsets, shapes) is not counted. The
whole-model sizes count every other floating tensor as float32 and integer buffers at their own
size, tensors that share storage (tied weights) once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from g2lstm.errors import ConfigError

from .blocks import Block
from .codecs import Payload

FP32_BYTES = 4


def dense_bytes(state: Mapping[str, torch.Tensor]) -> int:
    """Bytes of a state dict stored densely (floats as float32), shared tensors counted once."""
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    total = 0
    for tensor in state.values():
        key = (tensor.data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if tensor.numel() and key in seen:
            continue
        seen.add(key)
        size = FP32_BYTES if tensor.is_floating_point() else tensor.element_size()
        total += tensor.numel() * size
    return total


@dataclass(frozen=True)
class BlockReport:
    """One compressed block.

    Attributes:
        block: which rows of which parameter.
        method: ``"low_rank"``, ``"round"`` or ``"quantize"``.
        params: the method's parameters (``rank``/``factor_dtype``, ``step``/``clip``,
            ``bits``/``per``), JSON-able.
        norm: Frobenius norm of the original block.
        rel_error: ``||W - W_c||_F / ||W||_F`` (0 when both are 0).
        bytes_before: dense float32 bytes ``4 m n``.
        bytes_after: stored bytes of the compressed block.
        payload: the encoded tensors (factors, codes, scales); not part of ``to_dict``.
    """

    block: Block
    method: str
    params: Mapping[str, Any]
    norm: float
    rel_error: float
    bytes_before: int
    bytes_after: int
    payload: Payload | None = field(default=None, repr=False, compare=False)

    @property
    def compression_ratio(self) -> float:
        """``bytes_before / bytes_after``."""
        return self.bytes_before / self.bytes_after if self.bytes_after else math.inf

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (no payload)."""
        return {
            "name": self.block.name,
            "block": self.block.to_dict(),
            "method": self.method,
            "params": dict(self.params),
            "norm": self.norm,
            "rel_error": self.rel_error,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BlockReport:
        """Inverse of :meth:`to_dict` (without payload)."""
        try:
            return cls(
                block=Block.from_dict(data["block"]),
                method=str(data["method"]),
                params=dict(data["params"]),
                norm=float(data.get("norm", math.nan)),
                rel_error=float(data.get("rel_error", math.nan)),
                bytes_before=int(data.get("bytes_before", 0)),
                bytes_after=int(data.get("bytes_after", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"block report {data!r} needs 'block', 'method' and 'params': {exc}"
            ) from exc


@dataclass(frozen=True)
class CompressionReport:
    """All compressed blocks of one model plus whole-model sizes.

    Attributes:
        blocks: one :class:`BlockReport` per compressed block.
        model_bytes_before: dense float32 bytes of the whole state dict.
        model: description of the model (for messages).
    """

    blocks: tuple[BlockReport, ...]
    model_bytes_before: int
    model: str = "model"

    @property
    def bytes_before(self) -> int:
        """Dense float32 bytes of the compressed blocks."""
        return sum(b.bytes_before for b in self.blocks)

    @property
    def bytes_after(self) -> int:
        """Stored bytes of the compressed blocks."""
        return sum(b.bytes_after for b in self.blocks)

    @property
    def compression_ratio(self) -> float:
        """Ratio over the compressed blocks only."""
        return self.bytes_before / self.bytes_after if self.bytes_after else math.inf

    @property
    def model_bytes_after(self) -> int:
        """Whole-model bytes with the blocks compressed."""
        return self.model_bytes_before - self.bytes_before + self.bytes_after

    @property
    def model_compression_ratio(self) -> float:
        """Ratio over the whole model."""
        after = self.model_bytes_after
        return self.model_bytes_before / after if after else math.inf

    @property
    def rel_error(self) -> float:
        """Relative Frobenius error over all blocks together."""
        num = sum((b.rel_error * b.norm) ** 2 for b in self.blocks)
        den = sum(b.norm**2 for b in self.blocks)
        return math.sqrt(num / den) if den else 0.0

    def by_name(self) -> dict[str, BlockReport]:
        """Block reports keyed by block name (``"rnn.weight_hh_l0[f]"``)."""
        return {b.block.name: b for b in self.blocks}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: every block plus totals."""
        return {
            "model": self.model,
            "blocks": [b.to_dict() for b in self.blocks],
            "totals": {
                "bytes_before": self.bytes_before,
                "bytes_after": self.bytes_after,
                "compression_ratio": self.compression_ratio,
                "rel_error": self.rel_error,
                "model_bytes_before": self.model_bytes_before,
                "model_bytes_after": self.model_bytes_after,
                "model_compression_ratio": self.model_compression_ratio,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompressionReport:
        """Rebuild from :meth:`to_dict` output (blocks carry no payload)."""
        blocks = data.get("blocks") if isinstance(data, Mapping) else None
        if not isinstance(blocks, Sequence) or not blocks:
            raise ConfigError("a compression spec needs a non-empty 'blocks' list")
        totals = data.get("totals", {})
        return cls(
            blocks=tuple(BlockReport.from_dict(b) for b in blocks),
            model_bytes_before=int(totals.get("model_bytes_before", 0)),
            model=str(data.get("model", "model")),
        )

    def to_markdown(self) -> str:
        """A Markdown table, one row per block, then the totals."""
        lines = [
            "| block | shape | method | params | rel. error | bytes before | bytes after | ratio |",
            "|---|---|---|---|---:|---:|---:|---:|",
        ]
        for b in self.blocks:
            params = ", ".join(f"{k}={v}" for k, v in b.params.items())
            rows, cols = b.block.shape
            lines.append(
                f"| `{b.block.name}` | {rows}x{cols} | {b.method} | {params} | "
                f"{b.rel_error:.4g} | {b.bytes_before:,} | {b.bytes_after:,} | "
                f"{b.compression_ratio:.2f}x |"
            )
        lines.append(
            f"| **compressed blocks** | | | | {self.rel_error:.4g} | {self.bytes_before:,} | "
            f"{self.bytes_after:,} | {self.compression_ratio:.2f}x |"
        )
        lines.append(
            f"| **whole model** | | | | | {self.model_bytes_before:,} | "
            f"{self.model_bytes_after:,} | {self.model_compression_ratio:.2f}x |"
        )
        return "\n".join(lines)
