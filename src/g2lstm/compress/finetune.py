"""A short compression-aware fine-tune of a compressed model that keeps its structure.

The compressed blocks are trained with a dense float *shadow* and a straight-through estimator
(the quantisation-aware training of BinaryConnect / QAT): every forward and backward pass sees
the projected blocks ``P(shadow)`` (:func:`~g2lstm.compress.structure_projector`: rounding to
the same grid and clip, quantisation to the same number of levels, truncated SVD to the same
rank), and the gradient with respect to ``P(shadow)`` is applied to ``shadow`` itself. Small
updates therefore accumulate in the shadow until a weight crosses to another grid point or
level, instead of being rounded away after every step.

One step of :func:`finetune`, for a model that holds ``P(shadow)``:

1. forward and backward at the projected weights, gradient clipping;
2. the shadow is written into the rows of the ``round``/``quantize`` blocks (in place, so
   parameter identity, the flat weights of ``nn.LSTM``/``G2LSTM`` and the optimizer state are
   kept) and the optimizer steps on it;
3. the updated shadow is read back (``round`` with a clip: clamped to ``[-clip, clip]``, where
   the gradient has no further effect) and every block is projected again in place.

``low_rank`` blocks keep no separate shadow: they are projected gradient descent (the shadow is
re-projected onto rank ``r`` after each step). A low-rank block moves continuously under small
steps, so nothing is lost, and a dense shadow would only accumulate the components that the
truncation discards and the loss never sees.

The model passed to :func:`finetune` is edited in place; between steps (in ``on_step``), after
it returns and after an error it holds the projected weights, no extra modules or
parametrisations, so the returned report's payloads match it and
``save_compressed(path, model, report)`` is exact. The shadow starts from the model's values:
the output of ``compress`` (already on the structure), or a dense copy of the original model to
start the training from its uncompressed weights.

The loop (:func:`finetune`) is generic; what depends on the task is a :class:`FinetuneTask`:
its training batches and loss, optimizer, default learning rate and gradient clipping.
:func:`finetune_task` builds it from the task's :meth:`~g2lstm.tasks.Task.finetune_recipe`::

    target = load_target("runs/lm-g2")                     # or an MT run
    small, report = compress(target.model, "round", step=0.2, clip=0.4)
    report = finetune_task(target).run(small, report, steps=200)
    save_compressed(path, small, report, config=target.file_config)

Any other model is fine-tuned with :func:`finetune` and a ``step_loss(model, step) -> scalar``
of its own.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from g2lstm.errors import ConfigError, TrainingError
from g2lstm.tasks import FinetuneRecipe, LoadedRun, OptimizerFactory, StepLoss

from .methods import structure_projector
from .report import CompressionReport

__all__ = [
    "FinetuneTask",
    "OptimizerFactory",
    "ShadowWeights",
    "StepCallback",
    "StepLoss",
    "finetune",
    "finetune_task",
    "sgd",
]

#: ``on_step(step, loss)``: called after each step with the loss of its batch (before the step).
StepCallback = Callable[[int, float], None]


def sgd(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Plain SGD over the trainable parameters (the default optimizer of :func:`finetune`)."""
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)


def _check_number(name: str, value: Any, *, positive: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"fine-tune {name} must be a finite number {bound}, got {value!r}")


def _check_steps(steps: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"fine-tune steps must be an integer >= 1, got {steps!r}")


