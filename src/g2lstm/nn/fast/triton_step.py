"""The fused pointwise part of one G2-LSTM step in Triton: CUDA, or CPU under the interpreter.

Same contract as the C++ CPU kernel (``csrc/g2lstm_cpu.cpp``): :func:`forward_step` and
:func:`backward_step` take the same arguments in the same order and write into the buffers
they are given. Per step the recurrence does its GEMM (cuBLAS) and then one launch of these
kernels instead of ~9 ATen pointwise kernels. The math (paper Eqs. 11-16, ``shared/docs/
paper.md`` §1.5), on the ``(N, 4H)`` pre-activations ``a = pre + hw`` (columns i, f, g, o;
the gate noise is already in ``pre``):

- gates i, f, o each have a kind: ``0`` SIG ``sigmoid(scale * a)`` (Eq. 13; with
  ``scale = 1/tau`` the noisy gates of Eqs. 11-12), ``1`` HARD ``1[a >= 0]`` with zero
  gradient, ``2`` ST ``1[a >= 0]`` forward and the gradient of ``sigmoid(scale * a)``
  (straight-through; the sigmoid is kept in a side buffer ``s``, one ``H``-wide column block
  per ST gate in i, f, o order);
- ``g = tanh(a)`` (Eq. 14), ``c' = f c + i g`` (Eq. 15), ``h' = o tanh(c')`` (Eq. 16);
- rows whose mask entry is false (``t >= length``) keep their state and output 0.

Each program handles one tile of ``BLOCK_R`` rows by ``BLOCK_H`` hidden columns and reads the
four gate columns of its elements, so a step is one pass over memory. Gate kinds, scales and
which optional buffers exist are ``tl.constexpr``: one compilation per gate configuration,
dtype and tile. float32 and float64 compute in their own precision; float16 and bfloat16 are
loaded, computed in float32 and stored back in their own dtype.

The launchers allocate nothing, never synchronise with the host and read no tensor value,
so a loop of them can be captured in a CUDA graph (compile them with one eager step first).

``triton`` is optional (extra ``triton``); without it this module still imports and
:func:`available` says why it cannot run. Kernels run compiled on CUDA tensors; on CPU
tensors they run only under Triton's interpreter, which needs ``TRITON_INTERPRET=1`` in the
environment when this module is imported or reloaded, and while the kernels run (the kernels
call no ``@triton.jit`` function of Triton's library, so when triton itself was imported does
not matter; the tests' ``triton_interpreter`` fixture reloads this module so).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from g2lstm.errors import ConfigError, ShapeError

try:
    import triton
    import triton.language as tl
    from triton.runtime.jit import JITFunction
except ImportError as _e:  # optional: the ATen and C++ steps need none of it
    triton = tl = JITFunction = None  # type: ignore[assignment]
    _IMPORT_ERROR = f"triton is not installed ({_e}); pip install 'g2lstm[triton]'"
else:
    _IMPORT_ERROR = ""

__all__ = [
    "DTYPES",
    "available",
    "backward_step",
    "forward_step",
    "interpreting",
    "unavailable_reason",
]

#: dtypes the kernels take (float16/bfloat16 are computed in float32)
DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)

_SIG, _HARD, _ST = 0, 1, 2
_MAX_TILE = 512  # elements per program: 4 per thread at 4 warps
_INT32_LIMIT = 2**31


def _jit(fn):
    return fn if triton is None else triton.jit(fn)


# ----------------------------------------------------------------------------- kernels


@_jit
def _tanh(x, CUT: tl.constexpr):
    # tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|): finite for every x (e <= 1),
    # NaN stays NaN. Below |x| < CUT (2^-3 in float32, 2^-6 in float64) the odd Taylor
    # polynomial x (1 - x^2/3 (1 - 2x^2/5 (1 - 17x^2/42))) replaces it, which keeps the
    # relative error small where 1 - e cancels. Integer constants: exact in any precision.
    ax = tl.abs(x)
    e = tl.exp(-2.0 * ax)
    t = (1.0 - e) / (1.0 + e)
    x2 = ax * ax
    p = ax * (1.0 - x2 / 3.0 * (1.0 - x2 * 2.0 / 5.0 * (1.0 - x2 * 17.0 / 42.0)))
    t = tl.where(ax < CUT, p, t)
    return tl.where(x < 0, -t, t)


@_jit
def _sigmoid(x):
    # 1 / (1 + exp(-x)): 0 for x -> -inf, 1 for x -> +inf, NaN stays NaN. Written here rather
    # than tl.sigmoid, a @triton.jit function of Triton's library: that one is compiled or
    # interpreted as TRITON_INTERPRET was when triton was imported, these as when this module
    # was, so reloading this module alone switches every kernel to the interpreter.
    return 1.0 / (1.0 + tl.exp(-x))


@_jit
def _scaled(a, SCALE: tl.constexpr):
    # a * SCALE with SCALE materialised in a's own dtype (exact 1/tau in float64)
    if SCALE != 1.0:
        a = a * tl.full(a.shape, SCALE, a.dtype)
    return a


@_jit
def _preact(PRE, HW, off, ok, CDT: tl.constexpr):
    x = tl.load(PRE + off, mask=ok, other=0.0).to(CDT)
    return x + tl.load(HW + off, mask=ok, other=0.0).to(CDT)


@_jit
def _gate(a, s_ptrs, ok, KIND: tl.constexpr, SCALE: tl.constexpr, STORE_S: tl.constexpr):
    # Activation of gate i, f or o: SIG sigmoid(scale a) (Eqs. 11-13, noise already in a),
    # HARD 1[a >= 0], ST 1[a >= 0] with sigmoid(scale a) stored for the backward.
    if KIND == 0:
        y = _sigmoid(_scaled(a, SCALE))
    else:
        if KIND == 2 and STORE_S:
            s = _sigmoid(_scaled(a, SCALE))
            tl.store(s_ptrs, s.to(s_ptrs.dtype.element_ty), mask=ok)
        y = tl.where(a >= 0, 1.0, 0.0).to(a.dtype)  # NaN -> 0, like torch.ge
    return y


@_jit
def _gate_grad(d, y, s_ptrs, ok, KIND: tl.constexpr, SCALE: tl.constexpr, CDT: tl.constexpr):
    # dL/da of gate y = act(a) given d = dL/dy: sigmoid' = y (1 - y), times the scale; the
    # straight-through gate uses its stored sigmoid s; a hard gate passes no gradient.
    if KIND == 1:
        r = tl.full(d.shape, 0.0, d.dtype)
    else:
        if KIND == 2:
            y = tl.load(s_ptrs, mask=ok, other=0.0).to(CDT)
        r = _scaled(d * y * (1.0 - y), SCALE)
    return r


@_jit
def _forward_kernel(
    PRE, HW, C_PREV, H_PREV, C_OUT, H_OUT, Y_OUT, S_OUT, MASK,
    n_rows, hid,
    KIND_I: tl.constexpr, KIND_F: tl.constexpr, KIND_O: tl.constexpr,
    SCALE_I: tl.constexpr, SCALE_F: tl.constexpr, SCALE_O: tl.constexpr,
    SCOL_I: tl.constexpr, SCOL_F: tl.constexpr, SCOL_O: tl.constexpr, N_ST: tl.constexpr,
    HAS_MASK: tl.constexpr, HAS_Y: tl.constexpr, HAS_S: tl.constexpr,
    KEEP_GATES: tl.constexpr, CDT: tl.constexpr, CUT: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    ok = (rows < n_rows)[:, None] & (cols < hid)[None, :]
    e = rows[:, None] * hid + cols[None, :]  # (N, H) element
    gi = rows[:, None] * (4 * hid) + cols[None, :]  # its gate i column; f, g, o: + H, 2H, 3H
    s_off = rows[:, None] * (N_ST * hid) + cols[None, :]

    a_i = _preact(PRE, HW, gi, ok, CDT)  # x W_ih^T (+ noise) + h W_hh^T + b, gate by gate
    a_f = _preact(PRE, HW, gi + hid, ok, CDT)
    a_g = _preact(PRE, HW, gi + 2 * hid, ok, CDT)
    a_o = _preact(PRE, HW, gi + 3 * hid, ok, CDT)
    i = _gate(a_i, S_OUT + s_off + SCOL_I * hid, ok, KIND_I, SCALE_I, HAS_S)  # Eq. 11
    f = _gate(a_f, S_OUT + s_off + SCOL_F * hid, ok, KIND_F, SCALE_F, HAS_S)  # Eq. 12
    g = _tanh(a_g, CUT)  # Eq. 14
    o = _gate(a_o, S_OUT + s_off + SCOL_O * hid, ok, KIND_O, SCALE_O, HAS_S)  # Eq. 13
    c_old = tl.load(C_PREV + e, mask=ok, other=0.0)
    c = f * c_old.to(CDT) + i * g  # Eq. 15
    h = o * _tanh(c, CUT)  # Eq. 16
    io = C_OUT.dtype.element_ty
    if KEEP_GATES:  # the activated gates replace the pre-activations (saved for backward)
        tl.store(PRE + gi, i.to(io), mask=ok)
        tl.store(PRE + gi + hid, f.to(io), mask=ok)
        tl.store(PRE + gi + 2 * hid, g.to(io), mask=ok)
        tl.store(PRE + gi + 3 * hid, o.to(io), mask=ok)
    if HAS_MASK:  # t >= length: state kept, output 0 (as the reference loop)
        on = (tl.load(MASK + rows, mask=rows < n_rows, other=0) != 0)[:, None]
        h_old = tl.load(H_PREV + e, mask=ok, other=0.0)
        tl.store(C_OUT + e, tl.where(on, c.to(io), c_old), mask=ok)
        tl.store(H_OUT + e, tl.where(on, h.to(io), h_old), mask=ok)
        if HAS_Y:
            tl.store(Y_OUT + e, tl.where(on, h, 0.0).to(io), mask=ok)
    else:
        tl.store(C_OUT + e, c.to(io), mask=ok)
        tl.store(H_OUT + e, h.to(io), mask=ok)
        if HAS_Y:
            tl.store(Y_OUT + e, h.to(io), mask=ok)


@_jit
def _backward_kernel(
    GATES, C_T, C_PREV, DH, DY, DC, DGATES, S, MASK,
    n_rows, hid,
    KIND_I: tl.constexpr, KIND_F: tl.constexpr, KIND_O: tl.constexpr,
    SCALE_I: tl.constexpr, SCALE_F: tl.constexpr, SCALE_O: tl.constexpr,
    SCOL_I: tl.constexpr, SCOL_F: tl.constexpr, SCOL_O: tl.constexpr, N_ST: tl.constexpr,
    HAS_MASK: tl.constexpr, HAS_DY: tl.constexpr, CDT: tl.constexpr, CUT: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    ok = (rows < n_rows)[:, None] & (cols < hid)[None, :]
    e = rows[:, None] * hid + cols[None, :]
    gi = rows[:, None] * (4 * hid) + cols[None, :]
    s_off = rows[:, None] * (N_ST * hid) + cols[None, :]

    i = tl.load(GATES + gi, mask=ok, other=0.0).to(CDT)
    f = tl.load(GATES + gi + hid, mask=ok, other=0.0).to(CDT)
    g = tl.load(GATES + gi + 2 * hid, mask=ok, other=0.0).to(CDT)
    o = tl.load(GATES + gi + 3 * hid, mask=ok, other=0.0).to(CDT)
    d_h = tl.load(DH + e, mask=ok, other=0.0).to(CDT)  # dL/dh_t from step t+1 ...
    if HAS_DY:
        d_h += tl.load(DY + e, mask=ok, other=0.0).to(CDT)  # ... plus from the output y_t
    tc = _tanh(tl.load(C_T + e, mask=ok, other=0.0).to(CDT), CUT)
    # dL/dc_t in total: from c_{t+1} (dc, Eq. 15) and from h_t (Eq. 16)
    d_c = tl.load(DC + e, mask=ok, other=0.0).to(CDT) + d_h * o * (1.0 - tc * tc)
    c_prev = tl.load(C_PREV + e, mask=ok, other=0.0).to(CDT)
    d_i = _gate_grad(d_c * g, i, S + s_off + SCOL_I * hid, ok, KIND_I, SCALE_I, CDT)
    d_f = _gate_grad(d_c * c_prev, f, S + s_off + SCOL_F * hid, ok, KIND_F, SCALE_F, CDT)
    d_g = d_c * i * (1.0 - g * g)  # tanh' (Eq. 14)
    d_o = _gate_grad(d_h * tc, o, S + s_off + SCOL_O * hid, ok, KIND_O, SCALE_O, CDT)
    d_c = d_c * f  # dL/dc_{t-1} through Eq. 15
    io = DGATES.dtype.element_ty
    keep = ok
    if HAS_MASK:  # t >= length: no gradient into the gates, dc passes through unchanged
        on = (tl.load(MASK + rows, mask=rows < n_rows, other=0) != 0)[:, None]
        d_i = tl.where(on, d_i, 0.0)
        d_f = tl.where(on, d_f, 0.0)
        d_g = tl.where(on, d_g, 0.0)
        d_o = tl.where(on, d_o, 0.0)
        keep = ok & on
    tl.store(DGATES + gi, d_i.to(io), mask=ok)
    tl.store(DGATES + gi + hid, d_f.to(io), mask=ok)
    tl.store(DGATES + gi + 2 * hid, d_g.to(io), mask=ok)
    tl.store(DGATES + gi + 3 * hid, d_o.to(io), mask=ok)
    tl.store(DC + e, d_c.to(io), mask=keep)


# ----------------------------------------------------------------------------- availability


def interpreting() -> bool:
    """Whether the kernels were made by Triton's interpreter (``TRITON_INTERPRET=1`` at import)."""
    return triton is not None and not isinstance(_forward_kernel, JITFunction)


