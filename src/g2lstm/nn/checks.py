"""Input checks of ``G2LSTM`` with ``torch.nn.LSTM``'s exception types and wording, and the
tracing / autocast context a forward pass runs in.

A mistake that ``nn.LSTM`` rejects is rejected here with the same exception type (our
:class:`~g2lstm.errors.ShapeError` is both a ``ValueError`` and a ``RuntimeError``; dtype
mismatches raise :class:`~g2lstm.errors.DTypeError`, a ``ValueError``) and a message that
contains ``nn.LSTM``'s own, prefixed with ``G2LSTM:``: code that matches on either keeps
working.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from g2lstm.errors import DTypeError, ShapeError

__all__ = ["autocast_dtype", "cell_state", "exporting", "initial_state"]

_State = tuple[Tensor, Tensor]


def exporting() -> bool:
    """Whether the forward is being captured for export (``torch.export``, ONNX, TorchScript
    tracing): the layer then records the reference math (ATen ops only, hard gates as a
    ``>= 0`` select) instead of calling its custom operators."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def autocast_dtype(data: Tensor) -> torch.dtype | None:
    """The reduced dtype to run in under ``torch.autocast`` for ``data``'s device, or None.

    ``nn.LSTM`` runs in the autocast dtype (on CUDA its cuDNN op is on autocast's
    reduced-precision list, on CPU oneDNN's ``mkldnn_rnn_layer``), so ``G2LSTM`` does too:
    output in that dtype, parameter gradients in theirs. (On a CPU without bf16 support
    ``nn.LSTM`` fails inside oneDNN under CPU bf16 autocast; ``G2LSTM``, which does not use
    oneDNN, runs.)
    """
    if not data.is_floating_point():
        return None
    dev = data.device.type
    if not torch.is_autocast_enabled(dev):
        return None
    return torch.get_autocast_dtype(dev)


def _reraise(e: Exception) -> None:
    msg = f"G2LSTM: {e}"
    if "dtype" in str(e) and isinstance(e, ValueError):
        raise DTypeError(msg) from None
    raise ShapeError(msg) from None


def initial_state(
    lstm: nn.LSTM, input: Tensor | PackedSequence, hx: _State | None
) -> tuple[Tensor, Tensor, bool]:
    """Check ``input`` and ``hx`` as ``nn.LSTM.forward`` does; return ``(h0, c0, unbatched)``.

    ``h0``/``c0`` are 3-D ``(D * num_layers, N, H_out)`` / ``(..., H)``, zeros when ``hx`` is
    None, in the caller's batch order.
    """
    packed = isinstance(input, PackedSequence)
    data = input.data if packed else input
    if packed:
        batch_sizes = input.batch_sizes
        batch, unbatched, x3 = int(batch_sizes[0]), False, data
    else:
        if input.dim() not in (2, 3):
            raise ShapeError(f"G2LSTM: Expected input to be 2D or 3D, got {input.dim()}D instead")
        batch_sizes = None
        unbatched = input.dim() == 2
        x3 = input.unsqueeze(0 if lstm.batch_first else 1) if unbatched else input
        if x3.shape[1 if lstm.batch_first else 0] == 0:
            raise ShapeError("G2LSTM: Expected sequence length to be larger than 0 in RNN")
        batch = x3.shape[0 if lstm.batch_first else 1]
    d = (2 if lstm.bidirectional else 1) * lstm.num_layers
    if hx is None:
        out_size = lstm.proj_size if lstm.proj_size > 0 else lstm.hidden_size
        kw = {"dtype": data.dtype, "device": data.device}
        h0 = torch.zeros(d, batch, out_size, **kw)
        c0 = torch.zeros(d, batch, lstm.hidden_size, **kw)
    else:
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise ShapeError("G2LSTM: hx must be a tuple (h_0, c_0) of two tensors")
        h0, c0 = hx
        want = 2 if unbatched else 3
        if h0.dim() != want or c0.dim() != want:
            kind = "unbatched 2-D" if unbatched else "batched 3-D"
            raise ShapeError(
                f"G2LSTM: For {kind} input, hx and cx should also be {want}-D but got "
                f"({h0.dim()}-D, {c0.dim()}-D) tensors"
            )
        if unbatched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
    try:  # nn.LSTM's own checks: input dtype and size, hidden sizes
        lstm.check_forward_args(x3, (h0, c0), batch_sizes)  # type: ignore[arg-type]
    except (RuntimeError, ValueError) as e:
        _reraise(e)
    return h0, c0, unbatched


def cell_state(cell: nn.LSTMCell, input: Tensor, hx: _State | None) -> tuple[Tensor, Tensor, bool]:
    """Check a cell call as ``nn.LSTMCell`` does; return 2-D ``(h, c, unbatched)``."""
    if input.dim() not in (1, 2):
        raise ShapeError(
            f"G2LSTMCell: Expected input to be 1D or 2D, got {input.dim()}D instead"
        )
    unbatched = input.dim() == 1
    x = input.unsqueeze(0) if unbatched else input
    if x.shape[1] != cell.input_size:
        raise ShapeError(
            f"G2LSTMCell: input has inconsistent input_size: got {x.shape[1]} expected "
            f"{cell.input_size}"
        )
    if x.dtype != cell.weight_ih.dtype:
        raise DTypeError(
            f"G2LSTMCell: input dtype ({x.dtype}) does not match weight dtype "
            f"({cell.weight_ih.dtype}) (nn.LSTMCell: mat1 and mat2 must have the same dtype); "
            f"convert the input (input.to({cell.weight_ih.dtype})) or the cell"
        )
    n, hid = x.shape[0], cell.hidden_size
    if hx is None:
        zeros = x.new_zeros(n, hid)
        return zeros, zeros, unbatched
    states = []
    for idx, t in enumerate(hx):
        if t.dim() not in (1, 2):
            raise ShapeError(
                f"G2LSTMCell: Expected hx[{idx}] to be 1D or 2D, got {t.dim()}D instead"
            )
        t = t.unsqueeze(0) if unbatched and t.dim() == 1 else t
        if t.shape[0] != n:
            raise ShapeError(
                f"G2LSTMCell: Input batch size {n} doesn't match hidden{idx} batch size "
                f"{t.shape[0]}"
            )
        if t.shape[1] != hid:
            raise ShapeError(
                f"G2LSTMCell: hidden{idx} has inconsistent hidden_size: got {t.shape[1]}, "
                f"expected {hid}"
            )
        states.append(t)
    return states[0], states[1], unbatched
