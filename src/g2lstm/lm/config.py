"""Typed, validated configuration of a language-model run (model, optimiser, training, data).

A :class:`RunConfig` is built from a preset (:mod:`g2lstm.lm.presets`), a YAML file and
dotted overrides (``{"model.cell": "g2", "train.seed": 2}``), in that order. Every value is
checked in ``__post_init__``; errors are :class:`~g2lstm.errors.ConfigError` naming the field
(``train.batch_size``), and unknown keys are refused with the list of valid ones. The resolved
config (``to_dict``) is saved beside every run and inside every checkpoint.

``model.cell`` picks the compared models with the same code (paper §4.2):
``lstm`` (``noise_p=0, tau=1``), ``sharpened`` (``noise_p=0, tau=0.2``) and ``g2``
(``noise_p=0.2, tau=0.9``); ``model.tau`` / ``model.noise_p`` override the cell's values.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from g2lstm.config_checks import check_bool, check_choice, check_float, check_int
from g2lstm.errors import ConfigError
from g2lstm.nn.config import CELL_KINDS, GateConfig

__all__ = [
    "CELLS",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "TrainConfig",
    "apply_overrides",
    "load_yaml",
]

#: ``--cell`` -> default (tau, noise_p).
CELLS: dict[str, tuple[float, float]] = {k: (v["tau"], v["noise_p"]) for k, v in CELL_KINDS.items()}


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _check_field(
    obj: Any, name: str, check: Callable[..., object], *args: Any, **kwargs: Any
) -> None:
    """Run ``check`` (:mod:`g2lstm.config_checks`) on field ``name`` of a frozen section, named
    ``section.name`` in errors, and store the value it returns (floats as ``float``)."""
    _set(obj, name, check(f"{obj.section}.{name}", getattr(obj, name), *args, **kwargs))


@dataclass(frozen=True)
class ModelConfig:
    """The AWD-LSTM language model (Merity et al. 2017, ``model.py``).

    ``vocab_size=0`` means "take it from the data". With ``tie_weights`` the last layer's
    hidden size is ``emsize``. ``init="awd"``: embedding ``U(-r, r)``, decoder bias 0, LSTM
    weights torch's default; ``init="uniform"``: every parameter ``U(-r, r)`` (Zaremba et al.).
    ``locked_dropout=False`` uses ordinary per-element dropout (Zaremba) instead of variational
    masks. Dropouts: ``dropouti`` on the embedded input, ``dropouth`` between layers,
    ``dropout`` on the last output, ``dropoute`` on embedding rows, ``wdrop`` on ``weight_hh``.
    """

    section = "model"
    vocab_size: int = 0
    emsize: int = 400
    nhid: int = 1150
    nlayers: int = 3
    cell: str = "g2"
    tau: float | None = None
    noise_p: float | None = None
    noise_schedule: str = "per_step"
    noisy_gates: tuple[str, ...] = ("input", "forget")
    eval_gates: str = "soft"
    estimator: str = "gumbel"
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
        _check_field(self, "vocab_size", check_int, 0)
        for name in ("emsize", "nhid", "nlayers"):
            _check_field(self, name, check_int, 1)
        _check_field(self, "cell", check_choice, tuple(CELLS))
        tau, noise_p = CELLS[self.cell]
        if self.tau is None:
            _set(self, "tau", tau)
        if self.noise_p is None:
            _set(self, "noise_p", noise_p)
        _check_field(self, "tau", check_float, 0.0, lo_open=True)
        _check_field(self, "noise_p", check_float, 0.0, 1.0)
        for name in ("dropout", "dropouth", "dropouti", "dropoute", "wdrop"):
            _check_field(self, name, check_float, 0.0, 1.0, hi_open=True)
        for name in ("locked_dropout", "tie_weights"):
            _check_field(self, name, check_bool)
        _check_field(self, "init", check_choice, ("awd", "uniform"))
        _check_field(self, "init_range", check_float, 0.0, lo_open=True)
        if isinstance(self.noisy_gates, (list, str)):
            gates = (
                self.noisy_gates.split(",")
                if isinstance(self.noisy_gates, str)
                else self.noisy_gates
            )
            _set(self, "noisy_gates", tuple(gates))
        try:  # validates and normalises the G2 options, naming them
            gate = GateConfig(
                self.tau,
                self.noise_p,
                self.noise_schedule,
                self.noisy_gates,
                self.eval_gates,
                self.estimator,
            )
        except ConfigError as exc:
            raise ConfigError(f"model: {exc}") from None
        _set(self, "noisy_gates", gate.noisy_gates)
        _set(self, "noise_schedule", gate.noise_schedule.value)
        _set(self, "eval_gates", gate.eval_gates.value)
        _set(self, "estimator", gate.estimator.value)

    def gate_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~g2lstm.nn.G2LSTM` (without ``weight_dropout``)."""
        return {
            "tau": self.tau,
            "noise_p": self.noise_p,
            "noise_schedule": self.noise_schedule,
            "noisy_gates": self.noisy_gates,
            "eval_gates": self.eval_gates,
            "estimator": self.estimator,
        }


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and learning-rate schedule.

    ``lr`` applies to the per-token mean loss. ``asgd``: switch SGD to averaged SGD when the
    validation loss is worse than the best of all but the last ``nonmono`` epochs (NT-ASGD,
    AWD-LSTM). ``lr_decay``/``decay_after``: multiply the learning rate by ``lr_decay`` at the
    start of every epoch after epoch ``decay_after`` (Zaremba et al.); ``lr_decay=1`` disables
    it. ``clip=0`` disables gradient clipping.
    """

    section = "optim"
    optimizer: str = "sgd"
    lr: float = 30.0
    clip: float = 0.25
    wdecay: float = 1.2e-6
    asgd: bool = True
    nonmono: int = 5
    lr_decay: float = 1.0
    decay_after: int = 0

    def __post_init__(self) -> None:
        _check_field(self, "optimizer", check_choice, ("sgd", "adam"))
        _check_field(self, "lr", check_float, 0.0, lo_open=True)
        _check_field(self, "clip", check_float, 0.0)
        _check_field(self, "wdecay", check_float, 0.0)
        _check_field(self, "asgd", check_bool)
        _check_field(self, "nonmono", check_int, 1)
        _check_field(self, "lr_decay", check_float, 0.0, 1.0, lo_open=True)
        _check_field(self, "decay_after", check_int, 0)
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

    section = "train"
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
            _check_field(self, name, check_int, 1)
        for name in ("bptt_max_extra", "finetune_epochs", "threads", "checkpoint_every"):
            _check_field(self, name, check_int, 0)
        _check_field(self, "seed", check_int, 0, 2**32 - 1)
        if self.max_steps is not None:
            _check_field(self, "max_steps", check_int, 1)
        if self.limit_tokens is not None:
            _check_field(self, "limit_tokens", check_int, 2)
        _check_field(self, "alpha", check_float, 0.0)
        _check_field(self, "beta", check_float, 0.0)
        _check_field(self, "on_nonfinite", check_choice, ("raise", "skip"))
        for name in ("bptt_random", "tensorboard", "progress"):
            _check_field(self, name, check_bool)


_SECTIONS = {"model": ModelConfig, "optim": OptimConfig, "train": TrainConfig}


@dataclass(frozen=True)
class RunConfig:
    """A whole run: the three sections plus the data (a dataset name such as ``ptb`` or a
    folder with ``train.txt``/``valid.txt``/``test.txt``) and the preset it started from."""

    section = "run"
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

    # ------------------------------------------------------------------ conversion
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> RunConfig:
        """Build from nested dicts (unknown keys raise ConfigError listing the valid ones)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
        top = {f.name for f in fields(cls)}
        _check_keys(data, top, source)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in _SECTIONS:
                section = _SECTIONS[key]
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{source}: '{key}' must be a mapping")
                _check_keys(value, {f.name for f in fields(section)}, f"{source}: {key}")
                kwargs[key] = section(**value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (JSON/YAML ready; tuples become lists)."""

        def plain(obj: Any) -> Any:
            if dataclasses.is_dataclass(obj):
                return {f.name: plain(getattr(obj, f.name)) for f in fields(obj)}
            if isinstance(obj, tuple):
                return list(obj)
            return obj

        return plain(self)

    def to_yaml(self) -> str:
        """The resolved config as YAML text."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def replace(self, overrides: Mapping[str, Any]) -> RunConfig:
        """A copy with dotted overrides applied (``{"train.seed": 2}``)."""
        return RunConfig.from_dict(apply_overrides(self.to_dict(), overrides))


def _check_keys(data: Mapping[str, Any], valid: set[str], where: str) -> None:
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: "
            f"{', '.join(sorted(valid))}"
        )


def apply_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a deep copy of nested ``base`` with dotted keys set (``"model.nhid": 650``)."""
    out: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in base.items()}
    for key, value in overrides.items():
        parts = key.split(".")
        if len(parts) == 1:
            out[key] = value
        elif len(parts) == 2:
            section = out.setdefault(parts[0], {})
            if not isinstance(section, dict):
                raise ConfigError(f"override {key!r}: {parts[0]!r} is not a section")
            section[parts[1]] = value
        else:
            raise ConfigError(f"override {key!r}: expected 'key' or 'section.key'")
    return out


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML config file into nested dicts (safe loader); ConfigError names the file."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        why = "; ".join(str(exc).splitlines()[:1]) or type(exc).__name__
        raise ConfigError(f"cannot read config file {p}: {why}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data
