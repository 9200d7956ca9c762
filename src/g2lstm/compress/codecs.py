"""Encoders and decoders of one compressed block (paper §4.3, Eqs. 17-18).

Every method turns a block ``W`` of shape ``(m, n)`` into a *payload* (the tensors stored on
disk) and back. A compressed model holds exactly ``decode(encode(W))``, so a file written from
the payload reloads to the same values bit for bit. Arithmetic is done in float64 and the result
cast to the parameter's dtype.

- ``low_rank`` (rank ``r``): truncated SVD ``W ~ U_r S_r V_r^T``; payload ``U = U_r S_r``
  ``(m, r)`` and ``V = V_r^T`` ``(r, n)`` in ``factor_dtype`` (float32 or float16); the block
  becomes ``U @ V``. Stored bytes ``r (m + n) * itemsize``.
- ``round`` (step ``r``, optional clip ``c``): Eq. 17 ``round(W / r) * r`` (round half to even,
  like the authors' ``torch.round``), then Eq. 18 clip to ``[-c, c]``. ``c`` must be an integer
  multiple ``K r`` of the step, so clipped values stay on the grid (paper: r=0.2, c=0.4 and
  r=0.5, c=1.0). Payload: the integer codes ``round(W / r)`` (clamped to ``[-K, K]``), stored
  packed in the fewest bits that hold their range.
- ``quantize`` (``b`` bits, scale per row or per tensor): symmetric uniform quantisation.
  For ``b >= 2``: ``q_max = 2^(b-1) - 1``, scale ``s = max|row| / q_max`` (float32),
  codes ``q = clamp(round(W / s), -q_max, q_max)``, values ``q * s`` in the ``2^b - 1`` levels
  ``{-q_max s, ..., 0, ..., q_max s}`` (``b = 2``: ternary ``{-s, 0, s}``; ``b = 8``: int8).
  For ``b = 1`` (binary): ``s = mean|row|``, ``q = +1`` where ``W >= 0`` else ``-1``, values
  ``{-s, +s}``. An all-zero row gets ``s = 0``. Stored bytes ``ceil(m n b / 8) + 4 * #scales``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from g2lstm.errors import ConfigError

from .blocks import Block

Payload = dict[str, torch.Tensor]
FACTOR_DTYPES = {"float32": torch.float32, "float16": torch.float16}
QUANT_PER = ("row", "tensor")
#: Marks a method parameter without a default in :attr:`Codec.defaults`.
REQUIRED = object()


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


# --- low rank -------------------------------------------------------------------------------


def check_low_rank(params: Mapping[str, Any], block: Block) -> None:
    """ConfigError unless ``1 <= rank <= min(block.shape)`` and ``factor_dtype`` is known."""
    rank = params["rank"]
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise ConfigError(
            f"rank must be an int, got {rank!r}; for a fraction of min(shape) use "
            "g2lstm.compress.rank_for_fraction(block, fraction)"
        )
    if not 1 <= rank <= min(block.shape):
        raise ConfigError(
            f"rank {rank} is out of range for block {block.name!r} of shape {block.shape}: "
            f"it must satisfy 1 <= rank <= {min(block.shape)}"
        )
    if params["factor_dtype"] not in FACTOR_DTYPES:
        raise ConfigError(
            f"factor_dtype must be one of {list(FACTOR_DTYPES)}, got {params['factor_dtype']!r}"
        )


def encode_low_rank(w: torch.Tensor, params: Mapping[str, Any]) -> Payload:
    """``(m, n)`` -> ``{"U": (m, r), "V": (r, n)}`` with ``U @ V`` the best rank-r fit."""
    rank = params["rank"]
    u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)
    dtype = FACTOR_DTYPES[params["factor_dtype"]]
    return {"U": (u[:, :rank] * s[:rank]).to(dtype), "V": vh[:rank].to(dtype)}


def decode_low_rank(
    payload: Payload, params: Mapping[str, Any], dtype: torch.dtype
) -> torch.Tensor:
    """``U @ V`` computed in float64, cast to ``dtype``."""
    return (payload["U"].double() @ payload["V"].double()).to(dtype)


def bytes_low_rank(payload: Payload, params: Mapping[str, Any]) -> int:
    """Bytes of the two factors."""
    return sum(t.numel() * t.element_size() for t in (payload["U"], payload["V"]))


# --- round (and clip) -----------------------------------------------------------------------


def clip_steps(step: float, clip: float | None) -> int | None:
    """``K = clip / step`` as an int (None without clip); ConfigError if not a multiple."""
    if clip is None:
        return None
    ratio = clip / step
    k = round(ratio)
    if k < 1 or abs(ratio - k) > 1e-6 * k:
        raise ConfigError(
            f"clip={clip} must be a positive integer multiple of step={step} so that clipped "
            f"values stay on the rounding grid (paper: step 0.2 / clip 0.4, step 0.5 / clip 1.0)"
        )
    return k


def check_round(params: Mapping[str, Any], block: Block | None = None) -> None:
    """ConfigError unless ``step > 0`` and ``clip`` is None or a positive multiple of step."""
    step = _number("step", params["step"])
    if not step > 0 or math.isinf(step):
        raise ConfigError(f"step must be a finite number > 0, got {params['step']!r}")
    clip = params["clip"]
    if clip is not None:
        clip = _number("clip", clip)
        if not clip > 0 or math.isinf(clip):
            raise ConfigError(f"clip must be None or a finite number > 0, got {params['clip']!r}")
        clip_steps(step, clip)


def encode_round(w: torch.Tensor, params: Mapping[str, Any]) -> Payload:
    """``(m, n)`` -> ``{"codes": int32 (m, n)}``, ``codes = clip(round(W / step), -K, K)``."""
    step = float(params["step"])
    codes = torch.round(w.double() / step)
    k = clip_steps(step, params["clip"])
    if k is not None:
        codes = codes.clamp(-k, k)
    if codes.numel() and codes.abs().max().item() >= 2**31 - 1:
        raise ConfigError(
            f"step={step} is too small for these weights: the codes need more than 32 bits"
        )
    return {"codes": codes.to(torch.int32)}


def decode_round(payload: Payload, params: Mapping[str, Any], dtype: torch.dtype) -> torch.Tensor:
    """``codes * step`` in float64, cast to ``dtype``."""
    return (payload["codes"].double() * float(params["step"])).to(dtype)


def code_width(codes: torch.Tensor) -> tuple[int, int]:
    """``(offset, width)``: codes minus ``offset`` fit in ``width >= 1`` unsigned bits."""
    if codes.numel() == 0:
        return 0, 1
    low, high = int(codes.min().item()), int(codes.max().item())
    return low, max(1, (high - low).bit_length())


def bytes_round(payload: Payload, params: Mapping[str, Any]) -> int:
    """Bytes of the codes packed at their minimum width."""
    codes = payload["codes"]
    return math.ceil(codes.numel() * code_width(codes)[1] / 8)


# --- symmetric uniform quantisation ---------------------------------------------------------


def check_quantize(params: Mapping[str, Any], block: Block | None = None) -> None:
    """ConfigError unless ``1 <= bits <= 16`` (int) and ``per`` is ``"row"``/``"tensor"``."""
    bits = params["bits"]
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
        raise ConfigError(f"bits must be an int with 1 <= bits <= 16, got {bits!r}")
    if params["per"] not in QUANT_PER:
        raise ConfigError(f"per must be one of {list(QUANT_PER)}, got {params['per']!r}")


def quant_offset(bits: int) -> int:
    """Offset that makes the codes of ``bits``-bit quantisation non-negative."""
    return -1 if bits == 1 else -(2 ** (bits - 1) - 1)


def encode_quantize(w: torch.Tensor, params: Mapping[str, Any]) -> Payload:
    """``(m, n)`` -> ``{"codes": (m, n) int, "scales": (m, 1) or (1, 1) float32}``."""
    bits, w64 = params["bits"], w.double()
    dims = (1,) if params["per"] == "row" else (0, 1)
    if bits == 1:
        scales = w64.abs().mean(dim=dims, keepdim=True).to(torch.float32)
        codes = torch.where(w64 >= 0, 1, -1)
    else:
        qmax = 2 ** (bits - 1) - 1
        scales = (w64.abs().amax(dim=dims, keepdim=True) / qmax).to(torch.float32)
        s64 = scales.double()
        safe = torch.where(s64 > 0, s64, torch.ones_like(s64))
        codes = torch.where(s64 > 0, torch.round(w64 / safe), 0.0).clamp(-qmax, qmax)
    code_dtype = torch.int8 if bits <= 8 else torch.int16
    return {"codes": codes.to(code_dtype), "scales": scales}


def decode_quantize(
    payload: Payload, params: Mapping[str, Any], dtype: torch.dtype
) -> torch.Tensor:
    """``codes * scales`` in float64, cast to ``dtype``."""
    return (payload["codes"].double() * payload["scales"].double()).to(dtype)


def bytes_quantize(payload: Payload, params: Mapping[str, Any]) -> int:
    """Packed ``bits``-bit codes plus float32 scales."""
    codes, scales = payload["codes"], payload["scales"]
    return math.ceil(codes.numel() * params["bits"] / 8) + 4 * scales.numel()


# --- registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """The functions of one compression method."""

    check: Callable[[Mapping[str, Any], Block], None]
    encode: Callable[[torch.Tensor, Mapping[str, Any]], Payload]
    decode: Callable[[Payload, Mapping[str, Any], torch.dtype], torch.Tensor]
    stored_bytes: Callable[[Payload, Mapping[str, Any]], int]
    #: parameter names and defaults of the method (``REQUIRED`` where there is none)
    defaults: Mapping[str, Any]


CODECS: dict[str, Codec] = {
    "low_rank": Codec(
        check_low_rank,
        encode_low_rank,
        decode_low_rank,
        bytes_low_rank,
        {"rank": REQUIRED, "factor_dtype": "float32"},
    ),
    "round": Codec(
        check_round, encode_round, decode_round, bytes_round, {"step": REQUIRED, "clip": None}
    ),
    "quantize": Codec(
        check_quantize,
        encode_quantize,
        decode_quantize,
        bytes_quantize,
        {"bits": REQUIRED, "per": "row"},
    ),
}


def get_codec(method: str) -> Codec:
    """The codec of ``method``; ConfigError naming the valid methods otherwise."""
    try:
        return CODECS[method]
    except KeyError:
        raise ConfigError(
            f"unknown compression method {method!r}; valid methods are {list(CODECS)}"
        ) from None


def full_params(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` completed with the method's defaults.

    Raises:
        ConfigError: unknown method, unknown parameter name, or a required one missing.
    """
    codec = get_codec(method)
    unknown = set(params) - set(codec.defaults)
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {sorted(unknown)} for method {method!r}; "
            f"it takes {list(codec.defaults)}"
        )
    full = {**codec.defaults, **params}
    missing = [k for k, v in full.items() if v is REQUIRED]
    if missing:
        raise ConfigError(f"method {method!r} needs the parameter(s) {missing}")
    return full


def compress_block(
    method: str, w: torch.Tensor, params: Mapping[str, Any]
) -> tuple[Payload, torch.Tensor]:
    """Encode block ``w`` and return ``(payload, decoded)`` with ``decoded`` in ``w``'s dtype."""
    codec = get_codec(method)
    payload = codec.encode(w, params)
    return payload, codec.decode(payload, params, w.dtype)
