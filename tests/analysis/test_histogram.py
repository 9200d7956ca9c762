"""GateHistogram against direct computations; GateStats on recorded G2LSTM traces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from g2lstm import G2LSTM, GateRecorder
from g2lstm.analysis import GateHistogram, GateKey, GateStats
from g2lstm.errors import ConfigError


def _direct_counts(v: torch.Tensor, bins: int = 10) -> np.ndarray:
    """Bin k holds k/bins <= v < (k+1)/bins (last bin closed), edges in v's dtype."""
    out = []
    for k in range(bins):
        lo, hi = k / bins, (k + 1) / bins
        inside = (v >= lo) & ((v < hi) if k < bins - 1 else (v <= hi))
        out.append(int(inside.sum()))
    return np.array(out, dtype=np.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_edge_values_match_histc_and_direct_count(dtype: torch.dtype) -> None:
    v = torch.tensor([0.0, 0.1, 0.9, 1.0, 0.05, 0.5, 0.95, 0.0999, 0.8999], dtype=dtype)
    h = GateHistogram().update(v)
    expected = np.zeros(10)
    for b in (0, 1, 9, 9, 0, 5, 9, 0, 8):
        expected[b] += 1
    np.testing.assert_array_equal(h.counts, expected)
    np.testing.assert_array_equal(h.counts, torch.histc(v, bins=10, min=0, max=1).double().numpy())
    np.testing.assert_array_equal(h.counts, _direct_counts(v))
    assert h.counts.dtype == np.float64
    assert h.near_zero == pytest.approx(3 / 9)  # 0, 0.05, 0.0999 (0.1 is not < 0.1)
    assert h.near_one == pytest.approx(3 / 9)  # 0.9, 1.0, 0.95
    assert h.near_binary == pytest.approx(6 / 9)
    assert h.mean == pytest.approx(float(v.double().mean()))


def test_random_values_match_direct_count_and_numpy() -> None:
    g = torch.Generator().manual_seed(0)
    v = torch.rand(5000, generator=g, dtype=torch.float64) ** 3  # skewed towards 0
    h = GateHistogram().update(v.view(50, 100))
    np.testing.assert_array_equal(h.counts, _direct_counts(v))
    np.testing.assert_array_equal(h.counts, np.histogram(v.numpy(), bins=10, range=(0, 1))[0])
    assert h.fractions().sum() == pytest.approx(1.0)
    assert h.count == 5000


def test_streaming_in_chunks_equals_one_shot_and_merge() -> None:
    g = torch.Generator().manual_seed(1)
    v = torch.sigmoid(3 * torch.randn(2000, generator=g))
    one = GateHistogram().update(v)
    streamed = GateHistogram()
    for chunk in torch.split(v, [1, 10, 333, 0, 656, 1000]):
        streamed.update(chunk)
    np.testing.assert_array_equal(streamed.counts, one.counts)
    assert streamed.total == pytest.approx(one.total, rel=1e-12)
    merged = GateHistogram().update(v[:700]).merge(GateHistogram().update(v[700:]))
    np.testing.assert_array_equal(merged.counts, one.counts)
    back = GateHistogram.from_dict(one.to_dict())
    np.testing.assert_array_equal(back.counts, one.counts)
    assert back.near_binary == one.near_binary


@pytest.mark.parametrize("bad", [[-0.01, 0.5], [0.5, 1.0001], [float("nan")]])
def test_values_outside_unit_interval_are_refused(bad: list[float]) -> None:
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        GateHistogram().update(torch.tensor(bad))


def test_empty_histogram_and_bad_bins() -> None:
    h = GateHistogram().update(torch.empty(0))
    assert h.count == 0 and h.near_binary == 0 and np.isnan(h.mean)
    with pytest.raises(ConfigError):
        GateHistogram(bins=0)
    with pytest.raises(ConfigError):
        GateHistogram(bins=10).merge(GateHistogram(bins=5))


def test_gate_stats_counts_every_gate_of_a_tiny_g2lstm() -> None:
    torch.manual_seed(0)
    lstm = G2LSTM(4, 3, num_layers=2).eval()
    x = torch.randn(7, 5, 4)
    stats = GateStats()
    with GateRecorder(lstm, keep=False, callback=stats), torch.no_grad():
        lstm(x)
        lstm(x[:3])
    assert stats.n_traces == 4
    assert len(stats.keys()) == 2 * 3  # 2 layers x 1 direction x 3 gates
    for key, h in stats.histograms.items():
        assert h.count == (7 + 3) * 5 * 3, key
        assert h.fractions().sum() == pytest.approx(1.0)
    # the histogram equals a direct computation on the kept traces
    with GateRecorder(lstm) as rec, torch.no_grad():
        lstm(x)
        lstm(x[:3])
    forget_l1 = torch.cat([t.forget.reshape(-1) for _, t in rec.traces if t.layer == 1])
    np.testing.assert_array_equal(
        stats.histogram("", 1, 0, "forget").counts, _direct_counts(forget_l1)
    )
    assert stats.layers() == [("", 0), ("", 1)]
    means = stats.means()
    assert set(means) == {"input", "forget", "output"} and all(0 < m < 1 for m in means.values())


def test_gate_stats_respects_padding_mask_and_directions() -> None:
    torch.manual_seed(0)
    lstm = G2LSTM(4, 3, bidirectional=True).eval()
    lengths = torch.tensor([5, 2, 4])
    packed = pack_padded_sequence(torch.randn(5, 3, 4), lengths, enforce_sorted=False)
    stats = GateStats(gates=("forget",))
    with GateRecorder(lstm, keep=False, callback=stats), torch.no_grad():
        lstm(packed)
    assert set(stats.keys()) == {GateKey("", 0, 0, "forget"), GateKey("", 0, 1, "forget")}
    for h in stats.histograms.values():
        assert h.count == int(lengths.sum()) * 3
    pooled = stats.merged("forget")
    assert pooled.count == 2 * int(lengths.sum()) * 3
    again = GateStats.from_dict(stats.to_dict())
    assert again.keys() == stats.keys()
    np.testing.assert_array_equal(again.merged("forget").counts, pooled.counts)
    both = stats.merge(again)
    assert both.merged("forget").count == 2 * pooled.count


def test_gate_stats_rejects_unknown_gate() -> None:
    with pytest.raises(ConfigError, match="subset"):
        GateStats(gates=("cell",))
