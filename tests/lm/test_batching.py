"""Tests of g2lstm.lm.batching: batchify, get_batch, random BPTT lengths and the BPTT iterator."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from g2lstm.errors import ConfigError, DataError
from g2lstm.lm.batching import BPTTIterator, batchify, get_batch, sample_seq_len


# ----------------------------------------------------------------------------- batching
def test_batchify_shapes_values_and_remainder() -> None:
    ids = np.arange(11, dtype=np.int32)
    batches = batchify(ids, 3)
    assert batches.shape == (3, 3)
    assert batches.dtype == torch.int64
    assert batches.tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert torch.equal(batchify(torch.arange(11), 3), batches)
    assert batchify(ids, 2, dtype=torch.int32).dtype == torch.int32


def test_batchify_too_short_split_names_everything() -> None:
    with pytest.raises(DataError, match=r"valid split has 7 tokens.*2 x batch_size = 8"):
        batchify(np.arange(7), 4, name="valid")
    with pytest.raises(ConfigError, match="batch_size"):
        batchify(np.arange(7), 0)


def test_get_batch_targets_are_shifted_by_one() -> None:
    source = batchify(np.arange(40), 4)  # (10, 4)
    inp, tgt = get_batch(source, 2, 3)
    assert inp.shape == tgt.shape == (3, 4)
    assert torch.equal(tgt[:-1], inp[1:])
    assert torch.equal(tgt, inp + 1)
    last_in, last_tgt = get_batch(source, 7, 5)  # only 2 rows left
    assert last_in.shape == (2, 4)
    assert torch.equal(last_tgt[-1], source[-1])
    with pytest.raises(ConfigError, match=r"valid starts: 0\.\.8"):
        get_batch(source, 9, 5)


# ----------------------------------------------------------------------------- BPTT
def test_bptt_lengths_bounded_even_with_a_wide_spread() -> None:
    rng = np.random.default_rng(0)
    lengths = [sample_seq_len(rng, 70, std=60.0) for _ in range(2000)]
    assert min(lengths) == 5
    assert max(lengths) == 90
    normal = [sample_seq_len(rng, 70) for _ in range(2000)]
    assert 66 <= float(np.median(normal)) <= 74
    half = [sample_seq_len(rng, 70, p_full=0.0) for _ in range(500)]
    assert 33 <= float(np.mean(half)) <= 37


@pytest.mark.parametrize(
    "make_rng", [np.random.default_rng, lambda s: torch.Generator().manual_seed(s)]
)
def test_bptt_iterator_is_reproducible_and_tiles_the_source(make_rng) -> None:  # type: ignore[no-untyped-def]
    steps = list(BPTTIterator(1000, 70, rng=make_rng(7)))
    assert steps == list(BPTTIterator(1000, 70, rng=make_rng(7)))
    assert steps != list(BPTTIterator(1000, 70, rng=make_rng(8)))
    assert steps[0].start == 0
    for a, b in itertools.pairwise(steps):
        assert b.start == a.start + a.seq_len
    assert steps[-1].start + steps[-1].seq_len == 999
    assert all(5 <= s.seq_len <= 90 for s in steps[:-1])
    assert all(s.lr_scale == s.seq_len / 70 for s in steps)
    resumed = list(BPTTIterator(1000, 70, rng=make_rng(7), start=steps[4].start))
    assert resumed == steps[4:]
    with pytest.raises(ConfigError, match="not a segment boundary"):
        list(BPTTIterator(1000, 70, rng=make_rng(7), start=steps[4].start + 1))


def test_bptt_iterator_fixed_lengths_and_validation() -> None:
    steps = list(BPTTIterator(10, 4, variable=False))
    assert [(s.start, s.seq_len) for s in steps] == [(0, 4), (4, 4), (8, 1)]
    with pytest.raises(ConfigError, match="rng"):
        BPTTIterator(10, 4)
    with pytest.raises(ConfigError, match="bptt >= 1"):
        BPTTIterator(10, 0, variable=False)
