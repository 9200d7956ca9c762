"""Compression of LSTM gate weights: low rank, low precision, quantisation (paper §4.3).

Pure functions over an ``nn.Module`` (or its state dict) with ``torch.nn.LSTM`` parameter names;
each returns ``(compressed_copy, CompressionReport)`` and leaves its input untouched::

    from g2lstm.compress import low_rank, round_clip, quantize, save_compressed, load_compressed

    small, report = round_clip(model, step=0.2, clip=0.4)      # paper LM setting, i/f gates
    print(report.to_markdown())
    save_compressed("model.g2c.safetensors", small, report, config={"hidden_size": 1150})
    state, meta = load_compressed("model.g2c.safetensors")    # dense, bit-identical to `small`

A compressed model can be fine-tuned while keeping its structure exactly (rounded and quantised
blocks through dense shadows with a straight-through estimator): ``finetune(small, report,
step_loss, steps, lr)``, or ``finetune_task(load_target(run)).run(small, report, steps)`` for
a language or translation model (see :mod:`.finetune`).

Needs ``numpy`` and ``safetensors`` (the ``train`` extra) for the file format only.
"""

from __future__ import annotations

from .blocks import GATES, PRESETS, Block, rank_for_fraction, select_blocks
from .codecs import CODECS
from .evaluators import CompressedModel, load_compressed_model
from .finetune import FinetuneTask, finetune, finetune_task
from .format import FORMAT_VERSION, load_compressed, save_compressed
from .methods import (
    StructureProjector,
    compress,
    low_rank,
    quantize,
    round_clip,
    structure_projector,
)
from .report import BlockReport, CompressionReport
from .sweep import default_settings, run_sweep

METHODS = tuple(CODECS)

__all__ = [
    "FORMAT_VERSION",
    "GATES",
    "METHODS",
    "PRESETS",
    "Block",
    "BlockReport",
    "CompressedModel",
    "CompressionReport",
    "FinetuneTask",
    "StructureProjector",
    "compress",
    "default_settings",
    "finetune",
    "finetune_task",
    "load_compressed",
    "load_compressed_model",
    "low_rank",
    "quantize",
    "rank_for_fraction",
    "round_clip",
    "run_sweep",
    "save_compressed",
    "select_blocks",
    "structure_projector",
]