def unavailable_reason(x: Tensor | None = None) -> str:
    """Why the kernels cannot run (on tensors like ``x``, if given), or ``""`` when they can."""
    if triton is None:
        return _IMPORT_ERROR
    if x is None:
        return ""
    if x.dtype not in DTYPES:
        return f"the Triton step takes float32, float64, bfloat16 or float16, not {x.dtype}"
    if x.device.type == "cuda":
        if interpreting():
            return "CUDA tensors need compiled kernels; TRITON_INTERPRET=1 is set"
        return ""
    if x.device.type == "cpu":
        if interpreting():
            return ""
        return (
            "CPU tensors run only under Triton's interpreter: set TRITON_INTERPRET=1 before "
            "g2lstm.nn.fast.triton_step is imported"
        )
    return f"the Triton step runs on CUDA (or CPU under the interpreter), not {x.device.type}"


def available(x: Tensor | None = None) -> bool:
    """Whether the kernels can run (on tensors like ``x``, if given): see
    :func:`unavailable_reason`."""
    return not unavailable_reason(x)


# ----------------------------------------------------------------------------- launchers


def _gate_config(kinds: Sequence[int], scales: Sequence[float]) -> dict:
    """The kernels' constexpr gate arguments from ``kinds``/``scales`` (i, f, o)."""
    if len(kinds) != 3 or len(scales) != 3:
        raise ConfigError(f"kinds/scales: 3 entries each (gates i, f, o), got {kinds}, {scales}")
    cfg: dict = {}
    n_st = 0
    for name, k, s in zip("IFO", kinds, scales):
        k = int(k)
        if k not in (_SIG, _HARD, _ST):
            raise ConfigError(
                f"gate kind must be 0 (sigmoid), 1 (hard) or 2 (straight-through), got {k}"
            )
        cfg[f"KIND_{name}"], cfg[f"SCALE_{name}"] = k, float(s)
        cfg[f"SCOL_{name}"] = n_st if k == _ST else 0
        n_st += k == _ST
    cfg["N_ST"] = n_st
    return cfg


