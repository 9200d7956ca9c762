#!/usr/bin/env python
"""PTB ``small`` preset: lstm vs g2 vs sharpened, 3 seeds each; mean and std of the results.

Runs ``g2lstm lm train`` for every (cell, seed), ``--jobs`` at a time with one thread each
(default 2, for a 2-core machine), into ``OUT/<cell>-seed<k>/``. A finished run (with
``results.json``) is skipped, an interrupted one is resumed with ``--resume``, so the script
can be stopped and restarted at any time. At the end it prints a Markdown table (mean ± std
of valid/test perplexity, wall and CPU time, training tokens/s, G2/LSTM throughput ratio) and writes
it with the raw numbers to ``OUT/summary.json`` and ``OUT/summary.md``.

Each finished run is then *probed* (one thread, in its own process) with the reproduction's
``lm-probe`` (:func:`g2lstm.reproduce.steps_probe.probe_run`: soft/hard gates with and
without the cache pointer, clean training perplexity, near-0/1 fractions, the compression
deltas at the paper's settings) into ``OUT/<run>.probe.json``, with what they were measured
on; ``g2lstm reproduce --reuse OUT`` adopts those numbers for the run's own probe step when
weights, data and settings are the same (:mod:`g2lstm.reproduce.probe_file`) instead of
measuring again. ``--no-probe`` skips it. The
machine-readable record, ``--results`` (default ``benchmarks/results/lm_ptb.json``), is
rewritten after every finished run: per run its result, its per-epoch curve and its probe
numbers, so the measurements outlive the run folders (which a change of machine loses);
the summary table takes a run whose folder is gone from it.

    G2LSTM_DATA=../shared/data python benchmarks/lm_ptb.py --out runs/bench-ptb-small
    G2LSTM_DATA=../shared/data python benchmarks/lm_ptb.py --out runs/bench-ptb-small \
        --cells g2 --seeds 3 --jobs 1          # one cell and seed (e.g. one per shell)
    python benchmarks/lm_ptb.py --out runs/bench-ptb-small --summarize-only
    G2LSTM_DATA=../shared/data python benchmarks/lm_ptb.py --probe-run runs/bench-ptb-small/g2-seed1
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from g2lstm.lm import preset_config
from g2lstm.nn.fast.autotune import cpu_model
from g2lstm.reproduce.ablation_collect import epoch_rows
from g2lstm.reproduce.probe_file import probe_file
from g2lstm.reproduce.scales import get_scale
from g2lstm.reproduce.steps_probe import probe_run
from g2lstm.train import atomic_write_json, read_result

CELLS = ("lstm", "g2", "sharpened")


def run_one(
    out: Path,
    cell: str,
    seed: int,
    args: argparse.Namespace,
    *,
    name: str | None = None,
    extra: tuple[str, ...] = (),
) -> dict:
    """Train (or resume, or read the result of) ``OUT/<name or cell>-seed<seed>``, with one
    thread; ``extra``: more ``g2lstm lm train`` arguments (``--set key=value``). Every
    epoch's checkpoint is kept, so that ``g2lstm lm truncate`` can cut the run to a shorter
    budget later (``benchmarks/lm_ablations.py --epochs``)."""
    run = out / f"{name or cell}-seed{seed}"
    if (done := _result(run)) is not None:
        return done
    t = preset_config(args.preset).train
    keep = ("--set", f"train.keep_last={t.epochs + t.finetune_epochs}")
    cmd = [
        sys.executable,
        "-m",
        "g2lstm.cli",
        "lm",
        "train",
        "--preset",
        args.preset,
        "--cell",
        cell,
        "--seed",
        str(seed),
        "--data",
        args.data,
        "--out",
        str(run),
        "--threads",
        "1",
        "--no-progress",
        *keep,
        *extra,
    ]
    if (run / "checkpoints" / "last.json").is_file():
        cmd = [
            sys.executable,
            "-m",
            "g2lstm.cli",
            "lm",
            "train",
            "--out",
            str(run),
            "--resume",
            "--threads",
            "1",
            "--no-progress",
            *keep,
        ]
    code, log_path = _logged(run, cmd)
    done = _result(run)
    if code != 0 or done is None:
        raise SystemExit(f"{run}: training failed (exit {code}); see {log_path}")
    return done


def _logged(run: Path, cmd: list[str]) -> tuple[int, Path]:
    """Run ``cmd`` with one thread, appending its output to ``OUT/<run>.train.log`` (beside
    the run, not in it: ``lm train`` refuses a new run's folder that holds other files)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log_path = run.parent / f"{run.name}.train.log"
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}  # {time.ctime()}\n")
        log.flush()
        proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc.returncode, log_path


