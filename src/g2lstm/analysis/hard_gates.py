"""Hard-gate inference: input/forget gates forced to exactly 0/1 at test time.

Beyond the paper (digest §6 claim 10): if G2-LSTM's gates really are near-binary, replacing
``sigmoid(a / tau)`` by the step ``1[a >= 0]`` at test time should cost G2-LSTM little and the
baseline a lot. :func:`hard_gate_eval` measures the metric both ways; :func:`check_binary_gates`
verifies on recorded traces that the hard copy's gates are exactly 0 or 1.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from torch import nn

from g2lstm.analysis.collect import ForwardFn, ensure_recordable, record_pass
from g2lstm.errors import ConfigError
from g2lstm.nn import GateTrace, g2_modules, with_gate_options

__all__ = ["check_binary_gates", "hard_gate_eval", "hard_gate_model"]

_HARDENABLE = ("input", "forget", "output")


def hard_gate_model(model: nn.Module, gates: Sequence[str] = ("input", "forget")) -> nn.Module:
    """A copy of ``model`` whose ``gates`` are exactly ``1[a >= 0]`` in eval mode.

    Uses :func:`g2lstm.with_gate_options` (``eval_gates="hard"``). Modules whose noisy gates do
    not include all of ``gates`` (e.g. a baseline built with ``noisy_gates=()``) get them added,
    which is harmless in eval mode (no noise is drawn). A gate that was already noisy stays hard
    too, so a model with a noisy output gate gets a hard output gate. Plain ``nn.LSTM`` layers
    are converted first (:func:`~g2lstm.analysis.collect.ensure_recordable`). ``model`` itself is
    never changed; the copy is meant for evaluation only.
    """
    gates = tuple(gates)
    if not gates or any(g not in _HARDENABLE for g in gates):
        raise ConfigError(f"gates={gates!r}: expected a non-empty subset of {_HARDENABLE}")
    work = ensure_recordable(model)
    mods = g2_modules(work)
    if all(set(gates) <= set(m.gate_config.noisy_gates) for _, m in mods):
        return with_gate_options(work, eval_gates="hard")
    new = copy.deepcopy(work)
    for _, m in g2_modules(new):
        noisy = tuple(dict.fromkeys((*m.gate_config.noisy_gates, *gates)))
        m.set_gate_options(eval_gates="hard", noisy_gates=noisy)
    return new


def hard_gate_eval(
    model: nn.Module,
    evaluate_fn: Callable[[nn.Module], float],
    *,
    gates: Sequence[str] = ("input", "forget"),
    higher_is_better: bool | None = None,
) -> dict[str, Any]:
    """The metric with soft and with hard (exactly 0/1) gates.

    Args:
        model: any model with G2 modules or ``nn.LSTM`` layers; left unchanged.
        evaluate_fn: ``evaluate_fn(model) -> float`` (perplexity, BLEU, ...); it should put the
            model in eval mode itself.
        gates: which gates to binarise (input and forget by default, as in claim 10).
        higher_is_better: the metric's direction (BLEU: True, perplexity: False); when given,
            the result also holds ``"degradation"``: how much worse the hard gates are
            (positive = worse, in the metric's units).

    Returns:
        ``{"soft": m, "hard": m2, "delta": m2 - m, "relative": (m2 - m) / |m|, "gates": [...],
        "higher_is_better": ..., "degradation": ...}`` (the last two with ``higher_is_better``).
    """
    soft = float(evaluate_fn(model))
    hard = float(evaluate_fn(hard_gate_model(model, gates)))
    rel = (hard - soft) / abs(soft) if soft != 0 and math.isfinite(soft) else float("nan")
    out: dict[str, Any] = {
        "soft": soft,
        "hard": hard,
        "delta": hard - soft,
        "relative": rel,
        "gates": list(gates),
    }
    if higher_is_better is not None:
        out["higher_is_better"] = bool(higher_is_better)
        out["degradation"] = soft - hard if higher_is_better else hard - soft
    return out


def check_binary_gates(
    model: nn.Module,
    batches: Iterable[Any],
    forward_fn: ForwardFn,
    *,
    gates: Sequence[str] = ("input", "forget"),
    harden: bool = True,
) -> dict[str, Any]:
    """Record ``gates`` over ``batches`` and count values that are not exactly 0 or 1.

    Args:
        model: the model (hardened with :func:`hard_gate_model` first when ``harden``).
        batches, forward_fn: as in :func:`~g2lstm.analysis.collect.record_pass`.

    Returns:
        ``{"binary": bool, "gates": {gate: {"values": n, "non_binary": k, "ones": n1}}}``.
    """
    work = hard_gate_model(model, gates) if harden else ensure_recordable(model)
    counts = {g: {"values": 0, "non_binary": 0, "ones": 0} for g in gates}

    def count(_: str, trace: GateTrace) -> None:
        for g in gates:
            v = trace.valid(g)
            counts[g]["values"] += v.numel()
            counts[g]["non_binary"] += int(((v != 0) & (v != 1)).sum())
            counts[g]["ones"] += int((v == 1).sum())

    record_pass(work, batches, forward_fn, [count])
    binary = all(c["non_binary"] == 0 and c["values"] > 0 for c in counts.values())
    return {"binary": binary, "gates": counts}
