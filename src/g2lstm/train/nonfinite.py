"""What to do when the loss or a gradient is NaN/inf.

Call :meth:`NonFiniteGuard.check` after ``backward()`` (and after clipping, passing the
returned norm) and before ``optimizer.step()``::

    guard = NonFiniteGuard(NonFinitePolicy("skip", max_consecutive_skips=5))
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if guard.check(loss, model, step, grad_norm=norm):
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)

``"raise"`` (the default) raises :class:`~g2lstm.errors.TrainingError` naming the step, the loss
and the first parameter whose gradient is non-finite. ``"skip"`` clears the gradients and
returns False, so weights and optimizer state stay unchanged; more than
``max_consecutive_skips`` skips in a row raise. Under DDP the gradients are already averaged
over ranks, so every rank takes the same decision as long as ``loss`` is the reduced loss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from g2lstm.errors import ConfigError, TrainingError

__all__ = ["NonFiniteGuard", "NonFinitePolicy", "first_nonfinite_grad"]

NamedParams = torch.nn.Module | Iterable[tuple[str, torch.nn.Parameter]]


@dataclass(frozen=True)
class NonFinitePolicy:
    """Policy for non-finite losses/gradients.

    Attributes:
        action: ``"raise"`` (stop with an error) or ``"skip"`` (drop the update).
        max_consecutive_skips: with ``"skip"``, how many updates in a row may be skipped;
            the next consecutive non-finite step raises. Must be >= 1.
    """

    action: Literal["raise", "skip"] = "raise"
    max_consecutive_skips: int = 10

    def __post_init__(self) -> None:
        if self.action not in ("raise", "skip"):
            raise ConfigError(f"on_nonfinite={self.action!r} is not valid; use 'raise' or 'skip'")
        if (
            isinstance(self.max_consecutive_skips, bool)
            or not isinstance(self.max_consecutive_skips, int)
            or self.max_consecutive_skips < 1
        ):
            raise ConfigError(
                f"max_consecutive_skips={self.max_consecutive_skips!r} must be an integer >= 1"
            )


def _named(params: NamedParams) -> Iterable[tuple[str, torch.nn.Parameter]]:
    return params.named_parameters() if isinstance(params, torch.nn.Module) else params


def first_nonfinite_grad(params: NamedParams) -> tuple[str, int, int] | None:
    """``(name, n_bad, numel)`` of the first parameter with a NaN/inf gradient, or None."""
    named = [(n, p.grad) for n, p in _named(params) if p.grad is not None]
    if not named:
        return None
    ok = torch.stack([torch.isfinite(g).all() for _, g in named]).cpu()  # one device sync
    for (name, grad), finite in zip(named, ok.tolist()):
        if not finite:
            return name, int((~torch.isfinite(grad)).sum()), grad.numel()
    return None


def _value(x: Any) -> float:
    return float(x.detach().float().item()) if isinstance(x, torch.Tensor) else float(x)


class NonFiniteGuard:
    """Stateful checker applying a :class:`NonFinitePolicy` step after step.

    Attributes:
        consecutive_skips: skipped updates in a row so far.
        total_skips: skipped updates since the start (or the restored state).
    """

    def __init__(self, policy: NonFinitePolicy | None = None) -> None:
        self.policy = policy or NonFinitePolicy()
        self.consecutive_skips = 0
        self.total_skips = 0

    def check(
        self,
        loss: torch.Tensor | float,
        model: NamedParams,
        step: int,
        grad_norm: torch.Tensor | float | None = None,
    ) -> bool:
        """Return True if the update may proceed, False if it must be skipped.

        Args:
            loss: the (reduced) loss of this step.
            model: the module, or an iterable of ``(name, parameter)``.
            step: the global step, for messages.
            grad_norm: the total norm returned by ``clip_grad_norm_``, if computed; when it
                and the loss are finite the per-parameter scan is skipped.

        Raises:
            TrainingError: the policy is ``"raise"``, or ``"skip"`` would exceed
                ``max_consecutive_skips``.
        """
        loss_value = _value(loss)
        if math.isfinite(loss_value) and grad_norm is not None and math.isfinite(_value(grad_norm)):
            self.consecutive_skips = 0
            return True
        params = list(_named(model))
        bad = first_nonfinite_grad(params)
        if math.isfinite(loss_value) and bad is None:
            self.consecutive_skips = 0
            return True
        where = (
            f"first parameter with a non-finite gradient: {bad[0]} ({bad[1]} of {bad[2]} "
            "entries NaN/inf)"
            if bad
            else "all gradients are finite"
        )
        detail = f"step {step}: loss = {loss_value}; {where}"
        if self.policy.action == "raise":
            raise TrainingError(
                f"non-finite loss or gradient at {detail}. Lower the learning rate, enable or "
                "tighten gradient clipping, or use --on-nonfinite skip."
            )
        if self.consecutive_skips >= self.policy.max_consecutive_skips:
            raise TrainingError(
                f"{self.consecutive_skips} consecutive updates were already skipped because of "
                f"non-finite values and it happened again at {detail}; training is diverging. "
                "Lower the learning rate or resume from an earlier checkpoint."
            )
        self.consecutive_skips += 1
        self.total_skips += 1
        for _, p in params:
            p.grad = None
        return False

    def state_dict(self) -> dict[str, int]:
        """The counters, for the trainer state of a checkpoint."""
        return {"consecutive_skips": self.consecutive_skips, "total_skips": self.total_skips}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore counters saved by :meth:`state_dict`."""
        self.consecutive_skips = int(state["consecutive_skips"])
        self.total_skips = int(state["total_skips"])
