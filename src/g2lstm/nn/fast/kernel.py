"""The fused CPU step kernel: a small C++ extension, built just in time, optional.

Per time step the fast recurrence does one GEMM and then the pointwise part of Eq. 1 (plus
the noise's temperature, Eqs. 11-12): written with ATen ops that is ~9 small operations, each
a pass over memory and a dispatch, ~20% of a step at batch 20 (``benchmarks/RESULTS.md``).
``csrc/g2lstm_cpu.cpp`` does all of it in one vectorised pass over the rows (forward and
backward; rows split over the torch threads when a step has over ~4,000 elements), the way the
vendor kernels do. In float32 its ``exp``/``sigmoid``/``tanh`` use ATen's polynomial
``exp_u20`` (relative error ~1.2e-6; the gates and states are within ~2e-6 of float64 math,
tested) instead of the 1-ulp Sleef functions, which cost 2-3x more and were most of the
kernel's time; NaN inputs stay NaN. float64 uses the 1-ulp functions. Hard 0/1 gates compare
the pre-activation with zero, so they are exact either way.

In training the forward step also draws the gate noise itself: the Philox4x32-10 words of
each row (:mod:`g2lstm.nn.philox`) are computed in the rows' parallel loop, lane-parallel so
the compiler vectorises the rounds, and turned into ``B * L`` just before the gates use them,
so no ``(T, N, W)`` noise tensor is drawn serially or stored. :func:`philox_uniform` gives the
same uniforms in bulk for the paths that need the noise as a tensor.

The extension is compiled on first use with ``torch.utils.cpp_extension.load`` (needs a C++
compiler with OpenMP and ``ninja``; 35-40 s once on this project's 2-core VMs, cached under
``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``), for this machine's vector ISA,
and checked against the ATen math on a small input. If any of that fails, one line goes to
stderr, naming what is missing (compiler, ninja, OpenMP), and the fast path runs its ATen
step instead: same numbers up to rounding, slower, nothing else changes.

``$G2LSTM_CPU_KERNEL``: ``auto`` (default: build and use it when possible), ``0``/``off``
(never build or use it), ``1``/``on`` (as ``auto``, but a failure raises
:class:`KernelUnavailable` instead of falling back).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import warnings
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from g2lstm.errors import ConfigError
from g2lstm.nn import philox

__all__ = [
    "POINTWISE",
    "KernelUnavailable",
    "cpu_kernel",
    "kernel_mode",
    "kernel_supports",
    "philox_uniform",
    "pointwise_kernel",
]

#: how the fast path runs a step's pointwise ops: ``"auto"`` (the fused kernel when it is
#: available for the tensors), ``"kernel"`` (it or an error), ``"aten"`` (ATen ops)
POINTWISE = ("auto", "kernel", "aten")

_SOURCE = Path(__file__).with_name("csrc") / "g2lstm_cpu.cpp"

#: compiler flags per ``torch.backends.cpu.get_cpu_capability()``: ATen's vector classes
#: pick their implementation from ``CPU_CAPABILITY_*``
_ISA_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"],
    "AVX2": ["-mavx2", "-mfma"],
}


class KernelUnavailable(RuntimeError):
    """The fused CPU kernel was required (``G2LSTM_CPU_KERNEL=1``) but cannot be used."""


def kernel_mode() -> str:
    """``"auto"``, ``"off"`` or ``"on"`` from ``$G2LSTM_CPU_KERNEL`` (see the module doc)."""
    raw = os.environ.get("G2LSTM_CPU_KERNEL", "auto").strip().lower()
    if raw in ("0", "off", "false", "no"):
        return "off"
    if raw in ("1", "on", "true", "yes"):
        return "on"
    if raw in ("", "auto"):
        return "auto"
    raise KernelUnavailable(
        f"G2LSTM_CPU_KERNEL={raw!r} is not valid; expected auto, 0 (off) or 1 (on)"
    )


def kernel_supports(x: Tensor) -> bool:
    """Whether the kernel can run a pass on tensors like ``x`` (CPU float32/float64)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


