"""The measured GEMM-route choice: timer-driven choice, caches, environment, where it may run."""

from __future__ import annotations

import json

import pytest
import torch

from g2lstm import G2LSTM
from g2lstm.errors import ConfigError
from g2lstm.nn.fast import autotune, gemm, loop, route_cache, routes

pytestmark = pytest.mark.skipif(not gemm.onednn_available(), reason="oneDNN GEMM not available")

LIKE = torch.zeros(2, 2)
SHAPE = (7, 5, 5, 4)  # steps, batch, input size, hidden: tiny, so the real workloads are cheap


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    """Each test: its own cache folder, nothing in memory, no route forced, and a machine
    that counts as idle (this suite may run beside other jobs)."""
    monkeypatch.setattr(autotune, "machine_busy", lambda: False)
    monkeypatch.setenv("G2LSTM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("G2LSTM_GEMM_ROUTE", raising=False)
    monkeypatch.delenv("G2LSTM_AUTOTUNE", raising=False)
    autotune.clear()
    yield
    autotune.clear()


def _fake_timer(monkeypatch, seconds: dict[str, dict[str, float]]) -> list[tuple[str, str]]:
    """Replace the timer: ``(route, role)`` takes ``seconds[route][role]``; returns the calls."""
    calls: list[tuple[str, str]] = []

    def fake(label, fn):
        fn()  # the real workload still runs (it must work), its time is ignored
        calls.append(label)
        return seconds[label[0]][label[1]]

    monkeypatch.setattr(autotune, "_time", fake)
    return calls


def _no_timer(monkeypatch) -> None:
    def refuse(label, fn):
        raise AssertionError(f"measured {label} although it must not")

    monkeypatch.setattr(autotune, "_time", refuse)


BACKWARD = {"bpack": 1e-4, "bstep": 1e-4, "bplain": 1e-4, "wgrad": 1e-4}
FAST_ONEDNN = {
    "onednn": {"step": 1e-4, "pack": 1e-4, "proj": 1e-4, **BACKWARD},
    "torch": {"step": 2e-4, "pack": 2e-4, "proj": 2e-4, **BACKWARD},
}
FAST_TORCH = {"onednn": FAST_ONEDNN["torch"], "torch": FAST_ONEDNN["onednn"]}


@pytest.mark.parametrize(("times", "want"), [(FAST_ONEDNN, "onednn"), (FAST_TORCH, "torch")])
def test_the_faster_route_is_chosen(monkeypatch, times, want):
    calls = _fake_timer(monkeypatch, times)
    assert routes.resolve_route(LIKE, shape=SHAPE) == want
    # 2 routes x (the per-step product x STEP_CALLS + the projection); the backward's products
    # are not timed until a backward pass asks (test_inference_never_times_the_backward)
    per_round = 2 * (1 + autotune.STEP_CALLS)
    packs = 2  # "pack" per route, in the first two rounds only
    rounds = 2 + (len(calls) - 2 * (per_round + packs)) // per_round
    assert autotune.MIN_ROUNDS <= rounds <= autotune.MAX_ROUNDS
    assert len(calls) == 2 * (per_round + packs) + per_round * (rounds - 2)
    assert {route for route, _ in calls} == {"onednn", "torch"}
    roles = [role for _, role in calls]
    assert roles.count("pack") == 4  # twice per route
    assert roles.count("step") == 2 * autotune.STEP_CALLS * rounds
    assert set(roles) == {"pack", "step", "proj"}
    n = len(calls)
    assert routes.resolve_route(LIKE, shape=SHAPE) == want  # cached: not measured again
    assert routes.resolve_route(LIKE, shape=(50, 6, 5, 4)) == want  # same bucket (5 and 6)
    assert len(calls) == n
    assert routes.resolve_route(LIKE, shape=(7, 7, 5, 4)) == want  # batch 7: bucket 8, measured
    assert len(calls) > n
    # forcing a route or a non-CPU-float32 tensor never measures
    assert routes.resolve_route(LIKE, "torch", shape=SHAPE) == "torch"
    assert routes.resolve_route(LIKE, "onednn", shape=(1, 1, 2, 2)) == "onednn"
    assert routes.resolve_route(LIKE.double(), shape=(1, 1, 2, 2)) == "torch"
    assert routes.resolve_route(LIKE, shape=None) == gemm.DEFAULT_ROUTE


def test_the_choice_weighs_packing_against_the_steps(monkeypatch):
    """oneDNN: slow to pack, fast per step; it pays off only over enough steps."""
    times = {
        "onednn": {"step": 1e-4, "pack": 5e-3, "proj": 1e-4, **BACKWARD},
        "torch": {"step": 2e-4, "pack": 0.0, "proj": 1e-4, **BACKWARD},
    }
    _fake_timer(monkeypatch, times)
    assert routes.resolve_route(LIKE, shape=(10, 5, 5, 4)) == "torch"  # 1 ms < 5 ms + 1 ms
    assert routes.resolve_route(LIKE, shape=(200, 5, 5, 4)) == "onednn"  # 25 ms < 40 ms
    costs = {"step": 1e-3, "pack": 2e-3, "proj": 4e-3}
    assert autotune.estimate(costs, 10, autotune.PROJ_ROWS) == pytest.approx(1e-2 + 4e-2 + 2e-3)


def test_near_ties_keep_the_first_route(monkeypatch):
    """Within the margin the first route (oneDNN) stays: noise must not flip near-ties."""
    near = {
        "onednn": FAST_ONEDNN["onednn"],
        "torch": {k: v * 0.97 for k, v in FAST_ONEDNN["onednn"].items()},
    }
    _fake_timer(monkeypatch, near)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "onednn"
    autotune.clear()
    clear = {"onednn": near["onednn"], "torch": {k: v * 0.9 for k, v in near["onednn"].items()}}
    _fake_timer(monkeypatch, clear)
    assert routes.resolve_route(LIKE, shape=(7, 7, 5, 4)) == "torch"


def test_one_thread_is_timed_in_thread_cpu_time(monkeypatch):
    """With one thread, time another process takes from this one does not count."""
    seen = []
    monkeypatch.setattr(autotune.time, "thread_time", lambda: seen.append("cpu") or 0.0)
    torch.set_num_threads(1)
    assert autotune._time(("onednn", "step"), lambda: None) == 0.0
    assert seen == ["cpu", "cpu"]


def test_batch_buckets():
    got = [autotune.batch_bucket(b) for b in (0, 1, 2, 3, 4, 5, 6, 7, 20, 24, 25, 80, 96, 97)]
    assert got == [1, 1, 2, 3, 4, 6, 6, 8, 24, 24, 32, 96, 96, 128]


def _cpuinfo(name: str, family: int, model: int, flags: str) -> str:
    block = f"processor\t: {{}}\nvendor_id\t: X\ncpu family\t: {family}\nmodel\t\t: {model}\n"
    block += f"model name\t: {name}\nstepping\t: 1\nflags\t\t: fpu {flags}\n"
    return "\n".join(block.format(k) for k in range(2))


def test_describe_cpu_tells_apart_generations_behind_one_vm_name():
    milan = autotune.describe_cpu(_cpuinfo("AMD EPYC", 25, 1, "avx avx2 fma"))
    genoa = autotune.describe_cpu(_cpuinfo("AMD EPYC", 25, 17, "avx avx2 avx512f avx512_bf16"))
    assert milan == "AMD EPYC (family 25 model 1, AVX2)"
    assert genoa == "AMD EPYC (family 25 model 17, AVX-512)"
    spr = autotune.describe_cpu(
        _cpuinfo("Intel(R)  Xeon(R) Processor", 6, 143, "avx2 avx512f amx_tile")
    )
    assert spr == "Intel(R) Xeon(R) Processor (family 6 model 143, AVX-512, AMX)"
    assert autotune.describe_cpu("model name : Some CPU\n") == "Some CPU"  # no other fields
    assert autotune.describe_cpu("processor : 0\nflags : avx2\n") is None  # no name
    assert autotune.describe_cpu("") is None


def test_disk_cache_round_trip_keyed_by_cpu_model(monkeypatch, tmp_path):
    _fake_timer(monkeypatch, FAST_TORCH)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "torch"
    path = tmp_path / "cache" / autotune.FILE_NAME
    data = json.loads(path.read_text())
    (key,) = data["entries"]
    assert data["format"] == 4 and autotune.cpu_model() in key and torch.__version__ in key
    assert f"{torch.get_num_threads()} threads" in key and "float32" in key and "N6 I5 H4" in key
    assert not list(path.parent.glob(".*"))  # no temporary file left
    # a new process (memory cleared) reads the file and measures nothing
    autotune.clear()
    _no_timer(monkeypatch)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "torch"
    # another CPU model, torch version or thread count is another key: measured again
    autotune.clear()
    monkeypatch.setattr(autotune, "cpu_model", lambda: "Some Other CPU 9000")
    calls = _fake_timer(monkeypatch, FAST_ONEDNN)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "onednn"
    assert calls
    assert len(json.loads(path.read_text())["entries"]) == 2  # merged, not overwritten


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"format": 4, "entries": {"k": 3}}),
        # a route with part of a role group, or a role that does not exist
        json.dumps({"format": 4, "entries": {"k": {"onednn": {"step": 1e-4}}}}),
        json.dumps({"format": 4, "entries": {"k": {"onednn": {**BACKWARD, "x": 1.0}}}}),
    ],
)
def test_corrupt_cache_is_ignored_with_one_notice(monkeypatch, tmp_path, capsys, content):
    path = tmp_path / "cache" / autotune.FILE_NAME
    path.parent.mkdir()
    path.write_text(content)
    _fake_timer(monkeypatch, FAST_TORCH)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "torch"
    assert routes.resolve_route(LIKE, shape=(7, 7, 5, 4)) == "torch"  # another bucket
    err = capsys.readouterr().err
    assert err.count("ignoring the GEMM route cache") == 1 and str(path) in err
    assert len(json.loads(path.read_text())["entries"]) == 2  # rewritten, valid


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_older_cache_format_is_measured_again_without_a_notice(
    monkeypatch, tmp_path, capsys, version
):
    """A cache of an older format (1: before the backward's timings, 2: all roles of both
    routes at once, 3: before the weight gradients' timings) is replaced quietly."""
    path = tmp_path / "cache" / autotune.FILE_NAME
    path.parent.mkdir()
    old = {"onednn": {"step": 1e-4, "pack": 1e-4, "proj": 1e-4}}
    path.write_text(json.dumps({"format": version, "entries": {"k": old}}))
    calls = _fake_timer(monkeypatch, FAST_TORCH)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "torch"
    assert calls and "ignoring" not in capsys.readouterr().err
    data = json.loads(path.read_text())
    assert data["format"] == 4 and "k" not in data["entries"]


