"""What ``G2LSTM`` and ``G2LSTMCell`` share on top of their ``torch.nn`` base classes.

:class:`G2Options` holds the G2 gate options (:class:`~g2lstm.nn.config.GateConfig`,
DropConnect, forget bias), changes them (:meth:`G2Options.set_gate_options`), holds
per-sequence noise across calls (:meth:`G2Options.noise_scope`), registers gate hooks and
writes the G2 part of the module's ``repr``.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from torch.utils.hooks import RemovableHandle

from g2lstm.errors import ConfigError
from g2lstm.nn.config import GateConfig
from g2lstm.nn.noise import NoiseHold
from g2lstm.nn.recording import GateHook

__all__ = ["G2Options", "check_forget_bias", "check_weight_dropout"]


def check_weight_dropout(p: float) -> float:
    """Validate a DropConnect probability (AWD-LSTM ``wdrop``)."""
    p = float(p)
    if not (0.0 <= p < 1.0):
        raise ConfigError(
            f"weight_dropout={p!r} is invalid; expected a probability in [0, 1) "
            "(AWD-LSTM uses 0.5 on the recurrent weights; 0 disables it)"
        )
    return p


def check_forget_bias(value: float | None) -> float | None:
    """Validate the optional initial forget-gate bias."""
    if value is None:
        return None
    if not math.isfinite(float(value)):
        raise ConfigError(f"forget_bias={value!r} must be a finite number or None")
    return float(value)


class G2Options:
    """Mixin: the G2 state of a module and the methods that act on it.

    Attributes set by :meth:`_init_g2`: ``gate_config``, ``weight_dropout``, ``forget_bias``,
    ``generator`` (optional ``torch.Generator`` for the gate noise; default: global RNG).
    """

    gate_config: GateConfig
    weight_dropout: float
    forget_bias: float | None

    def _init_g2(
        self, gate_config: GateConfig, weight_dropout: float, forget_bias: float | None
    ) -> None:
        """Set the G2 state; the values come validated (the constructors check them before
        allocating any parameter, with :func:`check_weight_dropout` / :func:`check_forget_bias`)."""
        self.gate_config = gate_config
        self.weight_dropout = weight_dropout
        self.forget_bias = forget_bias
        self.generator = None
        self._gate_hooks: OrderedDict[int, GateHook] = OrderedDict()
        self._noise_hold: NoiseHold | None = None

    def _restore_g2_state(self) -> None:
        """Defaults for attributes that modules pickled by older versions lack."""
        self.__dict__.setdefault("_gate_hooks", OrderedDict())
        self.__dict__.setdefault("_noise_hold", None)

    def set_gate_options(self, **changes: object) -> Any:
        """Change G2 options in place (validated), e.g. ``set_gate_options(eval_gates="hard")``.

        Returns the module. See :func:`g2lstm.nn.with_gate_options` for a copying version.
        """
        self.gate_config = replace(self.gate_config, **changes)  # type: ignore[arg-type]
        return self

    @contextlib.contextmanager
    def noise_scope(self) -> Iterator[Any]:
        """Hold per-sequence gate noise across several calls (a decoder fed one step at a time).

        Inside ``with module.noise_scope(): ...`` the ``mask_per_sequence`` and
        ``noise_per_sequence`` schedules draw their per-sequence part (paper §3.3's mask
        ``B``, or ``B * L``) at the first call and reuse it in every later call, so a
        sequence fed one step per call gets the noise it would get fed whole. ``per_step``
        is unaffected. Every call inside a scope must have the same batch size. Scopes nest
        (the outer one keeps holding).
        """
        if self._noise_hold is not None:
            yield self
            return
        self._noise_hold = NoiseHold()
        try:
            yield self
        finally:
            self._noise_hold = None

    def register_gate_hook(self, hook: GateHook) -> RemovableHandle:
        """Call ``hook(module, trace)`` with a :class:`~g2lstm.nn.GateTrace` per layer and
        direction (a cell: after every step, ``T = 1``).

        While a hook is registered the forward runs the reference loop (the fast paths do not
        produce the gate values). Returns a handle whose ``remove()`` unregisters it.
        """
        handle = RemovableHandle(self._gate_hooks)
        self._gate_hooks[handle.id] = hook
        return handle

    def _g2_repr(self) -> str:
        c = self.gate_config
        s = f", tau={c.tau}, noise_p={c.noise_p}, noisy_gates={c.noisy_gates}"
        s += c.non_default_repr()
        if self.weight_dropout:
            s += f", weight_dropout={self.weight_dropout}"
        if self.forget_bias is not None:
            s += f", forget_bias={self.forget_bias}"
        return s
