"""How much gates and loss move under small random perturbations (paper §3.2, "flat region").

The paper argues that a gate in the saturated part of the sigmoid barely moves when its
parameters move, so the loss is flat with respect to them. This module measures it directly:

- ``"inputs"``: Gaussian noise of relative scale ``sigma`` added to the input sequence of the
  chosen G2 modules (by default the first one: the embeddings of an LM, the source embeddings
  of a translation encoder), through a forward pre-hook. The noise std is
  ``sigma * rms(x)`` over the whole input tensor.
- ``"weights"``: Gaussian noise added to the input- and forget-gate rows of every
  ``weight_ih`` / ``weight_hh`` (the parameters compressed in paper §4.3), with std
  ``sigma * rms(row)`` for each row.

For every sigma it reports the mean ``|gate_perturbed - gate_clean|`` per gate over all valid
steps, units, layers and directions, and the mean ``loss_perturbed - loss_clean``, averaged over
``draws`` seeded noise draws and the batches. All work happens on a deep copy in eval mode:
the model passed in is never modified. With ``sigma = 0`` every change is exactly 0.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from g2lstm.analysis.collect import (
    ForwardFn,
    as_float,
    ensure_recordable,
    eval_mode,
    record_traces,
)
from g2lstm.errors import ConfigError, ShapeError
from g2lstm.nn import GateRecorder, GateTrace, g2_modules

__all__ = ["TARGETS", "SensitivityConfig", "gate_sensitivity"]

#: What can be perturbed.
TARGETS = ("inputs", "weights")
_GATES = ("input", "forget", "output")


@dataclass(frozen=True)
class SensitivityConfig:
    """Options of :func:`gate_sensitivity`.

    Args:
        sigmas: relative noise scales (each finite and >= 0).
        draws: seeded noise draws per sigma and batch (>= 1).
        seed: base seed; results are a deterministic function of it.
        targets: subset of :data:`TARGETS`.
        gates: gates whose change is measured.
        input_modules: names of the G2 modules whose inputs get noise (``None``: the first
            G2 module of the model).
    """

    sigmas: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3)
    draws: int = 3
    seed: int = 0
    targets: tuple[str, ...] = TARGETS
    gates: tuple[str, ...] = _GATES
    input_modules: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        sig = tuple(float(s) for s in self.sigmas)
        if not sig or any(not math.isfinite(s) or s < 0 for s in sig):
            raise ConfigError(f"sigmas={self.sigmas!r}: expected finite values >= 0")
        object.__setattr__(self, "sigmas", sig)
        if isinstance(self.draws, bool) or not isinstance(self.draws, int) or self.draws < 1:
            raise ConfigError(f"draws={self.draws!r} must be an int >= 1")
        bad = [t for t in self.targets if t not in TARGETS] or ([] if self.targets else ["none"])
        if bad:
            raise ConfigError(f"targets={self.targets!r}: expected a subset of {TARGETS}")
        if not self.gates or any(g not in _GATES for g in self.gates):
            raise ConfigError(f"gates={self.gates!r}: expected a subset of {_GATES}")
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "gates", tuple(self.gates))
        if self.input_modules is not None:
            object.__setattr__(self, "input_modules", tuple(self.input_modules))


def _generator(*parts: int) -> torch.Generator:
    s = 0x9E3779B97F4A7C15
    for p in parts:
        s = (s * 1_000_003 + int(p) + 1) % (1 << 63)
    return torch.Generator().manual_seed(s)


def _noise_like(t: Tensor, std: Tensor | float, gen: torch.Generator) -> Tensor:
    z = torch.randn(t.shape, generator=gen, dtype=torch.float64)
    return (z.to(t.device) * std).to(t.dtype)


def _rms(t: Tensor, dim: int | None = None) -> Tensor:
    t = t.detach().double()
    if dim is None:
        return t.pow(2).mean().sqrt()
    return t.pow(2).mean(dim=dim, keepdim=True).sqrt()


def _gate_weight_rows(model: nn.Module) -> list[tuple[Tensor, int]]:
    """``(parameter, 2H)``: every weight_ih/weight_hh whose first ``2H`` rows are i, f."""
    out = []
    for _, m in g2_modules(model):
        names = getattr(m, "_flat_weights_names", ["weight_ih", "weight_hh"])
        for n in names:
            if n.startswith(("weight_ih", "weight_hh")):
                out.append((getattr(m, n), 2 * m.hidden_size))
    return out


@contextlib.contextmanager
def _perturb_weights(model: nn.Module, sigma: float, gen: torch.Generator) -> Iterator[None]:
    params = _gate_weight_rows(model)
    saved = [p.detach().clone() for p, _ in params]
    try:
        with torch.no_grad():
            for p, rows in params:
                block = p[:rows]
                block.add_(_noise_like(block, sigma * _rms(block, dim=1), gen))
        yield
    finally:
        with torch.no_grad():
            for (p, _), s in zip(params, saved):
                p.copy_(s)


@contextlib.contextmanager
def _perturb_inputs(
    model: nn.Module, names: Sequence[str] | None, sigma: float, gen: torch.Generator
) -> Iterator[None]:
    mods = dict(g2_modules(model))
    chosen = list(names) if names is not None else list(mods)[:1]
    missing = [n for n in chosen if n not in mods]
    if missing:
        raise ConfigError(f"input_modules {missing} are not G2 modules; choose from {list(mods)}")

    def pre_hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x = args[0]
        if isinstance(x, PackedSequence):
            data = x.data + _noise_like(x.data, sigma * _rms(x.data), gen)
            new: Any = PackedSequence(data, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
        else:
            new = x + _noise_like(x, sigma * _rms(x), gen)
        return (new, *args[1:])

    handles = [mods[n].register_forward_pre_hook(pre_hook) for n in chosen]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class _Differ:
    """Recorder callback comparing each trace with the clean trace of the same call."""

    def __init__(self, clean: list[tuple[str, GateTrace]], gates: Sequence[str]) -> None:
        self.clean, self.gates, self.i = clean, gates, 0
        self.sums = dict.fromkeys(gates, 0.0)
        self.counts = dict.fromkeys(gates, 0)

    def __call__(self, name: str, trace: GateTrace) -> None:
        if self.i >= len(self.clean):
            raise ShapeError("perturbed forward recorded more gate traces than the clean one")
        cname, ref = self.clean[self.i]
        self.i += 1
        if (cname, ref.layer, ref.direction) != (name, trace.layer, trace.direction) or (
            ref.input.shape != trace.input.shape
        ):
            raise ShapeError(
                f"perturbed forward recorded {name} layer {trace.layer} "
                f"{tuple(trace.input.shape)} where the clean one had {cname} layer {ref.layer} "
                f"{tuple(ref.input.shape)}; forward_fn must be deterministic in eval mode"
            )
        mask = ref.mask
        for g in self.gates:
            d = (getattr(trace, g) - getattr(ref, g)).abs()[mask].double()
            self.sums[g] += float(d.sum())
            self.counts[g] += d.numel()


def gate_sensitivity(
    model: nn.Module,
    batches: Iterable[Any],
    forward_fn: ForwardFn,
    config: SensitivityConfig | None = None,
) -> list[dict[str, Any]]:
    """Mean |Δgate| and Δloss under seeded Gaussian perturbations (see module docstring).

    Args:
        model: any model with G2 modules or ``nn.LSTM`` layers; left unchanged.
        batches: the batches to average over (iterated once).
        forward_fn: ``forward_fn(model, batch) -> loss | None``; deterministic in eval mode.
        config: :class:`SensitivityConfig`.

    Returns:
        One row per (target, sigma, gate): ``{"target", "sigma", "gate", "mean_abs_delta",
        "delta_loss", "clean_loss", "values", "samples"}``; the loss fields are ``None`` when
        ``forward_fn`` returns no loss. ``values`` counts the compared gate values and
        ``samples`` the (batch, draw) pairs.
    """
    cfg = config or SensitivityConfig()
    work = ensure_recordable(copy.deepcopy(model))
    keys = [(t, s) for t in cfg.targets for s in range(len(cfg.sigmas))]
    sums = {(t, s, g): 0.0 for t, s in keys for g in cfg.gates}
    counts = dict.fromkeys(sums, 0)
    dloss: dict[tuple[str, int], list[float]] = {k: [] for k in keys}
    clean_losses: list[float] = []
    n_batches = 0
    for b, batch in enumerate(batches):
        n_batches += 1
        clean, clean_loss = record_traces(work, batch, forward_fn)
        if clean_loss is not None:
            clean_losses.append(clean_loss)
        for t, s in keys:
            sigma = cfg.sigmas[s]
            for d in range(cfg.draws):
                gen = _generator(cfg.seed, b, TARGETS.index(t), s, d)
                ctx = (
                    _perturb_weights(work, sigma, gen)
                    if t == "weights"
                    else _perturb_inputs(work, cfg.input_modules, sigma, gen)
                )
                differ = _Differ(clean, cfg.gates)
                with ctx, eval_mode(work), GateRecorder(work, keep=False, callback=differ):
                    loss = as_float(forward_fn(work, batch))
                for g in cfg.gates:
                    sums[(t, s, g)] += differ.sums[g]
                    counts[(t, s, g)] += differ.counts[g]
                if clean_loss is not None and loss is not None:
                    dloss[(t, s)].append(loss - clean_loss)
    if n_batches == 0:
        raise ConfigError("gate_sensitivity: the data gave no batches")
    clean_mean = math.fsum(clean_losses) / len(clean_losses) if clean_losses else None
    rows = []
    for t, s in keys:
        dl = dloss[(t, s)]
        for g in cfg.gates:
            n = counts[(t, s, g)]
            rows.append(
                {
                    "target": t,
                    "sigma": cfg.sigmas[s],
                    "gate": g,
                    "mean_abs_delta": sums[(t, s, g)] / n if n else float("nan"),
                    "delta_loss": math.fsum(dl) / len(dl) if dl else None,
                    "clean_loss": clean_mean,
                    "values": n,
                    "samples": n_batches * cfg.draws,
                }
            )
    return rows
