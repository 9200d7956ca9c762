"""``report.md`` + ``report.html``: our tables in the paper's layout, figures and verdicts.

:func:`write_report` needs only the ``numbers`` of :func:`g2lstm.reproduce.collect.collect`
(plain JSON, so it can be tested on hand-made numbers); :func:`report_step` is the plan's last
step. The report folder holds ``report.md`` (figures linked from ``figures/``),
``report.html`` (figures embedded, no other file needed), ``numbers.json`` and
``verdicts.json``.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from g2lstm.reproduce import paper
from g2lstm.reproduce.ablation_collect import collect_ablations
from g2lstm.reproduce.ablation_report import write_ablations
from g2lstm.reproduce.ablation_verdicts import EQUIVALENCE_RULE, ablation_claims
from g2lstm.reproduce.document import Document
from g2lstm.reproduce.figures import (
    COLUMNS,
    plot_compression,
    plot_learning_curves,
    plot_near_binary,
)
from g2lstm.reproduce.verdicts import RULE, Stats, Verdict, evaluate_claims

__all__ = ["SECTIONS", "all_claims", "report_step", "write_report"]

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
    "Setup",
)


def all_claims(numbers: Mapping[str, Any]) -> list[Verdict]:
    """The verdicts of the paper's study and of the ablations (claims 3, 7, 8, 9)."""
    return [*evaluate_claims(numbers), *ablation_claims(numbers)]


def _fmt(values: Sequence[float] | None, digits: int = 2, scale: float = 1.0) -> str:
    return Stats.of(values or []).format(digits, scale)


def _delta(orig: Sequence[float] | None, comp: Sequence[float] | None) -> list[float]:
    if not orig or not comp or len(orig) != len(comp):
        return []
    return [c - o for o, c in zip(orig, comp) if o is not None and c is not None]


def _with_delta(orig: Sequence[float] | None, comp: Sequence[float] | None) -> str:
    d = Stats.of(_delta(orig, comp))
    return f"{_fmt(comp)} ({d.mean:+.2f})" if d.n else _fmt(comp)


def _paper_delta(row: Mapping[str, float], col: str) -> str:
    if col == "original":
        return f"{row['original']:.2f}"
    return f"{row[col]:.2f} ({row[col] - row['original']:+.2f})"


def _cells(part: Mapping[str, Any]) -> list[str]:
    return [c for c in paper.CELLS if c in part]


def _verdict_section(doc: Document, verdicts: Sequence[Any]) -> None:
    doc.h(1, SECTIONS[0])
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


def _table1(doc: Document, lm: Mapping[str, Any]) -> None:
    doc.h(1, SECTIONS[1])
    rows = []
    for cell in _cells(lm):
        c = lm[cell]
        n = c.get("num_parameters")
        size = f"{n / 1e6:.2f}M" if isinstance(n, (int, float)) else "–"
        rows.append(
            (
                f"{paper.CELL_LABELS[cell]} (ours)",
                size,
                _fmt(c.get("valid_ppl")),
                _fmt(c.get("test_ppl")),
                str(len(c.get("test_ppl") or [])),
            )
        )
    for cell in paper.CELLS:
        t = paper.TABLE1_PTB[cell]
        rows.append(
            (
                f"{paper.CELL_LABELS[cell]} (paper, finetuned)",
                "24M",
                f"{t['finetune'][0]:.1f}",
                f"{t['finetune'][1]:.1f}",
                "1",
            )
        )
        rows.append(
            (
                f"{paper.CELL_LABELS[cell]} (paper, + cache pointer)",
                "24M",
                f"{t['cache'][0]:.1f}",
                f"{t['cache'][1]:.1f}",
                "1",
            )
        )
    doc.table(("Model", "Size", "Valid", "Test", "Seeds"), rows)
    doc.p(
        "Ours: best-validation weights, no cache pointer, mean ± std over seeds. The paper's "
        "numbers are single runs of AWD-LSTM (Table 1); compare differences between models, "
        "not absolute values, at reduced scales."
    )


