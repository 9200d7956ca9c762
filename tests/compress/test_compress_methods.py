"""low_rank, round_clip, quantize: structure, purity, report, errors, projector."""

from __future__ import annotations

import math

import pytest
import torch

from g2lstm.compress import (
    CompressionReport,
    compress,
    low_rank,
    quantize,
    round_clip,
    select_blocks,
    structure_projector,
)
from g2lstm.errors import ConfigError

H = 10  # hidden size of the tiny_lm fixture


def _blocks(model, report):
    state = model.state_dict()
    return [(b, state[b.block.param][b.block.rows]) for b in report.blocks]


def test_low_rank_is_exactly_rank_r_and_optimal(tiny_lm):
    new, report = low_rank(tiny_lm, 3)
    assert len(report.blocks) == 16
    original = tiny_lm.state_dict()
    for br, w in _blocks(new, report):
        w64 = w.double()
        s = torch.linalg.svdvals(w64)
        assert torch.linalg.matrix_rank(w64, rtol=1e-5).item() == 3
        assert s[3:].max() < 1e-5 * s[0]
        # Eckart-Young: the error is the tail of the original singular values
        s_orig = torch.linalg.svdvals(original[br.block.param][br.block.rows].double())
        expected = math.sqrt((s_orig[3:] ** 2).sum() / (s_orig**2).sum())
        assert br.rel_error == pytest.approx(expected, rel=1e-4)
        m, n = br.block.shape
        assert br.bytes_after == 3 * (m + n) * 4
        assert br.payload["U"].shape == (m, 3) and br.payload["V"].shape == (3, n)


def test_full_rank_is_lossless_and_fp16_factors(tiny_lm):
    new, report = low_rank(tiny_lm, H)
    assert report.rel_error < 1e-6
    _, half = low_rank(tiny_lm, 2, factor_dtype="float16")
    assert all(b.payload["U"].dtype == torch.float16 for b in half.blocks)
    assert half.bytes_after == sum(2 * sum(b.block.shape) * 2 for b in half.blocks)


def test_round_values_on_grid_and_clip_bounds(tiny_lm):
    # scale the weights up so that clipping really happens
    big = {k: v * 8 for k, v in tiny_lm.state_dict().items()}
    rounded, r_report = round_clip(big, 0.2)
    clipped, c_report = round_clip(big, 0.2, clip=0.4)
    assert max(b.rel_error for b in c_report.blocks) > max(b.rel_error for b in r_report.blocks)
    for state, report in ((rounded, r_report), (clipped, c_report)):
        for br in report.blocks:
            w = state[br.block.param][br.block.rows].double()
            codes = w / 0.2
            assert torch.allclose(codes, codes.round(), atol=1e-5)
    values = torch.cat([clipped[b.block.param][b.block.rows].flatten() for b in c_report.blocks])
    assert values.abs().max().item() == pytest.approx(0.4)
    allowed = torch.tensor([-0.4, -0.2, 0.0, 0.2, 0.4])
    assert torch.isin(values, allowed).all()
    assert (values.abs() == torch.tensor(0.4)).any()
    # unclipped rounding keeps larger values
    unclipped = torch.cat([rounded[b.block.param][b.block.rows].flatten() for b in r_report.blocks])
    assert unclipped.abs().max() > 0.4
    # rounding is idempotent
    again, _ = round_clip(clipped, 0.2, clip=0.4)
    assert all(torch.equal(again[k], clipped[k]) for k in clipped)


def test_quantize_levels():
    torch.manual_seed(3)
    state = {"w": torch.randn(6, 9)}
    ternary, _ = quantize(state, 2, blocks=["w"])
    for row, orig in zip(ternary["w"], state["w"]):
        s = orig.abs().max()
        assert set(row.unique().tolist()) <= {-s.item(), 0.0, s.item()}
    binary, _ = quantize(state, 1, blocks=["w"])
    for row, orig in zip(binary["w"], state["w"]):
        assert torch.equal(row.abs(), orig.double().abs().mean().float().expand_as(row))
        assert torch.equal(row.sign(), torch.where(orig >= 0, 1.0, -1.0))
    int8, report = quantize(state, 8, blocks=["w"])
    codes = report.blocks[0].payload["codes"]
    assert codes.dtype == torch.int8 and codes.abs().max() == 127
    assert torch.allclose(int8["w"], state["w"], atol=state["w"].abs().max().item() / 254 + 1e-6)
    per_tensor, t_report = quantize(state, 3, blocks=["w"], per="tensor")
    assert t_report.blocks[0].payload["scales"].shape == (1, 1)
    assert per_tensor["w"].unique().numel() <= 7


def test_report_on_hand_computed_example():
    w = torch.tensor([[0.3, -0.9, 0.5, 0.0], [0.2, 0.1, -0.4, 0.4]])
    state = {"w": w, "b": torch.zeros(3)}
    new, report = quantize(state, 2, blocks=["w"])
    expected = torch.tensor([[0.0, -0.9, 0.9, 0.0], [0.0, 0.0, -0.4, 0.4]])
    assert torch.equal(new["w"], expected)  # 0.2 / 0.4 = 0.5 rounds half to even -> 0
    (br,) = report.blocks
    assert br.rel_error == pytest.approx(math.sqrt(0.30 / 1.52), rel=1e-6)
    assert br.norm == pytest.approx(math.sqrt(1.52), rel=1e-6)
    assert (br.bytes_before, br.bytes_after) == (32, 2 + 2 * 4)
    assert (report.model_bytes_before, report.model_bytes_after) == (44, 22)
    assert report.compression_ratio == pytest.approx(3.2)
    assert report.model_compression_ratio == pytest.approx(2.0)

    diag = {"d": torch.diag(torch.tensor([3.0, 2.0, 1.0]))}
    _, lr = low_rank(diag, 1, blocks=["d"])
    assert lr.blocks[0].rel_error == pytest.approx(math.sqrt(5 / 14), rel=1e-6)
    assert (lr.blocks[0].bytes_before, lr.blocks[0].bytes_after) == (36, 24)

    row = {"r": torch.tensor([[0.26, -1.7, 0.74, 0.1]])}
    rounded, rr = round_clip(row, 0.5, clip=1.0, blocks=["r"])
    assert torch.equal(rounded["r"], torch.tensor([[0.5, -1.0, 0.5, 0.0]]))
    assert rr.blocks[0].bytes_after == 1  # codes in [-2, 1]: 2 bits x 4 = 1 byte

    as_dict = report.to_dict()
    assert as_dict["totals"]["model_compression_ratio"] == pytest.approx(2.0)
    assert CompressionReport.from_dict(as_dict).blocks[0].block == br.block
    table = report.to_markdown()
    assert "`w`" in table and "bits=2" in table and "2.00x" in table


