"""The Triton kernels of the fused G2-LSTM step (the math; :mod:`g2lstm.nn.fast.triton_step`
checks the arguments and launches them).

:func:`forward_kernel` and :func:`backward_kernel` compute paper Eqs. 11-16
(``shared/docs/paper.md`` §1.5) on the ``(N, 4H)`` pre-activations ``a = pre + hw``
(columns i, f, g, o; the gate noise is already in ``pre``):

- gates i, f, o each have a kind: :data:`SIG` ``sigmoid(scale * a)`` (Eq. 13; with
  ``scale = 1/tau`` the noisy gates of Eqs. 11-12), :data:`HARD` ``1[a >= 0]`` with zero
  gradient, :data:`ST` ``1[a >= 0]`` forward and the gradient of ``sigmoid(scale * a)``
  (straight-through; the sigmoid is kept in a side buffer ``s``, one ``H``-wide column block
  per ST gate in i, f, o order);
- ``g = tanh(a)`` (Eq. 14), ``c' = f c + i g`` (Eq. 15), ``h' = o tanh(c')`` (Eq. 16);
- rows whose mask entry is false (``t >= length``) keep their state and output 0.

Each program handles one tile of ``BLOCK_R`` rows by ``BLOCK_H`` hidden columns and reads the
four gate columns of its elements, so a step is one pass over memory. Gate kinds, scales and
which optional buffers exist are ``tl.constexpr``: one compilation per gate configuration,
dtype and tile. float32 and float64 compute in their own precision; float16 and bfloat16 are
loaded, computed in float32 and stored back in their own dtype.

``triton`` is optional (extra ``triton``): without it this module imports, ``triton`` is
``None`` and :data:`IMPORT_ERROR` says why. Triton decides when a kernel is decorated whether
it is compiled or interpreted (``TRITON_INTERPRET=1``): :func:`interpreting` tells which this
import made; reloading this module switches (the tests' ``triton_interpreter`` fixture does).
"""

from __future__ import annotations

try:
    import triton
    import triton.language as tl
    from triton.runtime.jit import JITFunction
except ImportError as _e:  # optional: the ATen and C++ steps need none of it
    triton = tl = JITFunction = None  # type: ignore[assignment]
    IMPORT_ERROR = f"triton is not installed ({_e}); pip install 'g2lstm[triton]'"
else:
    IMPORT_ERROR = ""

__all__ = ["HARD", "IMPORT_ERROR", "SIG", "ST", "backward_kernel", "forward_kernel", "interpreting"]

#: gate kinds (the kernels' ``KIND_*`` arguments, as the C++ kernel's codes)
SIG, HARD, ST = 0, 1, 2


def _jit(fn):
    return fn if triton is None else triton.jit(fn)


def interpreting() -> bool:
    """Whether the kernels were made by Triton's interpreter (``TRITON_INTERPRET=1`` at import)."""
    return triton is not None and not isinstance(forward_kernel, JITFunction)


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
def forward_kernel(
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
def backward_kernel(
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
