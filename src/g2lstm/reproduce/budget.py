"""Is a reduced training budget good enough? The ranking check of ``--ablation-epochs``.

A sweep at a reduced budget (fewer epochs of the same schedule) is only worth running if it
ranks models as the full budget does. The check compares, on runs trained at the full budget:

- the ranking of the cells by their **final test perplexity** (the full budget's result), with
- their ranking by the **best validation perplexity of the first E epochs** (read from each
  run's ``metrics.jsonl``): what a run stopped after E epochs of the same schedule keeps as its
  best checkpoint, since the first E epochs of a longer run are those of the shorter one;
  when the reduced runs themselves have finished, their own test perplexity
  (:func:`ranking_check`'s ``reduced``) replaces it.

It **passes** when, on every seed the cells share and for the seed means,

- the order of the cells is the same, and
- every gap between cells that are neighbours in the full order keeps at least
  ``min_gap`` (default :data:`MIN_GAP`, a half) of its full-budget size, measured on the
  split the reduced numbers come from (the logs: best validation perplexity of the first E
  epochs against the best of the whole run; the reduced runs: test against test).

The second rule refuses a budget at which a cell is still catching up: on PTB ``small``
the LSTM reaches its plateau by epoch 6 while G2-LSTM improves for seven more epochs, so
after 6 epochs the order is already the final one but G2's lead is a ninth of its final size
(``benchmarks/RESULTS.md``); a sweep of G2 variants at that budget would be judged before
most of what sets them apart. The result also gives Kendall's tau per seed and the smallest
budget whose check passes at that budget and every longer one (:func:`smallest_budget`).
With only the paper's three cells at hand (far apart at the full budget) a pass is
necessary, not sufficient: variants closer together may still swap places.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from g2lstm.errors import CheckpointError, DataError, G2LSTMError
from g2lstm.train import read_result
from g2lstm.train.metrics import read_metrics

__all__ = [
    "MIN_GAP",
    "RankingCheck",
    "RunRecord",
    "format_gaps",
    "kendall_tau",
    "outcome",
    "ranking_check",
    "records_from_runs",
]

#: The least share of each full-budget gap between neighbouring cells a reduced budget keeps.
MIN_GAP = 0.5


@dataclass(frozen=True)
class RunRecord:
    """One full-budget run: its cell, seed, final numbers and per-epoch validation curve.

    Attributes:
        valid_curve: best-so-far is not applied; ``valid_curve[e - 1]`` is the validation
            perplexity after epoch ``e`` of the main stage.
    """

    cell: str
    seed: int
    valid_ppl: float
    test_ppl: float
    valid_curve: tuple[float, ...]

    def at_budget(self, epochs: int) -> float:
        """The best validation perplexity of the first ``epochs`` epochs."""
        if len(self.valid_curve) < epochs:
            raise DataError(
                f"{self.cell} seed {self.seed}: the log has {len(self.valid_curve)} epochs, "
                f"fewer than the budget {epochs}"
            )
        return min(self.valid_curve[:epochs])


def records_from_runs(folders: Iterable[Path]) -> list[RunRecord]:
    """The :class:`RunRecord` of every finished LM run folder (``results.json``,
    :func:`~g2lstm.train.read_result`, with its ``cell``/``seed``/``valid_ppl``/``test_ppl``,
    and ``metrics.jsonl``); others are skipped."""
    out = []
    for folder in folders:
        try:
            stored = read_result(folder)
            rows = read_metrics(Path(folder) / "metrics.jsonl")
        except (OSError, ValueError, DataError, CheckpointError):
            continue
        if stored is None:
            continue
        result = stored.flat()
        curve = [
            float(r["valid_ppl"])  # type: ignore[arg-type]
            for r in rows
            if r.get("valid_ppl") is not None and r.get("stage", "main") == "main"
        ]
        if result.get("test_ppl") is None or not curve:
            continue
        out.append(
            RunRecord(
                str(result["cell"]),
                int(result["seed"]),
                float(result["valid_ppl"]),
                float(result["test_ppl"]),
                tuple(curve),
            )
        )
    return out


def kendall_tau(a: Sequence[str], b: Sequence[str]) -> float:
    """Kendall's tau between two orders of the same items (1: same order, -1: reversed)."""
    pos = {x: i for i, x in enumerate(b)}
    n = len(a)
    if n < 2:
        return 1.0
    score = 0
    for i in range(n):
        for j in range(i + 1, n):
            score += 1 if pos[a[i]] < pos[a[j]] else -1
    return score / (n * (n - 1) / 2)


@dataclass
class RankingCheck:
    """The outcome of :func:`ranking_check`.

    Attributes:
        epochs: the reduced budget.
        source: ``"logs"`` (best valid of the first epochs) or ``"runs"`` (reduced runs' test).
        rows: per seed (and ``"mean"``): the full and reduced orders, Kendall's tau, the gaps
            between neighbouring cells (``gaps``: pair, full and reduced size, share kept),
            ``order`` (the orders match) and ``match`` (orders match and every gap is kept).
        passed: every row matches.
        reason: why the check could not be made (then ``passed`` is False).
        min_gap: the least share of a gap that must be kept.
    """

    epochs: int
    source: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    passed: bool = False
    reason: str = ""
    min_gap: float = MIN_GAP

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "source": self.source,
            "rows": self.rows,
            "passed": self.passed,
            "reason": self.reason,
            "min_gap": self.min_gap,
        }

    def summary(self) -> str:
        """One line per row: ``seed 1: g2 < lstm < sharpened (full) vs ... -> match``."""
        if self.reason:
            return f"ranking check at {self.epochs} epochs: {self.reason}"
        lines = [f"ranking check at {self.epochs} epochs ({self.source}):"]
        for r in self.rows:
            lines.append(
                f"  {r['seed']}: full {' < '.join(r['full'])}; reduced "
                f"{' < '.join(r['reduced'])}; tau {r['tau']:+.2f}; gaps kept "
                f"{format_gaps(r['gaps'])} (>= {self.min_gap:g}) -> {outcome(r)}"
            )
        return "\n".join(lines)


