"""Drop G2-LSTM into an existing PyTorch model in one line, train it, look at its gates.

The model below is ordinary PyTorch code with an ``nn.LSTM`` inside. Converting it keeps the
weights, shapes and ``forward``; only the gates change: during training the input and forget
gates get logistic noise and a temperature (``sigmoid((a + B·L) / tau)``, Li et al. 2018,
Eq. 7), which pushes them towards 0 or 1. The task needs a latch: a sequence of ``--length``
random tokens (30 kinds) is positive when token 0 occurs anywhere in it (about half of them),
so the model must open its input gate on that token and then hold it with its forget gate.

    python examples/convert_existing_model.py            # ~1 minute on one CPU core
    python examples/convert_existing_model.py --plot gates.png

Both the original LSTM and its G2 conversion are trained with the same data and seed; the
script prints their accuracy, the share of input/forget gate values near 0 or 1 and a text
histogram of the forget gates (``--plot`` also saves one with matplotlib).
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Sequence

import torch
from torch import nn

import g2lstm

VOCAB = 30


class SequenceClassifier(nn.Module):
    """Embedding -> LSTM -> linear on the last step: the "existing model" to convert."""

    def __init__(self, vocab: int = VOCAB, hidden: int = 16, classes: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 16)
        self.rnn = nn.LSTM(16, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens (N, T)`` -> logits ``(N, classes)``."""
        out, _ = self.rnn(self.embed(tokens))
        return self.head(out[:, -1])


def to_g2(model: nn.Module, **g2_options: float) -> nn.Module:
    """The conversion: a copy of ``model`` whose every ``nn.LSTM`` is a G2LSTM (same weights,
    shapes and ``forward``; ``g2lstm.convert`` works in place, hence the copy)."""
    return g2lstm.convert(copy.deepcopy(model), **g2_options)


def batch(n: int, length: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random sequences ``(n, length)`` and their labels: 1 where token 0 occurs."""
    tokens = torch.randint(VOCAB, (n, length), generator=gen)
    return tokens, (tokens == 0).any(dim=1).long()


def train(model: nn.Module, steps: int, length: int, seed: int) -> float:
    """Adam on fresh random batches; returns the accuracy on 2,000 held-out sequences."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        x, y = batch(64, length, gen)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x, y = batch(2000, length, torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


def gate_values(model: nn.Module, length: int) -> dict[str, torch.Tensor]:
    """Input and forget gate values over 200 sequences (``g2lstm.GateRecorder`` works on any
    model with a G2 layer inside; a plain LSTM is converted with its gates unchanged)."""
    probe = model if g2lstm.nn.g2_modules(model) else to_g2(model, tau=1.0, noise_p=0.0)
    x, _ = batch(200, length, torch.Generator().manual_seed(7))
    with torch.no_grad(), g2lstm.GateRecorder(probe) as rec:
        probe(x)
    trace = rec.traces[0][1]
    return {"input": trace.valid("input"), "forget": trace.valid("forget")}


def near_binary(values: torch.Tensor) -> float:
    """Share of gate values below 0.1 or at least 0.9 (the paper's Figs. 1/3 measure)."""
    return float(((values < 0.1) | (values >= 0.9)).float().mean())


def text_histogram(values: torch.Tensor, bins: int = 10, width: int = 40) -> str:
    counts = torch.histc(values, bins=bins, min=0.0, max=1.0)
    share = counts / counts.sum()
    rows = []
    for k, s in enumerate(share.tolist()):
        rows.append(
            f"  [{k / bins:.1f}, {(k + 1) / bins:.1f}) {'#' * round(s * width):<{width}} "
            f"{100 * s:5.1f}%"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=800, help="training steps per model")
    p.add_argument("--threads", type=int, default=1, help="torch threads (small models: 1)")
    p.add_argument("--length", type=int, default=20, help="sequence length")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PNG", help="save the forget-gate histograms (matplotlib)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    original = SequenceClassifier()
    models = {"LSTM": original, "G2-LSTM": to_g2(original, tau=0.9, noise_p=0.2)}
    results: dict[str, dict[str, float]] = {}
    gates = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        acc = train(model, args.steps, args.length, args.seed)
        gates[name] = gate_values(model, args.length)
        results[name] = {
            "accuracy": acc,
            "input_near_0_or_1": near_binary(gates[name]["input"]),
            "forget_near_0_or_1": near_binary(gates[name]["forget"]),
            "seconds": time.perf_counter() - t0,
        }
        r = results[name]
        print(
            f"{name:8s} accuracy {100 * acc:5.1f}% | gates near 0/1: input "
            f"{100 * r['input_near_0_or_1']:5.1f}%, forget {100 * r['forget_near_0_or_1']:5.1f}%"
            f" | {r['seconds']:.1f}s"
        )
    for name, g in gates.items():
        print(f"\nforget gate values, {name}:\n{text_histogram(g['forget'])}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        for name, g in gates.items():
            ax.hist(
                g["forget"].numpy(),
                bins=20,
                range=(0, 1),
                alpha=0.6,
                density=True,
                label=f"{name} ({100 * near_binary(g['forget']):.0f}% near 0/1)",
            )
        ax.set_xlabel("forget gate value")
        ax.set_ylabel("density")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"\nwrote {args.plot}")
    return results


if __name__ == "__main__":
    main()
