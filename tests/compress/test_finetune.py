"""Fine-tuning after compression (LM and MT): the compressed structure is kept exactly, the
loss on the fine-tune batches goes down, the input model is untouched, the saved file reloads
bit-identically and runs; rounded and quantised blocks move through their shadows (steps far
below half a grid step still change their codes); the CLI (``compress`` and ``compress
sweep``) and its errors."""

from __future__ import annotations

import copy
import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from g2lstm.cli import main
from g2lstm.compress import compress, load_compressed_model, save_compressed
from g2lstm.compress.codecs import get_codec
from g2lstm.compress.evaluators import load_target
from g2lstm.compress.finetune import finetune, finetune_task
from g2lstm.compress.report import CompressionReport
from g2lstm.errors import ConfigError, DataError, TrainingError
from g2lstm.tasks.lm import LMEvaluator

# ------------------------------------------------------------------ tiny models


@pytest.fixture(scope="module")
def mt_run(tmp_path_factory: pytest.TempPathFactory, write_parallel_corpus) -> Path:
    """A tiny MT model (G2-LSTM, H=32) trained for one epoch on a toy reversal task."""
    from g2lstm.mt.config import load_config
    from g2lstm.mt.prepare import prepare_dataset
    from g2lstm.mt.trainer import train as train_mt

    root = tmp_path_factory.mktemp("finetune-mt")
    raw = write_parallel_corpus(root / "raw", {"train": 200, "valid": 20, "test": 20})
    prepare_dataset(raw, root / "prep", "src", "tgt", tokenize=False, bpe_merges=0)
    config = load_config(
        "tiny",
        overrides=[
            f"train.data={root / 'prep'}",
            "train.epochs=1",
            "train.valid_bleu=false",
            "train.max_tokens=120",
            "train.threads=1",
        ],
    )
    train_mt(config, root / "run", show_progress=False)
    return root / "run"


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory: pytest.TempPathFactory, write_lm_corpus: Callable[..., Path]) -> Path:
    """A tiny LSTM language model (H=32) trained for one epoch."""
    from g2lstm.lm import preset_config, train

    root = tmp_path_factory.mktemp("finetune-lm")
    write_lm_corpus(root / "data")
    config = preset_config(
        "tiny",
        {
            "data": str(root / "data"),
            "model.cell": "lstm",
            "model.nhid": 32,
            "train.epochs": 1,
            "train.progress": False,
            "train.threads": 1,
        },
    )
    train(config, root / "run")
    return root / "run"


# ------------------------------------------------------------------ structure checks


def assert_structure(model: nn.Module, report: CompressionReport) -> None:
    """Every compressed block of ``model`` is exactly of its report's structure."""
    state = model.state_dict()
    assert report.blocks
    for b in report.blocks:
        w = state[b.block.param][b.block.rows].double()
        name = b.block.name
        if b.method == "low_rank":
            s = torch.linalg.svdvals(w)
            rank = b.params["rank"]
            assert s[rank] / s[0] < 1e-5, (name, s)  # at most rank r ...
            assert s[rank - 1] / s[0] > 1e-4, (name, s)  # ... and not less
        elif b.method == "round":
            steps = w / b.params["step"]
            assert torch.allclose(steps, steps.round(), rtol=0, atol=1e-4), name
            assert w.abs().max() <= b.params["clip"] + 1e-6, name
        else:
            levels = 2 ** b.params["bits"] - 1  # symmetric levels -q_max*s .. q_max*s per row
            assert max(len(torch.unique(row)) for row in w) <= levels, name


def _changed_blocks(a: nn.Module, b: nn.Module, report: CompressionReport) -> bool:
    """Some compressed block moved by more than the round-off of re-projecting it (1e-3)."""
    sa, sb = a.state_dict(), b.state_dict()
    moved = [
        (sa[x.block.param][x.block.rows] - sb[x.block.param][x.block.rows]).norm()
        / (sa[x.block.param][x.block.rows].norm() + 1e-12)
        for x in report.blocks
    ]
    return max(moved) > 1e-3


CASES = [
    ("mt", "low_rank", {"rank": 2}, 1e-2),
    ("mt", "round", {"step": 0.5, "clip": 1.0}, 3e-2),  # paper setting; Adam steps < step / 2
    ("mt", "quantize", {"bits": 2}, 1e-2),
    ("lm", "low_rank", {"rank": 2}, 1.0),
]


