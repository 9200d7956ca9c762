"""``g2lstm analyze``: gate figures and report for one or more language-model checkpoints.

Example::

    g2lstm analyze runs/ptb-g2 runs/ptb-lstm --data ptb --split valid -o analysis/ \
        --max-batches 20 --sentences "the u.s. economy is still the world 's greatest economy"

Heavy imports (torch, numpy, matplotlib, :mod:`g2lstm.lm`) happen inside the command.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["DEFAULT_SENTENCES", "register"]

#: The paper's Fig. 4 sentences, in PTB's normalisation (numbers -> N, no final period).
DEFAULT_SENTENCES = (
    "the u.s. economy is still the world 's greatest economy",
    "the numbers have not moved since N and are going in the wrong direction",
)
_CELL_LABELS = {"g2": "G2-LSTM", "lstm": "LSTM", "sharpened": "Sharpened sigmoid"}


def register(subparsers: Any) -> None:
    """Add the ``analyze`` command to the top-level ``g2lstm`` parser."""
    p = subparsers.add_parser(
        "analyze",
        help="gate histograms, heatmaps, sensitivity, hard gates",
        description="Analyse the gates of language-model checkpoints side by side: "
        "histograms (paper Figs. 1/3), per-token heatmaps (Fig. 4), token classes, "
        "sensitivity to perturbations and hard 0/1-gate inference. Writes PNG figures, "
        "their numbers (CSV/JSON) and report.md.",
    )
    p.add_argument("checkpoints", nargs="+", metavar="CKPT",
                   help="run directories (best checkpoint) or checkpoint directories")  # fmt: skip
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--names", nargs="+", help="one label per checkpoint (default: the cell type)")
    p.add_argument("--data", help="dataset name (ptb) or folder (default: the first run's)")
    p.add_argument("--data-dir", help="root of named datasets")
    p.add_argument("--split", choices=["train", "valid", "test"], default="valid")
    p.add_argument("--batch-size", type=int, default=10, help="parallel streams (default 10)")
    p.add_argument("--bptt", type=int, default=70, help="segment length (default 70)")
    p.add_argument("--max-batches", type=int, default=20,
                   help="segments used for histograms and token classes (default 20)")  # fmt: skip
    p.add_argument("--sentences", nargs="*", default=list(DEFAULT_SENTENCES),
                   help="heatmap sentences (default: the paper's two, PTB-normalised)")  # fmt: skip
    p.add_argument("--layer", type=int, default=0,
                   help="layer for heatmaps and token classes (default 0, the first)")  # fmt: skip
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3],
                   help="relative perturbation scales for the sensitivity analysis")  # fmt: skip
    p.add_argument("--draws", type=int, default=3, help="noise draws per sigma (default 3)")
    p.add_argument("--sensitivity-batches", type=int, default=2)
    p.add_argument("--no-sensitivity", action="store_true", help="skip the sensitivity analysis")
    p.add_argument("--no-hard-gates", action="store_true", help="skip hard-gate inference")
    p.add_argument("--eval-tokens", type=int,
                   help="perplexity on the first N tokens of the split (default: all)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.set_defaults(func=_cmd_analyze)


def _labels(cells: list[str], names: list[str] | None, n: int) -> list[str]:
    from g2lstm.errors import ConfigError

    if names is not None:
        if len(names) != n or len(set(names)) != n:
            raise ConfigError(f"--names: give {n} distinct labels, one per checkpoint")
        return list(names)
    base = [_CELL_LABELS.get(c, c) for c in cells]
    return [b if base.count(b) == 1 else f"{b} #{i + 1}" for i, b in enumerate(base)]


def _cmd_analyze(args: argparse.Namespace) -> int:
    import torch

    from g2lstm.analysis.lm_adapter import LMAdapter, lm_batches, lm_forward, lm_tokens
    from g2lstm.analysis.run import AnalysisConfig, analyze_models
    from g2lstm.analysis.sensitivity import SensitivityConfig
    from g2lstm.datasets import resolve_dataset
    from g2lstm.errors import ConfigError

    try:
        from g2lstm.lm.data import Corpus
        from g2lstm.lm.evaluate import check_vocab, load_model
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ConfigError(
            f"'g2lstm analyze' needs the language-model package ({e}); "
            "install it with: pip install 'g2lstm[all]'"
        ) from e
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ("batch_size", "bptt", "max_batches", "draws", "sensitivity_batches"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
    loaded = [load_model(c, map_location=args.device) for c in args.checkpoints]
    first = loaded[0].config
    data = args.data or first.data
    folder = resolve_dataset(data, args.data_dir or first.data_dir, kind="lm")
    corpus = Corpus.load(folder)
    for lm in loaded:
        check_vocab(lm.vocab, corpus.vocab, str(lm.checkpoint.path), str(data))
    labels = _labels([lm.config.model.cell for lm in loaded], args.names, len(loaded))
    ids = corpus[args.split]
    eval_ids = ids[: args.eval_tokens] if args.eval_tokens else ids
    adapter = LMAdapter.from_vocab(corpus.vocab, eval_ids, batch_size=args.batch_size,
                                   bptt=args.bptt, device=args.device)  # fmt: skip
    batches = lm_batches(ids, args.batch_size, args.bptt, args.max_batches, args.device)
    sens = None
    if not args.no_sensitivity:
        sens = SensitivityConfig(tuple(args.sigmas), args.draws, args.seed)
    config = AnalysisConfig(
        seed=args.seed,
        max_batches=args.max_batches,
        layer=args.layer,
        sensitivity=sens,
        sensitivity_batches=args.sensitivity_batches,
    )
    print(
        f"g2lstm analyze: {', '.join(labels)} on {data}/{args.split}, {len(batches)} "
        f"segments of {args.batch_size}x{args.bptt} -> {args.out}",
        flush=True,
    )
    result = analyze_models(
        {label: lm.model for label, lm in zip(labels, loaded)},
        batches,
        lm_forward,
        args.out,
        evaluate_fn=None if args.no_hard_gates else adapter.evaluate,
        metric="perplexity",
        tokens_fn=lm_tokens,
        itos=adapter.itos,
        sentences=args.sentences or (),
        encode_fn=adapter.encode,
        config=config,
    )
    print(f"wrote {result.report}")
    return 0
