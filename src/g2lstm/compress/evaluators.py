"""Score models on a split: the evaluators of a sweep, one per task.

An evaluator (:class:`g2lstm.tasks.Evaluator`) scores a model on a split with its task's
metric and knows the metric's direction: perplexity for a language model (lower is better,
as ``g2lstm lm eval``), tokenised BLEU for a translation model (higher is better, as
``g2lstm mt eval``). :func:`evaluator_for` builds the one of a task; the models come from
:func:`load_target` (see :mod:`g2lstm.compress.loading`, whose names are also importable from
here).
"""

from __future__ import annotations

from typing import Any

from g2lstm.tasks import Evaluator, get_task

from .loading import CompressedModel, Target, checkpoint_kind, load_compressed_model, load_target

__all__ = [
    "CompressedModel",
    "Evaluator",
    "Target",
    "checkpoint_kind",
    "evaluator_for",
    "load_compressed_model",
    "load_target",
]


def evaluator_for(kind: str, **options: Any) -> Evaluator:
    """The evaluator of task ``kind`` (``"lm"``: perplexity, ``"mt"``: BLEU); options the task
    does not use are ignored."""
    return get_task(kind).evaluator(**options)
