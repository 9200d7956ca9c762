"""Measured CPU GEMM route and packing choices, once per shape, cached in memory and on disk.

Which library multiplies faster (oneDNN or MKL through ``torch.mm``) depends on the CPU (MKL
runs its AVX2 code on AMD, oneDNN its AVX-512 code), the shape and the thread count; a CPU's
vendor name does not say. So the first time the fast recurrence meets a shape on CPU float32,
:func:`choose_route` times what each route would run (:func:`g2lstm.nn.fast.routes.route_workloads`:
the packing of the per-step weight as that route packs it, one per-step product ``h W_hh^T``
and an input projection of :data:`PROJ_ROWS` rows) a few times, interleaved, best of each,
and keeps the route with the smaller estimated cost of a forward pass (a route other than
the first must win by :data:`MARGIN`)::

    cost(route) = T * step + T * N * proj / PROJ_ROWS + pack

The first time a backward pass needs it, the same kind of rounds time, on the route chosen
for the forward pass only, the backward's per-step product ``dG_t W_hh`` with a packed
``W_hh^T`` (``bpack`` once, ``bstep`` per step) and reading ``W_hh`` as it is (``bplain``):
:func:`choose_backward_packing` packs unless ``T * bplain`` is below ``(1 - MARGIN) *
(bpack + T * bstep)`` (packing pays only over enough steps of large enough products). The
backward's weight gradients ``dG^T x`` and ``dG^T h`` reduce over all ``T N`` rows at once,
a different kind of product: both routes time one of :data:`WGRAD_ROWS` rows (``wgrad``)
and :func:`choose_weight_grad_route` takes the faster for them, whatever the steps' route
(on an AMD EPYC with AVX2 oneDNN's steps were the faster and its weight gradients took
1.8-2x MKL's time). A process that only runs inference never times the backward's products.

The timings (not the choices: they depend on ``T``) are kept per *shape bucket* ``(N bucket,
input size, hidden size)``, dtype and thread count, so that a run whose batches vary in
length or size (translation) measures a handful of buckets, not every batch: the batch is
rounded up to the next of 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (powers of two and their 1.5x),
and the first batch seen in a bucket is the one timed. Cost, once per bucket and process
(then from the disk cache), CPU time with one thread on a 2-vCPU AMD EPYC VM (allocating the
constant operands and the packings are a good part of it; ``benchmarks/autotune_cost.py``):
the forward's roles on both routes ~40 ms at batch 20, hidden 650 and ~200 ms at batch 80,
hidden 1150; the backward's on one route ~20 ms and ~115 ms more (all six roles on both
routes at once, as format 2 did, took ~90 and ~490 ms).

Cache: in memory for the process, and (unless ``$G2LSTM_AUTOTUNE=memory``) in the JSON file
``$G2LSTM_CACHE/gemm_routes.json`` (default ``~/.cache/g2lstm/``), keyed by the CPU (model
name, family, model and widest vector unit: :func:`cpu_model`), the torch version, the thread
count, dtype and shape bucket, so that a later process on the same machine reuses them and
picks the same route. Timings taken at
several threads while other processes kept the CPUs busy (:func:`machine_busy`) are kept in
memory only: they are wall-clock times, and a choice made from them would outlive the load.
The file's format, atomic writes and the handling of a bad file: :mod:`g2lstm.nn.fast.route_cache`.

Environment: ``$G2LSTM_AUTOTUNE`` = ``1``/``on`` (default: measure, memory and disk),
``memory`` (measure, memory only), ``0``/``off`` (never measure: the caller's fixed default);
``$G2LSTM_GEMM_ROUTE`` forces a route before any of this (:mod:`g2lstm.nn.fast.gemm`).

Nothing is measured while ``torch.compile`` or the JIT traces (the cached timings, else the
default, are used), and the timed work runs under ``torch.no_grad()`` on tensors of its own,
so it never enters an autograd graph or touches a random number generator.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import torch

from g2lstm.errors import ConfigError
from g2lstm.nn.fast import route_cache
from g2lstm.nn.fast.route_cache import FILE_NAME, Costs, cache_path

__all__ = [
    "BUDGET_S",
    "FILE_NAME",
    "PROJ_ROWS",
    "autotune_mode",
    "batch_bucket",
    "cache_path",
    "choose_backward_packing",
    "choose_route",
    "choose_weight_grad_route",
    "clear",
    "cpu_model",
    "estimate",
    "machine_busy",
]

#: rows of the input projection that is timed (its cost is taken as linear in the rows)
PROJ_ROWS = 128
#: seconds of timed rounds per shape bucket beyond the first :data:`MIN_ROUNDS`
BUDGET_S = 0.03
#: timed rounds per shape bucket: at least / at most
MIN_ROUNDS, MAX_ROUNDS = 2, 8
#: per-step products timed per route and round (the cheapest and most important workload)
STEP_CALLS = 2
#: a route other than the first of ``routes`` must be estimated this much faster to be
#: chosen, so that timing noise between near-equal routes does not flip the choice
MARGIN = 0.05
#: how far the 1-minute load average may exceed the CPUs this process may run on before
#: multi-thread timings count as taken on a busy machine (:func:`machine_busy`)
BUSY_LOAD = 0.5
#: the roles :func:`choose_route` needs, and those :func:`choose_backward_packing` needs,
#: each group timed the first time it is needed (an inference-only process never times the
#: backward's); in this order: "pack" builds what "step" runs, "bpack" what "bstep" runs
_FORWARD, _BACKWARD = route_cache.FORWARD, route_cache.BACKWARD
_WGRAD = route_cache.WGRAD
#: rows of the timed weight gradient (:data:`route_cache.WGRAD`): the real one reduces over
#: ``T N`` rows, and both libraries' times grow with the rows alike
WGRAD_ROWS = 1024
_PACK_ROLES = ("pack", "bpack")  # timed in the first two rounds only
_STEP_ROLES = ("step", "bstep", "bplain")  # timed STEP_CALLS times per round

#: what :func:`choose_route` times: ``(routes, roles, batch) -> {route: {role: callable}}``,
#: the callables of ``roles`` only
Workloads = Callable[
    [Sequence[str], Sequence[str], int], Mapping[str, Mapping[str, Callable[[], object]]]
]

_lock = threading.Lock()
_memory: dict[str, Costs] = {}
_disk = {"loaded": False}  # whether the disk cache has been read into _memory


def autotune_mode() -> str:
    """``"on"``, ``"memory"`` or ``"off"`` from ``$G2LSTM_AUTOTUNE`` (see the module doc)."""
    raw = os.environ.get("G2LSTM_AUTOTUNE", "").strip().lower()
    if raw in ("", "1", "on", "true", "yes", "auto"):
        return "on"
    if raw in ("0", "off", "false", "no"):
        return "off"
    if raw == "memory":
        return "memory"
    raise ConfigError(f"G2LSTM_AUTOTUNE={raw!r} is not valid; expected 1 (on), memory or 0 (off)")


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU, as ``/proc/cpuinfo`` tells it (:func:`describe_cpu`), read once per process (it
    is part of every autotuning key, looked up on every layer call); elsewhere
    ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            described = describe_cpu(fh.read())
    except OSError:
        described = None
    return described or platform.processor() or platform.machine() or "unknown CPU"


def describe_cpu(cpuinfo: str) -> str | None:
    """``"AMD EPYC (family 25 model 1, AVX2)"`` from the first processor of ``/proc/cpuinfo``
    text (AMX is named too where present); None without a model name.

    A virtual machine often shows a bare vendor name ("AMD EPYC", "Intel(R) Xeon(R)
    Processor") for CPU generations that differ in speed, in their widest vector unit and so
    in the last bits of a float32 sum; the family, model and widest vector unit tell them
    apart, for the autotuning key and for the records of measured runs.
    """
    first = cpuinfo.split("\n\n", 1)[0]
    fields: dict[str, str] = {}
    for line in first.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), " ".join(value.split()))
    name = fields.get("model name")
    if not name:
        return None
    flags = set(fields.get("flags", "").split())
    family = " ".join(f"{label} {fields[k]}" for k, label in _IDS if k in fields)
    vector = next((label for flag, label in _VECTOR_UNITS if flag in flags), "")
    parts = [family, vector, "AMX" if "amx_tile" in flags else ""]
    detail = ", ".join(p for p in parts if p)
    return f"{name} ({detail})" if detail else name


#: ``/proc/cpuinfo`` field -> its label in :func:`describe_cpu`
_IDS = (("cpu family", "family"), ("model", "model"))
#: ``/proc/cpuinfo`` flag -> label of the widest vector unit, widest first.
_VECTOR_UNITS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"))


def batch_bucket(batch: int) -> int:
    """``batch`` rounded up to the next of 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, ..."""
    if batch <= 2:
        return max(batch, 1)
    power = 1 << (batch - 1).bit_length()  # next power of two >= batch
    return power * 3 // 4 if batch <= power * 3 // 4 else power


def estimate(costs: Mapping[str, float], steps: int, batch: int) -> float:
    """Seconds of a forward pass's products on one route: ``T step + T N proj/rows + pack``."""
    proj = costs["proj"] * steps * batch / PROJ_ROWS
    return steps * costs["step"] + proj + costs["pack"]


def clear() -> None:
    """Forget the timings kept in memory (the disk file is read again on next use)."""
    with _lock:
        _memory.clear()
        _disk["loaded"] = False
        route_cache.reset_notices()


def _key(dtype: torch.dtype, bucket: int, input_size: int, hidden: int) -> str:
    threads = torch.get_num_threads()
    return (
        f"{cpu_model()} | torch {torch.__version__} | {threads} threads | {dtype} "
        f"| N{bucket} I{input_size} H{hidden}"
    )


def machine_busy() -> bool:
    """Whether timings taken now may be distorted by other processes: more than one torch
    thread (so they are wall-clock times) and a 1-minute load average above the CPUs this
    process may use by more than :data:`BUSY_LOAD`. ``False`` where the load is unknown."""
    if torch.get_num_threads() <= 1:
        return False  # one thread is timed in its own CPU time
    try:
        load = os.getloadavg()[0]
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on this platform
        return False
    return load > cpus + BUSY_LOAD


def _tracing() -> bool:
    """Whether ``torch.compile`` / the JIT is tracing the caller (nothing may be timed)."""
    return bool(torch.compiler.is_compiling() or torch.jit.is_tracing())


def choose_route(
    routes: Sequence[str],
    steps: int,
    batch: int,
    input_size: int,
    hidden: int,
    dtype: torch.dtype,
    workloads: Workloads,
) -> str | None:
    """The route of ``routes`` with the smallest :func:`estimate` for this shape.

    The timings of the shape's bucket come from memory, the disk cache or, the first time,
    from timing the forward's roles of ``workloads(routes, roles, batch)`` (see the module
    doc). ``None`` when measuring is off (``$G2LSTM_AUTOTUNE=0``) or not allowed now
    (tracing) and nothing is cached: the caller then takes its fixed default.
    """
    costs = _bucket_costs(routes, _FORWARD, batch, input_size, hidden, dtype, workloads)
    if costs is None:
        return None
    return _pick(routes, {r: estimate(costs[r], steps, batch) for r in routes})


def _pick(routes: Sequence[str], cost: Mapping[str, float]) -> str:
    """The cheapest of ``routes``, or ``routes[0]`` unless it is :data:`MARGIN` cheaper."""
    best = min(routes, key=cost.__getitem__)
    return best if cost[best] < (1.0 - MARGIN) * cost[routes[0]] else routes[0]


def choose_backward_packing(
    route: str,
    steps: int,
    batch: int,
    input_size: int,
    hidden: int,
    dtype: torch.dtype,
    workloads: Workloads,
) -> bool | None:
    """Whether the backward's per-step product ``dG_t W_hh`` should use a packed ``W_hh^T``.

    Packing pays once per call (a transpose and a reorder, ``bpack``) for faster steps
    (``bstep``); the plain product reads ``W_hh`` as it is (``bplain``). Measured with the
    route's other timings (same bucket, same cache): the plain product is chosen when
    ``T * bplain`` is below ``(1 - MARGIN) * (bpack + T * bstep)``. ``None`` when nothing
    may be measured and nothing is cached (the caller packs, as it always did).
    """
    costs = _bucket_costs((route,), _BACKWARD, batch, input_size, hidden, dtype, workloads)
    if costs is None:
        return None
    c = costs[route]
    packed = c["bpack"] + steps * c["bstep"]
    return not steps * c["bplain"] < (1.0 - MARGIN) * packed


def choose_weight_grad_route(
    routes: Sequence[str],
    batch: int,
    input_size: int,
    hidden: int,
    dtype: torch.dtype,
    workloads: Workloads,
) -> str | None:
    """The route of ``routes`` for the backward's weight gradients ``dG^T x`` and ``dG^T h``:
    the one whose ``wgrad`` (:data:`route_cache.WGRAD`) is fastest, ``routes[0]`` unless
    another is :data:`MARGIN` faster. Timed once per shape bucket, at the first backward pass
    that needs it; ``None`` when nothing may be measured and nothing is cached (the caller
    keeps the step route). On an AMD EPYC with AVX2, oneDNN's inner product took 1.8-2x
    MKL's time for these reductions while its per-step products were the faster
    (``benchmarks/RESULTS.md``)."""
    costs = _bucket_costs(routes, _WGRAD, batch, input_size, hidden, dtype, workloads)
    return None if costs is None else _pick(routes, {r: costs[r]["wgrad"] for r in routes})


def _bucket_costs(
    routes: Sequence[str],
    roles: Sequence[str],
    batch: int,
    input_size: int,
    hidden: int,
    dtype: torch.dtype,
    workloads: Workloads,
) -> Costs | None:
    """The timings ``roles`` (:data:`_FORWARD`, :data:`_BACKWARD` or :data:`_WGRAD`) of the
    shape's bucket for ``routes``: from memory, the disk cache, or measured now (only for the
    routes that lack them); ``None`` when measuring is off or not allowed now and they are not
    all known."""
    mode = autotune_mode()
    if mode == "off":
        return None
    key = _key(dtype, batch_bucket(batch), input_size, hidden)
    with _lock:
        if mode == "on" and not _disk["loaded"]:
            _load_disk()
        costs = _memory.get(key, {})
        missing = [r for r in routes if not all(role in costs.get(r, {}) for role in roles)]
        if missing:
            if _tracing():
                return None
            measured = _measure(missing, roles, batch, workloads)
            costs = {**costs, **{r: {**costs.get(r, {}), **measured[r]} for r in missing}}
            _memory[key] = costs
            if mode == "on" and not machine_busy():
                route_cache.save(key, costs)
    return costs


def _time(label: tuple[str, str], fn: Callable[[], object]) -> float:
    """Seconds of one call of ``fn`` (``label = (route, role)``; tests replace this).

    With one torch thread the calling thread's CPU time, which a busy machine's other
    processes do not inflate; with more, wall-clock time.
    """
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    t0 = clock()
    fn()
    return clock() - t0


def _measure(
    routes: Sequence[str], roles: Sequence[str], batch: int, workloads: Workloads
) -> Costs:
    """Best seconds per route and role of ``roles`` over interleaved rounds.

    Every round times each route's per-step products of ``roles`` (forward, or backward
    packed and plain: :data:`STEP_CALLS` times each) and projection; the first two rounds
    also its packings (once per call of the recurrence, so they weigh little). No separate warm-up:
    the first call of a workload also builds oneDNN's kernels or MKL's buffers, and the best
    of the samples leaves that out, as it leaves out a sample that another process
    interrupted.
    """
    with torch.no_grad():
        fns = workloads(routes, roles, batch)
        best = {route: dict.fromkeys(roles, math.inf) for route in routes}
        start, rounds = time.perf_counter(), 0
        while rounds < MIN_ROUNDS or (
            rounds < MAX_ROUNDS and time.perf_counter() - start < BUDGET_S
        ):
            for route in routes:
                for role in roles:
                    if rounds >= 2 and role in _PACK_ROLES:
                        continue
                    for _ in range(STEP_CALLS if role in _STEP_ROLES else 1):
                        seconds = _time((route, role), fns[route][role])
                        best[route][role] = min(best[route][role], seconds)
            rounds += 1
    return best


def _load_disk() -> None:
    _disk["loaded"] = True
    for key, costs in route_cache.read(route_cache.cache_path()).items():
        _memory.setdefault(key, costs)
