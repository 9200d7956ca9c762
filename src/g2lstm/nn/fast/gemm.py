"""Matrix products of the fast recurrence, on oneDNN (CPU float32) or ``torch.mm`` (elsewhere).

On CPU, float32 ``torch.mm`` calls MKL sgemm, which at the LSTM's shapes is 1.3-2x slower
than oneDNN on AMD CPUs (MKL runs its AVX2 code there), the library ``torch.nn.LSTM`` itself
uses (``shared/docs/perf.md`` §2.5). The ``"onednn"`` route sends the products through
``torch.ops.mkldnn._linear_pointwise``, a *private* PyTorch op: it is probed once (present,
callable, correct) before first use, and every function here falls back to the ``"torch"``
route (``torch.mm``/``addmm``: MKL on CPU, cuBLAS on GPU) when the probe fails or the tensors
are not CPU float32.

The per-step products ``h W^T`` (forward) and ``dG_t W`` (backward) reuse one weight ``T``
times: :class:`StepGemm` packs it once per call into the blocked layout of the library that
runs it, ``torch.ops.mkldnn._reorder_linear_weight`` on the ``"onednn"`` route (what
oneDNN's own LSTM primitive does; 1.2-1.6x faster per step than the plain layout on AMD EPYC)
and MKL's packed-GEMM API (``torch.ops.mkl._mkl_reorder_linear_weight`` / ``_mkl_linear``) on
the ``"torch"`` route; both are private ops, probed once like the first.

Which route is faster depends on the CPU, the shape and the thread count, so
:mod:`g2lstm.nn.fast.routes` *measures* it, once per shape, with
:mod:`g2lstm.nn.fast.autotune` (``$G2LSTM_GEMM_ROUTE`` forces one, ``$G2LSTM_AUTOTUNE=0``
takes :data:`DEFAULT_ROUTE`), and whether the backward packs its per-step weight.

Every function computes a plain matrix product; the routes differ only in rounding.
"""

from __future__ import annotations

import functools
import sys
import weakref
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "DEFAULT_ROUTE",
    "ROUTES",
    "StepGemm",
    "linear",
    "mkl_packed_available",
    "onednn_available",
    "onednn_packed_available",
    "transpose",
    "weight_grad",
]

#: ``"onednn"``: private oneDNN inner product (CPU float32); ``"torch"``: ``torch.mm``.
ROUTES = ("onednn", "torch")

#: the CPU float32 route when none is measured (``$G2LSTM_AUTOTUNE=0``, no shape given):
#: oneDNN, the library of ``torch.nn.LSTM``, which picks its code by the CPU's vector ISA
#: (MKL picks it by vendor and runs AVX2 code on AMD)
DEFAULT_ROUTE = "onednn"


def _probe(what: str, check: Callable[[], bool], instead: str = "torch.mm") -> bool:
    """``check()``, where any exception or a ``False`` means "unavailable" (one notice)."""
    try:
        ok = bool(check())
    except Exception as e:  # any failure of a private op means "do not use it"
        print(f"g2lstm: {what} unavailable ({type(e).__name__}); using {instead}", file=sys.stderr)
        return False
    if not ok:
        print(f"g2lstm: {what} gave wrong results in its probe; using {instead}", file=sys.stderr)
    return ok


def _tiny(*shapes: tuple[int, ...]) -> list[Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(*shape, generator=gen) for shape in shapes]


def _close(a: Tensor, b: Tensor) -> bool:
    return torch.allclose(a, b, atol=1e-5)


@functools.lru_cache(maxsize=1)
def onednn_available() -> bool:
    """Whether ``torch.ops.mkldnn._linear_pointwise`` exists here and computes ``x W^T + b``.

    Checked once per process on tiny tensors. A failure prints a one-line notice on stderr and
    the fast path then uses ``torch.mm`` (slower on CPU, same results up to rounding).
    """

    def check() -> bool:
        if not torch.backends.mkldnn.is_available():
            return False
        op = _op()
        x, w, b, other = _tiny((3, 5), (4, 5), (4,), (3, 4))
        return (
            _close(op(x, w, b, "none", [], ""), torch.addmm(b, x, w.t()))
            and _close(op.binary(x, other, w, None, "add"), other + x @ w.t())
            # weight-gradient layout: transposed (non-contiguous) operands
            and _close(op(x.t().contiguous(), other.t(), None, "none", [], ""), x.t() @ other)
        )

    return _probe("oneDNN GEMM", check)