class ShadowWeights:
    """Dense float shadows of the ``round``/``quantize`` blocks of a model (straight-through).

    Holds, per block, a ``(m, n)`` copy of the block's rows of its 2-D parameter (same dtype
    and device). :meth:`swap_in` writes the shadows into the parameters (before the optimizer
    step, so the step updates them); :meth:`read_back` copies the updated rows into the
    shadows, clamping ``round`` blocks to their clip. All writes are in place under
    ``no_grad``: the parameters stay the same objects. ``low_rank`` blocks have no shadow.
    """

    #: Methods whose blocks are trained through a shadow (the others are re-projected).
    METHODS = ("round", "quantize")

    def __init__(self, model: nn.Module, report: CompressionReport) -> None:
        state = model.state_dict()  # shares storage with the parameters
        self._rows: list[tuple[Tensor, slice, float | None]] = []
        self.shadows: list[Tensor] = []
        for b in report.blocks:
            if b.method not in self.METHODS:
                continue
            tensor = state.get(b.block.param)
            if tensor is None or tensor.dim() != 2 or tensor.shape[0] < b.block.stop:
                raise ConfigError(
                    f"the model has no parameter {b.block.param!r} that fits block "
                    f"{b.block.name!r} of shape {b.block.shape}"
                )
            clip = b.params.get("clip") if b.method == "round" else None
            self._rows.append((tensor, b.block.rows, None if clip is None else float(clip)))
            self.shadows.append(tensor[b.block.rows].detach().clone())

    def __len__(self) -> int:
        return len(self.shadows)

    @torch.no_grad()
    def swap_in(self) -> None:
        """Write every shadow into its block of the model."""
        for (tensor, rows, _), shadow in zip(self._rows, self.shadows, strict=True):
            tensor[rows] = shadow

    @torch.no_grad()
    def read_back(self) -> None:
        """Copy the blocks of the model into the shadows (``round``: clamped to the clip)."""
        for (tensor, rows, clip), shadow in zip(self._rows, self.shadows, strict=True):
            if clip is not None:
                tensor[rows] = tensor[rows].clamp(-clip, clip)
            shadow.copy_(tensor[rows])


def finetune(
    model: nn.Module,
    report: CompressionReport,
    step_loss: StepLoss,
    steps: int,
    lr: float,
    *,
    clip: float = 0.25,
    seed: int = 0,
    optimizer: OptimizerFactory = sgd,
    on_step: StepCallback | None = None,
) -> CompressionReport:
    """Compression-aware fine-tune of ``model`` in place (see the module docstring).

    Rounded and quantised blocks are trained through dense shadows with a straight-through
    estimator, low-rank blocks by re-projection after every step; the model is projected onto
    the structure of ``report`` before the first step and holds projected weights whenever
    ``step_loss`` or ``on_step`` sees it and when this returns (also after an error).

    Args:
        model: the compressed model (output of ``compress``/``low_rank``/...), edited in place;
            a dense model also works (the shadows then start from its dense weights).
        report: the report of that compression (its blocks and parameters are kept).
        step_loss: gives the loss of training step ``step`` (0-based), a scalar tensor.
        steps: number of optimizer steps (>= 1).
        lr: learning rate (> 0).
        clip: gradient-norm clipping (0 disables it).
        seed: seeds dropout and gate noise (the global RNG state is restored afterwards).
        optimizer: builds the optimizer from ``(model, lr)`` (default: plain SGD); it steps the
            shadows of the rounded/quantised blocks, so its state (momentum, Adam moments)
            belongs to them.
        on_step: called as ``on_step(step, loss)`` after each step (progress, loss curves).

    Returns:
        The report of the last projection: payloads match the fine-tuned model, so
        ``save_compressed(path, model, returned_report)`` is bit-exact. Its ``norm`` and
        ``rel_error`` are those of projecting the final shadows (low rank: of the last step).

    Raises:
        ConfigError: bad ``steps``/``lr``/``clip``, a report without blocks, or a model without
            the report's parameters.
        TrainingError: a non-finite loss (the message names the step).
    """
    _check_steps(steps)
    _check_number("learning rate", lr, positive=True)
    _check_number("gradient clip", clip, positive=False)
    projector = structure_projector(report)
    shadows = ShadowWeights(model, report)
    projector(model)  # the invariant of the loop: the model holds the projected weights
    params = [p for p in model.parameters() if p.requires_grad]
    opt = optimizer(model, float(lr))
    was_training = model.training
    swapped = False  # the model holds the shadows, not their projection
    with torch.random.fork_rng(devices=_rng_devices(model)):
        torch.manual_seed(seed)
        model.train()
        try:
            for step in range(steps):
                opt.zero_grad(set_to_none=True)
                loss = _checked(step_loss(model, step), step)
                loss.backward()
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, clip)
                shadows.swap_in()  # straight-through: the gradient at P(shadow) steps shadow
                swapped = True
                opt.step()
                shadows.read_back()
                swapped = False
                projector(model)
                if on_step is not None:
                    on_step(step, float(loss.detach()))
        finally:
            opt.zero_grad(set_to_none=True)
            model.train(was_training)
            if swapped:  # the optimizer step failed: leave no shadow in the model
                projector(model)
    return projector.report


