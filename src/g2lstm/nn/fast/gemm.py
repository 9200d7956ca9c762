"""Matrix products of the fast recurrence, on oneDNN (CPU float32) or ``torch.mm`` (elsewhere).

On CPU, float32 ``torch.mm`` calls MKL sgemm, which at the LSTM's shapes is 1.3-2x slower
than oneDNN, the library ``torch.nn.LSTM`` itself uses (``shared/docs/perf.md`` §2.5). The
``"onednn"`` route sends the products through ``torch.ops.mkldnn._linear_pointwise``, a
*private* PyTorch op: it is probed once (present, callable, correct) before first use, and
every function here falls back to the ``"torch"`` route (``torch.mm``/``addmm``: MKL on CPU,
cuBLAS on GPU) when the probe fails or the tensors are not CPU float32.

The per-step products ``h W^T`` (forward) and ``dG_t W`` (backward) reuse one weight ``T``
times: :class:`StepGemm` packs it once per call with MKL's packed-GEMM API
(``torch.ops.mkl._mkl_reorder_linear_weight`` / ``_mkl_linear``, also private, also probed
once) on the ``"torch"`` route for CPU float32, which halves the per-step GEMM time at
batch 20 on this project's Intel Xeon; elsewhere it calls ``torch.mm`` or oneDNN.

Every function computes a plain matrix product; the routes differ only in rounding.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
import weakref

import torch
from torch import Tensor

__all__ = [
    "ROUTES",
    "StepGemm",
    "linear",
    "linear_add",
    "mkl_packed_available",
    "onednn_available",
    "preferred_cpu_route",
    "resolve_route",
    "transpose",
    "weight_grad",
]

#: ``"onednn"``: private oneDNN inner product (CPU float32); ``"torch"``: ``torch.mm``.
ROUTES = ("onednn", "torch")


@functools.lru_cache(maxsize=1)
def onednn_available() -> bool:
    """Whether ``torch.ops.mkldnn._linear_pointwise`` exists here and computes ``x W^T + b``.

    Checked once per process on tiny tensors. A failure prints a one-line notice on stderr and
    the fast path then uses ``torch.mm`` (slower on CPU, same results up to rounding).
    """
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        op = _op()
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(3, 5, generator=gen)
        w = torch.randn(4, 5, generator=gen)
        b = torch.randn(4, generator=gen)
        other = torch.randn(3, 4, generator=gen)
        want = torch.addmm(b, x, w.t())
        ok = torch.allclose(op(x, w, b, "none", [], ""), want, atol=1e-5)
        ok = ok and torch.allclose(
            op.binary(x, other, w, None, "add"), other + x @ w.t(), atol=1e-5
        )
        # weight-gradient layout: transposed (non-contiguous) operands
        ok = ok and torch.allclose(
            op(x.t().contiguous(), other.t(), None, "none", [], ""), x.t() @ other, atol=1e-5
        )
    except Exception as e:  # any failure of a private op means "do not use it"
        print(
            f"g2lstm: oneDNN GEMM unavailable ({type(e).__name__}); using torch.mm", file=sys.stderr
        )
        return False
    if not ok:
        print(
            "g2lstm: oneDNN GEMM gave wrong results in its probe; using torch.mm", file=sys.stderr
        )
    return bool(ok)


@functools.lru_cache(maxsize=1)
def mkl_packed_available() -> bool:
    """Whether MKL's packed GEMM ops (``torch.ops.mkl``) exist here and compute ``x W^T``.

    Checked once per process; a failure prints a one-line notice and ``torch.mm`` is used.
    """
    try:
        reorder, mkl_linear = _mkl_ops()
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(3, 5, generator=gen)
        w = torch.randn(4, 5, generator=gen)
        packed = reorder(w, 3)
        ok = torch.allclose(mkl_linear(x, packed, w, None, 3), x @ w.t(), atol=1e-5)
        ok = ok and torch.allclose(mkl_linear(x[:2], packed, w, None, 3), x[:2] @ w.t(), atol=1e-5)
    except Exception as e:  # any failure of a private op means "do not use it"
        print(
            f"g2lstm: MKL packed GEMM unavailable ({type(e).__name__}); using torch.mm",
            file=sys.stderr,
        )
        return False
    if not ok:
        print(
            "g2lstm: MKL packed GEMM gave wrong results in its probe; using torch.mm",
            file=sys.stderr,
        )
    return bool(ok)


def _mkl_ops():  # the private MKL ops, looked up at call time (a test replaces this function)
    return torch.ops.mkl._mkl_reorder_linear_weight, torch.ops.mkl._mkl_linear


#: packed copies of weights for inference, ``id(w) -> (weakref to w, {batch: (version,
#: data_ptr, packed)})``; an entry is dropped when its weight tensor is freed
_PACKED: dict[int, tuple[weakref.ref[Tensor], dict[int, tuple[int, int, Tensor]]]] = {}
_PACKED_PER_WEIGHT = 4  # batch sizes kept per weight (beam search shrinks its batch)


def _packed(w: Tensor, batch: int) -> Tensor:
    """MKL-packed ``w`` for ``batch`` rows, reused while ``w`` is unchanged.

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
    hit = entries.get(batch)
    if hit is not None and hit[:2] == key:
        return hit[2]
    packed = _mkl_ops()[0](w, batch)
    entries.pop(batch, None)
    while len(entries) >= _PACKED_PER_WEIGHT:
        entries.pop(next(iter(entries)))
    entries[batch] = (*key, packed)
    return packed


