"""Token-budget batching (budget, coverage, reproducibility, resume) and collate."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from g2lstm.errors import CheckpointError, ConfigError, DataError
from g2lstm.mt.batching import TokenBatchSampler, collate, collate_lengths


def random_lengths(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(1, 60, n), rng.integers(1, 60, n)


def check_batches(sampler: TokenBatchSampler, batches: list[list[int]]) -> None:
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(sampler.sizes.size))  # every example exactly once
    for b in batches:
        cost = len(b) * int(sampler.sizes[b].max())
        assert cost <= sampler.max_tokens or len(b) == 1
        src = sampler.src_lengths[b]
        assert np.all(src[:-1] >= src[1:])  # descending source length inside a batch


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 80), st.integers(0, 80)), min_size=1, max_size=200),
    st.integers(1, 400),
    st.sampled_from([None, 1, 4, 16]),
    st.booleans(),
)
def test_budget_and_coverage(
    pairs: list[tuple[int, int]], max_tokens: int, bucket: int | None, shuffle: bool
) -> None:
    src, tgt = zip(*pairs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sampler = TokenBatchSampler(
            list(src), list(tgt), max_tokens, shuffle=shuffle, seed=3, bucket_width=bucket
        )
    oversize = max(max(p) for p in pairs) > max_tokens
    assert len(caught) == int(oversize)
    batches = list(sampler)
    assert len(batches) == sampler.num_batches
    check_batches(sampler, batches)


def test_batches_are_filled_reasonably() -> None:
    src, tgt = random_lengths(2000)
    sampler = TokenBatchSampler(src, tgt, 1000, seed=0)
    batches = list(sampler)
    used = sum(len(b) * int(sampler.sizes[b].max()) for b in batches)
    assert used > 0.8 * len(batches) * 1000  # sorted by length: little padding, full batches


def test_oversize_sentence_gets_own_batch_with_warning() -> None:
    with pytest.warns(UserWarning, match=r"1 example\(s\) are longer than max_tokens=50"):
        sampler = TokenBatchSampler([5, 120, 6, 7], [5, 3, 6, 7], 50, shuffle=False)
    batches = list(sampler)
    assert [1] in batches
    check_batches(sampler, batches)


def test_reproducible_per_seed_and_epoch() -> None:
    src, tgt = random_lengths(500)
    a = list(TokenBatchSampler(src, tgt, 600, seed=7, epoch=2))
    b = list(TokenBatchSampler(src, tgt, 600, seed=7, epoch=2))
    c = list(TokenBatchSampler(src, tgt, 600, seed=7, epoch=3))
    d = list(TokenBatchSampler(src, tgt, 600, seed=8, epoch=2))
    assert a == b
    assert a != c and a != d
    e = TokenBatchSampler(src, tgt, 600, seed=7, epoch=0)
    e.set_epoch(2)
    assert list(e) == a


def test_no_shuffle_goes_short_to_long() -> None:
    src, tgt = random_lengths(300)
    sampler = TokenBatchSampler(src, tgt, 500, shuffle=False)
    maxima = [int(sampler.sizes[b].max()) for b in sampler]
    assert maxima == sorted(maxima)
    assert list(sampler) == list(TokenBatchSampler(src, tgt, 500, shuffle=False, epoch=5))


def test_resume_mid_epoch_is_exact() -> None:
    src, tgt = random_lengths(400)
    full = list(TokenBatchSampler(src, tgt, 500, seed=1, epoch=4))
    first = TokenBatchSampler(src, tgt, 500, seed=1, epoch=4)
    it = iter(first)
    seen = [next(it) for _ in range(5)]
    state = first.state_dict()
    assert state["batches_done"] == 5 and state["epoch"] == 4
    assert all(isinstance(v, (int, str, bool)) for v in state.values())

    resumed = TokenBatchSampler(src, tgt, 500, seed=1, epoch=0)
    resumed.load_state_dict(state)
    assert len(resumed) == len(full) - 5
    assert seen + list(resumed) == full
    assert list(resumed) == full  # the skip applies to one iteration only

    explicit = first.state_dict(batches_done=3)
    resumed.load_state_dict(explicit)
    assert list(resumed) == full[3:]


def test_resume_with_other_data_is_refused() -> None:
    src, tgt = random_lengths(100)
    state = TokenBatchSampler(src, tgt, 500, seed=1).state_dict()
    other = TokenBatchSampler(src[::-1], tgt[::-1], 500, seed=1)
    with pytest.raises(CheckpointError, match="fingerprint"):
        other.load_state_dict(state)
    with pytest.raises(CheckpointError, match="max_tokens"):
        TokenBatchSampler(src, tgt, 400, seed=1).load_state_dict(state)


def test_invalid_arguments() -> None:
    with pytest.raises(ConfigError, match="max_tokens"):
        TokenBatchSampler([1], [1], 0)
    with pytest.raises(ConfigError, match="2 source lengths but 1"):
        TokenBatchSampler([1, 2], [1], 10)
    with pytest.raises(DataError, match="empty"):
        TokenBatchSampler([], [], 10)
    with pytest.raises(ConfigError, match="negative"):
        TokenBatchSampler([-1], [1], 10)
    with pytest.raises(ConfigError, match="bucket_width"):
        TokenBatchSampler([1], [1], 10, bucket_width=0)


def test_collate_shapes_and_padding() -> None:
    pad, bos, eos = 0, 2, 3
    pairs = [([10, 11, 12], [20, 21]), (np.array([13]), torch.tensor([22, 23, 24, 25]))]
    src, src_len, tgt_in, tgt_out = collate(pairs, pad, bos, eos)
    assert src.shape == (4, 2) and tgt_in.shape == (5, 2) and tgt_out.shape == (5, 2)
    assert all(t.dtype == torch.long for t in (src, src_len, tgt_in, tgt_out))
    assert src[:, 0].tolist() == [10, 11, 12, 3]
    assert src[:, 1].tolist() == [13, 3, 0, 0]
    assert src_len.tolist() == [4, 2]
    assert tgt_in[:, 0].tolist() == [2, 20, 21, 0, 0]
    assert tgt_out[:, 0].tolist() == [20, 21, 3, 0, 0]
    assert tgt_in[:, 1].tolist() == [2, 22, 23, 24, 25]
    assert tgt_out[:, 1].tolist() == [22, 23, 24, 25, 3]
    assert collate_lengths([10, 11, 12], [20, 21]) == (4, 3)
    # works with pack_padded_sequence when batches come from the sampler (sorted)
    packed = torch.nn.utils.rnn.pack_padded_sequence(src.unsqueeze(-1).float(), src_len)
    assert packed.data.shape[0] == 6


def test_collate_with_sampler_batches() -> None:
    rng = np.random.default_rng(0)
    data = [
        (rng.integers(4, 50, rng.integers(0, 20)), rng.integers(4, 50, rng.integers(0, 20)))
        for _ in range(100)
    ]
    lengths = [collate_lengths(s, t) for s, t in data]
    sampler = TokenBatchSampler([s for s, _ in lengths], [t for _, t in lengths], 80, seed=0)
    for idx in sampler:
        src, src_len, tgt_in, tgt_out = collate([data[i] for i in idx], 0, 2, 3)
        assert src.numel() <= 80 and tgt_in.numel() <= 80
        assert src_len.tolist() == sorted(src_len.tolist(), reverse=True)
        assert (tgt_out != 0).sum(0).tolist() == [len(data[i][1]) + 1 for i in idx]


def test_collate_errors() -> None:
    with pytest.raises(ConfigError, match="empty batch"):
        collate([], 0, 2, 3)
    from g2lstm.errors import ShapeError

    with pytest.raises(ShapeError, match="1-D"):
        collate([([[1, 2]], [1])], 0, 2, 3)


def test_for_pairs_counts_the_lengths_collate_gives():
    pairs = [([4, 5, 6], [7]), ([4], [7, 8, 9, 10]), ([5, 6], [8, 9])]
    got = TokenBatchSampler.for_pairs(pairs, 8, seed=3, bucket_width=2)
    want = TokenBatchSampler([4, 2, 3], [2, 5, 3], 8, seed=3, bucket_width=2)
    assert got.src_lengths.tolist() == [4, 2, 3] and got.tgt_lengths.tolist() == [2, 5, 3]
    assert list(got) == list(want)
    assert TokenBatchSampler.for_pairs(pairs, 8, shuffle=False).shuffle is False
