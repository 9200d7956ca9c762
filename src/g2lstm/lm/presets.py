"""Named starting configurations for :class:`~g2lstm.lm.config.RunConfig`.

- ``paper``: AWD-LSTM on PTB as the paper says it ran it ("all other configurations follow
  Merity et al. (2017)"): AWD-LSTM's published PTB command, ``--batch_size 20 --dropouti 0.4
  --dropouth 0.25 --seed 141 --epoch 500``, plus its 500-epoch finetune (3 x 1150, emsize 400,
  bptt 70, NT-ASGD). Its cache pointer (``g2lstm lm eval --cache-pointer``) defaults to the
  same recipe's window 500, theta 1.0, lambda 0.1. For a GPU.
- ``paper-authors``: the same model with the defaults of the G2 authors' ``main.py`` (those of
  AWD-LSTM's ``main.py``: batch 80, dropouti 0.65, dropouth 0.3, seed 1111), for comparison.
  The paper's numbers most likely used ``paper``: the text says it follows Merity et al., the
  defaults are the values AWD-LSTM's own PTB command overrides (the authors published no run
  script), and the authors' ``pointer.py`` defaults are AWD-LSTM's WikiText-2 values while
  Table 3's baseline (52.8 with the cache) is Merity et al.'s PTB number, which used window 500,
  theta 1.0, lambda 0.1 (``docs/paper.md`` §2.1).
- ``small``: Zaremba et al. (2014) "small": 2 x 200, no dropout, ``U(-0.1, 0.1)`` init,
  batch 20, bptt 20, 13 epochs, learning rate halved each epoch after the 4th. Zaremba's
  lr 1 / clip 5 apply to the loss summed over the 20 steps, i.e. lr 20 / clip 0.25 on the
  per-token mean used here.
- ``medium``: Zaremba "medium": 2 x 650, dropout 0.5, ``U(-0.05, 0.05)``, bptt 35, 39
  epochs, lr x0.8 per epoch after the 6th (lr 1 / clip 5 on the sum over 35 steps = lr 35 /
  clip 5/35 on the mean).
- ``tiny``: a 2 x 24 model for 2 epochs on the first 20,000 tokens of each split
  (``train.limit_tokens``): seconds on any dataset; for tests and smoke runs.

Every preset leaves ``model.gates.cell`` at ``g2``; pick the model with ``--cell``. The
machinery that reads this table is :mod:`g2lstm.config` (:meth:`RunConfig.preset
<g2lstm.config.ConfigTree.preset>`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

_ZAREMBA: dict[str, Any] = {
    "model": {
        "dropout": 0.0,
        "dropouth": 0.0,
        "dropouti": 0.0,
        "dropoute": 0.0,
        "wdrop": 0.0,
        "locked_dropout": False,
        "tie_weights": False,
        "init": "uniform",
    },
    "optim": {"optimizer": "sgd", "wdecay": 0.0, "asgd": False},
    "train": {
        "batch_size": 20,
        "eval_batch_size": 10,
        "test_batch_size": 1,
        "bptt_random": False,
        "finetune_epochs": 0,
        "alpha": 0.0,
        "beta": 0.0,
        "log_interval": 200,
    },
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for k, v in extra.items():
        out[k] = {**out.get(k, {}), **v} if isinstance(v, dict) else v
    return out


#: AWD-LSTM (Merity et al. 2017) on PTB, what ``paper`` and ``paper-authors`` share: 3 x 1150,
#: emsize 400, tied weights, variational dropouts, DropConnect 0.5 on ``weight_hh``, SGD lr 30
#: then NT-ASGD, 500 epochs + a 500-epoch finetune, AR/TAR 2/1.
_AWD_PTB: dict[str, Any] = {
    "model": {
        "emsize": 400,
        "nhid": 1150,
        "nlayers": 3,
        "dropout": 0.4,
        "dropoute": 0.1,
        "wdrop": 0.5,
        "tie_weights": True,
        "locked_dropout": True,
        "init": "awd",
        "init_range": 0.1,
    },
    "optim": {
        "optimizer": "sgd",
        "lr": 30.0,
        "clip": 0.25,
        "wdecay": 1.2e-6,
        "asgd": True,
        "nonmono": 5,
    },
    "train": {
        "eval_batch_size": 10,
        "test_batch_size": 1,
        "bptt": 70,
        "bptt_random": True,
        "epochs": 500,
        "finetune_epochs": 500,
        "alpha": 2.0,
        "beta": 1.0,
        "log_interval": 200,
    },
}


PRESETS: dict[str, dict[str, Any]] = {
    "paper": _merge(
        _AWD_PTB,
        {
            "model": {"dropouth": 0.25, "dropouti": 0.4},
            "train": {"batch_size": 20, "seed": 141},
        },
    ),
    "paper-authors": _merge(
        _AWD_PTB,
        {
            "model": {"dropouth": 0.3, "dropouti": 0.65},
            "train": {"batch_size": 80, "seed": 1111},
        },
    ),
    "small": _merge(
        _ZAREMBA,
        {
            "model": {"emsize": 200, "nhid": 200, "nlayers": 2, "init_range": 0.1},
            "optim": {"lr": 20.0, "clip": 0.25, "lr_decay": 0.5, "decay_after": 4},
            "train": {"bptt": 20, "epochs": 13, "seed": 1},
        },
    ),
    "medium": _merge(
        _ZAREMBA,
        {
            "model": {
                "emsize": 650,
                "nhid": 650,
                "nlayers": 2,
                "init_range": 0.05,
                "dropout": 0.5,
                "dropouti": 0.5,
                "dropouth": 0.5,
            },
            "optim": {"lr": 35.0, "clip": 5.0 / 35.0, "lr_decay": 0.8, "decay_after": 6},
            "train": {"bptt": 35, "epochs": 39, "seed": 1},
        },
    ),
    "tiny": {
        "model": {
            "emsize": 16,
            "nhid": 24,
            "nlayers": 2,
            "dropout": 0.1,
            "dropouth": 0.1,
            "dropouti": 0.1,
            "dropoute": 0.05,
            "wdrop": 0.2,
            "tie_weights": True,
        },
        "optim": {
            "optimizer": "sgd",
            "lr": 10.0,
            "clip": 0.25,
            "wdecay": 1.2e-6,
            "asgd": True,
            "nonmono": 1,
        },
        "train": {
            "batch_size": 4,
            "eval_batch_size": 2,
            "test_batch_size": 1,
            "bptt": 8,
            "bptt_random": True,
            "epochs": 2,
            "seed": 1,
            "log_interval": 10,
            "alpha": 2.0,
            "beta": 1.0,
            "limit_tokens": 20000,
        },
    },
}