@pytest.mark.parametrize(
    ("bpack", "bstep", "bplain", "steps", "want"),
    [
        (2e-3, 1e-4, 1.2e-4, 10, False),  # 1.2 ms plain < 0.95 x (2 + 1) ms packed
        (2e-3, 1e-4, 1.2e-4, 1000, True),  # 120 ms plain > 102 ms packed: packing pays
        (0.0, 1e-4, 0.97e-4, 10, True),  # within the margin: keep packing
    ],
)
def test_the_backward_packs_only_where_it_pays(monkeypatch, bpack, bstep, bplain, steps, want):
    """Packing W_hh^T costs once per call; over few steps reading W_hh as it is is cheaper."""
    times = {
        r: {**c, "bpack": bpack, "bstep": bstep, "bplain": bplain} for r, c in FAST_ONEDNN.items()
    }
    calls = _fake_timer(monkeypatch, times)
    shape = (steps, 5, 5, 4)
    assert routes.backward_packing(LIKE, "onednn", shape) is want
    # only the route in use, and only the backward's products, are measured
    assert {route for route, _ in calls} == {"onednn"}
    assert {role for _, role in calls} == {"bpack", "bstep", "bplain"}
    n = len(calls)
    assert routes.resolve_route(LIKE, shape=shape) == "onednn"  # the forward's measured now
    assert {route for route, _ in calls[n:]} == {"onednn", "torch"}
    assert {role for _, role in calls[n:]} == {"pack", "step", "proj"}
    n = len(calls)
    assert routes.backward_packing(LIKE, "onednn", shape) is want  # cached
    assert routes.resolve_route(LIKE, shape=shape) == "onednn"
    assert len(calls) == n
    # not measured (and packed, as before) where it cannot matter or must not measure
    _no_timer(monkeypatch)
    assert routes.backward_packing(LIKE.double(), "torch", shape) is True
    monkeypatch.setenv("G2LSTM_AUTOTUNE", "0")
    assert routes.backward_packing(LIKE, "onednn", (9, 300, 5, 4)) is True


