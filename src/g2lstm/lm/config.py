"""Typed, validated configuration of a language-model run (model, optimiser, training, data).

A :class:`RunConfig` is a :class:`~g2lstm.config.ConfigTree`: built by the task-neutral
machinery of :mod:`g2lstm.config` from a preset (:mod:`g2lstm.lm.presets`), a YAML file and
dotted overrides (``{"model.gates.cell": "g2", "train.seed": 2}``), in that order. Every value
is checked in ``__post_init__``; errors are :class:`~g2lstm.errors.ConfigError` naming the
field (``train.batch_size``), and unknown keys are refused with the list of valid ones. The
resolved config (``to_dict``) is saved beside every run and inside every checkpoint.

``model.gates`` (:class:`~g2lstm.config.GateConfig`) picks the compared models with the same
code (paper §4.2): ``cell`` ``lstm``, ``sharpened`` or ``g2``, with ``tau`` / ``noise_p``
overriding the cell's values. Configs of earlier versions kept these keys flat in ``model``
(``model.cell``); they are moved on read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from g2lstm.config import LEGACY_GATE_KEYS, ConfigTree, GateConfig, check_field
from g2lstm.config_checks import check_bool, check_choice, check_float, check_int
from g2lstm.errors import ConfigError
from g2lstm.lm.presets import PRESETS

__all__ = ["ModelConfig", "OptimConfig", "RunConfig", "TrainConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """The AWD-LSTM language model (Merity et al. 2017, ``model.py``).

    ``vocab_size=0`` means "take it from the data". With ``tie_weights`` the last layer's
    hidden size is ``emsize``. ``init="awd"``: embedding ``U(-r, r)``, decoder bias 0, LSTM
    weights torch's default; ``init="uniform"``: every parameter ``U(-r, r)`` (Zaremba et al.).
    ``locked_dropout=False`` uses ordinary per-element dropout (Zaremba) instead of variational
    masks. Dropouts: ``dropouti`` on the embedded input, ``dropouth`` between layers,
    ``dropout`` on the last output, ``dropoute`` on embedding rows, ``wdrop`` on ``weight_hh``.
    ``gates``: the G2 options of every LSTM layer (:class:`~g2lstm.config.GateConfig`).
    """

    section: ClassVar[str] = "model"
    vocab_size: int = 0
    emsize: int = 400
    nhid: int = 1150
    nlayers: int = 3
    gates: GateConfig = field(default_factory=GateConfig)
    dropout: float = 0.4
    dropouth: float = 0.3
    dropouti: float = 0.65
    dropoute: float = 0.1
    wdrop: float = 0.5
    locked_dropout: bool = True
    tie_weights: bool = True
    init: str = "awd"
    init_range: float = 0.1

    def __post_init__(self) -> None:
        check_field(self, "vocab_size", check_int, 0)
        for name in ("emsize", "nhid", "nlayers"):
            check_field(self, name, check_int, 1)
        if not isinstance(self.gates, GateConfig):
            raise ConfigError(f"model.gates must be a GateConfig, got {type(self.gates).__name__}")
        for name in ("dropout", "dropouth", "dropouti", "dropoute", "wdrop"):
            check_field(self, name, check_float, 0.0, 1.0, hi_open=True)
        for name in ("locked_dropout", "tie_weights"):
            check_field(self, name, check_bool)
        check_field(self, "init", check_choice, ("awd", "uniform"))
        check_field(self, "init_range", check_float, 0.0, lo_open=True)


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and learning-rate schedule.

    ``lr`` applies to the per-token mean loss. ``asgd``: switch SGD to averaged SGD when the
    validation loss is worse than the best of all but the last ``nonmono`` epochs (NT-ASGD,
    AWD-LSTM). ``lr_decay``/``decay_after``: multiply the learning rate by ``lr_decay`` at the
    start of every epoch after epoch ``decay_after`` (Zaremba et al.); ``lr_decay=1`` disables
    it. ``clip=0`` disables gradient clipping.
    """

    section: ClassVar[str] = "optim"
    optimizer: str = "sgd"
    lr: float = 30.0
    clip: float = 0.25
    wdecay: float = 1.2e-6
    asgd: bool = True
    nonmono: int = 5
    lr_decay: float = 1.0
    decay_after: int = 0

    def __post_init__(self) -> None:
        check_field(self, "optimizer", check_choice, ("sgd", "adam"))
        check_field(self, "lr", check_float, 0.0, lo_open=True)
        check_field(self, "clip", check_float, 0.0)
        check_field(self, "wdecay", check_float, 0.0)
        check_field(self, "asgd", check_bool)
        check_field(self, "nonmono", check_int, 1)
        check_field(self, "lr_decay", check_float, 0.0, 1.0, lo_open=True)
        check_field(self, "decay_after", check_int, 0)
        if self.asgd and self.optimizer != "sgd":
            raise ConfigError("optim.asgd=true needs optim.optimizer='sgd' (NT-ASGD averages SGD)")

    def epoch_lr(self, epoch: int) -> float:
        """Base learning rate of 1-based ``epoch`` under the decay schedule."""
        return self.lr * self.lr_decay ** max(0, epoch - self.decay_after)


