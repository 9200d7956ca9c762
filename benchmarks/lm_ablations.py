#!/usr/bin/env python
"""PTB ablations of issue 19 (noise probability, temperature, output-gate noise): train the
sweep runs two at a time, for ``g2lstm reproduce --ablations --reuse`` to adopt.

The runs are exactly those ``g2lstm reproduce --scale cpu --ablations`` declares
(:func:`g2lstm.reproduce.ablations.sweep_runs`): ``g2lstm lm train --preset small --cell g2
--seed K --data ptb --no-progress --set KEY=VALUE...`` into ``OUT/<variant>-seed<k>/``, with
one thread each, ``--jobs`` at a time (the reproduction itself trains one run at a time). A
finished run is skipped and an interrupted one resumed, so the script can be stopped and
restarted. ``--epochs E`` trains the variants at the reduced budget; the three baselines at
that budget are the full-budget runs under ``--full-runs`` cut to their first E epochs
(``g2lstm lm truncate``: the first E epochs of a longer run are the E-epoch run), from their
kept checkpoints or from copies under ``--checkpoints-from DIR/<cell>-seed<k>/``; a baseline
whose epoch-E checkpoint is not kept is trained. Check the budget first with
``--check-budget E``, which reads the full-budget runs (their ``metrics.jsonl`` and
``results.json``) and prints the ranking check the reproduction applies (same order of the
cells, at least half of each gap between neighbouring cells kept;
:mod:`g2lstm.reproduce.budget`); exit status 1 when it does not pass.

    G2LSTM_DATA=../shared/data python benchmarks/lm_ablations.py --out runs/ablate-ptb-small
    python benchmarks/lm_ablations.py --check-budget 6 --full-runs runs/bench-ptb-small
    python benchmarks/lm_ablations.py --out runs/ablate-ptb-small --dry-run   # the commands
    python benchmarks/lm_ablations.py --summarize runs/ablate-ptb-small/summary
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from g2lstm.errors import DataError
from g2lstm.lm.truncate import truncate_run
from g2lstm.reproduce.ablation_collect import collect_ablations
from g2lstm.reproduce.ablation_report import write_ablations
from g2lstm.reproduce.ablation_verdicts import EQUIVALENCE_RULE, ablation_claims
from g2lstm.reproduce.ablations import sweep_runs
from g2lstm.reproduce.budget import ranking_check, records_from_runs, smallest_budget
from g2lstm.reproduce.document import Document
from g2lstm.reproduce.paper import CELLS
from g2lstm.reproduce.report import verdict_section
from g2lstm.reproduce.verdicts import RULE
from g2lstm.train import atomic_write_json, atomic_write_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_ptb import add_record_args, probe_one, run_one, run_record, write_record


def set_args(overrides: tuple[tuple[str, object], ...]) -> tuple[str, ...]:
    """``--set KEY=VALUE`` for each override (values as JSON, which ``--set`` reads as YAML)."""
    out: list[str] = []
    for key, value in overrides:
        out += ["--set", f"{key}={json.dumps(list(value) if isinstance(value, tuple) else value)}"]
    return tuple(out)


def cut_baseline(out: Path, name: str, cell: str, seed: int, args: argparse.Namespace) -> bool:
    """``OUT/<name>-seed<k>`` as the full-budget run of ``cell`` cut to ``--epochs`` (False:
    no full run, or its epoch checkpoint is not kept: train it instead)."""
    full, run = Path(args.full_runs) / f"{cell}-seed{seed}", out / f"{name}-seed{seed}"
    if run.exists() or not (full / "config.yaml").is_file():
        return False  # a cut or training already began there: run_one finishes or reads it
    copies = Path(args.checkpoints_from) / full.name if args.checkpoints_from else None
    dirs = [copies] if copies is not None and copies.is_dir() else []
    try:
        truncate_run(full, args.epochs, run, checkpoint_dirs=dirs, threads=1)
    except DataError as exc:
        print(f"{run}: not cut from {full} ({exc}); training it", flush=True)
        return False
    print(f"{run}: {full} cut to {args.epochs} epochs", flush=True)
    return True


def check_budget(full_runs: Path, epochs: int) -> int:
    folders = sorted(p for p in full_runs.iterdir() if p.is_dir())
    records = records_from_runs(folders)
    check = ranking_check(records, epochs)
    print(check.summary())
    max_epochs = max((len(r.valid_curve) for r in records), default=0)
    smallest = smallest_budget(records, max_epochs)
    print(f"smallest budget that passes (up to {max_epochs} epochs): {smallest}")
    return 0 if check.passed else 1


def record_markers(path: Path) -> list[dict]:
    """The probed runs of a benchmark record as the ``lm-probe`` markers the reproduction's
    collector reads (the paper's cells with no variant; the curve inline)."""
    entries = json.loads(path.read_text(encoding="utf-8"))["runs"] if path.is_file() else []
    out = []
    for e in entries:
        if e.get("probe") is None:
            continue
        key = e["run"].removesuffix(f"-seed{e['seed']}")
        out.append(
            {
                "kind": "lm-probe",
                "id": f"lm-probe-{key}-s{e['seed']}",
                "cell": e["cell"],
                "seed": e["seed"],
                "variant": None if key in CELLS else key,
                "result": {**e["probe"], "curve": e["curve"]},
            }
        )
    return out


def summarize(folder: Path, records: list[Path], epochs: int | None = None) -> int:
    """The ablation part of the report from the records alone (module docstring); with
    ``epochs``, claims 7-9 are judged on the runs of that reduced budget."""
    markers = [m for path in records for m in record_markers(path)]
    numbers = {"ablations": collect_ablations(markers)}
    if numbers["ablations"] and epochs is not None:
        numbers["ablations"]["budget"]["epochs"] = epochs
    verdicts = ablation_claims(numbers)
    doc = Document("PTB ablations from the benchmark records")
    doc.p("Records: " + ", ".join(f"`{p}`" for p in records) + f"; {len(markers)} probed runs.")
    verdict_section(doc, verdicts)
    doc.p(RULE)
    doc.p(EQUIVALENCE_RULE)
    folder.mkdir(parents=True, exist_ok=True)
    write_ablations(doc, numbers, folder / "figures")
    atomic_write_text(folder / "ablations.md", doc.markdown(folder))
    atomic_write_json(folder / "verdicts.json", [v.to_dict() for v in verdicts])
    for v in verdicts:
        print(f"{v.status}: {v.claim} ({v.source})")
    print(f"wrote {folder / 'ablations.md'}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/ablate-ptb-small", help="benchmark directory")
    p.add_argument("--data", default="ptb", help="dataset name or folder (default: ptb)")
    p.add_argument("--preset", default="small")
    p.add_argument("--seeds", type=int, default=2, help="seeds per variant (default 2)")
    p.add_argument("--epochs", type=int, help="reduced budget (default: the preset's)")
    p.add_argument("--jobs", type=int, default=2, help="trainings at a time (1 thread each)")
    p.add_argument("--dry-run", action="store_true", help="print the runs and exit")
    p.add_argument("--check-budget", type=int, metavar="E", help="ranking check of E epochs")
    p.add_argument("--full-runs", default="runs/bench-ptb-small", help="full-budget run folders")
    p.add_argument(
        "--checkpoints-from",
        metavar="DIR",
        help="copies of the full runs' checkpoints, DIR/<cell>-seed<k>/step-N (with --epochs)",
    )
    add_record_args(p, "benchmarks/results/lm_ablations_ptb.json")
    p.add_argument("--cells-record", default="benchmarks/results/lm_ptb.json")
    p.add_argument("--summarize", metavar="DIR", help="write the ablation part from the records")
    args = p.parse_args()
    if args.summarize:
        records = [Path(args.cells_record), Path(args.results)]
        return summarize(Path(args.summarize), records, args.epochs)
    if args.check_budget is not None:
        return check_budget(Path(args.full_runs), args.check_budget)
    out = Path(args.out)
    jobs, baselines = [], []
    for name, cell, seed, overrides in sweep_runs(args.seeds, args.epochs):
        job = (name if args.epochs is None else f"{name}-e{args.epochs}", cell, seed, overrides)
        if args.epochs is not None and name in CELLS:
            baselines.append(job)  # cut from the full-budget run where it can be
        else:
            jobs.append(job)
    if args.dry_run:
        for name, cell, seed, _ in baselines:
            print(
                f"{out / f'{name}-seed{seed}'}: {Path(args.full_runs) / f'{cell}-seed{seed}'} "
                f"cut to {args.epochs} epochs (trained if that epoch's checkpoint is not kept)"
            )
        for name, cell, seed, overrides in jobs:
            extra = " ".join(set_args(overrides))
            print(f"{out / f'{name}-seed{seed}'}: --cell {cell} --seed {seed} {extra}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for baseline in baselines:  # one not cut is trained with the variants
        cut_baseline(out, *baseline[:3], args)
    jobs = baselines + jobs  # a cut run is read back, probed and recorded like the others
    command = shlex.join(["python", *sys.argv])

    def one(name: str, cell: str, seed: int, overrides: tuple[tuple[str, object], ...]) -> dict:
        result = run_one(out, cell, seed, args, name=name, extra=set_args(overrides))
        run = out / f"{name}-seed{seed}"
        if not args.no_probe:
            probe_one(run, args)
        write_record(args.results, [run_record(run, cell, seed, dict(overrides))], command)
        return result

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(one, *job) for job in jobs]
        for (name, _, seed, _), future in zip(jobs, futures):
            r = future.result()
            print(f"{name} seed {seed}: valid {r['valid_ppl']:.2f} test {r['test_ppl']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
