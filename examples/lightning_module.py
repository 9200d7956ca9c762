"""G2-LSTM in a PyTorch Lightning ``LightningModule``: a character language model.

Nothing Lightning-specific is needed: ``G2LSTM`` is an ``nn.Module`` with ``nn.LSTM``'s
constructor and ``forward``, so it goes wherever an LSTM goes. This module logs the validation
perplexity and, from the G2 gates, the share of input/forget gate values near 0 or 1 (the
paper's measure of how binary the gates are; Li et al. 2018, Figs. 1/3).

    pip install "g2lstm[lightning]"
    python examples/lightning_module.py                       # this file's own text, ~1 min
    python examples/lightning_module.py --text book.txt --epochs 5
    python examples/lightning_module.py --fast-dev-run        # one batch each, as in CI
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from g2lstm import G2LSTM, GateRecorder


class CharLM(pl.LightningModule):
    """Embedding -> G2LSTM -> linear over characters; batches are ``(N, T + 1)`` ids."""

    def __init__(
        self,
        vocab_size: int,
        hidden: int = 128,
        layers: int = 1,
        lr: float = 3e-3,
        tau: float = 0.9,
        noise_p: float = 0.2,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.embed = nn.Embedding(vocab_size, 32)
        self.rnn = G2LSTM(32, hidden, num_layers=layers, batch_first=True, tau=tau, noise_p=noise_p)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids (N, T)`` -> logits ``(N, T, vocab)``."""
        out, _ = self.rnn(self.embed(ids))
        return self.head(out)

    def _loss(self, batch: list[torch.Tensor]) -> torch.Tensor:
        ids = batch[0]
        logits = self(ids[:, :-1])
        return nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        with GateRecorder(self.rnn) as rec:  # gate values of this batch (eval: soft gates)
            loss = self._loss(batch)
        trace = rec.traces[0][1]  # first layer
        for gate in ("input", "forget"):
            v = trace.valid(gate)
            self.log(f"{gate}_near_0_or_1", ((v < 0.1) | (v >= 0.9)).float().mean())
        self.log("val_loss", loss, prog_bar=True)
        self.log("val_ppl", loss.exp())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def char_data(text: str, seq_len: int) -> tuple[TensorDataset, TensorDataset, int]:
    """Train/validation sets (90/10) of ``seq_len + 1``-character windows, and the vocab size."""
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    n = (len(ids) - 1) // seq_len
    windows = ids[: n * seq_len + 1].unfold(0, seq_len + 1, seq_len)
    split = max(1, n // 10)
    return TensorDataset(windows[split:]), TensorDataset(windows[:split]), len(chars)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--text", type=Path, default=Path(__file__), help="a UTF-8 text file")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--fast-dev-run", action="store_true", help="one batch of each (a smoke test)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pl.seed_everything(0, verbose=False)
    train, valid, vocab = char_data(args.text.read_text(encoding="utf-8"), args.seq_len)
    model = CharLM(vocab)
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        fast_dev_run=args.fast_dev_run,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    trainer.fit(
        model, DataLoader(train, args.batch_size, shuffle=True), DataLoader(valid, args.batch_size)
    )
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    print(" | ".join(f"{k} {v:.3f}" for k, v in sorted(metrics.items())))
    return metrics


if __name__ == "__main__":
    main()
