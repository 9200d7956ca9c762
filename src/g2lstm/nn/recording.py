"""Opt-in gate recording: per-step i, f, o values of every layer and direction.

``forward`` keeps ``torch.nn.LSTM``'s return type; gate values reach the caller through hooks
(:meth:`G2LSTM.register_gate_hook`) or the :class:`GateRecorder` context manager, which
registers a hook on every G2 module of a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["GateHook", "GateRecorder", "GateTrace"]


@dataclass(frozen=True)
class GateTrace:
    """Gate values of one layer and direction for one forward call (detached).

    Attributes:
        layer: layer index ``k``.
        direction: 0 forward, 1 reverse.
        input, forget, output: ``(T, N, H)`` gate values in the input's time order (reverse
            directions are flipped back), zero at padded steps.
        mask: ``(T, N)`` bool, True at valid steps (all True without packing).
    """

    layer: int
    direction: int
    input: Tensor
    forget: Tensor
    output: Tensor
    mask: Tensor

    def valid(self, gate: str) -> Tensor:
        """1-D tensor of the valid values of ``gate`` ("input", "forget" or "output")."""
        return getattr(self, gate)[self.mask]


GateHook = Callable[[nn.Module, GateTrace], None]


class GateRecorder:
    """Collect :class:`GateTrace` objects from every G2 module of ``model`` while active.

    Example::

        with GateRecorder(model) as rec:
            model(x)
        for name, trace in rec.traces:
            print(name, trace.layer, trace.forget.mean())

    Args:
        model: any module; every submodule with ``register_gate_hook`` is recorded.
        keep: keep the traces in :attr:`traces` (set False when ``callback`` streams them).
        callback: optional ``callback(module_name, trace)`` called for each trace.
        to_cpu: move traces to CPU as they arrive.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        keep: bool = True,
        callback: Callable[[str, GateTrace], None] | None = None,
        to_cpu: bool = True,
    ) -> None:
        self.model = model
        self.keep = keep
        self.callback = callback
        self.to_cpu = to_cpu
        self.traces: list[tuple[str, GateTrace]] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> GateRecorder:
        for name, module in self.model.named_modules():
            if hasattr(module, "register_gate_hook"):
                self._handles.append(module.register_gate_hook(self._make_hook(name)))
        if not self._handles:
            raise ValueError(
                f"GateRecorder: {type(self.model).__name__} contains no G2LSTM/G2LSTMCell "
                "module; convert nn.LSTM layers with G2LSTM.from_lstm first"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _make_hook(self, name: str) -> GateHook:
        def hook(module: nn.Module, trace: GateTrace) -> None:
            if self.to_cpu:
                trace = GateTrace(
                    trace.layer,
                    trace.direction,
                    trace.input.cpu(),
                    trace.forget.cpu(),
                    trace.output.cpu(),
                    trace.mask.cpu(),
                )
            if self.keep:
                self.traces.append((name, trace))
            if self.callback is not None:
                self.callback(name, trace)

        return hook
