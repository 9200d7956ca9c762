"""Sizes from files and arguments are capped before anything is allocated, and every bad input
of issue 17 (case 3 and 4) is one typed ``g2lstm: error:`` line, with outputs checked before
the work starts."""

from __future__ import annotations

import errno
import importlib
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from g2lstm.cli import main
from g2lstm.lm.evaluate import load_model
from g2lstm.lm.generate import generate, join_words

from .conftest import snapshot


def _meta_path(run: Path) -> Path:
    (step,) = sorted((run / "checkpoints").glob("step-*"))
    return step / "meta.json"


def _edit_meta(run: Path, edit) -> None:  # type: ignore[no-untyped-def]
    path = _meta_path(run)
    record = json.loads(path.read_text(encoding="utf-8"))
    edit(record)
    path.write_text(json.dumps(record), encoding="utf-8")


def _loaders(run: Path, tmp_path: Path) -> list[list[str]]:
    return [
        ["lm", "eval", str(run)],
        ["lm", "train", "--out", str(run), "--resume", "--no-progress", "--threads", "1"],
        [
            "compress",
            str(run),
            "--method",
            "quant",
            "--bits",
            "4",
            "-o",
            str(tmp_path / "q.safetensors"),
        ],
    ]


@pytest.mark.parametrize("nhid", [100_000, 30])
def test_model_size_in_meta_json_is_checked_before_allocation(
    nhid: int, lm_run, tmp_path: Path, cli_error
) -> None:
    _, run = lm_run
    _edit_meta(run, lambda r: r["meta"]["config"]["model"].update(nhid=nhid))
    before = snapshot(run)
    needle = "exceeds the limit" if nhid > 1000 else "do not fit the model"
    for argv in _loaders(run, tmp_path):
        start = time.perf_counter()
        cli_error(argv, str(run), needle)
        assert time.perf_counter() - start < 30, argv  # no 160 GB allocation attempted
    assert snapshot(run) == before


def _rewrite_metadata(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        meta = dict(f.metadata())
    edit(meta)
    save_file(tensors, str(path), metadata=meta)


@pytest.fixture
def compressed(lm_run, tmp_path: Path) -> Path:
    _, run = lm_run
    out = tmp_path / "m.safetensors"
    assert main(["compress", str(run), "--method", "svd", "--rank", "2", "-o", str(out)]) == 0
    return out


def test_model_size_in_a_compressed_file_is_checked_before_allocation(
    compressed: Path, cli_error
) -> None:
    def huge_config(meta: dict[str, str]) -> None:
        config = json.loads(meta["config"])
        config["config"]["model"]["nhid"] = 100_000
        meta["config"] = json.dumps(config)

    _rewrite_metadata(compressed, huge_config)
    cli_error(["compress", "eval", str(compressed)], str(compressed), "exceeds the limit")
    cli_error(["lm", "eval", str(compressed)], str(compressed), "exceeds the limit")


@pytest.mark.parametrize("shape", [[100_000, 100_000], [-1, 24], [96, "x"], "bad"])
def test_tensor_shapes_in_a_compressed_file_are_checked_before_allocation(
    shape, compressed: Path, cli_error
) -> None:
    def bad_shape(meta: dict[str, str]) -> None:
        described = json.loads(meta["compressed"])
        next(iter(described.values()))["shape"] = shape
        meta["compressed"] = json.dumps(described)

    _rewrite_metadata(compressed, bad_shape)
    cli_error(["compress", "eval", str(compressed)], str(compressed))


def test_beam_and_words_are_capped_with_a_flag_to_raise_them(
    lm_run, tmp_path: Path, cli_error, capsys
) -> None:
    _, run = lm_run
    missing = str(tmp_path / "no-run")
    for cmd in ("translate", "eval"):  # refused before the checkpoint is even read
        cli_error(
            ["mt", cmd, missing, "--beam", "100000"],
            "--beam (100,000) exceeds the limit of 256",
            "--max-beam",
        )
    cli_error(["compress", "eval", str(run), "--beam", "100000"], "--max-beam")
    cli_error(
        ["lm", "generate", str(run), "--words", "1000000000"],
        "--words (1,000,000,000) exceeds the limit",
        "--max-words",
    )
    assert (
        main(["lm", "generate", str(run), "--words", "20", "--max-words", "10", "--seed", "3"]) == 2
    )
    capsys.readouterr()
    assert main(["lm", "generate", str(run), "--words", "40", "--seed", "3"]) == 0
    streamed = capsys.readouterr().out
    loaded = load_model(run)
    assert streamed == join_words(generate(loaded.model, loaded.vocab, 40, seed=3)) + "\n"


def test_generated_words_are_streamed_as_they_are_sampled(lm_run, monkeypatch) -> None:
    _, run = lm_run
    seen: list[tuple[int, str]] = []

    class Probe(io.StringIO):
        def write(self, text: str) -> int:
            seen.append((len(sampled), text))
            return super().write(text)

    gen_mod = importlib.import_module("g2lstm.lm.generate")
    sampled: list[int] = []
    real = gen_mod._sample

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        for word in real(*args, **kwargs):
            sampled.append(1)
            yield word

    monkeypatch.setattr(gen_mod, "_sample", counting)
    monkeypatch.setattr(sys, "stdout", Probe())
    assert main(["lm", "generate", str(run), "--words", "30", "--seed", "1"]) == 0
    first_write = seen[0][0]
    assert first_write == 1  # written after the first word, not after all 30


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda r: r["files"].update({"model.safetensors": "x"}), "files['model.safetensors']"),
        (lambda r: r["files"]["model.safetensors"].update(aliases=["a"]), "aliases"),
        (lambda r: r.update(meta=[1, 2]), "'meta' must be an object"),
        (lambda r: r.update(files=[]), "'files' must be an object"),
        (lambda r: r["files"]["model.safetensors"].update(aliases={"x": "nope"}), "aliases"),
        (lambda r: r.update(trainer_structure={"__dict__": 5}), "trainer_structure"),
        (lambda r: r["meta"].update(vocab=[1]), "meta.json"),
        (lambda r: r["meta"].update(config="x"), "meta.json"),
    ],
)
def test_meta_json_with_wrong_types_is_one_line(
    edit, needle, lm_run, tmp_path: Path, cli_error
) -> None:
    _, run = lm_run
    _edit_meta(run, edit)
    cli_error(["lm", "eval", str(run)], needle)


