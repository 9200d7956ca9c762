"""What ``g2lstm reproduce`` runs: the plan of steps (scales live in
:mod:`~g2lstm.reproduce.scales` and are re-exported here).

A :class:`Scale` fixes every size of the study (LM preset and overrides, data slices, MT preset,
compression settings, analysis size, default seeds, time estimates). :func:`build_plan` turns
a scale, a seed count and an output folder into an ordered list of :class:`Step`:

``lm-data`` -> ``lm-train-<cell>-s<k>`` -> ``lm-eval-<cell>-s<k>`` -> ``lm-analyze-s<k>``,
``mt-data`` -> ``mt-train-<cell>-s<k>`` -> ``mt-eval-<cell>-s<k>`` -> ``mt-analyze-s<k>``,
then ``report``. Each step owns one folder; it is *done* when its ``DONE.json`` marker exists
(written atomically after the step finished) and records the same inputs (a hash of the
scale settings the step reads and of the markers of the steps it depends on), so a changed
setting, or a re-run or deleted upstream step, re-runs what depends on it. An interrupted
training step resumes through the trainers' own checkpoints.

Output folder layout::

    OUT/plan.json                      the plan (ids, folders, estimates)
    OUT/data/{lm,mt}/                  data slices / prepared MT data
    OUT/lm/<cell>-s<k>/{train,eval}/   trainer run folder, evaluation + compression numbers
    OUT/lm/analysis-s<k>/              gate analysis of the three cells of seed k
    OUT/mt/...                         the same for translation
    OUT/report/                        report.md, report.html, figures/
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from g2lstm.errors import ConfigError
from g2lstm.reproduce.paper import CELLS
from g2lstm.reproduce.scales import SCALES, CompressionSettings, Scale, get_scale
from g2lstm.train.progress import format_duration

__all__ = [
    "DONE",
    "PARTS",
    "SCALES",
    "CompressionSettings",
    "Scale",
    "Step",
    "build_plan",
    "by_seed",
    "format_plan",
    "get_scale",
    "read_marker",
    "read_markers",
]

#: Name of the marker file written when a step has finished.
DONE = "DONE.json"
#: Parts of the study that ``--only`` can select.
PARTS = ("lm", "mt")


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The ``DONE.json`` of ``folder`` as a dict, or None if absent or unreadable."""
    path = Path(folder) / DONE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_markers(folders: Iterable[Path]) -> list[dict[str, Any]]:
    """The ``DONE.json`` of each of ``folders`` that has one, in the folders' order."""
    return [m for m in (read_marker(Path(f)) for f in folders) if m is not None]


