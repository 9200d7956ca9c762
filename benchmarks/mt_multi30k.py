"""Multi30k De->En benchmark of the MT model: ``lstm`` vs ``sharpened`` vs ``g2``.

Three sub-commands (run from the repository root, with the project's Python)::

    # 1. speed probe: time N updates of a preset per cell, extrapolate an epoch
    python benchmarks/mt_multi30k.py speed --updates 60 --cells lstm g2

    # 2. the benchmark: prepare once, then train and evaluate every (cell, seed), seed by
    #    seed (seed 1 of every cell first), one run at a time; the ``multi30k`` preset's recipe
    #    (10 epochs of ~1000-token batches, Adam 2e-3 halved every epoch after epoch 6)
    python benchmarks/mt_multi30k.py --out runs/mt_multi30k run --seeds 1 2 3 --threads 1

    # 2b. a longer budget without repeating the first epochs: continue copies of finished
    #     shorter runs (exact resume: the same as training the longer budget from scratch)
    python benchmarks/mt_multi30k.py --out runs/mt_multi30k_16ep run --preset iwslt \
        --epochs 16 --continue-from runs/mt_multi30k_8ep

    # 3. the table of what has finished so far (also printed at the end of ``run``), and the
    #    state of the runs that have not
    python benchmarks/mt_multi30k.py --out runs/mt_multi30k report

``run`` only calls the public command line (``g2lstm mt prepare|train|eval``), printing each
command before running it, so every number can be reproduced by hand. Runs are resumable: a
finished (cell, seed) is skipped, an interrupted one continues from its last checkpoint
(``--resume``, exact). ``run`` and ``report`` write every finished run's numbers to
``--results`` (default ``benchmarks/results/mt_multi30k.json``: a list of objects with
``cell``, ``seed``, ``recipe``, ``epochs``, ``bleu_tok``, ``sacrebleu``, ``minutes``, ...)
and the table to ``OUT/summary.md``. The data is found through ``--data-dir``,
``$G2LSTM_DATA`` or ``../shared/data``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from g2lstm.train import RunLock, read_result

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "mt_multi30k.json"
ORDER = {"lstm": 0, "sharpened": 1, "g2": 2}  # the paper's row order


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
    if (prep / "prepare.json").is_file() and (prep / "vocab.json").is_file():
        print(f"{prep}: prepared, reused", flush=True)
        return prep
    _g2lstm("mt", "prepare", "--dataset", "multi30k", "--data-dir", data_dir, "--out", str(prep))
    return prep


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _bench_file(run: Path) -> Path:
    """The benchmark's own record of a run (recipe, wall time), beside the run folder: `mt
    train` refuses to start in a folder that holds anything but a run. (Runs of earlier
    versions kept it inside, as ``RUN/bench.json``; the report still reads those.)"""
    return run.parent / f"{run.name}.bench.json"


def _result(run: Path) -> dict | None:
    """The run's result (``results.json``, or the ``result.json`` of earlier versions), flat."""
    result = read_result(run)
    return None if result is None else result.flat()


def _finished(run: Path) -> bool:
    result = _result(run)
    return bool(result) and result["finished"] and (run / "eval-test2016.json").is_file()


def _start_from(earlier: Path, run: Path) -> None:
    """Copy the finished shorter run ``earlier`` to ``run`` (its checkpoints, config, metrics
    and wall time, not its result or test scores) so that ``run`` resumes from it. Resuming is
    exact and the learning-rate schedules do not depend on the epoch budget, so this equals
    training ``run`` from scratch (same config and seed), minus the repeated epochs."""
    if not _finished(earlier):
        sys.exit(
            f"--continue-from: {earlier} is not a finished run (no results.json with a test "
            "evaluation); finish it first or drop --continue-from"
        )
    print(f"{run}: starting from {earlier}", flush=True)
    skip = shutil.ignore_patterns("result.json", "results.json", "eval-*.json", ".g2lstm.lock")
    shutil.copytree(earlier, run, ignore=skip, dirs_exist_ok=True)


def cmd_run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    prep = prepare(out, _data_dir(args.data_dir))
    budget = ["--max-minutes", str(args.max_minutes), "--threads", str(args.threads)]
    if args.epochs is not None:
        budget += ["--epochs", str(args.epochs)]
    for seed in args.seeds:
        for cell in args.cells:
            run = out / f"{cell}-seed{seed}"
            if _finished(run):
                print(f"{run}: finished, skipped", flush=True)
                continue
            bench_file = _bench_file(run)
            if run.is_dir() and not (run / "checkpoints").is_dir():
                # killed before its first checkpoint (SIGKILL, a lost machine): nothing in it
                # can be resumed, so it starts again from scratch (unless it is training now:
                # then the lock names the process)
                with RunLock(run):
                    print(f"{run}: stopped before its first checkpoint, started again", flush=True)
                shutil.rmtree(run)
                bench_file.unlink(missing_ok=True)
            if args.continue_from and not (run / "checkpoints").is_dir():
                _start_from(Path(args.continue_from) / run.name, run)
            bench = _read(bench_file) or {"recipe": args.preset, "wall_seconds": 0.0}
            if bench["recipe"] != args.preset:
                was = bench["recipe"]
                sys.exit(
                    f"{run} was trained with --preset {was}, not {args.preset}: pass "
                    f"--preset {was} or another --out"
                )
            run.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            if (run / "checkpoints").is_dir():  # interrupted earlier: continue exactly
                _g2lstm("mt", "train", "--out", str(run), "--resume", *budget)
            else:
                bench_file.write_text(json.dumps(bench) + "\n")
                _g2lstm(
                    "mt",
                    "train",
                    "--preset",
                    args.preset,
                    "--data",
                    str(prep),
                    "--out",
                    str(run),
                    "--cell",
                    cell,
                    "--seed",
                    str(seed),
                    *budget,
                )
            bench["wall_seconds"] += time.perf_counter() - start
            bench_file.write_text(json.dumps(bench) + "\n")
            _g2lstm("mt", "eval", str(run), "--split", "test2016", "--threads", str(args.threads))
            cmd_report(args)  # the results file follows every finished run
    cmd_report(args)


def _epoch_minutes(run: Path) -> list[float]:
    """Training minutes of each finished epoch (from the end-of-epoch validation rows)."""
    try:
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    except FileNotFoundError:
        return []
    ends: dict[int, float] = {}
    for r in rows:
        # the first validation row with ``epoch == k`` closes epoch k (later ones with the
        # same count are mid-epoch validations or the checkpoint of an interruption)
        if r["kind"] == "valid" and r["epoch"] >= 1:
            ends.setdefault(r["epoch"], r["train_seconds"])
    marks = [0.0] + [ends[e] for e in sorted(ends)]
    return [(b - a) / 60 for a, b in itertools.pairwise(marks)]


def _row(run: Path) -> dict | None:
    result, test = _result(run), _read(run / "eval-test2016.json")
    if not result or not test or not result["finished"]:
        return None
    bench = _read(_bench_file(run)) or _read(run / "bench.json") or {}
    wall = bench.get("wall_seconds") or _read(run / "wall.json") or None
    if isinstance(wall, dict):  # runs of the earlier script: wall.json
        wall = wall["wall_seconds"]
    cell, seed = run.name.rsplit("-seed", 1)
    per_epoch = _epoch_minutes(run)
    return {
        "cell": cell,
        "seed": int(seed),
        "recipe": bench.get("recipe", "iwslt"),
        "epochs": result["epochs"],
        "updates": result["steps"],
        "minutes": result["train_time_s"] / 60,
        "wall_minutes": wall and wall / 60,
        "minutes_per_epoch": per_epoch and statistics.mean(per_epoch),
        "best_valid_ppl": math.exp(result["best_valid_loss"]),
        "bleu_tok": test["tok_bleu"],
        "sacrebleu": test["detok_bleu"],
        "bleu_tok_signature": test["tok_signature"],
        "sacrebleu_signature": test["detok_signature"],
        "eval_temperature": test.get("eval_temperature", "divide"),
        "decode_sentences_per_s": test["sentences_per_second"],
        "run": str(run),
    }


def _state(run: Path) -> str:
    """``finished``, ``interrupted after epoch k`` or ``not started``."""
    if _finished(run):
        return "finished"
    if not (run / "checkpoints").is_dir():
        return "not started"
    done = len(_epoch_minutes(run))
    return f"in progress or interrupted: {done} epoch(s) done"


def _mean_sd(values: list[float]) -> str:
    sd = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.2f}{sd}"


def cmd_report(args: argparse.Namespace) -> None:
    out = Path(args.out)

    def key(run: Path) -> tuple[int, int, str]:
        cell, seed = run.name.rsplit("-seed", 1)
        return ORDER.get(cell, 3), int(seed), run.name

    runs = sorted((p for p in out.glob("*-seed*") if p.is_dir()), key=key)
    rows = [r for run in runs if (r := _row(run))]
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(rows, indent=1) + "\n")
    lines = [
        "| cell | seed | recipe | epochs | updates | train min | min/epoch | wall min | "
        "best valid ppl | test2016 tok BLEU | test2016 sacreBLEU | sent/s (beam 5) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        wall = f"{r['wall_minutes']:.1f}" if r["wall_minutes"] else "?"
        per = f"{r['minutes_per_epoch']:.1f}" if r["minutes_per_epoch"] else "?"
        lines.append(
            f"| {r['cell']} | {r['seed']} | {r['recipe']} | {r['epochs']} | {r['updates']} | "
            f"{r['minutes']:.1f} | {per} | {wall} | {r['best_valid_ppl']:.2f} | "
            f"{r['bleu_tok']:.2f} | {r['sacrebleu']:.2f} | {r['decode_sentences_per_s']:.1f} |"
        )
    for cell in dict.fromkeys(r["cell"] for r in rows):
        mine = [r for r in rows if r["cell"] == cell]
        n = f"{len(mine)} seed" + ("s" if len(mine) != 1 else "")
        lines.append(
            f"| **{cell} mean** | {n} | | | | {statistics.mean(r['minutes'] for r in mine):.1f} "
            f"| | | | {_mean_sd([r['bleu_tok'] for r in mine])} | "
            f"{_mean_sd([r['sacrebleu'] for r in mine])} | |"
        )
    by = {(r["cell"], r["seed"]): r for r in rows}
    for cell in ("sharpened", "g2"):
        seeds = sorted(s for c, s in by if c == cell and ("lstm", s) in by)
        if seeds:
            tok = [by[cell, s]["bleu_tok"] - by["lstm", s]["bleu_tok"] for s in seeds]
            sac = [by[cell, s]["sacrebleu"] - by["lstm", s]["sacrebleu"] for s in seeds]
            lines.append(
                f"\n{cell} - lstm, seed-paired (seeds {', '.join(map(str, seeds))}): tokenised "
                f"BLEU {', '.join(f'{d:+.2f}' for d in tok)} (mean {_mean_sd(tok)}), "
                f"sacreBLEU mean {_mean_sd(sac)}"
            )
    if rows:
        lines.append(
            f"\ntokenised BLEU: `{rows[0]['bleu_tok_signature']}`; sacreBLEU: "
            f"`{rows[0]['sacrebleu_signature']}`"
        )
    pending = [f"- {run.name}: {_state(run)}" for run in runs if not _finished(run)]
    if pending:
        lines += ["", "Not finished:", *pending]
    text = "\n".join(lines) if rows or pending else "no runs yet"
    print(text, flush=True)
    if out.is_dir():
        (out / "summary.md").write_text(text + "\n")


def cmd_speed(args: argparse.Namespace) -> None:
    """Time ``--updates`` training updates of ``--preset`` (after 3 warm-up updates)."""
    import torch

    from g2lstm.mt.config import load_config
    from g2lstm.mt.prepare import load_prepared
    from g2lstm.mt.steps import MTTrainer
    from g2lstm.mt.translate import Translator, evaluate_split
    from g2lstm.train import NonFiniteGuard

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    prep_dir = prepare(out, _data_dir(args.data_dir))
    prepared = load_prepared(prep_dir)
    for cell in args.cells:
        cfg = load_config(
            args.preset,
            overrides=[
                f"train.data={prep_dir}",
                f"model.cell={cell}",
                f"train.threads={args.threads}",
            ],
        )
        tr = MTTrainer(cfg, prepared, torch.device("cpu"))
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
        translator = Translator(
            tr.model,
            prepared.src_vocab,
            prepared.tgt_vocab,
            prepared.config,
            cfg.decode,
            prepared.bpe(),
        )
        dec = evaluate_split(translator, "test", prepared, limit=args.decode_sentences)
        record = {
            "cell": cell,
            "threads": args.threads,
            "updates": args.updates,
            "batches_per_epoch": len(batches),
            "sec_per_update_wall": per_update,
            "sec_per_update_cpu": cpu / args.updates,
            "train_sentences_per_s": sents / wall,
            "train_target_tokens_per_s": toks / wall,
            "epoch_minutes_extrapolated": epoch_s / 60,
            "epochs_in_60_min": 3600 / epoch_s,
            "decode_sentences_per_s_beam5": dec.output.sentences_per_second,
        }
        print(json.dumps(record), flush=True)
        with open(out / "speed.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/mt_multi30k", help="benchmark folder")
    parser.add_argument("--data-dir", help="folder holding multi30k/ (default: $G2LSTM_DATA)")
    parser.add_argument(
        "--results",
        default=str(RESULTS),
        help="JSON list of the finished runs' numbers (written by run and "
        "report; default benchmarks/results/mt_multi30k.json)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and evaluate every (cell, seed)")
    run.add_argument("--preset", default="multi30k", help="mt train --preset (the recipe)")
    run.add_argument("--cells", nargs="+", default=["lstm", "sharpened", "g2"])
    run.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    run.add_argument("--epochs", type=int, help="training epochs per run (default: the preset's)")
    run.add_argument(
        "--max-minutes",
        type=float,
        default=0.0,
        help="optional time cap per run (0: none, so every cell gets the same "
        "number of updates whatever the machine's load)",
    )
    run.add_argument("--threads", type=int, default=1, help="torch threads per run")
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
    speed.add_argument("--preset", default="multi30k")
    speed.add_argument("--cells", nargs="+", default=["lstm", "g2"])
    speed.add_argument("--updates", type=int, default=60)
    speed.add_argument("--threads", type=int, default=1)
    speed.add_argument("--decode-sentences", type=int, default=100)
    speed.set_defaults(func=cmd_speed)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
