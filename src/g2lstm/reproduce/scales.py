"""Reproduction scales: every size of the study, as typed presets (:data:`SCALES`).

A :class:`Scale` fixes the LM preset and overrides, data slices, MT preset and preparation,
compression settings, analysis size, default seeds and time estimates per step kind.
``cpu`` uses exactly the settings of the public benchmark commands, so that their finished
runs can be reused (``g2lstm reproduce --reuse``)::

    g2lstm lm train --preset small --cell CELL --seed K --data ptb --no-progress
    g2lstm mt prepare --dataset multi30k --out DATA      # 10,000 joint BPE merges
    g2lstm mt train --preset multi30k --data DATA --cell CELL --seed K --max-minutes 0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from g2lstm.errors import ConfigError
from g2lstm.reproduce.digest import short_hash

__all__ = ["SCALES", "STEP_KINDS", "CompressionSettings", "Scale", "get_scale"]

STEP_KINDS = (
    "lm-data",
    "lm-train",
    "lm-eval",
    "lm-analyze",
    "lm-probe",
    "lm-ranking",
    "mt-data",
    "mt-train",
    "mt-eval",
    "mt-analyze",
    "report",
)


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
        lm_vocab: keep the ``lm_vocab - 1`` most frequent words of the sliced training text
            and write ``<unk>`` for the others (``None``: PTB's vocabulary as it is); a small
            vocabulary makes the softmax cheap at the small scales.
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
    lm_vocab: int | None = None

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

    def settings_key(self, kind: str) -> str:
        """Hash of the fields a step of ``kind`` reads (part of its ``DONE.json`` inputs), so
        that changing e.g. a scale's compression ranks re-runs the evaluations, not training."""
        fields_by_kind = {
            "lm-data": ("lm_slice", "lm_vocab"),
            "lm-train": ("lm_preset", "lm_overrides"),
            "lm-eval": ("lm_compression", "eval_tokens"),
            "lm-analyze": ("analysis_batches", "eval_tokens"),
            "mt-data": ("mt_dataset", "mt_slice", "mt_bpe_merges"),
            "mt-train": ("mt_preset", "mt_overrides"),
            "mt-eval": ("mt_compression",),
            "mt-analyze": ("analysis_batches",),
        }
        values = {f: getattr(self, f) for f in fields_by_kind.get(kind, ())}
        return short_hash(values)

    def estimate(self, kind: str) -> float:
        """Estimated seconds of one step of ``kind`` (0 if unknown)."""
        return float(self.estimates.get(kind, 0.0))


_LM_PAPER = CompressionSettings(0.2, 0.4, (128, 64))
_MT_PAPER = CompressionSettings(0.5, 1.0, (32, 16))

SCALES: dict[str, Scale] = {
    "tiny": Scale(
        name="tiny",
        description="the method at a glance: small models on slices of PTB and Multi30k, "
        "one seed (a few minutes on 2 cores)",
        # Zaremba's recipe (no dropout, SGD lr 20, halving after epoch 2) at H = 64 on the
        # first 4,000 PTB lines (~88k tokens) with its 2,000 most frequent words
        lm_preset="small",
        lm_overrides={
            "model.emsize": 64,
            "model.nhid": 64,
            "train.epochs": 4,
            "optim.decay_after": 2,
            "train.test_batch_size": 10,
            "train.progress": False,
            "train.threads": 1,
        },
        lm_slice=(4000, 400, 400),
        lm_vocab=2000,
        lm_compression=CompressionSettings(0.2, 0.4, (8, 4)),
        mt_dataset="multi30k",
        mt_preset="tiny",
        # small batches and Adam 2e-3 (many updates for the data), a 1-layer 64-unit model,
        # 5,000 pairs, 1,000 BPE merges: 2-3 BLEU (was 0.00 with the 32-unit, 2-epoch model);
        # the whole slice (the tiny preset alone stops at 500 pairs)
        mt_overrides={
            "model": {"emb": 64, "hidden": 64, "layers": 1},
            "optim": {"lr": 2e-3, "lr_decay": 1.0},
            "train": {
                "epochs": 5,
                "max_tokens": 800,
                "valid_bleu": False,
                "threads": 1,
                "limit_sentences": None,
            },
        },
        mt_slice=(5000, 300, 300),
        mt_bpe_merges=1000,
        mt_compression=CompressionSettings(0.5, 1.0, (16, 8)),
        seeds=1,
        analysis_batches=4,
        eval_tokens=4000,
        estimates={  # measured on 2 shared cores (load ~4): 6.5 min in all
            "lm-data": 1,
            "lm-train": 50,
            "lm-eval": 2,
            "lm-analyze": 10,
            "lm-probe": 15,
            "lm-ranking": 1,
            "mt-data": 7,
            "mt-train": 65,
            "mt-eval": 6,
            "mt-analyze": 4,
            "report": 2,
        },
    ),
    "cpu": Scale(
        name="cpu",
        description="Zaremba 'small' LM on full PTB (13 epochs), the paper's IWSLT-size MT "
        "model with additive attention on Multi30k (the `multi30k` recipe, 16 epochs): the "
        "settings of the public benchmark commands, so their finished runs can be reused "
        "(--reuse); about 9 h per seed on 2 cores",
        lm_preset="small",
        # exactly `g2lstm lm train --preset small --no-progress` (test batch size 1 as well:
        # it sets the test perplexity the report shows)
        lm_overrides={"train.progress": False},
        lm_slice=None,
        # the paper's ranks 128 and 64 of H = 1150, scaled to H = 200 (as `compress sweep`)
        lm_compression=CompressionSettings(0.2, 0.4, (22, 11)),
        mt_dataset="multi30k",
        mt_preset="multi30k",
        # exactly `g2lstm mt train --preset multi30k --max-minutes 0` (no time cap, so the
        # result does not depend on the machine's load): the recipe of issue 16, measured at
        # 41.3 test2016 BLEU for LSTM and G2-LSTM, seed 1, where `iwslt` at 16 epochs gave
        # 38.2 / 35.3 (LSTM) and 38.1 / 21.6 (G2), seeds 1 / 2 (benchmarks/RESULTS.md)
        mt_overrides={"train": {"max_minutes": 0.0}},
        mt_slice=None,
        mt_bpe_merges=10000,  # as `g2lstm mt prepare --dataset multi30k`
        mt_compression=_MT_PAPER,
        seeds=3,
        analysis_batches=20,
        eval_tokens=20000,
        # measured on 2 shared cores (LM 55-80 min; MT `multi30k` 16 epochs 123-125 min on
        # one thread under load)
        estimates={
            "lm-data": 5,
            "lm-train": 4200,
            "lm-eval": 240,
            "lm-analyze": 120,
            # measured 2.5 min of CPU time on 1 thread (benchmarks/lm_probe_cost.py, AMD EPYC),
            # plus the gate fractions and perturbations
            "lm-probe": 180,
            "lm-ranking": 5,
            "mt-data": 90,
            "mt-train": 7500,
            "mt-eval": 420,
            "mt-analyze": 120,
            "report": 20,
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
            "lm-probe": 3600,
            "lm-ranking": 5,
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