def cpu_kernel() -> ModuleType | None:
    """The loaded extension, or ``None`` (disabled, or it could not be built; see module doc)."""
    mode = kernel_mode()
    if mode == "off":
        return None
    module, why = _load()
    if module is None and mode == "on":
        raise KernelUnavailable(
            f"G2LSTM_CPU_KERNEL=1 but the fused CPU kernel is unavailable: {why}"
        )
    return module


def pointwise_kernel(x: Tensor, pointwise: str = "auto") -> ModuleType | None:
    """The fused kernel for a pass on tensors like ``x``, or ``None`` for the ATen step.

    ``pointwise``: one of :data:`POINTWISE`; ``"kernel"`` raises
    :class:`~g2lstm.errors.ConfigError` where the kernel cannot run.
    """
    if pointwise not in POINTWISE:
        raise ConfigError(
            f"pointwise={pointwise!r} is not valid; expected one of {', '.join(POINTWISE)}"
        )
    if pointwise == "aten":
        return None
    kern = cpu_kernel() if kernel_supports(x) else None
    if kern is None and pointwise == "kernel":
        if not kernel_supports(x):
            why = f"it runs on CPU float32/float64 only, not {x.device.type} {x.dtype}"
        elif kernel_mode() == "off":
            why = "G2LSTM_CPU_KERNEL=0 disables it"
        else:
            why = "the kernel could not be built or loaded (see the notice above)"
        raise ConfigError(f"pointwise='kernel': {why}; use pointwise='auto' or 'aten'")
    return kern


def philox_uniform(
    seed: Tensor, steps: int, batch: int, width: int, stream: int, dtype: torch.dtype
) -> Tensor:
    """:func:`g2lstm.nn.philox.uniform` (same signature, same values), computed by the fused
    kernel, in parallel, when it can: a plain CPU seed in eager code with the kernel
    available. Elsewhere (GPU, compiled or transformed code, no kernel) the torch ops."""
    plain = (
        seed.device.type == "cpu"
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
        and not torch._C._functorch.is_functorch_wrapped_tensor(seed)
    )
    kern = cpu_kernel() if plain and dtype in (torch.float32, torch.float64) else None
    if kern is None:
        return philox.uniform(seed, steps, batch, width, stream, dtype)
    out = torch.empty(steps, batch, width, dtype=dtype)
    kern.philox_uniform(int(seed), stream, out)
    return out


class MissingTool(RuntimeError):
    """A tool the build needs is missing; the message names it and how to get it."""


def _missing_tool() -> str:
    """What the build lacks (C++ compiler, ninja), in words, or ``""``."""
    cxx = os.environ.get("CXX", "c++")  # what torch.utils.cpp_extension calls
    if shutil.which(cxx) is None:
        return f"no C++ compiler found ({cxx!r} is not on PATH; install g++ or set CXX)"
    if shutil.which("ninja") is None:
        return "ninja not found (pip install ninja, the extra 'fast', or your system's ninja)"
    return ""


def _explain(e: Exception) -> str:
    """One line saying why the build failed, naming the missing piece where it is known."""
    if isinstance(e, MissingTool):
        return str(e)
    text = str(e)
    if "omp.h" in text or "fopenmp" in text:
        return "the C++ compiler has no OpenMP (-fopenmp; with clang install libomp, or use g++)"
    last = text.strip().splitlines()[-1] if text.strip() else ""
    return f"{type(e).__name__}: {last}"


@functools.lru_cache(maxsize=1)
def _load() -> tuple[ModuleType | None, str]:
    try:
        # never under a torch.func transform, autocast or grad mode of the caller's: the
        # probe's tensors are plain and its result must not depend on where it first ran
        with torch._C._DisableFuncTorch(), torch.no_grad(), torch.autocast("cpu", enabled=False):
            module = _build()
            _probe(module)
    except Exception as e:  # any failure (no compiler, no ninja, bad probe) means "do not use"
        why = _explain(e)
        print(
            f"g2lstm: fused CPU kernel unavailable ({why[:200]}); using the ATen step "
            "(slower; G2LSTM_CPU_KERNEL=0 skips the build)",
            file=sys.stderr,
        )
        return None, why
    return module, ""


