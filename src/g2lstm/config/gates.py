"""The gate options of a run: the ``model.gates`` section of every task's config (paper §3.3,
§4.2).

:class:`GateConfig` is the one source of the three models the paper compares, by their
``--cell`` names, and of their labels: :meth:`GateConfig.for_cell` gives a cell's options
(``lstm``: ``tau=1, noise_p=0``, exactly an LSTM; ``sharpened``: ``tau=0.2, noise_p=0``, the
"Sharpened Sigmoid"; ``g2``: ``tau=0.9, noise_p=0.2``, G2-LSTM as the authors ran it), and
:attr:`GateConfig.label` the name every table, figure and report prints. The numbers are
:data:`g2lstm.nn.config.CELL_KINDS`; the layer's own options are
:class:`g2lstm.nn.config.GateConfig` (:meth:`GateConfig.layer_config`).

``tau`` / ``noise_p`` left at ``None`` take the cell's values; setting ``cell`` by an override
(``--cell``, ``--set model.gates.cell=...``) resets them to the new cell's unless they are
overridden too (:attr:`GateConfig.RESETS`, applied by :func:`g2lstm.config.apply_overrides`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from g2lstm.config.sections import check_field, set_field
from g2lstm.config_checks import check_float
from g2lstm.errors import ConfigError
from g2lstm.nn.config import CELL_KINDS
from g2lstm.nn.config import GateConfig as LayerGateConfig

__all__ = ["CELLS", "CELL_LABELS", "LEGACY_GATE_KEYS", "GateConfig", "cell_label"]

#: The compared cells in the order of the paper's tables (baseline first).
CELLS: tuple[str, ...] = tuple(CELL_KINDS)
#: ``--cell`` name -> the label of the paper's tables.
CELL_LABELS: dict[str, str] = {
    "lstm": "Baseline LSTM",
    "sharpened": "Sharpened Sigmoid",
    "g2": "G2-LSTM",
}


def cell_label(cell: str) -> str:
    """The label of ``cell`` (a name the table does not know is its own label)."""
    return CELL_LABELS.get(cell, cell)


@dataclass(frozen=True)
class GateConfig:
    """The G2 options every LSTM of a task's model gets (:class:`~g2lstm.nn.G2LSTM`).

    Attributes:
        cell: ``"lstm"``, ``"sharpened"`` or ``"g2"`` (:data:`CELLS`).
        tau, noise_p: temperature and noise probability (``None``: the cell's).
        noise_schedule, noisy_gates, eval_gates, estimator: the layer's options of the same
            name (:class:`g2lstm.nn.config.GateConfig`).
    """

    section: ClassVar[str] = "model.gates"
    #: setting the key on the left by an override resets those on the right (to the cell's)
    RESETS: ClassVar[dict[str, tuple[str, ...]]] = {"cell": ("tau", "noise_p")}

    cell: str = "g2"
    tau: float | None = None
    noise_p: float | None = None
    noise_schedule: str = "per_step"
    noisy_gates: tuple[str, ...] = ("input", "forget")
    eval_gates: str = "soft"
    estimator: str = "gumbel"

    def __post_init__(self) -> None:
        if not isinstance(self.cell, str) or self.cell not in CELLS:
            choices = ", ".join(
                f"{c!r} ({CELL_LABELS[c]}: tau={k['tau']:g}, noise_p={k['noise_p']:g})"
                for c, k in CELL_KINDS.items()
            )
            raise ConfigError(f"{self.section}.cell={self.cell!r} is not valid; expected {choices}")
        kind = CELL_KINDS[self.cell]
        for name in ("tau", "noise_p"):
            if getattr(self, name) is None:
                set_field(self, name, kind[name])
        check_field(self, "tau", check_float, 0.0, lo_open=True)
        check_field(self, "noise_p", check_float, 0.0, 1.0)
        layer = self.layer_config()  # validates and normalises the rest, naming the option
        set_field(self, "noisy_gates", layer.noisy_gates)
        set_field(self, "noise_schedule", layer.noise_schedule.value)
        set_field(self, "eval_gates", layer.eval_gates.value)
        set_field(self, "estimator", layer.estimator.value)

    @classmethod
    def for_cell(cls, name: str, **options: Any) -> GateConfig:
        """The options of cell ``name`` (``tau``/``noise_p`` in ``options`` override its)."""
        return cls(cell=name, **options)

    @property
    def label(self) -> str:
        """The cell's label in the paper's tables (``"G2-LSTM"``)."""
        return cell_label(self.cell)

    def layer_config(self) -> LayerGateConfig:
        """The layer's validated :class:`g2lstm.nn.config.GateConfig` of these options."""
        try:
            return LayerGateConfig(
                tau=self.tau,  # type: ignore[arg-type]
                noise_p=self.noise_p,  # type: ignore[arg-type]
                noise_schedule=self.noise_schedule,  # type: ignore[arg-type]
                noisy_gates=self.noisy_gates,
                eval_gates=self.eval_gates,  # type: ignore[arg-type]
                estimator=self.estimator,  # type: ignore[arg-type]
            )
        except ConfigError as exc:
            raise ConfigError(f"{self.section}: {exc}") from None

    def layer_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~g2lstm.nn.G2LSTM` (its keyword-only gate options)."""
        return {
            "tau": self.tau,
            "noise_p": self.noise_p,
            "noise_schedule": self.noise_schedule,
            "noisy_gates": self.noisy_gates,
            "eval_gates": self.eval_gates,
            "estimator": self.estimator,
        }


#: Saved configs and overrides of earlier versions kept the gate options flat in ``model``:
#: old dotted key -> new one (:func:`g2lstm.config.migrate` moves them on read).
LEGACY_GATE_KEYS: dict[str, str] = {
    f"model.{name}": f"model.gates.{name}" for name in GateConfig.__dataclass_fields__
}