def test_deeply_nested_meta_json_is_one_line(lm_run, cli_error) -> None:
    _, run = lm_run
    _meta_path(run).write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    cli_error(["lm", "eval", str(run)], "meta.json", "nested too deeply")


def test_bad_configuration_values_are_one_line(
    lm_run, tmp_path: Path, cli_error, write_lm_corpus, cli_argv
) -> None:
    _, run = lm_run
    out = str(tmp_path / "o")
    base = ["lm", "train", "--preset", "tiny", "--out", out, "--print-config"]
    cli_error(
        [*base, "--set", "model.nhid=!!python/object/apply:os.system [echo]"],
        "--set",
        "not plain YAML",
    )
    cli_error([*base, "--set", "model.nhid=[[[["], "--set", "not plain YAML")
    (tmp_path / "c.yaml").write_text("preset: [1]\n")
    cli_error(
        ["lm", "train", "--config", str(tmp_path / "c.yaml"), "--out", out], "unknown preset [1]"
    )
    huge = str(10**23)
    cli_error([*base, "--seed", huge], "train.seed")
    cli_error(
        ["mt", "train", "--preset", "tiny", "--out", out, "--seed", huge, "--print-config"],
        "train.seed",
    )
    cli_error(["lm", "generate", str(run), "--seed", huge], "--seed")
    cli_error(["analyze", str(run), "--seed", huge, "-o", out], "--seed")
    data = write_lm_corpus(tmp_path / "data")
    cli_error(
        cli_argv.lm_train(data, tmp_path / "big", "--set", "model.nhid=1000000"),
        "exceeds the limit",
        "G2LSTM_MAX_PARAMETERS",
    )


def test_allocation_failure_is_one_line(lm_run, cli_error, monkeypatch) -> None:
    _, run = lm_run
    evaluate_mod = importlib.import_module("g2lstm.lm.evaluate")

    def oom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't "
            "allocate memory: you tried to allocate 160000000000 bytes"
        )

    monkeypatch.setattr(evaluate_mod, "build_checked", oom)
    cli_error(["lm", "eval", str(run)], "out of memory", "smaller sizes")


def test_translate_input_errors_are_one_line(tmp_path: Path, cli_error) -> None:
    missing = str(tmp_path / "no-run")
    cli_error(["mt", "translate", missing, "--input", str(tmp_path)], "is a directory")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ein Haus\nein \xff Hund\n")
    cli_error(["mt", "translate", missing, "--input", str(bad)], f"{bad}:2", "not valid UTF-8")
    cli_error(["mt", "translate", missing, "--input", str(tmp_path / "nope.txt")], "not found")


def _read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args, **kwargs):  # what a read-only mount does (root ignores chmod)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", denied)


def test_outputs_are_checked_before_the_work(
    lm_run, trained_mt, tmp_path: Path, cli_error, monkeypatch
) -> None:
    _, run = lm_run
    _, mt = trained_mt
    src = tmp_path / "in.txt"
    src.write_text("s1 s2\n")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    work: list[str] = []
    import g2lstm.mt.cli_decode as mt_decode

    monkeypatch.setattr(mt_decode, "_load", lambda args: work.append("load"))
    compress = ["compress", str(run), "--method", "quant", "--bits", "4", "-o"]
    for argv in (
        ["mt", "translate", str(mt), "--input", str(src), "--output", str(folder)],
        ["mt", "eval", str(mt), "--json", str(folder)],
        ["mt", "eval", str(mt), "--hyps", str(folder)],
        [*compress, str(folder)],
        ["bench", "layer", "--quick", "--json", str(folder)],
    ):
        cli_error(argv, str(folder), "is a directory")
    cli_error(["analyze", str(run), "-o", str(src)], str(src), "not a directory")
    cli_error([*compress, str(tmp_path / "no-dir" / "q")], "does not exist")
    _read_only(monkeypatch)
    for argv in (
        ["mt", "translate", str(mt), "--input", str(src), "--output", str(tmp_path / "t.txt")],
        [*compress, str(tmp_path / "q")],
        ["bench", "layer", "--quick", "--json", str(tmp_path / "b.json")],
        ["analyze", str(run), "-o", str(tmp_path / "an")],
        ["compress", "sweep", str(run), "-o", str(tmp_path / "sw")],
    ):
        cli_error(argv, "not writable")
    assert work == []


