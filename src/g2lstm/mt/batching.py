"""Token-budget batching and padding for sequence-to-sequence training.

:class:`TokenBatchSampler` groups sentences of similar length so that every batch costs at most
``max_tokens`` *padded* tokens, and shuffles the batch order reproducibly from
``(seed, epoch)``; with :meth:`TokenBatchSampler.state_dict` a run resumed mid-epoch sees
exactly the batches it had not seen yet. :func:`collate` turns a batch of id sequences into
time-major padded tensors (the ``torch.nn.LSTM`` default layout).

Typical loop::

    sampler = TokenBatchSampler(src_lens, tgt_lens, max_tokens=4096, seed=1, epoch=epoch)
    for idx in sampler:
        src, src_len, tgt_in, tgt_out = collate([pairs[i] for i in idx], pad, bos, eos)

Pass the lengths the tensors will have: with :func:`collate`'s conventions that is
``len(src_ids) + 1`` and ``len(tgt_ids) + 1`` (see :func:`collate_lengths`).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from g2lstm.errors import CheckpointError, ConfigError, DataError, ShapeError

__all__ = ["TokenBatchSampler", "collate", "collate_lengths"]


def _as_lengths(name: str, values: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size == 0:
        arr = arr.astype(np.int64)  # np.asarray([]) is float64
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ConfigError(
            f"TokenBatchSampler: {name} must be a 1-D sequence of ints, got "
            f"shape {arr.shape} dtype {arr.dtype}."
        )
    if arr.size and arr.min() < 0:
        raise ConfigError(f"TokenBatchSampler: {name} has a negative length.")
    return arr.astype(np.int64)


class TokenBatchSampler:
    """Length-bucketed batches of example indices with a padded-token budget.

    Each example costs ``size = max(src_len, tgt_len)``; a batch of ``B`` examples costs
    ``B * max(size)`` (its padded token count) and never exceeds ``max_tokens``, except a
    single example with ``size > max_tokens``, which gets a batch of its own (and a warning at
    construction; it is never dropped).

    Order: examples are sorted by size (rounded up to multiples of ``bucket_width``); with
    ``shuffle`` ties are broken randomly and the batch order is shuffled, both by a numpy
    Generator seeded with ``(seed, epoch)``, so epoch ``e`` of a run always yields the same
    batches and different epochs differ. Without ``shuffle`` batches go from short to long.
    Inside a batch the indices are sorted by decreasing source length, so
    ``pack_padded_sequence(..., enforce_sorted=True)`` works on :func:`collate`'s output.

    Args:
        src_lengths, tgt_lengths: per-example lengths (as the padded tensors will count them).
        max_tokens: padded-token budget per batch.
        shuffle: random tie-breaking and batch order (training); ``False`` for evaluation.
        seed, epoch: the randomness; change the epoch with :meth:`set_epoch`.
        bucket_width: size granularity of the sort; larger buckets give more varied batches
            at the cost of more padding. ``None`` = 1 (exact sort).

    Iterating yields ``list[int]`` batches; it can be used as a ``DataLoader(batch_sampler=)``.
    """

    @classmethod
    def for_pairs(
        cls,
        pairs: Sequence[tuple[Sequence[int], Sequence[int]]]
        | Sequence[tuple[np.ndarray, np.ndarray]],
        max_tokens: int,
        **kwargs: Any,
    ) -> TokenBatchSampler:
        """The sampler of encoded ``(source ids, target ids)`` pairs, each counted at the
        lengths :func:`collate` gives it (:func:`collate_lengths`); keyword arguments as the
        constructor's."""
        lengths = np.array([collate_lengths(s, y) for s, y in pairs], dtype=np.int64).reshape(-1, 2)
        return cls(lengths[:, 0], lengths[:, 1], max_tokens, **kwargs)

    def __init__(
        self,
        src_lengths: Sequence[int] | np.ndarray,
        tgt_lengths: Sequence[int] | np.ndarray,
        max_tokens: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        bucket_width: int | None = None,
    ) -> None:
        src = _as_lengths("src_lengths", src_lengths)
        tgt = _as_lengths("tgt_lengths", tgt_lengths)
        if src.shape != tgt.shape:
            raise ConfigError(
                f"TokenBatchSampler: {src.size} source lengths but {tgt.size} target lengths."
            )
        if src.size == 0:
            raise DataError("TokenBatchSampler: the dataset is empty; there is nothing to batch.")
        if int(max_tokens) != max_tokens or max_tokens < 1:
            raise ConfigError(
                f"TokenBatchSampler: max_tokens must be a positive int, got {max_tokens!r}."
            )
        if bucket_width is not None and (int(bucket_width) != bucket_width or bucket_width < 1):
            raise ConfigError(
                f"TokenBatchSampler: bucket_width must be a positive int or None, "
                f"got {bucket_width!r}."
            )
        if seed < 0:
            raise ConfigError(f"TokenBatchSampler: seed must be >= 0, got {seed}.")
        self.src_lengths, self.tgt_lengths = src, tgt
        self.sizes = np.maximum(src, tgt)
        self.max_tokens = int(max_tokens)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.bucket_width = int(bucket_width or 1)
        self._fingerprint = hashlib.sha256(
            np.stack([src, tgt]).astype("<i8").tobytes()
        ).hexdigest()[:16]
        self._cache: tuple[int, list[np.ndarray]] | None = None
        self.set_epoch(epoch)
        oversize = np.flatnonzero(self.sizes > self.max_tokens)
        if oversize.size:
            shown = ", ".join(f"#{i} ({self.sizes[i]} tokens)" for i in oversize[:5])
            warnings.warn(
                f"TokenBatchSampler: {oversize.size} example(s) are longer than max_tokens="
                f"{self.max_tokens} and get a batch of their own: {shown}. Raise max_tokens or "
                f"filter long sentences (max_len) if that runs out of memory.",
                stacklevel=2,
            )

    # --- epoch / resume -----------------------------------------------------------------

    def set_epoch(self, epoch: int, *, skip_batches: int = 0) -> None:
        """Select the epoch whose batches the next iteration yields, skipping the first few."""
        if epoch < 0:
            raise ConfigError(f"TokenBatchSampler: epoch must be >= 0, got {epoch}.")
        if skip_batches < 0:
            raise ConfigError(f"TokenBatchSampler: skip_batches must be >= 0, got {skip_batches}.")
        self.epoch = int(epoch)
        self._start = self._position = int(skip_batches)

    def state_dict(self, batches_done: int | None = None) -> dict[str, Any]:
        """Where this epoch stands, as plain ints/strings (safe for ``weights_only`` loading).

        Args:
            batches_done: batches of this epoch already trained on. By default the number this
                sampler has handed out (including skipped ones); pass the trainer's own count
                if a ``DataLoader`` with workers prefetches ahead of training.
        """
        done = self._position if batches_done is None else int(batches_done)
        return {
            "epoch": self.epoch,
            "batches_done": done,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "shuffle": self.shuffle,
            "bucket_width": self.bucket_width,
            "num_examples": int(self.sizes.size),
            "fingerprint": self._fingerprint,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next iteration yields the rest of the saved epoch.

        Raises:
            CheckpointError: the state comes from a sampler with other data or settings, so
                the batch order would not match.
        """
        for key in ("seed", "max_tokens", "shuffle", "bucket_width", "num_examples", "fingerprint"):
            mine = self.state_dict()[key]
            if state.get(key) != mine:
                raise CheckpointError(
                    f"TokenBatchSampler.load_state_dict: saved {key}={state.get(key)!r} but this "
                    f"sampler has {key}={mine!r}; resume with the same data and batching "
                    f"settings, or start the epoch afresh."
                )
        self.set_epoch(int(state["epoch"]), skip_batches=int(state["batches_done"]))

    # --- batches ------------------------------------------------------------------------

    def batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """All batches of ``epoch`` (default: the current one), in the order they are yielded."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        n = self.sizes.size
        rng = np.random.default_rng([self.seed, epoch])
        perm = rng.permutation(n) if self.shuffle else np.arange(n)
        buckets = -(-self.sizes[perm] // self.bucket_width)  # ceil division
        order = perm[np.argsort(buckets, kind="stable")]
        out: list[np.ndarray] = []
        start, batch_max = 0, 0
        sizes = self.sizes[order]
        for pos in range(n):
            size = int(sizes[pos])
            new_max = max(batch_max, size)
            if pos > start and (pos - start + 1) * new_max > self.max_tokens:
                out.append(order[start:pos])
                start, new_max = pos, size
            batch_max = new_max
        out.append(order[start:])
        out = [b[np.argsort(-self.src_lengths[b], kind="stable")] for b in out]
        if self.shuffle:
            out = [out[i] for i in rng.permutation(len(out))]
        self._cache = (epoch, out)
        return out

    @property
    def num_batches(self) -> int:
        """Batches in the current epoch, skipped ones included."""
        return len(self.batches())

    def __len__(self) -> int:
        """Batches the next iteration yields (the epoch's total minus skipped batches)."""
        return max(0, self.num_batches - self._start)

    def __iter__(self) -> Iterator[list[int]]:
        """Yield the current epoch's batches, after the skipped ones (the skip applies to this
        iteration only; iterating again without :meth:`set_epoch` repeats the whole epoch)."""
        batches = self.batches()
        start, self._start = self._start, 0
        self._position = start
        return self._generate(batches, start)

    def _generate(self, batches: list[np.ndarray], start: int) -> Iterator[list[int]]:
        for k in range(start, len(batches)):
            self._position = k + 1
            yield batches[k].tolist()


def collate_lengths(src_ids: Sequence[int], tgt_ids: Sequence[int]) -> tuple[int, int]:
    """The ``(source, target)`` tensor lengths :func:`collate` gives one pair (+1 each)."""
    return len(src_ids) + 1, len(tgt_ids) + 1


def _as_ids(name: str, seq: Any) -> np.ndarray:
    if isinstance(seq, torch.Tensor):
        seq = seq.detach().cpu().numpy()
    arr = np.asarray(seq, dtype=np.int64)
    if arr.ndim != 1:
        raise ShapeError(f"collate: each {name} must be a 1-D id sequence, got shape {arr.shape}.")
    return arr


def collate(
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int, bos: int, eos: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a batch of ``(src_ids, tgt_ids)`` pairs into time-major ``torch.long`` tensors.

    Conventions (as in fairseq): the source gets ``eos`` appended; the decoder reads
    ``<s> y_1 .. y_n`` and predicts ``y_1 .. y_n </s>``. Ids must not already contain
    ``bos``/``eos``. Column ``b`` of every output is ``pairs[b]`` (order is kept).

    Args:
        pairs: ``B`` pairs of 1-D id sequences (lists, numpy arrays or tensors).
        pad_id, bos, eos: the special ids (``Vocab.pad_id``, ``bos_id``, ``eos_id``).

    Returns:
        ``src``: ``(S, B)``, ``S = max(len(src_ids)) + 1``, padded with ``pad_id``.
        ``src_lengths``: ``(B,)`` true lengths of ``src`` columns (CPU, as
        ``pack_padded_sequence`` wants).
        ``tgt_in``: ``(T, B)``, ``T = max(len(tgt_ids)) + 1``: ``bos`` then the target.
        ``tgt_out``: ``(T, B)``: the target then ``eos``; padding is ``pad_id`` (ignore it in
        the loss with ``ignore_index=pad_id``).
    """
    if len(pairs) == 0:
        raise ConfigError("collate: got an empty batch; pass at least one (src, tgt) pair.")
    srcs = [_as_ids("source", p[0]) for p in pairs]
    tgts = [_as_ids("target", p[1]) for p in pairs]
    batch = len(pairs)
    src_len = np.array([s.size + 1 for s in srcs], dtype=np.int64)
    tgt_len = np.array([t.size + 1 for t in tgts], dtype=np.int64)
    src = np.full((int(src_len.max()), batch), pad_id, dtype=np.int64)
    tgt_in = np.full((int(tgt_len.max()), batch), pad_id, dtype=np.int64)
    tgt_out = tgt_in.copy()
    for b, (s, t) in enumerate(zip(srcs, tgts)):
        src[: s.size, b] = s
        src[s.size, b] = eos
        tgt_in[0, b] = bos
        tgt_in[1 : t.size + 1, b] = t
        tgt_out[: t.size, b] = t
        tgt_out[t.size, b] = eos
    return (
        torch.from_numpy(src),
        torch.from_numpy(src_len),
        torch.from_numpy(tgt_in),
        torch.from_numpy(tgt_out),
    )
