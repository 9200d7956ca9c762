"""``g2lstm compress``: compact files that reload to the in-memory compressed model, evaluation
of those files, fine-tuning that keeps the structure, and one-line errors (exit status 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from g2lstm.cli import main
from g2lstm.compress import compress
from g2lstm.compress.evaluators import load_compressed_model, load_target
from g2lstm.lm import preset_config, train
from g2lstm.lm.evaluate import resolve_checkpoint
from g2lstm.tasks.lm import LMEvaluator

HIDDEN = 32  # tiny preset with nhid 32; tied weights make the last layer emsize=16 wide


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, write_lm_corpus: Callable[..., Path]) -> Path:
    """A tiny LSTM language model trained for one epoch (~1 s)."""
    root = tmp_path_factory.mktemp("compress-cli")
    data = write_lm_corpus(root / "data")
    config = preset_config(
        "tiny",
        {
            "data": str(data),
            "model.cell": "lstm",
            "model.nhid": HIDDEN,
            "train.epochs": 1,
            "train.progress": False,
            "train.threads": 1,
        },
    )
    train(config, root / "run")
    return root / "run"


def _ppl(evaluator: LMEvaluator, target, model) -> float:  # type: ignore[no-untyped-def]
    return evaluator.score(target, model)


METHODS = [
    (["--method", "svd", "--rank", "2"], "low_rank", {"rank": 2}),
    (["--method", "round", "--step", "0.2", "--clip", "0.4"], "round", {"step": 0.2, "clip": 0.4}),
    (["--method", "quant", "--bits", "2"], "quantize", {"bits": 2}),
]


@pytest.mark.parametrize(("flags", "method", "params"), METHODS, ids=["svd", "round", "quant"])
def test_compressed_file_is_smaller_and_reloads_to_the_in_memory_model(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags, method, params
) -> None:
    out = tmp_path / "model.g2c.safetensors"
    assert main(["compress", str(run), *flags, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| **whole model** |" in printed and f"wrote {out}" in printed
    weights = resolve_checkpoint(run) / "model.safetensors"
    assert out.stat().st_size < weights.stat().st_size

    target = load_target(run)
    in_memory, report = compress(target.model, method, "gates_if", **params)
    loaded = load_compressed_model(out)
    assert loaded.kind == "lm" and loaded.config == target.config
    assert loaded.vocab.sha256() == target.extra.sha256()
    assert loaded.report["totals"]["bytes_after"] == report.bytes_after
    for name, tensor in in_memory.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    changed = in_memory.rnns[0].weight_hh_l0[:HIDDEN]
    assert not torch.equal(changed, target.model.rnns[0].weight_hh_l0[:HIDDEN])

    evaluator = LMEvaluator(batch_size=2)
    expected = _ppl(evaluator, target, in_memory)
    assert _ppl(evaluator, load_target(out), loaded.model) == expected
    assert main(["compress", "eval", str(out), "--batch-size", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["ppl"] == expected and result["cell"] == "lstm"
    assert result["compression_ratio"] == pytest.approx(report.compression_ratio)
    # `g2lstm lm eval` runs the compact file directly too
    assert main(["lm", "eval", str(out), "--batch-size", "2"]) == 0


def test_finetune_keeps_the_compressed_structure(run: Path, tmp_path: Path) -> None:
    plain, tuned = tmp_path / "plain.safetensors", tmp_path / "tuned.safetensors"
    flags = ["--method", "svd", "--rank", "2"]
    assert main(["compress", str(run), *flags, "-o", str(plain)]) == 0
    assert (
        main(
            [
                "compress",
                "apply",
                *flags,
                "-o",
                str(tuned),
                str(run),
                "--finetune-steps",
                "4",
                "--finetune-lr",
                "1.0",
            ]
        )
        == 0
    )
    a, b = load_compressed_model(plain).model, load_compressed_model(tuned).model
    w_plain, w_tuned = a.rnns[0].weight_hh_l0.detach(), b.rnns[0].weight_hh_l0.detach()
    assert not torch.allclose(w_plain, w_tuned)  # training moved the weights ...
    for gate in range(3):  # ... but the i and f blocks are still rank 2 (g is full rank)
        s = torch.linalg.svdvals(w_tuned[gate * HIDDEN : (gate + 1) * HIDDEN].double())
        assert (s[2] / s[0] < 1e-5) == (gate < 2), (gate, s[:4])


ERRORS = [
    (["--method", "svd", "--rank", "0"], "rank 0 is out of range"),
    (["--method", "svd", "--rank", "17"], "1 <= rank <= 16"),  # min(shape) of the 32x16 blocks
    (["--method", "round", "--step", "0"], "step must be a finite number > 0"),
    (["--method", "round", "--step", "-0.2"], "step must be a finite number > 0"),
    (["--method", "round", "--step", "0.2", "--clip", "0.3"], "multiple"),
    (["--method", "quant", "--bits", "0"], "1 <= bits <= 16"),
    (["--method", "svd", "--rank", "2", "--blocks", "gates_iff"], "unknown blocks 'gates_iff'"),
    (["--method", "svd", "--rank", "2", "--blocks", "rnns.7.weight_hh_l0"], "matches no 2-D"),
    (["--method", "svd"], "--method svd needs --rank"),
    (["--method", "round", "--step", "0.2", "--bits", "2"], "--bits does not apply"),
]


@pytest.mark.parametrize(("flags", "message"), ERRORS)
def test_invalid_settings_exit_2_with_one_line(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    out = tmp_path / "x.safetensors"
    assert main(["compress", str(run), *flags, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("g2lstm: error: ") and message in err
    assert "Traceback" not in err and not out.exists()


def test_file_errors_exit_2(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"not safetensors")
    assert main(["compress", str(run), "--method", "quant", "--bits", "4", "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["compress", "eval", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"g2lstm: error: {out}")
    assert main(["compress", "eval", str(tmp_path / "missing")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_translation_model_compresses_to_a_file_that_translates_alike(
    tmp_path: Path, write_parallel_corpus
) -> None:
    from g2lstm.mt.config import load_config
    from g2lstm.mt.prepare import prepare_dataset
    from g2lstm.mt.trainer import train as train_mt

    raw = write_parallel_corpus(tmp_path / "raw", {"train": 200, "valid": 20, "test": 20})
    prepare_dataset(raw, tmp_path / "prep", "src", "tgt", tokenize=False, bpe_merges=0)
    overrides = [f"train.data={tmp_path / 'prep'}", "train.valid_bleu=false", "train.epochs=1"]
    config = load_config("tiny", overrides=overrides)
    train_mt(config, tmp_path / "mt", show_progress=False)

    out = tmp_path / "mt.g2c.safetensors"
    assert (
        main(["compress", str(tmp_path / "mt"), "--method", "svd", "--rank", "4", "-o", str(out)])
        == 0
    )
    target = load_target(tmp_path / "mt")
    in_memory, _ = compress(target.model, "low_rank", rank=4)
    loaded = load_compressed_model(out)
    assert loaded.kind == "mt" and loaded.config == target.config
    for name, tensor in in_memory.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    sources = (tmp_path / "prep" / "test.src").read_text().splitlines()[:8]
    target.extra.model = in_memory
    want = target.extra.translate(sources, input_format="bpe").tok
    assert loaded.translator().translate(sources, input_format="bpe").tok == want
    assert main(["compress", "eval", str(out), "--limit", "5"]) == 0
