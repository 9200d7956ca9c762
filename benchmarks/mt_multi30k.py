"""Multi30k De->En benchmark of the MT model: ``lstm`` vs ``g2`` vs ``sharpened``.

Three sub-commands (run from the repository root, with the project's Python)::

    # 1. speed probe: time N updates of the iwslt preset per cell, extrapolate an epoch
    python benchmarks/mt_multi30k.py speed --updates 60 --cells lstm g2

    # 2. the benchmark: prepare once, then train (8 epochs, ~40-50 min on one thread) and
    #    evaluate every (cell, seed); two at a time on a 2-core machine, e.g. one shell per seed
    python benchmarks/mt_multi30k.py --out runs/mt_multi30k run --cells lstm g2 sharpened \
        --seeds 1 2 --epochs 8 --threads 1

    # 2b. a longer budget without repeating the first 8 epochs: continue copies of the
    #     finished 8-epoch runs to 16 epochs (exact resume: the same as 16 from scratch)
    python benchmarks/mt_multi30k.py --out runs/mt_multi30k_16ep run --cells lstm g2 \
        --seeds 1 2 --epochs 16 --threads 1 --continue-from runs/mt_multi30k

    # 3. the table of what has finished so far (also printed at the end of ``run``)
    python benchmarks/mt_multi30k.py report --out runs/mt_multi30k

``run`` only calls the public command line (``g2lstm mt prepare|train|eval``), printing each
command before running it, so every number can be reproduced by hand. Runs are resumable: a
killed benchmark continues each (cell, seed) from its last checkpoint (``--resume``). The
data is found through ``--data-dir``, ``$G2LSTM_DATA`` or ``../shared/data``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _data_dir(explicit: str | None) -> str:
    for cand in (explicit, os.environ.get("G2LSTM_DATA"), str(REPO.parent / "shared" / "data")):
        if cand and (Path(cand) / "multi30k" / "tok" / "train.de").is_file():
            return cand
    sys.exit("Multi30k not found: pass --data-dir (the folder holding multi30k/)")


def _g2lstm(*args: str) -> None:
    cmd = [sys.executable, "-m", "g2lstm.cli", *args]
    print("$ g2lstm " + shlex.join(args), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def prepare(out: Path, data_dir: str) -> Path:
    prep = out / "data"
    _g2lstm("mt", "prepare", "--dataset", "multi30k", "--data-dir", data_dir, "--out", str(prep))
    return prep


def _finished(run: Path) -> bool:
    try:
        result = json.loads((run / "result.json").read_text())
    except FileNotFoundError:
        return False
    return result["stopped"] != "interrupted" and (run / "eval-test2016.json").is_file()


def _start_from(earlier: Path, run: Path) -> None:
    """Copy the finished shorter run ``earlier`` to ``run`` (its checkpoints, config, metrics
    and wall time, not its result or test scores) so that ``run`` resumes from it. Resuming is
    exact and the learning-rate schedule does not depend on the epoch budget, so this equals
    training ``run`` from scratch (same config and seed), minus the repeated epochs."""
    if not _finished(earlier):
        sys.exit(f"--continue-from: {earlier} is not a finished run (no result.json with a test "
                 "evaluation); finish it first or drop --continue-from")  # fmt: skip
    print(f"{run}: starting from {earlier}", flush=True)
    skip = shutil.ignore_patterns("result.json", "eval-*.json", ".g2lstm.lock")
    shutil.copytree(earlier, run, ignore=skip, dirs_exist_ok=True)


def cmd_run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    prep = prepare(out, _data_dir(args.data_dir))
    budget = ["--epochs", str(args.epochs), "--max-minutes", str(args.max_minutes),
              "--threads", str(args.threads)]  # fmt: skip
    for seed in args.seeds:
        for cell in args.cells:
            run = out / f"{cell}-seed{seed}"
            if _finished(run):
                print(f"{run}: finished, skipped", flush=True)
                continue
            if args.continue_from and not (run / "checkpoints").is_dir():
                _start_from(Path(args.continue_from) / run.name, run)
            wall_file = run / "wall.json"
            before = json.loads(wall_file.read_text())["wall_seconds"] if wall_file.is_file() else 0
            start = time.perf_counter()
            if (run / "checkpoints").is_dir():  # interrupted earlier: continue exactly
                _g2lstm("mt", "train", "--out", str(run), "--resume", *budget)
            else:
                _g2lstm("mt", "train", "--preset", "iwslt", "--data", str(prep), "--out", str(run),
                        "--cell", cell, "--seed", str(seed), *budget)  # fmt: skip
            _g2lstm("mt", "eval", str(run), "--split", "test2016", "--threads", str(args.threads))
            wall = before + time.perf_counter() - start
            wall_file.write_text(json.dumps({"wall_seconds": wall}) + "\n")
    cmd_report(args)


def _row(run: Path) -> dict | None:
    try:
        result = json.loads((run / "result.json").read_text())
        test = json.loads((run / "eval-test2016.json").read_text())
    except FileNotFoundError:
        return None
    wall = json.loads((run / "wall.json").read_text())["wall_seconds"] if (
        run / "wall.json").is_file() else None  # fmt: skip
    cell, seed = run.name.rsplit("-seed", 1)
    return {"cell": cell, "seed": int(seed), "epochs": result["epoch"], "updates": result["step"],
            "train_min": result["train_seconds"] / 60, "wall_min": wall and wall / 60,
            "valid_loss": result["best_valid_loss"], "tok_bleu": test["tok_bleu"],
            "detok_bleu": test["detok_bleu"], "sent_s": test["sentences_per_second"],
            "signature": test["detok_signature"]}  # fmt: skip


def cmd_report(args: argparse.Namespace) -> None:
    order = {"lstm": 0, "sharpened": 1, "g2": 2}  # the paper's row order

    def key(run: Path) -> tuple[int, str]:
        return order.get(run.name.rsplit("-seed", 1)[0], 3), run.name

    runs = sorted((p for p in Path(args.out).glob("*-seed*") if p.is_dir()), key=key)
    rows = [r for run in runs if (r := _row(run))]
    if not rows:
        print("no finished runs yet")
        return
    lines = [
        "| cell | seed | epochs | updates | train min | wall min | best valid ppl | "
        "test2016 tok BLEU | test2016 sacreBLEU | sent/s (beam 5) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        wall = f"{r['wall_min']:.1f}" if r["wall_min"] else "?"
        lines.append(
            f"| {r['cell']} | {r['seed']} | {r['epochs']} | {r['updates']} | "
            f"{r['train_min']:.1f} | {wall} | {2.718281828 ** r['valid_loss']:.2f} | "
            f"{r['tok_bleu']:.2f} | {r['detok_bleu']:.2f} | {r['sent_s']:.1f} |"
        )
    for cell in dict.fromkeys(r["cell"] for r in rows):
        tok = [r["tok_bleu"] for r in rows if r["cell"] == cell]
        detok = [r["detok_bleu"] for r in rows if r["cell"] == cell]
        sd = f" ± {statistics.stdev(tok):.2f}" if len(tok) > 1 else ""
        mean_tok, mean_detok = statistics.mean(tok), statistics.mean(detok)
        seeds = f"{len(tok)} seed" + ("s" if len(tok) != 1 else "")
        lines.append(
            f"| **{cell} mean** | {seeds} | | | | | | {mean_tok:.2f}{sd} | {mean_detok:.2f} | |"
        )
    lines.append(f"\nsacreBLEU signature: `{rows[0]['signature']}`")
    text = "\n".join(lines)
    print(text)
    (Path(args.out) / "summary.md").write_text(text + "\n")


def cmd_speed(args: argparse.Namespace) -> None:
    """Time ``--updates`` training updates of the iwslt preset (after 3 warm-up updates)."""
    import torch

    from g2lstm.mt.config import load_config
    from g2lstm.mt.prepare import load_prepared
    from g2lstm.mt.trainer import _Trainer
    from g2lstm.mt.translate import Translator, evaluate_split
    from g2lstm.train import NonFiniteGuard

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    prep_dir = prepare(out, _data_dir(args.data_dir))
    prepared = load_prepared(prep_dir)
    for cell in args.cells:
        cfg = load_config("iwslt", overrides=[f"train.data={prep_dir}", f"model.cell={cell}",
                                              f"train.threads={args.threads}"])  # fmt: skip
        tr = _Trainer(cfg, prepared, torch.device("cpu"))
        batches = tr.sampler.batches(0)
        guard = NonFiniteGuard()
        for idx in batches[:3]:
            tr.train_step(idx.tolist(), guard)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        sents = toks = 0
        for idx in batches[3 : 3 + args.updates]:
            row = tr.train_step(idx.tolist(), guard)
            sents += len(idx)
            toks += row["tokens"]
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        per_update = wall / args.updates
        epoch_s = per_update * len(batches)
        translator = Translator(tr.model, prepared.src_vocab, prepared.tgt_vocab,
                                prepared.config, cfg.decode, prepared.bpe())  # fmt: skip
        dec = evaluate_split(translator, "test", prepared, limit=args.decode_sentences)
        record = {
            "cell": cell, "threads": args.threads, "updates": args.updates,
            "batches_per_epoch": len(batches), "sec_per_update_wall": per_update,
            "sec_per_update_cpu": cpu / args.updates, "train_sentences_per_s": sents / wall,
            "train_target_tokens_per_s": toks / wall, "epoch_minutes_extrapolated": epoch_s / 60,
            "epochs_in_60_min": 3600 / epoch_s,
            "decode_sentences_per_s_beam5": dec.output.sentences_per_second,
        }  # fmt: skip
        print(json.dumps(record), flush=True)
        with open(out / "speed.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/mt_multi30k", help="benchmark folder")
    parser.add_argument("--data-dir", help="folder holding multi30k/ (default: $G2LSTM_DATA)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and evaluate every (cell, seed)")
    run.add_argument("--cells", nargs="+", default=["lstm", "g2", "sharpened"])
    run.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    run.add_argument("--epochs", type=int, default=8, help="training epochs per run")
    run.add_argument(
        "--max-minutes",
        type=float,
        default=0.0,
        help="optional time cap per run (0: none, so every cell gets the same "
        "number of updates whatever the machine's load)",
    )
    run.add_argument("--threads", type=int, default=1, help="threads per run (two at a time)")
    run.add_argument(
        "--continue-from",
        metavar="DIR",
        help="start each (cell, seed) from the finished run of the same name in DIR (an "
        "earlier benchmark with fewer --epochs) instead of from scratch: same result, "
        "since resuming is exact",
    )
    run.set_defaults(func=cmd_run)
    sub.add_parser("report", help="table of finished runs").set_defaults(func=cmd_report)
    speed = sub.add_parser("speed", help="time a few updates per cell and extrapolate")
    speed.add_argument("--cells", nargs="+", default=["lstm", "g2"])
    speed.add_argument("--updates", type=int, default=60)
    speed.add_argument("--threads", type=int, default=1)
    speed.add_argument("--decode-sentences", type=int, default=100)
    speed.set_defaults(func=cmd_speed)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
