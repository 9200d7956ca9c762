"""``G2LSTMCell``: one G2-LSTM step, a drop-in ``torch.nn.LSTMCell`` (paper Eqs. 11-16)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from g2lstm.errors import ShapeError
from g2lstm.nn.checks import cell_state
from g2lstm.nn.config import GateConfig
from g2lstm.nn.convert import cell_from_g2, g2_cell_from_cell
from g2lstm.nn.functional import GateSpec, lstm_step
from g2lstm.nn.noise import sample_gate_noise
from g2lstm.nn.options import G2Options, check_forget_bias, check_weight_dropout
from g2lstm.nn.recording import GateTrace

__all__ = ["G2LSTMCell"]


class G2LSTMCell(G2Options, nn.LSTMCell):
    """A G2-LSTM cell with ``nn.LSTMCell``'s constructor, parameters and call signature.

    Args: ``input_size, hidden_size, bias=True, device=None, dtype=None`` as ``nn.LSTMCell``,
    then the keyword-only G2 options of :class:`~g2lstm.nn.G2LSTM` (``tau``, ``noise_p``,
    ``noise_schedule``, ``noisy_gates``, ``eval_gates``, ``estimator``, ``eval_temperature``,
    ``weight_dropout``, ``forget_bias``).

    A cell sees one step per call, so each call is a sequence of one step unless the calls
    run inside ``with cell.noise_scope():``: there ``mask_per_sequence`` and
    ``noise_per_sequence`` hold their per-sequence draw across calls. Noise can also be
    drawn by the caller and passed as ``noise=``.

    Inputs: ``input`` ``(N, H_in)`` or ``(H_in,)``; ``hx = (h, c)`` each ``(N, H)`` or ``(H,)``,
    zeros when omitted; optional keyword ``noise`` ``(N, len(noisy_gates) * H)``.
    Outputs: ``(h_1, c_1)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        tau: float = 0.9,
        noise_p: float = 0.2,
        noise_schedule: str = "per_step",
        noisy_gates: tuple[str, ...] | str = ("input", "forget"),
        eval_gates: str = "soft",
        estimator: str = "gumbel",
        eval_temperature: str = "divide",
        weight_dropout: float = 0.0,
        forget_bias: float | None = None,
    ) -> None:
        gate_config = GateConfig(
            tau, noise_p, noise_schedule, noisy_gates, eval_gates, estimator, eval_temperature
        )
        # bad G2 options fail before any allocation
        weight_dropout = check_weight_dropout(weight_dropout)
        forget_bias = check_forget_bias(forget_bias)
        nn.LSTMCell.__init__(self, input_size, hidden_size, bias, device=device, dtype=dtype)
        self._init_g2(gate_config, weight_dropout, forget_bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        fb = getattr(self, "forget_bias", None)
        if fb is not None and self.bias:
            h = self.hidden_size
            with torch.no_grad():
                self.bias_ih[h : 2 * h].fill_(fb)
                self.bias_hh[h : 2 * h].zero_()

    def extra_repr(self) -> str:
        return nn.LSTMCell.extra_repr(self) + self._g2_repr()

    def __setstate__(self, state: dict) -> None:
        nn.LSTMCell.__setstate__(self, state)
        self._restore_g2_state()

    def forward(  # type: ignore[override]
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None, *, noise: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        h0, c0, unbatched = cell_state(self, input, hx)  # nn.LSTMCell's checks and errors
        x = input.unsqueeze(0) if unbatched else input
        n, h = x.shape[0], self.hidden_size
        spec = GateSpec.resolve(self.gate_config, self.training)
        width = len(spec.rows) * h
        if noise is None and spec.noisy:
            noise = sample_gate_noise(
                1, n, width, self.gate_config.noise_p, self.gate_config.noise_schedule,
                device=x.device, dtype=x.dtype, generator=self.generator,
                hold=self._noise_hold, module="G2LSTMCell",
            )[0]  # fmt: skip
        elif noise is not None:
            if unbatched and noise.dim() == 1:
                noise = noise.unsqueeze(0)
            if tuple(noise.shape) != (n, width):
                raise ShapeError(
                    f"G2LSTMCell: expected noise of size {(n, width)}, got {tuple(noise.shape)}"
                )
        w_hh = self.weight_hh
        if self.weight_dropout > 0 and self.training:
            w_hh = F.dropout(w_hh, self.weight_dropout, training=True)
        b = self.bias_ih + self.bias_hh if self.bias else None
        xw = F.linear(x, self.weight_ih, b)
        h1, c1, gates = lstm_step(xw, h0, c0, w_hh, None, noise, spec)
        if self._gate_hooks:
            mask = torch.ones(1, n, dtype=torch.bool, device=x.device)
            trace = GateTrace(0, 0, *(g.detach().unsqueeze(0) for g in gates), mask)
            for hook in list(self._gate_hooks.values()):
                hook(self, trace)
        if unbatched:
            return h1.squeeze(0), c1.squeeze(0)
        return h1, c1

    # ------------------------------------------------------------------ converters
    @classmethod
    def from_lstm_cell(cls, cell: nn.LSTMCell, **g2_options: object) -> G2LSTMCell:
        """A G2LSTMCell with ``cell``'s hyper-parameters, weights, device, dtype and mode.

        ``g2_options`` are the keyword-only G2 arguments (``tau``, ``noise_p``, ...).
        """
        return g2_cell_from_cell(cls, cell, **g2_options)

    def to_lstm_cell(self) -> nn.LSTMCell:
        """An ``nn.LSTMCell`` computing this cell's soft-eval step exactly (tau folded into
        the noisy gates' rows of the weights and biases)."""
        return cell_from_g2(self)
