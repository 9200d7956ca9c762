"""Which GEMM route and weight packing a pass of the fast recurrence uses: measured or forced.

:func:`resolve_route` picks the route of the products (:data:`g2lstm.nn.fast.gemm.ROUTES`:
oneDNN or ``torch.mm``) and :func:`backward_packing` whether the backward's per-step
products use a packed ``W_hh^T``. On CPU float32 both are measured once per shape bucket on
the running machine (:mod:`g2lstm.nn.fast.autotune`, timing the workloads of
:func:`route_workloads`), never chosen by the CPU's vendor name; ``$G2LSTM_GEMM_ROUTE``
forces a route (``$G2LSTM_AUTOTUNE=0`` takes :data:`g2lstm.nn.fast.gemm.DEFAULT_ROUTE`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from g2lstm.errors import ConfigError
from g2lstm.nn.fast import autotune, gemm, route_cache

__all__ = [
    "backward_packing",
    "preferred_cpu_route",
    "resolve_route",
    "route_workloads",
    "weight_grad_route",
]


def resolve_route(
    like: Tensor, route: str = "auto", *, shape: tuple[int, int, int, int] | None = None
) -> str:
    """The GEMM route for tensors like ``like``: ``"onednn"`` only for CPU float32.

    ``route="auto"`` picks, for CPU float32 where oneDNN is available, the route measured
    fastest on this machine for ``shape = (steps, batch, input_size, hidden)``
    (:func:`g2lstm.nn.fast.autotune.choose_route`, once per shape bucket, dtype and thread
    count, cached), or :func:`preferred_cpu_route` without a shape; ``"torch"`` forces
    ``torch.mm``; ``"onednn"`` asks for oneDNN and still falls back where it cannot run.
    ``$G2LSTM_GEMM_ROUTE`` overrides ``"auto"`` (see :func:`preferred_cpu_route`).
    """
    if route not in ("auto", *gemm.ROUTES):
        raise ValueError(f"route={route!r} is not valid; expected 'auto', 'onednn' or 'torch'")
    if route == "torch":
        return "torch"
    usable = _onednn_usable(like)
    if route == "onednn" or not usable:
        return "onednn" if usable else "torch"
    forced = _forced_route()
    if forced is not None or shape is None:
        return forced or preferred_cpu_route()
    steps, batch, input_size, hidden = (int(n) for n in shape)
    measured = autotune.choose_route(
        gemm.ROUTES, steps, batch, input_size, hidden, like.dtype,
        _workloads(input_size, hidden),
    )  # fmt: skip
    return measured or preferred_cpu_route()


def _onednn_usable(like: Tensor) -> bool:
    """Whether the ``"onednn"`` route can run for tensors like ``like`` (CPU float32, and the
    private op probed usable), so that there is a choice of route to make."""
    return like.device.type == "cpu" and like.dtype == torch.float32 and gemm.onednn_available()


def _forced_route() -> str | None:
    """``$G2LSTM_GEMM_ROUTE`` as a route (``mkl`` = ``torch``), ``None`` if unset/``auto``."""
    env = os.environ.get("G2LSTM_GEMM_ROUTE", "").strip().lower()
    if env in ("", "auto"):
        return None
    if env in gemm.ROUTES or env == "mkl":
        return "torch" if env == "mkl" else env
    raise ConfigError(
        f"G2LSTM_GEMM_ROUTE={env!r} is not valid; expected onednn, torch (or mkl), or auto"
    )


def preferred_cpu_route() -> str:
    """The CPU float32 route when none is measured: ``$G2LSTM_GEMM_ROUTE`` or the default.

    ``$G2LSTM_GEMM_ROUTE`` (``onednn``, ``torch`` or its alias ``mkl``) decides if set;
    otherwise :data:`g2lstm.nn.fast.gemm.DEFAULT_ROUTE`. :func:`resolve_route` uses this
    when it is given no shape or measuring is off (``$G2LSTM_AUTOTUNE=0``).
    """
    return _forced_route() or gemm.DEFAULT_ROUTE


def backward_packing(like: Tensor, route: str, shape: tuple[int, int, int, int]) -> bool:
    """Whether the backward packs ``W_hh^T`` for its per-step products, for tensors like
    ``like`` and ``shape = (steps, batch, input_size, hidden)`` on ``route``.

    Measured with the route's timings on CPU float32
    (:func:`g2lstm.nn.fast.autotune.choose_backward_packing`: packing pays once per call, so
    short loops of small products are faster without it); ``True`` elsewhere and when
    measuring is off.
    """
    if like.device.type != "cpu" or like.dtype != torch.float32 or route not in gemm.ROUTES:
        return True
    steps, batch, input_size, hidden = (int(n) for n in shape)
    pack = autotune.choose_backward_packing(
        route, steps, batch, input_size, hidden, like.dtype, _workloads(input_size, hidden)
    )
    return True if pack is None else pack


def weight_grad_route(like: Tensor, route: str, shape: tuple[int, int, int, int]) -> str:
    """The route of the backward's weight gradients for tensors like ``like`` and ``shape =
    (steps, batch, input_size, hidden)``, whose per-step products take ``route``.

    On CPU float32 with no route forced (``$G2LSTM_GEMM_ROUTE``), measured apart from the
    steps' route (:func:`g2lstm.nn.fast.autotune.choose_weight_grad_route`); ``route``
    elsewhere and when measuring is off.
    """
    if not _onednn_usable(like) or route not in gemm.ROUTES or _forced_route() is not None:
        return route
    _, batch, input_size, hidden = (int(n) for n in shape)
    routes = (route, *(r for r in gemm.ROUTES if r != route))
    chosen = autotune.choose_weight_grad_route(
        routes, batch, input_size, hidden, like.dtype, _workloads(input_size, hidden)
    )
    return route if chosen is None else chosen


def _workloads(input_size: int, hidden: int) -> autotune.Workloads:
    """:func:`route_workloads` for one layer shape, as the autotuner calls it."""
    return lambda routes, roles, batch: route_workloads(routes, batch, input_size, hidden, roles)


RoleFns = dict[str, Callable[[], object]]


def route_workloads(
    routes: Sequence[str],
    batch: int,
    input_size: int,
    hidden: int,
    roles: Sequence[str] = route_cache.FORWARD + route_cache.BACKWARD + route_cache.WGRAD,
) -> dict[str, RoleFns]:
    """What :mod:`~g2lstm.nn.fast.autotune` times, ``{route: {role: callable}}`` for the
    ``roles`` asked for (CPU float32); only their operands are allocated.

    ``"pack"``: packing ``W_hh (4H, H)`` for ``batch`` rows as
    :class:`~g2lstm.nn.fast.gemm.StepGemm` packs it (it keeps the packed weight for
    ``"step"``, so it runs first); ``"step"``: one per-step
    product ``h W_hh^T + b``, ``(batch, H) x (4H, H)``; ``"proj"``: the input projection of
    :data:`autotune.PROJ_ROWS` rows, ``(rows, I) x (4H, I)``; the backward's per-step product
    ``dG_t W_hh``, ``(batch, 4H) x (4H, H)``: ``"bpack"`` (transpose and pack ``W_hh^T``, as
    the backward does), ``"bstep"`` (with it), ``"bplain"`` (reading ``W_hh`` as it is);
    ``"wgrad"``: the weight gradient ``dG^T h`` of :data:`autotune.WGRAD_ROWS` rows as the
    backward computes it on the route (:func:`g2lstm.nn.fast.gemm.weight_grad`). All routes
    share one set of tensors holding constants (the speed of a float32 product does not
    depend on the values; no random generator is used).
    """
    w_hh = torch.full((4 * hidden, hidden), 0.5 / hidden)  # read by both groups
    makers: list[Callable[[str], RoleFns]] = []
    if not set(roles).isdisjoint(route_cache.FORWARD):
        makers.append(_forward_workloads(w_hh, batch, input_size))
    if not set(roles).isdisjoint(route_cache.BACKWARD):
        makers.append(_backward_workloads(w_hh, batch))
    if not set(roles).isdisjoint(route_cache.WGRAD):
        makers.append(_weight_grad_workloads(w_hh))
    return {
        route: {role: fn for make in makers for role, fn in make(route).items() if role in roles}
        for route in routes
    }


def _forward_workloads(w_hh: Tensor, batch: int, input_size: int) -> Callable[[str], RoleFns]:
    """``route -> {"pack", "step", "proj"}`` (see :func:`route_workloads`)."""
    hidden = w_hh.shape[1]
    w_ih = torch.full((4 * hidden, input_size), 0.5 / input_size)
    bias = torch.full((4 * hidden,), 0.1)
    h, x = torch.full((batch, hidden), 0.3), torch.full((autotune.PROJ_ROWS, input_size), 0.3)

    def one(route: str) -> RoleFns:
        built: list[gemm.StepGemm] = []

        def pack() -> None:
            built[:] = [gemm.StepGemm(w_hh, batch, route, bias)]

        return {
            "pack": pack,
            "step": lambda: built[0](h),
            "proj": lambda: gemm.linear(x, w_ih, None, route),
        }

    return one


def _backward_workloads(w_hh: Tensor, batch: int) -> Callable[[str], RoleFns]:
    """``route -> {"bpack", "bstep", "bplain"}`` (see :func:`route_workloads`)."""
    dg = torch.full((batch, w_hh.shape[0]), 0.2)

    def one(route: str) -> RoleFns:
        built: list[gemm.StepGemm] = []

        def bpack() -> None:  # as the backward packs W_hh^T (loop.backward)
            built[:] = [gemm.StepGemm(gemm.transpose(w_hh), batch, route)]

        plain = gemm.StepGemm(w_hh.t(), batch, route, pack=False)
        return {"bpack": bpack, "bstep": lambda: built[0](dg), "bplain": lambda: plain(dg)}

    return one


def _weight_grad_workloads(w_hh: Tensor) -> Callable[[str], RoleFns]:
    """``route -> {"wgrad"}`` (see :func:`route_workloads`)."""
    four_h, hidden = w_hh.shape
    dg = torch.full((autotune.WGRAD_ROWS, four_h), 0.2)
    h = torch.full((autotune.WGRAD_ROWS, hidden), 0.3)
    return lambda route: {"wgrad": lambda: gemm.weight_grad(dg, h, route)}
