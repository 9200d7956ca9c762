"""What ``g2lstm reproduce`` runs: scales (typed presets) and the plan of steps.

A :class:`Scale` fixes every size of the study (LM preset and overrides, data slices, MT preset,
compression settings, analysis size, default seeds, time estimates). :func:`build_plan` turns
a scale, a seed count and an output folder into an ordered list of :class:`Step`:

``lm-data`` -> ``lm-train-<cell>-s<k>`` -> ``lm-eval-<cell>-s<k>`` -> ``lm-analyze-s<k>``,
``mt-data`` -> ``mt-train-<cell>-s<k>`` -> ``mt-eval-<cell>-s<k>`` -> ``mt-analyze-s<k>``,
then ``report``. Each step owns one folder; it is *done* when its ``DONE.json`` marker exists
(written atomically after the step finished) and records the same inputs (a hash of the
markers of the steps it depends on), so a re-run or deleted upstream step re-runs what
depends on it. An interrupted training step resumes through the trainers' own checkpoints.

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
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from g2lstm.errors import ConfigError
from g2lstm.reproduce.paper import CELLS

__all__ = [
    "DONE",
    "PARTS",
    "SCALES",
    "CompressionSettings",
    "Scale",
    "Step",
    "build_plan",
    "format_plan",
    "get_scale",
    "read_marker",
]

#: Name of the marker file written when a step has finished.
DONE = "DONE.json"
#: Parts of the study that ``--only`` can select.
PARTS = ("lm", "mt")
STEP_KINDS = (
    "lm-data", "lm-train", "lm-eval", "lm-analyze",
    "mt-data", "mt-train", "mt-eval", "mt-analyze", "report",
)  # fmt: skip


@dataclass(frozen=True)
class CompressionSettings:
    """Paper §4.3 settings of one task: round to multiples of ``step`` (Eq. 17), clip to
    ``±clip`` (Eq. 18), truncated SVD to ``ranks = (high, low)``; on the i/f gate blocks."""

    step: float
    clip: float
    ranks: tuple[int, int]

    def __post_init__(self) -> None:
        if not (self.step > 0 and self.clip > 0 and math.isfinite(self.step + self.clip)):
            raise ConfigError(f"compression step={self.step} and clip={self.clip} must be > 0")
        if len(self.ranks) != 2 or any(not isinstance(r, int) or r < 1 for r in self.ranks):
            raise ConfigError(f"compression ranks={self.ranks!r}: expected two integers >= 1")

    def settings(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """``column -> (method, params)`` for :func:`g2lstm.compress.compress`, in table order
        (the ``original`` column is the uncompressed model)."""
        high, low = self.ranks
        return {
            "round": ("round", {"step": self.step}),
            "round_clip": ("round", {"step": self.step, "clip": self.clip}),
            "svd_high": ("low_rank", {"rank": high}),
            "svd_low": ("low_rank", {"rank": low}),
        }


@dataclass(frozen=True)
class Scale:
    """Every size of one reproduction scale.

    Attributes:
        name, description: shown by ``--dry-run`` and in the report.
        lm_preset, lm_overrides: :func:`g2lstm.lm.preset_config` arguments (dotted keys).
        lm_slice: ``(train, valid, test)`` line counts of PTB copied into ``OUT/data/lm``
            (``None``: the whole corpus, used in place).
        lm_compression: Table 3 settings.
        mt_dataset: ``multi30k`` or ``iwslt14`` (a dataset name of :mod:`g2lstm.datasets`).
        mt_preset, mt_overrides: :class:`g2lstm.mt.config.MTConfig` preset and section dicts.
        mt_slice: ``(train, valid, test)`` sentence pairs kept (``None``: all).
        mt_bpe_merges: joint BPE merges of the MT preparation.
        mt_compression: Tables 4/5 settings.
        seeds: default number of seeds per model.
        analysis_batches: segments (LM) / batches (MT) used for gate histograms.
        eval_tokens: LM tokens used for hard-gate perplexity (``None``: the whole valid split).
        estimates: ``step kind -> seconds`` for one step on the intended hardware.
    """

    name: str
    description: str
    lm_preset: str
    lm_overrides: Mapping[str, Any]
    lm_slice: tuple[int, int, int] | None
    lm_compression: CompressionSettings
    mt_dataset: str
    mt_preset: str
    mt_overrides: Mapping[str, Mapping[str, Any]]
    mt_slice: tuple[int, int, int] | None
    mt_bpe_merges: int
    mt_compression: CompressionSettings
    seeds: int
    analysis_batches: int
    eval_tokens: int | None
    estimates: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.seeds < 1 or self.analysis_batches < 1 or self.mt_bpe_merges < 0:
            raise ConfigError(f"scale {self.name!r}: seeds/analysis_batches must be >= 1")
        for what, sl in (("lm_slice", self.lm_slice), ("mt_slice", self.mt_slice)):
            if sl is not None and (len(sl) != 3 or any(n < 1 for n in sl)):
                raise ConfigError(f"scale {self.name!r}: {what}={sl!r} needs 3 counts >= 1")
        if self.mt_dataset not in ("multi30k", "iwslt14"):
            raise ConfigError(f"scale {self.name!r}: mt_dataset must be multi30k or iwslt14")
        unknown = set(self.estimates) - set(STEP_KINDS)
        if unknown:
            raise ConfigError(f"scale {self.name!r}: unknown step kinds {sorted(unknown)}")

    def estimate(self, kind: str) -> float:
        """Estimated seconds of one step of ``kind`` (0 if unknown)."""
        return float(self.estimates.get(kind, 0.0))


_LM_PAPER = CompressionSettings(0.2, 0.4, (128, 64))
_MT_PAPER = CompressionSettings(0.5, 1.0, (32, 16))

SCALES: dict[str, Scale] = {
    "tiny": Scale(
        name="tiny",
        description="smoke run: tiny models, a slice of PTB and Multi30k (minutes on 2 cores)",
        lm_preset="tiny",
        lm_overrides={
            "model.emsize": 32,
            "model.nhid": 32,
            "train.batch_size": 16,
            "train.bptt": 16,
            "train.epochs": 2,
            "train.eval_batch_size": 4,
            "train.test_batch_size": 4,
            "train.progress": False,
            "train.threads": 1,
        },
        lm_slice=(1000, 150, 150),
        lm_compression=CompressionSettings(0.2, 0.4, (8, 4)),
        mt_dataset="multi30k",
        mt_preset="tiny",
        mt_overrides={"train": {"epochs": 2, "max_tokens": 512, "valid_bleu": False, "threads": 1}},
        mt_slice=(1500, 100, 100),
        mt_bpe_merges=800,
        mt_compression=CompressionSettings(0.5, 1.0, (8, 4)),
        seeds=1,
        analysis_batches=4,
        eval_tokens=2000,
        estimates={
            "lm-data": 1,
            "lm-train": 15,
            "lm-eval": 3,
            "lm-analyze": 8,
            "mt-data": 4,
            "mt-train": 18,
            "mt-eval": 3,
            "mt-analyze": 5,
            "report": 5,
        },
    ),
    "cpu": Scale(
        name="cpu",
        description="Zaremba 'small' LM on full PTB, the paper's IWSLT-size MT model on "
        "Multi30k (a few hours on 2 cores)",
        lm_preset="small",
        lm_overrides={"train.progress": False, "train.test_batch_size": 10},
        lm_slice=None,
        lm_compression=CompressionSettings(0.2, 0.4, (64, 32)),
        mt_dataset="multi30k",
        mt_preset="iwslt",
        mt_overrides={"train": {"epochs": 8, "max_minutes": 20.0, "valid_bleu": False}},
        mt_slice=None,
        mt_bpe_merges=10000,
        mt_compression=_MT_PAPER,
        seeds=3,
        analysis_batches=20,
        eval_tokens=20000,
        estimates={
            "lm-data": 5,
            "lm-train": 1500,
            "lm-eval": 120,
            "lm-analyze": 120,
            "mt-data": 60,
            "mt-train": 1250,
            "mt-eval": 180,
            "mt-analyze": 60,
            "report": 10,
        },
    ),
    "paper": Scale(
        name="paper",
        description="the paper's configurations (AWD-LSTM 3x1150, 500+500 epochs; IWSLT'14 "
        "2x256 with AdaDelta): for GPUs",
        lm_preset="paper",
        lm_overrides={"train.progress": False},
        lm_slice=None,
        lm_compression=_LM_PAPER,
        mt_dataset="iwslt14",
        mt_preset="iwslt",
        mt_overrides={
            "optim": {"name": "adadelta", "clip": 2.0},
            "train": {"epochs": 30, "valid_bleu": False},
        },
        mt_slice=None,
        mt_bpe_merges=25000,
        mt_compression=_MT_PAPER,
        seeds=3,
        analysis_batches=50,
        eval_tokens=None,
        estimates={
            "lm-data": 5,
            "lm-train": 36 * 3600,
            "lm-eval": 1800,
            "lm-analyze": 600,
            "mt-data": 600,
            "mt-train": 8 * 3600,
            "mt-eval": 600,
            "mt-analyze": 300,
            "report": 10,
        },
    ),
}


def get_scale(name: str) -> Scale:
    """The :class:`Scale` called ``name``."""
    if name not in SCALES:
        raise ConfigError(f"unknown scale {name!r}; choose one of {', '.join(SCALES)}")
    return SCALES[name]


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The ``DONE.json`` of ``folder`` as a dict, or None if absent or unreadable."""
    path = Path(folder) / DONE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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
    """

    id: str
    kind: str
    part: str
    out_dir: Path
    estimate_s: float
    cell: str | None = None
    seed: int | None = None
    deps: tuple[Path, ...] = ()

    def inputs(self) -> str:
        """Hash of the markers of the dependencies (what the step's result was computed from)."""
        h = hashlib.sha256()
        for dep in self.deps:
            h.update(str(dep).encode())
            marker = Path(dep) / DONE
            h.update(marker.read_bytes() if marker.is_file() else b"<missing>")
        return h.hexdigest()[:16]

    def marker(self) -> dict[str, Any] | None:
        """This step's ``DONE.json`` contents (None if absent)."""
        return read_marker(self.out_dir)

    def done(self) -> bool:
        """Finished, with the same inputs as now."""
        marker = self.marker()
        return marker is not None and marker.get("inputs") == self.inputs()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "part": self.part,
                "out_dir": str(self.out_dir), "estimate_s": self.estimate_s,
                "cell": self.cell, "seed": self.seed,
                "deps": [str(d) for d in self.deps]}  # fmt: skip


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
    for part in PARTS:
        if part not in only:
            continue
        root = out / part
        data = Step(f"{part}-data", f"{part}-data", part, out / "data" / part,
                    scale.estimate(f"{part}-data"))  # fmt: skip
        steps.append(data)
        for seed in range(1, n + 1):
            evals = []
            for cell in cells:
                run = root / f"{cell}-s{seed}"
                train = Step(f"{part}-train-{cell}-s{seed}", f"{part}-train", part,
                             run / "train", scale.estimate(f"{part}-train"), cell, seed,
                             (data.out_dir,))  # fmt: skip
                ev = Step(f"{part}-eval-{cell}-s{seed}", f"{part}-eval", part, run / "eval",
                          scale.estimate(f"{part}-eval"), cell, seed,
                          (data.out_dir, train.out_dir))  # fmt: skip
                steps += [train, ev]
                evals.append(ev.out_dir)
            trains = tuple(root / f"{c}-s{seed}" / "train" for c in cells)
            steps.append(Step(f"{part}-analyze-s{seed}", f"{part}-analyze", part,
                              root / f"analysis-s{seed}", scale.estimate(f"{part}-analyze"),
                              None, seed, (data.out_dir, *trains)))  # fmt: skip
    deps = tuple(s.out_dir for s in steps if s.kind.endswith(("-train", "-eval", "-analyze")))
    steps.append(Step("report", "report", "report", out / "report", scale.estimate("report"),
                      deps=deps))  # fmt: skip
    return steps


def format_plan(steps: Sequence[Step], scale: Scale, out_dir: str | Path) -> str:
    """The plan as a text table: step, folder, estimate, status; with the total."""
    from g2lstm.train.progress import format_duration

    out = Path(out_dir)
    rows = []
    todo = 0.0
    for k, s in enumerate(steps, 1):
        done = s.done()
        if not done:
            todo += s.estimate_s
        try:
            rel = s.out_dir.relative_to(out)
        except ValueError:
            rel = s.out_dir
        rows.append((f"{k}/{len(steps)}", s.id, str(rel), format_duration(s.estimate_s),
                     "done" if done else "todo"))  # fmt: skip
    head = ("#", "step", "folder", "estimate", "status")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"g2lstm reproduce --scale {scale.name}: {scale.description}", f"output: {out}", ""]
    for r in [head, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    n_done = sum(1 for s in steps if s.done())
    lines.append("")
    lines.append(f"{len(steps)} steps, {n_done} done; estimated time left: "
                 f"{format_duration(todo)} (estimates for the scale's intended "
                 "hardware)")  # fmt: skip
    return "\n".join(lines)