def _checked(loss: Tensor, step: int) -> Tensor:
    """``loss`` if it is a finite scalar; ConfigError / TrainingError naming ``step`` if not."""
    if loss.dim() != 0:
        raise ConfigError(
            f"fine-tune step {step}: step_loss must return a scalar, got shape {tuple(loss.shape)}"
        )
    if not torch.isfinite(loss):
        value = float(loss.detach())
        raise TrainingError(
            f"fine-tune step {step}: loss is {value}; lower the learning rate (--finetune-lr)"
        )
    return loss


def _rng_devices(model: nn.Module) -> list[Any]:
    """The CUDA devices of ``model`` (their RNG is forked too), none on CPU."""
    return sorted({p.device for p in model.parameters() if p.device.type == "cuda"}, key=str)


@dataclass(frozen=True)
class FinetuneTask(FinetuneRecipe):
    """A task's :class:`~g2lstm.tasks.FinetuneRecipe` (step loss, lr, clip, seed, optimizer,
    batches per pass, description) that runs :func:`finetune`.

    Attributes:
        kind: the task's name (``"lm"``, ``"mt"``).
    """

    kind: str = ""

    def run(
        self,
        model: nn.Module,
        report: CompressionReport,
        steps: int,
        lr: float | None = None,
        *,
        on_step: StepCallback | None = None,
    ) -> CompressionReport:
        """:func:`finetune` ``model`` for ``steps`` steps at ``lr`` (default: :attr:`lr`)."""
        return finetune(
            model,
            report,
            self.step_loss,
            steps,
            self.lr if lr is None else lr,
            clip=self.clip,
            seed=self.seed,
            optimizer=self.optimizer,
            on_step=on_step,
        )

    @torch.no_grad()
    def mean_loss(self, model: nn.Module, steps: int) -> float:
        """Mean loss of the batches of steps ``0 .. steps-1`` in eval mode (no dropout/noise).

        A deterministic measure of how well ``model`` fits the fine-tune batches.
        """
        _check_steps(steps)
        was_training = model.training
        model.eval()
        try:
            return sum(float(self.step_loss(model, k)) for k in range(steps)) / steps
        finally:
            model.train(was_training)


def finetune_task(
    target: LoadedRun,
    *,
    data: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> FinetuneTask:
    """The :class:`FinetuneTask` of a model of any task (its :meth:`Task.finetune_recipe`).

    Args:
        target: a :class:`~g2lstm.tasks.LoadedRun` (from ``load_target``); its run config
            gives the data, batching, loss, optimizer, learning rate, clip and seed.
        data: LM: dataset name or folder; MT: prepared data folder (default: the run's).
        data_dir: LM: root of named datasets (default: the run's); unused for MT.

    Raises:
        ConfigError: data whose vocabulary is not the model's.
        DataError: the training data cannot be read.
    """
    recipe = target.task.finetune_recipe(target, data=data, data_dir=data_dir)
    values = {f.name: getattr(recipe, f.name) for f in fields(recipe)}
    return FinetuneTask(**values, kind=target.kind)
