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

The interface's data types live beside it: :class:`~g2lstm.tasks.loaded_run.LoadedRun`,
:mod:`~g2lstm.tasks.evaluation` (``Evaluator``, ``EvalDataOptions``, ``EvalData``),
:mod:`~g2lstm.tasks.finetune` (``FinetuneRecipe``) and :mod:`~g2lstm.tasks.checks` (checks the
implementations share).

The implementations are :class:`g2lstm.tasks.lm.LMTask` and :class:`g2lstm.tasks.mt.MTTask`;
:mod:`g2lstm.tasks.registry` finds the task of a path (``kind_of``, ``load``).
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from torch import Tensor, nn

from g2lstm.config import ConfigTree, resolve
from g2lstm.errors import ConfigError
from g2lstm.limits import build_checked
from g2lstm.tasks.checks import malformed_metadata
from g2lstm.tasks.evaluation import EvalData, EvalDataOptions, Evaluator
from g2lstm.tasks.finetune import FinetuneRecipe
from g2lstm.tasks.loaded_run import LoadedRun
from g2lstm.train import check_state_dict_compat

__all__ = ["Task"]


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
