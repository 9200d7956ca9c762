"""Word-level language modelling with the AWD-LSTM recipe (paper §4.1.1).

The model, its configuration and presets, the NT-ASGD trainer, evaluation (with the
continuous cache pointer) and sampling. Needs the ``train`` extra (numpy, safetensors, tqdm,
pyyaml, filelock). Typical use::

    from g2lstm.lm import RunConfig, preset_config, train
    config = preset_config("small", {"model.gates.cell": "g2", "data": "ptb"})
    result = train(config, "runs/ptb-small-g2")
"""

from __future__ import annotations

from typing import Any

from g2lstm.config import CELLS, resolve
from g2lstm.lm.asgd import AveragedSGD, NTASGDTrigger
from g2lstm.lm.config import ModelConfig, OptimConfig, RunConfig, TrainConfig
from g2lstm.lm.evaluate import evaluate, evaluate_pointer, load_model
from g2lstm.lm.generate import generate
from g2lstm.lm.model import LMOutput, RNNLanguageModel
from g2lstm.lm.pointer import PointerConfig
from g2lstm.lm.presets import PRESETS
from g2lstm.lm.trainer import LMTrainer, TrainResult, train

__all__ = [
    "CELLS",
    "PRESETS",
    "AveragedSGD",
    "LMOutput",
    "LMTrainer",
    "ModelConfig",
    "NTASGDTrigger",
    "OptimConfig",
    "PointerConfig",
    "RNNLanguageModel",
    "RunConfig",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "evaluate_pointer",
    "generate",
    "load_model",
    "preset_config",
    "train",
]


def preset_config(name: str, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The :class:`RunConfig` of preset ``name`` with dotted ``overrides`` applied
    (:func:`g2lstm.config.resolve`).

    Changing the cell (``model.gates.cell``) resets ``tau``/``noise_p`` to the cell's values
    unless they are overridden too.
    """
    return resolve(RunConfig, name, overrides=overrides)
