"""The fused pointwise part of one G2-LSTM step in Triton: CUDA, or CPU under the interpreter.

Same contract as the C++ CPU kernel (``csrc/g2lstm_cpu.cpp``): :func:`forward_step` and
:func:`backward_step` take the same arguments in the same order and write into the buffers
they are given. Per step the recurrence does its GEMM (cuBLAS) and then one launch of these
kernels instead of ~9 ATen pointwise kernels. The kernels and their math (paper Eqs. 11-16)
are in :mod:`g2lstm.nn.fast.triton_kernels`; this module checks the arguments, picks the
tile and launches them.

The launchers allocate nothing, never synchronise with the host and read no tensor value,
so a loop of them can be captured in a CUDA graph (compile them with one eager step first).

``triton`` is optional (extra ``triton``); without it this module still imports and
:func:`available` says why it cannot run. Kernels run compiled on CUDA tensors; on CPU
tensors they run only under Triton's interpreter, which needs ``TRITON_INTERPRET=1`` in the
environment when :mod:`~g2lstm.nn.fast.triton_kernels` is imported or reloaded, and while
the kernels run (the kernels call no ``@triton.jit`` function of Triton's library, so when
triton itself was imported does not matter; the tests' ``triton_interpreter`` fixture
reloads the kernels module so).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from g2lstm.errors import ConfigError, ShapeError
from g2lstm.nn.fast import triton_kernels as kernels

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

_MAX_TILE = 512  # elements per program: 4 per thread at 4 warps
_INT32_LIMIT = 2**31


# ----------------------------------------------------------------------------- availability


def interpreting() -> bool:
    """Whether the kernels were made by Triton's interpreter (``TRITON_INTERPRET=1`` when
    :mod:`~g2lstm.nn.fast.triton_kernels` was imported)."""
    return kernels.interpreting()


def unavailable_reason(x: Tensor | None = None) -> str:
    """Why the kernels cannot run (on tensors like ``x``, if given), or ``""`` when they can."""
    if kernels.triton is None:
        return kernels.IMPORT_ERROR
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
            "g2lstm.nn.fast.triton_kernels is imported"
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
        if k not in (kernels.SIG, kernels.HARD, kernels.ST):
            raise ConfigError(
                f"gate kind must be 0 (sigmoid), 1 (hard) or 2 (straight-through), got {k}"
            )
        cfg[f"KIND_{name}"], cfg[f"SCALE_{name}"] = k, float(s)
        cfg[f"SCOL_{name}"] = n_st if k == kernels.ST else 0
        n_st += k == kernels.ST
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
    block_h = min(256, max(16, kernels.triton.next_power_of_2(hid)))
    block_r = max(1, min(kernels.triton.next_power_of_2(rows), _MAX_TILE // block_h))
    f64 = ref.dtype == torch.float64
    return {
        "grid": (kernels.triton.cdiv(rows, block_r), kernels.triton.cdiv(hid, block_h)),
        "BLOCK_R": block_r,
        "BLOCK_H": block_h,
        "num_warps": max(1, min(4, block_r * block_h // 128)),
        "CDT": kernels.tl.float64 if f64 else kernels.tl.float32,
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
        kernels.forward_kernel, c_prev, launch,
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
        kernels.backward_kernel, c_t, launch,
        gates, c_t, c_prev, dh, dh if dy is None else dy, dc, dgates,
        c_t if s is None else s, _mask_arg(mask, c_t, rows), rows, hid,
        HAS_MASK=mask is not None, HAS_DY=dy is not None, **cfg,
    )  # fmt: skip
