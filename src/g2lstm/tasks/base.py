"""The task interface: what every experiment family (language model, translation) provides.

Compression (:mod:`g2lstm.compress`), gate analysis (:mod:`g2lstm.analysis`) and the paper
reproduction (:mod:`g2lstm.reproduce`) work on any trained model through this interface and
never branch on the task. A :class:`Task` knows how to

- read its run config (:meth:`Task.config_from_dict`, :attr:`Task.config_class`: one config
  machinery for every task, :mod:`g2lstm.config`) and build its model from it
  (:meth:`Task.build_model`);
- load a run or checkpoint directory (:meth:`Task.load`) or rebuild a model from the metadata a
  compressed file stores (:meth:`Task.rebuild`), both as a :class:`LoadedRun`;
- evaluate a model (:meth:`Task.evaluator`: an :class:`Evaluator` with a metric name and its
  direction);
- iterate its evaluation data for the gate analysis (:meth:`Task.eval_data`);
- fine-tune a model (:meth:`Task.finetune_recipe`: the training batches, loss and optimizer of
  one step).

The implementations are :class:`g2lstm.tasks.lm.LMTask` and :class:`g2lstm.tasks.mt.MTTask`;
:mod:`g2lstm.tasks.registry` finds the task of a path (``kind_of``, ``load``).
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from g2lstm.config import ConfigTree, resolve
from g2lstm.errors import CheckpointError, ConfigError, G2LSTMError
from g2lstm.limits import build_checked
from g2lstm.train import check_state_dict_compat

__all__ = [
    "EvalData",
    "EvalDataOptions",
    "Evaluator",
    "FinetuneRecipe",
    "LoadedRun",
    "OptimizerFactory",
    "StepLoss",
    "Task",
    "malformed_metadata",
    "positive_int",
]

#: ``step_loss(model, step)`` -> scalar training loss of one batch (graph attached).
StepLoss = Callable[[nn.Module, int], Tensor]
#: ``optimizer(model, lr)`` -> the optimizer of a fine-tune (over the trainable parameters).
OptimizerFactory = Callable[[nn.Module, float], torch.optim.Optimizer]


def positive_int(name: str, value: Any) -> int | None:
    """``value`` if it is None or an integer >= 1, else ConfigError naming ``--name``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
    return value


@contextmanager
def malformed_metadata(source: str, what: str) -> Iterator[None]:
    """Turn the ``TypeError``/``ValueError``/``KeyError``/``AttributeError`` of reading a
    malformed ``what`` from ``source`` into one :class:`CheckpointError` naming the file
    (typed errors of the package pass through)."""
    try:
        yield
    except G2LSTMError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{source}: malformed {what} ({type(exc).__name__}: {exc})") from None


@dataclass
class LoadedRun:
    """A trained model of some task, with what is needed to evaluate, compress and rebuild it.

    Attributes:
        path: the checkpoint directory or compressed file it was read from.
        task: the :class:`Task` it belongs to.
        model: the model, in eval mode.
        config: its run config (the task's config class).
        cell: ``"lstm"``, ``"sharpened"`` or ``"g2"``.
        seed: the training seed.
        hidden: ``H``, the hidden size of its LSTM layers.
        file_config: JSON-able metadata that lets :meth:`Task.rebuild` rebuild the model (what
            a compressed file stores): ``{"kind", "config", ..., "source"}``.
        vocab: the task's vocabulary (LM: one; translation: ``(source, target)``).
        extra: the task's handle on the model for scoring (LM: the vocabulary; translation:
            a :class:`~g2lstm.mt.translate.Translator`).
        report: the saved compression report when ``path`` is a compressed file, else None.
    """

    path: Path
    task: Task
    model: nn.Module
    config: Any
    cell: str
    seed: int
    hidden: int
    file_config: dict[str, Any]
    vocab: Any = None
    extra: Any = None
    report: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        """The task's name (``"lm"``, ``"mt"``)."""
        return self.task.name