@pytest.mark.parametrize(
    ("fn", "kwargs"),
    [(low_rank, {"rank": 4}), (round_clip, {"step": 0.1}), (quantize, {"bits": 4})],
)
def test_input_untouched_and_only_if_rows_change(tiny_lm, checksum, fn, kwargs):
    before = checksum(tiny_lm)
    original = {k: v.clone() for k, v in tiny_lm.state_dict().items()}
    new, report = fn(tiny_lm, **kwargs)
    assert checksum(tiny_lm) == before
    assert new is not tiny_lm
    changed = new.state_dict()
    for name, tensor in original.items():
        if name in {b.block.param for b in report.blocks}:
            assert torch.equal(changed[name][2 * H :], tensor[2 * H :]), name  # g and o rows
            assert not torch.equal(changed[name][: 2 * H], tensor[: 2 * H]), name
        else:
            assert torch.equal(changed[name], tensor), name
    # a state dict input is not modified either, and a new dict comes back
    sd = tiny_lm.state_dict()
    new_sd, _ = fn(sd, **kwargs)
    assert checksum(sd) == before and new_sd is not sd


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda m: low_rank(m, 0),
            r"rank 0 is out of range for block 'rnn.weight_ih_l0\[i\]'.*\(10, 12\)",
        ),
        (lambda m: low_rank(m, 11), r"rank 11 .*\(10, 12\).*<= 10"),
        (lambda m: low_rank(m, 0.5), "rank_for_fraction"),
        (lambda m: low_rank(m, 2, factor_dtype="int8"), "factor_dtype"),
        (lambda m: round_clip(m, 0.0), "step must be"),
        (lambda m: round_clip(m, -0.2), "step must be"),
        (lambda m: round_clip(m, float("nan")), "step must be"),
        (lambda m: round_clip(m, 0.2, clip=0.0), "clip must be"),
        (lambda m: round_clip(m, 0.2, clip=0.3), "multiple of step"),
        (lambda m: quantize(m, 0), "bits must be"),
        (lambda m: quantize(m, 17), "bits must be"),
        (lambda m: quantize(m, 4, per="column"), "per must be"),
        (lambda m: round_clip(m, 0.2, blocks="gates_xx"), "valid presets"),
        (lambda m: compress(m, "prune", amount=0.5), "valid methods"),
        (lambda m: compress(m, "round", step=0.2, bits=3), "unknown parameter"),
        (lambda m: compress(m, "quantize"), "needs the parameter"),
    ],
)
def test_errors(tiny_lm, checksum, call, match):
    before = checksum(tiny_lm)
    with pytest.raises(ConfigError, match=match):
        call(tiny_lm)
    assert checksum(tiny_lm) == before


def test_non_finite_weights_rejected(tiny_lm):
    state = tiny_lm.state_dict()
    state["rnn.weight_hh_l1"] = state["rnn.weight_hh_l1"].clone()
    state["rnn.weight_hh_l1"][H + 1, 0] = float("nan")
    with pytest.raises(ConfigError, match=r"weight_hh_l1\[f\].*NaN"):
        low_rank(state, 2)


def test_projector_restores_structure_after_a_step(tiny_lm):
    lr_model, lr_report = low_rank(tiny_lm, 2, blocks="all_gates")
    rd_model, rd_report = round_clip(tiny_lm, 0.25, clip=0.5)
    q_model, q_report = quantize(tiny_lm, 3)
    for model, report in ((lr_model, lr_report), (rd_model, rd_report), (q_model, q_report)):
        project = structure_projector(report)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        model(torch.randint(0, 30, (5, 2))).sum().backward()
        optimizer.step()
        new_report = project(model)
        assert new_report is project.report and len(new_report.blocks) == len(report.blocks)
        for br, w in _blocks(model, new_report):
            w64 = w.double()
            if br.method == "low_rank":
                s = torch.linalg.svdvals(w64)
                assert s[2:].max() < 1e-5 * s[0]
                assert s[1] > 1e-3 * s[0]
            elif br.method == "round":
                assert torch.allclose(w64 / 0.25, (w64 / 0.25).round(), atol=1e-5)
                assert w64.abs().max() <= 0.5
            else:
                codes, scales = br.payload["codes"], br.payload["scales"]
                assert codes.abs().max() == 3  # 3 bits: levels -3..3
                assert torch.equal(w, (codes.double() * scales.double()).to(w.dtype))
    with pytest.raises(ConfigError, match="fits block"):
        structure_projector(lr_report)({"x": torch.zeros(2)})


def test_select_blocks_matches_report(tiny_lm):
    _, report = quantize(tiny_lm, 4, blocks="all_gates")
    assert [b.block for b in report.blocks] == select_blocks(tiny_lm, "all_gates")
