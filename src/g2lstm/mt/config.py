"""Typed, validated configuration of an MT run (model, optimiser, training, decoding).

A run is described by one :class:`MTConfig`, a :class:`~g2lstm.config.ConfigTree` built by
the task-neutral machinery of :mod:`g2lstm.config` from a preset (:data:`PRESETS`, in
:mod:`g2lstm.mt.presets`), a YAML file and ``section.key=value`` overrides, in that order
(:func:`load_config`)::

    cfg = MTConfig.from_preset("iwslt")
    cfg = cfg.merged(yaml.safe_load(open("run.yaml")))
    cfg = cfg.with_assignments(["model.gates.cell=g2", "train.max_minutes=55"])

Presets (paper §4.1.2, ``../shared/docs/paper.md`` §2.2):

- ``iwslt``: 2 layers, embedding = hidden = 256 (paper's IWSLT'14 De->En model).
- ``wmt``: 3 layers, embedding 512, hidden 1024 (paper's WMT'14 En->De model).
- ``tiny``: 1 layer, 32/32, 2 epochs of the first 500 sentence pairs
  (``train.limit_sentences``): seconds on any dataset; for tests and smoke runs.

Gates (``model.gates``, :class:`~g2lstm.config.GateConfig`; the CLI's ``--cell``): ``lstm``
-> ``noise_p=0, tau=1`` (exactly an LSTM); ``sharpened`` -> ``noise_p=0, tau=0.2`` (paper's
"Sharpened Sigmoid"); ``g2`` -> ``noise_p=0.2, tau=0.9`` (G2-LSTM as the authors ran it).
``model.gates.tau`` / ``model.gates.noise_p`` override the cell's values when set. Configs of
earlier versions kept these keys flat in ``model`` (``model.cell``); they are moved on read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from g2lstm.config import (
    LEGACY_GATE_KEYS,
    ConfigTree,
    GateConfig,
    parse_assignments,
    resolve,
)
from g2lstm.config_checks import check_bool, check_choice, check_float, check_int
from g2lstm.errors import ConfigError
from g2lstm.mt.presets import PRESETS

__all__ = [
    "PRESETS",
    "SCHEDULES",
    "DecodeConfig",
    "MTConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "load_config",
]

#: Valid ``optim.schedule`` values (the rules of :mod:`g2lstm.mt.schedule`).
SCHEDULES = ("plateau", "step", "inverse_sqrt")
ATTENTIONS = ("luong", "bahdanau")
OPTIMIZERS = ("adam", "adadelta")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the attention encoder-decoder (see :mod:`g2lstm.mt.model`).

    Attributes:
        emb: embedding size (source and target).
        hidden: LSTM hidden size (each direction of the bidirectional first encoder layer).
        layers: encoder layers (the first is bidirectional) = decoder layers.
        attention: ``"luong"`` (multiplicative "general" score ``h_t^T W_a h_s``) or
            ``"bahdanau"`` (additive score ``v^T tanh(W_q h_t + W_k h_s)``); both attend from
            the top decoder layer's output (Luong et al., 2015 placement).
        input_feeding: feed the previous attentional vector into the decoder's input (Luong
            et al.); slower in training (step-by-step decoder) and off by default.
        dropout: dropout on embeddings, between LSTM layers and before the output layer.
        tie_embeddings: share the target embedding and the output-layer weights (the
            attentional vector then has size ``emb``).
        gates: the G2 gate options of every LSTM of the model
            (:class:`~g2lstm.config.GateConfig`: cell, tau, noise_p, ...).
        weight_dropout, forget_bias: the other G2 options of :class:`~g2lstm.nn.G2LSTM`,
            applied to every LSTM of the model.
    """

    emb: int = 256
    hidden: int = 256
    layers: int = 2
    attention: str = "luong"
    input_feeding: bool = False
    dropout: float = 0.2
    tie_embeddings: bool = False
    gates: GateConfig = field(default_factory=GateConfig)
    weight_dropout: float = 0.0
    forget_bias: float | None = None

    def __post_init__(self) -> None:
        check_int("model.emb", self.emb, 1)
        check_int("model.hidden", self.hidden, 1)
        check_int("model.layers", self.layers, 1)
        check_choice("model.attention", self.attention, ATTENTIONS)
        check_float("model.dropout", self.dropout, 0.0, 0.99)
        if not isinstance(self.gates, GateConfig):
            raise ConfigError(f"model.gates must be a GateConfig, got {type(self.gates).__name__}")
        check_bool("model.input_feeding", self.input_feeding)
        check_bool("model.tie_embeddings", self.tie_embeddings)

    def gate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~g2lstm.nn.G2LSTM` (the keyword-only G2 options)."""
        return {
            **self.gates.layer_options(),
            "weight_dropout": self.weight_dropout,
            "forget_bias": self.forget_bias,
        }

    @property
    def attn_dim(self) -> int:
        """Size of the attentional vector ``tanh(W_c [context; h_t])``."""
        return self.emb if self.tie_embeddings else self.hidden


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser, clipping and loss.

    Attributes:
        name: ``"adam"`` (default) or ``"adadelta"`` (the paper's; rho 0.95, eps 1e-6).
        lr: learning rate (``None``: 1e-3 for Adam, 1.0 for AdaDelta).
        clip: maximum global gradient norm (paper: 2.0); 0 disables clipping.
        label_smoothing: in [0, 1).
        weight_decay: L2 penalty of the optimiser.
        schedule: how the lr changes (:mod:`g2lstm.mt.schedule`): ``"plateau"`` (multiply
            by ``lr_decay`` after an epoch whose validation loss did not improve), ``"step"``
            (constant for ``decay_start`` epochs, then multiplied by ``lr_decay`` every epoch)
            or ``"inverse_sqrt"`` (linear warm-up over ``warmup`` updates, then
            ``lr * sqrt(warmup / update)``).
        lr_decay: the factor of ``plateau`` and ``step`` (1.0 = constant lr).
        decay_start: ``step``: epochs trained at the full lr before the decay starts.
        warmup: updates of linear warm-up (required by ``inverse_sqrt``; 0 = none).
        min_lr: never decay below this.
    """

    name: str = "adam"
    lr: float | None = None
    clip: float = 2.0
    label_smoothing: float = 0.1
    weight_decay: float = 0.0
    schedule: str = "plateau"
    lr_decay: float = 0.5
    decay_start: int = 0
    warmup: int = 0
    min_lr: float = 1e-5

    def __post_init__(self) -> None:
        check_choice("optim.name", self.name, OPTIMIZERS)
        if self.lr is not None:
            check_float("optim.lr", self.lr, 0.0, 1e3, lo_open=True)
        check_float("optim.clip", self.clip, 0.0, 1e9)
        check_float("optim.label_smoothing", self.label_smoothing, 0.0, 0.99)
        check_float("optim.weight_decay", self.weight_decay, 0.0, 1.0)
        check_choice("optim.schedule", self.schedule, SCHEDULES)
        check_float("optim.lr_decay", self.lr_decay, 0.0, 1.0, lo_open=True)
        check_int("optim.decay_start", self.decay_start, 0)
        check_int("optim.warmup", self.warmup, 0)
        check_float("optim.min_lr", self.min_lr, 0.0, 1e3)
        if self.schedule == "inverse_sqrt" and self.warmup < 1:
            raise ConfigError(
                "optim.schedule='inverse_sqrt' needs optim.warmup >= 1 (the updates of linear "
                "warm-up; the lr peaks at optim.lr there), got optim.warmup=0"
            )

    @property
    def effective_lr(self) -> float:
        """``lr``, or the optimiser's default."""
        if self.lr is not None:
            return float(self.lr)
        return 1e-3 if self.name == "adam" else 1.0


@dataclass(frozen=True)
class TrainConfig:
    """Data, budget, batching and bookkeeping of training.

    Attributes:
        data: folder written by ``g2lstm mt prepare`` (:func:`g2lstm.mt.prepare.load_prepared`).
        max_tokens: padded-token budget per batch (:class:`~g2lstm.mt.batching.TokenBatchSampler`).
        epochs: stop after this many epochs.
        max_updates: stop after this many updates (0 = no limit).
        max_minutes: stop (with a checkpoint) after this much training time (0 = no limit);
            time spent in earlier runs of a resumed run counts.
        seed: seed of batching, dropout and gate noise (all derived from ``(seed, step)``).
        eval_every: also validate and checkpoint every this many updates (0 = each epoch).
        log_every: write a training-metrics row every this many updates.
        threads: ``torch.set_num_threads`` (0 = leave torch's default).
        keep_last: checkpoints kept besides the best one.
        valid_bleu: decode the validation set with the best model at the end and report BLEU.
        on_nonfinite: ``"raise"`` or ``"skip"`` an update with a NaN/inf loss or gradient.
        bucket_width: length granularity of batching (larger = more varied batches).
        limit_sentences: use only the first that many sentence pairs of the train and valid
            splits (validation loss and BLEU too), so that a preset such as ``tiny`` takes
            seconds on any dataset (``None``: all).
    """

    data: str = ""
    max_tokens: int = 3000
    epochs: int = 20
    max_updates: int = 0
    max_minutes: float = 0.0
    seed: int = 1
    eval_every: int = 0
    log_every: int = 50
    threads: int = 1
    keep_last: int = 2
    valid_bleu: bool = True
    on_nonfinite: str = "raise"
    bucket_width: int = 1
    limit_sentences: int | None = None

    def __post_init__(self) -> None:
        check_int("train.max_tokens", self.max_tokens, 1)
        check_int("train.epochs", self.epochs, 1)
        check_int("train.max_updates", self.max_updates, 0)
        check_float("train.max_minutes", self.max_minutes, 0.0, 1e7)
        check_int("train.seed", self.seed, 0, 2**32 - 1)
        check_int("train.eval_every", self.eval_every, 0)
        check_int("train.log_every", self.log_every, 1)
        check_int("train.threads", self.threads, 0)
        check_int("train.keep_last", self.keep_last, 1)
        check_int("train.bucket_width", self.bucket_width, 1)
        if self.limit_sentences is not None:
            check_int("train.limit_sentences", self.limit_sentences, 1)
        check_choice("train.on_nonfinite", self.on_nonfinite, ("raise", "skip"))


@dataclass(frozen=True)
class DecodeConfig:
    """Beam search / greedy decoding (:mod:`g2lstm.mt.beam`).

    Attributes:
        beam: beam size (1 = greedy). Paper: 5.
        alpha: length normalisation exponent; hypotheses are ranked by
            ``log p / len ** alpha`` with ``len`` counting ``</s>`` (paper code: 1.0).
        max_len_a, max_len_b: at most ``a * source_length + b`` target tokens (``</s>`` not
            counted; source length counts the source ``</s>``).
        batch_size: sentences decoded together.
    """

    beam: int = 5
    alpha: float = 1.0
    max_len_a: float = 1.5
    max_len_b: int = 10
    batch_size: int = 64

    def __post_init__(self) -> None:
        check_int("decode.beam", self.beam, 1)
        check_float("decode.alpha", self.alpha, 0.0, 10.0)
        check_float("decode.max_len_a", self.max_len_a, 0.0, 100.0)
        check_int("decode.max_len_b", self.max_len_b, 0)
        check_int("decode.batch_size", self.batch_size, 1)


@dataclass(frozen=True)
class MTConfig(ConfigTree):
    """The whole configuration of an MT run: ``model``, ``optim``, ``train``, ``decode``."""

    PRESETS = PRESETS
    LEGACY_KEYS = LEGACY_GATE_KEYS

    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


def load_config(
    preset: str | None = None,
    path: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] = (),
) -> MTConfig:
    """Preset, then YAML file, then ``section.key=value`` overrides (each optional;
    :func:`g2lstm.config.resolve`)."""
    return resolve(MTConfig, preset, path, parse_assignments(MTConfig, overrides))