def by_seed(markers: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``markers`` in seed order (steps without a seed first), then by step id."""
    return sorted(markers, key=lambda m: (m.get("seed") or 0, str(m.get("id"))))


@dataclass(frozen=True)
class Step:
    """One unit of the plan.

    Attributes:
        id: unique id (``lm-train-g2-s1``).
        kind: one of the step kinds (``lm-train``).
        part: ``lm``, ``mt`` or ``report``.
        out_dir: the folder the step owns (its ``DONE.json`` goes here).
        estimate_s: estimated seconds.
        cell, seed: the model and seed (None where not applicable).
        deps: folders of the steps whose results this step reads.
        settings: hash of the scale settings the step reads (part of its inputs).
        variant: name of an ablation variant of ``cell`` (``g2-p0.05``;
            :mod:`~g2lstm.reproduce.ablations`), None for the paper's own cells.
        overrides: dotted config overrides a training step applies on top of the scale's
            (the variant's noise probability, temperature, noisy gates or epochs).
    """

    id: str
    kind: str
    part: str
    out_dir: Path
    estimate_s: float
    cell: str | None = None
    seed: int | None = None
    deps: tuple[Path, ...] = ()
    settings: str = ""
    variant: str | None = None
    overrides: tuple[tuple[str, Any], ...] = ()

    def inputs(self) -> str:
        """Hash of the scale settings the step reads (``settings``) and of the markers of its
        dependencies: what the step's result was computed from."""
        h = hashlib.sha256(self.settings.encode())
        for dep in self.deps:
            h.update(str(dep).encode())
            marker = Path(dep) / DONE
            h.update(marker.read_bytes() if marker.is_file() else b"<missing>")
        return h.hexdigest()[:16]

    def marker(self) -> dict[str, Any] | None:
        """This step's ``DONE.json`` contents (None if absent)."""
        return read_marker(self.out_dir)

    def done(self) -> bool:
        """Finished, with the same inputs as now (and, for a reused run, that run is still
        there)."""
        marker = self.marker()
        if marker is None or marker.get("inputs") != self.inputs():
            return False
        reused = marker.get("reused_from")
        return not reused or Path(reused).is_dir()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "part": self.part,
            "out_dir": str(self.out_dir),
            "estimate_s": self.estimate_s,
            "cell": self.cell,
            "seed": self.seed,
            "deps": [str(d) for d in self.deps],
            **({"variant": self.variant} if self.variant else {}),
            **({"overrides": dict(self.overrides)} if self.overrides else {}),
        }


def build_plan(
    scale: Scale,
    seeds: int | None,
    out_dir: str | Path,
    *,
    only: Sequence[str] = PARTS,
    cells: Sequence[str] = CELLS,
) -> list[Step]:
    """The ordered steps of the study (see the module docstring).

    Args:
        scale: the sizes.
        seeds: seeds per model (``None``: ``scale.seeds``); seed ``k`` trains with seed ``k``.
        out_dir: the output folder.
        only: parts to run (``lm``, ``mt``); the report always comes last.
        cells: models compared (default: LSTM, Sharpened Sigmoid, G2-LSTM).
    """
    n = scale.seeds if seeds is None else seeds
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"--seeds={seeds!r} must be an integer >= 1")
    bad = [p for p in only if p not in PARTS]
    if bad or not only:
        raise ConfigError(f"--only {bad or only}: choose from {', '.join(PARTS)}")
    bad = [c for c in cells if c not in CELLS]
    if bad or not cells:
        raise ConfigError(f"cells {bad or cells}: choose from {', '.join(CELLS)}")
    out = Path(out_dir)
    steps: list[Step] = []
    for part in PARTS:  # every part is planned: the report reads whatever has finished
        root = out / part
        data = Step(
            f"{part}-data",
            f"{part}-data",
            part,
            out / "data" / part,
            scale.estimate(f"{part}-data"),
        )
        steps.append(data)
        for seed in range(1, n + 1):
            evals = []
            for cell in cells:
                run = root / f"{cell}-s{seed}"
                train = Step(
                    f"{part}-train-{cell}-s{seed}",
                    f"{part}-train",
                    part,
                    run / "train",
                    scale.estimate(f"{part}-train"),
                    cell,
                    seed,
                    (data.out_dir,),
                )
                ev = Step(
                    f"{part}-eval-{cell}-s{seed}",
                    f"{part}-eval",
                    part,
                    run / "eval",
                    scale.estimate(f"{part}-eval"),
                    cell,
                    seed,
                    (data.out_dir, train.out_dir),
                )
                steps += [train, ev]
                evals.append(ev.out_dir)
            trains = tuple(root / f"{c}-s{seed}" / "train" for c in cells)
            steps.append(
                Step(
                    f"{part}-analyze-s{seed}",
                    f"{part}-analyze",
                    part,
                    root / f"analysis-s{seed}",
                    scale.estimate(f"{part}-analyze"),
                    None,
                    seed,
                    (data.out_dir, *trains),
                )
            )
    # The report depends on every part's results, also those of parts not run this time
    # (`--only`): a part finished by an earlier call is reported, a missing one is "not run".
    deps = tuple(s.out_dir for s in steps if s.kind.endswith(("-train", "-eval", "-analyze")))
    steps = [replace(s, settings=scale.settings_key(s.kind)) for s in steps if s.part in only]
    steps.append(
        Step("report", "report", "report", out / "report", scale.estimate("report"), deps=deps)
    )
    return steps


#: First word of the status of a training step that waits for a run trained beside the
#: reproduction (``--reuse-wait``): its time is unknown, so it is named, not estimated.
WAIT = "wait"


def is_wait_label(label: str) -> bool:
    """Whether a plan status (:meth:`g2lstm.reproduce.reuse.Decision.label`) is a wait."""
    return label.split(" ", 1)[0] == WAIT


def waits_note(n_wait: int) -> str:
    """What the plan's total and the running ETA add for ``n_wait`` waiting steps ("" for 0)."""
    return f", plus the end of {n_wait} run(s) trained beside it" if n_wait else ""


def format_plan(
    steps: Sequence[Step],
    scale: Scale,
    out_dir: str | Path,
    reuse: Mapping[str, str] | None = None,
) -> str:
    """The plan as a text table: step, folder, estimate, status; with the total.

    ``reuse``: ``step id -> status`` (``reuse <path>``) of training steps that a finished run
    will satisfy (:meth:`g2lstm.reproduce.reuse.ReuseFinder.preview`); not counted as time.
    A ``wait <path>`` step (a run still training beside the reproduction) is not counted
    either, but the total says how many there are: the time they add is unknown.
    """
    out = Path(out_dir)
    reuse = reuse or {}
    rows = []
    todo = 0.0
    for k, s in enumerate(steps, 1):
        done = s.done()
        if not done and s.id not in reuse:
            todo += s.estimate_s
        try:
            rel = s.out_dir.relative_to(out)
        except ValueError:
            rel = s.out_dir
        rows.append(
            (
                f"{k}/{len(steps)}",
                s.id,
                str(rel),
                format_duration(s.estimate_s),
                "done" if done else reuse.get(s.id, "todo"),
            )
        )
    head = ("#", "step", "folder", "estimate", "status")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"g2lstm reproduce --scale {scale.name}: {scale.description}", f"output: {out}", ""]
    for r in [head, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    n_done = sum(1 for s in steps if s.done())
    lines.append("")
    n_reuse = sum(1 for s in steps if s.id in reuse and not s.done())
    reused = f", {n_reuse} to be reused" if n_reuse else ""
    n_wait = sum(1 for s in steps if is_wait_label(reuse.get(s.id, "")) and not s.done())
    lines.append(
        f"{len(steps)} steps, {n_done} done{reused}; estimated time left: "
        f"{format_duration(todo)}{waits_note(n_wait)} (estimates for the scale's intended "
        "hardware)"
    )
    return "\n".join(lines)
