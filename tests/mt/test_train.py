"""Training: the loss, learning a toy task, exact resume, budgets, and a Multi30k slice."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from g2lstm.errors import CheckpointError
from g2lstm.mt.config import load_config
from g2lstm.mt.objective import label_smoothed_loss
from g2lstm.mt.prepare import prepare_dataset, prepare_multi30k
from g2lstm.mt.trainer import train
from g2lstm.mt.translate import evaluate_split, load_translator


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory: pytest.TempPathFactory, write_parallel_corpus) -> Path:
    """The toy task (``s3 s7`` -> ``t7 t3``), 400/40/40 pairs, prepared without BPE."""
    root = tmp_path_factory.mktemp("toy")
    raw = write_parallel_corpus(root / "raw", {"train": 400, "valid": 40, "test": 40})
    prepare_dataset(raw, root / "prep", "src", "tgt", tokenize=False, bpe_merges=0)
    return root / "prep"


def toy_config(data: Path, *overrides: str):  # type: ignore[no-untyped-def]
    return load_config(
        "tiny",
        overrides=[
            f"train.data={data}",
            "train.valid_bleu=false",
            "train.max_tokens=200",
            "train.epochs=5",
            "model.dropout=0.0",
            *overrides,
        ],
    )


def test_label_smoothed_loss_matches_torch() -> None:
    logits, target = torch.randn(7, 11), torch.randint(0, 11, (7,))
    for eps in (0.0, 0.1):
        loss, nll = label_smoothed_loss(logits, target, eps)
        want = F.cross_entropy(logits, target, label_smoothing=eps, reduction="sum")
        torch.testing.assert_close(loss, want)
        torch.testing.assert_close(nll, F.cross_entropy(logits, target, reduction="sum"))


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    from g2lstm.train import CheckpointManager, load_checkpoint

    return load_checkpoint(CheckpointManager(run).latest()).model_state


def test_resume_reproduces_an_uninterrupted_run_exactly(toy_data: Path, tmp_path: Path) -> None:
    cfg = toy_config(toy_data, "model.cell=g2", "model.dropout=0.3", "train.max_updates=30")
    full = train(cfg, tmp_path / "full", show_progress=False)
    assert full.stopped == "max_updates" and full.steps == 30 and full.epochs >= 1
    part = toy_config(toy_data, "model.cell=g2", "model.dropout=0.3", "train.max_updates=13")
    assert train(part, tmp_path / "split", show_progress=False).steps == 13
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        train(cfg, tmp_path / "split", show_progress=False)
    changed = toy_config(toy_data, "model.cell=lstm", "model.dropout=0.3", "train.max_updates=30")
    with pytest.raises(CheckpointError, match=r"model\.gates\.cell: 'g2' -> 'lstm'"):
        train(changed, tmp_path / "split", resume=True, show_progress=False)
    resumed = train(cfg, tmp_path / "split", resume=True, show_progress=False)
    assert resumed.steps == 30
    a, b = _final_weights(tmp_path / "full"), _final_weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    rows = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == list(range(10, 31, 10))


def test_time_budget_stops_with_a_checkpoint(toy_data: Path, tmp_path: Path) -> None:
    cfg = toy_config(toy_data, "train.max_minutes=1e-6")
    result = train(cfg, tmp_path / "run", show_progress=False)
    assert result.stopped == "max_minutes" and result.steps == 1
    assert result.best_checkpoint is not None and Path(result.best_checkpoint).is_dir()
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (saved["task"], saved["stopped"], saved["finished"]) == ("mt", "max_minutes", True)
    assert saved["details"]["best_checkpoint"] == result.best_checkpoint


def _rows(run: Path, kind: str) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == kind]


def test_trainer_follows_the_step_schedule(toy_data: Path, tmp_path: Path) -> None:
    cfg = toy_config(
        toy_data,
        "optim.lr=0.004",
        "optim.schedule=step",
        "optim.decay_start=1",
        "optim.lr_decay=0.5",
        "train.epochs=3",
        "train.log_every=1",
    )
    train(cfg, tmp_path / "run", show_progress=False)
    lr_by_epoch = {r["epoch"]: set() for r in _rows(tmp_path / "run", "train")}
    for r in _rows(tmp_path / "run", "train"):
        lr_by_epoch[r["epoch"]].add(r["lr"])
    assert lr_by_epoch == {0: {0.004}, 1: {0.002}, 2: {0.001}}
    # the plateau rule would have kept 0.004 while the toy task's validation loss improves
    assert [r["valid_loss"] for r in _rows(tmp_path / "run", "valid")] == sorted(
        (r["valid_loss"] for r in _rows(tmp_path / "run", "valid")), reverse=True
    )


def test_resume_is_exact_under_inverse_sqrt(toy_data: Path, tmp_path: Path) -> None:
    common = ("optim.schedule=inverse_sqrt", "optim.warmup=8", "optim.lr=0.005")
    full = toy_config(toy_data, *common, "train.max_updates=20")
    train(full, tmp_path / "full", show_progress=False)
    train(
        toy_config(toy_data, *common, "train.max_updates=9"),
        tmp_path / "split",
        show_progress=False,
    )
    train(full, tmp_path / "split", resume=True, show_progress=False)
    a, b = _final_weights(tmp_path / "full"), _final_weights(tmp_path / "split")
    assert all(a[k].equal(b[k]) for k in a)
    lrs = [r["lr"] for r in _rows(tmp_path / "split", "train")]
    assert lrs == pytest.approx([0.005 * math.sqrt(8 / s) for s in (10, 20)])


def test_a_checkpoint_without_the_schedule_keys_resumes_as_plateau(
    toy_data: Path, tmp_path: Path
) -> None:
    """Runs saved before ``optim.schedule`` existed trained with today's default rule."""
    from g2lstm.train import CheckpointManager

    cfg = toy_config(toy_data, "train.max_updates=3")
    train(cfg, tmp_path / "run", show_progress=False)
    meta_path = CheckpointManager(tmp_path / "run").latest() / "meta.json"
    meta = json.loads(meta_path.read_text())
    for key in ("schedule", "decay_start", "warmup"):
        del meta["meta"]["config"]["optim"][key]
    meta_path.write_text(json.dumps(meta))
    resumed = train(
        toy_config(toy_data, "train.max_updates=5"),
        tmp_path / "run",
        resume=True,
        show_progress=False,
    )
    assert resumed.steps == 5
    assert load_config("tiny").optim.schedule == "plateau"


