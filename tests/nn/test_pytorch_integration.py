"""G2LSTM as a first-class PyTorch layer: torch.compile, torch.export / ONNX with hard gates,
TorchScript tracing, torch.func, autocast and the custom operators themselves.

Each test here failed on the version before the layer became custom operators (the issue
"A first-class PyTorch layer" lists what each one did then).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from g2lstm import G2LSTM
from g2lstm.nn.fast import ops, recurrence_fast

pytestmark = pytest.mark.slow

T, N, IN, H = 5, 3, 6, 8


def _model(**kw) -> G2LSTM:
    torch.manual_seed(0)
    return G2LSTM(IN, H, num_layers=2, **kw)


def _x() -> torch.Tensor:
    return torch.randn(T, N, IN, generator=torch.Generator().manual_seed(1))


def _grads(model: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


# ---------------------------------------------------------------------- torch.compile
@pytest.mark.parametrize("mode", ["train", "soft", "hard"])
def test_compile_fullgraph_equals_eager_with_no_graph_break(mode):
    torch._dynamo.reset()
    model = _model(noise_p=0.5, tau=0.5)
    if mode != "train":
        model.eval().set_gate_options(eval_gates=mode)
    x = _x()
    # nn.LSTM itself needs allow_rnn for dynamo to trace into it; then the layer is one graph
    # fallback_random: Inductor draws eager's random numbers, so the noise is the same
    with torch._dynamo.config.patch(allow_rnn=True), torch._inductor.config.patch(
        fallback_random=True
    ):
        explain = torch._dynamo.explain(model)(x)
        assert explain.graph_break_count == 0 and explain.graph_count == 1
        # training through Inductor (aot_eager of torch 2.13 trips over the operator's unused
        # empty outputs in its saved-tensor check); eval through aot_eager is quicker
        backend = "inductor" if mode == "train" else "aot_eager"
        compiled = torch.compile(model, fullgraph=True, backend=backend)
        if mode == "train":
            torch.manual_seed(7)
            out, (h, c) = compiled(x)
            (out.sum() + h.sum() + c.sum()).backward()
            got = _grads(model)
            model.zero_grad()
            torch.manual_seed(7)
            out_e, (h_e, c_e) = model(x)
            (out_e.sum() + h_e.sum() + c_e.sum()).backward()
            for g, w in zip(got, _grads(model)):
                torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)
        else:
            with torch.no_grad():
                out, _ = compiled(x)
                out_e, _ = model(x)
        torch.testing.assert_close(out, out_e, atol=1e-5, rtol=1e-4)


def test_compile_inductor_training_step_with_noise():
    """The default backend (Inductor) on a whole model: same loss and gradients as eager for
    the same noise (seeded), no error from the fast path's private GEMM ops."""
    torch._dynamo.reset()
    model = nn.Sequential()
    lstm = _model(noise_p=0.5)

    def step(m, x):
        out, _ = m(x)
        return out.pow(2).mean()

    x = _x()
    # fallback_random: Inductor draws eager's random numbers, so the noise is the same
    with torch._dynamo.config.patch(allow_rnn=True), torch._inductor.config.patch(
        fallback_random=True
    ):
        compiled = torch.compile(lstm, fullgraph=True)
        torch.manual_seed(5)
        loss = step(compiled, x)
        loss.backward()
    got = _grads(lstm)
    lstm.zero_grad()
    torch.manual_seed(5)
    loss_e = step(lstm, x)
    loss_e.backward()
    torch.testing.assert_close(loss, loss_e, atol=1e-5, rtol=1e-4)
    for g, w in zip(got, _grads(lstm)):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)
    del model


def test_compile_model_without_allow_rnn_equals_eager():
    """With dynamo's default (``allow_rnn=False``) it steps around every ``nn.LSTM`` (a
    G2LSTM is one) and compiles the rest of the model; the layer's own forward is then
    compiled as a frame of its own. The result equals eager."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj, self.rnn = nn.Linear(IN, IN), G2LSTM(IN, H)

        def forward(self, x):
            return self.rnn(self.proj(x))[0].tanh()

    torch._dynamo.reset()
    net = Net().eval().requires_grad_(False)
    net.rnn.set_gate_options(eval_gates="hard")
    x = _x()
    torch.testing.assert_close(torch.compile(net)(x), net(x), atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------- export / ONNX
class _WithGates(nn.Module):
    """Returns the output and the first layer's input/forget gates (through a gate hook)."""

    def __init__(self, lstm: G2LSTM) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, x):
        traces = []
        handle = self.lstm.register_gate_hook(lambda m, t: traces.append(t))
        out, _ = self.lstm(x)
        handle.remove()
        return out, traces[0].input, traces[0].forget


@pytest.mark.parametrize("gates", ["hard", "soft"])
def test_torch_export_eval(gates):
    model = _model().eval().set_gate_options(eval_gates=gates)
    x = _x()
    ep = torch.export.export(model, (x,))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert not any("g2lstm" in t for t in targets)  # the reference math, ATen ops only
    with torch.no_grad():
        want, (h, c) = model(x)
    got, (h2, c2) = ep.module()(x)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c2, c, atol=1e-6, rtol=1e-5)


