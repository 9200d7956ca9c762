"""Bit packing of non-negative integer codes into ``uint8`` bytes.

``pack_codes`` writes each code as ``width`` bits, most significant bit first, one code after
the other with no padding between codes (the last byte is zero-padded). ``width`` 8 is a plain
byte copy; every other width from 1 to 32 goes through a ``(count, width)`` bit matrix and
``numpy.packbits``, so widths 1, 2, 4 pack 8, 4, 2 codes per byte and odd widths (3, 5, ...)
waste no bits.
"""

from __future__ import annotations

import math

import torch

from g2lstm.errors import ConfigError

MAX_WIDTH = 32


def packed_size(count: int, width: int) -> int:
    """Bytes needed for ``count`` codes of ``width`` bits."""
    return math.ceil(count * width / 8)


def _check_width(width: int) -> None:
    if not 1 <= width <= MAX_WIDTH:
        raise ConfigError(f"code width must be between 1 and {MAX_WIDTH} bits, got {width}")


def pack_codes(codes: torch.Tensor, width: int) -> torch.Tensor:
    """Pack codes in ``[0, 2^width)`` (any shape, flattened) into a 1-D ``uint8`` tensor.

    Raises:
        ConfigError: a code is negative or does not fit in ``width`` bits.
    """
    import numpy as np

    _check_width(width)
    values = codes.detach().reshape(-1).cpu().to(torch.int64).numpy()
    if values.size and (values.min() < 0 or values.max() >= 1 << width):
        raise ConfigError(
            f"codes in [{values.min()}, {values.max()}] do not fit in {width} unsigned bits"
        )
    if width == 8:
        return torch.from_numpy(values.astype(np.uint8))
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
    bits = ((values.astype(np.uint64)[:, None] >> shifts) & 1).astype(np.uint8)
    return torch.from_numpy(np.packbits(bits.reshape(-1)))


def unpack_codes(packed: torch.Tensor, width: int, count: int) -> torch.Tensor:
    """Inverse of :func:`pack_codes`: a 1-D ``int64`` tensor of ``count`` codes.

    Raises:
        ConfigError: ``packed`` is not 1-D uint8 of exactly ``packed_size(count, width)`` bytes.
    """
    import numpy as np

    _check_width(width)
    expected = packed_size(count, width)
    if packed.dtype != torch.uint8 or packed.dim() != 1 or packed.numel() != expected:
        raise ConfigError(
            f"packed codes must be a 1-D uint8 tensor of {expected} bytes for {count} codes of "
            f"{width} bits, got {packed.dtype} of shape {tuple(packed.shape)}"
        )
    data = packed.cpu().numpy()
    if width == 8:
        return torch.from_numpy(data.astype(np.int64))
    bits = np.unpackbits(data, count=count * width).reshape(count, width).astype(np.int64)
    weights = np.left_shift(np.int64(1), np.arange(width - 1, -1, -1, dtype=np.int64))
    return torch.from_numpy(bits @ weights)