class StepGemm:
    """``x @ w.T + bias`` (optionally ``+ add``) for many ``x`` of ``batch`` rows, one ``w``.

    Args:
        w: ``(N, K)`` weight, used as it is for the whole time loop (not copied on the plain
            ``torch.mm`` route, so it must not change meanwhile).
        batch: rows of every ``x``.
        route: ``"onednn"`` or ``"torch"``; on ``"torch"`` with CPU float32 the weight is
            packed once with MKL (:func:`mkl_packed_available`).
        bias: ``(N,)`` or ``None``; adding it here instead of to the time-batched input
            projection saves a full pass over the ``(T, N, 4H)`` pre-activations.
        cache: keep the packed weight for later calls with the same ``w`` and ``batch``
            (inference: packing costs ~5% of a whole B20 T35 H650 forward); see
            :func:`_packed` for when a cached copy is reused.
    """

    def __init__(
        self,
        w: Tensor,
        batch: int,
        route: str,
        bias: Tensor | None = None,
        *,
        cache: bool = False,
    ) -> None:
        self.w, self.batch, self.route, self.bias = w, batch, route, bias
        self.packed: Tensor | None = None
        cpu32 = w.device.type == "cpu" and w.dtype == torch.float32
        if route == "torch" and cpu32 and batch > 0 and mkl_packed_available():
            self.packed = _packed(w, batch) if cache else _mkl_ops()[0](w, batch)

    def __call__(self, x: Tensor, add: Tensor | None = None) -> Tensor:
        """``x (batch, K) @ w.T + bias`` (+ ``add (batch, N)``) as a new tensor."""
        if self.packed is not None:
            out = _mkl_ops()[1](x, self.packed, self.w, self.bias, self.batch)
            return out if add is None else out.add_(add)
        if add is None:
            return linear(x, self.w, self.bias, self.route)
        if self.route == "onednn":
            return _op().binary(x, add, self.w, self.bias, "add")
        out = torch.addmm(add, x, self.w.t())
        return out if self.bias is None else out.add_(self.bias)


def transpose(w: Tensor, block: int = 512) -> Tensor:
    """``w.T`` as a new contiguous tensor, ``w (N, K)`` -> ``(K, N)``.

    Copied ``block`` rows at a time: on CPU this is about twice as fast as
    ``w.t().contiguous()`` for the LSTM's weight matrices (the chunks stay in cache).
    """
    if w.dim() != 2 or w.device.type != "cpu" or w.shape[0] <= block:
        return w.t().contiguous()
    out = w.new_empty(w.shape[1], w.shape[0])
    for i in range(0, w.shape[0], block):
        out[:, i : i + block] = w[i : i + block].t()
    return out


