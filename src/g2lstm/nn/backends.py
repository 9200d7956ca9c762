"""Choice of the implementation that runs one layer-direction of G2-LSTM.

Every implementation computes exactly what :func:`g2lstm.nn.reference.recurrence_reference`
computes (same noise in, same numbers out, up to floating-point rounding) and is tested
against it. The choice has three independent parts, :class:`Implementation`:

- ``algorithm``: ``"auto"`` (default: the fast recurrence, :func:`g2lstm.nn.fast.recurrence_fast`,
  whenever it supports the pass, else the reference loop, see :func:`choose`), ``"fast"``
  (the fast recurrence or a :class:`~g2lstm.errors.ConfigError` naming the option it does
  not support: for benchmarks and tests that must not silently fall back), ``"reference"``
  (always the readable loop).
- ``gemm``: the fast recurrence's GEMM route: ``"auto"`` (measured/preferred per machine),
  ``"torch"`` (``torch.mm``: MKL packed on CPU, cuBLAS on GPU) or ``"onednn"`` (the private
  oneDNN op, CPU float32; falls back to ``torch.mm`` where it cannot run).
  See :mod:`g2lstm.nn.fast.gemm`.
- ``step``: how each step's pointwise work runs: ``"auto"``, ``"kernel"`` (fused C++, CPU),
  ``"triton"`` (fused Triton, CUDA) or ``"aten"`` (ATen ops). See :mod:`g2lstm.nn.fast.steps`;
  ``$G2LSTM_STEP`` overrides it.
- ``hard``: ``"exact"`` (default: hard-gate inference ``1[a >= 0]`` on the fast recurrence)
  or ``"fused"`` (opt-in: the whole stack on the vendor kernel with the noisy gates' rows of
  every weight and bias multiplied by ``2**60``, :func:`vendor_spec`. A power of two scales
  exactly, so the kernel computes ``sigmoid(2**60 * a)``, which is exactly ``1[a >= 0]`` for
  ``|a| >= ~7.6e-17``; it is ``0.5`` at ``a == 0`` and fractional for ``0 < |a| < 7.6e-17``,
  and ``a`` is summed in the kernel's order, so gates whose ``|a|`` is at rounding level can
  flip. Same speed as ``nn.LSTM``).

``G2LSTM.backend`` still takes the older single strings, each one a combination of the
above (:data:`BACKENDS`): ``"auto"``, ``"reference"``, ``"fast"``, ``"fast-mm"`` (gemm
torch), ``"fast-onednn"``, ``"fast-aten"`` (step aten), ``"fused-hard"`` (hard fused).

The fast path does not support: gate recording (hooks need the per-step gate values; the
reference runs while one is registered), projections (``proj_size > 0``), empty sequences
and non-floating dtypes. Noise-free soft passes never get here: ``G2LSTM`` sends them whole
to the vendor kernel (``torch._VF.lstm``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from g2lstm.errors import ConfigError
from g2lstm.nn.fast import ROUTES, STEPS, recurrence_fast
from g2lstm.nn.fast.kernel import philox_uniform
from g2lstm.nn.functional import GateMode, GateSpec
from g2lstm.nn.fused import row_scale, scale_gate_rows
from g2lstm.nn.noise import GateNoise
from g2lstm.nn.reference import RecurrenceOutput, recurrence_reference

__all__ = [
    "BACKENDS",
    "FUSED_HARD_SCALE",
    "Choice",
    "Implementation",
    "choose",
    "run_direction",
    "vendor_spec",
    "vendor_weights",
]

ALGORITHMS = ("auto", "fast", "reference")
HARD = ("exact", "fused")


@dataclass(frozen=True)
class Implementation:
    """How ``G2LSTM`` runs (see the module docstring); validated at construction."""

    algorithm: str = "auto"
    gemm: str = "auto"
    step: str = "auto"
    hard: str = "exact"

    def __post_init__(self) -> None:
        for name, allowed in (
            ("algorithm", ALGORITHMS),
            ("gemm", ("auto", *ROUTES)),
            ("step", STEPS),
            ("hard", HARD),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"implementation {name}={getattr(self, name)!r} is not valid; expected one "
                    f"of {', '.join(map(repr, allowed))}"
                )

    @staticmethod
    def parse(value: str | Implementation) -> Implementation:
        """An :class:`Implementation` from itself or from a legacy ``backend`` string."""
        if isinstance(value, Implementation):
            return value
        if value not in BACKENDS:
            raise ConfigError(
                f"backend={value!r} is not valid; expected one of "
                f"{', '.join(map(repr, BACKENDS))} or an Implementation(...)"
            )
        return BACKENDS[value]

    @property
    def legacy_name(self) -> str | None:
        """The ``backend`` string naming this combination, or ``None`` if there is none."""
        for name, impl in BACKENDS.items():
            if impl == self:
                return name
        return None


#: The legacy single-string ``backend`` values and the combination each one names.
BACKENDS: dict[str, Implementation] = {
    "auto": Implementation(),
    "reference": Implementation(algorithm="reference"),
    "fast": Implementation(algorithm="fast"),
    "fast-mm": Implementation(algorithm="fast", gemm="torch"),
    "fast-onednn": Implementation(algorithm="fast", gemm="onednn"),
    "fast-aten": Implementation(algorithm="fast", step="aten"),
    "fused-hard": Implementation(hard="fused"),
}

#: Row factor of the noisy gates in the opt-in ``"fused-hard"`` path (a power of two).
FUSED_HARD_SCALE = 2.0**60


@dataclass(frozen=True)
class Choice:
    """The implementation picked for one layer-direction.

    Attributes:
        impl: ``"fast"`` or ``"reference"``.
        route: GEMM route asked of the fast path (``"auto"``, ``"onednn"`` or ``"torch"``;
            resolved when the operator runs), ``None`` for the reference.
        reason: why the reference was chosen (empty for the fast path).
        pointwise: the step implementation asked of the fast path (one of ``STEPS``).
    """

    impl: str
    route: str | None = None
    reason: str = ""
    pointwise: str = "auto"


def vendor_spec(
    spec: GateSpec, backend: str | Implementation, dtype: torch.dtype
) -> GateSpec | None:
    """The spec with which ``G2LSTM`` runs the whole stack on ``torch._VF.lstm``, or ``None``.

    Noise-free soft passes: ``spec`` itself (tau folded into the weights, exact). Hard-gate
    inference with ``hard="fused"`` (float32/64, bfloat16): the noisy rows scaled by
    :data:`FUSED_HARD_SCALE` (see the module docstring). Otherwise ``None`` (per-direction
    path).
    """
    impl = Implementation.parse(backend)
    if impl.algorithm == "reference":
        return None
    if spec.is_plain_lstm_scaled:
        return spec
    fused_ok = dtype in (torch.float32, torch.float64, torch.bfloat16)
    if impl.hard == "fused" and spec.mode is GateMode.HARD and not spec.noisy and fused_ok:
        return replace(spec, mode=GateMode.RELAXED, tau=1.0 / FUSED_HARD_SCALE)
    return None


#: id(parameter) -> (weakref to it, {(rows, tau): (version key, scaled copy)}); an entry
#: leaves with its parameter.
_SCALED_CACHE: dict[int, tuple[weakref.ref, dict[tuple, tuple[tuple, Tensor]]]] = {}


def vendor_weights(ws: list[Tensor], hidden: int, spec: GateSpec, has_bias: bool) -> list[Tensor]:
    """``scale_gate_rows(ws, hidden, spec.rows, spec.tau, has_bias)``, cached for inference.

    When no gradient can flow (``torch.no_grad`` or parameters without ``requires_grad``)
    the scaled copy of each parameter (one per ``(rows, tau)``: soft and ``fused-hard``
    inference keep one each) is kept and reused until the parameter changes (its version
    counter or storage), so repeated inference calls do not rescale the weights: the
    rescaling is ~5-10% of a soft-inference call at batch 20. With gradients, the scaling
    runs inside autograd as before.
    """
    grad = torch.is_grad_enabled() and any(w.requires_grad for w in ws)
    traced = torch.compiler.is_compiling() or torch.jit.is_tracing()  # no cache in graphs
    if grad or traced or spec.tau == 1.0 or not spec.rows:
        return scale_gate_rows(ws, hidden, spec.rows, spec.tau, has_bias)
    n_scaled = 4 if has_bias else 2
    out = list(ws)
    sub = (spec.rows, spec.tau)
    for i, w in enumerate(ws[:n_scaled]):
        version = (w._version, w.data_ptr(), w.dtype, w.device, tuple(w.shape))
        entry = _SCALED_CACHE.get(id(w))
        if entry is not None and entry[0]() is not w:
            entry = None  # a dead parameter's id reused before its finalizer ran
        hit = None if entry is None else entry[1].get(sub)
        if hit is not None and hit[0] == version:
            out[i] = hit[1]
            continue
        s = row_scale(hidden, spec.rows, 1.0 / spec.tau, w)
        out[i] = w * (s.unsqueeze(1) if w.dim() == 2 else s)
        if w.requires_grad:  # a parameter: worth keeping (temporaries are not)
            if entry is None:
                entry = (weakref.ref(w), {})
                _SCALED_CACHE[id(w)] = entry
                weakref.finalize(w, _SCALED_CACHE.pop, id(w), None)
            entry[1][sub] = (version, out[i])
    return out


def choose(
    x: Tensor,
    w_hr: Tensor | None,
    *,
    record: bool = False,
    backend: str | Implementation = "auto",
) -> Choice:
    """Pick the implementation for input ``x (T, N, H_in)`` and these options.

    Looks only at shapes, dtypes and options (traceable); the GEMM route and the step
    implementation are resolved later, inside the operator.
    """
    impl = Implementation.parse(backend)
    if impl.algorithm == "reference":
        return Choice("reference", reason="backend='reference'")
    reason = ""
    if record:
        reason = "gate recording (a gate hook is registered)"
    elif w_hr is not None:
        reason = "proj_size > 0"
    elif x.shape[0] == 0:
        reason = "empty sequence"
    elif not torch.is_floating_point(x):
        reason = f"dtype {x.dtype}"
    if reason:
        if impl.algorithm == "fast":
            raise ConfigError(
                f"backend={impl.legacy_name or impl!r}: the fast path does not support "
                f"{reason}; use algorithm 'auto' (falls back to the reference loop) or "
                "'reference'"
            )
        return Choice("reference", reason=reason)
    return Choice("fast", impl.gemm, pointwise=impl.step)


def run_direction(
    x: Tensor,
    w_ih: Tensor,
    bias: Tensor | None,
    w_hh: Tensor,
    w_hr: Tensor | None,
    h0: Tensor,
    c0: Tensor,
    spec: GateSpec,
    noise: Tensor | GateNoise | None,
    lengths: Tensor | None,
    *,
    record: bool = False,
    backend: str | Implementation = "auto",
) -> RecurrenceOutput:
    """Run one layer-direction over a time-major ``(T, N, H_in)`` input.

    Args:
        x: input in processing order (already reversed for reverse directions).
        w_ih: ``(4H, H_in)``; bias: ``(4H,)`` = ``b_ih + b_hh`` or ``None``.
        w_hh: ``(4H, H_out)``; w_hr: ``(H_out, H)`` or ``None``.
        h0: ``(N, H_out)``; c0: ``(N, H)``.
        spec, noise, lengths, record: see :func:`recurrence_reference`; ``noise`` may also be
            the generator seeds (:class:`~g2lstm.nn.noise.GateNoise`): the fast path draws
            it where it is used, the reference materialises the same values.
        backend: see the module docstring; ``"auto"`` picks the fastest exact path.
    """
    choice = choose(x, w_hr, record=record, backend=backend)
    if choice.impl == "fast":
        return recurrence_fast(
            x, w_ih, bias, w_hh, h0, c0, spec, noise, lengths, choice.route or "auto",
            choice.pointwise,
        )  # fmt: skip
    if isinstance(noise, GateNoise):
        width = len(spec.rows) * w_hh.shape[0] // 4
        noise = noise.materialize(x.shape[0], x.shape[1], width, x.dtype, philox_uniform)
    xw = F.linear(x, w_ih, bias)  # input projection for all steps at once
    return recurrence_reference(xw, h0, c0, w_hh, w_hr, spec, noise, lengths, record)
