"""Which process does what when ``g2lstm reproduce`` runs under ``torchrun``.

Under ``torchrun --nproc-per-node N -m g2lstm.cli reproduce ...`` every process builds the
same plan and walks it in lockstep. Rank 0 alone reads the ``DONE.json`` markers, decides
(skip, reuse, run) and does every step except LM training, which all ranks run together
through the data-parallel LM trainer. Each decision, and the outcome of each piece of work
done on rank 0 alone, is broadcast by :func:`on_main`; the other ranks wait in that
broadcast, so they never disagree on what is done, and a failure on rank 0 makes them stop
with an error that names the step instead of waiting forever.

Waits. Rank 0 may evaluate, prepare data or train a translation model for hours while the
others wait. Those waits go through a separate gloo group (:func:`open_ranks`) whose timeout
is :data:`WAIT_TIMEOUT_S` (a week), not through the default group, which keeps the trainers'
timeout (30 minutes) so that a stuck training collective still fails in reasonable time. The
LM trainer joins the default group that :func:`open_ranks` started instead of starting its
own (:func:`g2lstm.train.init_distributed`), and leaves it running for the next step.

Example::

    ranks = open_ranks()                  # a single-process Ranks without WORLD_SIZE > 1
    try:
        info = on_main(ranks, "plan", write_plan, out)   # write_plan(out) on rank 0; all get info
    finally:
        ranks.close()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from g2lstm.errors import G2LSTMError
from g2lstm.train.distributed import DistributedContext, init_distributed

__all__ = ["WAIT_TIMEOUT_S", "ProcessGroupRanks", "Ranks", "env_rank", "on_main", "open_ranks"]

#: Longest wait (seconds) of a rank for rank 0's work: one step (evaluation, MT training...).
WAIT_TIMEOUT_S = 7 * 24 * 3600.0

#: Key of the message :func:`on_main` broadcasts when rank 0's work raised.
_FAILED = "__rank0_failed__"


def env_rank() -> int:
    """This process's ``RANK`` from torchrun's environment (0 when not set); no process group
    is needed (for ``--dry-run``, which only rank 0 prints)."""
    return DistributedContext.from_env().rank


class Ranks:
    """One process doing everything (``rank`` 0 of ``world_size`` 1); the base of the
    multi-process implementations (and of test fakes).

    Subclasses override :meth:`broadcast`, :meth:`all_gather` and :meth:`close`.
    """

    def __init__(self, rank: int = 0, world_size: int = 1) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise G2LSTMError(f"rank {rank} of world size {world_size}: need 0 <= rank < size")
        self.rank = rank
        self.world_size = world_size

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that decides, writes and prints."""
        return self.rank == 0

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (the others pass None); waits for rank 0."""
        return obj

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order."""
        return [obj]

    def close(self) -> None:
        """Release the process groups (no-op for one process)."""


class ProcessGroupRanks(Ranks):
    """Ranks of a ``torchrun`` job: broadcasts go through a gloo group with a long timeout.

    Built by :func:`open_ranks`; ``context`` is the
    :class:`~g2lstm.train.distributed.DistributedContext` of the default group it started.
    """

    def __init__(self, context: Any, group: Any) -> None:
        super().__init__(context.rank, context.world_size)
        self.context = context
        self.group = group

    def broadcast(self, obj: Any) -> Any:
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def all_gather(self, obj: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def close(self) -> None:
        self.context.cleanup()  # destroys the default group and the wait group with it


def open_ranks(wait_timeout_s: float = WAIT_TIMEOUT_S) -> Ranks:
    """The ranks of this job: a single-process :class:`Ranks` unless ``WORLD_SIZE > 1``.

    Under torchrun, starts the default process group as the LM trainer would (NCCL with CUDA,
    else gloo; 30-minute timeout) and a gloo group over all ranks with ``wait_timeout_s`` for
    the waits on rank 0. Every rank must call it (it is collective).

    Raises:
        ConfigError: malformed torchrun environment (see
            :func:`~g2lstm.train.distributed.init_distributed`).
    """
    if DistributedContext.from_env().world_size == 1:
        return Ranks()
    import datetime

    import torch.distributed as dist

    context = init_distributed()
    group = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=wait_timeout_s))
    return ProcessGroupRanks(context, group)


def on_main(
    ranks: Ranks, what: str, fn: Callable[..., dict[str, Any]], *args: Any
) -> dict[str, Any]:
    """Run ``fn(*args)`` on rank 0 alone and give its (small, picklable) result to every rank.

    With one process this is ``fn(*args)``. With several, if ``fn`` raises on rank 0, rank 0 tells
    the others and re-raises; they raise :class:`~g2lstm.errors.G2LSTMError` naming ``what``.

    Args:
        ranks: from :func:`open_ranks`.
        what: the work, for the other ranks' error message (a step id).
        fn: the work; returns a dict (the decision or outcome the other ranks need).
        args: passed to ``fn`` (only called on rank 0).
    """
    if ranks.world_size == 1:
        return fn(*args)
    if ranks.is_main:
        try:
            value = fn(*args)
        except Exception as exc:
            ranks.broadcast({_FAILED: f"{type(exc).__name__}: {exc}"})
            raise
        return ranks.broadcast(value)
    value = ranks.broadcast(None)
    if _FAILED in value:
        raise G2LSTMError(
            f"rank 0 failed in {what} ({value[_FAILED]}); rank {ranks.rank} stops too. Fix the "
            "cause shown by rank 0 and run the same command again: finished steps are skipped"
        )
    return value
