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
     "reused": [{"step": id, "path": run folder, "config_hash": str}],  # --reuse
     "machines": {cpu: number of training runs}}  # from their checkpoints

The report step adds ``numbers["ablations"]`` (:mod:`g2lstm.reproduce.ablation_collect`) and
``numbers["cost"]`` (:mod:`g2lstm.reproduce.cost`).

Lists are per seed in seed order (one entry per seed that finished the step).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from g2lstm.errors import CheckpointError
from g2lstm.reproduce.plan import by_seed
from g2lstm.train.manager import checkpoint_dirs
from g2lstm.train.manifest import read_manifest
from g2lstm.train.metrics import read_metrics

__all__ = ["collect", "training_machines"]

#: What :func:`training_machines` says of a run whose checkpoints do not name their CPU
#: (saved before checkpoints recorded it).
NOT_RECORDED = "not recorded"

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
    numbers["machines"] = training_machines(markers)
    return numbers


def training_machines(markers: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``CPU -> number of training runs`` of the ``*-train`` markers (variants included), from
    the CPU each kept checkpoint of the run records (``meta.json`` ``versions.cpu``; a run
    resumed on another machine counts under each). Float results differ in their last bits
    between CPU generations, so a report says where its runs were trained."""
    found: dict[str, int] = {}
    for m in markers:
        run_dir = (m.get("result") or {}).get("run_dir")
        if not str(m.get("kind", "")).endswith("-train") or not run_dir:
            continue
        cpus = set()
        folder = Path(run_dir) / "checkpoints"
        for ckpt in checkpoint_dirs(folder) if folder.is_dir() else ():
            try:
                cpus.add(read_manifest(ckpt).get("versions", {}).get("cpu") or NOT_RECORDED)
            except CheckpointError:
                continue  # a damaged checkpoint says nothing about the machine
        for cpu in cpus or {NOT_RECORDED}:
            found[cpu] = found.get(cpu, 0) + 1
    return dict(sorted(found.items()))
