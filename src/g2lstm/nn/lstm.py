"""``G2LSTM``: a drop-in ``torch.nn.LSTM`` whose input and forget gates are Gumbel gates.

Paper §3.3, Eqs. 11-16. The class subclasses ``torch.nn.LSTM``: same constructor (names,
order, defaults), parameters (``weight_ih_l{k}[_reverse]`` ... in gate order i, f, g, o),
input/state shapes, ``PackedSequence`` and ``bidirectional`` handling, so ``load_state_dict``
works both ways and ``isinstance(m, nn.LSTM)`` holds. The G2 options are keyword-only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from g2lstm.nn.backends import Implementation, run_direction, vendor_spec, vendor_weights
from g2lstm.nn.checks import autocast_dtype, exporting, initial_state
from g2lstm.nn.config import GateConfig
from g2lstm.nn.convert import g2_from_lstm, lstm_from_g2
from g2lstm.nn.functional import GateSpec
from g2lstm.nn.fused import fused_lstm_stack
from g2lstm.nn.noise import draw_gate_noise
from g2lstm.nn.options import G2Options, check_forget_bias, check_weight_dropout
from g2lstm.nn.recording import GateTrace
from g2lstm.nn.reference import length_mask, repack_like, reverse_padded

__all__ = ["G2LSTM", "check_weight_dropout"]  # check_weight_dropout: compatibility

_State = tuple[Tensor, Tensor]


class G2LSTM(G2Options, nn.LSTM):
    r"""Multi-layer G2-LSTM (Li et al., ICML 2018), a drop-in replacement for ``nn.LSTM``.

    Each layer computes, per step (paper Eqs. 11-16)::

        i_t = G(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi, tau)
        f_t = G(W_if x_t + b_if + W_hf h_{t-1} + b_hf, tau)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
        o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)            (then h_t = W_hr h_t when proj_size > 0)

    with ``G(a, tau) = sigmoid((a + B * L) / tau)``, ``L`` standard logistic noise and
    ``B ~ Bernoulli(noise_p)`` drawn in training. In eval mode the noisy gates are
    ``sigmoid(a / tau)`` (``eval_gates="soft"``), ``1[a >= 0]`` (``"hard"``) or keep their
    noise (``"sample"``).

    Special cases: ``noise_p=0, tau=1`` **is** ``nn.LSTM`` (same numbers, same gradients);
    ``noise_p=0, tau=0.2`` is the paper's "Sharpened Sigmoid" baseline (§3.2, §4.2).

    Args (the ``nn.LSTM`` ones, same meaning and defaults):
        input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
        bidirectional=False, proj_size=0, device=None, dtype=None.

    Keyword-only G2 args:
        tau: temperature of the noisy gates (> 0). Paper: 0.9.
        noise_p: probability that a gate value gets noise, in [0, 1]. Paper: 0.2.
        noise_schedule: ``"per_step"`` (default), ``"mask_per_sequence"``,
            ``"noise_per_sequence"`` (the authors' ``new_U_B``/``new_U``/``no_new``).
        noisy_gates: subset of ``("input", "forget", "output")``; default input and forget.
        eval_gates: ``"soft"`` (default), ``"hard"`` or ``"sample"``.
        estimator: ``"gumbel"`` (paper) or ``"straight_through"`` (hard 0/1 forward).
        eval_temperature: ``"divide"`` (default: soft eval gates ``sigmoid(a / tau)``) or
            ``"drop"`` (``sigmoid(a)``, as the authors' MT code evaluates).
        weight_dropout: DropConnect probability on every ``weight_hh`` (AWD-LSTM), applied
            functionally in ``forward`` with one mask per call; the parameters stay as they are.
        forget_bias: if set, the forget-gate rows of ``bias_ih`` start at this value and those
            of ``bias_hh`` at 0 (so the forget bias is exactly ``forget_bias``).

    Inputs: ``input, (h_0, c_0)`` exactly as ``nn.LSTM``: ``input`` is ``(L, N, H_in)``,
    ``(N, L, H_in)`` with ``batch_first``, ``(L, H_in)`` unbatched, or a ``PackedSequence``;
    ``h_0`` is ``(D * num_layers, N, H_out)`` and ``c_0`` ``(D * num_layers, N, H)``
    (``batch_first`` does not apply to them); omitted states are zeros.

    Outputs: ``output, (h_n, c_n)`` with ``output`` ``(L, N, D * H_out)`` (or packed) and the
    states of the last valid step of every sequence.

    Gate values can be observed with :meth:`register_gate_hook` or
    :class:`~g2lstm.nn.GateRecorder` without changing the return type.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
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
        nn.LSTM.__init__(
            self,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device=device,
            dtype=dtype,
        )
        self._init_g2(gate_config, weight_dropout, forget_bias)
        #: How the layer runs (:class:`~g2lstm.nn.backends.Implementation`: algorithm, GEMM
        #: route, step implementation, hard-gate path); ``backend`` sets it from one string.
        self.implementation = Implementation()
        self._apply_forget_bias()

    # ------------------------------------------------------------------ parameters
    def reset_parameters(self) -> None:
        """``nn.LSTM``'s init (all ``U(-1/sqrt(H), 1/sqrt(H))``), then ``forget_bias``."""
        super().reset_parameters()
        self._apply_forget_bias()

    def _apply_forget_bias(self) -> None:
        fb = getattr(self, "forget_bias", None)
        if fb is None or not self.bias:
            return
        h = self.hidden_size
        with torch.no_grad():
            for name in self._flat_weights_names:
                if name.startswith("bias_ih"):
                    getattr(self, name)[h : 2 * h].fill_(fb)
                elif name.startswith("bias_hh"):
                    getattr(self, name)[h : 2 * h].zero_()

    @property
    def backend(self) -> str | Implementation:
        """The implementation as its legacy single string when it has one (``"auto"``,
        ``"reference"``, ``"fast"``, ``"fast-mm"``, ``"fast-onednn"``, ``"fast-aten"``,
        ``"fused-hard"``), else the :class:`~g2lstm.nn.backends.Implementation` itself.
        Setting it accepts either."""
        return self.implementation.legacy_name or self.implementation

    @backend.setter
    def backend(self, value: str | Implementation) -> None:
        self.implementation = Implementation.parse(value)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_hidden_size(self) -> int:
        """``H_out``: ``proj_size`` if set, else ``hidden_size``."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def direction_weights(self, layer: int, direction: int) -> list[Tensor]:
        """``[w_ih, w_hh, (b_ih, b_hh), (w_hr)]`` of one layer-direction, as registered."""
        per = len(self._flat_weights_names) // (self.num_layers * self.num_directions)
        start = (layer * self.num_directions + direction) * per
        return [getattr(self, n) for n in self._flat_weights_names[start : start + per]]

    def _forward_weights(self, dtype: torch.dtype | None = None) -> list[list[Tensor]]:
        """Weights of every layer-direction for this call (cast to ``dtype`` if given, inside
        autograd), with DropConnect applied."""
        out = []
        for layer in range(self.num_layers):
            for d in range(self.num_directions):
                ws = self.direction_weights(layer, d)
                if dtype is not None:
                    ws = [w.to(dtype) for w in ws]
                if self.weight_dropout > 0 and self.training:
                    ws[1] = F.dropout(ws[1], self.weight_dropout, training=True)
                out.append(ws)
        return out

    # ------------------------------------------------------------------ options
    def extra_repr(self) -> str:
        return nn.LSTM.extra_repr(self) + self._g2_repr()

    def __setstate__(self, state: dict) -> None:
        legacy = state.pop("backend", None)  # pickled by versions with a string attribute
        nn.LSTM.__setstate__(self, state)
        self._restore_g2_state()
        if "implementation" not in self.__dict__:
            self.implementation = Implementation.parse(legacy or "auto")

    # ------------------------------------------------------------------ forward
    def forward(  # type: ignore[override]
        self, input: Tensor | PackedSequence, hx: _State | None = None
    ) -> tuple[Tensor | PackedSequence, _State]:
        h0, c0, unbatched = initial_state(self, input, hx)  # nn.LSTM's checks and errors
        amp = autocast_dtype(input.data if isinstance(input, PackedSequence) else input)
        if amp is None:
            out, h_n, c_n = self._run(input, h0, c0, unbatched, None)
        else:  # as nn.LSTM under autocast: the whole layer in the autocast dtype
            device = h0.device.type
            with torch.autocast(device, enabled=False):
                out, h_n, c_n = self._run(input.to(amp), h0.to(amp), c0.to(amp), unbatched, amp)
        if unbatched:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return out, (h_n, c_n)

    def _run(
        self,
        input: Tensor | PackedSequence,
        h0: Tensor,
        c0: Tensor,
        unbatched: bool,
        dtype: torch.dtype | None,
    ) -> tuple[Tensor | PackedSequence, Tensor, Tensor]:
        """The stack on checked inputs; weights cast to ``dtype`` (autocast) if given."""
        spec = GateSpec.resolve(self.gate_config, self.training)
        weights = self._forward_weights(dtype)
        data = input.data if isinstance(input, PackedSequence) else input
        vendor = vendor_spec(spec, self.implementation, data.dtype)
        if vendor is not None and not self._gate_hooks:
            return self._forward_vendor(input, h0, c0, weights, vendor, unbatched)
        return self._forward_loop(input, h0, c0, weights, spec, unbatched)

    def _forward_vendor(
        self,
        input: Tensor | PackedSequence,
        h0: Tensor,
        c0: Tensor,
        weights: list[list[Tensor]],
        spec: GateSpec,
        unbatched: bool,
    ) -> tuple[Tensor | PackedSequence, Tensor, Tensor]:
        """The whole stack in one ``torch._VF.lstm`` call, tau folded into the weights."""
        flat = [w for ws in weights for w in vendor_weights(ws, self.hidden_size, spec, self.bias)]
        return fused_lstm_stack(self, input, h0, c0, flat, unbatched)

    def _forward_loop(
        self,
        input: Tensor | PackedSequence,
        h0: Tensor,
        c0: Tensor,
        weights: list[list[Tensor]],
        spec: GateSpec,
        unbatched: bool,
    ) -> tuple[Tensor | PackedSequence, Tensor, Tensor]:
        """Layer by layer, direction by direction, through :func:`run_direction`."""
        lengths: Tensor | None = None
        if isinstance(input, PackedSequence):
            x, lengths = pad_packed_sequence(input)  # (T, N, H_in), original batch order
        elif unbatched:
            x = input.unsqueeze(1)
        else:
            x = input.transpose(0, 1) if self.batch_first else input
        steps, batch = x.shape[0], x.shape[1]
        mask = None
        if self._gate_hooks:
            mask = (
                length_mask(lengths, steps, x.device)
                if lengths is not None
                else torch.ones(steps, batch, dtype=torch.bool, device=x.device)
            )
        h_n: list[Tensor] = []
        c_n: list[Tensor] = []
        width = len(spec.rows) * self.hidden_size
        # export records the reference math (ATen ops only); else the chosen implementation
        impl = Implementation(algorithm="reference") if exporting() else self.implementation
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                ws = weights[k]
                w_ih, w_hh = ws[0], ws[1]
                b = ws[2] + ws[3] if self.bias else None
                w_hr = ws[-1] if self.proj_size > 0 else None
                x_d = x if d == 0 else reverse_padded(x, lengths)
                noise = None
                if spec.noisy and steps > 0:  # one seed per call; the values where used
                    noise = draw_gate_noise(
                        self.gate_config.noise_p, self.gate_config.noise_schedule,
                        batch=batch, width=width, device=x.device, generator=self.generator,
                        hold=self._noise_hold, hold_key=k,
                    )  # fmt: skip
                res = run_direction(
                    x_d, w_ih, b, w_hh, w_hr, h0[k], c0[k], spec, noise, lengths,
                    record=bool(self._gate_hooks), backend=impl,
                )  # fmt: skip
                out_d = res.output if d == 0 else reverse_padded(res.output, lengths)
                outs.append(out_d)
                h_n.append(res.h_n)
                c_n.append(res.c_n)
                if self._gate_hooks and res.gates is not None and mask is not None:
                    gates = res.gates if d == 0 else [reverse_padded(g, lengths) for g in res.gates]
                    trace = GateTrace(layer, d, gates[0], gates[1], gates[2], mask)
                    for hook in list(self._gate_hooks.values()):
                        hook(self, trace)
            x = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        hn, cn = torch.stack(h_n), torch.stack(c_n)
        if isinstance(input, PackedSequence):
            return repack_like(x, lengths, input), hn, cn  # type: ignore[arg-type]
        if unbatched:
            return x.squeeze(1), hn, cn
        return (x.transpose(0, 1) if self.batch_first else x), hn, cn

    # ------------------------------------------------------------------ converters
    @classmethod
    def from_lstm(cls, lstm: nn.LSTM, **g2_options: object) -> G2LSTM:
        """A G2LSTM with ``lstm``'s hyper-parameters and a copy of its weights.

        ``g2_options`` are the keyword-only G2 arguments (``tau``, ``noise_p``, ...).
        """
        return g2_from_lstm(cls, lstm, **g2_options)

    def to_lstm(self) -> nn.LSTM:
        """An ``nn.LSTM`` computing this module's soft-eval output exactly.

        ``tau`` is folded into the noisy gates' rows of the weights and biases, so the
        result runs on the vendor kernels (cuDNN, oneDNN) and exports to ONNX.
        """
        return lstm_from_g2(self)