def _table2(doc: Document, mt: Mapping[str, Any], dataset: str) -> None:
    doc.h(1, SECTIONS[2])
    rows = []
    for cell in paper.CELLS:
        c = mt.get(cell, {})
        t = paper.TABLE2_BLEU[cell]
        rows.append(
            (
                paper.CELL_LABELS[cell],
                _fmt(c.get("tok_bleu")),
                _fmt(c.get("detok_bleu")),
                f"{t['iwslt14_de_en']:.2f}",
                f"{t['wmt14_en_de']:.2f}",
            )
        )
    doc.table(
        (
            "Model",
            f"Ours: tokenised BLEU ({dataset} De→En test)",
            "Ours: sacreBLEU (detokenised)",
            "Paper: IWSLT'14 De→En",
            "Paper: WMT'14 En→De",
        ),
        rows,
    )
    doc.p(
        "Tokenised BLEU is multi-bleu.perl style on lowercased text (the paper's De→En "
        "metric); sacreBLEU is the shareable detokenised score. Beam search as in the preset."
    )


def _compression_table(
    doc: Document,
    part: Mapping[str, Any],
    metric: str,
    paper_rows: Mapping[str, Mapping[str, float]],
    paper_name: str,
    settings: Mapping[str, Any] | None,
) -> None:
    header = ["Model", *COLUMNS.values()]
    rows = []
    for cell in paper.CELLS:
        c = part.get(cell, {})
        orig, comp = c.get(metric), c.get("compression") or {}
        rows.append(
            (
                f"{paper.CELL_LABELS[cell]} (ours)",
                _fmt(orig),
                *(_with_delta(orig, comp.get(k)) for k in list(COLUMNS)[1:]),
            )
        )
        rows.append(
            (
                f"{paper.CELL_LABELS[cell]} ({paper_name})",
                *(_paper_delta(paper_rows[cell], k) for k in COLUMNS),
            )
        )
    doc.table(header, rows)
    if settings:
        desc = "; ".join(
            f"{k}: " + ", ".join(f"{pk}={pv}" for pk, pv in v.items()) for k, v in settings.items()
        )
        doc.p(
            f"Our settings (input and forget gate blocks of every LSTM matrix, no "
            f"retraining): {desc}. Change from the original in parentheses (mean over seeds)."
        )


def _polarisation(doc: Document, numbers: Mapping[str, Any], figures: Mapping[str, Path]) -> None:
    doc.h(1, SECTIONS[5])
    rows = []
    lm, mt = numbers.get("lm", {}), numbers.get("mt", {})
    for cell in paper.CELLS:
        ref = paper.FIG_NEAR_BINARY.get(cell, {})
        cells = [paper.CELL_LABELS[cell]]
        for part in (lm, mt):
            nb = part.get(cell, {}).get("near_binary", {})
            cells += [_fmt(nb.get("input"), 1, 100.0), _fmt(nb.get("forget"), 1, 100.0)]
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