@dataclass(frozen=True)
class FinetuneRecipe:
    """What one task plugs into the compression-aware fine-tune
    (:func:`g2lstm.compress.finetune.finetune`).

    Attributes:
        step_loss: the training batches and loss (step ``k`` -> loss of batch ``k``).
        lr: default learning rate (a tenth of the run's).
        clip: gradient-norm clipping (the run's).
        seed: seed of dropout and gate noise (the run's).
        optimizer: the optimizer factory (the run's optimizer kind).
        num_batches: batches in one pass over the training data (steps wrap around after it).
        description: one line naming the data and batching (for logs).
    """

    step_loss: StepLoss
    lr: float
    clip: float
    seed: int
    optimizer: OptimizerFactory
    num_batches: int
    description: str = ""

    @classmethod
    def of_run(
        cls, step_loss: Any, run_lr: float, clip: float, seed: int, optimizer: OptimizerFactory
    ) -> FinetuneRecipe:
        """The recipe of a run trained with learning rate ``run_lr``: a tenth of it, the run's
        clipping, seed and optimizer kind; ``step_loss`` names its ``num_batches`` and
        ``description``."""
        return cls(
            step_loss,
            run_lr / 10,
            clip,
            seed,
            optimizer,
            step_loss.num_batches,
            step_loss.description,
        )


class Evaluator(ABC):
    """Scores models of one task on one split.

    Attributes:
        task: the task's name (models of another task are refused by :meth:`check`).
        metric: column name (``"ppl"`` / ``"BLEU"``).
        higher_is_better: False for perplexity, True for BLEU.
    """

    task: ClassVar[str] = ""
    metric: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False

    def check(self, run: LoadedRun) -> LoadedRun:
        """``run`` if it is a model of this evaluator's task, else ConfigError."""
        if run.kind != self.task:
            raise ConfigError(
                f"{run.path} is a {run.kind.upper()} model but this sweep evaluates "
                f"{self.task.upper()} models; sweep each kind separately"
            )
        return run

    @abstractmethod
    def score(self, run: LoadedRun, model: nn.Module) -> float:
        """The metric of ``model`` (``run.model`` or a compressed copy of it)."""

    def scores(self, run: LoadedRun, model: nn.Module) -> dict[str, Any]:
        """Every number of one evaluation, JSON-ready: ``{metric: score}`` plus what else the
        task reports (translation: detokenised BLEU and both signatures)."""
        return {self.metric: self.score(run, model)}

    def degradation(self, original: float, compressed: float) -> float:
        """How much worse ``compressed`` is (positive = worse): ppl up or BLEU down."""
        return original - compressed if self.higher_is_better else compressed - original

    @abstractmethod
    def describe(self) -> str:
        """One line naming the data, split and limits (for reports)."""


@dataclass(frozen=True)
class EvalDataOptions:
    """How to cut a task's evaluation data for the gate analysis (``g2lstm analyze`` flags).

    ``None`` means the task's default. Options a task does not use are ignored by it.

    Attributes:
        data, data_dir: dataset (LM: name or folder; MT: prepared folder) and root of named
            datasets (default: the first run's).
        split: ``"train"``, ``"valid"`` or ``"test"``.
        batch_size: LM: parallel streams (10); MT: sentence pairs per batch (32).
        bptt: LM segment length.
        max_batches: batches for histograms and token classes.
        eval_tokens: LM: score the first N tokens only.
        limit, beam: MT: BLEU on the first N sentences, beam size.
        input_format: MT: format of heatmap sentences (``raw``/``tok``/``bpe``).
        layer: recorded layer for heatmaps and token classes.
        sentences: heatmap sentences (``()``: no heatmap).
        hard_gates: whether hard-gate inference will be scored (named in the description).
        metric: the metric of hard-gate inference (None: the task's; translation also takes
            ``"perplexity"``, teacher-forced on the analysed batches).
        device: where batches and models go.
    """

    data: str | None = None
    data_dir: str | None = None
    split: str = "valid"
    batch_size: int | None = None
    bptt: int = 70
    max_batches: int | None = 20
    eval_tokens: int | None = None
    limit: int | None = None
    beam: int | None = None
    input_format: str = "raw"
    layer: int | None = None
    sentences: Sequence[str] | None = None
    hard_gates: bool = True
    metric: str | None = None
    device: str = "cpu"