def probe_one(run: Path, args: argparse.Namespace) -> None:
    """Probe the finished ``run`` (one thread, in a child process) unless
    ``OUT/<run>.probe.json`` is there already."""
    path = probe_file(run)
    if not path.is_file():
        cmd = [sys.executable, str(Path(__file__).resolve()), "--probe-run", str(run)]
        code, log_path = _logged(run, [*cmd, "--data", args.data])
        if code != 0 or not path.is_file():
            raise SystemExit(f"{run}: probe failed (exit {code}); see {log_path}")


def write_probe(run: Path, data: str) -> Path:
    """Probe ``run`` on ``data`` as the ``cpu`` reproduction does and keep its numbers beside
    it, where ``g2lstm reproduce --reuse`` finds them (:mod:`g2lstm.reproduce.probe_file`)."""
    numbers = probe_run(  # the sensitivity draws seeded by the run's seed, as in the plan
        run,
        data,
        analysis_batches=get_scale("cpu").analysis_batches,
        metrics=str(run / "metrics.jsonl"),
    )
    return atomic_write_json(probe_file(run), {**numbers, "metrics": None})


def run_record(run: Path, cell: str, seed: int, overrides: dict | None = None) -> dict | None:
    """One run of the machine-readable record: its result, per-epoch curve and probe numbers
    (None until it has finished)."""
    result = _result(run)
    if result is None:
        return None
    keys = ("stage", "epoch", "train_ppl", "valid_ppl")
    curve = [{k: r.get(k) for k in keys} for r in epoch_rows(str(run / "metrics.jsonl"))]
    probe = probe_file(run)
    return {
        "run": run.name,
        "cell": cell,
        "seed": seed,
        "overrides": overrides or {},
        "result": result,
        "curve": curve,
        "probe": json.loads(probe.read_text(encoding="utf-8")) if probe.is_file() else None,
    }


def add_record_args(p: argparse.ArgumentParser, results: str) -> None:
    """``--no-probe`` and ``--results`` (default ``results``) of the benchmark scripts."""
    p.add_argument("--no-probe", action="store_true", help="do not probe the finished runs")
    p.add_argument(
        "--results",
        default=results,
        help="machine-readable record of the finished runs ('' for none)",
    )


_RECORD_LOCK = threading.Lock()


def _training(result: dict | None) -> tuple:
    """What tells one training from another in a record: its steps and training time."""
    return (result or {}).get("steps"), (result or {}).get("train_time_s")


def write_record(path: str | None, runs: list[dict | None], command: str) -> None:
    """Merge the finished ``runs`` into the record at ``path`` (nothing when ``path`` is
    empty) and rewrite it: a run finished here replaces its entry, an entry whose run is not
    finished here (its folder lost with a machine, or not yet retrained) is kept as it was."""
    if not path:
        return
    with _RECORD_LOCK:  # the trainings' threads finish independently
        old = json.loads(Path(path).read_text(encoding="utf-8")) if Path(path).is_file() else {}
        entries = {e["run"]: e for e in old.get("runs", [])}
        for run in runs:
            if run is None:
                continue
            before = entries.get(run["run"], {})
            # the same training (its steps and training time): keep who ran it
            same = _training(before.get("result")) == _training(run["result"])
            stamp = {k: before[k] for k in ("command", "cpu")} if same else {}
            entries[run["run"]] = {**run, "command": command, "cpu": cpu_model(), **stamp}
        atomic_write_json(path, {"runs": [entries[k] for k in sorted(entries)]}, indent=1)


