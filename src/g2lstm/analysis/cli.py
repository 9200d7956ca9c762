"""``g2lstm analyze``: gate figures and report for language-model or translation checkpoints.

Examples::

    g2lstm analyze runs/ptb-g2 runs/ptb-lstm --data ptb --split valid -o analysis/ \
        --max-batches 20 --sentences "the u.s. economy is still the world 's greatest economy"
    g2lstm analyze runs/mt-g2 runs/mt-lstm --split test --limit 500 -o analysis-mt/

The task of each checkpoint (LM or MT) is read from its ``meta.json`` with
:func:`g2lstm.tasks.kind_of`; one analysis takes one task, whose
:meth:`~g2lstm.tasks.Task.eval_data` gives the batches, the metric of hard-gate inference and
the heatmap sentences. For MT, ``--data`` defaults to the prepared folder recorded in the first
run, hard gates are scored in tokenised BLEU, and token classes and heatmaps follow the first
decoder layer unless ``--layer`` says otherwise (see :mod:`g2lstm.tasks.mt_probe`).

Heavy imports (torch, numpy, matplotlib, the task layer) happen inside the command, so that
``g2lstm --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from g2lstm.config.flags import add_eval_gate_flags
from g2lstm.errors import ConfigError

__all__ = ["DEFAULT_SENTENCES", "analysis_kind", "register"]

#: The paper's Fig. 4 sentences, in PTB's normalisation (numbers -> N, no final period); the
#: same tuple as :data:`g2lstm.tasks.lm.DEFAULT_SENTENCES` (kept here so that ``g2lstm --help``
#: does not import the task layer).
DEFAULT_SENTENCES = (
    "the u.s. economy is still the world 's greatest economy",
    "the numbers have not moved since N and are going in the wrong direction",
)


def register(subparsers: Any) -> None:
    """Add the ``analyze`` command to the top-level ``g2lstm`` parser."""
    p = subparsers.add_parser(
        "analyze",
        help="gate histograms, heatmaps, sensitivity, hard gates",
        description="Analyse the gates of language-model or translation checkpoints side by "
        "side: histograms (paper Figs. 1/3), per-token heatmaps (Fig. 4), token classes, "
        "sensitivity to perturbations and hard 0/1-gate inference (perplexity for LMs, "
        "tokenised BLEU for MT). Writes PNG figures, their numbers (CSV/JSON) and report.md.",
    )
    p.add_argument(
        "checkpoints",
        nargs="+",
        metavar="CKPT",
        help="run directories (best checkpoint) or checkpoint directories, all LM or all MT",
    )
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--names", nargs="+", help="one label per checkpoint (default: the cell type)")
    p.add_argument(
        "--data",
        help="LM: dataset name (ptb) or folder; MT: prepared folder (default: the first run's)",
    )
    p.add_argument("--data-dir", help="LM: root of named datasets")
    p.add_argument(
        "--split",
        choices=["train", "valid", "test"],
        default="valid",
        help="split analysed (MT: valid or test; default valid)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        help="LM: parallel streams (default 10); MT: sentence pairs (default 32)",
    )
    p.add_argument("--bptt", type=int, default=70, help="LM: segment length (default 70)")
    p.add_argument(
        "--max-batches",
        type=int,
        default=20,
        help="batches used for histograms and token classes (default 20)",
    )
    p.add_argument(
        "--sentences",
        nargs="*",
        help="heatmap sentences (LM default: the paper's two, PTB-normalised; MT: "
        "'SOURCE ||| TARGET' or a source of the split, default: one pair of the "
        "split); give the flag alone for no heatmap",
    )
    p.add_argument(
        "--input-format",
        choices=["raw", "tok", "bpe"],
        default="raw",
        help="MT: format of --sentences, as for 'g2lstm mt translate' (default raw)",
    )
    p.add_argument(
        "--layer",
        type=int,
        help="recorded layer (in module order) for heatmaps and token classes "
        "(default: LM the first; MT the first decoder layer)",
    )
    p.add_argument(
        "--sigmas",
        type=float,
        nargs="+",
        default=[0.01, 0.03, 0.1, 0.3],
        help="relative perturbation scales for the sensitivity analysis",
    )
    p.add_argument("--draws", type=int, default=3, help="noise draws per sigma (default 3)")
    p.add_argument("--sensitivity-batches", type=int, default=2)
    p.add_argument("--no-sensitivity", action="store_true", help="skip the sensitivity analysis")
    p.add_argument("--no-hard-gates", action="store_true", help="skip hard-gate inference")
    p.add_argument(
        "--eval-tokens",
        type=int,
        help="LM: perplexity on the first N tokens of the split (default: all)",
    )
    p.add_argument("--limit", type=int, help="MT: BLEU on the first N sentences (default: all)")
    p.add_argument(
        "--beam", type=int, help="MT: beam size for BLEU (1 = greedy; default: the first run's)"
    )
    add_eval_gate_flags(p, gates=False)  # --no-hard-gates: hard gates are measured as well
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.set_defaults(func=_cmd_analyze)


def _labels(cells: list[str], names: list[str] | None, n: int) -> list[str]:
    if names is not None:
        if len(names) != n or len(set(names)) != n:
            raise ConfigError(f"--names: give {n} distinct labels, one per checkpoint")
        return list(names)
    from g2lstm.config import cell_label

    base = [cell_label(c) for c in cells]
    return [b if base.count(b) == 1 else f"{b} #{i + 1}" for i, b in enumerate(base)]


def analysis_kind(paths: Sequence[str | os.PathLike[str]]) -> str:
    """``"lm"`` or ``"mt"``: the kind shared by every checkpoint in ``paths``.

    Raises:
        CheckpointError: a path is not a checkpoint (from ``checkpoint_kind``).
        ConfigError: a compressed file, or language-model and translation checkpoints mixed.
    """
    from g2lstm.tasks import COMPRESSED, kind_of

    kinds = {str(p): kind_of(p) for p in paths}
    packed = [p for p, k in kinds.items() if k == COMPRESSED]
    if packed:
        raise ConfigError(
            f"{packed[0]} is a compressed file; g2lstm analyze reads run or checkpoint "
            "directories (analyse the checkpoint the file was compressed from)"
        )
    found = sorted(set(kinds.values()))
    if len(found) > 1:
        groups = "; ".join(
            f"{k.upper()}: {', '.join(p for p, v in kinds.items() if v == k)}" for k in found
        )
        raise ConfigError(
            f"g2lstm analyze compares checkpoints of one kind, got language-model and "
            f"translation checkpoints ({groups}); analyse each kind in its own call"
        )
    return found[0]


def _cmd_analyze(args: argparse.Namespace) -> int:
    import torch

    from g2lstm.analysis.config import AnalysisConfig
    from g2lstm.analysis.run import analyze_models
    from g2lstm.analysis.sensitivity import SensitivityConfig
    from g2lstm.config_checks import check_int
    from g2lstm.safe_files import check_output_dir
    from g2lstm.tasks import EvalDataOptions, get_task

    if args.threads:
        torch.set_num_threads(args.threads)
    for name in (
        "batch_size",
        "bptt",
        "max_batches",
        "draws",
        "sensitivity_batches",
        "limit",
        "beam",
        "eval_tokens",
    ):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
    if args.layer is not None and args.layer < 0:
        raise ConfigError("--layer must be >= 0")
    check_int("--seed", args.seed, 0, 2**64 - 1)  # what torch.manual_seed accepts
    kind = analysis_kind(args.checkpoints)
    check_output_dir(args.out, "-o")  # before loading models and recording gates
    task = get_task(kind)
    runs = [task.load(c, device=args.device) for c in args.checkpoints]
    labels = _labels([run.cell for run in runs], args.names, len(runs))
    options = EvalDataOptions(
        data=args.data,
        data_dir=args.data_dir,
        split=args.split,
        batch_size=args.batch_size,
        bptt=args.bptt,
        max_batches=args.max_batches,
        eval_tokens=args.eval_tokens,
        limit=args.limit,
        beam=args.beam,
        input_format=args.input_format,
        layer=args.layer,
        sentences=args.sentences,
        hard_gates=not args.no_hard_gates,
        device=args.device,
    )
    inputs = task.eval_data(runs, options, labels)
    if args.eval_temperature:
        from g2lstm.nn import with_gate_options

        inputs.models = {
            k: with_gate_options(m, eval_temperature=args.eval_temperature)
            for k, m in inputs.models.items()
        }
        inputs.what += f"; soft gates: eval temperature {args.eval_temperature}"
    sens = None
    if not args.no_sensitivity:
        sens = SensitivityConfig(tuple(args.sigmas), args.draws, args.seed)
    config = AnalysisConfig(
        seed=args.seed,
        max_batches=args.max_batches,
        layer=inputs.layer,
        sensitivity=sens,
        sensitivity_batches=args.sensitivity_batches,
        summary_layer=inputs.summary_layer,
    )
    print(
        f"g2lstm analyze: {kind.upper()} {', '.join(inputs.models)} on {inputs.what} -> {args.out}",
        flush=True,
    )
    for note in inputs.notes:
        print(f"note: {note}", flush=True)
    result = analyze_models(
        inputs.models,
        inputs.batches,
        inputs.forward,
        args.out,
        evaluate_fn=None if args.no_hard_gates else inputs.evaluate,
        metric=inputs.metric,
        higher_is_better=inputs.higher_is_better,
        tokens_fn=inputs.tokens,
        itos=inputs.itos,
        sentences=inputs.sentences if inputs.encode is not None else (),
        encode_fn=inputs.encode,
        config=config,
        gate_data=inputs.what,
        metric_data=inputs.metric_what,
    )
    print(f"wrote {result.report}")
    return 0
