"""Gather the ablation numbers (``lm-probe`` and ``lm-ranking`` markers) for the report.

The result is ``numbers["ablations"]`` (plain JSON)::

    {"runs": {key: {"cell": "g2", "variant": "g2-p0.05" | None, "config": {...},
                    "seeds": [...],
                    "valid" | "test": {"soft" | "hard" | "soft_pointer" | "hard_pointer": [...]},
                    "train_ppl": [...], "train_ppl_logged": [...],
                    "sensitivity": [...],  # loss increase, i/f gate weights perturbed
                    "near_binary": {"input" | "forget" | "output": [...]},
                    "near_binary_all_layers": {...},
                    "compression": {column: {"test": [...], "test_pointer": [...]}},
                    "curves": [[epoch rows of each seed]]}},
     "budget": {"epochs": E | None, "check": {...} | None}}

A probe's learning curve is its ``curve`` (the end-of-epoch rows themselves, as the
benchmark scripts' records keep them) or else the rows of its ``metrics`` log.
``key`` is the run's name: ``lstm``, ``sharpened``, ``g2`` (the plan's cells), a variant
(``g2-p0.05``), with ``-e<E>`` at a reduced budget. Lists are per seed in seed order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from g2lstm.errors import DataError
from g2lstm.reproduce.plan import by_seed
from g2lstm.train.metrics import read_metrics

__all__ = ["collect_ablations", "epoch_rows"]

_MODES = ("soft", "hard", "soft_pointer", "hard_pointer")


def epoch_rows(path: str | None) -> list[dict[str, Any]]:
    """The end-of-epoch rows (``epoch``, ``train_ppl``, ``valid_ppl``, ...) of a metrics log."""
    if not path or not Path(path).is_file():
        return []
    try:
        rows = read_metrics(path)
    except DataError:
        return []
    return [dict(r) for r in rows if r.get("valid_ppl") is not None and r.get("epoch") is not None]


def _add(node: dict[str, Any], key: str, value: Any) -> None:
    node.setdefault(key, []).append(value)


def collect_ablations(markers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``numbers["ablations"]`` from the report step's markers (empty if no probe ran)."""
    runs: dict[str, dict[str, Any]] = {}
    budget: dict[str, Any] = {"epochs": None, "check": None}
    for m in by_seed(markers):
        res = m.get("result") or {}
        if m.get("kind") == "lm-ranking":
            budget = {"epochs": res.get("epochs"), "check": res}
            continue
        if m.get("kind") != "lm-probe":
            continue
        key = str(m.get("variant") or m.get("cell"))
        run = runs.setdefault(
            key,
            {"cell": m.get("cell"), "variant": m.get("variant"), "config": res.get("config")},
        )
        _add(run, "seeds", m.get("seed"))
        for split in ("valid", "test"):
            values = (res.get("ppl") or {}).get(split) or {}
            node = run.setdefault(split, {})
            for mode in _MODES:
                _add(node, mode, values.get(mode))
        _add(run, "train_ppl", res.get("train_ppl"))
        _add(run, "train_ppl_logged", res.get("train_ppl_logged"))
        _add(run, "sensitivity", (res.get("sensitivity") or {}).get("delta_loss"))
        near = res.get("near_binary") or {}
        for where, name in (
            ("first_layer", "near_binary"),
            ("all_layers", "near_binary_all_layers"),
        ):
            node = run.setdefault(name, {})
            for gate, value in (near.get(where) or {}).items():
                _add(node, gate, value)
        comp = run.setdefault("compression", {})
        for column, values in (res.get("compression") or {}).items():
            node = comp.setdefault(column, {})
            for what in ("test", "test_pointer"):
                _add(node, what, values.get(what))
        _add(run, "curves", res.get("curve") or epoch_rows(res.get("metrics")))
    if not runs and budget["check"] is None:
        return {}
    return {"runs": runs, "budget": budget}
