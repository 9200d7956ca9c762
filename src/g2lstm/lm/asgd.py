"""SGD with iterate averaging and the non-monotonic trigger (NT-ASGD, Merity et al. 2017).

:class:`AveragedSGD` is plain SGD (weight decay, no momentum, as AWD-LSTM) that, once
:meth:`~AveragedSGD.start_averaging` has been called, also keeps ``ax``, the running mean of
the parameters after every update since then (``torch.optim.ASGD`` with ``t0=0, lambd=0``,
which AWD-LSTM switches to). Evaluation uses the averages via
:meth:`~AveragedSGD.averaged_parameters`. Its whole state (``ax``, the number of averaged
iterates, the switch) is in ``state_dict()``, so a resumed run continues exactly.

:class:`NTASGDTrigger` decides when to switch: after an epoch whose validation loss is worse
than the best one among all but the last ``nonmono`` epochs (AWD ``main.py``:
``len(best_val_loss) > nonmono and val_loss > min(best_val_loss[:-nonmono])``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from g2lstm.errors import ConfigError

__all__ = ["AveragedSGD", "NTASGDTrigger"]


class AveragedSGD(torch.optim.Optimizer):
    """SGD (``p -= lr * (grad + wdecay * p)``) with optional uniform iterate averaging.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (> 0); may be changed per step through ``param_groups``.
        weight_decay: L2 coefficient added to the gradient.
    """

    def __init__(
        self, params: Iterable[Tensor] | Iterable[dict], lr: float, weight_decay: float = 0.0
    ) -> None:
        if lr <= 0:
            raise ConfigError(f"AveragedSGD: lr={lr!r} must be > 0")
        if weight_decay < 0:
            raise ConfigError(f"AveragedSGD: weight_decay={weight_decay!r} must be >= 0")
        super().__init__(
            params, {"lr": lr, "weight_decay": weight_decay, "averaging": False, "n_averaged": 0}
        )

    @property
    def averaging(self) -> bool:
        """Whether iterate averaging is on (the run has switched to ASGD)."""
        return bool(self.param_groups[0]["averaging"])

    def start_averaging(self) -> None:
        """Switch to ASGD: from the next step on, keep the mean of the iterates."""
        for group in self.param_groups:
            group["averaging"] = True
            group["n_averaged"] = 0

    @torch.no_grad()
    def step(self, closure: Any = None) -> Tensor | None:  # type: ignore[override]
        """One update (and, when averaging, ``ax += (p - ax) / n``)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            torch._foreach_add_(params, grads, alpha=-group["lr"])
            if group["averaging"]:
                group["n_averaged"] += 1
                n = group["n_averaged"]
                for p in params:
                    state = self.state[p]
                    if n == 1 or "ax" not in state:
                        state["ax"] = p.detach().clone()
                    else:
                        state["ax"].add_(p.sub(state["ax"]), alpha=1.0 / n)
        return loss

    @contextlib.contextmanager
    def averaged_parameters(self) -> Iterator[bool]:
        """Temporarily put the averages into the parameters (yields whether it did).

        Outside averaging (or before the first averaged step) nothing changes.
        """
        swapped: list[tuple[Tensor, Tensor]] = []
        if self.averaging:
            with torch.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        ax = self.state[p].get("ax")
                        if ax is not None:
                            swapped.append((p, p.detach().clone()))
                            p.copy_(ax)
        try:
            yield bool(swapped)
        finally:
            with torch.no_grad():
                for p, saved in swapped:
                    p.copy_(saved)


class NTASGDTrigger:
    """Non-monotonic trigger: remembers validation losses and says when to switch.

    Args:
        nonmono: the patience ``n`` (AWD default 5).
    """

    def __init__(self, nonmono: int = 5) -> None:
        if isinstance(nonmono, bool) or not isinstance(nonmono, int) or nonmono < 1:
            raise ConfigError(f"nonmono={nonmono!r} must be an integer >= 1")
        self.nonmono = nonmono
        self.history: list[float] = []

    def should_switch(self, val_loss: float) -> bool:
        """Decide from this epoch's ``val_loss`` (checked against the history before it),
        then append it."""
        past = self.history
        switch = len(past) > self.nonmono and val_loss > min(past[: -self.nonmono])
        self.history.append(float(val_loss))
        return switch

    def stalled(self, val_loss: float) -> bool:
        """Finetune stop rule (AWD ``finetune.py``): same test, appending afterwards."""
        return self.should_switch(val_loss)

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {"nonmono": self.nonmono, "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.nonmono = int(state["nonmono"])
        self.history = [float(v) for v in state["history"]]