def _hard_gates(doc: Document, numbers: Mapping[str, Any], figures: Mapping[str, Path]) -> None:
    doc.h(1, SECTIONS[6])
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
            cells += [_fmt(soft), _fmt(hard), _fmt(rel, 1)]
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
        title: {c: part[c]["near_binary"] for c in _cells(part) if part[c].get("near_binary")}
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
                    k: [sign * d for d in _delta(part[c].get(metric), v)]
                    for k, v in (part[c].get("compression") or {}).items()
                },
            }
            for c in _cells(part)
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
    numbers: Mapping[str, Any], out_dir: str | Path, *, info: Mapping[str, str] | None = None
) -> dict[str, Path]:
    """Write ``report.md``, ``report.html``, ``numbers.json``, ``verdicts.json`` and
    ``figures/`` into ``out_dir``; return their paths."""
    from g2lstm.train import atomic_write_json, atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = dict(info or {})
    figs = _gather_figures(numbers, out / "figures")
    verdicts = all_claims(numbers)
    lm, mt = numbers.get("lm", {}), numbers.get("mt", {})
    seeds = numbers.get("seeds") or []
    doc = Document("G2-LSTM: reproduction report")
    doc.p(
        f"Scale **{info.get('scale', '?')}**, {len(seeds)} seed(s) per model "
        f"({', '.join(map(str, seeds)) or 'none'}); compute time "
        f"{numbers.get('info', {}).get('seconds', 0.0) / 60:.1f} min. "
        f"{info.get('description', '')}"
    )
    reused = numbers.get("reused") or []
    if reused:
        doc.p(
            f"**{len(reused)} training run(s) were reused**, not trained by this "
            "reproduction: finished runs whose resolved configuration and data equal the "
            "step's (`--reuse`); they are listed under Setup, and the compute time does not "
            "include them."
        )
    _verdict_section(doc, verdicts)
    _table1(doc, lm)
    _table2(doc, mt, info.get("mt_dataset", "Multi30k"))
    doc.h(1, SECTIONS[3])
    lm_settings = numbers.get("info", {}).get("lm", {}).get("compression")
    _compression_table(
        doc,
        lm,
        "test_ppl",
        paper.TABLE3_PTB_COMPRESSION,
        "paper, with cache, ranks 128/64",
        lm_settings,
    )
    doc.h(1, SECTIONS[4])
    mt_settings = numbers.get("info", {}).get("mt", {}).get("compression")
    _compression_table(
        doc,
        mt,
        "tok_bleu",
        paper.TABLE4_IWSLT_COMPRESSION,
        "paper Table 4, IWSLT'14, ranks 32/16",
        mt_settings,
    )
    doc.p(
        "Paper Table 5 (WMT'14 En→De, same settings): "
        + "; ".join(
            f"{paper.CELL_LABELS[c]} "
            + ", ".join(_paper_delta(paper.TABLE5_WMT_COMPRESSION[c], k) for k in COLUMNS)
            for c in paper.CELLS
        )
        + ". Changes are recomputed from the paper's values; the paper "
        "prints -0.53 for Table 4's Sharpened Sigmoid SVD (rank 32) and -0.51 for Table 5's "
        "G2-LSTM SVD (rank 16)."
    )
    doc.img(
        figs["compression"], "Change of the metric under each compression (mean ± std over seeds)."
    )
    _polarisation(doc, numbers, figs)
    _hard_gates(doc, numbers, figs)
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
    paths = {
        "md": atomic_write_text(out / "report.md", doc.markdown(out)),
        "html": atomic_write_text(out / "report.html", doc.html()),
        "numbers": atomic_write_json(out / "numbers.json", _jsonable(numbers)),
        "verdicts": atomic_write_json(out / "verdicts.json", [v.to_dict() for v in verdicts]),
    }
    return {k: Path(v) for k, v in paths.items()} | {f"fig:{k}": v for k, v in figs.items()}


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


def report_step(step: Any, ctx: Any) -> dict[str, Any]:
    """The plan's last step: collect the markers of every other step and write the report."""
    from g2lstm.reproduce.collect import collect
    from g2lstm.reproduce.steps_mt import overrides_text

    sc = ctx.scale
    numbers = collect(step.deps)
    numbers["ablations"] = collect_ablations(step.deps)
    info = {
        "scale": sc.name,
        "description": sc.description,
        "LM": f"preset {sc.lm_preset} with {dict(sc.lm_overrides)}; PTB "
        + (f"slice {sc.lm_slice} lines" if sc.lm_slice else "(full)")
        + (f", its {sc.lm_vocab} most frequent words" if sc.lm_vocab else ""),
        "MT": f"preset {sc.mt_preset} with {overrides_text(sc.mt_overrides)}; {sc.mt_dataset} "
        + (f"slice {sc.mt_slice} pairs" if sc.mt_slice else "(full)")
        + f", {sc.mt_bpe_merges} joint BPE merges",
        "mt_dataset": sc.mt_dataset,
        "output": str(ctx.out_dir),
    }
    paths = write_report(numbers, step.out_dir, info=info)
    return {
        "report_md": str(paths["md"]),
        "report_html": str(paths["html"]),
        "verdicts": {v.claim: v.status for v in all_claims(numbers)},
    }
