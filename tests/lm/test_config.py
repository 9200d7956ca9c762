"""RunConfig validation, presets, overrides and YAML round trip."""

from __future__ import annotations

import pytest

from g2lstm.config import GateConfig, load_yaml
from g2lstm.errors import ConfigError
from g2lstm.lm import PRESETS, RunConfig, preset_config
from g2lstm.lm.config import ModelConfig, OptimConfig, TrainConfig


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_valid(name: str) -> None:
    cfg = preset_config(name)
    assert cfg.preset == name
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("cell", "tau", "noise_p"), [("lstm", 1.0, 0.0), ("sharpened", 0.2, 0.0), ("g2", 0.9, 0.2)]
)
def test_cell_maps_to_gate_options(cell: str, tau: float, noise_p: float) -> None:
    cfg = preset_config("small", {"model.gates.cell": cell})
    assert (cfg.model.gates.tau, cfg.model.gates.noise_p) == (tau, noise_p)
    assert cfg.model.gates.layer_options()["tau"] == tau
    # an explicit override wins over the cell's default
    cfg = preset_config("small", {"model.gates.cell": cell, "model.gates.tau": 0.5})
    assert cfg.model.gates.tau == 0.5
    # the flat keys of earlier versions still work
    assert preset_config("small", {"model.cell": cell}).model.gates == GateConfig.for_cell(cell)


def test_small_preset_is_zaremba_small_on_the_mean_loss() -> None:
    cfg = preset_config("small")
    assert (cfg.model.nlayers, cfg.model.nhid, cfg.model.emsize) == (2, 200, 200)
    assert (cfg.train.batch_size, cfg.train.bptt, cfg.train.epochs) == (20, 20, 13)
    assert cfg.optim.lr == 20.0 and cfg.optim.clip == 0.25  # lr 1 / clip 5 on the 20-step sum
    assert [cfg.optim.epoch_lr(e) for e in (1, 4, 5, 6)] == [20.0, 20.0, 10.0, 5.0]
    assert cfg.model.dropout == 0 and not cfg.model.tie_weights and cfg.model.init == "uniform"


def test_unknown_keys_are_refused_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'nhidden'.*valid keys:.*nhid"):
        RunConfig.from_dict({"model": {"nhidden": 3}})
    with pytest.raises(ConfigError, match="unknown key.*'modle'"):
        RunConfig.from_dict({"modle": {}})


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (TrainConfig, {"batch_size": 0}, "train.batch_size"),
        (TrainConfig, {"on_nonfinite": "ignore"}, "train.on_nonfinite"),
        (OptimConfig, {"lr": -1.0}, "optim.lr"),
        (OptimConfig, {"lr_decay": 0.0}, "optim.lr_decay"),
        (ModelConfig, {"dropouti": 1.0}, "model.dropouti"),
        (GateConfig, {"cell": "gru"}, "model.gates.cell"),
        (ModelConfig, {"nhid": 2.5}, "model.nhid"),
        (GateConfig, {"tau": 0.0}, "model.gates.tau"),
    ],
)
def test_bad_values_name_the_field(cls: type, kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        cls(**kwargs)


def test_asgd_needs_sgd() -> None:
    with pytest.raises(ConfigError, match="asgd"):
        OptimConfig(optimizer="adam", asgd=True)


def test_yaml_round_trip_and_overrides(tmp_path) -> None:
    cfg = preset_config("tiny", {"model.gates.cell": "sharpened", "train.seed": 7})
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml(), encoding="utf-8")
    assert RunConfig.from_dict(load_yaml(path)) == cfg
    new = cfg.replace({"train.epochs": 9})
    assert new.train.epochs == 9 and new.train.seed == 7
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(tmp_path / "bad.yaml")