@dataclass
class EvalData:
    """A task's evaluation data and the callables of :func:`g2lstm.analysis.analyze_models`.

    Attributes:
        models: label -> model.
        batches: the batches recorded for histograms and token classes.
        forward: ``forward(model, batch)`` -> scalar loss (drives the recorded forward pass).
        evaluate: ``evaluate(model)`` -> the task's metric (hard-gate inference).
        metric, higher_is_better: its name and direction.
        layer: the recorded layer followed by heatmaps and token classes.
        what: one line naming the data (for logs and the report).
        tokens, itos: ``tokens(batch)`` -> ``(T, B)`` ids into ``itos`` (None: no token classes).
        sentences, encode: heatmap sentences and ``encode(sentence) -> (tokens, batch)``.
        summary_layer: the layer of the report's summary (None: the first).
        notes: lines to show the user.
        metric_what: the split and subset ``evaluate`` scores (for the report).
    """

    models: dict[str, nn.Module]
    batches: list[Any]
    forward: Callable[[nn.Module, Any], Tensor]
    evaluate: Callable[[nn.Module], float]
    metric: str
    higher_is_better: bool
    layer: int
    what: str
    tokens: Callable[[Any], Tensor] | None = None
    itos: Sequence[str] | None = None
    sentences: Sequence[str] = ()
    encode: Callable[[str], Any] | None = None
    summary_layer: int | None = None
    notes: list[str] = field(default_factory=list)
    metric_what: str = ""


