"""Which weight blocks of an LSTM model get compressed (paper §4.3).

A :class:`Block` is a contiguous range of rows of one 2-D parameter, e.g. the forget-gate rows
``H:2H`` of ``rnn.weight_hh_l1_reverse``. LSTM parameters are recognised by
``torch.nn.LSTM``'s names and layout, whatever module holds them (``rnn.weight_ih_l0``,
``rnns.0.weight_hh_l0``, ...):

- ``weight_ih_l{k}[_reverse]``: ``(4H, input)``, rows in gate order i, f, g, o;
- ``weight_hh_l{k}[_reverse]``: ``(4H, H_out)`` with ``H_out = H`` or ``proj_size``;
- ``weight_hr_l{k}[_reverse]``: ``(proj_size, H)`` (only with ``proj_size > 0``).

A ``weight_hh`` counts as an LSTM matrix only if its shape is ``(4H, H)`` or a sibling
``weight_hr`` of shape ``(H_out, H)`` exists, and a ``weight_ih`` only if its ``weight_hh``
sibling does and has the same number of rows; so GRU/RNN weights (``3H`` / ``H`` rows) are never
taken for LSTM gates.

Each gate is its own block: under ``"gates_if"`` the i rows and the f rows of a matrix are two
separate ``(H, n)`` matrices, each with its own rank / scales, as in the authors' code (their
SVD truncates each gate's slice separately). Biases are never compressed.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from g2lstm.errors import ConfigError

#: Gate order of the fused ``4H`` rows in ``torch.nn.LSTM``.
GATES = ("i", "f", "g", "o")
#: Named selections accepted by :func:`select_blocks`.
PRESETS = ("gates_if", "all_gates", "all_recurrent")
#: Gate label of a block that is a whole matrix.
WHOLE = "all"

_LSTM_NAME = re.compile(
    r"^(?P<prefix>(?:.*\.)?)(?P<kind>weight_ih|weight_hh|weight_hr)_l(?P<layer>\d+)"
    r"(?P<suffix>_reverse)?$"
)


@dataclass(frozen=True)
class Block:
    """Rows ``start:stop`` of the 2-D parameter ``param`` (``n_cols`` columns).

    ``gate`` is one of ``"i", "f", "g", "o"`` for a gate slice of an LSTM matrix, or
    ``"all"`` for a whole matrix. The block is the matrix ``W[start:stop]`` of shape
    ``(stop - start, n_cols)``.
    """

    param: str
    start: int
    stop: int
    gate: str
    n_cols: int

    def __post_init__(self) -> None:
        if not self.param:
            raise ConfigError("Block.param must be a non-empty parameter name")
        if not 0 <= self.start < self.stop:
            raise ConfigError(
                f"Block {self.param!r}: rows must satisfy 0 <= start < stop, "
                f"got {self.start}:{self.stop}"
            )
        if self.n_cols < 1:
            raise ConfigError(f"Block {self.param!r}: n_cols must be >= 1, got {self.n_cols}")
        if self.gate not in (*GATES, WHOLE):
            raise ConfigError(
                f"Block {self.param!r}: gate must be one of {(*GATES, WHOLE)}, got {self.gate!r}"
            )

    @property
    def rows(self) -> slice:
        """The row slice of the parameter."""
        return slice(self.start, self.stop)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the block."""
        return (self.stop - self.start, self.n_cols)

    @property
    def name(self) -> str:
        """``"param[gate]"`` for a gate slice, ``"param"`` for a whole matrix."""
        return self.param if self.gate == WHOLE else f"{self.param}[{self.gate}]"

    def to_dict(self) -> dict[str, object]:
        """JSON-able form (inverse of :meth:`from_dict`)."""
        return {
            "param": self.param,
            "start": self.start,
            "stop": self.stop,
            "gate": self.gate,
            "n_cols": self.n_cols,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Block:
        """Rebuild a block from :meth:`to_dict` output; ConfigError if a field is missing."""
        try:
            return cls(
                param=str(data["param"]),
                start=int(data["start"]),  # type: ignore[call-overload]
                stop=int(data["stop"]),  # type: ignore[call-overload]
                gate=str(data["gate"]),
                n_cols=int(data["n_cols"]),  # type: ignore[call-overload]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"block description {dict(data)!r} needs the keys param, start, stop, gate, "
                f"n_cols with integer rows: {exc}"
            ) from exc


def model_state(model_or_state_dict: object) -> tuple[Mapping[str, torch.Tensor], str]:
    """Return ``(state_dict, description)`` of a module or a ``str -> Tensor`` mapping.

    The state dict of a module shares storage with its parameters. ``description`` names the
    model for error messages. Raises ConfigError for any other input.
    """
    if isinstance(model_or_state_dict, nn.Module):
        return model_or_state_dict.state_dict(), f"model {type(model_or_state_dict).__name__}"
    if isinstance(model_or_state_dict, Mapping):
        bad = [k for k, v in model_or_state_dict.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise ConfigError(
                f"state dict entries must be tensors; {bad[:3]} are not. Pass model.state_dict() "
                "or the nn.Module itself"
            )
        return model_or_state_dict, f"state dict with {len(model_or_state_dict)} tensors"
    raise ConfigError(
        "expected a torch.nn.Module or a state dict (mapping of str to Tensor), "
        f"got {type(model_or_state_dict).__name__}"
    )


def lstm_matrices(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[str, int]]:
    """Find the LSTM weight matrices of a state dict.

    Returns ``{name: (kind, hidden_size)}`` in state-dict order, with ``kind`` in
    ``"weight_ih"``, ``"weight_hh"``, ``"weight_hr"`` and ``hidden_size`` the ``H`` of the cell
    (each ``weight_ih``/``weight_hh`` has ``4H`` rows).
    """
    found: dict[str, tuple[str, int]] = {}
    for name, tensor in state.items():
        match = _LSTM_NAME.match(name)
        if match is None or tensor.dim() != 2 or not tensor.is_floating_point():
            continue
        prefix, kind, layer, suffix = match.group("prefix", "kind", "layer", "suffix")
        suffix = suffix or ""
        hh = state.get(f"{prefix}weight_hh_l{layer}{suffix}")
        hr = state.get(f"{prefix}weight_hr_l{layer}{suffix}")
        if hh is None or hh.dim() != 2 or hh.shape[0] % 4:
            continue
        hidden = hh.shape[0] // 4
        if hr is not None and (hr.dim() != 2 or tuple(hr.shape) != (hh.shape[1], hidden)):
            continue
        if hr is None and hh.shape[1] != hidden:
            continue
        if kind == "weight_ih" and tensor.shape[0] != 4 * hidden:
            continue
        found[name] = (kind, hidden)
    return found


def _gate_blocks(name: str, tensor: torch.Tensor, hidden: int, gates: str) -> list[Block]:
    return [
        Block(name, GATES.index(g) * hidden, (GATES.index(g) + 1) * hidden, g, tensor.shape[1])
        for g in gates
    ]


def _preset_blocks(state: Mapping[str, torch.Tensor], preset: str) -> list[Block]:
    blocks: list[Block] = []
    for name, (kind, hidden) in lstm_matrices(state).items():
        tensor = state[name]
        if preset == "all_recurrent":
            if kind in ("weight_hh", "weight_hr"):
                blocks.append(Block(name, 0, tensor.shape[0], WHOLE, tensor.shape[1]))
        elif kind != "weight_hr":
            blocks += _gate_blocks(name, tensor, hidden, "if" if preset == "gates_if" else "ifgo")
    return blocks


def _explicit_blocks(
    state: Mapping[str, torch.Tensor], items: Sequence[object], described: str
) -> list[Block]:
    lstm = lstm_matrices(state)
    blocks: list[Block] = []
    for item in items:
        if isinstance(item, Block):
            blocks.append(_check_block(state, item, described))
            continue
        if not isinstance(item, str) or not item:
            raise ConfigError(
                f"blocks entries must be parameter names/globs (str) or Block, got {item!r}"
            )
        pattern, _, gates = item.partition("@")
        if gates and (set(gates) - set(GATES) or len(set(gates)) != len(gates)):
            raise ConfigError(
                f"blocks entry {item!r}: the part after '@' must be distinct gate letters out "
                f"of 'ifgo' (e.g. 'rnn.weight_hh_l0@if'), got {gates!r}"
            )
        names = [n for n in state if fnmatch.fnmatchcase(n, pattern)]
        matrices = [n for n in names if state[n].dim() == 2 and state[n].is_floating_point()]
        if not matrices:
            hint = f" ({names[0]!r} is not a 2-D float matrix)" if names else ""
            raise ConfigError(
                f"blocks entry {item!r} matches no 2-D float parameter of the {described}{hint}; "
                f"LSTM matrices there: {list(lstm)[:8]}"
            )
        for name in matrices:
            tensor = state[name]
            if not gates:
                blocks.append(Block(name, 0, tensor.shape[0], WHOLE, tensor.shape[1]))
            elif name in lstm and lstm[name][0] != "weight_hr":
                blocks += _gate_blocks(name, tensor, lstm[name][1], gates)
            else:
                raise ConfigError(
                    f"blocks entry {item!r}: gate selection '@{gates}' needs an LSTM "
                    f"weight_ih/weight_hh matrix (4H rows), but {name!r} is not one"
                )
    return blocks


def _check_block(state: Mapping[str, torch.Tensor], block: Block, described: str) -> Block:
    tensor = state.get(block.param)
    if tensor is None or tensor.dim() != 2:
        raise ConfigError(f"block {block.name!r}: no 2-D parameter {block.param!r} in {described}")
    if block.stop > tensor.shape[0] or block.n_cols != tensor.shape[1]:
        raise ConfigError(
            f"block {block.name!r} (rows {block.start}:{block.stop}, {block.n_cols} cols) does "
            f"not fit {block.param!r} of shape {tuple(tensor.shape)}"
        )
    return block


def select_blocks(
    model_or_state_dict: nn.Module | Mapping[str, torch.Tensor],
    blocks: str | Sequence[str | Block] = "gates_if",
) -> list[Block]:
    """Select the weight blocks to compress.

    Args:
        model_or_state_dict: an ``nn.Module`` holding LSTM layers, or its state dict.
        blocks: a preset or an explicit list.

            - ``"gates_if"`` (default, paper and authors' code): the input- and forget-gate rows
              (``0:H`` and ``H:2H``) of every ``weight_ih*`` and ``weight_hh*``, in every layer
              and direction, as two blocks per matrix.
            - ``"all_gates"``: the four gate blocks i, f, g, o of those matrices.
            - ``"all_recurrent"``: every whole ``weight_hh*`` (and ``weight_hr*``) matrix.
            - a list of parameter names or ``fnmatch`` globs (``"rnn.weight_hh_l*"``), each
              selecting whole 2-D matrices, optionally with a gate suffix ``"@if"`` selecting
              gate blocks of LSTM matrices (``"*.weight_ih_l0@f"``); :class:`Block` objects
              are accepted too. Every entry must match something.

    Returns:
        The blocks, in state-dict order for presets, in entry order for lists.

    Raises:
        ConfigError: unknown preset, entry that matches nothing, overlapping blocks, or a
            model without any matching LSTM matrix.
    """
    state, described = model_state(model_or_state_dict)
    if isinstance(blocks, str):
        if blocks not in PRESETS:
            raise ConfigError(
                f"unknown blocks {blocks!r}; valid presets are {list(PRESETS)}, or pass a list "
                "of parameter names/globs such as ['rnn.weight_hh_l0', 'rnn.weight_ih_l0@if']"
            )
        selected = _preset_blocks(state, blocks)
        if not selected:
            raise ConfigError(
                f"blocks={blocks!r} found no LSTM weight matrices (weight_ih_l<k>, weight_hh_l<k> "
                f"with 4H rows) in the {described}; its tensors are {list(state)[:8]}"
            )
    else:
        if not isinstance(blocks, Sequence) or not blocks:
            raise ConfigError(
                f"blocks must be one of {list(PRESETS)} or a non-empty list of names, "
                f"got {blocks!r}"
            )
        selected = _explicit_blocks(state, blocks, described)
    reject_overlaps(selected)
    return selected


def reject_overlaps(blocks: Sequence[Block]) -> None:
    """ConfigError if two blocks share a row of the same parameter."""
    by_param: dict[str, list[Block]] = {}
    for block in blocks:
        for other in by_param.get(block.param, []):
            if block.start < other.stop and other.start < block.stop:
                raise ConfigError(
                    f"blocks {other.name!r} and {block.name!r} overlap; select each row once"
                )
        by_param.setdefault(block.param, []).append(block)


def rank_for_fraction(block_or_shape: Block | tuple[int, int], fraction: float) -> int:
    """The rank ``max(1, floor(fraction * min(shape)))`` for ``0 < fraction <= 1``."""
    shape = block_or_shape.shape if isinstance(block_or_shape, Block) else block_or_shape
    if not isinstance(fraction, (int, float)) or not 0.0 < float(fraction) <= 1.0:
        raise ConfigError(f"fraction must be in (0, 1], got {fraction!r}")
    return max(1, int(float(fraction) * min(shape)))
