"""The fast recurrence as PyTorch custom operators (``torch.library``).

Three operators, each one layer-direction of G2-LSTM (see :mod:`g2lstm.nn.fast.loop`):

- ``g2lstm::recurrence_train``: the forward that keeps what the backward needs;
- ``g2lstm::recurrence_backward``: its gradients (registered as its autograd formula);
- ``g2lstm::recurrence_inference``: the forward without autograd.

To ``torch.compile``, ``torch.export`` and ``torch.func`` each is one opaque call with a
fake (meta) implementation that states its output shapes, an autograd formula with
``setup_context`` and a ``vmap`` rule. Everything that depends on the machine (loading the
fused CPU kernel and its probe, the GEMM route, the step implementation) is decided inside
the operators, when they run, eagerly: never in traced code and never by a graph break.

Gate options cross the boundary as plain values: ``rows`` (noisy gate indices, 0=i, 1=f,
3=o), ``tau``, ``mode`` (a :class:`~g2lstm.nn.functional.GateMode` value), ``route``
(``"auto"``, ``"torch"``, ``"onednn"``) and ``step`` (``"auto"``, ``"kernel"``, ``"triton"``,
``"aten"``; see :mod:`g2lstm.nn.fast.steps`). The gate noise comes either as a tensor
(``noise``) or as the generator seeds of :class:`~g2lstm.nn.noise.GateNoise`: ``noise_key``
(int64 ``(2,)``, drawn eagerly from the module's generator by the caller, an ordinary random
op that the compiler traces), ``noise_p`` and ``noise_schedule``.

This module deliberately does not use ``from __future__ import annotations``: the operator
schemas are inferred from the real annotations.
"""


import torch
from torch import Tensor

from g2lstm.nn.fast import loop
from g2lstm.nn.fast.plan import GatePlan
from g2lstm.nn.fast.routes import backward_packing, resolve_route, weight_grad_route
from g2lstm.nn.fast.steps import select_step
from g2lstm.nn.functional import GateMode, GateSpec
from g2lstm.nn.noise import GateNoise, NoiseSchedule

__all__ = [
    "TrainFunction",
    "recurrence_backward",
    "recurrence_inference",
    "recurrence_train",
]

_Out7 = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]
_Out6 = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]


def _plan(rows: list[int], tau: float, mode: str, hidden: int) -> GatePlan:
    return GatePlan.build(GateSpec(tuple(rows), tau, GateMode(mode), False), hidden)


def _draw(key: Tensor | None, p: float, schedule: str) -> GateNoise | None:
    return None if key is None else GateNoise(key, p, NoiseSchedule(schedule))


def _machine(x: Tensor, plan: GatePlan, route: str, step: str):
    """GEMM route and step implementation for tensors like ``x`` (eager, cached; the route
    measured once per shape bucket on CPU float32, :mod:`g2lstm.nn.fast.autotune`)."""
    return resolve_route(x, route, shape=_shape(x, plan)), select_step(x, plan, step)


def _shape(x: Tensor, plan: GatePlan) -> tuple[int, int, int, int]:
    """``(steps, batch, input_size, hidden)``: the shape the measured choices are keyed by."""
    return x.shape[0], x.shape[1], x.shape[2], plan.hidden


# ---------------------------------------------------------------------- training forward
@torch.library.custom_op("g2lstm::recurrence_train", mutates_args=())
def recurrence_train(
    x: Tensor,
    w_ih: Tensor,
    bias: Tensor | None,
    w_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    noise: Tensor | None,
    mask: Tensor | None,
    rows: list[int],
    tau: float,
    mode: str,
    route: str,
    step: str,
    noise_key: Tensor | None = None,
    noise_p: float = 0.0,
    noise_schedule: str = "per_step",
) -> _Out7:
    """``(y, h_n, c_n, gates, cs, hs, s_buf)``: see :func:`g2lstm.nn.fast.loop.forward_train`."""
    plan = _plan(rows, tau, mode, w_hh.shape[1])
    r, s = _machine(x, plan, route, step)
    draw = _draw(noise_key, noise_p, noise_schedule)
    return loop.forward_train(x, w_ih, bias, w_hh, h0, c0, noise, mask, plan, r, s, draw)


