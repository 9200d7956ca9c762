"""Gate activations and one LSTM step, the math every implementation is tested against.

Paper equations (``../shared/docs/paper.md`` §1.2, §1.5):

- LSTM (Eqs. 2-7): ``i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)``, ``g = tanh(a_g)``,
  ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``.
- G2-LSTM (Eqs. 11-16): the noisy gates become ``G(a, tau) = sigmoid((a + B * L) / tau)``.

The fused pre-activation ``a`` has ``4 * H`` columns in ``torch.nn.LSTM``'s order i, f, g, o.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import torch
from torch import Tensor

from g2lstm.nn.config import Estimator, EvalGates, EvalTemperature, GateConfig

__all__ = ["GateMode", "GateSpec", "gate_activations", "lstm_step", "straight_through_gate"]


class GateMode(str, enum.Enum):
    """How the noisy gates are computed in one forward pass (resolved from GateConfig)."""

    RELAXED = "relaxed"  # sigmoid((a + noise) / tau)               (Eqs. 11-12)
    HARD = "hard"  # 1[a >= 0]                                       (binary inference)
    STRAIGHT_THROUGH = "straight_through"  # 1[a + noise >= 0], relaxed gradient


@dataclass(frozen=True)
class GateSpec:
    """Resolved gate behaviour for one forward pass.

    Attributes:
        rows: gate indices (0=i, 1=f, 3=o) that are "noisy" (get noise and temperature).
        tau: temperature of the noisy gates.
        mode: :class:`GateMode`.
        noisy: whether additive noise is drawn for this pass.
    """

    rows: tuple[int, ...]
    tau: float
    mode: GateMode
    noisy: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", GateMode(self.mode))

    @staticmethod
    def resolve(config: GateConfig, training: bool) -> GateSpec:
        """The spec for a module with ``config`` in train (``training=True``) or eval mode."""
        noisy = config.noise_active(training)
        if training or config.eval_gates is EvalGates.SAMPLE:
            st = config.estimator is Estimator.STRAIGHT_THROUGH
            mode = GateMode.STRAIGHT_THROUGH if st else GateMode.RELAXED
        elif config.eval_gates is EvalGates.HARD:
            mode = GateMode.HARD
        else:
            mode = GateMode.RELAXED
            if config.eval_temperature is EvalTemperature.DROP:  # the authors' sigmoid(a)
                return GateSpec(config.gate_rows, 1.0, mode, noisy)
        return GateSpec(config.gate_rows, config.tau, mode, noisy)

    @property
    def is_plain_lstm_scaled(self) -> bool:
        """True when the pass is an ordinary LSTM with the noisy rows scaled by ``1/tau``.

        Then the vendor-fused kernel computes it exactly (tau folded into the weights).
        """
        return self.mode is GateMode.RELAXED and not self.noisy


class _StraightThrough(torch.autograd.Function):
    """Forward: exactly ``1[z >= 0]``. Backward: the gradient of ``sigmoid(z / tau)``."""

    @staticmethod
    def forward(ctx, z: Tensor, tau: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(z)
        ctx.tau = tau
        return (z >= 0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (z,) = ctx.saved_tensors
        s = torch.sigmoid(z / ctx.tau)
        return grad * s * (1 - s) / ctx.tau, None


def straight_through_gate(z: Tensor, tau: float) -> Tensor:
    """Binary gate ``1[z >= 0]`` whose gradient is that of ``sigmoid(z / tau)``."""
    return _StraightThrough.apply(z, tau)


def _noisy_gate(a: Tensor, noise: Tensor | None, spec: GateSpec) -> Tensor:
    if spec.mode is GateMode.HARD:
        return (a >= 0).to(a.dtype)
    z = a if noise is None else a + noise
    if spec.mode is GateMode.STRAIGHT_THROUGH:
        return straight_through_gate(z, spec.tau)
    return torch.sigmoid(z / spec.tau) if spec.tau != 1.0 else torch.sigmoid(z)


def gate_activations(
    a: Tensor, noise: Tensor | None, spec: GateSpec
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Activate the fused pre-activations of one step.

    Args:
        a: ``(N, 4H)`` pre-activations, columns in order i, f, g, o.
        noise: ``(N, len(spec.rows) * H)`` additive noise ``B * L`` for the noisy gates, laid
            out gate by gate in i, f, o order, or ``None``.
        spec: the resolved :class:`GateSpec`.

    Returns:
        ``(i, f, g, o)``, each ``(N, H)``.
    """
    chunks = list(a.chunk(4, dim=-1))
    hidden = chunks[0].shape[-1]
    out: list[Tensor] = []
    for k in range(4):
        if k == 2:  # cell candidate, Eq. 14
            out.append(torch.tanh(chunks[2]))
        elif k in spec.rows:  # Eqs. 11-12 (and the output gate in the ablation)
            j = spec.rows.index(k)
            nk = None if noise is None else noise[..., j * hidden : (j + 1) * hidden]
            out.append(_noisy_gate(chunks[k], nk, spec))
        else:  # Eq. 13
            out.append(torch.sigmoid(chunks[k]))
    return out[0], out[1], out[2], out[3]


def lstm_step(
    xw_t: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh: Tensor,
    w_hr: Tensor | None,
    noise_t: Tensor | None,
    spec: GateSpec,
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor]]:
    """One G2-LSTM step (Eqs. 11-16).

    Args:
        xw_t: ``(N, 4H)`` input projection plus both biases for this step.
        h: ``(N, H_out)`` previous hidden state (``H_out = proj_size or H``).
        c: ``(N, H)`` previous cell state.
        w_hh: ``(4H, H_out)`` recurrent weights.
        w_hr: ``(H_out, H)`` projection weights or ``None``.
        noise_t: ``(N, len(spec.rows) * H)`` gate noise or ``None``.

    Returns:
        ``(h_t, c_t, (i, f, o))``.
    """
    a = torch.addmm(xw_t, h, w_hh.t())
    i, f, g, o = gate_activations(a, noise_t, spec)
    c_new = f * c + i * g  # Eq. 15
    h_new = o * torch.tanh(c_new)  # Eq. 16
    if w_hr is not None:
        h_new = h_new @ w_hr.t()
    return h_new, c_new, (i, f, o)
