"""``g2lstm bench layer``: speed and memory of ``G2LSTM`` next to the fused ``torch.nn.LSTM``.

For every shape, in one process, interleaved (each repeat runs every row once, so drifts of
a shared machine hit all rows alike), median of ``repeats`` runs after warm-up:

- **train**: a training step (zero grads, forward, ``backward`` of a fixed ``dy``; the input
  requires grad) with ``noise_p=0.2, tau=0.9``: ``nn.LSTM`` (anchor, no noise), ``G2LSTM``
  with its automatic fast path (noise drawn inside the step), the reference loop;
- **soft** inference (``torch.no_grad``): ``nn.LSTM``, ``G2LSTM`` ``eval_gates="soft"``
  (vendor kernel), reference loop;
- **hard** inference: ``nn.LSTM`` (anchor), ``G2LSTM`` ``eval_gates="hard"`` (exact fast
  path), ``G2LSTM`` with the opt-in ``backend="fused-hard"`` (vendor kernel, i/f rows
  scaled by ``2**60``: gates exactly ``1[a >= 0]`` only for ``|a| >= ~7.6e-17``, see
  :mod:`g2lstm.nn.backends`), reference loop;
- when the fused step kernel is in use (:mod:`g2lstm.nn.fast.kernel` on CPU,
  :mod:`g2lstm.nn.fast.triton_step` on CUDA), a ``G2LSTM ATen step`` row for train and
  hard: the same fast path with each step's pointwise ops as ATen ops
  (``backend="fast-aten"``), to show what the kernel saves (timed only:
  it allocates what the kernel path allocates);
- **memory**: peak bytes allocated during one training step (CPU: summed from the
  allocation events of ``torch.profiler`` with ``profile_memory=True``; GPU:
  ``torch.cuda.max_memory_allocated`` above the level before the step).

Ratios are to the ``nn.LSTM`` row of the same task, measured in the same run: ``ratio`` of
the medians (the headline), ``min ratio`` of the fastest runs, and ``paired``, the median
over repeats of each run's time over the anchor's time in the same round (the least
sensitive to other processes drifting the machine's speed).
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from g2lstm.errors import ConfigError
from g2lstm.nn import G2LSTM
from g2lstm.nn.fast import onednn_available, triton_step
from g2lstm.nn.fast.autotune import cpu_model
from g2lstm.nn.fast.kernel import cpu_kernel

__all__ = [
    "CPU_SHAPES",
    "GPU_SHAPES",
    "QUICK_SHAPES",
    "BenchConfig",
    "Shape",
    "environment",
    "format_table",
    "layer_tasks",
    "parse_shape",
    "run_layer_benchmark",
]

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp64": torch.float64}


@dataclass(frozen=True)
class Shape:
    """One benchmark size: ``batch``, ``steps``, ``input_size``, ``hidden_size``, ``dtype``."""

    batch: int
    steps: int
    input_size: int
    hidden_size: int
    dtype: str = "fp32"

    def __post_init__(self) -> None:
        if min(self.batch, self.steps, self.input_size, self.hidden_size) < 1:
            raise ConfigError(f"shape {self}: batch, steps, input and hidden must be >= 1")
        if self.dtype not in _DTYPES:
            raise ConfigError(f"shape dtype {self.dtype!r}: expected one of {sorted(_DTYPES)}")

    @property
    def label(self) -> str:
        return f"B{self.batch} T{self.steps} I{self.input_size} H{self.hidden_size} {self.dtype}"


CPU_SHAPES = (Shape(20, 35, 650, 650), Shape(80, 70, 400, 1150))
GPU_SHAPES = (*CPU_SHAPES, Shape(64, 100, 1024, 1024), Shape(64, 100, 1024, 1024, "bf16"))
QUICK_SHAPES = (Shape(4, 6, 16, 16),)


def parse_shape(text: str) -> Shape:
    """``"B,T,I,H"`` or ``"B,T,I,H,dtype"`` (e.g. ``"20,35,650,650"``) -> :class:`Shape`."""
    parts = [p.strip() for p in text.split(",")]
    try:
        nums = [int(p) for p in parts[:4]]
        if len(parts) not in (4, 5):
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"--shapes: {text!r} is not 'batch,steps,input,hidden[,dtype]' (e.g. 20,35,650,650)"
        ) from None
    return Shape(*nums, *(parts[4:] or ["fp32"]))


@dataclass(frozen=True)
class BenchConfig:
    """Options of :func:`run_layer_benchmark`.

    Attributes:
        shapes: sizes to time; ``device``: ``"cpu"`` or ``"cuda"``; ``threads``: CPU threads.
        repeats: timed runs per row (median reported); ``warmup``: untimed runs first.
        reference: also time the reference loop; ``memory``: also measure peak memory.
    """

    shapes: tuple[Shape, ...] = CPU_SHAPES
    device: str = "cpu"
    threads: int = 2
    repeats: int = 5
    warmup: int = 1
    reference: bool = True
    memory: bool = True
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.warmup < 0 or self.threads < 1:
            raise ConfigError("bench: --repeats and --threads must be >= 1, warm-up >= 0")
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"bench: device {self.device!r}: expected 'cpu' or 'cuda'")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("bench: --device cuda but no CUDA device is available")


def environment(device: str = "cpu") -> dict[str, object]:
    """Torch version, threads, CPU model, GPU model and the GEMM libraries in use."""
    env: dict[str, object] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_count": __import__("os").cpu_count(),
        "onednn_gemm": onednn_available(),
        # building the kernel just to report it would cost a GPU run ~20 s: CPU runs only
        "cpu_kernel": cpu_kernel() is not None if device == "cpu" else None,
        "mkldnn": torch.backends.mkldnn.is_available(),
    }
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _models(shape: Shape, device: str) -> tuple[nn.LSTM, G2LSTM]:
    """``nn.LSTM`` and a ``G2LSTM`` (``noise_p=0.2, tau=0.9``) with the same weights."""
    dtype = _DTYPES[shape.dtype]
    ref = nn.LSTM(shape.input_size, shape.hidden_size).to(device=device, dtype=dtype)
    g2 = G2LSTM(shape.input_size, shape.hidden_size, noise_p=0.2, tau=0.9)
    g2 = g2.to(device=device, dtype=dtype)
    g2.load_state_dict(ref.state_dict())
    return ref, g2


def layer_tasks(shape: Shape, cfg: BenchConfig) -> dict[str, dict[str, Callable[[], object]]]:
    """``{task: {row: callable}}`` (tasks ``train``, ``soft``, ``hard``): the calls the bench
    times, each a whole layer call on ``shape`` (``benchmarks/profile_step.py`` profiles the
    same calls); the first row of each task is its anchor."""
    dev, dtype = cfg.device, _DTYPES[shape.dtype]
    ref, g2 = _models(shape, dev)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    size = (shape.steps, shape.batch, shape.input_size)
    x = torch.randn(size, generator=gen, device=dev).to(dtype).requires_grad_()
    dy = torch.randn(shape.steps, shape.batch, shape.hidden_size, generator=gen, device=dev)
    dy = dy.to(dtype)

    def train(model: nn.Module, backend: str | None = None) -> Callable[[], object]:
        def step() -> object:
            model.train()
            if backend is not None:
                model.backend = backend  # type: ignore[assignment]
            model.zero_grad(set_to_none=True)
            x.grad = None
            y, _ = model(x)
            y.backward(dy)
            _sync(dev)
            return y

        return step

    def infer(model: nn.Module, backend: str | None = None, gates: str | None = None):
        def run() -> object:
            model.eval()
            if backend is not None:
                model.backend = backend  # type: ignore[assignment]
            if gates is not None:
                model.set_gate_options(eval_gates=gates)  # type: ignore[operator]
            with torch.no_grad():
                y, _ = model(x)
            _sync(dev)
            return y

        return run

    tasks: dict[str, dict[str, Callable[[], object]]] = {
        "train": {"nn.LSTM": train(ref), "G2LSTM": train(g2, "auto")},
        "soft": {"nn.LSTM": infer(ref), "G2LSTM": infer(g2, "auto", "soft")},
        "hard": {
            "nn.LSTM": infer(ref),
            "G2LSTM": infer(g2, "auto", "hard"),
            "G2LSTM fused-hard": infer(g2, "fused-hard", "hard"),
        },
    }
    fused = cpu_kernel() is not None if dev == "cpu" else triton_step.available()
    if fused:  # what the fused step kernel (C++ on CPU, Triton on CUDA) saves
        tasks["train"]["G2LSTM ATen step"] = train(g2, "fast-aten")
        tasks["hard"]["G2LSTM ATen step"] = infer(g2, "fast-aten", "hard")
    if cfg.reference:
        tasks["train"]["reference"] = train(g2, "reference")
        tasks["soft"]["reference"] = infer(g2, "reference", "soft")
        tasks["hard"]["reference"] = infer(g2, "reference", "hard")
    return tasks


def _peak_bytes(fn: Callable[[], object], device: str) -> int:
    """Peak bytes allocated while ``fn`` runs, above the level before it."""
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        return int(torch.cuda.max_memory_allocated() - base)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    level = peak = 0
    for e in events:
        if str(e.device_type()).endswith("CPU"):
            level += e.nbytes()
            peak = max(peak, level)
    return int(peak)


def _bench_shape(shape: Shape, cfg: BenchConfig) -> dict[str, object]:
    tasks = layer_tasks(shape, cfg)
    rows = [(task, name, fn) for task, impls in tasks.items() for name, fn in impls.items()]
    times: dict[tuple[str, str], list[float]] = {(t, n): [] for t, n, _ in rows}
    for _ in range(cfg.warmup):
        for _, _, fn in rows:
            fn()
    for _ in range(cfg.repeats):
        for task, name, fn in rows:
            t0 = time.perf_counter()
            fn()
            times[(task, name)].append(time.perf_counter() - t0)
    out: dict[str, object] = {"shape": asdict(shape), "label": shape.label, "rows": []}
    for task, impls in tasks.items():
        first = times[(task, next(iter(impls)))]
        anchor, anchor_min = statistics.median(first), min(first)
        for name in impls:
            ts = times[(task, name)]
            med = statistics.median(ts)
            out["rows"].append(
                {  # type: ignore[union-attr]
                    "task": task,
                    "impl": name,
                    "median_ms": med * 1e3,
                    "min_ms": min(ts) * 1e3,
                    "max_ms": max(ts) * 1e3,
                    "ratio": med / anchor,
                    "min_ratio": min(ts) / anchor_min,
                    "paired_ratio": statistics.median(a / b for a, b in zip(ts, first)),
                }
            )
    if cfg.memory:
        train = {n: fn for n, fn in tasks["train"].items() if n != "G2LSTM ATen step"}
        mem = {name: _peak_bytes(fn, cfg.device) for name, fn in train.items()}
        base = mem["nn.LSTM"] or 1
        out["memory"] = [
            {"impl": n, "peak_mb": b / 2**20, "ratio": b / base} for n, b in mem.items()
        ]
    return out


def run_layer_benchmark(
    cfg: BenchConfig, progress: Callable[[str], None] | None = None
) -> dict[str, object]:
    """Time every shape of ``cfg``; returns a JSON-ready dict (``environment``, ``results``)."""
    old_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        torch.manual_seed(cfg.seed)
        results = []
        for shape in cfg.shapes:
            if progress is not None:
                progress(f"bench layer: {shape.label} ...")
            results.append(_bench_shape(shape, cfg))
        return {
            "environment": environment(cfg.device),
            "config": {
                "device": cfg.device,
                "threads": cfg.threads,
                "repeats": cfg.repeats,
                "warmup": cfg.warmup,
                "noise_p": 0.2,
                "tau": 0.9,
            },
            "results": results,
        }
    finally:
        torch.set_num_threads(old_threads)


def format_table(result: dict[str, object]) -> str:
    """A Markdown table of the timings (and one of peak memory) plus the environment."""
    env = result["environment"]
    cfg = result["config"]
    lines = [
        "Environment: " + ", ".join(f"{k}={v}" for k, v in env.items()),  # type: ignore[union-attr]
        f"Median of {cfg['repeats']} interleaved runs after {cfg['warmup']} warm-up, "  # type: ignore[index]
        f"{cfg['threads']} threads, noise_p=0.2, tau=0.9; ratio = G2 / nn.LSTM, same run.",  # type: ignore[index]
        "",
        "| shape | task | impl | median ms | min ms | max ms | ratio | min ratio | paired |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in result["results"]:  # type: ignore[union-attr]
        for r in res["rows"]:
            lines.append(
                f"| {res['label']} | {r['task']} | {r['impl']} | {r['median_ms']:.1f} | "
                f"{r['min_ms']:.1f} | {r['max_ms']:.1f} | {r['ratio']:.3f} | "
                f"{r['min_ratio']:.3f} | {r['paired_ratio']:.3f} |"
            )
    mem_rows = [(res["label"], m) for res in result["results"] for m in res.get("memory", [])]  # type: ignore[union-attr]
    if mem_rows:
        lines += ["", "| shape | training-step peak memory | MB | ratio |", "|---|---|---|---|"]
        for label, m in mem_rows:
            lines.append(f"| {label} | {m['impl']} | {m['peak_mb']:.1f} | {m['ratio']:.3f} |")
    return "\n".join(lines)