def _check(t: Tensor, ref: Tensor, rows: int, cols: int, name: str) -> None:
    if (
        t.dim() != 2
        or t.shape[0] != rows
        or t.shape[1] != cols
        or not t.is_contiguous()
        or t.dtype != ref.dtype
        or t.device != ref.device
    ):
        raise ShapeError(
            f"{name}: expected a contiguous ({rows}, {cols}) {ref.dtype} tensor on {ref.device}, "
            f"got {tuple(t.shape)} {t.dtype} on {t.device}"
            + ("" if t.dim() != 2 or t.is_contiguous() else " (not contiguous)")
        )


def _states(t: Tensor, name: str) -> tuple[int, int]:
    """``(N, H)`` of the state tensor ``t`` that every other argument is checked against."""
    if t.dim() != 2 or not t.is_contiguous():
        raise ShapeError(f"{name}: expected a contiguous (N, H) tensor, got {tuple(t.shape)}")
    return t.shape[0], t.shape[1]


def _mask_arg(mask: Tensor | None, ref: Tensor, rows: int) -> Tensor:
    if mask is None:
        return ref  # never read (HAS_MASK=False)
    if (
        mask.dtype != torch.bool
        or mask.numel() != rows
        or not mask.is_contiguous()
        or mask.device != ref.device
    ):
        raise ShapeError(
            f"mask: expected a contiguous bool tensor of {rows} entries on {ref.device}, "
            f"got {tuple(mask.shape)} {mask.dtype} on {mask.device}"
        )
    return mask.view(torch.uint8)  # same bytes; loads as 0/1 on every Triton version