@dataclass(frozen=True)
class TrainConfig:
    """Batching, epochs, regularisation weights, logging and checkpointing.

    ``bptt_random``: AWD-LSTM's random segment length (``N(bptt, 5)``, ``bptt/2`` with
    probability 0.05, clamped to ``bptt + bptt_max_extra``) with the learning rate rescaled by
    ``seq_len / bptt``. ``finetune_epochs``: a second stage that restarts from the best
    weights with averaged SGD (AWD ``finetune.py``). ``alpha``/``beta``: AR/TAR weights.
    ``threads=0`` leaves torch's thread count alone. ``max_steps`` stops (with a resumable
    checkpoint) after that many training steps in total; ``checkpoint_every`` also saves
    every that many steps (0: at the end of each epoch only). ``limit_tokens`` uses only the
    first that many tokens of each split (train, valid, test), so that a preset such as
    ``tiny`` takes seconds on any dataset (None: all).
    """

    section: ClassVar[str] = "train"
    batch_size: int = 80
    eval_batch_size: int = 10
    test_batch_size: int = 1
    bptt: int = 70
    bptt_random: bool = True
    bptt_max_extra: int = 20
    epochs: int = 500
    finetune_epochs: int = 0
    seed: int = 1111
    alpha: float = 2.0
    beta: float = 1.0
    log_interval: int = 200
    on_nonfinite: str = "raise"
    keep_last: int = 2
    threads: int = 0
    max_steps: int | None = None
    limit_tokens: int | None = None
    checkpoint_every: int = 0
    tensorboard: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        for name in (
            "batch_size",
            "eval_batch_size",
            "test_batch_size",
            "bptt",
            "epochs",
            "log_interval",
            "keep_last",
        ):
            check_field(self, name, check_int, 1)
        for name in ("bptt_max_extra", "finetune_epochs", "threads", "checkpoint_every"):
            check_field(self, name, check_int, 0)
        check_field(self, "seed", check_int, 0, 2**32 - 1)
        if self.max_steps is not None:
            check_field(self, "max_steps", check_int, 1)
        if self.limit_tokens is not None:
            check_field(self, "limit_tokens", check_int, 2)
        check_field(self, "alpha", check_float, 0.0)
        check_field(self, "beta", check_float, 0.0)
        check_field(self, "on_nonfinite", check_choice, ("raise", "skip"))
        for name in ("bptt_random", "tensorboard", "progress"):
            check_field(self, name, check_bool)


_SECTIONS = {"model": ModelConfig, "optim": OptimConfig, "train": TrainConfig}


@dataclass(frozen=True)
class RunConfig(ConfigTree):
    """A whole run: the three sections plus the data (a dataset name such as ``ptb`` or a
    folder with ``train.txt``/``valid.txt``/``test.txt``) and the preset it started from."""

    PRESETS = PRESETS
    LEGACY_KEYS = LEGACY_GATE_KEYS

    section: ClassVar[str] = "run"
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: str = "ptb"
    data_dir: str | None = None
    preset: str | None = None

    def __post_init__(self) -> None:
        for name, cls in _SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(f"{name} must be a {cls.__name__}")
        if not isinstance(self.data, str) or not self.data:
            raise ConfigError(f"data={self.data!r} must be a dataset name or a folder")
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise ConfigError(f"data_dir={self.data_dir!r} must be a path or null")
