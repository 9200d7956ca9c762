"""Column plan of the fused ``4H`` gate pre-activations for the fast recurrence.

The fast kernels work on whole column ranges of the ``(N, 4H)`` pre-activations (gate order
i, f, g, o). :class:`GatePlan` lists which ranges get which activation, where the noise goes
and which need the temperature, merging neighbouring gates of the same
kind so that each step issues as few pointwise ops as possible.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from g2lstm.nn.functional import GateMode, GateSpec

__all__ = ["GatePlan", "Segment"]


@dataclass(frozen=True)
class Segment:
    """Columns ``[lo, hi)`` of the pre-activations and their activation.

    ``kind``: ``"sig"`` (sigmoid), ``"tanh"``, ``"hard"`` (``1[a >= 0]``, zero gradient) or
    ``"st"`` (``1[a >= 0]`` forward, sigmoid gradient; the sigmoid values are kept in
    columns ``[s_lo, s_hi)`` of a side buffer). ``scale``: the temperature factor ``1 / tau``
    applied to the pre-activation before the sigmoid (1.0 for plain gates).
    """

    lo: int
    hi: int
    kind: str
    scale: float = 1.0
    s_lo: int = 0
    s_hi: int = 0


@dataclass(frozen=True)
class GatePlan:
    """Everything the fast recurrence needs to know about the gates of one pass.

    Attributes:
        hidden: ``H``.
        segments: activation of every column range, in order.
        noise_cols: ``(gate_lo, gate_hi, noise_lo, noise_hi)`` column pairs: the noise
            ``(T, N, len(rows) * H)`` columns added to each gate column range.
        st_width: columns of the straight-through side buffer (0 when unused).
        kernel_kinds, kernel_scales: the same per gate i, f, o for the fused CPU kernel
            (``csrc/g2lstm_cpu.cpp``): kind 0 sigmoid, 1 hard, 2 straight-through.
        kernel_noise_blocks: per gate i, f, o, the block (in units of ``H``) of the noise
            columns it gets, or -1 (no noise): its index in ``spec.rows``.
    """

    hidden: int
    segments: tuple[Segment, ...]
    noise_cols: tuple[tuple[int, int, int, int], ...]
    st_width: int
    kernel_kinds: tuple[int, int, int]
    kernel_scales: tuple[float, float, float]
    kernel_noise_blocks: tuple[int, int, int]

    @property
    def noise_width(self) -> int:
        """Columns of the gate noise: ``H`` per noisy gate."""
        return sum(b >= 0 for b in self.kernel_noise_blocks) * self.hidden

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def build(spec: GateSpec, hidden: int) -> GatePlan:
        """The plan for gate behaviour ``spec`` and hidden size ``hidden``."""
        h = hidden
        noisy_kind = {
            GateMode.RELAXED: "sig",
            GateMode.HARD: "hard",
            GateMode.STRAIGHT_THROUGH: "st",
        }[spec.mode]
        tau_scale = 1.0 if spec.mode is GateMode.HARD else 1.0 / spec.tau
        segments: list[Segment] = []
        s_pos = 0
        for k in range(4):
            if k == 2:
                kind, scale = "tanh", 1.0
            elif k in spec.rows:
                kind, scale = noisy_kind, tau_scale
            else:
                kind, scale = "sig", 1.0
            lo, hi = k * h, (k + 1) * h
            s_lo, s_hi = (s_pos, s_pos + h) if kind == "st" else (0, 0)
            s_pos = s_hi if kind == "st" else s_pos
            if segments and (segments[-1].kind, segments[-1].scale) == (kind, scale):
                last = segments.pop()
                lo, s_lo = last.lo, last.s_lo
            segments.append(Segment(lo, hi, kind, scale, s_lo, s_hi))
        noise_cols: list[tuple[int, int, int, int]] = []
        for j, k in enumerate(spec.rows):
            cols = (k * h, (k + 1) * h, j * h, (j + 1) * h)
            if noise_cols and noise_cols[-1][1] == cols[0] and noise_cols[-1][3] == cols[2]:
                last = noise_cols.pop()
                cols = (last[0], cols[1], last[2], cols[3])
            noise_cols.append(cols)
        codes = {"sig": 0, "hard": 1, "st": 2}
        per_gate = [next(s for s in segments if s.lo <= k * h < s.hi) for k in (0, 1, 3)]
        return GatePlan(
            hidden=h,
            segments=tuple(segments),
            noise_cols=tuple(noise_cols),
            st_width=s_pos,
            kernel_kinds=tuple(codes[s.kind] for s in per_gate),  # type: ignore[arg-type]
            kernel_scales=tuple(s.scale for s in per_gate),  # type: ignore[arg-type]
            kernel_noise_blocks=tuple(  # type: ignore[arg-type]
                spec.rows.index(k) if k in spec.rows else -1 for k in (0, 1, 3)
            ),
        )