def _launch_args(ref: Tensor) -> dict:
    """Tile, warps, compute dtype and tanh cutoff for ``(N, H)`` states ``ref``."""
    why = unavailable_reason(ref)
    if why:
        raise RuntimeError(f"g2lstm Triton step: {why}")
    rows, hid = ref.shape
    if rows * 4 * hid >= _INT32_LIMIT:
        raise ShapeError(f"Triton step: N * 4H = {rows * 4 * hid} must be below 2**31")
    block_h = min(256, max(16, triton.next_power_of_2(hid)))
    block_r = max(1, min(triton.next_power_of_2(rows), _MAX_TILE // block_h))
    f64 = ref.dtype == torch.float64
    return {
        "grid": (triton.cdiv(rows, block_r), triton.cdiv(hid, block_h)),
        "BLOCK_R": block_r,
        "BLOCK_H": block_h,
        "num_warps": max(1, min(4, block_r * block_h // 128)),
        "CDT": tl.float64 if f64 else tl.float32,
        "CUT": 2.0**-6 if f64 else 2.0**-3,
    }


def _run(kernel, ref: Tensor, launch: dict, *args, **kwargs) -> None:
    grid = launch.pop("grid")
    if ref.device.type == "cuda" and ref.device.index != torch.cuda.current_device():
        with torch.cuda.device(ref.device):
            kernel[grid](*args, **kwargs, **launch)
    else:
        kernel[grid](*args, **kwargs, **launch)


def forward_step(
    pre: Tensor,
    hw: Tensor,
    c_prev: Tensor,
    h_prev: Tensor | None,
    c_out: Tensor,
    h_out: Tensor,
    y_out: Tensor | None,
    s_out: Tensor | None,
    mask: Tensor | None,
    kinds: Sequence[int],
    scales: Sequence[float],
    keep_gates: bool,
) -> None:
    """One fused forward step (Eqs. 11-16), written into the given buffers.

    Args:
        pre: ``(N, 4H)`` ``x_t W_ih^T`` (+ noise) of this step; overwritten with the activated
            gates ``i, f, g, o`` when ``keep_gates``.
        hw: ``(N, 4H)`` ``h_{t-1} W_hh^T + b``.
        c_prev: ``(N, H)`` cell state before the step.
        h_prev: ``(N, H)`` hidden state before the step; needed with ``mask`` (kept there).
        c_out, h_out: ``(N, H)`` new states; ``c_out`` may be ``c_prev`` and ``h_out`` may be
            ``h_prev`` (every element is read before it is written, by the same program).
        y_out: ``(N, H)`` output (``h`` where the mask is on, 0 elsewhere) or ``None``.
        s_out: ``(N, #ST * H)`` straight-through sigmoids (needed with ``keep_gates`` when a
            gate is ST), or ``None``.
        mask: ``(N,)`` or ``(N, 1)`` bool, false for rows past their length, or ``None``.
        kinds, scales: per gate i, f, o: kind 0 sigmoid, 1 hard, 2 straight-through, and the
            factor ``1/tau`` on the pre-activation.
        keep_gates: store the activated gates into ``pre`` (and the ST sigmoids into ``s_out``).

    All tensors contiguous, on one device, of one dtype in :data:`DTYPES`.
    """
    cfg = _gate_config(kinds, scales)
    rows, hid = _states(c_prev, "c_prev")
    launch = _launch_args(c_prev)
    for t, cols, name in ((pre, 4 * hid, "pre"), (hw, 4 * hid, "hw"), (c_out, hid, "c_out"),
                          (h_out, hid, "h_out")):  # fmt: skip
        _check(t, c_prev, rows, cols, name)
    if h_prev is not None:
        _check(h_prev, c_prev, rows, hid, "h_prev")
    if y_out is not None:
        _check(y_out, c_prev, rows, hid, "y_out")
    if cfg["N_ST"] and keep_gates and s_out is None:
        raise ConfigError("forward_step: straight-through gates need s_out when keep_gates")
    if s_out is not None:
        _check(s_out, c_prev, rows, cfg["N_ST"] * hid, "s_out")
    if mask is not None and h_prev is None:
        raise ConfigError("forward_step: a mask needs h_prev (masked rows keep it)")
    _run(
        _forward_kernel, c_prev, launch,
        pre, hw, c_prev, c_prev if h_prev is None else h_prev, c_out, h_out,
        c_out if y_out is None else y_out, c_out if s_out is None else s_out,
        _mask_arg(mask, c_prev, rows), rows, hid,
        HAS_MASK=mask is not None, HAS_Y=y_out is not None, HAS_S=s_out is not None,
        KEEP_GATES=bool(keep_gates), **cfg,
    )  # fmt: skip


def backward_step(
    gates: Tensor,
    c_t: Tensor,
    c_prev: Tensor,
    dh: Tensor,
    dy: Tensor | None,
    dc: Tensor,
    dgates: Tensor,
    s: Tensor | None,
    mask: Tensor | None,
    kinds: Sequence[int],
    scales: Sequence[float],
) -> None:
    """One fused backward step: ``dgates`` and ``dc`` written in place.

    Args:
        gates: ``(N, 4H)`` activated gates of step ``t`` (``pre`` after a ``keep_gates``
            forward).
        c_t, c_prev: ``(N, H)`` cell states after and before step ``t``.
        dh: ``(N, H)`` ``dL/dh_t`` from step ``t + 1``; dy: ``(N, H)`` ``dL/dy_t`` added to
            it, or ``None``.
        dc: ``(N, H)`` ``dL/dc_t`` from later steps, overwritten with ``dL/dc_{t-1}``
            (left as it is in masked rows).
        dgates: ``(N, 4H)`` output ``dL/da_t`` (zero in masked rows); may be ``gates``.
        s: ``(N, #ST * H)`` the ST sigmoids of step ``t`` (needed when a gate is ST) or ``None``.
        mask: ``(N,)`` or ``(N, 1)`` bool or ``None``.
        kinds, scales: as in :func:`forward_step`.

    ``dh`` is only read, so the caller's ``dL/dh_{t-1}`` GEMM may write into another buffer.
    """
    cfg = _gate_config(kinds, scales)
    rows, hid = _states(c_t, "c_t")
    launch = _launch_args(c_t)
    for t, cols, name in ((gates, 4 * hid, "gates"), (dgates, 4 * hid, "dgates"), (c_t, hid, "c_t"),
                          (c_prev, hid, "c_prev"), (dh, hid, "dh"), (dc, hid, "dc")):  # fmt: skip
        _check(t, c_t, rows, cols, name)
    if dy is not None:
        _check(dy, c_t, rows, hid, "dy")
    if cfg["N_ST"] and s is None:
        raise ConfigError("backward_step: straight-through gates need s")
    if s is not None:
        _check(s, c_t, rows, cfg["N_ST"] * hid, "s")
    _run(
        _backward_kernel, c_t, launch,
        gates, c_t, c_prev, dh, dh if dy is None else dy, dc, dgates,
        c_t if s is None else s, _mask_arg(mask, c_t, rows), rows, hid,
        HAS_MASK=mask is not None, HAS_DY=dy is not None, **cfg,
    )  # fmt: skip