@functools.lru_cache(maxsize=1)
def onednn_packed_available() -> bool:
    """Whether oneDNN's weight packing (``torch.ops.mkldnn._reorder_linear_weight``) works.

    The packed weight must give ``x W^T + b`` through ``_linear_pointwise`` (plain and with
    an added tensor) for any number of rows, also when packed from a transposed view.
    """

    def check() -> bool:
        if not onednn_available():
            return False
        op = _op()
        x, w, b, other = _tiny((3, 5), (4, 5), (4,), (3, 4))
        packed, packed_t = _onednn_pack()(w, 3), _onednn_pack()(w.t().contiguous().t(), 3)
        return (
            _close(op(x, packed, b, "none", [], ""), torch.addmm(b, x, w.t()))
            and _close(op(x[:2], packed_t, None, "none", [], ""), x[:2] @ w.t())
            and _close(op.binary(x, other, packed, b, "add"), torch.addmm(b, x, w.t()) + other)
        )

    return _probe("oneDNN weight packing", check, "oneDNN with unpacked weights")


@functools.lru_cache(maxsize=1)
def mkl_packed_available() -> bool:
    """Whether MKL's packed GEMM ops (``torch.ops.mkl``) exist here and compute ``x W^T``.

    Checked once per process; a failure prints a one-line notice and ``torch.mm`` is used.
    """

    def check() -> bool:
        reorder, mkl_linear = _mkl_ops()
        x, w = _tiny((3, 5), (4, 5))
        packed = reorder(w, 3)
        return _close(mkl_linear(x, packed, w, None, 3), x @ w.t()) and _close(
            mkl_linear(x[:2], packed, w, None, 3), x[:2] @ w.t()
        )

    return _probe("MKL packed GEMM", check, "torch.mm with unpacked weights")


def _mkl_ops():  # the private MKL ops, looked up at call time (a test replaces this function)
    return torch.ops.mkl._mkl_reorder_linear_weight, torch.ops.mkl._mkl_linear


def _onednn_pack():  # the private oneDNN packing op (a test replaces this function)
    return torch.ops.mkldnn._reorder_linear_weight


#: packed copies of weights for inference, ``id(w) -> (weakref to w, {(library, batch):
#: (version, data_ptr, packed)})``; an entry is dropped when its weight tensor is freed
_PACKED: dict[int, tuple[weakref.ref[Tensor], dict[tuple[str, int], tuple[int, int, Tensor]]]]
_PACKED = {}
_PACKED_PER_WEIGHT = 4  # (library, batch) pairs kept per weight (beam search shrinks its batch)


def _pack(w: Tensor, batch: int, library: str) -> Tensor:
    """``w`` packed for ``batch`` rows by ``library`` (``"mkl"`` or ``"onednn"``)."""
    return _mkl_ops()[0](w, batch) if library == "mkl" else _onednn_pack()(w, batch)


def _packed(w: Tensor, batch: int, library: str) -> Tensor:
    """:func:`_pack` of ``w``, reused while ``w`` is unchanged.

    A cached copy is used only if ``w`` is the same tensor object, its in-place version
    counter (bumped by every in-place write: optimiser steps, ``copy_``, ``load_state_dict``)
    and its storage address (changed by ``param.data = ...``) are as when it was packed.
    """
    key = (w._version, w.data_ptr())
    slot = _PACKED.get(id(w))
    if slot is None or slot[0]() is not w:
        ident = id(w)
        slot = (weakref.ref(w, lambda _ref: _PACKED.pop(ident, None)), {})
        _PACKED[ident] = slot
    entries = slot[1]
    hit = entries.get((library, batch))
    if hit is not None and hit[:2] == key:
        return hit[2]
    packed = _pack(w, batch, library)
    entries.pop((library, batch), None)
    while len(entries) >= _PACKED_PER_WEIGHT:
        entries.pop(next(iter(entries)))
    entries[(library, batch)] = (*key, packed)
    return packed