@recurrence_train.register_fake
def _(x, w_ih, bias, w_hh, h0, c0, noise, mask, rows, tau, mode, route, step, noise_key=None,
      noise_p=0.0, noise_schedule="per_step"):  # fmt: skip
    steps, batch, _ = x.shape
    hid = w_hh.shape[1]
    st = len(rows) * hid if mode == GateMode.STRAIGHT_THROUGH.value else 0
    hs = x.new_empty(steps + 1, batch, hid) if mask is not None else x.new_empty(0)
    return (
        x.new_empty(steps, batch, hid),
        x.new_empty(batch, hid),
        x.new_empty(batch, hid),
        x.new_empty(steps, batch, 4 * hid),
        x.new_empty(steps + 1, batch, hid),
        hs,
        x.new_empty(steps, batch, st),
    )


# ---------------------------------------------------------------------- backward
@torch.library.custom_op("g2lstm::recurrence_backward", mutates_args=())
def recurrence_backward(
    dy: Tensor,
    dh_n: Tensor,
    dc_n: Tensor,
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    h0: Tensor,
    gates: Tensor,
    cs: Tensor,
    hbuf: Tensor,
    s_buf: Tensor,
    mask: Tensor | None,
    rows: list[int],
    tau: float,
    mode: str,
    route: str,
    step: str,
    needs: list[bool],
) -> _Out6:
    """``(dx, dw_ih, db, dw_hh, dh0, dc0)``; an empty tensor where ``needs`` is False."""
    plan = _plan(rows, tau, mode, w_hh.shape[1])
    r, s = _machine(x, plan, route, step)
    shape = _shape(x, plan)
    pack, wgrad = backward_packing(x, r, shape), weight_grad_route(x, r, shape)
    grads = loop.backward(
        dy, dh_n, dc_n, x, w_ih, w_hh, h0, gates, cs, hbuf, s_buf, mask, plan, r, s,
        tuple(needs), pack, wgrad,  # type: ignore[arg-type]
    )  # fmt: skip
    # contiguous: the fake implementation promises dense outputs
    return tuple(x.new_empty(0) if g is None else g.contiguous() for g in grads)  # type: ignore[return-value]


@recurrence_backward.register_fake
def _(dy, dh_n, dc_n, x, w_ih, w_hh, h0, gates, cs, hbuf, s_buf, mask, rows, tau, mode, route,
      step, needs):  # fmt: skip
    like = (x, w_ih, w_hh.new_empty(w_hh.shape[0]), w_hh, h0, dc_n)  # dc0 is shaped as dc_n
    return tuple(t.new_empty(t.shape) if n else x.new_empty(0) for t, n in zip(like, needs))


def _setup_context(ctx, inputs, output) -> None:
    x, w_ih, bias, w_hh, h0, c0, noise, mask, rows, tau, mode, route, step, *_noise = inputs
    y, _h_n, _c_n, gates, cs, hs, s_buf = output
    saved = [x, w_ih, w_hh, h0, gates, cs, y if mask is None else hs, s_buf]
    ctx.save_for_backward(*saved, *([] if mask is None else [mask]))  # no None: AOTAutograd
    ctx.options = (rows, tau, mode, route, step)
    # the saved-state outputs (gates, cs, hs, s_buf) never get a gradient: without this,
    # autograd would fill a zero tensor for each (a (T, N, 4H) fill, ~2% of a B80 step)
    ctx.set_materialize_grads(False)


def _backward(ctx, dy, dh_n, dc_n, *_unused):
    x, w_ih, w_hh, h0, gates, cs, hbuf, s_buf, *rest = ctx.saved_tensors
    mask = rest[0] if rest else None
    needs = list(ctx.needs_input_grad[:6])
    steps, batch, _ = x.shape
    hid = w_hh.shape[1]
    dy = x.new_zeros(steps, batch, hid) if dy is None else dy
    dh_n = x.new_zeros(batch, hid) if dh_n is None else dh_n
    dc_n = x.new_zeros(batch, hid) if dc_n is None else dc_n
    args = (dy, dh_n, dc_n, x, w_ih, w_hh, h0, gates, cs, hbuf, s_buf, mask, *ctx.options, needs)
    # under torch.func the tensors are wrapped: go through an autograd.Function it accepts
    wrapped = torch._C._functorch.is_functorch_wrapped_tensor(dy)
    grads = BackwardFunction.apply(*args) if wrapped else recurrence_backward(*args)
    # no gradient for noise, mask, rows, tau, mode, route, step, noise_key, noise_p, schedule
    return (*(g if n else None for g, n in zip(grads, needs)), *([None] * 10))


