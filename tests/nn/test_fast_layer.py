"""G2LSTM with its automatic fast path equals G2LSTM on the reference loop, every option.

Both runs draw the same noise (same generator seed) and the same DropConnect mask (same
global seed); outputs, final states and all gradients must agree. Also: which
implementation the dispatcher picks, and the fallback of the private oneDNN op.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from g2lstm import G2LSTM
from g2lstm.errors import ConfigError
from g2lstm.nn import backends
from g2lstm.nn.fast import gemm, routes

IN, H, T, N = 5, 6, 7, 4

OPTIONS = {  # name: (constructor kwargs, packed, train)
    "default": (dict(), False, True),
    "2-layers-bidir-packed": (dict(num_layers=2, bidirectional=True, dropout=0.3), True, True),
    "weight-dropout-batch-first": (dict(weight_dropout=0.4, batch_first=True), False, True),
    "straight-through-ifo": (dict(estimator="straight_through", noisy_gates="i,f,o"), True, True),
    "mask-per-sequence": (dict(noise_schedule="mask_per_sequence", tau=0.5), False, True),
    "noise-per-sequence": (dict(noise_schedule="noise_per_sequence", num_layers=2), True, True),
    "hard-eval-bidir-packed": (dict(eval_gates="hard", bidirectional=True), True, False),
    "sample-eval": (dict(eval_gates="sample", num_layers=2), False, False),
    "proj-fallback": (dict(proj_size=3, bidirectional=True), True, True),
}


def _run(model: G2LSTM, backend: str, packed: bool, train: bool, dtype: torch.dtype):
    model.backend = backend
    model.train(train)
    model.generator = torch.Generator().manual_seed(5)
    torch.manual_seed(9)  # dropout and DropConnect masks
    model.zero_grad(set_to_none=True)
    shape = (N, T, IN) if model.batch_first else (T, N, IN)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    d = model.num_layers * model.num_directions
    h0 = torch.randn(d, N, model.proj_size or H, dtype=dtype, requires_grad=True)
    c0 = torch.randn(d, N, H, dtype=dtype, requires_grad=True)
    inp = x
    if packed:
        inp = pack_padded_sequence(
            x, torch.tensor([3, T, 1, 5]), batch_first=model.batch_first, enforce_sorted=False
        )
    out, (h_n, c_n) = model(inp, (h0, c0))
    data = out.data if isinstance(out, PackedSequence) else out
    w = torch.linspace(-1, 1, data.numel(), dtype=dtype).view_as(data)
    ((data * w).sum() + (h_n**2).sum() + (c_n * 0.5).sum()).backward()
    grads = [x.grad, h0.grad, c0.grad] + [p.grad for p in model.parameters()]
    return [data, h_n, c_n, *grads]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("backend", ["auto", "fast-mm", "fast-onednn", "fast-aten"])
@pytest.mark.parametrize("name", list(OPTIONS))
def test_layer_fast_equals_reference(name, backend, dtype):
    kwargs, packed, train = OPTIONS[name]
    if backend != "auto" and "proj_size" in kwargs:
        backend = "auto"  # fast-* refuse projections (tested below)
    model = G2LSTM(IN, H, noise_p=0.5, dtype=dtype, **kwargs)
    want = _run(model, "reference", packed, train, dtype)
    got = _run(model, backend, packed, train, dtype)
    tol = dict(atol=2e-5, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-10, rtol=1e-9)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
            continue
        torch.testing.assert_close(g, w, **tol)


def test_dispatcher_choices():
    x32, x64 = torch.zeros(3, 2, 4), torch.zeros(3, 2, 4, dtype=torch.float64)
    # routes and steps are passed on unresolved: the operator resolves them when it runs
    assert backends.choose(x32, None) == backends.Choice("fast", "auto")
    assert backends.choose(x32, None, backend="fast-onednn") == backends.Choice("fast", "onednn")
    assert backends.choose(x64, None) == backends.Choice("fast", "auto")
    assert backends.choose(x32, None, backend="fast-mm") == backends.Choice("fast", "torch")
    aten = backends.Choice("fast", "auto", pointwise="aten")
    assert backends.choose(x32, None, backend="fast-aten") == aten
    assert backends.choose(x32, None, backend="reference").impl == "reference"
    rec = backends.choose(x32, None, record=True)
    assert rec.impl == "reference" and "record" in rec.reason
    proj = backends.choose(x32, torch.zeros(2, 3))
    assert proj.impl == "reference" and "proj_size" in proj.reason
    assert backends.choose(torch.zeros(0, 2, 4), None).impl == "reference"
    with pytest.raises(ConfigError, match="proj_size"):
        backends.choose(x32, torch.zeros(2, 3), backend="fast")
    with pytest.raises(ConfigError, match="backend="):
        backends.choose(x32, None, backend="cudnn")
    # what "auto" resolves to inside the operator
    onednn = "onednn" if gemm.onednn_available() else "torch"
    auto = onednn if routes.preferred_cpu_route() == "onednn" else "torch"
    assert routes.resolve_route(x32, "auto") == auto
    assert routes.resolve_route(x64, "onednn") == "torch"


def test_backend_strings_are_implementation_combinations():
    """The legacy single-string ``backend`` keeps working: each value is one combination of
    the independent choices, and reads back as the same string."""
    from g2lstm.nn.backends import BACKENDS, Implementation

    model = G2LSTM(4, 5)
    assert model.backend == "auto" and model.implementation == Implementation()
    for name, impl in BACKENDS.items():
        model.backend = name
        assert model.implementation == impl and model.backend == name
    model.backend = Implementation(algorithm="fast", step="aten")
    assert model.backend == "fast-aten"
    combo = Implementation(gemm="onednn", step="aten")  # no legacy name
    model.backend = combo
    assert model.backend == combo
    with pytest.raises(ConfigError, match="backend='cudnn'"):
        model.backend = "cudnn"
    with pytest.raises(ConfigError, match="step='cuda'"):
        Implementation(step="cuda")
    # old pickles stored the string attribute
    state = model.__dict__.copy()
    state.pop("implementation")
    state["backend"] = "fast-mm"
    fresh = G2LSTM.__new__(G2LSTM)
    fresh.__setstate__(state)
    assert fresh.implementation == BACKENDS["fast-mm"]


def test_layer_uses_fast_path_when_supported(monkeypatch):
    calls = []
    real = backends.recurrence_fast

    def spy(*args, **kwargs):
        calls.append(args[9])  # the GEMM route
        return real(*args, **kwargs)

    monkeypatch.setattr(backends, "recurrence_fast", spy)
    model = G2LSTM(IN, H, num_layers=2, bidirectional=True).train()
    model(torch.randn(T, N, IN))
    assert calls == ["auto"] * 4  # resolved inside the operator
    calls.clear()
    seen = []
    model.register_gate_hook(lambda m, trace: seen.append(trace))
    model(torch.randn(T, N, IN))
    assert calls == [] and len(seen) == 4  # recording runs the reference loop


def _break_probe(monkeypatch, capsys, loader: str, probe: str) -> None:
    """Make ``gemm.<loader>`` raise: the uncached ``gemm.<probe>`` must answer False with a
    notice on stderr; then ``gemm.<probe>`` answers False for the rest of the test."""

    def broken():
        raise RuntimeError("no such op")

    monkeypatch.setattr(gemm, loader, broken)
    assert getattr(gemm, probe).__wrapped__() is False
    assert "unavailable (RuntimeError); using " in capsys.readouterr().err
    monkeypatch.setattr(gemm, probe, lambda: False)


def test_onednn_probe_failure_falls_back_with_notice(monkeypatch, capsys):
    _break_probe(monkeypatch, capsys, "_op", "onednn_available")
    assert routes.resolve_route(torch.zeros(2, 2)) == "torch"
    assert routes.resolve_route(torch.zeros(2, 2), "onednn") == "torch"
    with pytest.raises(ValueError, match="route"):
        routes.resolve_route(torch.zeros(2, 2), "mkl")


def test_preferred_cpu_route_env_override(monkeypatch):
    monkeypatch.setenv("G2LSTM_GEMM_ROUTE", "onednn")
    assert routes.preferred_cpu_route() == "onednn"
    monkeypatch.setenv("G2LSTM_GEMM_ROUTE", "torch")
    assert routes.preferred_cpu_route() == "torch"
    monkeypatch.setenv("G2LSTM_GEMM_ROUTE", "mkl")  # alias of torch (MKL on CPU)
    assert routes.preferred_cpu_route() == "torch"
    monkeypatch.delenv("G2LSTM_GEMM_ROUTE")
    assert routes.preferred_cpu_route() == gemm.DEFAULT_ROUTE  # never a vendor name
    monkeypatch.setenv("G2LSTM_GEMM_ROUTE", "cublas")
    with pytest.raises(ConfigError, match="G2LSTM_GEMM_ROUTE"):
        routes.preferred_cpu_route()


def test_vendor_spec_choices():
    from g2lstm.nn.functional import GateSpec

    train = GateSpec((0, 1), 0.9, "relaxed", True)
    soft = GateSpec((0, 1), 0.9, "relaxed", False)
    hard = GateSpec((0, 1), 0.9, "hard", False)
    assert backends.vendor_spec(train, "auto", torch.float32) is None
    assert backends.vendor_spec(soft, "auto", torch.float32) == soft
    assert backends.vendor_spec(soft, "reference", torch.float32) is None
    assert backends.vendor_spec(hard, "auto", torch.float32) is None  # exact fast path
    fused = backends.vendor_spec(hard, "fused-hard", torch.float32)
    assert fused is not None and 1.0 / fused.tau == 2.0**60 and fused.rows == (0, 1)
    assert backends.vendor_spec(hard, "fused-hard", torch.float16) is None


@pytest.mark.parametrize("bidir", [False, True])
def test_fused_hard_backend_matches_exact_hard_gates(bidir):
    model = G2LSTM(IN, H, 2, bidirectional=bidir, eval_gates="hard").eval()
    x = torch.randn(T, N, IN)
    model.backend = "reference"
    with torch.no_grad():
        want, (h1, c1) = model(x)
        model.backend = "fused-hard"
        got, (h2, c2) = model(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c2, c1, atol=1e-5, rtol=1e-5)
    model.train()  # training with backend="fused-hard" takes the fast path as "auto"
    out, _ = model(x)
    out.sum().backward()
    assert model.weight_hh_l0.grad is not None


def test_unpacked_torch_route_and_mkl_probe_failure(monkeypatch, capsys):
    """Without MKL's packed GEMM (probe failed) the fast path still equals the reference."""
    _break_probe(monkeypatch, capsys, "_mkl_ops", "mkl_packed_available")
    _assert_training_matches_reference("fast-mm")


