"""Per-token gate heatmaps (paper Fig. 4).

Each cell is the gate value at one token's step averaged over the hidden units of one layer;
rows are ``model x gate`` (the paper: G2-input, G2-forget, LSTM-input, LSTM-forget), columns are
the sentence's tokens, colours run from 0 (black) to 1 (white) on matplotlib's ``afmhot``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from g2lstm.analysis.plots import DPI, new_figure, save_figure, write_csv, write_json
from g2lstm.analysis.tokens import position_means
from g2lstm.errors import ConfigError, ShapeError
from g2lstm.nn.recording import GateTrace

__all__ = ["GateHeatmap", "heatmap_figsize", "heatmap_from_traces", "plot_heatmap"]


@dataclass
class GateHeatmap:
    """The numbers of one heatmap.

    Attributes:
        tokens: the ``T`` column labels.
        rows: the ``R`` row labels (e.g. ``"G2-LSTM input"``).
        values: ``(R, T)`` mean gate values in ``[0, 1]`` (NaN allowed for missing cells).
        title: figure title.
    """

    tokens: list[str]
    rows: list[str]
    values: np.ndarray
    title: str = "Average gate value per token"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tokens = [str(t) for t in self.tokens]
        self.rows = [str(r) for r in self.rows]
        self.values = np.asarray(self.values, dtype=np.float64)
        want = (len(self.rows), len(self.tokens))
        if self.values.shape != want:
            raise ShapeError(
                f"GateHeatmap: values has shape {self.values.shape}, expected (rows, tokens) = "
                f"{want}"
            )
        finite = self.values[np.isfinite(self.values)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise ConfigError("GateHeatmap: values must lie in [0, 1] (mean gate values)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "title": self.title,
            "tokens": self.tokens,
            "rows": self.rows,
            "values": self.values.tolist(),
            **({"meta": self.meta} if self.meta else {}),
        }

    def to_rows(self) -> list[dict[str, Any]]:
        """Long-format records ``{"row", "position", "token", "value"}`` (the CSV)."""
        return [
            {"row": r, "position": t, "token": tok, "value": float(self.values[i, t])}
            for i, r in enumerate(self.rows)
            for t, tok in enumerate(self.tokens)
        ]


def heatmap_from_traces(
    traces: Mapping[str, GateTrace],
    tokens: Sequence[str],
    gates: Sequence[str] = ("input", "forget"),
    *,
    batch_index: int = 0,
    title: str = "Average gate value per token",
) -> GateHeatmap:
    """Rows ``"<model> <gate>"`` (model-major) from one trace per model.

    Args:
        traces: ``{model label: trace}`` of the same sentence, gates ``(T, N, H)``.
        tokens: the sentence's ``T`` tokens (the valid steps of sequence ``batch_index``).
        gates: which gates to show, in row order.
    """
    rows, values = [], []
    for model, trace in traces.items():
        for gate in gates:
            v = position_means(trace, gate, batch_index)
            if v.shape[0] != len(tokens):
                raise ShapeError(
                    f"heatmap: {model} has {v.shape[0]} valid steps for sequence "
                    f"{batch_index} but {len(tokens)} tokens were given"
                )
            rows.append(f"{model} {gate}")
            values.append(v)
    if not rows:
        raise ConfigError("heatmap_from_traces: no traces given")
    return GateHeatmap(list(tokens), rows, np.stack(values), title)


def heatmap_figsize(heat: GateHeatmap) -> tuple[float, float]:
    """Figure size in inches: about 0.6 in per token column and 0.5 in per row."""
    n_rows, n_tok = heat.values.shape
    label_w = 0.09 * max((len(r) for r in heat.rows), default=4)
    return max(4.0, 0.62 * n_tok + label_w + 1.6), 0.5 * n_rows + 1.9


def plot_heatmap(
    heat: GateHeatmap, stem: Path, *, dpi: int = DPI, annotate: bool = True
) -> dict[str, Path]:
    """Draw ``heat`` (afmhot, 0..1, token labels) and write ``stem.{png,csv,json}``."""
    n_rows, n_tok = heat.values.shape
    fig = new_figure(heatmap_figsize(heat), dpi)
    ax = fig.subplots()
    im = ax.imshow(
        np.ma.masked_invalid(heat.values), cmap="afmhot", vmin=0.0, vmax=1.0, aspect="auto"
    )
    ax.set_xticks(range(n_tok))
    ax.set_xticklabels(heat.tokens, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n_rows))
    ax.set_yticklabels(heat.rows)
    ax.set_xlabel("token")
    ax.set_ylabel("model, gate")
    ax.set_title(heat.title, fontsize=10)
    if annotate:
        for i in range(n_rows):
            for t in range(n_tok):
                v = heat.values[i, t]
                if np.isfinite(v):
                    ax.text(
                        t,
                        i,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="black" if v > 0.55 else "white",
                    )
    cbar = fig.colorbar(im, ax=ax, fraction=0.04)
    cbar.set_label("mean gate value")
    stem = Path(stem)
    return {
        "png": save_figure(fig, stem.with_suffix(".png")),
        "csv": write_csv(stem.with_suffix(".csv"), heat.to_rows()),
        "json": write_json(stem.with_suffix(".json"), heat.to_dict()),
    }