def _op():  # the private op, looked up at call time (a test replaces this function)
    return torch.ops.mkldnn._linear_pointwise


def resolve_route(like: Tensor, route: str = "auto") -> str:
    """The GEMM route for tensors like ``like``: ``"onednn"`` only for CPU float32.

    ``route="auto"`` picks oneDNN for CPU float32 when it is available and the faster
    library here (:func:`preferred_cpu_route`); ``"torch"`` forces ``torch.mm``;
    ``"onednn"`` asks for oneDNN and still falls back where it cannot run.
    """
    if route not in ("auto", *ROUTES):
        raise ValueError(f"route={route!r} is not valid; expected 'auto', 'onednn' or 'torch'")
    if route == "torch":
        return "torch"
    usable = like.device.type == "cpu" and like.dtype == torch.float32
    if route == "auto" and usable:
        usable = preferred_cpu_route() == "onednn"
    return "onednn" if usable and onednn_available() else "torch"


@functools.lru_cache(maxsize=1)
def preferred_cpu_route() -> str:
    """The faster fp32 GEMM library on this CPU for the LSTM's shapes.

    ``$G2LSTM_GEMM_ROUTE`` (``onednn`` or ``torch``) decides if set. Otherwise: oneDNN on
    AMD CPUs, where MKL sgemm measured 1.3-2x slower than oneDNN (``shared/docs/perf.md``
    §2.5, AMD EPYC Zen 4), and MKL (``torch.mm``) elsewhere: on the Intel Xeon of this
    project's machines MKL was as fast or faster than oneDNN for every GEMM of the step
    (``benchmarks/RESULTS.md``).
    """
    env = os.environ.get("G2LSTM_GEMM_ROUTE", "").strip().lower()
    if env in ROUTES:
        return env
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("vendor_id"):
                    return "onednn" if "AMD" in line else "torch"
    except OSError:
        pass
    return "onednn" if "AMD" in platform.processor().upper() else "torch"


def linear(x: Tensor, w: Tensor, bias: Tensor | None, route: str) -> Tensor:
    """``x @ w.T + bias``: ``x (M, K)``, ``w (N, K)``, ``bias (N,)`` or ``None`` -> ``(M, N)``."""
    if route == "onednn":
        return _op()(x, w, bias, "none", [], "")
    if bias is None:
        return torch.mm(x, w.t())
    return torch.addmm(bias, x, w.t())


def linear_add(x: Tensor, w: Tensor, other: Tensor, route: str) -> Tensor:
    """``other + x @ w.T`` as a new tensor; ``x (M, K)``, ``w (N, K)``, ``other (M, N)``."""
    if route == "onednn":
        return _op().binary(x, other, w, None, "add")
    return torch.addmm(other, x, w.t())


def weight_grad(
    grad: Tensor,
    inp: Tensor,
    route: str,
    grad_t: Tensor | None = None,
    inp_t: Tensor | None = None,
) -> Tensor:
    """``grad.T @ inp`` for ``grad (M, N)`` and ``inp (M, K)`` -> ``(N, K)``, a weight gradient.

    ``grad_t`` / ``inp_t``, if given, are ``grad.T`` / ``inp.T`` already contiguous (``(N, M)``
    / ``(K, M)``); the oneDNN route needs them (it reduces over the contiguous dimension) and
    the caller can share one transpose between several gradients. ``inp`` may then be
    ``None``. The result may be a non-contiguous view.
    """
    if route == "onednn":
        gt = transpose(grad) if grad_t is None else grad_t
        it = transpose(inp) if inp_t is None else inp_t
        # inner product reducing over M: (K, M) x (N, M)^T = (K, N) = result^T
        return _op()(it, gt, None, "none", [], "").t()
    return torch.mm(grad.t(), inp)
