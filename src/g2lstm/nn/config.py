"""Typed, validated options of the G2-LSTM gates (paper §3, Eqs. 11-16).

:class:`GateConfig` holds every G2 option of :class:`~g2lstm.nn.G2LSTM` and
:class:`~g2lstm.nn.G2LSTMCell`. It is frozen and checks its values at construction, so a bad
value fails where it is written, with a message that names the argument.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from g2lstm.errors import ConfigError

#: Position of each gate in the fused ``4 * hidden_size`` rows, in ``torch.nn.LSTM``'s order.
GATE_INDEX = {"input": 0, "forget": 1, "cell": 2, "output": 3}
_GATE_ALIASES = {
    "i": "input",
    "f": "forget",
    "o": "output",
    "input": "input",
    "forget": "forget",
    "output": "output",
}


#: The three models the paper compares (§4.2), as gate options: the LSTM baseline, the
#: "Sharpened Sigmoid" (temperature without noise) and G2-LSTM. Every experiment's ``--cell``
#: flag maps to one of these.
CELL_KINDS: dict[str, dict[str, float]] = {
    "lstm": {"tau": 1.0, "noise_p": 0.0},
    "sharpened": {"tau": 0.2, "noise_p": 0.0},
    "g2": {"tau": 0.9, "noise_p": 0.2},
}


class NoiseSchedule(str, enum.Enum):
    """When the gate noise ``B * L`` is redrawn along a sequence.

    - ``PER_STEP``: fresh mask ``B`` and noise ``L`` at every time step (paper; the authors'
      ``new_U_B``, the default).
    - ``MASK_PER_SEQUENCE``: ``B`` drawn once per sequence, ``L`` fresh every step (``new_U``).
    - ``NOISE_PER_SEQUENCE``: ``B`` and ``L`` both drawn once per sequence (``no_new``).
    """

    PER_STEP = "per_step"
    MASK_PER_SEQUENCE = "mask_per_sequence"
    NOISE_PER_SEQUENCE = "noise_per_sequence"


class EvalGates(str, enum.Enum):
    """How the noisy gates behave when the module is in eval mode.

    - ``SOFT``: ``sigmoid(a / tau)``, the noise-free training gate (default).
    - ``HARD``: exactly ``1[a >= 0]`` (binary gates, beyond the paper).
    - ``SAMPLE``: keep drawing noise at eval time (Monte-Carlo estimates).
    """

    SOFT = "soft"
    HARD = "hard"
    SAMPLE = "sample"


class EvalTemperature(str, enum.Enum):
    """Whether soft eval gates keep the temperature.

    - ``DIVIDE``: ``sigmoid(a / tau)``, the noise-free training gate (default; the authors' LM
      code with ``--divide-temp``).
    - ``DROP``: ``sigmoid(a)``, the temperature dropped at test time (the authors' MT code,
      and their LM code without ``--divide-temp``).

    Hard gates ``1[a >= 0]`` are the same either way (``tau > 0`` does not move the sign).
    """

    DIVIDE = "divide"
    DROP = "drop"


class Estimator(str, enum.Enum):
    """The gradient estimator of the noisy gates in training.

    - ``GUMBEL``: the continuous relaxation ``sigmoid((a + B L) / tau)`` (paper).
    - ``STRAIGHT_THROUGH``: forward ``1[(a + B L) >= 0]`` (exactly 0/1), backward the gradient
      of the relaxation (beyond the paper; makes the trained gates truly binary).
    """

    GUMBEL = "gumbel"
    STRAIGHT_THROUGH = "straight_through"


def _enum(cls: type[enum.Enum], value: object, name: str) -> enum.Enum:
    if isinstance(value, cls):
        return value
    try:
        return cls(str(value).lower())
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in cls)  # type: ignore[attr-defined]
        raise ConfigError(f"{name}={value!r} is not valid; expected one of {allowed}") from None


def normalize_gates(gates: Iterable[str] | str, name: str = "noisy_gates") -> tuple[str, ...]:
    """Turn ``("i", "forget")`` or ``"i,f"`` into the canonical sorted ``("input", "forget")``."""
    if isinstance(gates, str):
        gates = [g for g in gates.replace(" ", "").split(",") if g]
    out = []
    for g in gates:
        key = str(g).lower()
        if key not in _GATE_ALIASES:
            raise ConfigError(
                f"{name}: unknown gate {g!r}; expected a subset of 'input', 'forget', 'output' "
                "(or 'i', 'f', 'o'); the cell candidate 'g' has no gate noise"
            )
        if _GATE_ALIASES[key] not in out:
            out.append(_GATE_ALIASES[key])
    return tuple(sorted(out, key=GATE_INDEX.__getitem__))


@dataclass(frozen=True)
class GateConfig:
    """Options of the G2 gates (paper §3.3, Eqs. 11-16).

    A noisy gate is ``G(a, tau) = sigmoid((a + B * L) / tau)`` with ``L`` standard logistic
    noise (the difference of two Gumbels, Proposition 3.1) and ``B ~ Bernoulli(noise_p)``
    (the authors' noise dropout). Gates not listed in ``noisy_gates`` are plain sigmoids.

    Special cases: ``noise_p=0, tau=1`` is exactly an LSTM; ``noise_p=0, tau=0.2`` is the
    paper's "Sharpened Sigmoid" baseline (§3.2).

    Args:
        tau: temperature, divides the pre-activation of every noisy gate in training and in
            soft eval. Must be finite and > 0. Paper: 0.9.
        noise_p: probability that a gate value receives noise. In [0, 1]. Paper: 0.2.
        noise_schedule: when noise is redrawn (:class:`NoiseSchedule`).
        noisy_gates: which of input/forget/output get noise and temperature. Paper: i and f.
        eval_gates: behaviour in eval mode (:class:`EvalGates`).
        estimator: training gradient estimator (:class:`Estimator`).
        eval_temperature: whether soft eval gates divide by ``tau`` (:class:`EvalTemperature`).
    """

    tau: float = 0.9
    noise_p: float = 0.2
    noise_schedule: NoiseSchedule = NoiseSchedule.PER_STEP
    noisy_gates: tuple[str, ...] = field(default=("input", "forget"))
    eval_gates: EvalGates = EvalGates.SOFT
    estimator: Estimator = Estimator.GUMBEL
    eval_temperature: EvalTemperature = EvalTemperature.DIVIDE

    def __post_init__(self) -> None:
        try:
            tau = float(self.tau)
        except (TypeError, ValueError):
            raise ConfigError(f"tau={self.tau!r} is not a number; expected a float > 0") from None
        if not math.isfinite(tau) or tau <= 0:
            raise ConfigError(
                f"tau={self.tau!r} is invalid; the temperature must be a finite number > 0 "
                "(paper: 0.9; 'Sharpened Sigmoid': 0.2; 1.0 disables it)"
            )
        try:
            p = float(self.noise_p)
        except (TypeError, ValueError):
            raise ConfigError(
                f"noise_p={self.noise_p!r} is not a number; expected [0, 1]"
            ) from None
        if not (0.0 <= p <= 1.0):  # also rejects NaN
            raise ConfigError(
                f"noise_p={self.noise_p!r} is invalid; it is a probability and must lie in "
                "[0, 1] (paper: 0.2; 0 turns the noise off)"
            )
        object.__setattr__(self, "tau", tau)
        object.__setattr__(self, "noise_p", p)
        object.__setattr__(
            self, "noise_schedule", _enum(NoiseSchedule, self.noise_schedule, "noise_schedule")
        )
        object.__setattr__(self, "eval_gates", _enum(EvalGates, self.eval_gates, "eval_gates"))
        object.__setattr__(self, "estimator", _enum(Estimator, self.estimator, "estimator"))
        object.__setattr__(
            self,
            "eval_temperature",
            _enum(EvalTemperature, self.eval_temperature, "eval_temperature"),
        )
        object.__setattr__(self, "noisy_gates", normalize_gates(self.noisy_gates))

    @property
    def gate_rows(self) -> tuple[int, ...]:
        """Indices (0=i, 1=f, 3=o) of the noisy gates in the fused ``4H`` layout."""
        return tuple(GATE_INDEX[g] for g in self.noisy_gates)

    def noise_active(self, training: bool) -> bool:
        """Whether a forward pass in this mode draws gate noise."""
        if not self.noisy_gates or self.noise_p == 0.0:
            return False
        return training or self.eval_gates is EvalGates.SAMPLE

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (enums as their string values)."""
        return {
            "tau": self.tau,
            "noise_p": self.noise_p,
            "noise_schedule": self.noise_schedule.value,
            "noisy_gates": list(self.noisy_gates),
            "eval_gates": self.eval_gates.value,
            "estimator": self.estimator.value,
            "eval_temperature": self.eval_temperature.value,
        }

    def non_default_repr(self) -> str:
        """``", noise_schedule='...', ..."`` for the options that differ from the defaults."""
        out = ""
        for name, default in (
            ("noise_schedule", NoiseSchedule.PER_STEP),
            ("eval_gates", EvalGates.SOFT),
            ("estimator", Estimator.GUMBEL),
            ("eval_temperature", EvalTemperature.DIVIDE),
        ):
            value = getattr(self, name)
            if value is not default:
                out += f", {name}={value.value!r}"
        return out