def test_inference_never_times_the_backward(monkeypatch, tmp_path):
    """A process that only runs inference times the forward's products alone; the first
    backward pass then times the backward's, on the route chosen for the forward only, and
    both groups end up in one disk entry that a later process reads without measuring."""
    calls = _fake_timer(monkeypatch, FAST_TORCH)
    torch.manual_seed(0)
    layer = G2LSTM(5, 4, eval_gates="hard").eval()  # hard gates: the fast recurrence
    x = torch.randn(7, 5, 5)
    with torch.no_grad():
        layer(x)
    assert calls and {role for _, role in calls} == {"pack", "step", "proj"}
    n = len(calls)
    layer.train()
    layer(x)[0].sum().backward()
    # the per-step products on the chosen route; the weight gradients on both libraries
    want = {("torch", r) for r in ("bpack", "bstep", "bplain")} | {
        (r, "wgrad") for r in gemm.ROUTES
    }
    assert {label for label in calls[n:]} == want
    (entry,) = json.loads((tmp_path / "cache" / autotune.FILE_NAME).read_text())["entries"].values()
    assert set(entry["torch"]) == {"pack", "step", "proj", "bpack", "bstep", "bplain", "wgrad"}
    assert set(entry["onednn"]) == {"pack", "step", "proj", "wgrad"}
    autotune.clear()  # a new process: everything from the disk
    _no_timer(monkeypatch)
    layer(x)[0].sum().backward()


