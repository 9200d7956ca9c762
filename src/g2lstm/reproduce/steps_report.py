"""The plan's last step: collect the markers of every other step and write the report.

:func:`report_step` gathers the numbers (:func:`g2lstm.reproduce.collect.collect`, plus the
ablations and the cost per experiment), describes the scale and hands both to
:func:`g2lstm.reproduce.report.write_report`; like the other steps it returns the JSON-ready
numbers of its ``DONE.json``.
"""

from __future__ import annotations

from typing import Any

import torch

from g2lstm.nn.fast.autotune import cpu_model
from g2lstm.reproduce.ablation_collect import collect_ablations
from g2lstm.reproduce.collect import collect
from g2lstm.reproduce.context import RunContext
from g2lstm.reproduce.cost import experiment_costs
from g2lstm.reproduce.plan import Step, read_markers
from g2lstm.reproduce.report import all_claims, write_report
from g2lstm.reproduce.steps_mt import overrides_text

__all__ = ["report_step"]


def report_step(step: Step, ctx: RunContext, status: str | None = None) -> dict[str, Any]:
    """The plan's last step: collect the markers of every other step and write the report;
    ``status``: a line shown under the report's title (``--report-only``'s partial note)."""
    sc = ctx.scale
    markers = read_markers(step.deps)
    numbers = collect(markers)
    numbers["ablations"] = collect_ablations(markers)
    numbers["cost"] = experiment_costs(markers)
    settings = {
        "lm": f"preset {sc.lm_preset} with {dict(sc.lm_overrides)}; PTB "
        + (f"slice {sc.lm_slice} lines" if sc.lm_slice else "(full)")
        + (f", its {sc.lm_vocab} most frequent words" if sc.lm_vocab else ""),
        "mt": f"preset {sc.mt_preset} with {overrides_text(sc.mt_overrides)}; {sc.mt_dataset} "
        + (f"slice {sc.mt_slice} pairs" if sc.mt_slice else "(full)")
        + f", {sc.mt_bpe_merges} joint BPE merges",
    }
    info = {
        "scale": sc.name,
        "description": sc.description,
        **{  # a part with no finished step (`--only`) is named as not run
            part.upper(): text if numbers[part] or numbers["curves"][part] else "not run"
            for part, text in settings.items()
        },
        "mt_dataset": sc.mt_dataset,
        "output": str(ctx.out_dir),
        # float results differ in their last bits between CPU generations
        "trained on": "; ".join(f"{cpu}: {n} run(s)" for cpu, n in numbers["machines"].items())
        or "no training run",
        "report written on": f"{cpu_model()}, torch {torch.__version__}",
    }
    paths = write_report(numbers, step.out_dir, info=info, status=status)
    return {
        "report_md": str(paths["md"]),
        "report_html": str(paths["html"]),
        "verdicts": {v.claim: v.status for v in all_claims(numbers)},
    }