@pytest.mark.parametrize(
    ("kind", "method", "params", "lr"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_finetuned_model_keeps_its_structure_and_fits_the_batches_better(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    checksum: Any,
    kind: str,
    method: str,
    params: dict[str, Any],
    lr: float,
) -> None:
    target = load_target(request.getfixturevalue(f"{kind}_run"))
    before_input = checksum(target.model)
    model, report = compress(target.model, method, "gates_if", **params)
    plain = compress(target.model, method, "gates_if", **params)[0]
    task = finetune_task(target)
    assert task.kind == kind and task.num_batches >= 4 and task.clip == target.config.optim.clip
    steps = min(task.num_batches, 8)
    loss_before = task.mean_loss(model, steps)
    losses: list[float] = []
    tuned = task.run(model, report, 2 * steps, lr, on_step=lambda k, v: losses.append(v))
    assert len(losses) == 2 * steps and all(v > 0 for v in losses)
    assert task.mean_loss(model, steps) < loss_before  # it learned something ...
    assert _changed_blocks(model, plain, report)  # ... in the compressed blocks too
    assert_structure(model, tuned)  # ... which keep their structure exactly
    assert [(b.block, b.method) for b in tuned.blocks] == [
        (b.block, b.method) for b in report.blocks
    ]
    assert all(params.items() <= dict(b.params).items() for b in tuned.blocks)
    assert checksum(target.model) == before_input  # the input model is untouched

    out = tmp_path / "tuned.g2c.safetensors"
    save_compressed(out, model, tuned, config=target.file_config)
    loaded = load_compressed_model(out)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    if kind == "mt":
        sources = (Path(target.file_config["data"]["prepared_dir"]) / "test.src").read_text()
        lines = sources.splitlines()[:6]
        target.extra.model = model
        want = target.extra.translate(lines, input_format="bpe").tok
        assert loaded.translator().translate(lines, input_format="bpe").tok == want
    else:
        evaluator = LMEvaluator(batch_size=2, max_batches=3)
        ppl = evaluator.score(load_target(out), loaded.model)
        assert ppl == evaluator.score(target, model) and ppl < 1e4


# ------------------------------------------------------------------ shadows (straight-through)


def adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)


def _codes_changed(a: CompressionReport, b: CompressionReport) -> float:
    """Fraction of the integer codes of all blocks that differ between two reports."""
    changed = sum(
        int((x.payload["codes"] != y.payload["codes"]).sum())
        for x, y in zip(a.blocks, b.blocks, strict=True)
    )
    return changed / sum(x.payload["codes"].numel() for x in a.blocks)


def assert_payloads_match(model: nn.Module, report: CompressionReport) -> None:
    """Every block of ``model`` is exactly the decoded payload of its report."""
    state = model.state_dict()
    for b in report.blocks:
        w = state[b.block.param][b.block.rows]
        assert torch.equal(get_codec(b.method).decode(b.payload, b.params, w.dtype), w)


@pytest.mark.parametrize(
    ("method", "params"), [("round", {"step": 0.2, "clip": 0.4}), ("quantize", {"bits": 2})]
)
def test_rounded_and_quantised_blocks_change_at_the_papers_settings(
    lm_run: Path, method: str, params: dict[str, Any]
) -> None:
    """Adam at lr 0.01 moves a weight by at most ~0.03 per step, far below half the grid step
    (0.1): projecting after every step would round each change away and leave every code as it
    was. Through the shadows the changes add up and the codes move, on the grid."""
    target = load_target(lm_run)
    model, report = compress(target.model, method, "gates_if", **params)
    task = finetune_task(target)
    params_before = list(model.parameters())
    loss_before = task.mean_loss(model, 8)
    tuned = finetune(
        model, report, task.step_loss, 40, 0.01, clip=task.clip, seed=task.seed, optimizer=adam
    )
    assert _codes_changed(report, tuned) > 0.05  # 0.0 when re-projecting after each step
    assert task.mean_loss(model, 8) < loss_before
    assert_structure(model, tuned)  # on the grid, within the clip / at most 3 levels a row
    assert_payloads_match(model, tuned)
    assert all(a is b for a, b in zip(model.parameters(), params_before, strict=True))
    assert type(model) is type(target.model)  # a plain model: no parametrisation left


def test_shadows_start_from_dense_weights_on_a_plain_lstm(
    tiny_lm: nn.Module, tokens: torch.Tensor, model_cls: Any
) -> None:
    """``nn.LSTM`` (flat weights): the forward sees the projected weights from the first step,
    the output is that of a fresh model with the fine-tuned weights, a failing optimizer step
    leaves the model projected."""
    compressed, report = compress(tiny_lm, "round", "gates_if", step=0.2, clip=0.4)
    dense = copy.deepcopy(tiny_lm)
    losses: list[float] = []

    def step_loss(m: nn.Module, step: int) -> torch.Tensor:
        logits = m(tokens[:-1])
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), tokens[1:].flatten())
        losses.append(float(loss.detach()))
        return loss

    tuned = finetune(dense, report, step_loss, 30, 0.01, optimizer=adam)
    assert losses[-1] < losses[0] and _codes_changed(report, tuned) > 0.05
    assert losses[0] == step_loss(compressed, 0)  # the first forward is at the projection
    assert_structure(dense, tuned)
    assert_payloads_match(dense, tuned)
    fresh = model_cls.from_config(tiny_lm.config)
    fresh.load_state_dict(dense.state_dict())
    assert torch.equal(fresh(tokens), dense(tokens))

    class Failing(torch.optim.SGD):
        def step(self, closure: Any = None) -> Any:
            super().step(closure)  # the shadows are in the model, and updated ...
            if len(losses) > 33:
                raise RuntimeError("optimizer failed")  # ... when the step fails

    with pytest.raises(RuntimeError, match="optimizer failed"):
        finetune(
            dense, tuned, step_loss, 5, 0.5, optimizer=lambda m, lr: Failing(m.parameters(), lr=lr)
        )
    assert_structure(dense, tuned)  # projected again


