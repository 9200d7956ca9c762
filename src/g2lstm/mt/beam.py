"""Batched beam search with length normalisation, and greedy decoding.

Both work with any decoder given as a *step function* ``step(tokens, state) -> (log_probs,
state)`` where ``tokens`` is ``(N,)``, ``log_probs`` is ``(N, V)`` (log-softmax output) and
``state`` has ``select(index) -> state`` picking batch rows (:class:`~g2lstm.mt.model.
DecoderState` does; so can a toy decoder in a test).

Scoring: a finished hypothesis ``y_1 .. y_n </s>`` has log-probability ``L`` and length
``n + 1`` (``</s>`` counts), and is ranked by ``L / (n + 1) ** alpha`` (``alpha = 1`` in the
paper's code, 0 = no normalisation). A sentence stops when ``beam`` hypotheses have finished
(as in fairseq) or at its maximum length, where ``</s>`` is forced. ``<pad>`` and ``<s>`` are
never generated.

The search keeps, at every step, the ``2 * beam`` best extensions of all live hypotheses;
those ending in ``</s>`` among the top ``beam`` are finished, and the best ``beam`` others go
on. With ``beam = 1`` this is exactly greedy decoding (tested). Finished sentences leave the
batch, so the decoder only runs on live ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

import torch
from torch import Tensor

from g2lstm.errors import ConfigError, ShapeError

__all__ = ["Hypothesis", "StepFn", "beam_search", "greedy_search"]

S = TypeVar("S", bound="Selectable")


class Selectable(Protocol):
    """A decoder state whose batch rows can be picked (and repeated)."""

    def select(self: S, index: Tensor) -> S: ...


class StepFn(Protocol[S]):
    """``step(tokens (N,), state) -> (log_probs (N, V), state)``."""

    def __call__(self, tokens: Tensor, state: S) -> tuple[Tensor, S]: ...


@dataclass(frozen=True)
class Hypothesis:
    """One output sentence.

    Attributes:
        tokens: output ids without ``</s>``.
        score: ``logprob / (len(tokens) + 1) ** alpha`` (the ranking score).
        logprob: total log-probability, ``</s>`` included.
    """

    tokens: list[int]
    score: float
    logprob: float


def _check(batch_size: int, max_lens: Tensor, beam: int = 1) -> Tensor:
    if beam < 1:
        raise ConfigError(f"beam size must be >= 1, got {beam}")
    max_lens = torch.as_tensor(max_lens, dtype=torch.long).cpu()
    if max_lens.shape != (batch_size,) or (batch_size and int(max_lens.min()) < 0):
        raise ShapeError(
            f"max_lens must be ({batch_size},) non-negative ints, got {tuple(max_lens.shape)}"
        )
    return max_lens


def _mask_specials(lp: Tensor, bos: int, pad: int | None) -> None:
    lp[:, bos] = float("-inf")
    if pad is not None:
        lp[:, pad] = float("-inf")


def _force_eos(lp: Tensor, rows: Tensor, eos: int) -> None:
    """Rows ``rows`` (bool ``(N,)``) may only produce ``</s>``."""
    if bool(rows.any()):
        keep = lp[rows, eos].clone()
        lp[rows] = float("-inf")
        lp[rows, eos] = keep


def greedy_search(
    step: StepFn[S],
    state: S,
    *,
    batch_size: int,
    bos: int,
    eos: int,
    max_lens: Tensor,
    pad: int | None = 0,
    alpha: float = 1.0,
) -> list[Hypothesis]:
    """Pick the most probable token at every step.

    Args:
        step, state: the decoder (module docstring); ``state`` has ``batch_size`` rows.
        bos, eos, pad: special ids (``pad=None`` if there is none).
        max_lens: ``(batch_size,)`` maximum output length per sentence (``</s>`` not counted).
        alpha: only for the reported ``score``.

    Returns:
        One :class:`Hypothesis` per sentence, in input order.
    """
    max_lens = _check(batch_size, max_lens)
    device_tokens = torch.full((batch_size,), bos, dtype=torch.long)
    out: list[list[int]] = [[] for _ in range(batch_size)]
    logprob = [0.0] * batch_size
    done = torch.zeros(batch_size, dtype=torch.bool)
    tokens = device_tokens
    t = 0
    while not bool(done.all()):
        lp, state = step(tokens, state)
        lp = lp.float().cpu().clone()
        _mask_specials(lp, bos, pad)
        _force_eos(lp, max_lens <= t, eos)
        best_lp, tokens = lp.max(dim=-1)
        for b in torch.nonzero(~done).flatten().tolist():
            logprob[b] += float(best_lp[b])
            if int(tokens[b]) == eos:
                done[b] = True
            else:
                out[b].append(int(tokens[b]))
        t += 1
    return [
        Hypothesis(out[b], logprob[b] / (len(out[b]) + 1) ** alpha, logprob[b])
        for b in range(batch_size)
    ]


def beam_search(
    step: StepFn[S],
    state: S,
    *,
    batch_size: int,
    beam: int,
    bos: int,
    eos: int,
    max_lens: Tensor,
    pad: int | None = 0,
    alpha: float = 1.0,
    nbest: int = 1,
) -> list[list[Hypothesis]]:
    """Batched beam search with length normalisation (module docstring).

    Args:
        step, state: the decoder; ``state`` has ``batch_size`` rows (one per sentence); it
            is expanded to ``batch_size * beam`` rows here.
        beam: beam size (``1`` = greedy).
        bos, eos, pad: special ids.
        max_lens: ``(batch_size,)`` maximum output length per sentence (``</s>`` not counted).
        alpha: length-normalisation exponent.
        nbest: hypotheses returned per sentence (``<= beam``).

    Returns:
        For each sentence, in input order, its ``nbest`` best hypotheses, best first.
    """
    max_lens = _check(batch_size, max_lens, beam)
    if not 1 <= nbest <= beam:
        raise ConfigError(f"nbest must be in [1, beam={beam}], got {nbest}")
    k = beam
    finished: list[list[Hypothesis]] = [[] for _ in range(batch_size)]
    alive = torch.arange(batch_size)  # sentence id of each live batch entry
    state = state.select(torch.arange(batch_size).repeat_interleave(k))
    scores = torch.full((batch_size, k), float("-inf"))
    scores[:, 0] = 0.0  # one live hypothesis per sentence at the start
    history = torch.empty(batch_size, k, 0, dtype=torch.long)
    tokens = torch.full((batch_size * k,), bos, dtype=torch.long)
    t = 0
    while alive.numel():
        n = alive.numel()
        lp, state = step(tokens, state)
        lp = lp.float().cpu().clone()
        _mask_specials(lp, bos, pad)
        _force_eos(lp, (max_lens[alive] <= t).repeat_interleave(k), eos)
        vocab = lp.shape[-1]
        cand = (scores.unsqueeze(-1) + lp.view(n, k, vocab)).view(n, k * vocab)
        width = min(2 * k, k * vocab)
        top_val, top_idx = cand.topk(width, dim=-1)
        top_beam, top_tok = top_idx // vocab, top_idx % vocab
        is_eos = top_tok == eos
        # finish hypotheses ending in </s> among the top k
        for i, j in torch.nonzero(is_eos[:, :k] & torch.isfinite(top_val[:, :k])).tolist():
            sent = int(alive[i])
            if len(finished[sent]) >= k:
                continue
            prefix = history[i, int(top_beam[i, j])].tolist()
            value = float(top_val[i, j])
            finished[sent].append(Hypothesis(prefix, value / (len(prefix) + 1) ** alpha, value))
        # continue with the best k extensions that do not end in </s>
        order = torch.argsort(is_eos.to(torch.int8), dim=1, stable=True)[:, :k]
        next_val = top_val.gather(1, order)
        next_beam = top_beam.gather(1, order)
        next_tok = top_tok.gather(1, order)
        next_val = next_val.masked_fill(is_eos.gather(1, order), float("-inf"))
        history = torch.cat(
            [
                history.gather(1, next_beam.unsqueeze(-1).expand(-1, -1, history.shape[-1])),
                next_tok.unsqueeze(-1),
            ],
            dim=-1,
        )
        reached = max_lens[alive] <= t
        done = torch.tensor([len(finished[int(s)]) >= k for s in alive]) | reached
        done |= ~torch.isfinite(next_val).any(dim=1)
        rows = (torch.arange(n) * k).unsqueeze(1) + next_beam  # (n, k) flat source rows
        keep = torch.nonzero(~done).flatten()
        alive, scores, history = alive[keep], next_val[keep], history[keep]
        tokens = next_tok[keep].flatten()
        if keep.numel():
            state = state.select(rows[keep].flatten())
        t += 1
    return [sorted(hyps, key=lambda h: h.score, reverse=True)[:nbest] for hyps in finished]