class BackwardFunction(torch.autograd.Function):
    """Calls ``recurrence_backward`` from a backward pass. An ``autograd.Function`` with
    ``setup_context`` (not the operator itself) so that ``torch.func.grad`` can run the
    backward on its wrapped tensors; a second derivative is refused with one clear line."""

    generate_vmap_rule = True

    @staticmethod
    def forward(*args):  # type: ignore[override]
        return recurrence_backward(*args)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        pass

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        raise RuntimeError(
            "G2LSTM: the fast recurrence has no second derivative; use "
            "model.backend = 'reference' for double backward (e.g. gradient penalties)"
        )


recurrence_train.register_autograd(_backward, setup_context=_setup_context)


class TrainFunction(torch.autograd.Function):
    """``recurrence_train`` with its gradient, as an ``autograd.Function`` with
    ``setup_context``: the form ``torch.func`` transforms (``grad``, ``vmap``, ``jacrev``)
    accept; the operator's own autograd registration serves direct callers of
    ``torch.ops.g2lstm.recurrence_train``. ``vmap`` goes through the operator's rule."""

    generate_vmap_rule = True

    @staticmethod
    def forward(*args):  # type: ignore[override]
        return recurrence_train(*args)

    setup_context = staticmethod(_setup_context)  # type: ignore[assignment]

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        return _backward(ctx, *grads)


# ---------------------------------------------------------------------- inference
@torch.library.custom_op("g2lstm::recurrence_inference", mutates_args=())
def recurrence_inference(
    x: Tensor,
    w_ih: Tensor,
    bias: Tensor | None,
    w_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    noise: Tensor | None,
    mask: Tensor | None,
    rows: list[int],
    tau: float,
    mode: str,
    route: str,
    step: str,
    noise_key: Tensor | None = None,
    noise_p: float = 0.0,
    noise_schedule: str = "per_step",
) -> tuple[Tensor, Tensor, Tensor]:
    """``(y, h_n, c_n)``: see :func:`g2lstm.nn.fast.loop.forward_inference`."""
    plan = _plan(rows, tau, mode, w_hh.shape[1])
    r, s = _machine(x, plan, route, step)
    draw = _draw(noise_key, noise_p, noise_schedule)
    return loop.forward_inference(x, w_ih, bias, w_hh, h0, c0, noise, mask, plan, r, s, draw)


@recurrence_inference.register_fake
def _(x, w_ih, bias, w_hh, h0, c0, noise, mask, rows, tau, mode, route, step, noise_key=None,
      noise_p=0.0, noise_schedule="per_step"):  # fmt: skip
    steps, batch, _ = x.shape
    hid = w_hh.shape[1]
    return x.new_empty(steps, batch, hid), x.new_empty(batch, hid), x.new_empty(batch, hid)


# ---------------------------------------------------------------------- vmap
def _loop_rule(op):
    """A ``vmap`` rule that runs ``op`` once per batch entry and stacks the results.

    Sequences of one batch are independent, but weights may be batched too (ensembles,
    per-example gradients), so the rule stays general: one call per entry.
    """

    def rule(info, in_dims, *args):
        outs = []
        for b in range(info.batch_size):
            sliced = [
                a.select(d, b) if d is not None and isinstance(a, Tensor) else a
                for a, d in zip(args, in_dims)
            ]
            outs.append(op(*sliced))
        stacked = tuple(torch.stack(parts) for parts in zip(*outs))
        return stacked, (0,) * len(stacked)

    return rule


for _op in (recurrence_train, recurrence_backward, recurrence_inference):
    torch.library.register_vmap(_op, _loop_rule(_op))
