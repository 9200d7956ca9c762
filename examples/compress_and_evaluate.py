"""Compress a trained model's gate weights into a real file, then evaluate that file.

The paper's claim (Li et al. 2018, §4.3, Tables 3-5): because G2-LSTM's gates sit near 0 or 1,
they hardly move when their weights are approximated, so the gate blocks of the weight
matrices can be stored at low rank or in a few bits. This script

1. trains a small G2-LSTM language model (or takes the run you pass with ``--run``),
2. writes its input/forget-gate weights as rank-``--rank`` SVD factors and as ``--bits``-bit
   codes, each into one ``.safetensors`` file (``g2lstm compress``),
3. evaluates each file as it is on disk (``g2lstm lm eval FILE``), next to the original.

    python examples/compress_and_evaluate.py --data ptb        # a tiny model, ~1 minute
    python examples/compress_and_evaluate.py --run runs/ptb-g2 --rank 25 --bits 2

The same in a shell::

    g2lstm compress RUN --method svd --rank 8 -o g2-r8.safetensors
    g2lstm lm eval g2-r8.safetensors --split test
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

from g2lstm.cli import main as g2lstm


def run_json(*argv: str) -> dict:
    """Run ``g2lstm ARGV --json`` and return its JSON line (stderr passes through)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = g2lstm([*argv, "--json"])
    if status != 0:
        raise SystemExit(f"g2lstm {' '.join(argv)} failed with status {status}")
    return json.loads(out.getvalue().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, help="a trained `g2lstm lm train` run (default: train one)")
    p.add_argument("--data", default="ptb", help="dataset name or folder, to train on")
    p.add_argument("--out", type=Path, default=Path("runs/example-compress"))
    p.add_argument("--rank", type=int, default=8, help="SVD rank of each gate block")
    p.add_argument("--bits", type=int, default=2, help="bits per gate weight")
    args = p.parse_args(argv)
    run = args.run
    if run is None:
        run = args.out / "g2-tiny"
        if not (run / "results.json").is_file():
            status = g2lstm(
                [
                    "lm",
                    "train",
                    "--preset",
                    "tiny",
                    "--cell",
                    "g2",
                    "--data",
                    args.data,
                    "--out",
                    str(run),
                    "--threads",
                    "1",
                    "--no-progress",
                ]
            )
            if status != 0:
                raise SystemExit(f"training failed with status {status}")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [{"model": "original", **run_json("lm", "eval", str(run))}]
    settings = {"svd": ["--rank", str(args.rank)], "quant": ["--bits", str(args.bits)]}
    for method, flags in settings.items():
        file = args.out / f"{method}.safetensors"
        report = run_json(
            "compress", str(run), "--method", method, *flags, "-o", str(file), "--force"
        )
        result = run_json("lm", "eval", str(file))  # the file, as it is on disk
        rows.append(
            {
                "model": f"{method} {' '.join(flags)}",
                "bytes": report["bytes"],
                "checkpoint_weights_bytes": report["checkpoint_weights_bytes"],
                **result,
            }
        )
    print(f"\n{'model':<16} {'test ppl':>9} {'change':>8} {'file bytes':>11}")
    base = rows[0]["ppl"]
    for r in rows:
        size = f"{r['bytes']:,}" if "bytes" in r else "-"
        print(f"{r['model']:<16} {r['ppl']:9.2f} {r['ppl'] - base:+8.2f} {size:>11}")
    return rows


if __name__ == "__main__":
    main()