def _assert_training_matches_reference(backend: str) -> None:
    """A 2-layer packed-sequence training pass on ``backend`` equals the reference loop."""
    model = G2LSTM(IN, H, num_layers=2, noise_p=0.5)
    want = _run(model, "reference", True, True, torch.float32)
    got = _run(model, backend, True, True, torch.float32)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=2e-5, rtol=1e-4)


def test_step_gemm_matches_matmul():
    w = torch.randn(12, 5)
    x, add = torch.randn(3, 5), torch.randn(3, 12)
    names = ["torch"] + (["onednn"] if gemm.onednn_available() else [])
    b = torch.randn(12)
    w_t = torch.randn(5, 12)  # a transposed view as the weight (the backward's W_hh^T)
    for route in names:
        step = gemm.StepGemm(w, 3, route)
        torch.testing.assert_close(step(x), x @ w.t())
        torch.testing.assert_close(step(x, add=add), add + x @ w.t())
        with_bias = gemm.StepGemm(w, 3, route, b)
        torch.testing.assert_close(with_bias(x), x @ w.t() + b)
        torch.testing.assert_close(with_bias(x, add=add), add + x @ w.t() + b)
        torch.testing.assert_close(gemm.StepGemm(w_t.t(), 3, route)(x), x @ w_t)
        plain = gemm.StepGemm(w_t.t(), 3, route, pack=False)  # the view read as it is
        assert plain.packed is None
        torch.testing.assert_close(plain(x), x @ w_t)
        torch.testing.assert_close(gemm.StepGemm(w, 3, route, b, pack=False)(x), x @ w.t() + b)
    assert (gemm.StepGemm(w, 3, "torch").packed is not None) == gemm.mkl_packed_available()
    packed = gemm.StepGemm(w, 3, "onednn").packed
    assert (packed is not None) == gemm.onednn_packed_available()
    assert gemm.StepGemm(w.double(), 3, "torch").packed is None
    assert gemm.StepGemm(w.double(), 3, "onednn").packed is None


