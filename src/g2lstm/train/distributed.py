"""Thin helpers for ``torchrun`` data-parallel training (gloo on CPU, NCCL on CUDA).

Example (works unchanged with ``python train.py`` and ``torchrun --nproc-per-node 2 train.py``)::

    ctx = init_distributed()                  # no-op unless WORLD_SIZE > 1
    model = ctx.wrap_ddp(model.to(ctx.device))
    ...
    loss_avg = ctx.all_reduce_mean(loss.detach())
    if ctx.is_main:
        manager.save(step, ...)               # only rank 0 writes
    ctx.barrier()                             # others wait until the checkpoint exists
    ...
    ctx.cleanup()

When ``WORLD_SIZE`` is unset or 1 every method is a cheap no-op (``all_reduce_mean`` returns its
input, ``broadcast_object`` returns its argument, ``wrap_ddp`` returns the model).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from g2lstm.errors import ConfigError, TrainingError

__all__ = ["DistributedContext", "init_distributed"]

T = TypeVar("T")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} must be an integer") from None


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a data-parallel job.

    Attributes:
        rank: global rank (``RANK``), 0 when not distributed.
        world_size: number of processes (``WORLD_SIZE``), 1 when not distributed.
        local_rank: rank on this machine (``LOCAL_RANK``), selects the CUDA device.
        backend: ``"gloo"``/``"nccl"`` when a process group is active, else None.
        device: the device this process should put its model and batches on.
        owns_group: whether :meth:`cleanup` destroys the process group. False when
            :func:`init_distributed` found a group already running (one started by the caller,
            e.g. ``g2lstm reproduce``, which runs several trainings in one group): the caller
            that started it destroys it.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = True

    @classmethod
    def from_env(cls) -> DistributedContext:
        """Read ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (no process group is started)."""
        world = _env_int("WORLD_SIZE", 1)
        rank = _env_int("RANK", 0)
        local = _env_int("LOCAL_RANK", rank)
        if world < 1 or not 0 <= rank < world or local < 0:
            raise ConfigError(
                f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world}, "
                f"LOCAL_RANK={local}; need 0 <= RANK < WORLD_SIZE"
            )
        return cls(rank=rank, world_size=world, local_rank=local)

    @property
    def is_distributed(self) -> bool:
        """True when a process group with more than one process is active."""
        return self.backend is not None and self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes checkpoints and logs."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every rank reaches this point."""
        if self.is_distributed:
            dist.barrier()

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """Average ``tensor`` over all ranks (in place) and return it; any shape."""
        if self.is_distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor.div_(self.world_size)
        return tensor

    def any_true(self, flag: bool) -> bool:
        """True if ``flag`` is True on any rank (e.g. a stop request seen by one process)."""
        if not self.is_distributed:
            return bool(flag)
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def broadcast_object(self, obj: T, src: int = 0) -> T:
        """Send a picklable object from rank ``src`` to every rank and return it.

        Only for trusted, in-job values (configs, vocab sizes): it uses pickle over the
        process group, never files.
        """
        if not self.is_distributed:
            return obj
        box: list[Any] = [obj if self.rank == src else None]
        dist.broadcast_object_list(
            box, src=src, device=self.device if self.backend == "nccl" else None
        )
        return box[0]

    def wrap_ddp(self, model: torch.nn.Module, **kwargs: Any) -> torch.nn.Module:
        """Wrap ``model`` (already on :attr:`device`) in ``DistributedDataParallel``.

        Save ``model.module.state_dict()`` (the unwrapped module) in checkpoints.
        """
        if not self.is_distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        if self.device.type == "cuda":
            kwargs.setdefault("device_ids", [self.device.index])
            kwargs.setdefault("output_device", self.device.index)
        return DistributedDataParallel(model, **kwargs)

    def cleanup(self) -> None:
        """Destroy the process group if this context started it (safe to call when none
        exists; a group that :func:`init_distributed` found already running is left alone)."""
        if self.owns_group and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(
    backend: str | None = None, *, timeout_s: float = 1800.0
) -> DistributedContext:
    """Start the process group described by torchrun's environment variables.

    Args:
        backend: ``"gloo"``, ``"nccl"`` or None to choose: NCCL when CUDA is available, gloo
            otherwise.
        timeout_s: collective-operation timeout in seconds.

    If a process group is already running (started by the caller), it is joined instead:
    ``backend`` and ``timeout_s`` are those it was started with, and the returned context's
    :meth:`~DistributedContext.cleanup` leaves it running (``owns_group=False``).

    Returns:
        The context. Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) nothing is started and
        a single-process context is returned (device ``cuda:LOCAL_RANK`` if CUDA is
        available, else CPU).

    Raises:
        ConfigError: malformed environment variables, an unknown backend, or missing
            ``MASTER_ADDR``/``MASTER_PORT``.
        TrainingError: ``LOCAL_RANK`` names a GPU this machine does not have.
    """
    ctx = DistributedContext.from_env()
    cuda = torch.cuda.is_available()
    if cuda and ctx.local_rank >= torch.cuda.device_count():
        raise TrainingError(
            f"LOCAL_RANK={ctx.local_rank} but only {torch.cuda.device_count()} CUDA device(s) "
            "are visible; start fewer processes per node (--nproc-per-node)"
        )
    device = torch.device("cuda", ctx.local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if ctx.world_size == 1:
        return DistributedContext(ctx.rank, 1, ctx.local_rank, None, device)
    backend = backend or ("nccl" if cuda else "gloo")
    if backend not in ("gloo", "nccl"):
        raise ConfigError(f"backend={backend!r} is not supported; use 'gloo' or 'nccl'")
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE={ctx.world_size} but {', '.join(missing)} is not set; launch with "
            "torchrun, or set MASTER_ADDR and MASTER_PORT"
        )
    if dist.is_initialized():  # started by the caller: join it, leave it running
        running = str(dist.get_backend())
        return DistributedContext(
            ctx.rank, ctx.world_size, ctx.local_rank, running, device, owns_group=False
        )
    dist.init_process_group(
        backend=backend,
        rank=ctx.rank,
        world_size=ctx.world_size,
        timeout=datetime.timedelta(seconds=timeout_s),
        device_id=device if backend == "nccl" else None,
    )
    return DistributedContext(ctx.rank, ctx.world_size, ctx.local_rank, backend, device)
