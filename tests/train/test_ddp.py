"""Two gloo processes on CPU: all_reduce, broadcast, and DDP training equal to one process."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import safetensors.torch
import torch
import torch.multiprocessing as mp
from torch import nn

from g2lstm.errors import ConfigError
from g2lstm.train import DistributedContext, init_distributed

WORLD = 2
STEPS = 3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model() -> nn.Module:
    torch.manual_seed(1234)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(99)
    return torch.randn(8, 4, generator=g), torch.randn(8, 1, generator=g)


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(STEPS):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    ctx = init_distributed(timeout_s=60)
    try:
        assert ctx.is_distributed and ctx.backend == "gloo" and ctx.rank == rank
        assert ctx.is_main == (rank == 0)
        mean = ctx.all_reduce_mean(torch.tensor([float(rank), 10.0 * rank]))
        assert mean.tolist() == [0.5, 5.0], mean
        config = ctx.broadcast_object({"vocab": 10} if rank == 0 else None)
        assert config == {"vocab": 10}
        assert ctx.any_true(rank == 1) and not ctx.any_true(False)

        model = ctx.wrap_ddp(_model())
        x, y = _batch()
        half = x.shape[0] // WORLD
        _train(model, x[rank * half : (rank + 1) * half], y[rank * half : (rank + 1) * half])
        ctx.barrier()
        state = {k: v.contiguous() for k, v in model.module.state_dict().items()}
        safetensors.torch.save_file(state, os.path.join(out, f"rank{rank}.safetensors"))
    finally:
        ctx.cleanup()


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_two_process_ddp_matches_single_process(tmp_path, monkeypatch):
    # spawned children re-import this module by its dotted name: make that name importable
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[__name__.count(".")]))
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [safetensors.torch.load_file(tmp_path / f"rank{r}.safetensors") for r in range(WORLD)]

    reference = _model()
    _train(reference, *_batch())
    for name, expected in reference.state_dict().items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        torch.testing.assert_close(ranks[0][name], expected, atol=1e-6, rtol=0)
    assert not torch.equal(ranks[0]["0.weight"], _model().state_dict()["0.weight"])


def test_single_process_is_a_no_op(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    ctx = init_distributed()
    assert not ctx.is_distributed and ctx.is_main and ctx.world_size == 1
    t = torch.tensor([3.0])
    assert ctx.all_reduce_mean(t) is t and t.item() == 3.0
    assert ctx.broadcast_object("x") == "x"
    model = nn.Linear(1, 1)
    assert ctx.wrap_ddp(model) is model
    assert ctx.any_true(True) and not ctx.any_true(False)
    ctx.barrier()
    ctx.cleanup()


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' must be an integer"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "need 0 <= RANK < WORLD_SIZE"),
        ({"WORLD_SIZE": "2", "RANK": "0"}, "MASTER_ADDR, MASTER_PORT is not set"),
    ],
)
def test_bad_environment(monkeypatch, env, match):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=match):
        init_distributed()


def test_context_defaults():
    ctx = DistributedContext()
    assert ctx.rank == 0 and ctx.device == torch.device("cpu") and not ctx.is_distributed