def test_onednn_packing_probe_failure_keeps_the_plain_onednn_route(monkeypatch, capsys):
    if not gemm.onednn_available():
        pytest.skip("oneDNN GEMM not available")
    _break_probe(monkeypatch, capsys, "_onednn_pack", "onednn_packed_available")
    w, x = torch.randn(12, 5), torch.randn(3, 5)
    step = gemm.StepGemm(w, 3, "onednn")
    assert step.packed is None
    torch.testing.assert_close(step(x), x @ w.t())
    _assert_training_matches_reference("fast-onednn")


def test_weight_grad_reads_the_transposed_gradient_in_place():
    grad, inp = torch.randn(40, 12), torch.randn(40, 5)
    for route in ["torch"] + (["onednn"] if gemm.onednn_available() else []):
        want = grad.t() @ inp
        torch.testing.assert_close(gemm.weight_grad(grad, inp, route), want)
        got = gemm.weight_grad(grad, None, route, inp_t=inp.t().contiguous())
        torch.testing.assert_close(got, want)
        got = gemm.weight_grad(grad, inp, route, grad_t=grad.t().contiguous())
        torch.testing.assert_close(got, want)
        assert got.is_contiguous()  # else autograd would copy it into .grad's layout


def test_backward_gets_no_zero_filled_gradient_for_the_saved_state_outputs(monkeypatch):
    """The fast op's saved-state outputs (gates, cell states, ...) never get a gradient;
    autograd must pass ``None`` for them, not fill a zero tensor the size of the
    ``(T, N, 4H)`` gates (~2% of a B80 H1150 training step)."""
    from g2lstm.nn.fast import ops

    seen = []
    original = ops._backward

    def spy(ctx, *grads):
        seen.append(grads)
        return original(ctx, *grads)

    monkeypatch.setattr(ops, "_backward", spy)
    model = G2LSTM(IN, H)
    x = torch.randn(6, 3, IN, requires_grad=True)
    model(x)[0].sum().backward()
    (grads,) = seen
    assert grads[0] is not None  # dL/dy
    assert all(g is None for g in grads[3:])  # gates, cs, hs, s_buf
    assert x.grad is not None and model.weight_hh_l0.grad is not None


