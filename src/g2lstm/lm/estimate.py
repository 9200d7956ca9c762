"""How long a language-model run will take, from a short measurement on this machine.

``g2lstm lm train`` without ``--preset`` starts the ``paper`` preset (3 x 1150 AWD-LSTM, 500 +
500 epochs), which is weeks of CPU time. Before it starts such a run on a machine without a
GPU, the command times a few training steps of the configured model at its batch size and
segment length (:func:`estimate_run`) and states the size, the epochs and the estimated
time (:func:`describe_run`); :func:`g2lstm.train.estimate.check_run_cost` does the asking.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from g2lstm.lm.config import RunConfig
from g2lstm.lm.model import RNNLanguageModel
from g2lstm.train.estimate import RunEstimate, time_steps

__all__ = ["describe_run", "estimate_run"]


def estimate_run(config: RunConfig, train_tokens: int, *, measure_steps: int = 2) -> RunEstimate:
    """Time ``measure_steps`` training steps (forward, backward, SGD update) of ``config``'s
    model on random ``(bptt + 1, batch_size)`` tokens after one warm-up step, on the CPU
    with ``train.threads`` threads (0: the current count).

    Args:
        config: the resolved run config (``model.vocab_size`` set from the data).
        train_tokens: length of the training split (tokens), for the steps per epoch.
        measure_steps: steps to time (>= 1).
    """
    m, t = config.model, config.train
    torch.manual_seed(0)
    model = RNNLanguageModel(m)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    ids = torch.randint(m.vocab_size, (t.bptt + 1, t.batch_size))

    def step() -> None:
        out = model(ids[:-1])
        loss = F.cross_entropy(out.logits.flatten(0, 1), ids[1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    seconds = time_steps(step, measure_steps, threads=t.threads)
    steps_per_epoch = max(1, (train_tokens // t.batch_size - 1) // t.bptt)
    steps = steps_per_epoch * (t.epochs + t.finetune_epochs)
    return RunEstimate(model.num_parameters(), steps, seconds, measure_steps)


def describe_run(est: RunEstimate, config: RunConfig, train_tokens: int) -> str:
    """One sentence: model size, epochs, data and the estimate."""
    m, t = config.model, config.train
    return (
        f"{m.nlayers} x {m.nhid} {m.gates.cell} model ({est.parameters / 1e6:.1f}M parameters), "
        f"{t.epochs} + {t.finetune_epochs} epochs of {train_tokens:,} tokens of "
        f"{config.data} ({est.steps:,} steps of {t.batch_size} x {t.bptt} tokens): "
        f"{est.timing()}"
    )
