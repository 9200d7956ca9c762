"""What each experiment of a reproduction cost: wall and CPU time, from the steps' markers.

A reader planning a rerun needs the cost of each experiment, not only the reproduction's own
compute time (which leaves out the training runs it reused). Each step's cost is

- for a training step: the run's own record (``wall_time_s`` or ``train_time_s``, and
  ``cpu_time_s`` where the trainer records it: the LM trainer does), which covers every part
  of a resumed run and the runs that ``--reuse`` adopted;
- for a probe whose numbers were kept beside a reused run
  (:mod:`~g2lstm.reproduce.probe_file`): the ``cost`` the probe recorded when it measured
  them;
- for any other step: the marker's ``seconds`` and ``cpu_seconds`` (CPU time of the
  reproduction's process and of the children it waited for, all threads;
  :func:`g2lstm.reproduce.run.run_plan` writes both).

Steps are grouped into experiments (:func:`experiment_of`): the paper's cells on PTB and on
translation, the probes of the cells, each sweep of the ablations (training and probes), the
cells at a reduced budget. ``numbers["cost"]`` is :func:`experiment_costs`'s list of rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from g2lstm.reproduce.ablations import split_key, variant
from g2lstm.reproduce.document import Document
from g2lstm.train.progress import format_duration

__all__ = ["cost_section", "experiment_costs", "experiment_of", "step_cost"]

#: Experiment names of the sweeps, by :attr:`~g2lstm.reproduce.ablations.Variant.group`.
_SWEEPS = {
    "p": "PTB sweep: noise probability p (claim 7)",
    "tau": "PTB sweep: temperature tau (claim 8)",
    "gates": "PTB sweep: noise on the output gate too (claim 9)",
}

#: A row before its first step (counts, and seconds summed over the steps).
_EMPTY_ROW: dict[str, Any] = {
    "steps": 0,
    "trainings": 0,
    "reused": 0,
    "wall_s": 0.0,
    "cpu_s": 0.0,
    "cpu_missing": 0,
}


def _seconds(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) and x >= 0 else None


def step_cost(marker: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """``(wall seconds, CPU seconds)`` of one step (None: not recorded); see the module
    docstring for which record each comes from."""
    wall, cpu = _seconds(marker.get("seconds")), _seconds(marker.get("cpu_seconds"))
    res = marker.get("result") or {}
    if res.get("probe_reused_from"):  # measured earlier, beside the reused run
        kept = res.get("cost") or {}
        return _seconds(kept.get("wall_s")), _seconds(kept.get("cpu_s"))
    if not str(marker.get("kind", "")).endswith("-train"):
        return wall, cpu
    own = _seconds(res.get("wall_time_s")) or _seconds(res.get("train_time_s"))
    if own is None and not marker.get("reused_from"):
        own = wall
    return own, _seconds(res.get("cpu_time_s"))


def experiment_of(marker: Mapping[str, Any]) -> str:
    """The experiment a step belongs to (a row of the cost table)."""
    kind = str(marker.get("kind", ""))
    part, _, what = kind.partition("-")
    if part == "mt":
        return "Translation: cells (data, training, evaluation, analysis)"
    if part != "lm":
        return "Report"
    name = marker.get("variant")
    found = variant(split_key(str(name))[0]) if name else None
    if found is not None:
        return _SWEEPS[found.group]
    if name or kind == "lm-ranking":
        return "PTB: cells at the reduced budget, and its ranking check"
    if what == "probe":
        return "PTB: probes of the cells (cache pointer, hard gates, compression, claim 3)"
    return "PTB: cells (data, training, evaluation and compression, analysis)"


def experiment_costs(markers: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per experiment of the steps' ``DONE.json`` ``markers``, in order of first
    appearance: ``experiment``, ``steps``, ``trainings``, ``reused`` (trainings adopted by
    ``--reuse``), ``wall_s``, ``cpu_s`` (sums over the steps that recorded them) and
    ``cpu_missing`` (steps without a CPU record)."""
    rows: dict[str, dict[str, Any]] = {}
    for marker in markers:
        row = rows.setdefault(experiment_of(marker), dict(_EMPTY_ROW))
        wall, cpu = step_cost(marker)
        row["steps"] += 1
        if str(marker.get("kind", "")).endswith("-train"):
            row["trainings"] += 1
            row["reused"] += bool(marker.get("reused_from"))
        row["wall_s"] += wall or 0.0
        if cpu is None:
            row["cpu_missing"] += 1
        else:
            row["cpu_s"] += cpu
    return [{"experiment": name, **row} for name, row in rows.items()]


def cost_section(doc: Document, rows: list[Mapping[str, Any]]) -> None:
    """The cost table: wall and CPU time of each experiment, trainings counted with their
    own records (also the reused ones)."""
    if not rows:
        doc.p("No step has finished yet.")
        return
    doc.p(
        "Wall and CPU time of each experiment, to plan a rerun: a training counts with its "
        "own record (every part of a resumed run; also the runs reused with `--reuse`), a "
        "probe whose numbers were kept beside a reused run with the time measuring them took, "
        "any other step with the time this reproduction spent on it. CPU time adds up all "
        "threads; `+ n without a record`: steps whose CPU time was not recorded (runs "
        "trained before the trainer recorded it), left out of the sum."
    )
    table = []
    for r in rows:
        cpu = format_duration(r["cpu_s"]) if r["steps"] > r["cpu_missing"] else "-"
        if r["cpu_missing"] and r["steps"] > r["cpu_missing"]:
            cpu += f" + {r['cpu_missing']} without a record"
        table.append(
            (
                r["experiment"],
                str(r["steps"]),
                f"{r['trainings']} ({r['reused']} reused)" if r["trainings"] else "0",
                format_duration(r["wall_s"]),
                cpu,
            )
        )
    doc.table(("Experiment", "Steps", "Trainings", "Wall time", "CPU time"), table)
