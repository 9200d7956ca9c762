"""``report.md`` + ``report.html``: our tables in the paper's layout, figures and verdicts.

:func:`write_report` needs only the ``numbers`` of :func:`g2lstm.reproduce.collect.collect`
(plain JSON, so it can be tested on hand-made numbers) and lays out the sections
(:data:`SECTIONS`): the paper's tables come from :mod:`~g2lstm.reproduce.report_tables`, the
gate sections from :mod:`~g2lstm.reproduce.report_gates`, the ablation part from
:mod:`~g2lstm.reproduce.ablation_report`; the plan's step that calls it is
:func:`g2lstm.reproduce.steps_report.report_step`. The report folder holds ``report.md``
(figures linked from ``figures/``), ``report.html`` (figures embedded, no other file needed),
``numbers.json`` and ``verdicts.json``.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from g2lstm.reproduce.ablation_report import write_ablations
from g2lstm.reproduce.ablation_verdicts import EQUIVALENCE_RULE, ablation_claims
from g2lstm.reproduce.cost import cost_section
from g2lstm.reproduce.document import Document
from g2lstm.reproduce.figures import plot_compression, plot_learning_curves, plot_near_binary
from g2lstm.reproduce.report_gates import hard_gate_section, polarisation_section
from g2lstm.reproduce.report_tables import (
    cells_in,
    mt_compression_tables,
    paired_deltas,
    ptb_compression_table,
    table1,
    table2,
)
from g2lstm.reproduce.verdicts import RULE, Verdict, evaluate_claims
from g2lstm.train import atomic_write_json, atomic_write_text

__all__ = ["SECTIONS", "all_claims", "verdict_section", "write_report"]

#: Section titles, in order (tests check that every one is present).
SECTIONS = (
    "Verdicts",
    "Table 1: PTB language modelling (perplexity)",
    "Table 2: translation (BLEU)",
    "Table 3: compression on PTB (test perplexity)",
    "Tables 4/5: compression on translation (BLEU)",
    "Gate polarisation (Figs. 1/3)",
    "Hard-gate inference",
    "Learning curves",
    "How the verdicts are computed",
    "Compute per experiment",
    "Setup",
)


def all_claims(numbers: Mapping[str, Any]) -> list[Verdict]:
    """The verdicts of the paper's study and of the ablations (claims 3, 7, 8, 9)."""
    return [*evaluate_claims(numbers), *ablation_claims(numbers)]


def verdict_section(doc: Document, verdicts: Sequence[Any]) -> None:
    """The verdict table and, below it, every comparison behind each verdict."""
    doc.table(
        ("Claim", "Paper", "Verdict"), [(v.claim, v.source, f"[[{v.status}]]") for v in verdicts]
    )
    items = []
    for v in verdicts:
        for c in v.comparisons:
            better = "higher" if c.higher_is_better else "lower"
            items.append(
                f"{c.label}: {c.a.format(3)} vs {c.b.format(3)} (n = {c.a.n} / "
                f"{c.b.n}; {better} is better) → [[{c.status}]]"
            )
    doc.p("The comparisons behind each verdict (A vs B, mean ± std over seeds):")
    doc.ul(items)