def _order(values: Mapping[str, float]) -> list[str]:
    return sorted(values, key=lambda c: (values[c], c))


def ranking_check(
    records: Sequence[RunRecord],
    epochs: int,
    reduced: Mapping[str, Mapping[int, float]] | None = None,
    *,
    min_gap: float = MIN_GAP,
) -> RankingCheck:
    """Compare the ranking of the cells at ``epochs`` with the full budget's (module doc).

    Args:
        records: full-budget runs (at least two cells on a common seed).
        epochs: the reduced budget.
        reduced: ``cell -> seed -> test perplexity`` of runs trained at the reduced budget
            (None: read the budget off the full runs' logs).
        min_gap: the least share of each gap between neighbouring cells to keep (0: the
            order alone).
    """
    check = RankingCheck(epochs, "logs" if reduced is None else "runs", min_gap=min_gap)
    full: dict[str, dict[int, float]] = {}
    cut: dict[str, dict[int, float]] = {}
    same_split: dict[str, dict[int, float]] = {}  # the full budget on the reduced's split
    try:
        for r in records:
            full.setdefault(r.cell, {})[r.seed] = r.test_ppl
            if reduced is None:
                cut.setdefault(r.cell, {})[r.seed] = r.at_budget(epochs)
                same_split.setdefault(r.cell, {})[r.seed] = r.at_budget(len(r.valid_curve))
    except DataError as exc:
        check.reason = str(exc)
        return check
    if reduced is not None:
        cut = {c: dict(v) for c, v in reduced.items()}
        same_split = full
    cells = sorted(set(full) & set(cut))
    seeds = sorted(set.intersection(*(set(full[c]) & set(cut[c]) for c in cells)) if cells else [])
    if len(cells) < 2 or not seeds:
        check.reason = (
            f"needs at least two cells with a common seed at both budgets (have cells "
            f"{', '.join(cells) or 'none'})"
        )
        return check

    def at(values: Mapping[str, Mapping[int, float]], seed: int | None) -> dict[str, float]:
        if seed is None:
            return {c: statistics.fmean(values[c][s] for s in seeds) for c in cells}
        return {c: values[c][seed] for c in cells}

    for seed in [*seeds, None]:
        name = "mean" if seed is None else f"seed {seed}"
        check.rows.append(_row(name, at(full, seed), at(cut, seed), at(same_split, seed), min_gap))
    check.passed = all(r["match"] for r in check.rows)
    return check


def _row(
    name: str,
    full: Mapping[str, float],
    cut: Mapping[str, float],
    same_split: Mapping[str, float],
    min_gap: float,
) -> dict[str, Any]:
    """One row: the orders of ``full`` and ``cut``, and the gaps between the cells that are
    neighbours in the full order, sized in ``same_split`` (the full budget on ``cut``'s
    split) and in ``cut``."""
    a, b = _order(full), _order(cut)
    gaps = []
    for lo, hi in itertools.pairwise(a):
        size, now = same_split[hi] - same_split[lo], cut[hi] - cut[lo]
        kept = now / size if size > 0 else None  # no gap at the full budget: nothing to keep
        gaps.append({"pair": [lo, hi], "full": size, "reduced": now, "kept": kept})
    gaps_ok = all(g["kept"] is None or g["kept"] >= min_gap for g in gaps)
    return {
        "seed": name,
        "full": a,
        "reduced": b,
        "full_values": dict(full),
        "reduced_values": dict(cut),
        "tau": kendall_tau(a, b),
        "gaps": gaps,
        "order": a == b,
        "match": a == b and gaps_ok,
    }


def outcome(row: Mapping[str, Any]) -> str:
    """``match``, ``ORDER DIFFERS`` or ``GAP LOST`` (the order holds, a gap shrank too much)."""
    if row["match"]:
        return "match"
    return "GAP LOST" if row.get("order", False) else "ORDER DIFFERS"


def format_gaps(gaps: Sequence[Mapping[str, Any]]) -> str:
    """``"0.12 (lstm-g2), 1.45 (sharpened-lstm)"``: the share of each gap kept."""
    return ", ".join(
        f"{'-' if g['kept'] is None else format(g['kept'], '.2f')} ({g['pair'][1]}-{g['pair'][0]})"
        for g in gaps
    )


def smallest_budget(records: Sequence[RunRecord], max_epochs: int) -> int | None:
    """The smallest budget whose check passes at it and at every budget up to ``max_epochs``
    (None: not even the last one)."""
    best = None
    for e in range(max_epochs, 0, -1):
        if not ranking_check(records, e).passed:
            break
        best = e
    return best


def require_ranking(records: Sequence[RunRecord], epochs: int, max_epochs: int) -> RankingCheck:
    """:func:`ranking_check` that raises :class:`G2LSTMError` (with the orders and the
    smallest budget that passes) unless it passes."""
    check = ranking_check(records, epochs)
    if check.passed:
        return check
    smallest = smallest_budget(records, max_epochs) if not check.reason else None
    hint = (
        f"the smallest budget that passes is {smallest} epochs"
        if smallest is not None
        else "no reduced budget passes; use the full budget (leave out --ablation-epochs)"
    )
    raise G2LSTMError(
        f"--ablation-epochs {epochs} is not justified: {check.summary()}\n{hint}"
        if not check.reason
        else f"--ablation-epochs {epochs} cannot be checked: {check.reason}; train the "
        "plan's full-budget runs first (or --reuse finished ones)"
    )
