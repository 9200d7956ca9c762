"""Sample text from a trained language model."""

from __future__ import annotations

import math

import torch

from g2lstm.errors import ConfigError
from g2lstm.lm.model import RNNLanguageModel

__all__ = ["generate", "join_words"]


@torch.no_grad()
def generate(
    model: RNNLanguageModel,
    vocab: object,
    n_words: int,
    *,
    temperature: float = 1.0,
    seed: int | None = None,
    prompt: list[str] | None = None,
) -> list[str]:
    """Sample ``n_words`` words after ``prompt`` (default: a sentence start, ``<eos>``).

    Args:
        model: the language model (used in eval mode).
        vocab: a :class:`~g2lstm.lm.data.Vocabulary`.
        n_words: number of words to sample (>= 1).
        temperature: > 0; logits are divided by it (lower = more conservative).
        seed: seed of the sampling generator (None: nondeterministic).
        prompt: words to condition on; unknown words map to ``<unk>``.

    Returns:
        The sampled words (``<eos>`` marks line ends).
    """
    if isinstance(n_words, bool) or not isinstance(n_words, int) or n_words < 1:
        raise ConfigError(f"--words={n_words!r} must be an integer >= 1")
    if not math.isfinite(temperature) or temperature <= 0:
        raise ConfigError(f"--temperature={temperature!r} must be a finite number > 0")
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        words = prompt or ["<eos>"]
        try:
            ids = vocab.encode(words)  # type: ignore[attr-defined]
        except KeyError as exc:
            raise ConfigError(f"prompt: {exc.args[0]}") from None
        device = model.encoder.weight.device
        out = model(torch.tensor(ids, device=device).view(-1, 1))
        hidden, logits = out.hidden, out.logits[-1, 0]
        sampled: list[str] = []
        for _ in range(n_words):
            probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)
            idx = int(torch.multinomial(probs, 1, generator=gen))
            sampled.append(vocab.token(idx))  # type: ignore[attr-defined]
            out = model(torch.tensor([[idx]], device=device), hidden)
            hidden, logits = out.hidden, out.logits[-1, 0]
        return sampled
    finally:
        model.train(was_training)


def join_words(words: list[str]) -> str:
    """Words as text: ``<eos>`` becomes a line break."""
    lines, current = [], []
    for w in words:
        if w == "<eos>":
            lines.append(" ".join(current))
            current = []
        else:
            current.append(w)
    if current:
        lines.append(" ".join(current))
    return "\n".join(lines)
