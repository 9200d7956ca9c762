"""Language-model batching: contiguous streams, ``(input, target)`` segments and AWD-LSTM's
random truncated-BPTT schedule.

:func:`batchify` turns a 1-D id sequence into ``(n_steps, B)`` streams; :func:`get_batch` cuts
``(T, B)`` input/target views from it; :class:`BPTTIterator` yields the :class:`BPTTStep`
segments of an epoch, with lengths from :func:`sample_seq_len` when training.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from g2lstm.errors import ConfigError, DataError

__all__ = ["BPTTIterator", "BPTTStep", "Rng", "batchify", "get_batch", "sample_seq_len"]


def batchify(
    data: np.ndarray | torch.Tensor,
    batch_size: int,
    *,
    name: str = "data",
    dtype: torch.dtype = torch.long,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Cut a 1-D id sequence into ``batch_size`` contiguous streams: shape
    ``(n_steps, batch_size)`` with ``n_steps = len(data) // batch_size``; the remainder is
    dropped (AWD-LSTM). Column ``b`` is ``data[b * n_steps : (b + 1) * n_steps]``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
    n_steps = len(data) // batch_size
    if n_steps < 2:
        raise DataError(
            f"the {name} split has {len(data)} tokens, fewer than 2 x batch_size = "
            f"{2 * batch_size} needed for one step (input + target); use a smaller batch size "
            "or a larger split"
        )
    used = data[: n_steps * batch_size]
    if isinstance(used, torch.Tensor):
        flat = used.to(dtype)
    else:
        flat = torch.from_numpy(np.array(used, dtype=np.int64)).to(dtype)
    return flat.view(batch_size, n_steps).t().contiguous().to(device)


def get_batch(source: torch.Tensor, i: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input, target)``, each ``(T, B)`` views of ``source`` ``(n_steps, B)`` with
    ``T = min(seq_len, n_steps - 1 - i)``; ``target`` is ``input`` shifted by one step."""
    n = source.size(0)
    length = min(seq_len, n - 1 - i)
    if i < 0 or seq_len < 1 or length < 1:
        raise ConfigError(
            f"get_batch: start {i} with seq_len {seq_len} leaves no target in "
            f"a source of {n} steps (valid starts: 0..{n - 2})"
        )
    return source[i : i + length], source[i + 1 : i + 1 + length]


class BPTTStep(NamedTuple):
    """One truncated-BPTT segment: rows ``start .. start + seq_len`` and the LR factor."""

    start: int
    seq_len: int
    lr_scale: float


Rng = np.random.Generator | torch.Generator


def _uniform(rng: Rng) -> float:
    if isinstance(rng, torch.Generator):
        return float(torch.rand((), generator=rng, dtype=torch.float64))
    return float(rng.random())


def _normal(rng: Rng, mean: float, std: float) -> float:
    if isinstance(rng, torch.Generator):
        return mean + std * float(torch.randn((), generator=rng, dtype=torch.float64))
    return float(rng.normal(mean, std))


def sample_seq_len(
    rng: Rng,
    bptt: int,
    *,
    p_full: float = 0.95,
    std: float = 5.0,
    min_len: int = 5,
    max_extra: int = 20,
) -> int:
    """AWD-LSTM's random length: ``base = bptt`` with probability ``p_full`` else
    ``bptt / 2``; ``round(N(base, std))`` clamped to ``[min(min_len, bptt), bptt + max_extra]``
    (AWD-LSTM truncates instead of rounding and has no upper clamp)."""
    base = bptt if _uniform(rng) < p_full else bptt / 2
    drawn = round(_normal(rng, base, std))
    return int(min(max(drawn, min(min_len, bptt)), bptt + max_extra))


class BPTTIterator:
    """The segments of one epoch over a batchified source of ``n_steps`` rows.

    With ``variable`` (training) lengths come from :func:`sample_seq_len` with ``rng`` (a
    ``numpy.random.Generator`` or ``torch.Generator``); otherwise every segment has length
    ``bptt`` (evaluation). The last segment is cut to the rows left; ``lr_scale`` is
    ``seq_len / bptt`` of the segment actually yielded. To resume at row ``start``, pass a
    generator in the state it had at the start of the epoch (e.g. seeded by ``(seed,
    epoch)``): the earlier draws are replayed. Each iterator is meant to be iterated once.
    """

    def __init__(
        self,
        n_steps: int,
        bptt: int,
        *,
        rng: Rng | None = None,
        variable: bool = True,
        p_full: float = 0.95,
        std: float = 5.0,
        min_len: int = 5,
        max_extra: int = 20,
        start: int = 0,
    ) -> None:
        if bptt < 1 or min_len < 1 or max_extra < 0 or std < 0 or not 0.0 <= p_full <= 1.0:
            raise ConfigError(
                f"BPTTIterator: need bptt >= 1, min_len >= 1, max_extra >= 0, std >= 0, "
                f"0 <= p_full <= 1; got bptt={bptt}, min_len={min_len}, "
                f"max_extra={max_extra}, std={std}, p_full={p_full}"
            )
        if variable and not isinstance(rng, np.random.Generator | torch.Generator):
            raise ConfigError(
                "BPTTIterator(variable=True) needs rng=np.random.default_rng(seed) "
                "or a torch.Generator, so the lengths are reproducible"
            )
        if not 0 <= start < max(n_steps - 1, 1):
            raise ConfigError(f"BPTTIterator: start {start} outside 0..{n_steps - 2}")
        self.n_steps, self.bptt, self.rng, self.variable = n_steps, bptt, rng, variable
        self._kw = {"p_full": p_full, "std": std, "min_len": min_len, "max_extra": max_extra}
        self.start = start

    def __iter__(self) -> Iterator[BPTTStep]:
        i = 0
        while i < self.n_steps - 1:
            if self.variable:
                seq_len = sample_seq_len(self.rng, self.bptt, **self._kw)  # type: ignore[arg-type]
            else:
                seq_len = self.bptt
            seq_len = min(seq_len, self.n_steps - 1 - i)
            if i >= self.start:
                yield BPTTStep(i, seq_len, seq_len / self.bptt)
            elif i + seq_len > self.start:
                raise ConfigError(
                    f"BPTTIterator: start {self.start} is not a segment boundary of this "
                    f"schedule (segment {i}..{i + seq_len}); pass the generator in its "
                    "start-of-epoch state and a start taken from a yielded BPTTStep"
                )
            i += seq_len