@pytest.mark.parametrize("route", gemm.ROUTES)
def test_unpacked_backward_gives_the_packed_gradients(monkeypatch, route):
    """Both ways of the backward's per-step product give the same gradients."""
    seen: list[bool] = []
    real = loop.backward

    def spy(*args):
        seen.append(args[-2])  # pack (the last is the weight gradients' route)
        return real(*args)

    monkeypatch.setattr(loop, "backward", spy)
    torch.manual_seed(0)
    layer = G2LSTM(6, 5, noise_p=0.3)  # noisy: the fast recurrence (not the vendor kernel)
    x = torch.randn(4, 3, 6, requires_grad=True)
    grads = []
    for pack in (True, False):
        monkeypatch.setattr(routes, "backward_packing", lambda *a, pack=pack: pack)
        monkeypatch.setattr("g2lstm.nn.fast.ops.backward_packing", lambda *a, pack=pack: pack)
        monkeypatch.setenv("G2LSTM_GEMM_ROUTE", route)
        layer.zero_grad()
        x.grad = None
        torch.manual_seed(1)  # the same noise both times
        layer(x)[0].square().sum().backward()
        grads.append([x.grad.clone(), *(p.grad.clone() for p in layer.parameters())])
    assert seen == [True, False]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("onednn", "torch_", "want"),
    [(2e-4, 1e-4, "torch"), (1e-4, 2e-4, "onednn"), (1e-4, 0.97e-4, "onednn")],  # margin
)
def test_the_weight_gradients_take_the_faster_library(monkeypatch, onednn, torch_, want):
    """The weight gradients' library is measured apart from the steps' route (on an AVX2
    EPYC oneDNN's steps were faster and its weight gradients 1.8x slower than MKL's)."""
    times = {r: dict(c) for r, c in FAST_ONEDNN.items()}
    times["onednn"]["wgrad"], times["torch"]["wgrad"] = onednn, torch_
    calls = _fake_timer(monkeypatch, times)
    assert routes.weight_grad_route(LIKE, "onednn", SHAPE) == want
    assert set(calls) == {(r, "wgrad") for r in gemm.ROUTES}  # nothing else is timed
    n = len(calls)
    assert routes.weight_grad_route(LIKE, "onednn", SHAPE) == want  # cached
    assert len(calls) == n
    # the step route where it cannot matter, is forced, or nothing may be measured
    _no_timer(monkeypatch)
    assert routes.weight_grad_route(LIKE.double(), "torch", SHAPE) == "torch"
    monkeypatch.setenv("G2LSTM_AUTOTUNE", "0")
    assert routes.weight_grad_route(LIKE, "onednn", (9, 300, 5, 4)) == "onednn"
    monkeypatch.setenv("G2LSTM_AUTOTUNE", "1")
    monkeypatch.setenv("G2LSTM_GEMM_ROUTE", "onednn")
    assert routes.weight_grad_route(LIKE, "onednn", (9, 300, 5, 4)) == "onednn"


