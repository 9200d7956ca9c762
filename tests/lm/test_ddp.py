"""Two CPU processes (torchrun, gloo) stay in lockstep and match one process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from safetensors.torch import save_file
    from g2lstm.lm import preset_config
    from g2lstm.lm.trainer import LMTrainer

    data, out = sys.argv[1], sys.argv[2]
    cfg = preset_config("tiny", {
        "data": data, "model.cell": "lstm", "model.dropout": 0.0, "model.dropouth": 0.0,
        "model.dropouti": 0.0, "model.dropoute": 0.0, "model.wdrop": 0.0,
        "train.batch_size": 4, "train.epochs": 2, "train.threads": 1, "train.progress": False,
    })
    trainer = LMTrainer(cfg, out)
    result = trainer.run()
    rank = os.environ.get("RANK", "single")
    state = {k: v.detach().clone().contiguous() for k, v in trainer.module.state_dict().items()}
    save_file(state, os.path.join(out, f"weights-{rank}.safetensors"))
    print("steps", result.steps, "valid", result.valid_loss)
    """
)


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_match_one_process(
    tmp_path: Path, write_lm_corpus: Callable[..., Path]
) -> None:
    from safetensors.torch import load_file

    data = write_lm_corpus(tmp_path / "data")
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    single = subprocess.run(
        [sys.executable, str(script), str(data), str(tmp_path / "one")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(script),
        str(data),
        str(tmp_path / "two"),
    ]
    multi = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert multi.returncode == 0, multi.stderr[-3000:]
    one = load_file(tmp_path / "one" / "weights-single.safetensors")
    r0 = load_file(tmp_path / "two" / "weights-0.safetensors")
    r1 = load_file(tmp_path / "two" / "weights-1.safetensors")
    assert one.keys() == r0.keys() == r1.keys()
    for name in one:
        assert torch.equal(r0[name], r1[name]), f"ranks diverged on {name}"
        torch.testing.assert_close(r0[name], one[name], rtol=1e-4, atol=1e-5)
    # only rank 0 wrote the run directory's checkpoints and results
    assert (tmp_path / "two" / "results.json").is_file()
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir() if p.is_dir())
