"""Gather the numbers of a finished plan from the steps' ``DONE.json`` markers.

The result (``numbers``) is plain JSON, the only input of the report writer and the verdicts::

    {"lm": {cell: {"valid_ppl": [...], "test_ppl": [...], "num_parameters": int,
                   "compression": {column: [...]}, "near_binary": {gate: [...]},
                   "near_binary_all_layers": {gate: [...]}, "hard": {"soft": [...],
                   "hard": [...]}, "seeds": [...]}},
     "mt": {cell: {"tok_bleu": [...], "detok_bleu": [...], "compression": {...},
                   "near_binary": ..., "hard": ..., "seeds": [...]}},
     "curves": {"lm": {cell: [metrics rows per seed]}, "mt": {...}},
     "figures": {"lm": {name: png}, "mt": {...}},  # analysis figures of the first seed
     "info": {"lm": {...data...}, "mt": {...}, "seconds": total},
     "reused": [{"step": id, "path": run folder, "config_hash": str}]}  # --reuse

The report step adds ``numbers["ablations"]`` (:mod:`g2lstm.reproduce.ablation_collect`) and
``numbers["cost"]`` (:mod:`g2lstm.reproduce.cost`).

Lists are per seed in seed order (one entry per seed that finished the step).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from g2lstm.reproduce.plan import by_seed
from g2lstm.train.metrics import read_metrics

__all__ = ["collect"]

_PER_SEED = {"lm": ("valid_ppl", "test_ppl"), "mt": ("tok_bleu", "detok_bleu")}


def _curve(path: str | None) -> list[dict[str, Any]]:
    if not path or not Path(path).is_file():
        return []
    return [dict(r) for r in read_metrics(path)]


def collect(markers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``numbers`` of the report step's dependencies, from their ``DONE.json`` markers
    (:func:`~g2lstm.reproduce.plan.read_markers`)."""
    numbers: dict[str, Any] = {
        "lm": {},
        "mt": {},
        "curves": {"lm": {}, "mt": {}},
        "figures": {"lm": {}, "mt": {}},
        "info": {"seconds": 0.0},
        "seeds": [],
        "reused": [],
    }
    seeds: set[int] = set()
    for m in by_seed(markers):
        kind, res = str(m.get("kind", "")), m.get("result") or {}
        numbers["info"]["seconds"] += float(m.get("seconds") or 0.0)
        part, _, what = kind.partition("-")
        if what == "train" and m.get("reused_from"):  # the cells' and the variants' runs
            numbers["reused"].append(
                {"step": m.get("id"), "path": m["reused_from"], "config_hash": m.get("config_hash")}
            )
        if part not in ("lm", "mt") or m.get("variant"):
            continue  # ablation variants: :mod:`g2lstm.reproduce.ablation_collect`
        if m.get("seed") is not None:
            seeds.add(int(m["seed"]))
        if what == "train":
            numbers["curves"][part].setdefault(m["cell"], []).append(_curve(res.get("metrics")))
        elif what == "eval":
            cell = numbers[part].setdefault(m["cell"], {})
            cell.setdefault("seeds", []).append(m["seed"])
            for key in _PER_SEED[part]:
                cell.setdefault(key, []).append(res.get(key))
            cell["num_parameters"] = res.get("num_parameters")
            for col, value in (res.get("compression") or {}).items():
                cell.setdefault("compression", {}).setdefault(col, []).append(value)
            if "compression_params" in res:
                numbers["info"].setdefault(part, {})["compression"] = res["compression_params"]
        elif what == "analyze":
            for cell_name, vals in (res.get("cells") or {}).items():
                cell = numbers[part].setdefault(cell_name, {})
                for key in ("near_binary", "near_binary_all_layers"):
                    for gate, v in (vals.get(key) or {}).items():
                        cell.setdefault(key, {}).setdefault(gate, []).append(v)
                for key in ("soft", "hard"):
                    cell.setdefault("hard", {}).setdefault(key, []).append(
                        (vals.get("hard") or {}).get(key)
                    )
            if not numbers["figures"][part]:
                numbers["figures"][part] = dict(res.get("figures") or {})
    numbers["seeds"] = sorted(seeds)
    return numbers