@pytest.mark.parametrize("packed_input", [False, True])
@pytest.mark.parametrize("step_route", gemm.ROUTES)
def test_both_weight_gradient_libraries_give_the_same_gradients(
    monkeypatch, step_route, packed_input
):
    """Every weight gradient agrees whichever library computes it, with the output as
    ``h_1..h_T`` and with the states of a masked (packed-sequence) run."""
    torch.manual_seed(0)
    layer = G2LSTM(6, 5, noise_p=0.3)  # noisy: the fast recurrence (not the vendor kernel)
    x = torch.randn(4, 3, 6)
    monkeypatch.setenv("G2LSTM_GEMM_ROUTE", step_route)
    grads = []
    for wgrad in gemm.ROUTES:
        monkeypatch.setattr("g2lstm.nn.fast.ops.weight_grad_route", lambda *a, w=wgrad: w)
        layer.zero_grad()
        torch.manual_seed(1)  # the same noise both times
        inp = torch.nn.utils.rnn.pack_padded_sequence(x, [4, 2, 1]) if packed_input else x
        out = layer(inp)[0]
        (out.data if packed_input else out).square().sum().backward()
        grads.append([p.grad.clone() for p in layer.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_timings_from_a_busy_machine_stay_in_memory(monkeypatch, tmp_path):
    """Wall-clock timings taken while other processes load the CPUs are not written to disk:
    a later process measures again instead of inheriting a choice made under load."""
    monkeypatch.setattr(autotune, "machine_busy", lambda: True)
    _fake_timer(monkeypatch, FAST_TORCH)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "torch"
    assert not (tmp_path / "cache" / autotune.FILE_NAME).exists()
    _no_timer(monkeypatch)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "torch"  # kept in memory


@pytest.mark.parametrize(
    ("threads", "load", "cpus", "busy"),
    [(2, 3.0, 2, True), (2, 2.4, 2, False), (1, 9.0, 2, False), (4, 10.0, 64, False)],
)
def test_machine_busy_compares_the_load_with_the_cpus(monkeypatch, threads, load, cpus, busy):
    monkeypatch.undo()  # the real function, not the fixture's stand-in
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    monkeypatch.setattr(autotune.os, "getloadavg", lambda: (load, 0.0, 0.0))
    monkeypatch.setattr(autotune.os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert autotune.machine_busy() is busy


def test_cache_write_never_follows_a_symlink(monkeypatch, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text("precious")
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / autotune.FILE_NAME).symlink_to(outside)
    _fake_timer(monkeypatch, FAST_ONEDNN)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "onednn"
    assert outside.read_text() == "precious"
    assert not (folder / autotune.FILE_NAME).is_symlink()


def test_unwritable_cache_keeps_memory_with_one_notice(monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("G2LSTM_CACHE", str(blocker / "sub"))  # a folder under a file
    calls = _fake_timer(monkeypatch, FAST_TORCH)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "torch"
    assert routes.resolve_route(LIKE, shape=(7, 7, 5, 4)) == "torch"
    assert capsys.readouterr().err.count("cannot write the GEMM route cache") == 1
    n = len(calls)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "torch" and len(calls) == n


def test_environment_overrides(monkeypatch, tmp_path):
    _no_timer(monkeypatch)
    for value, want in [("onednn", "onednn"), ("torch", "torch"), ("MKL", "torch")]:
        monkeypatch.setenv("G2LSTM_GEMM_ROUTE", value)
        assert routes.resolve_route(LIKE, shape=SHAPE) == want
    monkeypatch.setenv("G2LSTM_GEMM_ROUTE", "fastest")
    with pytest.raises(ConfigError, match="G2LSTM_GEMM_ROUTE='fastest'"):
        routes.resolve_route(LIKE, shape=SHAPE)
    monkeypatch.delenv("G2LSTM_GEMM_ROUTE")
    monkeypatch.setenv("G2LSTM_AUTOTUNE", "0")
    assert routes.resolve_route(LIKE, shape=SHAPE) == gemm.DEFAULT_ROUTE
    monkeypatch.setenv("G2LSTM_AUTOTUNE", "sometimes")
    with pytest.raises(ConfigError, match="G2LSTM_AUTOTUNE"):
        routes.resolve_route(LIKE, shape=SHAPE)
    monkeypatch.setenv("G2LSTM_AUTOTUNE", "memory")  # measures, writes nothing
    calls = _fake_timer(monkeypatch, FAST_TORCH)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "torch" and calls
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("tracer", ["compiler.is_compiling", "jit.is_tracing"])
def test_never_measures_while_compiling_or_tracing(monkeypatch, tracer):
    _no_timer(monkeypatch)
    module, name = tracer.split(".")
    monkeypatch.setattr(getattr(torch, module), name, lambda: True)
    assert routes.resolve_route(LIKE, shape=SHAPE) == gemm.DEFAULT_ROUTE


def test_cached_timings_are_used_while_compiling(monkeypatch):
    _fake_timer(monkeypatch, FAST_TORCH)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "torch"
    _no_timer(monkeypatch)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert routes.resolve_route(LIKE, shape=SHAPE) == "torch"


def test_measuring_records_no_autograd_graph_and_draws_no_random_numbers(monkeypatch):
    seen: list[tuple[bool, bool]] = []

    def spy(label, fn):
        out = fn()
        seen.append((torch.is_grad_enabled(), isinstance(out, torch.Tensor) and out.requires_grad))
        return FAST_ONEDNN[label[0]][label[1]]

    monkeypatch.setattr(autotune, "_time", spy)
    x = torch.randn(7, 3, 5, requires_grad=True)
    state = torch.get_rng_state()
    with torch.enable_grad():
        assert routes.resolve_route(x, shape=SHAPE) == "onednn"
    assert seen and not any(grad or req for grad, req in seen)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.is_grad_enabled() and x.grad_fn is None


def test_measurement_is_cheap_at_the_benchmark_shapes():
    """The real timer at the issue's two shapes: a choice, within a modest time."""
    import time

    for shape in [(35, 20, 650, 650), (70, 80, 400, 1150)]:
        t0 = time.perf_counter()
        assert routes.resolve_route(LIKE, shape=shape) in gemm.ROUTES
        assert time.perf_counter() - t0 < 5.0  # ~50-100 ms idle; loose for shared CI cores


def test_workloads_are_built_for_the_asked_roles_only():
    """A forward's timing builds no backward operand and the reverse (the backward's first
    call would otherwise fill a (4H, I) input weight it never reads)."""
    forward = routes.route_workloads(gemm.ROUTES, 5, 5, 4, roles=route_cache.FORWARD)
    backward = routes.route_workloads(("onednn",), 5, 5, 4, roles=route_cache.BACKWARD)
    wgrad = routes.route_workloads(gemm.ROUTES, 5, 5, 4, roles=route_cache.WGRAD)
    assert all(set(fns) == set(route_cache.FORWARD) for fns in forward.values())
    assert set(backward) == {"onednn"} and set(backward["onednn"]) == set(route_cache.BACKWARD)
    assert all(set(fns) == set(route_cache.WGRAD) for fns in wgrad.values())
    for fns in (forward["onednn"], backward["onednn"], *wgrad.values()):
        for fn in fns.values():  # in the order given: "pack"/"bpack" build what the next runs
            fn()