def test_empty_lines_translate_to_empty_lines(trained_mt, tmp_path: Path, monkeypatch) -> None:
    """Case 6: one line out per line in, and an empty (or blank) line in is an empty line out;
    the model (here a stand-in answering "t1" to anything) never sees it."""
    _, mt = trained_mt
    translate_mod = importlib.import_module("g2lstm.mt.translate")
    asked: list[list[int]] = []

    def always_t1(self, sources):  # type: ignore[no-untyped-def]
        asked.extend(sources)
        return [[self.tgt_vocab.encode("t1")[0]] for _ in sources]

    monkeypatch.setattr(translate_mod.Translator, "translate_ids", always_t1)
    src = tmp_path / "in.txt"
    src.write_text("s1 s2 s3\n\n   \ns4 s4\n\n")
    out = tmp_path / "out.txt"
    assert (
        main(
            [
                "mt",
                "translate",
                str(mt),
                "--input",
                str(src),
                "--input-format",
                "tok",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert out.read_text(encoding="utf-8") == "t1\n\n\nt1\n\n"
    assert len(asked) == 2 and all(asked)


def test_resume_after_kill_logs_the_same_rows(tmp_path: Path, write_lm_corpus, cli_argv) -> None:
    """Case 5: a run killed after step 5 (last checkpoint at 3) and resumed logs, from the
    checkpoint on, the rows of an uninterrupted run (loss, ppl, grad norm, lr)."""
    from g2lstm.train import read_metrics

    data = write_lm_corpus(tmp_path / "data")
    flags = ("--log-interval", "2", "--checkpoint-every", "3", "--epochs", "1")
    assert main(cli_argv.lm_train(data, tmp_path / "whole", *flags, "--max-steps", "8")) == 0
    broken = tmp_path / "broken"
    assert main(cli_argv.lm_train(data, broken, *flags, "--max-steps", "5")) == 0
    ckpts = broken / "checkpoints"
    for step in sorted(ckpts.glob("step-*"))[1:]:  # the kill -9: only step 3 was saved
        shutil.rmtree(step)
    (ckpts / "last.json").write_text(json.dumps({"path": "step-000000003", "step": 3}))
    assert any(r.get("step") == 4 for r in read_metrics(broken))  # logged before the kill
    assert (
        main(
            [
                "lm",
                "train",
                "--out",
                str(broken),
                "--resume",
                "--max-steps",
                "8",
                "--no-progress",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    keys = ("step", "stage", "epoch", "lr", "loss", "ppl", "grad_norm", "valid_loss")

    def rows(run: Path) -> list[tuple]:
        return [tuple(r.get(k) for k in keys) for r in read_metrics(run) if r["step"] <= 8]

    assert rows(broken) == rows(tmp_path / "whole")
    assert {4, 6, 8} <= {r[0] for r in rows(broken)}
    assert torch.equal(
        load_model(broken).model.decoder.weight, load_model(tmp_path / "whole").model.decoder.weight
    )


def test_mt_resume_logs_the_same_rows(trained_mt, tmp_path: Path, cli_argv) -> None:
    """Case 5 for MT: rows logged after a resume mid log-window equal an unbroken run's."""
    from g2lstm.train import read_metrics

    prep, _ = trained_mt
    flags = ("--set", "train.log_every=2")
    assert main(cli_argv.mt_train(prep, tmp_path / "whole", *flags, "--max-updates", "6")) == 0
    broken = tmp_path / "broken"
    assert main(cli_argv.mt_train(prep, broken, *flags, "--max-updates", "3")) == 0
    assert (
        main(
            [
                "mt",
                "train",
                "--out",
                str(broken),
                "--resume",
                "--max-updates",
                "6",
                "--no-progress",
                "--set",
                "train.valid_bleu=false",
            ]
        )
        == 0
    )
    keys = ("step", "kind", "epoch", "loss", "ppl", "lr", "grad_norm")

    def rows(run: Path) -> list[tuple]:
        return [tuple(r.get(k) for k in keys) for r in read_metrics(run) if r["kind"] == "train"]

    assert [r[0] for r in rows(broken)] == [2, 4, 6]
    assert rows(broken) == rows(tmp_path / "whole")
