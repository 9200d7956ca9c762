"""The outcome of a language-model run and its final evaluation (``results.json``).

When training completes, the best checkpoint is evaluated on the validation and test splits
and the result is written to ``<run>/results.json`` in the layout every task shares
(:class:`~g2lstm.train.RunResult`; the perplexities are its ``details``); a complete run that
is started again returns the stored result instead of evaluating twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from g2lstm.lm.config import RunConfig
from g2lstm.lm.data import batchify
from g2lstm.lm.evaluate import (
    TEST_STREAMS,
    evaluate,
    evaluate_stream,
    load_model,
    perplexity,
    stream_batch_size,
)
from g2lstm.train import RunResult, read_result

__all__ = ["TrainResult", "finish_run"]


@dataclass
class TrainResult:
    """Outcome of :meth:`LMTrainer.run` (also written to ``results.json`` when complete).

    ``train_time_s``: wall time of the training steps; ``wall_time_s``: of the whole run
    (validation and checkpoints too, the final evaluation not); ``cpu_time_s``: CPU time of
    the process over the same span, all threads (what a rerun costs on a loaded machine;
    None for a run resumed from a checkpoint written before it was recorded).
    """

    run_dir: str
    complete: bool
    stopped: str | None
    steps: int
    epochs: int
    valid_loss: float | None = None
    valid_ppl: float | None = None
    test_loss: float | None = None
    test_ppl: float | None = None
    train_time_s: float = 0.0
    wall_time_s: float = 0.0
    cpu_time_s: float | None = None
    tokens_per_s: float = 0.0
    num_parameters: int = 0
    cell: str = ""
    seed: int = 0
    test_streams: int = 1

    def to_run_result(self) -> RunResult:
        """The task-neutral :class:`~g2lstm.train.RunResult` written to ``results.json``."""
        values = asdict(self)
        values["finished"] = values.pop("complete")
        return RunResult.of("lm", values)

    @classmethod
    def from_run_result(cls, result: RunResult) -> TrainResult:
        """The LM result of a stored :class:`~g2lstm.train.RunResult`."""
        values = {**result.flat(), "complete": result.finished}
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})


def finish_run(
    out: Path,
    state: dict[str, Any],
    config: RunConfig,
    *,
    num_parameters: int,
    stopped: str | None,
    valid_data: torch.Tensor,
    test_tokens: np.ndarray | torch.Tensor,
    device: torch.device,
    is_main: bool,
) -> TrainResult:
    """The :class:`TrainResult` of a run in ``out`` whose trainer state is ``state``.

    A complete run's best checkpoint is evaluated on ``valid_data`` (``(rows, eval_batch)``
    token ids, already batchified) and ``test_tokens`` (``(n,)`` token ids, batchified here
    with ``train.test_batch_size``; a test batch size of 1 is computed as
    :func:`~g2lstm.lm.evaluate.evaluate_stream` does, in ``test_streams`` warmed-up streams),
    and the result is written to ``results.json`` on the main process; a stored
    ``results.json`` of the same step count is returned as it is.
    """
    st = state
    result = TrainResult(
        str(out),
        bool(st["complete"]),
        stopped,
        st["step"],
        st["epoch"] - 1,
        train_time_s=st["train_time"],
        wall_time_s=st["wall_time"],
        cpu_time_s=st.get("cpu_time"),
        tokens_per_s=st["train_tokens"] / st["train_time"] if st["train_time"] else 0.0,
        num_parameters=num_parameters,
        cell=config.model.gates.cell,
        seed=config.train.seed,
    )
    if not st["complete"]:
        return result
    stored = read_result(out)
    if stored is not None and stored.steps == st["step"]:
        return TrainResult.from_run_result(stored)
    best = load_model(out, map_location=str(device)).model
    result.valid_loss = evaluate(best, valid_data, config.train.bptt)
    if config.train.test_batch_size == 1:
        # torch.tensor copies: the token array may be a read-only view
        ids = torch.tensor(np.asarray(test_tokens), dtype=torch.long)
        result.test_streams = stream_batch_size(len(ids), TEST_STREAMS)
        result.test_loss = evaluate_stream(
            best, ids.to(device), config.train.bptt, result.test_streams
        )
    else:
        test = batchify(test_tokens, config.train.test_batch_size, name="test", device=device)
        result.test_loss = evaluate(best, test, config.train.bptt)
    result.valid_ppl, result.test_ppl = (
        perplexity(result.valid_loss),
        perplexity(result.test_loss),
    )
    if is_main:
        result.to_run_result().write(out)
        print(
            f"| end of training | valid ppl {result.valid_ppl:8.2f} | test ppl "
            f"{result.test_ppl:8.2f} | {result.tokens_per_s:.0f} tokens/s",
            flush=True,
        )
    return result