def test_onnx_export_hard_gates_runs_in_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = _WithGates(_model().eval().set_gate_options(eval_gates="hard")).eval()
    x = _x()
    with torch.no_grad():
        want, i_want, f_want = model(x)
    path = str(tmp_path / "g2lstm-hard.onnx")  # (and its external-data file beside it)
    torch.onnx.export(model, (x,), path, dynamo=True, opset_version=18)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out, i_gate, f_gate = sess.run(None, {name: x.numpy()})
    for g in (i_gate, f_gate):
        assert set(torch.from_numpy(g).unique().tolist()) <= {0.0, 1.0}  # exactly binary
    torch.testing.assert_close(torch.from_numpy(i_gate), i_want)
    torch.testing.assert_close(torch.from_numpy(out), want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("gates", ["soft", "hard"])
def test_jit_trace_eval(gates):
    model = _model().eval().set_gate_options(eval_gates=gates)
    x = _x()
    traced = torch.jit.trace(model, (x,))  # check_trace on: two invocations, one graph
    with torch.no_grad():
        torch.testing.assert_close(traced(x)[0], model(x)[0], atol=1e-6, rtol=1e-5)


def test_jit_trace_training():
    model = _model(noise_p=0.0)
    x = _x()
    traced = torch.jit.trace(model, (x,), check_trace=False)
    torch.testing.assert_close(traced(x)[0], model(x)[0], atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------- torch.func
def _loss_fn(model):
    def loss(params, x):
        out, (h, c) = torch.func.functional_call(model, params, (x,))
        return out.pow(2).sum() + h.sum() + c.sum()

    return loss


def test_func_grad_in_training_matches_reference():
    model = _model(noise_p=0.5)
    params = {k: v.detach() for k, v in model.named_parameters()}
    x = _x()
    torch.manual_seed(11)
    got = torch.func.grad(_loss_fn(model))(params, x)
    model.backend = "reference"
    torch.manual_seed(11)
    out, (h, c) = model(x)
    (out.pow(2).sum() + h.sum() + c.sum()).backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(got[name], p.grad, atol=1e-5, rtol=1e-4)


def test_func_vmap_in_training_matches_a_loop():
    model = _model(noise_p=0.5)
    xs = torch.randn(4, T, N, IN)

    def run(x):
        return model(x)[0]

    torch.manual_seed(3)
    got = torch.func.vmap(run, randomness="same")(xs)
    outs = []
    for k in range(xs.shape[0]):
        torch.manual_seed(3)  # "same": one noise draw shared by every vmapped entry
        outs.append(run(xs[k]))
    torch.testing.assert_close(got, torch.stack(outs), atol=1e-5, rtol=1e-4)
    # per-example gradients: vmap over grad
    params = {k: v.detach() for k, v in model.named_parameters()}
    model.set_gate_options(noise_p=0.0)
    per_ex = torch.func.vmap(torch.func.grad(_loss_fn(model)), in_dims=(None, 0))(params, xs)
    one = torch.func.grad(_loss_fn(model))(params, xs[2])
    for name in params:
        torch.testing.assert_close(per_ex[name][2], one[name], atol=1e-5, rtol=1e-4)


def test_first_call_under_functorch_keeps_the_cpu_kernel():
    """In a fresh process whose first G2 forward runs under torch.func, the fused CPU kernel
    is still on afterwards (it used to be switched off for the whole process)."""
    code = textwrap.dedent(
        """
        import torch
        from g2lstm import G2LSTM
        from g2lstm.nn.fast import kernel
        m = G2LSTM(4, 5, noise_p=0.5)
        params = {k: v.detach() for k, v in m.named_parameters()}
        def loss(p, x):
            return torch.func.functional_call(m, p, (x,))[0].sum()
        torch.func.grad(loss)(params, torch.randn(3, 2, 4))
        print("KERNEL", kernel.cpu_kernel() is not None)
        """
    )
    env = dict(os.environ, G2LSTM_CPU_KERNEL="auto")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr
    built_here = _kernel_available()
    assert f"KERNEL {built_here}" in res.stdout, res.stdout + res.stderr


def _kernel_available() -> bool:
    from g2lstm.nn.fast import kernel

    return kernel.cpu_kernel() is not None


# ---------------------------------------------------------------------- autocast
#: nn.LSTM's dtypes under CPU bf16 autocast (output, h, c, input grad, weight grad), where
#: oneDNN runs it: autocast casts oneDNN's RNN layer op (``mkldnn_rnn_layer``) to bf16.
NN_LSTM_CPU_AUTOCAST = (torch.bfloat16,) * 3 + (torch.float32,) * 2


def _onednn_cannot_bf16(e: RuntimeError) -> bool:
    """nn.LSTM under CPU bf16 autocast fails inside oneDNN on a CPU without bf16 support (seen
    on an AMD EPYC without AVX-512, torch 2.13)."""
    return "primitive descriptor" in str(e) and not torch.ops.mkldnn._is_mkldnn_bf16_supported()


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("gates", ["soft", "hard"])
def test_autocast_dtypes_match_nn_lstm(train, gates):
    """The dtypes nn.LSTM gives under CPU autocast, measured here when nn.LSTM runs, and the
    recorded ones where nn.LSTM itself fails (G2LSTM does not use oneDNN and runs anyway)."""
    torch.manual_seed(0)
    ref = nn.LSTM(IN, H, num_layers=2).train(train)
    g2 = G2LSTM.from_lstm(ref, tau=0.9, noise_p=0.2, eval_gates=gates).train(train)
    x = _x().requires_grad_(True)

    def dtypes(m: nn.Module) -> tuple[torch.dtype, ...]:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, (h, c) = m(x)
        out.float().sum().backward()
        got = (out.dtype, h.dtype, c.dtype, x.grad.dtype, m.weight_hh_l0.grad.dtype)
        x.grad = None
        return got

    try:
        want = dtypes(ref)
    except RuntimeError as e:
        if not _onednn_cannot_bf16(e):
            raise
        want = NN_LSTM_CPU_AUTOCAST
    assert want == NN_LSTM_CPU_AUTOCAST
    assert dtypes(g2) == want


def test_autocast_accuracy_against_float64_reference():
    """In bf16 (what the layer runs under CPU autocast) the fast recurrence's error against
    the float64 reference, for the same noise, is of the order of nn.LSTM's own bf16 error
    against float64."""
    from g2lstm.nn.functional import GateMode, GateSpec
    from g2lstm.nn.reference import recurrence_reference

    torch.manual_seed(0)
    ref = nn.LSTM(IN, H).eval()
    x = _x()
    exact = ref.double()(x.double())[0]
    with torch.no_grad():
        lstm_bf16 = ref.to(torch.bfloat16)(x.to(torch.bfloat16))[0]
    err_lstm = (lstm_bf16.double() - exact).abs().max().item()
    ws = [ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0 + ref.bias_hh_l0]
    w_ih, w_hh, b = (w.detach().double() for w in ws)
    noise = (torch.rand(T, N, 2 * H, dtype=torch.float64) < 0.2) * torch.randn(T, N, 2 * H)
    h0 = torch.zeros(N, H, dtype=torch.float64)
    spec = GateSpec((0, 1), 0.9, GateMode.RELAXED, True)
    want = recurrence_reference(
        torch.nn.functional.linear(x.double(), w_ih, b), h0, h0, w_hh, None, spec, noise
    ).output
    bf = torch.bfloat16
    with torch.no_grad():
        got = recurrence_fast(
            x.to(bf), w_ih.to(bf), b.to(bf), w_hh.to(bf), h0.to(bf), h0.to(bf), spec,
            noise.to(bf),
        ).output  # fmt: skip
    assert got.dtype == bf
    err_g2 = (got.double() - want).abs().max().item()
    assert err_g2 <= max(3 * err_lstm, 2e-2), (err_g2, err_lstm)


# ---------------------------------------------------------------------- the operators
def _op_args(mask: bool, mode: str = "relaxed"):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(T, N, IN, generator=g, dtype=torch.float64)
    w_ih = torch.randn(4 * H, IN, generator=g, dtype=torch.float64) * 0.3
    b = torch.randn(4 * H, generator=g, dtype=torch.float64) * 0.1
    w_hh = torch.randn(4 * H, H, generator=g, dtype=torch.float64) * 0.3
    h0 = torch.randn(N, H, generator=g, dtype=torch.float64)
    c0 = torch.randn(N, H, generator=g, dtype=torch.float64)
    noise = torch.randn(T, N, 2 * H, generator=g, dtype=torch.float64)
    m = (torch.arange(T).unsqueeze(1) < torch.tensor([5, 3, 1])).unsqueeze(-1) if mask else None
    return x, w_ih, b, w_hh, h0, c0, noise, m, [0, 1], 0.9, mode, "auto", "auto"


@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("mode", ["relaxed", "straight_through"])
def test_opcheck_training_operator(mask, mode):
    args = list(_op_args(mask, mode))
    for i in range(6):
        args[i] = args[i].requires_grad_(True)
    torch.library.opcheck(ops.recurrence_train, tuple(args))


@pytest.mark.parametrize("schedule", ["per_step", "mask_per_sequence"])
def test_opcheck_training_operator_drawing_its_noise(schedule):
    """The noise as generator seeds (drawn in the fused CPU step, else materialised)."""
    args = list(_op_args(True, "relaxed"))
    args[6] = None  # no noise tensor: the seeds instead
    for i in range(6):
        args[i] = args[i].requires_grad_(True)
    key = torch.tensor([2**62 + 5, 17])
    torch.library.opcheck(ops.recurrence_train, (*args, key, 0.3, schedule))


@pytest.mark.parametrize("mask", [False, True])
def test_opcheck_inference_operator(mask):
    torch.library.opcheck(ops.recurrence_inference, _op_args(mask, "hard"))
