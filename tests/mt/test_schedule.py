"""Learning-rate schedules: the rules and their validation (the trainer following them and
resuming under them: ``test_train.py``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from g2lstm.errors import ConfigError
from g2lstm.mt.config import MTConfig, OptimConfig
from g2lstm.mt.schedule import scheduled_lr


def test_step_is_constant_then_decays_every_epoch() -> None:
    o = OptimConfig(lr=2e-3, schedule="step", decay_start=3, lr_decay=0.5, min_lr=1e-4)
    by_epoch = [scheduled_lr(o, 1000, epoch, plateau_lr=99.0) for epoch in range(8)]
    # epochs 1-3 (0-2 completed) at 2e-3, then halved at the start of epochs 4, 5, ...
    assert by_epoch[:3] == [2e-3] * 3
    assert by_epoch[3:7] == pytest.approx([1e-3, 5e-4, 2.5e-4, 1.25e-4])
    assert by_epoch[7] == 1e-4  # floored at min_lr


def test_warmup_ramps_every_rule_linearly() -> None:
    step = OptimConfig(lr=1e-3, schedule="step", decay_start=5, warmup=4)
    assert [scheduled_lr(step, u, 0, 0.0) for u in (1, 2, 3, 4, 5)] == pytest.approx(
        [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3]
    )
    plateau = OptimConfig(lr=1e-3, warmup=2)
    assert scheduled_lr(plateau, 1, 0, plateau_lr=4e-4) == pytest.approx(2e-4)
    assert scheduled_lr(plateau, 2, 0, plateau_lr=4e-4) == pytest.approx(4e-4)


def test_inverse_sqrt_peaks_at_the_end_of_warmup() -> None:
    o = OptimConfig(lr=3e-3, schedule="inverse_sqrt", warmup=100, min_lr=0.0)
    assert scheduled_lr(o, 50, 0, 0.0) == pytest.approx(1.5e-3)
    assert scheduled_lr(o, 100, 0, 0.0) == pytest.approx(3e-3)
    assert scheduled_lr(o, 400, 7, 0.0) == pytest.approx(1.5e-3)  # sqrt(100 / 400) = 1/2
    rates = [scheduled_lr(o, u, 0, 0.0) for u in range(1, 1000)]
    assert max(rates) == pytest.approx(3e-3) and rates.index(max(rates)) == 99


def test_plateau_returns_the_rules_state() -> None:
    assert scheduled_lr(OptimConfig(lr=1e-3), 7, 3, plateau_lr=2.5e-4) == 2.5e-4


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"schedule": "cosine"}, r"optim\.schedule='cosine'.*plateau, step, inverse_sqrt"),
        ({"schedule": "inverse_sqrt"}, r"needs optim\.warmup >= 1"),
        ({"decay_start": -1}, r"optim\.decay_start=-1"),
        ({"warmup": 1.5}, r"optim\.warmup=1\.5"),
    ],
)
def test_bad_schedule_settings_are_refused(changes: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        OptimConfig(**changes)
    with pytest.raises(ConfigError, match=match):
        MTConfig().merged({"optim": changes})


def test_multi30k_preset_is_the_iwslt_model_with_additive_attention_and_its_recipe() -> None:
    iwslt, m30k = MTConfig.from_preset("iwslt"), MTConfig.from_preset("multi30k")
    assert m30k.model.attention == "bahdanau" and iwslt.model.attention == "luong"
    assert replace(m30k.model, attention="luong") == iwslt.model
    assert m30k.optim.schedule == "step" and m30k.optim.decay_start < m30k.train.epochs
    assert m30k.optim.name == "adam" and m30k.optim.effective_lr == pytest.approx(2e-3)
    assert (m30k.optim.clip, m30k.train.max_tokens) == (1.0, 1000)
