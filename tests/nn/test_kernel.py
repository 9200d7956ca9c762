"""The fused CPU step kernel: larger shapes (threads, vector tails), loading and fallback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from g2lstm.errors import ConfigError
from g2lstm.nn.fast import kernel as kmod
from g2lstm.nn.fast import recurrence_fast
from g2lstm.nn.functional import GateSpec
from g2lstm.nn.noise import sample_gate_noise
from g2lstm.nn.reference import length_mask

KERNEL_OFF = os.environ.get("G2LSTM_CPU_KERNEL", "").strip().lower() in ("0", "off", "false", "no")
needs_kernel = pytest.mark.skipif(KERNEL_OFF, reason="G2LSTM_CPU_KERNEL=0")


def _inputs(steps, batch, feat, hid, rows, gen, dtype=torch.float32):
    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, dtype=dtype) * scale).requires_grad_()

    x, w_ih, b = rnd(steps, batch, feat), rnd(4 * hid, feat, scale=0.2), rnd(4 * hid)
    w_hh, h0, c0 = rnd(4 * hid, hid, scale=0.1), rnd(batch, hid), rnd(batch, hid)
    noise = sample_gate_noise(steps, batch, len(rows) * hid, 0.5, "per_step", generator=gen)
    return (x, w_ih, b, w_hh, h0, c0), noise.to(dtype)


@needs_kernel
@pytest.mark.parametrize("mode", ["relaxed", "straight_through", "hard"])
@pytest.mark.parametrize("hid", [300, 37])  # rows split over threads; 37: vector tails
def test_kernel_equals_aten_step_on_larger_shapes(mode, hid):
    """Kernel vs ATen step at 2 threads, where the kernel runs rows in parallel."""
    gen = torch.Generator().manual_seed(hid)
    batch = 16384 // hid * 2 + 3  # more rows than one thread's grain
    rows = (0, 1)
    spec = GateSpec(rows, 0.7, mode, mode != "hard")
    leaves, noise = _inputs(4, batch, 24, hid, rows, gen)
    lengths = torch.randint(1, 5, (batch,), generator=gen)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        results = []
        for pointwise in ("aten", "kernel"):
            r = recurrence_fast(
                *leaves, spec, noise if spec.noisy else None, lengths, "torch", pointwise
            )
            loss = (r.output * torch.linspace(-1, 1, r.output.numel()).view_as(r.output)).sum()
            loss = loss + (r.h_n**2).sum() + r.c_n.sum()
            grads = torch.autograd.grad(loss, leaves)
            results.append([r.output, r.h_n, r.c_n, *grads])
    finally:
        torch.set_num_threads(threads)
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
    pad = ~length_mask(lengths, 4, torch.device("cpu"))
    assert torch.all(results[1][0][pad] == 0)


@needs_kernel
def test_kernel_rejects_bad_buffers():
    kern = kmod.cpu_kernel()
    assert kern is not None
    pre, hw = torch.zeros(2, 8), torch.zeros(2, 8)
    c = torch.zeros(2, 2)
    with pytest.raises(RuntimeError, match="c_out: expected a contiguous CPU"):
        kern.forward_step(pre, hw, c, None, torch.zeros(2, 4)[:, ::2], c, None, None, None,
                          [0, 0, 0], [1.0, 1.0, 1.0], True)  # fmt: skip
    with pytest.raises(RuntimeError, match="straight-through gates need s_out"):
        kern.forward_step(pre, hw, c, None, c, c, None, None, None, [2, 0, 0], [1.0] * 3, True)
    with pytest.raises(RuntimeError, match="mask: expected a contiguous CPU bool"):
        kern.forward_step(
            pre, hw, c, c, c, c, None, None, torch.ones(2), [0, 0, 0], [1.0] * 3, True
        )
    with pytest.raises(RuntimeError, match="gate kind"):
        kern.forward_step(pre, hw, c, None, c, c, None, None, None, [5, 0, 0], [1.0] * 3, True)


def test_pointwise_kernel_refused_where_it_cannot_run():
    x = torch.randn(2, 3, 4, dtype=torch.bfloat16)
    w = torch.randn(8, 4, dtype=torch.bfloat16)
    h = torch.zeros(3, 2, dtype=torch.bfloat16)
    spec = GateSpec((0, 1), 0.9, "relaxed", False)
    with pytest.raises(ConfigError, match="CPU float32/float64 only"):
        recurrence_fast(x, w, None, torch.randn(8, 2, dtype=torch.bfloat16), h, h, spec,
                        pointwise="kernel")  # fmt: skip
    with pytest.raises(ConfigError, match="pointwise='fused'"):
        recurrence_fast(x.float(), w.float(), None, torch.randn(8, 2), h.float(), h.float(),
                        spec, pointwise="fused")  # fmt: skip


def test_kernel_mode_from_environment(monkeypatch):
    for value, mode in [("", "auto"), ("auto", "auto"), ("0", "off"), ("OFF", "off"), ("1", "on")]:
        monkeypatch.setenv("G2LSTM_CPU_KERNEL", value)
        assert kmod.kernel_mode() == mode
    monkeypatch.setenv("G2LSTM_CPU_KERNEL", "0")
    assert kmod.cpu_kernel() is None
    monkeypatch.setenv("G2LSTM_CPU_KERNEL", "maybe")
    with pytest.raises(kmod.KernelUnavailable, match="G2LSTM_CPU_KERNEL='maybe'"):
        kmod.kernel_mode()


def test_failed_build_falls_back_with_one_line_notice(monkeypatch, capsys):
    def broken():
        raise RuntimeError("Ninja is required to load C++ extensions\n(details)")

    monkeypatch.setattr(kmod, "_build", broken)
    monkeypatch.setattr(kmod, "_load", kmod._load.__wrapped__)  # no cached success
    monkeypatch.setenv("G2LSTM_CPU_KERNEL", "auto")
    assert kmod.cpu_kernel() is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "fused CPU kernel unavailable (RuntimeError: (details))" in err
    monkeypatch.setenv("G2LSTM_CPU_KERNEL", "1")
    with pytest.raises(kmod.KernelUnavailable, match="G2LSTM_CPU_KERNEL=1"):
        kmod.cpu_kernel()


def test_wrong_results_in_the_probe_fall_back(monkeypatch, capsys):
    class Wrong:  # a "kernel" that writes nothing
        def forward_step(self, *args):
            args[4].zero_()
            args[5].zero_()

        def backward_step(self, *args):
            pass

    monkeypatch.setattr(kmod, "_build", Wrong)
    monkeypatch.setattr(kmod, "_load", kmod._load.__wrapped__)
    monkeypatch.setenv("G2LSTM_CPU_KERNEL", "auto")
    assert kmod.cpu_kernel() is None
    assert "probe step differs" in capsys.readouterr().err


@pytest.mark.slow
def test_no_compiler_falls_back_cleanly(tmp_path):
    """A real failed build (no compiler): one line on stderr, the layer still equals nn.LSTM."""
    code = (
        "import torch\n"
        "from g2lstm import G2LSTM\n"
        "torch.manual_seed(0)\n"
        "m = G2LSTM(6, 5, tau=0.8, noise_p=0.0).eval()\n"
        "m.set_gate_options(eval_gates='hard')\n"
        "x = torch.randn(4, 3, 6)\n"
        "with torch.no_grad():\n"
        "    a, _ = m(x)\n"
        "m.backend = 'fast-aten'\n"
        "with torch.no_grad():\n"
        "    b, _ = m(x)\n"
        "assert torch.equal(a, b)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, CXX=str(tmp_path / "no-such-compiler"), G2LSTM_CPU_KERNEL="auto")
    env["TORCH_EXTENSIONS_DIR"] = str(tmp_path / "ext")
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    notices = [line for line in proc.stderr.splitlines() if line.startswith("g2lstm:")]
    assert len(notices) == 1, proc.stderr  # no build attempted: the compiler is missing
    assert "fused CPU kernel unavailable (no C++ compiler found" in notices[0]
    assert "install g++ or set CXX" in notices[0]
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # no torch warning either


def test_notice_names_what_is_missing(monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    assert "no C++ compiler found" in kmod._missing_tool()
    monkeypatch.setenv("CXX", sys.executable)  # any program that exists
    real_which = kmod.shutil.which
    monkeypatch.setattr(kmod.shutil, "which", lambda n: None if n == "ninja" else real_which(n))
    assert "ninja not found" in kmod._missing_tool()
    omp = RuntimeError("fatal error: omp.h: No such file or directory")
    assert "no OpenMP" in kmod._explain(omp)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
def test_kernel_activations_are_accurate_over_the_whole_range(dtype):
    """Fast float exp/sigmoid/tanh: within 2e-6 of float64 math from -100 to 100; NaN stays NaN."""
    kern = kmod.cpu_kernel()
    hid, rows = 1000, 4
    grid = torch.linspace(-100, 100, hid * rows, dtype=torch.float64).view(rows, hid)
    grid[0, :400] = torch.linspace(-3, 3, 400, dtype=torch.float64)  # dense around zero
    pre = torch.cat([grid.roll(k, dims=1) for k in range(4)], dim=1)
    c0 = torch.linspace(-2, 2, rows * hid, dtype=torch.float64).view(rows, hid)
    i, f, g, o = pre.split(hid, dim=1)
    want_c = torch.sigmoid(f) * c0 + torch.sigmoid(i) * torch.tanh(g)
    want_h = torch.sigmoid(o) * torch.tanh(want_c)
    pre_d, c0_d = pre.to(dtype), c0.to(dtype)
    pre_d[3, 7] = float("nan")  # an input gate
    c1, h1 = torch.empty_like(c0_d), torch.empty_like(c0_d)
    kern.forward_step(pre_d, torch.zeros_like(pre_d), c0_d, None, c1, h1, None, None, None,
                      [0, 0, 0], [1.0] * 3, False)  # fmt: skip
    tol = 2e-6 if dtype == torch.float32 else 1e-12
    ok = torch.ones_like(c1, dtype=torch.bool)
    ok[3, 7] = False
    assert (c1.double() - want_c)[ok].abs().max() <= tol
    assert (h1.double() - want_h)[ok].abs().max() <= tol
    assert torch.isnan(c1[3, 7]) and torch.isnan(h1[3, 7])


def test_build_finds_pip_ninja_when_not_on_path(monkeypatch, tmp_path):
    """Without ninja on PATH the build puts the pip package's ninja (extra "fast") first."""
    import types

    from torch.utils import cpp_extension

    seen = {}

    def fake_load(**kwargs):
        seen["path"] = os.environ["PATH"]
        seen["flags"] = kwargs["extra_cflags"]
        return "module"

    monkeypatch.setenv("PATH", "/usr/bin")
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setattr(kmod.shutil, "which", lambda name: None)
    monkeypatch.setattr(kmod, "_missing_tool", lambda: "")  # the tools "exist" for this test
    monkeypatch.setitem(sys.modules, "ninja", types.SimpleNamespace(BIN_DIR="/opt/pip-ninja/bin"))
    monkeypatch.setattr(cpp_extension, "load", fake_load)
    assert kmod._build() == "module"
    assert seen["path"].split(os.pathsep)[:2] == ["/opt/pip-ninja/bin", "/usr/bin"]
    assert "-fopenmp" in seen["flags"] and any(
        f.startswith("-DCPU_CAPABILITY=") for f in seen["flags"]
    )


