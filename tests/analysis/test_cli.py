"""``g2lstm analyze``: argument parsing, labels, kind detection, runs on tiny LM and MT runs."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from g2lstm.analysis.cli import _labels, analysis_kind
from g2lstm.cli import build_parser, main
from g2lstm.errors import CheckpointError, ConfigError


def test_parser_defaults() -> None:
    args = build_parser().parse_args(["analyze", "a", "b", "-o", "out"])
    assert args.checkpoints == ["a", "b"] and args.split == "valid" and args.seed == 0
    assert args.max_batches == 20 and args.sentences is None and not args.no_sensitivity
    assert args.layer is None and args.batch_size is None and args.input_format == "raw"
    args = build_parser().parse_args(["analyze", "a", "-o", "o", "--sentences", "--limit", "5"])
    assert args.sentences == [] and args.limit == 5 and args.beam is None


def test_labels() -> None:
    assert _labels(["g2", "lstm"], None, 2) == ["G2-LSTM", "Baseline LSTM"]
    assert _labels(["g2", "g2"], None, 2) == ["G2-LSTM #1", "G2-LSTM #2"]
    assert _labels(["g2"], ["mine"], 1) == ["mine"]
    with pytest.raises(ConfigError):
        _labels(["g2", "lstm"], ["x", "x"], 2)


def test_bad_option_is_a_clean_error(tmp_path: Path, capsys) -> None:
    assert main(["analyze", str(tmp_path), "-o", str(tmp_path / "o"), "--bptt", "0"]) == 2
    assert "--bptt" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path), "-o", str(tmp_path / "o"), "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        analysis_kind([tmp_path / "missing"])


@pytest.mark.slow
def test_analyze_two_trained_lm_checkpoints(
    lm_runs: dict[str, Path], tmp_path: Path, read_png_size, monkeypatch
) -> None:
    pytest.importorskip("matplotlib")
    import g2lstm.analysis.sections as sections

    titles, real_plot = [], sections.plot_hard_gates

    def spy(*a, **k):  # type: ignore[no-untyped-def]
        titles.append(k["title"])
        return real_plot(*a, **k)

    monkeypatch.setattr(sections, "plot_hard_gates", spy)
    g2, lstm, out = str(lm_runs["g2"]), str(lm_runs["lstm"]), tmp_path / "out"
    assert analysis_kind([g2, lstm]) == "lm"
    argv = ["analyze", g2, lstm, "-o", str(out), "--batch-size", "2", "--bptt", "8"]
    argv += ["--max-batches", "2", "--no-sensitivity", "--sentences", "the economy is w1 ."]
    rc = main([*argv, "w2 zzz"])
    assert rc == 2  # 'zzz' is not in the vocabulary and the corpus has no <unk>
    rc = main(argv)
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == ["G2-LSTM", "Baseline LSTM"]
    assert results["models"]["G2-LSTM"]["batches"] == 2
    hard = results["hard_gates"]["G2-LSTM"]
    assert hard["check"]["binary"] and hard["soft"] > 1 and hard["hard"] > 1
    assert results["metric"] == {"name": "perplexity", "higher_is_better": False}
    assert hard["degradation"] == pytest.approx(hard["hard"] - hard["soft"])
    for name in ("gate_histograms", "token_classes", "heatmap_0", "hard_gates"):
        read_png_size(out / f"{name}.png")
    report = (out / "report.md").read_text()
    assert "![" in report and "Lower perplexity is better." in report
    # the report names the split and the token subset; the figure's title does not say "test"
    assert "Gate statistics on " in report and "/valid, 2 segments of 2x8" in report
    assert re.search(r"Hard-gate metric on .*/valid, all [\d,]+ tokens", report), report
    assert results["data"]["metric"].endswith("tokens")
    assert titles and "at test time" not in titles[0] and "/valid, all " in titles[0]


@pytest.mark.slow
def test_analyze_two_trained_mt_checkpoints(
    mt_runs: dict[str, Path], tmp_path: Path, read_png_size, monkeypatch, capsys
) -> None:
    pytest.importorskip("matplotlib")
    import g2lstm.tasks.mt_probe as mt_probe

    calls = []
    real = mt_probe.evaluate_split

    def spy(tr, split, prepared=None, *, limit=None):  # type: ignore[no-untyped-def]
        res = real(tr, split, prepared, limit=limit)
        calls.append((split, limit, tr.decode.beam, res.bleu.tok_bleu))
        return res

    monkeypatch.setattr(mt_probe, "evaluate_split", spy)
    g2, lstm, out = str(mt_runs["g2"]), str(mt_runs["lstm"]), tmp_path / "out"
    assert analysis_kind([g2, lstm]) == "mt"
    rc = main(
        [
            "analyze",
            g2,
            lstm,
            "-o",
            str(out),
            "--split",
            "test",
            "--max-batches",
            "3",
            "--limit",
            "5",
            "--no-sensitivity",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    # --data defaulted to the prepared folder recorded in the run
    assert str(Path(mt_runs["data"]).resolve()) in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["layers"]["G2-LSTM"] == [
        "enc_bi[0] (bidirectional)",
        "enc_rest[0]",
        "dec_rnn[0]",
        "dec_rnn[1]",
    ]
    assert set(results["near_binary"]) == {"all layers", "layer 0", "layer 1", "layer 2", "layer 3"}
    stats = json.loads((out / "gate_stats.json").read_text())
    keys = {(h["module"], h["layer"], h["direction"]) for h in stats["Baseline LSTM"]["histograms"]}
    assert keys == {
        ("enc_bi", 0, 0),
        ("enc_bi", 0, 1),
        ("enc_rest", 0, 0),
        ("dec_rnn", 0, 0),
        ("dec_rnn", 1, 0),
    }
    report = (out / "report.md").read_text()
    for row in ("| layer 0 | enc_bi[0] (bidirectional) | G2-LSTM |", "| layer 2 | dec_rnn[0] |"):
        assert row in report
    assert "layer 2: dec_rnn[0])" in report  # the sentence quotes the first decoder layer
    # hard gates in tokenised BLEU of the test split, first 5 sentences, the run's beam (1)
    assert results["metric"] == {"name": "BLEU", "higher_is_better": True}
    assert len(calls) == 4 and {c[:3] for c in calls} == {("test", 5, 1)}
    hard = results["hard_gates"]
    assert [hard[m][k] for m in hard for k in ("soft", "hard")] == [c[3] for c in calls]
    assert hard["G2-LSTM"]["check"]["binary"] and hard["Baseline LSTM"]["check"]["binary"]
    assert "Higher BLEU is better." in report and "perplexity" not in report.lower()
    assert "/test, first 5 sentences" in report
    with (out / "hard_gates.csv").open() as fh:
        assert "BLEU" in next(csv.reader(fh))
    # token classes and the heatmap follow the first decoder layer, on target subwords
    extremes = json.loads((out / "token_extremes.json").read_text())["G2-LSTM"]
    assert (extremes["module"], extremes["layer"]) == ("dec_rnn", 0)
    heat = json.loads((out / "heatmap_0.json").read_text())
    assert heat["tokens"][0] == "<s>" and "dec_rnn[0]" in heat["title"]
    for name in ("gate_histograms", "token_classes", "heatmap_0", "hard_gates"):
        w, h = read_png_size(out / f"{name}.png")
        assert w > 100 and h > 100
    links = re.findall(r"\]\(([^)]+\.png)\)", report)
    assert len(links) == 4 and all((out / link).is_file() for link in links)

    def encoder(out: str, *extra: str) -> list[str]:
        return ["analyze", g2, "-o", str(tmp_path / out), "--layer", "0", "--max-batches", "2",
                "--no-sensitivity", "--no-hard-gates", "--input-format", "tok",
                "--sentences", "s1 s2 s3", *extra]  # fmt: skip

    # --layer 0: the bidirectional encoder layer, on source subwords
    rc = main(encoder("enc"))
    assert rc == 0, capsys.readouterr().err
    extremes = json.loads((tmp_path / "enc" / "token_extremes.json").read_text())["G2-LSTM"]
    assert (extremes["module"], extremes["direction"]) == ("enc_bi", 0)
    heat = json.loads((tmp_path / "enc" / "heatmap_0.json").read_text())
    assert heat["tokens"][-1] == "</s>" and "".join(heat["tokens"][:-1]) == "s1s2s@@3"
    # --eval-temperature drop: the soft gates are sigmoid(a), not sigmoid(a / 0.9)
    capsys.readouterr()
    rc = main(encoder("drop", "--eval-temperature", "drop"))
    assert rc == 0 and "eval temperature drop" in capsys.readouterr().out
    drop = json.loads((tmp_path / "drop" / "heatmap_0.json").read_text())
    assert drop["tokens"] == heat["tokens"] and drop != heat


@pytest.mark.slow
def test_mixing_lm_and_mt_checkpoints_is_refused(
    lm_runs: dict[str, Path], mt_runs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    lm, mt = str(lm_runs["g2"]), str(mt_runs["g2"])
    with pytest.raises(ConfigError, match=r"LM: .*; MT: ") as err:
        analysis_kind([lm, mt])
    assert lm in str(err.value) and mt in str(err.value)
    argv = ["analyze", mt, lm, "-o", str(tmp_path / "o")]
    with pytest.raises(ConfigError, match="one kind"):
        main(["--debug", *argv])
    assert main(argv) == 2
    assert "analyse each kind in its own call" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    # MT analyses refuse the train split (it has no references for BLEU)
    assert main(["analyze", mt, "-o", str(tmp_path / "o"), "--split", "train"]) == 2
    assert "valid or test" in capsys.readouterr().err
