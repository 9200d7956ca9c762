"""Named starting configurations of :class:`~g2lstm.mt.config.MTConfig` (:data:`PRESETS`).

``iwslt`` (2 layers, 256/256, the paper's IWSLT'14 De->En model), ``multi30k`` (the ``iwslt``
model with a recipe that converges on Multi30k), ``wmt`` (3 layers, 512/1024, the paper's
WMT'14 En->De model), ``tiny`` (1 layer, 32/32, 2 epochs of the first 500 sentence pairs:
seconds on any dataset, for tests). The machinery that reads this table (YAML file, ``--set``
overrides) is :mod:`g2lstm.config`, the same for every task.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

#: Named starting points; ``iwslt`` and ``wmt`` are the paper's two MT models.
PRESETS: dict[str, dict[str, Any]] = {
    "iwslt": {
        "model": {"emb": 256, "hidden": 256, "layers": 2, "dropout": 0.2},
        "train": {"max_tokens": 2000},
    },
    # the iwslt model with the additive attention of the authors' dl4mt decoder and a recipe
    # chosen by probes on Multi30k's valid split (benchmarks/RESULTS.md, "Machine
    # translation"): ~1000-token batches (460 updates per epoch), Adam 2e-3, clip 1.0,
    # constant for 12 epochs, then halved every epoch (1e-3 .. 1.25e-4), 16 epochs
    "multi30k": {
        "model": {
            "emb": 256,
            "hidden": 256,
            "layers": 2,
            "dropout": 0.2,
            "attention": "bahdanau",
        },
        "optim": {
            "name": "adam",
            "lr": 2e-3,
            "clip": 1.0,
            "schedule": "step",
            "decay_start": 12,
            "lr_decay": 0.5,
        },
        "train": {"max_tokens": 1000, "epochs": 16},
    },
    "wmt": {
        "model": {"emb": 512, "hidden": 1024, "layers": 3, "dropout": 0.2},
        "train": {"max_tokens": 4096},
    },
    "tiny": {
        "model": {"emb": 32, "hidden": 32, "layers": 1, "dropout": 0.0},
        "train": {"max_tokens": 256, "epochs": 2, "log_every": 10, "limit_sentences": 500},
        "decode": {"beam": 2, "batch_size": 16},
    },
}