# ---------------------------------------------------------------------- gate noise in the step
def _gate_noise(p: float, schedule: str, seed: int = 2**62 + 77):
    from g2lstm.nn.noise import GateNoise, NoiseSchedule

    key = torch.tensor([seed, seed // 3])  # distinct per-step and per-sequence seeds
    return GateNoise(key, p, NoiseSchedule(schedule))


@needs_kernel
@pytest.mark.parametrize("p", [0.2, 1.0])
@pytest.mark.parametrize("schedule", ["per_step", "mask_per_sequence"])
@pytest.mark.parametrize("rows", [(0, 1), (1, 3)])
def test_kernel_draws_the_reference_noise(p, schedule, rows):
    """The noise the forward step draws itself is the reference's ``GateNoise.materialize``:
    with zero pre-activations the noisy gates are ``sigmoid(B * L)`` (float64), so ``B`` is
    read back exactly (``gate != 1/2``) and ``L`` to rounding, at every step, row and column."""
    from g2lstm.nn.fast.plan import GatePlan
    from g2lstm.nn.fast.steps import StepNoise

    kern = kmod.cpu_kernel()
    batch, hid, steps = 700, 37, 3  # rows over 2 threads; 37: vector tails
    plan = GatePlan.build(GateSpec(rows, 1.0, "relaxed", True), hid)
    draw = _gate_noise(p, schedule)
    width = plan.noise_width
    want = draw.materialize(steps, batch, width, torch.float64)
    mask = draw.sequence_mask(batch, width, torch.float64) if schedule != "per_step" else None
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for t in range(steps):
            pre = torch.zeros(batch, 4 * hid, dtype=torch.float64)
            c = torch.zeros(batch, hid, dtype=torch.float64)
            nz = StepNoise(int(draw.key[0]), p, mask).at(t)
            kern.forward_step(
                pre, torch.zeros_like(pre), c, None, c.clone(), c.clone(), None, None, None,
                list(plan.kernel_kinds), list(plan.kernel_scales), True, noise_seed=nz.seed,
                noise_t=t, noise_p=p, noise_mask=mask, noise_blocks=list(plan.kernel_noise_blocks),
            )  # fmt: skip
            got = torch.cat([pre[:, k * hid : (k + 1) * hid] for k in rows], dim=1)
            assert torch.equal(got != 0.5, want[t] != 0), t  # B, exactly
            torch.testing.assert_close(got.logit(), want[t], atol=1e-9, rtol=1e-9)
            others = [k for k in (0, 1, 2, 3) if k not in rows and k != 2]
            for k in others:  # gates without noise: sigmoid(0)
                assert torch.all(pre[:, k * hid : (k + 1) * hid] == 0.5)
    finally:
        torch.set_num_threads(threads)
    frac = float((want != 0).double().mean())
    assert abs(frac - p) < 0.02  # the mask rate (schedules' semantics: tests/nn/test_noise.py)


@needs_kernel
@pytest.mark.parametrize("schedule", ["per_step", "mask_per_sequence", "noise_per_sequence"])
@pytest.mark.parametrize("mode", ["relaxed", "straight_through"])
def test_kernel_noise_equals_aten_step_noise(schedule, mode):
    """A pass whose noise the kernel draws in the step equals the ATen step's pass on the
    materialised noise: outputs and every gradient, packed, at 2 threads."""
    gen = torch.Generator().manual_seed(1)
    batch, hid = 300, 45
    leaves, _ = _inputs(5, batch, 16, hid, (0, 1), gen)
    lengths = torch.randint(1, 6, (batch,), generator=gen)
    spec = GateSpec((0, 1), 0.7, mode, True)
    draw = _gate_noise(0.4, schedule)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        results = []
        for pointwise in ("aten", "kernel"):
            r = recurrence_fast(*leaves, spec, draw, lengths, "torch", pointwise)
            loss = (r.output * torch.linspace(-1, 1, r.output.numel()).view_as(r.output)).sum()
            grads = torch.autograd.grad(loss + r.c_n.sum(), leaves)
            results.append([r.output, r.h_n, r.c_n, *grads])
    finally:
        torch.set_num_threads(threads)
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)


@needs_kernel
def test_kernel_rejects_bad_noise_arguments():
    kern = kmod.cpu_kernel()
    pre, hw, c = torch.zeros(2, 8), torch.zeros(2, 8), torch.zeros(2, 2)
    args = (pre, hw, c, None, c, c, None, None, None, [0, 0, 0], [1.0] * 3, True)
    with pytest.raises(RuntimeError, match="noise_seed must be >= 0"):
        kern.forward_step(*args, noise_seed=-1, noise_p=0.5, noise_blocks=[0, 1, -1])
    with pytest.raises(RuntimeError, match="noise_p must lie in"):
        kern.forward_step(*args, noise_seed=1, noise_p=0.0, noise_blocks=[0, 1, -1])
    with pytest.raises(RuntimeError, match="out of range"):
        kern.forward_step(*args, noise_seed=1, noise_p=0.5, noise_blocks=[0, 2, -1])
    with pytest.raises(RuntimeError, match="noise_mask"):
        kern.forward_step(*args, noise_seed=1, noise_p=0.5, noise_blocks=[0, 1, -1],
                          noise_mask=torch.ones(2, 3, dtype=torch.bool))  # fmt: skip
