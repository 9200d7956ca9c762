"""Sample text from a trained language model."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TextIO

import torch

from g2lstm.config_checks import check_int
from g2lstm.errors import ConfigError
from g2lstm.lm.model import RNNLanguageModel

__all__ = ["generate", "iter_generate", "join_words", "write_words"]


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
        seed: seed of the sampling generator, ``0 <= seed < 2**64`` (None: nondeterministic).
        prompt: words to condition on; unknown words map to ``<unk>``.

    Returns:
        The sampled words (``<eos>`` marks line ends).
    """
    return list(
        iter_generate(model, vocab, n_words, temperature=temperature, seed=seed, prompt=prompt)
    )


def iter_generate(
    model: RNNLanguageModel,
    vocab: object,
    n_words: int,
    *,
    temperature: float = 1.0,
    seed: int | None = None,
    prompt: list[str] | None = None,
) -> Iterator[str]:
    """:func:`generate` one word at a time, as each is sampled (arguments checked at once)."""
    if isinstance(n_words, bool) or not isinstance(n_words, int) or n_words < 1:
        raise ConfigError(f"--words={n_words!r} must be an integer >= 1")
    if not math.isfinite(temperature) or temperature <= 0:
        raise ConfigError(f"--temperature={temperature!r} must be a finite number > 0")
    if seed is not None:
        check_int("--seed", seed, 0, 2**64 - 1)
    try:
        ids = vocab.encode(prompt or ["<eos>"])  # type: ignore[attr-defined]
    except KeyError as exc:
        raise ConfigError(f"prompt: {exc.args[0]}") from None
    return _sample(model, vocab, ids, n_words, temperature, seed)


@torch.no_grad()
def _sample(
    model: RNNLanguageModel,
    vocab: object,
    ids: list[int],
    n_words: int,
    temperature: float,
    seed: int | None,
) -> Iterator[str]:
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        device = model.encoder.weight.device
        out = model(torch.tensor(ids, device=device).view(-1, 1))
        hidden, logits = out.hidden, out.logits[-1, 0]
        for _ in range(n_words):
            probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)
            idx = int(torch.multinomial(probs, 1, generator=gen))
            yield vocab.token(idx)  # type: ignore[attr-defined]
            out = model(torch.tensor([[idx]], device=device), hidden)
            hidden, logits = out.hidden, out.logits[-1, 0]
    finally:
        model.train(was_training)


def write_words(words: Iterable[str], stream: TextIO) -> int:
    """Write words as :func:`join_words` text plus a final newline, flushing every line, as
    they come; returns the number of words."""
    count, line_open = 0, False
    for word in words:
        count += 1
        if word == "<eos>":
            stream.write("\n")
            stream.flush()
            line_open = False
        else:
            stream.write((" " if line_open else "") + word)
            line_open = True
    if line_open or not count:
        stream.write("\n")
    stream.flush()
    return count


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
