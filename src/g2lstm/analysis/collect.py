"""Run a model over batches while streaming its gate traces to callbacks.

The analysis is written against three generic callables so it works for any recorded model
(language model, translation model, a bare layer):

- ``forward_fn(model, batch) -> loss | None``: runs the model on one batch and returns the mean
  loss as a scalar tensor or float, or ``None`` when there is no loss.
- ``tokens_fn(batch) -> (T, N)`` int tensor: the token ids aligned with the time steps of the
  followed layer (for an LM, the input ids), needed for the per-token statistics.
- ``evaluate_fn(model) -> float``: the task metric (perplexity, BLEU) for hard-gate inference.

Every function here leaves the model as it found it: it runs in eval mode under
``torch.no_grad`` and restores the previous train/eval mode afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from g2lstm.errors import ConfigError
from g2lstm.nn import G2LSTM, GateRecorder, GateTrace, g2_modules

__all__ = [
    "BatchSource",
    "ForwardFn",
    "PassResult",
    "TokensFn",
    "as_float",
    "ensure_recordable",
    "eval_mode",
    "record_pass",
    "record_traces",
]

ForwardFn = Callable[[nn.Module, Any], "Tensor | float | None"]
TokensFn = Callable[[Any], Tensor]
GateCallback = Callable[[str, GateTrace], None]


class BatchSource:
    """Re-iterable view of ``batches`` capped at ``max_batches``.

    ``batches`` may be a re-iterable collection (list, DataLoader), a zero-argument callable
    returning a fresh iterable, or a one-shot iterator (then the first ``max_batches`` items
    are kept in memory so every model sees the same data).
    """

    def __init__(
        self, batches: Iterable[Any] | Callable[[], Iterable[Any]], max_batches: int | None = None
    ) -> None:
        if max_batches is not None and (isinstance(max_batches, bool) or max_batches < 1):
            raise ConfigError(f"max_batches={max_batches!r} must be a positive int or None")
        self.max_batches = max_batches
        self._factory: Callable[[], Iterable[Any]] | None = None
        self._cached: list[Any] | None = None
        if callable(batches) and not isinstance(batches, Iterable):
            self._factory = batches
        elif isinstance(batches, Iterator):  # one-shot: keep what we use
            self._cached = list(itertools.islice(batches, max_batches))  # type: ignore[arg-type]
        else:
            self._factory = lambda: batches  # type: ignore[return-value]

    def __iter__(self) -> Iterator[Any]:
        if self._cached is not None:
            return iter(self._cached)
        assert self._factory is not None
        return itertools.islice(iter(self._factory()), self.max_batches)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode under ``no_grad``; restore its mode on exit."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was)


def as_float(loss: Tensor | float | None) -> float | None:
    """A ``forward_fn`` result as a Python float (``None`` stays ``None``)."""
    if loss is None:
        return None
    if isinstance(loss, Tensor):
        if loss.numel() != 1:
            raise ConfigError(
                f"forward_fn must return a scalar loss or None, got a tensor of shape "
                f"{tuple(loss.shape)}"
            )
        return float(loss.detach())
    return float(loss)


def ensure_recordable(model: nn.Module) -> nn.Module:
    """``model`` if it holds G2 modules, else a copy with each ``nn.LSTM`` made a G2LSTM.

    The converted layers use ``noise_p=0, tau=1``, which computes exactly ``nn.LSTM``, so a
    plain-LSTM baseline can be recorded and compared. ``model`` itself is never changed.

    Raises:
        ConfigError: the model has neither G2 modules nor ``nn.LSTM`` layers.
    """
    if g2_modules(model):
        return model
    new = copy.deepcopy(model)
    found = False
    for parent in list(new.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.LSTM) and not isinstance(child, G2LSTM):
                setattr(parent, name, G2LSTM.from_lstm(child, noise_p=0.0, tau=1.0))
                found = True
    if not found:
        raise ConfigError(
            f"{type(model).__name__} has no G2LSTM/G2LSTMCell or torch.nn.LSTM module whose "
            "gates could be recorded"
        )
    return new


@dataclass
class PassResult:
    """What one pass over the batches saw: batch count and mean loss (None if no loss)."""

    batches: int
    loss: float | None


def record_pass(
    model: nn.Module,
    batches: Iterable[Any],
    forward_fn: ForwardFn,
    callbacks: Sequence[GateCallback],
    *,
    before_batch: Callable[[Any], None] | None = None,
) -> PassResult:
    """Run ``forward_fn`` on every batch with the gate traces streamed to ``callbacks``.

    Args:
        model: a model with G2 modules (see :func:`ensure_recordable`).
        batches: the batches (already capped).
        forward_fn: ``forward_fn(model, batch) -> loss | None``.
        callbacks: ``callback(module_name, trace)`` each; no trace is kept.
        before_batch: called with each batch before its forward pass (e.g. to bind token ids).

    Returns:
        The number of batches and the mean of the returned losses (unweighted over batches).
    """

    def fan_out(name: str, trace: GateTrace) -> None:
        for cb in callbacks:
            cb(name, trace)

    n, losses = 0, []
    with eval_mode(model), GateRecorder(model, keep=False, callback=fan_out):
        for batch in batches:
            if before_batch is not None:
                before_batch(batch)
            loss = as_float(forward_fn(model, batch))
            if loss is not None:
                losses.append(loss)
            n += 1
    if n == 0:
        raise ConfigError("the data gave no batches; check --data/--split or max_batches")
    mean = math.fsum(losses) / len(losses) if losses else None
    return PassResult(n, mean)


def record_traces(
    model: nn.Module, batch: Any, forward_fn: ForwardFn
) -> tuple[list[tuple[str, GateTrace]], float | None]:
    """Every trace of one forward pass on ``batch`` (kept in memory), and its loss."""
    with eval_mode(model), GateRecorder(model, keep=True) as rec:
        loss = as_float(forward_fn(model, batch))
    return list(rec.traces), loss
