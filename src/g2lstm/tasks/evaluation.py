"""Evaluation behind the task interface: scoring models and the data of the gate analysis.

- :class:`Evaluator`: scores models of one task on one split (a metric and its direction), as
  :meth:`Task.evaluator <g2lstm.tasks.base.Task.evaluator>` returns it;
- :class:`EvalDataOptions`: how to cut a task's evaluation data (``g2lstm analyze`` flags);
- :class:`EvalData`: that data and the callables of :func:`g2lstm.analysis.analyze_models`, as
  :meth:`Task.eval_data <g2lstm.tasks.base.Task.eval_data>` returns it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor, nn

from g2lstm.errors import ConfigError
from g2lstm.tasks.loaded_run import LoadedRun

__all__ = ["EvalData", "EvalDataOptions", "Evaluator"]


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