def _build() -> ModuleType:
    from torch.utils import cpp_extension  # heavy import: only when the kernel is wanted

    if shutil.which("ninja") is None:  # the pip package (extra "fast") when not on PATH
        try:
            import ninja  # type: ignore[import-not-found]

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except ImportError:
            pass  # cpp_extension then says that ninja is missing

    missing = _missing_tool()
    if missing:
        raise MissingTool(missing)
    cap = torch.backends.cpu.get_cpu_capability()
    flags = _ISA_FLAGS.get(cap, [])
    cap = cap if flags else "DEFAULT"
    defines = [f"-DCPU_CAPABILITY={cap}"] + ([f"-DCPU_CAPABILITY_{cap}"] if flags else [])
    # one build per source text, ISA and torch version, so upgrades never load a stale one
    digest = hashlib.sha256(
        _SOURCE.read_bytes() + f"{cap}{torch.__version__}".encode()
    ).hexdigest()[:12]
    name = f"g2lstm_cpu_{cap.lower()}_{digest}"
    build_dir = Path(cpp_extension._get_build_directory(name, verbose=False))
    if not (build_dir / f"{name}.so").exists():
        print(f"g2lstm: building the fused CPU kernel for {cap} (once, ~35 s)", file=sys.stderr)
    with warnings.catch_warnings():  # torch's compiler-version warnings: the notice says it
        warnings.simplefilter("ignore")
        return cpp_extension.load(
            name=name,
            sources=[str(_SOURCE)],
            extra_cflags=["-O3", "-fopenmp", *flags, *defines],  # at::parallel_for: OpenMP
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )


def _probe(module: ModuleType) -> None:
    """Check one forward and backward step against the ATen formulas (raises if wrong)."""
    gen = torch.Generator().manual_seed(0)
    n, h = 3, 21  # 21: full vectors and a tail on every ISA
    pre, hw = torch.randn(n, 4 * h, generator=gen), torch.randn(n, 4 * h, generator=gen)
    c0 = torch.randn(n, h, generator=gen)
    c1, h1 = torch.empty_like(c0), torch.empty_like(c0)
    a = pre + hw
    module.forward_step(pre, hw, c0, None, c1, h1, None, None, None, [0, 1, 0], [2.0, 1, 1], True)
    i = torch.sigmoid(2.0 * a[:, :h])
    f = (a[:, h : 2 * h] >= 0).to(a.dtype)
    g, o = torch.tanh(a[:, 2 * h : 3 * h]), torch.sigmoid(a[:, 3 * h :])
    want_c = f * c0 + i * g
    ok = torch.allclose(c1, want_c, atol=1e-5) and torch.allclose(
        h1, o * torch.tanh(want_c), atol=1e-5
    )
    dh, dc = torch.randn(n, h, generator=gen), torch.randn(n, h, generator=gen)
    dgates = torch.empty(n, 4 * h)
    dc_in = dc.clone()
    module.backward_step(pre, c1, c0, dh, None, dc, dgates, None, None, [0, 1, 0], [2.0, 1, 1])
    tc = torch.tanh(want_c)
    dct = dc_in + dh * o * (1 - tc * tc)
    want = torch.cat(
        [
            dct * g * i * (1 - i) * 2.0,
            torch.zeros(n, h),
            dct * i * (1 - g * g),
            dh * tc * o * (1 - o),
        ],
        dim=1,
    )
    ok = ok and torch.allclose(dgates, want, atol=1e-5) and torch.allclose(dc, dct * f, atol=1e-5)
    if ok:  # the vectorised Philox rounds of the noise, bit for bit
        words = torch.empty(2, 3, 70)
        module.philox_uniform(2**62 + 12345, 1, words)
        ok = torch.equal(words, philox.uniform(2**62 + 12345, 2, 3, 70, 1))
    if not ok:
        raise RuntimeError("the fused kernel's probe step differs from the ATen formulas")
