"""``g2lstm reproduce --ablations``: the declared sweeps (no training), and the whole ablation
plan on a hand-made corpus with micro models (seconds): probes, resume, ``--reuse`` of a run
trained by the public command, the report's sections and figures."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest

from g2lstm.cli import main
from g2lstm.errors import ConfigError
from g2lstm.reproduce.ablations import (
    VARIANTS,
    AblationSettings,
    add_ablations,
    sweep_keys,
    sweep_runs,
)
from g2lstm.reproduce.collect import collect
from g2lstm.reproduce.context import RunContext
from g2lstm.reproduce.plan import (
    build_plan,
    format_plan,
    get_scale,
    read_marker,
    read_markers,
)
from g2lstm.reproduce.probe_file import kept_preview, probe_file
from g2lstm.reproduce.report import SECTIONS
from g2lstm.reproduce.run import run_plan, step_function
from g2lstm.reproduce.steps_lm import lm_train_config
from g2lstm.reproduce.steps_probe import probe_run
from g2lstm.train import atomic_write_json

PNG = b"\x89PNG\r\n\x1a\n"
CPU = get_scale("cpu")


def _plan(out: Path, seeds: int = 3, **settings):
    steps = build_plan(CPU, seeds, out, only=("lm",))
    return add_ablations(steps, CPU, out, seeds, AblationSettings(**settings))


def test_sweeps_are_declared_with_the_plans_own_baselines(tmp_path: Path) -> None:
    steps = _plan(tmp_path)
    ids = [s.id for s in steps]
    by_id = {s.id: s for s in steps}
    assert ids[-1] == "report"
    for k in (1, 2, 3):  # the paper's cells: probed on every seed, trained by the plan
        for cell in ("lstm", "sharpened", "g2"):
            probe = by_id[f"lm-probe-{cell}-s{k}"]
            assert probe.deps[1] == tmp_path / "lm" / f"{cell}-s{k}" / "train"
            assert probe.variant is None
    variants = [s for s in steps if s.kind == "lm-train" and s.variant]
    assert sorted(s.id for s in variants) == sorted(
        f"lm-train-{v.name}-s{k}" for v in VARIANTS for k in (1, 2)
    )
    # p 0.2 / tau 0.9 is the plan's g2 run: no separate training
    assert sweep_keys("p") == [(0.05, "g2-p0.05"), (0.2, "g2"), (0.5, "g2-p0.5"), (1.0, "g2-p1")]
    assert sweep_keys("tau", 6) == [(0.5, "g2-tau0.5-e6"), (0.9, "g2-e6"), (1.0, "g2-tau1-e6")]
    ctx = RunContext(CPU, tmp_path)
    for name, model in (
        ("g2-p0.05", {"noise_p": 0.05, "tau": 0.9}),
        ("g2-p1", {"noise_p": 1.0, "tau": 0.9}),
        ("g2-tau0.5", {"noise_p": 0.2, "tau": 0.5}),
        ("g2-ifo", {"noisy_gates": ("input", "forget", "output"), "noise_p": 0.2}),
    ):
        cfg = lm_train_config(by_id[f"lm-train-{name}-s2"], ctx, "ptb")
        assert (cfg.model.gates.cell, cfg.train.seed, cfg.train.epochs) == ("g2", 2, 13)
        assert {k: getattr(cfg.model.gates, k) for k in model} == model
    report = steps[-1]
    assert all(s.out_dir in report.deps for s in steps if s.kind in ("lm-probe", "lm-train"))
    # a changed variant setting changes the step's inputs (it re-runs)
    moved = replace(by_id["lm-train-g2-p0.05-s1"], settings="other")
    assert moved.inputs() != by_id["lm-train-g2-p0.05-s1"].inputs()


def test_reduced_budget_checks_the_ranking_first(tmp_path: Path) -> None:
    steps = _plan(tmp_path, seeds=2, epochs=6)
    ids = [s.id for s in steps]
    ranking = next(s for s in steps if s.kind == "lm-ranking")
    assert ranking.deps == tuple(
        tmp_path / "lm" / f"{c}-s{k}" / "train" for k in (1, 2) for c in ("lstm", "sharpened", "g2")
    )
    reduced = [s for s in steps if s.id.startswith("lm-e6-train-")]
    assert ids.index(ranking.id) < min(ids.index(s.id) for s in reduced)
    assert all(
        ranking.out_dir in s.deps and dict(s.overrides)["train.epochs"] == 6 for s in reduced
    )
    assert {s.variant for s in reduced} >= {"lstm-e6", "sharpened-e6", "g2-e6", "g2-p0.05-e6"}
    assert reduced[0].estimate_s == pytest.approx(CPU.estimate("lm-train") * 6 / 13)
    # the preset's own budget is the full one; more is refused, as is a plan without LM
    assert [s.id for s in _plan(tmp_path, epochs=13)] == [s.id for s in _plan(tmp_path)]
    with pytest.raises(ConfigError, match="exceeds the 13 epochs"):
        _plan(tmp_path, epochs=14)
    with pytest.raises(ConfigError, match="needs the LM part"):
        add_ablations(
            build_plan(CPU, 1, tmp_path, only=("mt",)), CPU, tmp_path, 1, AblationSettings()
        )
    with pytest.raises(ConfigError, match="--ablation-seeds=0"):
        AblationSettings(seeds=0)
    assert len(sweep_runs(2, 6)) == 2 * (3 + len(VARIANTS))


def test_cli_flags(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "o")
    assert main(["reproduce", "--ablation-epochs", "5", "--dry-run", "-o", out]) == 2
    assert "--ablation-seeds and --ablation-epochs need --ablations" in capsys.readouterr().err
    args = ["reproduce", "--scale", "cpu", "--only", "lm", "--ablations", "--dry-run", "-o", out]
    assert main([*args, "--ablation-seeds", "1"]) == 0
    text = capsys.readouterr().out
    assert "lm-train-g2-ifo-s1" in text and "lm-probe-g2-p0.05-s1" in text
    assert "lm-train-g2-ifo-s2" not in text


# ---------------------------------------------------------------------- a whole micro plan
_MICRO = {
    "model.emsize": 8,
    "model.nhid": 16,
    "train.epochs": 2,
    "optim.decay_after": 1,
    "train.batch_size": 4,
    "train.eval_batch_size": 2,
    "train.test_batch_size": 1,
    "train.bptt": 8,
    "train.progress": False,
    "train.threads": 1,
}


def _corpus(folder: Path) -> Path:
    rng = random.Random(0)
    words = [f"w{i}" for i in range(30)] + ["<unk>"]  # the analysis sentences need <unk>
    folder.mkdir(parents=True)
    # valid and test longer than the pointer's window of 500 tokens, so that the probe's
    # cache pointer is used (AWD-LSTM's rule: only once the cache is full)
    for split, lines in (("train", 120), ("valid", 100), ("test", 100)):
        text = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 9))) for _ in range(lines)]
        (folder / f"{split}.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory):
    """The ablation plan (one seed) on a hand-made corpus; the paper's own evaluation and
    analysis steps are left out (their code is tested elsewhere). The g2-p0.05 run is trained
    beforehand with the public command, for ``--reuse``."""
    root = tmp_path_factory.mktemp("ablate")
    data = _corpus(root / "data")
    scale = replace(get_scale("tiny"), lm_overrides=_MICRO, analysis_batches=2)
    out, runs = root / "out", root / "runs"
    public = ["lm", "train", "--preset", "small", "--cell", "g2", "--seed", "1"]
    public += ["--data", str(data), "--out", str(runs / "p005"), "--no-progress"]
    public += [a for k, v in _MICRO.items() for a in ("--set", f"{k}={v}")]
    assert main([*public, "--set", "model.noise_p=0.05"]) == 0
    # its probe, kept beside it as the benchmark scripts do, for the probe step to adopt
    log = str(runs / "p005" / "metrics.jsonl")
    kept = probe_run(runs / "p005", str(data), analysis_batches=2, seed=1, metrics=log)
    atomic_write_json(probe_file(runs / "p005"), {**kept, "metrics": None})
    steps = build_plan(scale, 1, out, only=("lm",))
    steps = add_ablations(steps, scale, out, 1, AblationSettings(seeds=1))
    keep = {"g2-p0.05", "g2-tau0.5", "g2-ifo", None}  # one variant of each sweep
    steps = [s for s in steps if s.kind not in ("lm-eval", "lm-analyze") and s.variant in keep]
    lines: list[str] = []
    ctx = RunContext(scale, out, log=lines.append, reuse=(runs,))

    def functions(kind: str):
        if kind == "lm-data":
            return lambda s, c: {"data": str(data), "source": str(data), "slice": None}
        return step_function(kind)

    summary = run_plan(steps, ctx, functions=functions)
    return {
        "steps": steps,
        "ctx": ctx,
        "out": out,
        "runs": runs,
        "data": data,
        "summary": summary,
        "fns": functions,
    }


def test_micro_plan_probes_every_run(micro) -> None:
    keys = {"lstm", "sharpened", "g2", "g2-p0.05", "g2-tau0.5", "g2-ifo"}
    probes = {
        s.variant or s.cell: read_marker(s.out_dir) for s in micro["steps"] if s.kind == "lm-probe"
    }
    assert set(probes) == keys
    for key, marker in probes.items():
        r = marker["result"]
        for split in ("valid", "test"):
            values = r["ppl"][split]
            assert set(values) == {"soft", "hard", "soft_pointer", "hard_pointer"}
            assert all(math.isfinite(v) and v > 1 for v in values.values()), (key, values)
            # the pointer mixes in: more than the float noise of another evaluation pass
            assert abs(values["soft_pointer"] / values["soft"] - 1) > 1e-3, (key, split, values)
        assert math.isfinite(r["train_ppl"]) and math.isfinite(r["train_ppl_logged"])
        assert r["sensitivity"]["sigma"] == 0.1 and math.isfinite(r["sensitivity"]["delta_loss"])
        assert set(r["compression"]) == {"round", "round_clip", "svd_h8", "svd_h16", "2bit"}
        assert r["compression"]["svd_h16"]["rank"] == 1 and r["compression"]["svd_h8"]["rank"] == 2
        assert all(0 <= f <= 1 for f in r["near_binary"]["first_layer"].values())
    # the test perplexity is the trainer's (batch 1, same evaluation)
    trained = read_marker(micro["out"] / "lm" / "g2-s1" / "train")["result"]
    assert probes["g2"]["result"]["ppl"]["test"]["soft"] == pytest.approx(trained["test_ppl"])
    assert probes["g2-ifo"]["result"]["config"]["noisy_gates"] == ["input", "forget", "output"]
    assert probes["g2-tau0.5"]["result"]["config"]["tau"] == 0.5
    # the variants stay out of the paper's tables and curves
    numbers = collect(read_markers(micro["steps"][-1].deps))
    assert [len(c) for c in numbers["curves"]["lm"].values()] == [1, 1, 1]


def test_micro_plan_cache_pointer_matches_lm_eval(micro, capsys) -> None:
    run = micro["out"] / "lm" / "g2-s1" / "train"
    capsys.readouterr()
    assert main(["lm", "eval", str(run), "--split", "test", "--cache-pointer", "--json"]) == 0
    ours = read_marker(micro["out"] / "lm" / "g2-s1" / "probe")["result"]["ppl"]["test"]
    assert json.loads(capsys.readouterr().out)["ppl"] == pytest.approx(ours["soft_pointer"])


def test_micro_plan_reuses_the_public_run_and_resumes(micro) -> None:
    summary = micro["summary"]
    assert list(summary.reused) == ["lm-train-g2-p0.05-s1"]
    steps, ctx = micro["steps"], micro["ctx"]
    again = run_plan(steps, ctx, functions=micro["fns"])
    assert again.ran == [] and len(again.skipped) == len(steps)
    probe = next(s for s in steps if s.id == "lm-probe-g2-tau0.5-s1")
    (probe.out_dir / "DONE.json").unlink()
    third = run_plan(steps[:-1], ctx, functions=micro["fns"])  # (not redrawing the report)
    assert third.ran == [probe.id]
    assert not steps[-1].done()  # the report depends on the probe: it would be redrawn


def test_micro_plan_adopts_the_probe_kept_beside_the_reused_run(micro) -> None:
    kept_file = probe_file(micro["runs"] / "p005")
    kept = json.loads(kept_file.read_text())
    adopted = read_marker(micro["out"] / "lm" / "g2-p0.05-s1" / "probe")["result"]
    assert adopted["probe_reused_from"] == str(kept_file)
    assert kept["cost"]["cpu_s"] > 0 and kept["cost"]["wall_s"] > 0
    for key in ("ppl", "compression", "near_binary", "sensitivity", "train_ppl", "inputs", "cost"):
        assert adopted[key] == kept[key], key
    trained = read_marker(micro["out"] / "lm" / "g2-p0.05-s1" / "train")["result"]
    assert adopted["metrics"] == trained["metrics"]  # the step's own log, not the kept None
    measured = read_marker(micro["out"] / "lm" / "g2-tau0.5-s1" / "probe")["result"]
    assert "probe_reused_from" not in measured and measured["inputs"]["seed"] == 1


def test_kept_probe_numbers_measured_on_other_inputs_are_measured_again(
    micro, tmp_path: Path
) -> None:
    run, data = micro["out"] / "lm" / "g2-p0.05-s1" / "train", str(micro["data"])
    source = micro["runs"] / "p005"
    kept = json.loads(probe_file(source).read_text())

    def probe(beside: Path, batches: int = 2) -> dict:
        return probe_run(run, data, analysis_batches=batches, seed=1, kept_beside=beside)

    assert probe(source)["probe_reused_from"] == str(probe_file(source))
    other = probe(source, batches=3)  # other analysis segments: other numbers
    assert "probe_reused_from" not in other and other["inputs"]["analysis_batches"] == 3
    assert other["ppl"] == kept["ppl"]  # (the perplexities do not depend on them)
    # a file of an earlier version, or without inputs, or a link, or not JSON: measured
    for name, text in (
        ("old", json.dumps({**kept, "inputs": {**kept["inputs"], "version": 0}})),
        ("none", json.dumps({k: v for k, v in kept.items() if k != "inputs"})),
        ("bad", "{not json"),
    ):
        probe_file(tmp_path / name).write_text(text)
        assert "probe_reused_from" not in probe(tmp_path / name), name
    probe_file(tmp_path / "link").symlink_to(probe_file(source))
    assert "probe_reused_from" not in probe(tmp_path / "link")
    # another run (other weights and config) beside which the file is kept: measured
    g2 = micro["out"] / "lm" / "g2-s1" / "train"
    elsewhere = probe_run(g2, data, analysis_batches=2, seed=1, kept_beside=source)
    assert "probe_reused_from" not in elsewhere
    assert elsewhere["inputs"]["weights"] != kept["inputs"]["weights"]


def test_the_dry_run_shows_the_probes_whose_numbers_are_kept(micro, tmp_path: Path) -> None:
    scale = micro["ctx"].scale
    steps = add_ablations(
        build_plan(scale, 1, tmp_path, only=("lm",)), scale, tmp_path, 1, AblationSettings(seeds=1)
    )
    train = {s.id: s for s in steps}
    runs = micro["runs"]
    adopted = {
        train["lm-train-g2-p0.05-s1"].out_dir: runs / "p005",
        train["lm-train-g2-s1"].out_dir: micro["out"] / "lm" / "g2-s1" / "train",  # none kept
    }
    labels = kept_preview(steps, adopted)
    assert labels == {
        "lm-probe-g2-p0.05-s1": f"kept {probe_file(runs / 'p005')} (checked when run)"
    }
    table = format_plan(steps, scale, tmp_path, reuse=labels)
    assert "1 to be reused" in table  # a kept probe's estimate is not counted


def test_micro_plan_report(micro) -> None:
    report = micro["out"] / "report"
    md = (report / "report.md").read_text(encoding="utf-8")
    for title in (*SECTIONS, "Ablations (claims 3, 7, 8, 9)", "Table 3 with the cache pointer"):
        assert f"## {title}" in md
    for title in ("Noise probability p (claim 7)", "Temperature tau (claim 8)"):
        assert f"## {title}" in md
    for name in ("ablation_p", "ablation_tau", "ablation_gap"):
        assert (report / "figures" / f"{name}.png").read_bytes().startswith(PNG)
    assert "| p = 0.05 | 1 |" in md and "| tau = 0.5 | 1 |" in md
    verdicts = json.loads((report / "verdicts.json").read_text())
    claims = [v["claim"] for v in verdicts]
    assert "Noise on the output gate as well hurts perplexity" in claims
    numbers = json.loads((report / "numbers.json").read_text())
    assert numbers["ablations"]["runs"]["g2-p0.05"]["seeds"] == [1]
