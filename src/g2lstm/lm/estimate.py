"""How long a language-model run will take, from a short measurement on this machine.

``g2lstm lm train`` without ``--preset`` starts the ``paper`` preset (3 x 1150 AWD-LSTM, 500 +
500 epochs), which is weeks of CPU time. Before it starts such a run on a machine without a
GPU, the command times a few training steps of the configured model at its batch size and
segment length and states the size, the epochs and the estimated time (:func:`estimate_run`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from g2lstm.lm.config import RunConfig
from g2lstm.lm.model import RNNLanguageModel
from g2lstm.train.progress import format_duration

__all__ = ["RunEstimate", "estimate_run"]


@dataclass(frozen=True)
class RunEstimate:
    """The measured cost of one training step and what it adds up to.

    Attributes:
        parameters: trainable scalars of the model.
        steps: training steps of the whole run (every epoch, finetune included).
        seconds_per_step: mean over the measured steps (after one warm-up step).
        measured_steps: how many steps were timed.
    """

    parameters: int
    steps: int
    seconds_per_step: float
    measured_steps: int

    @property
    def seconds(self) -> float:
        """Estimated training time (steps x seconds per step; evaluation not included)."""
        return self.steps * self.seconds_per_step

    def describe(self, config: RunConfig, train_tokens: int) -> str:
        """One sentence: model size, epochs, data and the estimate."""
        m, t = config.model, config.train
        return (
            f"{m.nlayers} x {m.nhid} {m.cell} model ({self.parameters / 1e6:.1f}M parameters), "
            f"{t.epochs} + {t.finetune_epochs} epochs of {train_tokens:,} tokens of "
            f"{config.data} ({self.steps:,} steps of {t.batch_size} x {t.bptt} tokens): about "
            f"{format_duration(self.seconds)} of training on this machine "
            f"({self.seconds_per_step:.3g} s per step, measured over {self.measured_steps} steps)"
        )


def estimate_run(config: RunConfig, train_tokens: int, *, measure_steps: int = 2) -> RunEstimate:
    """Time ``measure_steps`` training steps (forward, backward, SGD update) of ``config``'s
    model on random tokens after one warm-up step, on the CPU with the current thread count.

    Args:
        config: the resolved run config (``model.vocab_size`` set from the data).
        train_tokens: length of the training split (tokens), for the steps per epoch.
        measure_steps: steps to time (>= 1).
    """
    m, t = config.model, config.train
    threads = torch.get_num_threads()
    if t.threads:
        torch.set_num_threads(t.threads)
    try:
        torch.manual_seed(0)
        model = RNNLanguageModel(m)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        ids = torch.randint(m.vocab_size, (t.bptt + 1, t.batch_size))
        elapsed = 0.0
        for k in range(measure_steps + 1):
            start = time.perf_counter()
            out = model(ids[:-1])
            loss = F.cross_entropy(out.logits.flatten(0, 1), ids[1:].flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if k:  # the first step builds kernels and warms caches
                elapsed += time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    steps_per_epoch = max(1, (train_tokens // t.batch_size - 1) // t.bptt)
    steps = steps_per_epoch * (t.epochs + t.finetune_epochs)
    return RunEstimate(model.num_parameters(), steps, elapsed / measure_steps, measure_steps)