class Task(ABC):
    """One experiment family (see the module docstring).

    Attributes:
        name: short name (``"lm"``, ``"mt"``), the CLI's command group.
        title: what its models are, for messages (``"language model"``).
        checkpoint_kind: ``meta["kind"]`` of its checkpoints (and of compressed files).
        metric, higher_is_better: the evaluation metric and its direction.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    checkpoint_kind: ClassVar[str]
    metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    #: the task's run config (a :class:`~g2lstm.config.ConfigTree` with its presets table)
    config_class: ClassVar[type[ConfigTree]]

    # ------------------------------------------------------------------ config and model
    def config_from_dict(self, data: Mapping[str, Any], source: str = "config") -> Any:
        """The validated run config of a nested dict (a saved ``config.yaml`` or meta, old
        layouts migrated)."""
        return self.config_class.from_dict(data, source=source)

    @abstractmethod
    def recognizes_config(self, data: Mapping[str, Any]) -> bool:
        """Whether a saved resolved config (nested dict) is one of this task's."""

    def preset_config(self, preset: str, overrides: Mapping[str, Any] | None = None) -> Any:
        """The run config of ``preset`` with dotted ``overrides`` (``{"train.seed": 2}``;
        :func:`g2lstm.config.resolve`)."""
        return resolve(self.config_class, preset, overrides=overrides)

    # ------------------------------------------------------------------ data and training
    def prepare_data(
        self, sources: Mapping[str, tuple[Path, ...]], out_dir: Path, **settings: Any
    ) -> Path:
        """Prepare raw ``split -> files`` for training into ``out_dir``; returns the folder a
        run config names as its data. Tasks that read raw text as is refuse."""
        raise ConfigError(f"the {self.title} reads its data as is; there is nothing to prepare")

    @abstractmethod
    def train(
        self, config: Any, out_dir: Path, *, device: str = "cpu", resume: bool = False
    ) -> dict[str, Any]:
        """Train (or resume) a run; returns its :class:`~g2lstm.train.RunResult` (what
        ``results.json`` holds) as one flat dict (``finished``, ``steps``, ..., the task's
        details)."""

    @abstractmethod
    def build_model(self, config: Any, file_config: Mapping[str, Any]) -> nn.Module:
        """A freshly initialised model of ``config`` (vocabulary sizes from ``file_config``)."""

    # ------------------------------------------------------------------ loading
    @abstractmethod
    def load(self, path: str | os.PathLike[str], device: str = "cpu") -> LoadedRun:
        """Load a run directory (its best checkpoint) or a checkpoint directory.

        Raises:
            CheckpointError: not a checkpoint of this task, or weights that do not fit.
        """

    @abstractmethod
    def loaded(
        self,
        path: Path,
        model: nn.Module,
        config: Any,
        file_config: dict[str, Any],
        report: dict[str, Any] | None = None,
    ) -> LoadedRun:
        """The :class:`LoadedRun` of a model rebuilt from ``file_config``."""

    def run_of(
        self,
        path: Path,
        model: nn.Module,
        config: Any,
        file_config: dict[str, Any],
        *,
        hidden: int,
        vocab: Any,
        extra: Any,
        report: dict[str, Any] | None = None,
    ) -> LoadedRun:
        """The :class:`LoadedRun` of a model of this task; its cell and seed are the config's
        (``model.gates.cell``, ``train.seed``: every task's config has both)."""
        cell, seed = config.model.gates.cell, config.train.seed
        return LoadedRun(
            path, self, model, config, cell, seed, hidden, file_config, vocab, extra, report
        )

    def file_config(self, config: Any, source: Path, **metadata: Any) -> dict[str, Any]:
        """What a compressed file stores to rebuild the model (:meth:`rebuild`): the checkpoint
        kind, the run config, the task's ``metadata`` (vocabularies, ...) and the source."""
        return {
            "kind": self.checkpoint_kind,
            "config": config.to_dict(),
            **metadata,
            "source": str(source),
        }

    def rebuild(
        self,
        file_config: dict[str, Any],
        path: Path,
        read_state: Callable[[], Mapping[str, Tensor]],
        *,
        shapes: Mapping[str, Any] | None = None,
        report: dict[str, Any] | None = None,
    ) -> LoadedRun:
        """Rebuild the model that ``file_config`` (what a compressed file stores) describes and
        load the weights ``read_state()`` returns into it.

        The model's sizes are checked against ``shapes`` (name -> shape, read from the file's
        header) and the parameter ceiling (:func:`g2lstm.limits.build_checked`) before anything
        is allocated and before ``read_state`` decodes a weight.

        Raises:
            CheckpointError: a malformed config or vocabulary (naming ``path``), or weights
                that do not fit the config (the message lists the keys).
            LimitError: the config describes more parameters than the ceiling.
        """
        source = str(path)
        with malformed_metadata(source, "model config or vocabulary"):
            config = self.config_from_dict(file_config["config"], source=source)
            model = build_checked(partial(self.build_model, config, file_config), shapes, source)
        state = dict(read_state())
        if shapes is None:
            check_state_dict_compat(model, state, source)
        model.load_state_dict(state)
        model.eval()
        with malformed_metadata(source, "model config or vocabulary"):
            return self.loaded(path, model, config, file_config, report)

    # ------------------------------------------------------------------ evaluation
    #: the class of :meth:`evaluator`
    evaluator_class: ClassVar[type[Evaluator]]

    def evaluator(self, **options: Any) -> Evaluator:
        """An :attr:`evaluator_class` of this task's metric; options its constructor does not
        take (another task's) are ignored."""
        known = inspect.signature(self.evaluator_class).parameters
        return self.evaluator_class(**{k: v for k, v in options.items() if k in known})

    @abstractmethod
    def eval_data(
        self, runs: Sequence[LoadedRun], options: EvalDataOptions, labels: Sequence[str]
    ) -> EvalData:
        """The evaluation data and callables of the gate analysis of ``runs`` (one label each).

        Raises:
            ConfigError / DataError: data that does not fit the models, bad options.
        """

    # ------------------------------------------------------------------ fine-tuning
    @abstractmethod
    def finetune_recipe(
        self,
        run: LoadedRun,
        *,
        data: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> FinetuneRecipe:
        """The training batches, loss and optimizer of a fine-tune of ``run`` (run's data by
        default).

        Raises:
            ConfigError: data whose vocabulary is not the model's.
            DataError: the training data cannot be read.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
