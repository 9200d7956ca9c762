"""Runs written by earlier versions still load: the gate options flat in ``model`` (config.yaml
and checkpoint metadata) and each task's old result file (the language model's flat
``results.json``, the translation model's ``result.json``) are migrated on read."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from g2lstm.config import GateConfig
from g2lstm.lm import preset_config
from g2lstm.lm import train as lm_train
from g2lstm.mt.config import load_config
from g2lstm.mt.prepare import prepare_dataset
from g2lstm.mt.trainer import train as mt_train
from g2lstm.reproduce.reuse_scan import scan_runs
from g2lstm.tasks import get_task, kind_of, load
from g2lstm.train import RESULT_FILE, read_result


def _old_config(config: dict[str, Any], task: str) -> dict[str, Any]:
    """The layout of earlier versions: the gate options flat in ``model`` (the translation
    config had no ``noisy_gates``)."""
    out = copy.deepcopy(config)
    gates = out["model"].pop("gates")
    if task == "mt":
        gates.pop("noisy_gates")
    out["model"].update(gates)
    return out


def _age(run: Path, task: str) -> dict[str, Any]:
    """Rewrite a run trained now into the layout of an earlier version; returns its new
    result as it was."""
    import yaml

    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    (run / "config.yaml").write_text(yaml.safe_dump(_old_config(config, task)), "utf-8")
    for meta_path in (run / "checkpoints").glob("*/meta.json"):
        manifest = json.loads(meta_path.read_text(encoding="utf-8"))
        manifest["meta"]["config"] = _old_config(manifest["meta"]["config"], task)
        meta_path.write_text(json.dumps(manifest), "utf-8")
    new = json.loads((run / RESULT_FILE).read_text(encoding="utf-8"))
    (run / RESULT_FILE).unlink()
    common = {k: new[k] for k in ("run_dir", "stopped", "num_parameters")}
    if task == "lm":
        old = {
            **common,
            **new["details"],
            "complete": new["finished"],
            "steps": new["steps"],
            "epochs": new["epochs"],
            "train_time_s": new["train_time_s"],
            "cell": new["cell"],
            "seed": new["seed"],
        }
        (run / "results.json").write_text(json.dumps(old), "utf-8")
    else:
        old = {
            **common,
            **new["details"],
            "step": new["steps"],
            "epoch": new["epochs"],
            "train_seconds": new["train_time_s"],
        }
        (run / "result.json").write_text(json.dumps(old), "utf-8")
    return new


@pytest.fixture(scope="module")
def old_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny finished run of each task, rewritten into the layout of an earlier version."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("old")
    rng = random.Random(0)
    words = ["the", "and", ".", "economy", "is", "of", "w1", "w2", "w3"]
    (root / "lmdata").mkdir()
    for split, n in (("train", 40), ("valid", 12), ("test", 4)):
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) for _ in range(n)]
        (root / "lmdata" / f"{split}.txt").write_text("\n".join(lines) + "\n", "utf-8")
    lm_config = preset_config(
        "tiny",
        {
            "data": str(root / "lmdata"),
            "model.gates.cell": "sharpened",
            "train.epochs": 1,
            "train.progress": False,
            "train.threads": 1,
        },
    )
    lm_train(lm_config, root / "lm")
    raw = root / "raw"
    raw.mkdir()
    for split, n in (("train", 60), ("valid", 8), ("test", 8)):
        src = [" ".join(f"s{rng.randrange(8)}" for _ in range(rng.randint(2, 5))) for _ in range(n)]
        tgt = [" ".join(reversed(s.replace("s", "w").split())) for s in src]
        (raw / f"{split}.de").write_text("".join(s + "\n" for s in src), "utf-8")
        (raw / f"{split}.en").write_text("".join(t + "\n" for t in tgt), "utf-8")
    prep = root / "prep"
    prepare_dataset(raw, prep, "de", "en", tokenize=False, bpe_merges=10)
    mt_config = load_config(
        "tiny",
        overrides=[
            f"train.data={prep}",
            "model.gates.cell=lstm",
            "model.emb=8",
            "model.hidden=8",
            "train.valid_bleu=false",
            "train.max_updates=4",
            "train.epochs=1",
        ],
    )
    mt_train(mt_config, root / "mt", show_progress=False)
    return {
        "root": root,
        "lm": (root / "lm", lm_config, _age(root / "lm", "lm")),
        "mt": (root / "mt", mt_config, _age(root / "mt", "mt")),
    }


@pytest.mark.parametrize(("task", "cell"), [("lm", "sharpened"), ("mt", "lstm")])
def test_old_run_loads_with_its_config_migrated(old_runs, task: str, cell: str) -> None:
    run_dir, config, _ = old_runs[task]
    raw = json.loads(next((run_dir / "checkpoints").glob("*/meta.json")).read_text())
    assert "cell" in raw["meta"]["config"]["model"]  # really the old layout
    assert kind_of(run_dir) == task
    run = load(run_dir)
    assert run.cell == cell and run.config.model.gates == config.model.gates
    differ = {k for k, v in run.config.flat().items() if config.flat()[k] != v}
    assert differ <= {"model.vocab_size"}  # the LM takes it from the data


@pytest.mark.parametrize("task", ["lm", "mt"])
def test_old_result_file_is_read_in_the_one_layout(old_runs, task: str) -> None:
    run_dir, _, new = old_runs[task]
    result = read_result(run_dir)
    assert result is not None and result.task == task and result.finished
    assert (result.steps, result.epochs, result.stopped) == (
        new["steps"],
        new["epochs"],
        new["stopped"],
    )
    assert result.details == new["details"]


def test_old_runs_are_found_finished_by_the_reuse_scan(old_runs) -> None:
    found = {r.task: r for r in scan_runs([old_runs["root"]])}
    assert set(found) == {"lm", "mt"}
    for task, run in found.items():
        assert run.finished, run.status
        assert run.config["model.gates.cell"] == old_runs[task][1].model.gates.cell
        assert run.result["steps"] == old_runs[task][2]["steps"]
    for task in ("lm", "mt"):  # a saved config of the old layout, through the task interface
        old = {"model": {"cell": "lstm", "tau": 0.5}}
        gates = get_task(task).config_from_dict(old).model.gates
        assert gates == GateConfig.for_cell("lstm", tau=0.5)


def test_old_runs_resume_and_write_the_one_result_file(old_runs) -> None:
    lm_dir, lm_config, lm_new = old_runs["lm"]
    again = lm_train(lm_config, lm_dir, resume=True)  # finished: the stored result, as it was
    assert again.complete and again.test_ppl == pytest.approx(lm_new["details"]["test_ppl"])
    mt_dir, mt_config, mt_new = old_runs["mt"]
    resumed = mt_train(mt_config, mt_dir, resume=True, show_progress=False)  # config compared
    assert resumed.steps == mt_new["steps"]
    assert read_result(mt_dir).to_dict()["format"] == "g2lstm-run-result"