def _result(run: Path) -> dict | None:
    """The run's ``results.json`` (this version's layout or an earlier one's), flat."""
    result = read_result(run)
    return None if result is None else result.flat()


def _ms(values: list[float], fmt: str = ".1f") -> str:
    if not values:
        return "-"
    mean = f"{statistics.mean(values):{fmt}}"
    if len(values) == 1:
        return mean  # one seed: no spread to report (a "± 0.0" would claim one)
    return f"{mean} ± {statistics.stdev(values):{fmt}}"


def recorded_results(path: str | None) -> dict[str, dict]:
    """``run name -> result`` of the record at ``path`` (empty without one)."""
    if not path or not Path(path).is_file():
        return {}
    runs = json.loads(Path(path).read_text(encoding="utf-8")).get("runs", [])
    return {e["run"]: e["result"] for e in runs}


def summarize(out: Path, seeds: list[int], recorded: dict[str, dict] | None = None) -> str:
    """The Markdown table of the runs in ``out``; a run whose folder is not there is taken
    from ``recorded`` (the record's results), so the table outlives the run folders."""
    rows, raw = [], {}
    for cell in CELLS:
        res = []
        for s in seeds:
            run = out / f"{cell}-seed{s}"
            r = _result(run) or (recorded or {}).get(run.name)
            if r is not None:
                res.append(r)
        raw[cell] = res
        rows.append(
            f"| {cell} | {len(res)} | {_ms([r['valid_ppl'] for r in res])} | "
            f"{_ms([r['test_ppl'] for r in res])} | {_ms([r['wall_time_s'] / 60 for r in res])} | "
            f"{_ms([r['cpu_time_s'] / 60 for r in res if r.get('cpu_time_s') is not None])} | "
            f"{_ms([r['tokens_per_s'] for r in res], '.0f')} |"
        )
    tput = {c: statistics.mean([r["tokens_per_s"] for r in raw[c]]) for c in CELLS if raw[c]}
    ratio = f"{tput['g2'] / tput['lstm']:.2f}" if "g2" in tput and "lstm" in tput else "-"
    table = "\n".join(
        [
            "| cell | runs | valid ppl | test ppl | wall time (min) | CPU time (min) | "
            "train tokens/s |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"G2 / LSTM training throughput: {ratio}",
        ]
    )
    (out / "summary.md").write_text(table + "\n", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    return table


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/bench-ptb-small", help="benchmark directory")
    p.add_argument("--data", default="ptb", help="dataset name or folder (default: ptb)")
    p.add_argument("--preset", default="small")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument(
        "--cells",
        nargs="+",
        choices=CELLS,
        default=list(CELLS),
        help="cells to train (default: all three); one shell per cell list with --jobs 1 runs "
        "them side by side",
    )
    p.add_argument("--jobs", type=int, default=2, help="trainings at a time (1 thread each)")
    p.add_argument("--summarize-only", action="store_true")
    add_record_args(p, "benchmarks/results/lm_ptb.json")
    p.add_argument("--probe-run", metavar="RUN", help="probe this finished run and exit")
    args = p.parse_args()
    if args.probe_run:
        print(write_probe(Path(args.probe_run), args.data))
        return 0
    out = Path(args.out)
    jobs = [(cell, seed) for seed in args.seeds for cell in CELLS]
    command = shlex.join(["python", *sys.argv])
    out.mkdir(parents=True, exist_ok=True)
    if not args.summarize_only:

        def one(cell: str, seed: int) -> None:
            run_one(out, cell, seed, args)
            run = out / f"{cell}-seed{seed}"
            if not args.no_probe:
                probe_one(run, args)
            write_record(args.results, [run_record(run, cell, seed)], command)

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            chosen = [pool.submit(one, c, s) for c, s in jobs if c in args.cells]
            for future in chosen:
                future.result()
    runs = [run_record(out / f"{c}-seed{s}", c, s) for c, s in jobs]  # those finished earlier
    write_record(args.results, runs, command)
    print(summarize(out, args.seeds, recorded_results(args.results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