@pytest.mark.parametrize("backend", ["fast-mm", "fast-onednn"])
def test_inference_reuses_the_packed_weight_until_it_changes(backend):
    """Hard-gate inference packs ``weight_hh`` once; every in-place change re-packs it."""
    import gc

    library = "mkl" if backend == "fast-mm" else "onednn"
    available = gemm.mkl_packed_available if library == "mkl" else gemm.onednn_packed_available
    if not available():
        pytest.skip(f"{library} packed GEMM not available")
    model = G2LSTM(IN, H, eval_gates="hard").eval()
    model.backend = backend  # this route packs with ``library`` on CPU float32
    x = torch.randn(6, 3, IN)
    w = model.weight_hh_l0
    slot = (library, 3)
    with torch.no_grad():
        want = model(x)[0]
        packed = gemm._PACKED[id(w)][1][slot][2]
        torch.testing.assert_close(model(x)[0], want, atol=0, rtol=0)
        assert gemm._PACKED[id(w)][1][slot][2] is packed  # reused, not re-packed
        model.weight_hh_l0.mul_(-1.0)  # in place: the version counter moves
        flipped = model(x)[0]
        assert gemm._PACKED[id(w)][1][slot][2] is not packed
        model.load_state_dict({**model.state_dict(), "weight_hh_l0": torch.zeros(4 * H, H)})
        zeroed = model(x)[0]
    ref = G2LSTM(IN, H, eval_gates="hard").eval()
    ref.backend = "reference"
    ref.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(zeroed, ref(x)[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(flipped, want)
    ident = id(w)
    del model, w
    gc.collect()
    assert ident not in gemm._PACKED  # freed with its weight


def test_blocked_transpose():
    w = torch.randn(1030, 7)
    assert torch.equal(gemm.transpose(w, block=256), w.t())
    assert gemm.transpose(w, block=256).is_contiguous()
    assert torch.equal(gemm.transpose(w[:5]), w[:5].t())
    buf = torch.zeros(7, 1040)  # into a column slice (rows strided), the rest untouched
    out = gemm.transpose(w, block=256, out=buf[:, 10:])
    assert out.data_ptr() == buf[:, 10:].data_ptr()
    assert torch.equal(buf[:, 10:], w.t()) and not buf[:, :10].any()


def test_soft_inference_caches_scaled_weights_until_they_change():
    import gc

    model = G2LSTM(IN, H, tau=0.5).eval()
    x = torch.randn(T, N, IN)
    with torch.no_grad():
        first, _ = model(x)
        ids = {k for k in backends._SCALED_CACHE}
        assert {id(p) for p in model.parameters()} <= ids  # cached
        again, _ = model(x)
        assert torch.equal(first, again)
        model.weight_hh_l0.mul_(0.5)  # in-place change (optimizer step, load_state_dict)
        changed, _ = model(x)
        want, _ = model.to_lstm()(x)
    torch.testing.assert_close(changed, want)
    assert not torch.allclose(changed, first)
    out, _ = model(x)  # with grad enabled: scaled inside autograd, gradients flow
    out.sum().backward()
    assert model.weight_ih_l0.grad is not None
    fresh = G2LSTM(IN, H, tau=0.5).eval()
    with torch.no_grad():
        fresh(x)
    keys = [id(p) for p in fresh.parameters()]
    assert all(k in backends._SCALED_CACHE for k in keys)
    del fresh
    gc.collect()
    assert not any(k in backends._SCALED_CACHE for k in keys)  # entries leave with the model
