"""The report's gate sections: near-0/1 gate fractions beside the paper's Figs. 1/3 (gate
polarisation) and validation perplexity with soft and hard (step function) gates.

Each function writes the body of one section of ``report.md`` into a
:class:`~g2lstm.reproduce.document.Document`; ``figures`` maps figure keys (see
:func:`g2lstm.reproduce.report.write_report`) to the PNG files shown when present.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from g2lstm.reproduce import paper
from g2lstm.reproduce.document import Document
from g2lstm.reproduce.report_tables import fmt_stats

__all__ = ["hard_gate_section", "polarisation_section"]


def polarisation_section(
    doc: Document, numbers: Mapping[str, Any], figures: Mapping[str, Path]
) -> None:
    """Near-0/1 input and forget gate fractions (LM layer 1, MT decoder layer 1) beside the
    paper's, then the polarisation, histogram and heatmap figures."""
    rows = []
    lm, mt = numbers.get("lm", {}), numbers.get("mt", {})
    for cell in paper.CELLS:
        ref = paper.FIG_NEAR_BINARY.get(cell, {})
        cells = [paper.CELL_LABELS[cell]]
        for part in (lm, mt):
            nb = part.get(cell, {}).get("near_binary", {})
            cells += [fmt_stats(nb.get("input"), 1, 100.0), fmt_stats(nb.get("forget"), 1, 100.0)]
        cells += [
            f"{100 * ref['input']:.1f}" if ref else "–",
            f"{100 * ref['forget']:.1f}" if ref else "–",
        ]
        rows.append(tuple(cells))
    doc.table(
        (
            "Model",
            "PTB LM layer 1: input %",
            "PTB LM layer 1: forget %",
            "MT decoder layer 1: input %",
            "MT decoder layer 1: forget %",
            "Paper input %",
            "Paper forget %",
        ),
        rows,
    )
    doc.p(
        "Percentage of gate values below 0.1 or at least 0.9 on validation data (mean ± std "
        "over seeds). Paper: IWSLT'14 De→En, first decoder layer, 10,000 training pairs "
        "(Figs. 1/3; no Sharpened Sigmoid histogram is shown there)."
    )
    for key, caption in (
        ("near_binary", "Near-0/1 gate fractions: ours (solid) beside the paper's (hatched)."),
        ("lm_gate_histograms", "PTB LM: gate value histograms per layer (first seed)."),
        ("mt_gate_histograms", "Translation: gate value histograms per layer (first seed)."),
        ("lm_heatmap_0", "PTB LM: average gate value per word on a paper Fig. 4 sentence."),
    ):
        if key in figures:
            doc.img(figures[key], caption)


def hard_gate_section(
    doc: Document, numbers: Mapping[str, Any], figures: Mapping[str, Path]
) -> None:
    """Validation perplexity with soft and with hard input/forget gates, LM and MT."""
    rows = []
    for cell in paper.CELLS:
        cells = [paper.CELL_LABELS[cell]]
        for part in ("lm", "mt"):
            h = numbers.get(part, {}).get(cell, {}).get("hard", {})
            soft, hard = h.get("soft") or [], h.get("hard") or []
            rel = [
                100 * (b - a) / a
                for a, b in zip(soft, hard)
                if a is not None and b is not None and a > 0
            ]
            cells += [fmt_stats(soft), fmt_stats(hard), fmt_stats(rel, 1)]
        rows.append(tuple(cells))
    doc.table(
        (
            "Model",
            "LM valid ppl (soft)",
            "LM ppl (hard i/f)",
            "LM change %",
            "MT valid ppl (soft)",
            "MT ppl (hard i/f)",
            "MT change %",
        ),
        rows,
    )
    doc.p(
        "Input and forget gates replaced by the step 1[a ≥ 0] at test time (an extension: "
        "the paper does not test it, digest §6 claim 10). Near-binary gates should make this "
        "cheap."
    )
    if "lm_hard_gates" in figures:
        doc.img(figures["lm_hard_gates"], "PTB LM: perplexity with soft and hard gates.")