def _gather_figures(numbers: Mapping[str, Any], fig_dir: Path) -> dict[str, Path]:
    """Draw our figures and copy the analysis figures of the first seed into ``fig_dir``."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    figs: dict[str, Path] = {}
    lm, mt = numbers.get("lm", {}), numbers.get("mt", {})
    for part, src in (numbers.get("figures") or {}).items():
        for name, path in (src or {}).items():
            p = Path(path)
            if p.is_file() and p.suffix == ".png":
                dst = fig_dir / f"{part}_{name}.png"
                shutil.copyfile(p, dst)
                figs[f"{part}_{name}"] = dst
    titled = (("PTB LM, layer 1", lm), ("MT, decoder layer 1", mt))
    fractions = {
        title: {c: part[c]["near_binary"] for c in cells_in(part) if part[c].get("near_binary")}
        for title, part in titled
    }
    figs["near_binary"] = plot_near_binary(fractions, fig_dir / "near_binary.png")
    curves = numbers.get("curves") or {}
    figs["learning_curves"] = plot_learning_curves(
        {"PTB language model": curves.get("lm", {}), "Translation": curves.get("mt", {})},
        fig_dir / "learning_curves.png",
    )
    tables = {}
    for title, part, metric, sign in (
        ("PTB: test perplexity change", lm, "test_ppl", 1.0),
        ("MT: test BLEU change", mt, "tok_bleu", 1.0),
    ):
        tables[title] = {
            c: {
                "original": [0.0] * len(part[c].get(metric) or []),
                **{
                    k: [sign * d for d in paired_deltas(part[c].get(metric), v)]
                    for k, v in (part[c].get("compression") or {}).items()
                },
            }
            for c in cells_in(part)
            if part[c].get(metric)
        }
    figs["compression"] = plot_compression(
        tables,
        fig_dir / "compression.png",
        ylabels={
            "PTB: test perplexity change": "Δ perplexity (lower is better)",
            "MT: test BLEU change": "Δ BLEU (higher is better)",
        },
    )
    return figs


def write_report(
    numbers: Mapping[str, Any],
    out_dir: str | Path,
    *,
    info: Mapping[str, str] | None = None,
    status: str | None = None,
) -> dict[str, Path]:
    """Write ``report.md``, ``report.html``, ``numbers.json``, ``verdicts.json`` and
    ``figures/`` into ``out_dir``; return their paths. ``status``: a paragraph under the
    title (the partial note of ``reproduce --report-only``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = dict(info or {})
    figs = _gather_figures(numbers, out / "figures")
    verdicts = all_claims(numbers)
    seeds = numbers.get("seeds") or []
    doc = Document("G2-LSTM: reproduction report")
    doc.p(
        f"Scale **{info.get('scale', '?')}**, {len(seeds)} seed(s) per model "
        f"({', '.join(map(str, seeds)) or 'none'}); compute time "
        f"{numbers.get('info', {}).get('seconds', 0.0) / 60:.1f} min. "
        f"{info.get('description', '')}"
    )
    if status:
        doc.p(status)
    reused = numbers.get("reused") or []
    if reused:
        doc.p(
            f"**{len(reused)} training run(s) were reused**, not trained by this "
            "reproduction: finished runs whose resolved configuration and data equal the "
            "step's (`--reuse`); they are listed under Setup, and the compute time does not "
            "include them (the cost per experiment does)."
        )
    doc.h(1, SECTIONS[0])
    verdict_section(doc, verdicts)
    doc.h(1, SECTIONS[1])
    table1(doc, numbers.get("lm", {}))
    doc.h(1, SECTIONS[2])
    table2(doc, numbers.get("mt", {}), info.get("mt_dataset", "Multi30k"))
    doc.h(1, SECTIONS[3])
    ptb_compression_table(doc, numbers)
    doc.h(1, SECTIONS[4])
    mt_compression_tables(doc, numbers, figs["compression"])
    doc.h(1, SECTIONS[5])
    polarisation_section(doc, numbers, figs)
    doc.h(1, SECTIONS[6])
    hard_gate_section(doc, numbers, figs)
    doc.h(1, SECTIONS[7])
    doc.img(
        figs["learning_curves"],
        "Training (faint) and validation (dots) perplexity; one line per seed.",
    )
    figs.update(write_ablations(doc, numbers, out / "figures"))
    doc.h(1, SECTIONS[8])
    doc.p(RULE)
    doc.p(EQUIVALENCE_RULE)
    doc.h(1, SECTIONS[9])
    cost_section(doc, numbers.get("cost") or [])
    doc.h(1, SECTIONS[10])
    _setup_section(doc, numbers, info)
    paths = {
        "md": atomic_write_text(out / "report.md", doc.markdown(out)),
        "html": atomic_write_text(out / "report.html", doc.html()),
        "numbers": atomic_write_json(out / "numbers.json", _jsonable(numbers)),
        "verdicts": atomic_write_json(out / "verdicts.json", [v.to_dict() for v in verdicts]),
    }
    return {k: Path(v) for k, v in paths.items()} | {f"fig:{k}": v for k, v in figs.items()}


def _setup_section(doc: Document, numbers: Mapping[str, Any], info: Mapping[str, str]) -> None:
    """The scale's details, the reused training runs and the caveats."""
    reused = numbers.get("reused") or []
    doc.ul([f"{k}: {v}" for k, v in info.items()] or ["(no details recorded)"])
    if reused:
        doc.p(
            "Reused training runs (step: run folder, hash of the compared configuration "
            "and data; also recorded in each step's `DONE.json`):"
        )
        doc.ul(
            [
                f"`{r.get('step')}`: `{r.get('path')}` (config {r.get('config_hash')})"
                for r in reused
            ]
        )
    cache = (
        "our cache-pointer numbers are in the ablation part (Table 3 with the cache pointer), "
        "the tables above have none"
        if (numbers.get("ablations") or {}).get("runs")
        else "our PTB numbers have no continuous cache pointer (the paper's Table 3 has it; "
        "`--ablations` measures it)"
    )
    doc.p(
        f"Caveats: {cache}; compression touches the input- and forget-gate rows of every "
        "LSTM weight matrix (input and recurrent) with no fine-tuning; the paper's numbers "
        "are single runs."
    )


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x