def test_cpu_time_is_recorded_and_unknown_after_an_older_checkpoint(
    toy_data: Path, tmp_path: Path
) -> None:
    from g2lstm.train import CheckpointManager

    done = train(toy_config(toy_data, "train.max_updates=4"), tmp_path / "run", show_progress=False)
    assert done.cpu_time_s is not None and done.cpu_time_s > 0
    stored = json.loads((tmp_path / "run" / "results.json").read_text())
    assert stored["details"]["cpu_time_s"] == pytest.approx(done.cpu_time_s)
    # resumed from a checkpoint written before CPU time was kept: unknown, not partial
    meta_path = CheckpointManager(tmp_path / "run").latest() / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["meta"]["progress"]["cpu_seconds"]
    meta_path.write_text(json.dumps(meta))
    resumed = train(
        toy_config(toy_data, "train.max_updates=6"),
        tmp_path / "run",
        resume=True,
        show_progress=False,
    )
    assert resumed.steps == 6 and resumed.cpu_time_s is None


@pytest.mark.slow
def test_learns_a_toy_translation_task(toy_data: Path, tmp_path: Path) -> None:
    """Reverse-order word mapping: needs attention; a tiny model gets it nearly right."""
    cfg = toy_config(
        toy_data,
        "model.cell=g2",
        "model.hidden=48",
        "model.emb=32",
        "train.epochs=10",
        "optim.lr=0.01",
        "optim.label_smoothing=0.0",
        "train.valid_bleu=true",
        "decode.beam=3",
        "train.max_tokens=100",
    )
    result = train(cfg, tmp_path / "run", show_progress=False)
    assert result.stopped == "epochs"
    assert result.valid_bleu is not None and result.valid_bleu["tok_bleu"] > 80
    translator = load_translator(tmp_path / "run")
    out = translator.translate(["s1 s2 s3", "s5 s5 s0 s11"], input_format="tok")
    assert out.tok == ["t3 t2 t1", "t11 t0 t5 t5"]
    test = evaluate_split(translator, "test")
    assert test.bleu.tok_bleu > 80 and test.bleu.num_sentences == 40


@pytest.mark.data
@pytest.mark.slow
def test_end_to_end_on_a_multi30k_slice(real_data: Path, tmp_path: Path) -> None:
    """Prepare ~1000 Multi30k pairs, train briefly, translate and score the test split."""
    raw = tmp_path / "multi30k" / "tok"
    raw.mkdir(parents=True)
    sizes = {"train": 1000, "val": 100, "test2016": 100}
    for split, n in sizes.items():
        for lang in ("de", "en"):
            src = real_data / "multi30k" / "tok" / f"{split}.{lang}"
            lines = src.read_text(encoding="utf-8").split("\n")[:n]
            (raw / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    prepared = prepare_multi30k(tmp_path, tmp_path / "prep", bpe_merges=1000)
    assert prepared.info["counts"]["sizes"] == {"train": 1000, "valid": 100, "test": 100}
    cfg = load_config(
        "tiny",
        overrides=[
            f"train.data={tmp_path / 'prep'}",
            "train.epochs=3",
            "model.hidden=64",
            "model.emb=64",
            "model.layers=2",
            "train.max_tokens=800",
            "optim.lr=0.003",
        ],
    )
    result = train(cfg, tmp_path / "run", show_progress=False)
    rows = [
        json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().split("\n") if x
    ]
    valid = [r["valid_loss"] for r in rows if r["kind"] == "valid"]
    assert len(valid) == 3 and valid[-1] < valid[0]
    assert result.valid_bleu is not None and 0 <= result.valid_bleu["tok_bleu"] <= 100
    translator = load_translator(tmp_path / "run")
    out = translator.translate(["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee."])
    assert len(out.detok) == 2 and all(out.detok) and out.sentences_per_second > 0
    res = evaluate_split(translator, "test2016")
    assert res.split == "test" and res.bleu.num_sentences == 100
    assert "tok:none" in res.bleu.tok_signature and "tok:13a" in res.bleu.detok_signature
