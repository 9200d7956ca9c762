"""The paper's remaining claims as declared experiments (``g2lstm reproduce --ablations``).

Sweeps of G2-LSTM on PTB (docs ``paper.md`` §6 claims 3, 7, 8, 9), added to the plan of
:func:`~g2lstm.reproduce.plan.build_plan`:

- noise probability ``p`` in {0.05, 0.2, 0.5, 1.0} at tau 0.9 (claim 7, the README's
  noise-dropout trade-off);
- temperature ``tau`` in {0.5, 0.9, 1.0} at p 0.2 (claim 8);
- noise on the output gate as well (``model.gates.noisy_gates`` input, forget, output; claim 9).

The point p 0.2 / tau 0.9 of both sweeps is the plan's own ``g2`` run, and the LSTM and
Sharpened Sigmoid runs are the plan's too, so ``--reuse`` binds them to finished benchmark
runs like any other training step. Every run of the study, the paper's three cells included,
gets a ``lm-probe`` step (:mod:`~g2lstm.reproduce.steps_probe`): valid/test perplexity with
soft and hard gates, with and without the cache pointer, the clean training perplexity, near
0/1 fractions and the compression deltas at the paper's settings (:class:`ProbeSettings`).

Budget: by default every variant trains with the scale's preset (``small``: 13 epochs). With
``epochs`` (``--ablation-epochs E``, fewer than the preset's), every sweep run, the three
baselines included, trains for ``E`` epochs under the same schedule, in ``OUT/lm-e<E>/``; a
``lm-ranking`` step first checks on the plan's full-budget runs that the ranking of the cells
after ``E`` epochs is their ranking at the end (:mod:`~g2lstm.reproduce.budget`) and stops
the plan if it is not, so a reduced budget is used only where it is justified. The reduced
baselines need not train: a full-budget run that kept its epoch checkpoints, cut to ``E``
epochs (``g2lstm lm truncate``; ``benchmarks/lm_ablations.py --epochs E`` cuts all three), is
the ``E``-epoch run, and ``--reuse`` adopts it like a trained one.

Folders: ``OUT/lm/<run>-s<k>/{train,probe}`` with ``<run>`` ``lstm``, ``sharpened``, ``g2``
(the plan's) or a variant (``g2-p0.05``); reduced: ``OUT/lm-e<E>/<run>-s<k>/...`` and
``OUT/lm-e<E>/ranking``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from g2lstm.errors import ConfigError
from g2lstm.reproduce.digest import short_hash
from g2lstm.reproduce.paper import CELLS
from g2lstm.reproduce.plan import Step
from g2lstm.reproduce.scales import Scale
from g2lstm.tasks import get_task

__all__ = [
    "PROBE",
    "PROBE_COLUMNS",
    "P_SWEEP",
    "TAU_SWEEP",
    "VARIANTS",
    "AblationSettings",
    "ProbeSettings",
    "Variant",
    "add_ablations",
    "run_key",
    "split_key",
    "sweep_keys",
    "sweep_runs",
]

#: The swept values; the middle ones (p 0.2, tau 0.9) are the plan's own ``g2`` cell.
P_SWEEP: tuple[float, ...] = (0.05, 0.2, 0.5, 1.0)
TAU_SWEEP: tuple[float, ...] = (0.5, 0.9, 1.0)
#: The G2-LSTM point of both sweeps (paper §4: tau 0.9; README: p 0.2).
G2_P, G2_TAU = 0.2, 0.9


@dataclass(frozen=True)
class Variant:
    """One ablation of G2-LSTM.

    Attributes:
        name: run name (``g2-p0.05``): folder ``<name>-s<k>``, key of the report's numbers.
        group: ``p``, ``tau`` or ``gates``.
        value: the swept value (``p`` or ``tau``; the noisy gates for ``gates``).
        overrides: dotted config overrides on top of ``--cell g2``.
        label: shown in tables and figures.
    """

    name: str
    group: str
    value: Any
    overrides: tuple[tuple[str, Any], ...]
    label: str
    cell: str = "g2"


def _num(x: float) -> str:
    return f"{x:g}"


#: Every variant trained by the sweeps (besides the plan's own cells).
VARIANTS: tuple[Variant, ...] = (
    *(
        Variant(f"g2-p{_num(p)}", "p", p, (("model.gates.noise_p", p),), f"G2-LSTM p={_num(p)}")
        for p in P_SWEEP
        if p != G2_P
    ),
    *(
        Variant(f"g2-tau{_num(t)}", "tau", t, (("model.gates.tau", t),), f"G2-LSTM tau={_num(t)}")
        for t in TAU_SWEEP
        if t != G2_TAU
    ),
    Variant(
        "g2-ifo",
        "gates",
        "input,forget,output",
        (("model.gates.noisy_gates", ("input", "forget", "output")),),
        "G2-LSTM, noisy output gate too",
    ),
)
_BY_NAME = {v.name: v for v in VARIANTS}


def run_key(name: str, epochs: int | None) -> str:
    """Key of a run in the report's numbers: ``g2-p0.05``, or ``g2-p0.05-e6`` at a reduced
    budget of 6 epochs (the three cells too: ``lstm-e6``)."""
    return name if epochs is None else f"{name}-e{epochs}"


def split_key(key: str) -> tuple[str, int | None]:
    """The inverse of :func:`run_key`: ``g2-p0.05-e6`` -> ``("g2-p0.05", 6)``,
    ``g2-p0.05`` -> ``("g2-p0.05", None)``."""
    name, sep, epochs = key.rpartition("-e")
    if sep and epochs.isdigit():
        return name, int(epochs)
    return key, None


def sweep_keys(group: str, epochs: int | None = None) -> list[tuple[float, str]]:
    """``(value, run key)`` of the sweep ``group`` (``p`` or ``tau``), in value order; the
    G2 point is the ``g2`` run."""
    values, base = {"p": (P_SWEEP, G2_P), "tau": (TAU_SWEEP, G2_TAU)}[group]
    out = []
    for v in values:
        name = "g2" if v == base else f"g2-{group}{_num(v)}"
        out.append((v, run_key(name, epochs)))
    return out


@dataclass(frozen=True)
class ProbeSettings:
    """What a ``lm-probe`` step measures (paper §4.3 settings for the compression deltas).

    Attributes:
        step, clip: round to multiples of ``step`` (Eq. 17), then clip to ``±clip`` (Eq. 18).
        rank_divisors: truncated SVD to rank ``H // d`` for each ``d`` (H/8 and H/16; the
            paper's ranks 128 and 64 of H = 1150 are H/9 and H/18).
        bits: symmetric per-row quantisation (2 bits: ternary).
        pointer: cache-pointer settings (AWD-LSTM's PTB recipe: window 500, theta 1.0,
            lambda 0.1; evaluation segments of 500).
        train_tokens: the clean training perplexity reads this many tokens of ``train``
            (10 streams x 35-token segments, state carried).
        sensitivity_sigma, sensitivity_draws: the flatness proxy of claim 3: the mean loss
            increase on the validation segments when Gaussian noise of ``sigma`` times each
            row's rms is added to the input/forget gate rows (:mod:`g2lstm.analysis.sensitivity`),
            over ``draws`` seeded draws.

    The near-0/1 fractions read the scale's ``analysis_batches`` validation segments of
    10 x 35 tokens, as the ``lm-analyze`` step.
    """

    step: float = 0.2
    clip: float = 0.4
    rank_divisors: tuple[int, int] = (8, 16)
    bits: int = 2
    pointer: tuple[tuple[str, Any], ...] = (
        ("window", 500),
        ("theta", 1.0),
        ("lambdah", 0.1),
        ("bptt", 500),
    )
    train_tokens: int = 100_000
    sensitivity_sigma: float = 0.1
    sensitivity_draws: int = 2

    def compressions(self, hidden: int) -> dict[str, tuple[str, dict[str, Any]]]:
        """``column -> (method, params)`` for :func:`g2lstm.compress.compress` at hidden size
        ``hidden`` (on the input and forget gate blocks)."""
        hi, lo = self.rank_divisors
        return {
            "round": ("round", {"step": self.step}),
            "round_clip": ("round", {"step": self.step, "clip": self.clip}),
            f"svd_h{hi}": ("low_rank", {"rank": max(1, hidden // hi)}),
            f"svd_h{lo}": ("low_rank", {"rank": max(1, hidden // lo)}),
            f"{self.bits}bit": ("quantize", {"bits": self.bits}),
        }

    def key(self) -> str:
        return short_hash(vars(self))


#: The settings of every ``lm-probe`` step.
PROBE = ProbeSettings()

#: Compression columns of the probe (default :class:`ProbeSettings`), with their labels.
PROBE_COLUMNS: dict[str, str] = {
    "round": "round 0.2",
    "round_clip": "round & clip 0.2/0.4",
    "svd_h8": "SVD H/8",
    "svd_h16": "SVD H/16",
    "2bit": "2-bit",
}


@dataclass(frozen=True)
class AblationSettings:
    """How the sweeps run.

    Attributes:
        seeds: seeds per variant (2: the least the verdict rule judges); the plan's cells keep
            the plan's ``--seeds``.
        epochs: reduced training budget (None: the scale's preset).
    """

    seeds: int = 2
    epochs: int | None = None

    def __post_init__(self) -> None:
        for name in ("seeds", "epochs"):
            value = getattr(self, name)
            if value is None and name == "epochs":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                flag = f"--ablation-{name}"
                raise ConfigError(f"{flag}={value!r} must be an integer >= 1")


def sweep_runs(
    seeds: int, epochs: int | None = None
) -> list[tuple[str, str, int, tuple[tuple[str, Any], ...]]]:
    """``(name, cell, seed, overrides)`` of every training run the sweeps add to a plan, in
    plan order: each variant (and, at a reduced budget of ``epochs``, the paper's three cells
    first) for seeds 1..``seeds``; ``overrides`` include ``train.epochs`` at a reduced budget.
    ``benchmarks/lm_ablations.py`` trains exactly these, for ``--reuse``."""
    budget: tuple[tuple[str, Any], ...] = () if epochs is None else (("train.epochs", epochs),)
    runs = [(v.name, v.cell, v.overrides) for v in VARIANTS]
    if epochs is not None:  # the baselines at the same budget
        runs = [(c, c, ()) for c in CELLS] + runs
    return [(n, c, k, o + budget) for k in range(1, seeds + 1) for n, c, o in runs]


def preset_epochs(scale: Scale) -> int:
    """Training epochs of the scale's LM preset (with its overrides)."""
    return int(get_task("lm").preset_config(scale.lm_preset, scale.lm_overrides).train.epochs)


def add_ablations(
    steps: Sequence[Step],
    scale: Scale,
    out_dir: str | Path,
    seeds: int,
    settings: AblationSettings,
) -> list[Step]:
    """``steps`` (a plan of :func:`~g2lstm.reproduce.plan.build_plan` that includes the LM
    part) with the sweeps inserted before the report, which then also reads them.

    Args:
        steps: the plan.
        scale: its scale.
        out_dir: its output folder.
        seeds: the plan's seeds per cell (the paper's three cells are probed on all of them).
        settings: seeds per variant, budget, probe settings.

    Raises:
        ConfigError: a plan without its LM part, or a budget not below the preset's.
    """
    out = Path(out_dir)
    by_id = {s.id: s for s in steps}
    data = by_id.get("lm-data")
    if data is None:
        raise ConfigError("--ablations needs the LM part of the plan (drop --only mt)")
    full = preset_epochs(scale)
    epochs = settings.epochs
    if epochs is not None and epochs >= full:
        if epochs > full:
            raise ConfigError(
                f"--ablation-epochs {epochs} exceeds the {full} epochs of preset "
                f"{scale.lm_preset!r}; give fewer epochs, or leave it out for the full budget"
            )
        epochs = None
    probe_settings = short_hash([PROBE.key(), scale.analysis_batches])
    train_settings = scale.settings_key("lm-train")
    probe_estimate, train_estimate = scale.estimate("lm-probe"), scale.estimate("lm-train")
    added: list[Step] = []

    def probe(train: Step, root: Path, name: str, variant: str | None) -> Step:
        return Step(
            f"{train.id.replace('-train-', '-probe-')}",
            "lm-probe",
            "lm",
            root / f"{name}-s{train.seed}" / "probe",
            probe_estimate,
            train.cell,
            train.seed,
            (data.out_dir, train.out_dir),
            probe_settings,
            variant,
        )

    main_trains = [by_id[f"lm-train-{c}-s{k}"] for k in range(1, seeds + 1) for c in CELLS]
    for train in main_trains:  # Table 3 with the cache pointer, claim 3: the plan's runs
        added.append(probe(train, out / "lm", str(train.cell), None))
    root = out / "lm"
    gate: tuple[Path, ...] = ()  # a reduced budget's runs wait for its ranking check
    if epochs is not None:
        root = out / f"lm-e{epochs}"
        ranking = Step(
            f"lm-ranking-e{epochs}",
            "lm-ranking",
            "lm",
            root / "ranking",
            scale.estimate("lm-ranking"),
            deps=tuple(t.out_dir for t in main_trains),
            settings=short_hash([epochs]),
            overrides=(("train.epochs", epochs),),
        )
        added.append(ranking)
        gate = (ranking.out_dir,)
        train_estimate *= epochs / full
    prefix = "lm" if epochs is None else f"lm-e{epochs}"
    for name, cell, seed, overrides in sweep_runs(settings.seeds, epochs):
        train = Step(
            f"{prefix}-train-{name}-s{seed}",
            "lm-train",
            "lm",
            root / f"{name}-s{seed}" / "train",
            train_estimate,
            cell,
            seed,
            (data.out_dir, *gate),
            short_hash([train_settings, overrides]),
            run_key(name, epochs),
            overrides,
        )
        added += [train, probe(train, root, name, run_key(name, epochs))]
    report = steps[-1]
    if report.kind != "report":
        raise ConfigError("the plan must end with its report step")
    report = replace(report, deps=report.deps + tuple(s.out_dir for s in added))
    return [*steps[:-1], *added, report]


def variant(name: str) -> Variant | None:
    """The :class:`Variant` called ``name`` (None for the plan's own cells)."""
    return _BY_NAME.get(name)
