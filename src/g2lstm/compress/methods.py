"""Compression of LSTM gate weights without retraining (paper §4.3, Tables 3-5).

Every function here is pure: it deep-copies the model (or clones the state dict), edits the copy
and returns ``(compressed_copy, CompressionReport)``. The input is never modified. The
exception is :func:`structure_projector`, whose projector edits the model it is given in place
(it is meant for a fine-tuning loop).

Paper settings: ``round_clip(model, 0.2)`` / ``round_clip(model, 0.2, clip=0.4)`` and
``low_rank(model, 128)`` / ``low_rank(model, 64)`` on PTB; ``round_clip(model, 0.5, clip=1.0)``
and ``low_rank(model, 32)`` / ``low_rank(model, 16)`` on MT, all with ``blocks="gates_if"``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import torch
from torch import nn

from g2lstm.errors import ConfigError

from .blocks import Block, model_state, select_blocks
from .codecs import compress_block, full_params, get_codec
from .report import FP32_BYTES, BlockReport, CompressionReport, dense_bytes

ModelT = TypeVar("ModelT", nn.Module, Mapping[str, torch.Tensor])
Blocks = str | Sequence[str | Block]


def _copy(model: ModelT) -> tuple[ModelT, Mapping[str, torch.Tensor]]:
    """A deep copy and its state dict (sharing storage with the copy)."""
    if isinstance(model, nn.Module):
        new = copy.deepcopy(model)
        return new, new.state_dict()
    cloned = {k: v.detach().clone() for k, v in model.items()}
    return cloned, cloned  # type: ignore[return-value]


def _block_report(
    block: Block, method: str, params: Mapping[str, Any], state: Mapping[str, torch.Tensor]
) -> BlockReport:
    """Compress ``block`` of ``state`` in place and describe the result."""
    codec = get_codec(method)
    target = state[block.param]
    w = target[block.rows]
    if not torch.isfinite(w).all():
        raise ConfigError(f"block {block.name!r} holds NaN or inf values; cannot compress it")
    payload, decoded = compress_block(method, w, params)
    w64 = w.double()
    norm = torch.linalg.matrix_norm(w64).item()
    diff = torch.linalg.matrix_norm(w64 - decoded.double()).item()
    rel = diff / norm if norm > 0 else (0.0 if diff == 0 else float("inf"))
    with torch.no_grad():
        target[block.rows] = decoded
    return BlockReport(
        block=block,
        method=method,
        params=dict(params),
        norm=norm,
        rel_error=rel,
        bytes_before=FP32_BYTES * w.numel(),
        bytes_after=codec.stored_bytes(payload, params),
        payload=payload,
    )


def compress(
    model: ModelT, method: str, blocks: Blocks = "gates_if", **params: Any
) -> tuple[ModelT, CompressionReport]:
    """Compress the selected blocks of a copy of ``model`` with one method.

    Args:
        model: ``nn.Module`` with LSTM layers, or its state dict (``str -> Tensor``).
        method: ``"low_rank"``, ``"round"`` or ``"quantize"`` (see :mod:`.codecs`).
        blocks: see :func:`~g2lstm.compress.select_blocks`.
        **params: the method's parameters (``rank``, ``factor_dtype``; ``step``, ``clip``;
            ``bits``, ``per``); missing optional ones take their defaults.

    Returns:
        ``(new_model, report)``; ``new_model`` is a deep copy (a new dict for a state dict).

    Raises:
        ConfigError: unknown method or parameter, invalid value for any selected block
            (checked before anything is computed), non-finite weights.
    """
    codec = get_codec(method)
    full = full_params(method, params)
    state_in, described = model_state(model)
    selected = select_blocks(model, blocks)
    for block in selected:
        codec.check(full, block)
    new, state = _copy(model)
    reports = tuple(_block_report(b, method, full, state) for b in selected)
    return new, CompressionReport(reports, dense_bytes(state_in), described)


def low_rank(
    model: ModelT, rank: int, blocks: Blocks = "gates_if", *, factor_dtype: str = "float32"
) -> tuple[ModelT, CompressionReport]:
    """Truncated SVD of each block to rank ``rank`` (paper §4.3 "low rank").

    Each ``(m, n)`` block ``W`` becomes ``U @ V`` with ``U = U_r S_r`` ``(m, r)`` and
    ``V = V_r^T`` ``(r, n)`` from ``torch.linalg.svd`` in float64; the factors are rounded to
    ``factor_dtype`` (float32 default, or float16 for half the file size) *before* the block is
    rebuilt, so the saved file reloads to exactly the in-memory values. Stored size
    ``r (m + n)`` factors instead of ``m n``.

    Raises:
        ConfigError: ``rank`` not an int, or ``rank < 1`` or ``rank > min(shape)`` for a
            selected block (the message names the block and its shape).
    """
    return compress(model, "low_rank", blocks, rank=rank, factor_dtype=factor_dtype)


def round_clip(
    model: ModelT, step: float, clip: float | None = None, blocks: Blocks = "gates_if"
) -> tuple[ModelT, CompressionReport]:
    """Round to multiples of ``step`` (Eq. 17), then clip to ``[-clip, clip]`` (Eq. 18).

    Paper: LM ``step=0.2, clip=0.4`` (values in {0, ±0.2, ±0.4}); MT ``step=0.5, clip=1.0``.
    Rounding is half-to-even (``torch.round``, as the authors' code). ``clip`` must be an
    integer multiple of ``step``. Stored as integer codes packed to the fewest bits their
    range needs.

    Raises:
        ConfigError: ``step <= 0``, ``clip <= 0``, NaN/inf, or ``clip`` not a multiple of step.
    """
    return compress(model, "round", blocks, step=step, clip=clip)


def quantize(
    model: ModelT, bits: int, blocks: Blocks = "gates_if", per: str = "row"
) -> tuple[ModelT, CompressionReport]:
    """Symmetric uniform ``bits``-bit quantisation with one scale per row (or per tensor).

    For ``bits >= 2``: ``q_max = 2^(bits-1) - 1``, ``s = max|row| / q_max``,
    ``W_c = clamp(round(W / s), -q_max, q_max) * s`` (``2^bits - 1`` levels; bits=2 is ternary
    ``{-s, 0, s}``, bits=8 is int8). For ``bits = 1`` (binary): ``s = mean|row|`` and
    ``W_c = s * sign(W)`` with ``sign(0) = +1``. Scales are float32.

    Raises:
        ConfigError: ``bits`` not an int in ``[1, 16]``, or ``per`` not ``"row"``/``"tensor"``.
    """
    return compress(model, "quantize", blocks, bits=bits, per=per)


class StructureProjector:
    """Re-projects the blocks of a report onto their compressed structure, in place.

    Call it after each optimizer step of a fine-tuning loop: every block is re-encoded from its
    current values with the same method and parameters (new SVD truncated to the same rank, new
    rounding to the same grid, new quantisation with fresh scales) and overwritten in place.
    Each call returns (and stores as :attr:`report`) a new :class:`CompressionReport` whose
    payloads match the model, so ``save_compressed(path, model, projector.report)`` writes an
    exact file; its errors are those of this projection.
    """

    def __init__(self, report: CompressionReport) -> None:
        if not isinstance(report, CompressionReport) or not report.blocks:
            raise ConfigError("structure_projector needs a CompressionReport with blocks")
        blocks = []
        for b in report.blocks:
            params = full_params(b.method, b.params)
            get_codec(b.method).check(params, b.block)
            blocks.append(replace(b, params=params))
        self._report = replace(report, blocks=tuple(blocks))

    @property
    def report(self) -> CompressionReport:
        """The report of the latest projection (the original report before any call)."""
        return self._report

    def __call__(self, model: nn.Module | Mapping[str, torch.Tensor]) -> CompressionReport:
        state, _ = model_state(model)
        for b in self._report.blocks:
            tensor = state.get(b.block.param)
            if (
                tensor is None
                or tuple(tensor.shape[1:]) != (b.block.n_cols,)
                or (tensor.shape[0] < b.block.stop)
            ):
                raise ConfigError(
                    f"the model has no parameter {b.block.param!r} that fits block "
                    f"{b.block.name!r} of shape {b.block.shape}"
                )
        with torch.no_grad():
            reports = tuple(
                _block_report(b.block, b.method, b.params, state) for b in self._report.blocks
            )
        self._report = CompressionReport(
            reports, self._report.model_bytes_before, self._report.model
        )
        return self._report


def structure_projector(report: CompressionReport) -> StructureProjector:
    """A :class:`StructureProjector` for the blocks of ``report`` (for fine-tuning loops)."""
    return StructureProjector(report)