class StepGemm:
    """``x @ w.T + bias`` (optionally ``+ add``) for many ``x`` of ``batch`` rows, one ``w``.

    Args:
        w: ``(N, K)`` weight (a transposed view is fine), used as it is for the whole time
            loop (not copied on the plain ``torch.mm`` route, so it must not change meanwhile).
        batch: rows of every ``x``.
        route: ``"onednn"`` or ``"torch"``; for CPU float32 the weight is packed once, by
            oneDNN (:func:`onednn_packed_available`) or MKL (:func:`mkl_packed_available`).
        bias: ``(N,)`` or ``None``; adding it here instead of to the time-batched input
            projection saves a full pass over the ``(T, N, 4H)`` pre-activations.
        cache: keep the packed weight for later calls with the same ``w`` and ``batch``
            (inference: packing costs ~5% of a whole B20 T35 H650 forward); see
            :func:`_packed` for when a cached copy is reused.
        pack: ``False`` multiplies with ``w`` as it is (no packing: cheaper for short loops
            of small products; :func:`g2lstm.nn.fast.routes.backward_packing` measures when).
    """

    def __init__(
        self,
        w: Tensor,
        batch: int,
        route: str,
        bias: Tensor | None = None,
        *,
        cache: bool = False,
        pack: bool = True,
    ) -> None:
        self.w, self.batch, self.route, self.bias = w, batch, route, bias
        self.packed: Tensor | None = None
        self.library = ""  # who packed ``self.packed``: "mkl" or "onednn"
        if not pack or w.device.type != "cpu" or w.dtype != torch.float32 or batch <= 0:
            return
        if route == "onednn" and onednn_packed_available():
            self.library = "onednn"
        elif route == "torch" and mkl_packed_available():
            self.library = "mkl"
            self.w = w = w.contiguous()  # ``_mkl_linear`` takes the original weight too
        else:
            return
        self.packed = _packed(w, batch, self.library) if cache else _pack(w, batch, self.library)

    def __call__(self, x: Tensor, add: Tensor | None = None) -> Tensor:
        """``x (batch, K) @ w.T + bias`` (+ ``add (batch, N)``) as a new tensor."""
        if self.library == "mkl":
            out = _mkl_ops()[1](x, self.packed, self.w, self.bias, self.batch)
            return out if add is None else out.add_(add)
        w = self.w if self.packed is None else self.packed
        if add is None:
            return linear(x, w, self.bias, self.route)
        if self.route == "onednn":
            return _op().binary(x, add, w, self.bias, "add")
        out = torch.addmm(add, x, w.t())
        return out if self.bias is None else out.add_(self.bias)


def transpose(w: Tensor, block: int = 512, out: Tensor | None = None) -> Tensor:
    """``w.T`` as a contiguous tensor, ``w (N, K)`` -> ``(K, N)``, new or written into ``out``.

    Copied ``block`` rows at a time: on CPU this is about twice as fast as
    ``w.t().contiguous()`` for the LSTM's weight matrices (the chunks stay in cache).
    ``out`` (``(K, N)``, rows may be strided, e.g. a column slice) receives the result.
    """
    if out is None:
        if w.dim() != 2 or w.device.type != "cpu" or w.shape[0] <= block:
            return w.t().contiguous()
        out = w.new_empty(w.shape[1], w.shape[0])
    for i in range(0, w.shape[0], block):
        out[:, i : i + block] = w[i : i + block].t()
    return out


def _op():  # the private op, looked up at call time (a test replaces this function)
    return torch.ops.mkldnn._linear_pointwise


def linear(x: Tensor, w: Tensor, bias: Tensor | None, route: str) -> Tensor:
    """``x @ w.T + bias``: ``x (M, K)``, ``w (N, K)``, ``bias (N,)`` or ``None`` -> ``(M, N)``.

    ``w`` may be a transposed view (``B.T`` of a contiguous ``B (K, N)``): both routes read
    it in place, so ``a @ B`` is ``linear(a, B.t(), None, route)`` without copying ``B``.
    """
    if route == "onednn":
        return _op()(x, w, bias, "none", [], "")
    if bias is None:
        return torch.mm(x, w.t())
    return torch.addmm(bias, x, w.t())


def weight_grad(
    grad: Tensor,
    inp: Tensor | None,
    route: str,
    grad_t: Tensor | None = None,
    inp_t: Tensor | None = None,
) -> Tensor:
    """``grad.T @ inp`` for ``grad (M, N)`` and ``inp (M, K)`` -> ``(N, K)``, a weight gradient.

    ``grad_t`` / ``inp_t``, if given, are ``grad.T`` / ``inp.T`` (``(N, M)`` / ``(K, M)``);
    ``inp`` may then be ``None``. The oneDNN route reduces over the contiguous dimension of
    its first operand, so it needs ``inp.T`` contiguous (copied here if ``inp_t`` is not
    given); the second operand is read through the transposed view ``grad.T`` without a copy
    (no need to pass ``grad_t``: copying the ``(T N, 4H)`` gradients costs more than it
    saves). The result is contiguous.
    """
    if route == "onednn":
        gt = grad.t() if grad_t is None else grad_t
        it = transpose(inp) if inp_t is None else inp_t  # type: ignore[arg-type]
        # inner product reducing over M: (K, M) x (N, M)^T = (K, N) = result^T, transposed
        # blockwise (faster than the plain copy autograd would make of a transposed view)
        return transpose(_op()(it, gt, None, "none", [], ""))
    inp = inp if inp is not None else inp_t.t()  # type: ignore[union-attr]
    if grad.device.type == "cpu":
        # MKL reduces into (K, N) faster than into (N, K) at the LSTM's shapes (AMD EPYC,
        # AVX2: 362 vs 547 ms for dW_hh at B80 T70 H1150); the blockwise transpose is cheap
        return transpose(torch.mm(inp.t(), grad))
    return torch.mm(grad.t(), inp)
