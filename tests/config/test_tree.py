"""The one config machinery of both tasks: presets, YAML, --set overrides, the cell reset rule,
old layouts migrated, resolved config saved and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from g2lstm.config import (
    GateConfig,
    apply_overrides,
    changed_keys,
    load_yaml,
    parse_assignments,
    resolve,
)
from g2lstm.errors import ConfigError
from g2lstm.lm.config import RunConfig
from g2lstm.mt.config import MTConfig

CONFIGS = [RunConfig, MTConfig]


@pytest.mark.parametrize("cls", CONFIGS)
def test_every_preset_round_trips_through_yaml(cls, tmp_path: Path) -> None:
    for name in cls.PRESETS:
        config = cls.from_preset(name)
        path = tmp_path / f"{name}.yaml"
        path.write_text(config.to_yaml(), encoding="utf-8")
        assert cls.from_dict(load_yaml(path)) == config
        assert resolve(cls, path=path) == config


@pytest.mark.parametrize("cls", CONFIGS)
def test_a_new_cell_brings_its_own_tau_and_noise_p(cls) -> None:
    base = cls().replace({"model.gates.cell": "sharpened", "model.gates.tau": 0.3})
    assert (base.model.gates.tau, base.model.gates.noise_p) == (0.3, 0.0)
    g2 = base.replace({"model.gates.cell": "g2"})
    assert g2.model.gates == GateConfig.for_cell("g2")
    kept = base.replace({"model.gates.cell": "g2", "model.gates.noise_p": 0.5})
    assert (kept.model.gates.tau, kept.model.gates.noise_p) == (0.9, 0.5)
    # other keys leave them alone; the old flat key resets the same way
    assert base.replace({"train.seed": 3}).model.gates.tau == 0.3
    assert base.replace({"model.cell": "g2"}).model.gates == GateConfig.for_cell("g2")


@pytest.mark.parametrize("cls", CONFIGS)
def test_old_flat_gate_keys_are_migrated_everywhere(cls, tmp_path: Path) -> None:
    old = {"model": {"cell": "lstm", "tau": 0.7, "estimator": "straight_through"}}
    config = cls.from_dict(old)
    assert config.model.gates == GateConfig(cell="lstm", tau=0.7, estimator="straight_through")
    assert "cell" not in config.to_dict()["model"] and config.flat()["model.gates.tau"] == 0.7
    path = tmp_path / "old.yaml"
    path.write_text("model:\n  cell: sharpened\n", encoding="utf-8")
    from_file = resolve(cls, path=path, overrides=parse_assignments(cls, ["model.tau=0.4"]))
    assert (from_file.model.gates.cell, from_file.model.gates.tau) == ("sharpened", 0.4)
    assert cls().merged(old).model.gates.cell == "lstm"


@pytest.mark.parametrize("cls", CONFIGS)
def test_unknown_keys_are_refused_with_the_valid_ones(cls) -> None:
    with pytest.raises(
        ConfigError, match=r"model: gates: unknown key\(s\) 'temp'.*valid keys:.*tau"
    ):
        cls.from_dict({"model": {"gates": {"temp": 1}}})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'modle'"):
        cls.from_dict({"modle": {}})
    with pytest.raises(ConfigError, match="is not a section"):
        apply_overrides(cls, cls().to_dict(), {"train.seed.x": 1})
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_assignments(cls, ["model.gates.cell"])


def test_assignments_keep_text_fields_as_written_and_parse_the_rest() -> None:
    items = ["train.data=1e3", "optim.lr=5e-4", "model.gates.tau=null", "train.valid_bleu=false"]
    parsed = parse_assignments(MTConfig, items)
    assert parsed == {
        "train.data": "1e3",
        "optim.lr": 5e-4,
        "model.gates.tau": None,
        "train.valid_bleu": False,
    }
    assert parse_assignments(RunConfig, ["data=123"]) == {"data": "123"}
    with pytest.raises(ConfigError, match="not plain YAML"):
        parse_assignments(RunConfig, ["model.nhid=[1"])


def test_yaml_floats_written_as_exponents_are_read_as_floats(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 5e-4\n", encoding="utf-8")  # YAML 1.1: a string
    assert resolve(MTConfig, "tiny", path).optim.lr == 5e-4
    assert resolve(RunConfig, "tiny", path).optim.lr == 5e-4


def test_file_preset_key_and_default_preset() -> None:
    assert resolve(RunConfig, default_preset="small").preset == "small"
    assert resolve(MTConfig, default_preset="wmt").model.hidden == 1024
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        resolve(MTConfig, "huge")


def test_changed_keys_lists_what_a_resume_may_not_change() -> None:
    old = MTConfig.from_preset("tiny")
    new = old.replace({"train.epochs": 9, "model.gates.cell": "lstm"})
    diffs = changed_keys(old, new, {"train.epochs"})
    assert diffs == [
        "model.gates.cell: 'g2' -> 'lstm'",
        "model.gates.tau: 0.9 -> 1.0",
        "model.gates.noise_p: 0.2 -> 0.0",
    ]