# ------------------------------------------------------------------ the generic loop


def _tiny_report(model: nn.Module) -> tuple[nn.Module, CompressionReport]:
    return compress(model, "low_rank", "gates_if", rank=2)


def test_finetune_refuses_bad_settings_and_non_finite_losses(
    tiny_lm: nn.Module, tokens: torch.Tensor
) -> None:
    model, report = _tiny_report(tiny_lm)

    def step_loss(m: nn.Module, step: int) -> torch.Tensor:
        return m(tokens).square().mean()

    for kwargs, message in (
        ({"steps": 0}, "steps must be an integer"),
        ({"steps": True}, "steps must be an integer"),
        ({"lr": 0.0}, "learning rate"),
        ({"lr": float("nan")}, "learning rate"),
        ({"clip": -1.0}, "gradient clip"),
    ):
        args = {"steps": 1, "lr": 0.1, **kwargs}
        clip = args.pop("clip", 0.25)
        with pytest.raises(ConfigError, match=message):
            finetune(model, report, step_loss, args["steps"], args["lr"], clip=clip)
    with pytest.raises(ConfigError, match="scalar"):
        finetune(model, report, lambda m, k: m(tokens), 1, 0.1)

    def nan_at_step_1(m: nn.Module, step: int) -> torch.Tensor:
        return step_loss(m, step) * (float("nan") if step == 1 else 1.0)

    state = torch.random.get_rng_state()
    with pytest.raises(TrainingError, match="fine-tune step 1: loss is nan"):
        finetune(model, report, nan_at_step_1, 3, 0.1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is restored
    assert not model.training  # and the mode


# ------------------------------------------------------------------ the CLI


def test_cli_finetunes_a_translation_model(
    mt_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain, tuned = tmp_path / "plain.safetensors", tmp_path / "tuned.safetensors"
    flags = ["--method", "svd", "--rank", "2"]
    assert main(["compress", str(mt_run), *flags, "-o", str(plain)]) == 0
    assert (
        main(
            [
                "compress",
                "apply",
                *flags,
                "-o",
                str(tuned),
                str(mt_run),
                "--finetune-steps",
                "4",
                "--finetune-lr",
                "0.01",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "fine-tuning 4 steps at lr 0.01" in err and "label smoothing 0.1" in err
    a, b = load_compressed_model(plain), load_compressed_model(tuned)
    assert b.kind == "mt" and b.report["blocks"] and a.report["blocks"]
    report = compress(load_target(mt_run).model, "low_rank", "gates_if", rank=2)[1]
    assert _changed_blocks(a.model, b.model, report)
    assert_structure(b.model, report)
    assert main(["compress", "eval", str(tuned), "--limit", "4", "--split", "valid"]) == 0
    assert "tokenised BLEU" in capsys.readouterr().out


def test_cli_sweep_finetunes_translation_models(mt_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert (
        main(
            [
                "compress",
                "sweep",
                str(mt_run),
                "-o",
                str(out),
                "--paper-only",
                "--no-plot",
                "--split",
                "valid",
                "--limit",
                "3",
                "--finetune-steps",
                "2",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((out / "sweep.csv").open(encoding="utf-8")))
    assert [r["setting"] for r in rows] == ["original", "round", "round_clip", "svd_4", "svd_2"]
    assert [int(r["finetune_steps"]) for r in rows] == [0, 2, 2, 2, 2]
    # the error reported is that of the last re-projection, far below the plain compression's
    plain = compress(load_target(mt_run).model, "low_rank", "gates_if", rank=4)[1]
    assert float(rows[3]["rel_error"]) < plain.rel_error / 2


def test_cli_refuses_training_data_that_is_missing_or_of_another_vocabulary(
    mt_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], write_parallel_corpus
) -> None:
    from g2lstm.mt.prepare import prepare_dataset

    sizes = {"train": 20, "valid": 5, "test": 5}
    other = write_parallel_corpus(tmp_path / "raw", sizes, seed=1, words=7)
    prepare_dataset(other, tmp_path / "prep", "src", "tgt", tokenize=False, bpe_merges=0)
    out = tmp_path / "x.safetensors"
    base = [
        "compress",
        str(mt_run),
        "--method",
        "svd",
        "--rank",
        "2",
        "-o",
        str(out),
        "--finetune-steps",
        "2",
        "--finetune-data",
    ]
    for data, message in (
        (tmp_path / "missing", "not a prepared MT folder"),
        (tmp_path / "prep", "source vocabulary"),
    ):
        assert main([*base, str(data)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "fine-tune of" in err and message in err, err
        assert not out.exists()
    target = load_target(mt_run)
    with pytest.raises(DataError, match="--finetune-data"):
        finetune_task(target, data=tmp_path / "missing")
