"""The fast recurrence's loops never read a value back to the host, so a CUDA graph can
capture them: checked on CPU by watching every ATen call of a forward and backward."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from g2lstm.nn.fast import loop
from g2lstm.nn.fast.plan import GatePlan
from g2lstm.nn.fast.steps import AtenStep
from g2lstm.nn.functional import GateMode, GateSpec

SYNC_OPS = {"aten._local_scalar_dense.default", "aten.item.default", "aten.is_nonzero.default"}


class _Watch(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("mode", [GateMode.RELAXED, GateMode.STRAIGHT_THROUGH, GateMode.HARD])
@pytest.mark.parametrize("masked", [False, True])
def test_loops_do_not_synchronise(mode, masked):
    torch.manual_seed(0)
    steps, batch, feat, hid = 6, 3, 5, 7
    plan = GatePlan.build(GateSpec((0, 1), 0.9, mode, True), hid)
    step = AtenStep(plan)  # the kernels are opaque to the watch; the loop around them is not
    x = torch.randn(steps, batch, feat)
    w_ih, w_hh = torch.randn(4 * hid, feat), torch.randn(4 * hid, hid)
    b, h0, c0 = torch.randn(4 * hid), torch.randn(batch, hid), torch.randn(batch, hid)
    noise = torch.randn(steps, batch, 2 * hid)
    mask = None
    if masked:
        mask = (torch.arange(steps).unsqueeze(1) < torch.tensor([6, 2, 4])).unsqueeze(-1)
    with _Watch() as watch:
        out = loop.forward_train(x, w_ih, b, w_hh, h0, c0, noise, mask, plan, "torch", step)
        y, h_n, c_n, gates, cs, hs, s_buf = out
        loop.backward(
            torch.ones_like(y), torch.ones_like(h_n), torch.ones_like(c_n), x, w_ih, w_hh, h0,
            gates, cs, y if mask is None else hs, s_buf, mask, plan, "torch", step,
            (True,) * 6,
        )  # fmt: skip
        loop.forward_inference(x, w_ih, b, w_hh, h0, c0, noise, mask, plan, "torch", step)
    assert watch.ops, "the watch saw nothing"
    assert not SYNC_OPS & set(watch.ops)
