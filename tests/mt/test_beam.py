"""Beam search: beam 1 == greedy, best path on a hand-built toy decoder, lengths, EOS."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import pytest
import torch

from g2lstm.errors import ConfigError
from g2lstm.mt.beam import beam_search, greedy_search
from g2lstm.mt.config import ModelConfig
from g2lstm.mt.model import Seq2Seq

PAD, UNK, BOS, EOS, A, B = 0, 1, 2, 3, 4, 5
NEG = -1e9  # "impossible" in the toy tables (finite, so sums stay comparable)


@dataclass
class ToyState:
    """The toy decoder's state: the previous token of each row."""

    prev: torch.Tensor

    def select(self, index: torch.Tensor) -> ToyState:
        return ToyState(self.prev.index_select(0, index))


def toy_table() -> torch.Tensor:
    """``table[prev]`` = log-probs of the next token. Greedy takes A (0.6) first, but every
    continuation of A is poor, while B is followed by </s> with probability 0.9."""
    p = torch.full((6, 6), 0.0)
    p[BOS, A], p[BOS, B] = 0.6, 0.4
    p[A, A], p[A, B], p[A, EOS] = 0.35, 0.35, 0.3
    p[B, EOS], p[B, A] = 0.9, 0.1
    p[UNK, EOS] = p[PAD, EOS] = p[EOS, EOS] = 1.0
    return torch.where(p > 0, p.log(), torch.full_like(p, NEG))


def toy_step(table: torch.Tensor):  # type: ignore[no-untyped-def]
    def step(tokens: torch.Tensor, state: ToyState) -> tuple[torch.Tensor, ToyState]:
        return table[tokens], ToyState(tokens)

    return step


def brute_force_best(table: torch.Tensor, max_len: int, alpha: float) -> tuple[list[int], float]:
    """Exhaustive search over every sequence of <= max_len tokens then </s>."""
    best: tuple[list[int], float] = ([], -math.inf)
    for n in range(max_len + 1):
        for seq in itertools.product([A, B], repeat=n):
            prev, lp = BOS, 0.0
            for tok in (*seq, EOS):
                lp += float(table[prev, tok])
                prev = tok
            score = lp / (n + 1) ** alpha
            if score > best[1]:
                best = (list(seq), score)
    return best


def test_greedy_is_suboptimal_and_beam_finds_the_best_path() -> None:
    table = toy_table()
    state = ToyState(torch.full((1,), BOS))
    kw = {"batch_size": 1, "bos": BOS, "eos": EOS, "max_lens": torch.tensor([4]), "pad": PAD}
    greedy = greedy_search(toy_step(table), state, alpha=1.0, **kw)[0]
    assert greedy.tokens[:1] == [A]
    for alpha in (0.0, 1.0):
        want_tokens, want_score = brute_force_best(table, 4, alpha)
        assert want_tokens == [B]  # log(0.4 * 0.9) beats every path through A
        hyp = beam_search(toy_step(table), state, beam=2, alpha=alpha, **kw)[0][0]
        assert hyp.tokens == want_tokens
        assert hyp.score == pytest.approx(want_score)
        assert hyp.logprob == pytest.approx(math.log(0.4 * 0.9))
        assert hyp.score > greedy.logprob / (len(greedy.tokens) + 1) ** alpha


def test_length_normalisation_changes_the_winner() -> None:
    """A long, confident path vs a short one: alpha=0 prefers short, alpha=1 long."""
    p = torch.zeros(6, 6)
    p[BOS, EOS], p[BOS, A] = 0.6, 0.4
    p[A, B] = 1.0
    p[B, EOS], p[B, A] = 0.8, 0.2
    p[PAD, EOS] = p[UNK, EOS] = p[EOS, EOS] = 1.0
    table = torch.where(p > 0, p.log(), torch.full_like(p, NEG))
    state = ToyState(torch.full((1,), BOS))
    kw = {"batch_size": 1, "bos": BOS, "eos": EOS, "max_lens": torch.tensor([6]), "beam": 3}
    for alpha in (0.0, 1.0):
        hyp = beam_search(toy_step(table), state, alpha=alpha, **kw)[0][0]
        assert (hyp.tokens, pytest.approx(hyp.score)) == brute_force_best(table, 6, alpha)
    assert beam_search(toy_step(table), state, alpha=0.0, **kw)[0][0].tokens == []
    assert beam_search(toy_step(table), state, alpha=1.0, **kw)[0][0].tokens == [A, B]


def test_max_length_forces_eos_and_specials_are_never_generated() -> None:
    table = torch.zeros(6, 6)  # uniform; pad and bos would be as likely as anything
    state = ToyState(torch.full((3,), BOS))
    kw = {"batch_size": 3, "bos": BOS, "eos": EOS, "max_lens": torch.tensor([0, 2, 5])}
    table[:, EOS] = NEG / 2  # the decoder never wants to stop by itself
    for hyps in (
        greedy_search(toy_step(table), state, **kw),
        [h[0] for h in beam_search(toy_step(table), state, beam=3, **kw)],
    ):
        assert [len(h.tokens) for h in hyps] == [0, 2, 5]
        assert all(t not in (PAD, BOS, EOS) for h in hyps for t in h.tokens)


def test_nbest_is_sorted_and_arguments_are_checked() -> None:
    table = toy_table()
    state = ToyState(torch.full((1,), BOS))
    kw = {"batch_size": 1, "bos": BOS, "eos": EOS, "max_lens": torch.tensor([4])}
    hyps = beam_search(toy_step(table), state, beam=3, nbest=3, **kw)[0]
    assert len(hyps) == 3
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    with pytest.raises(ConfigError):
        beam_search(toy_step(table), state, beam=0, **kw)
    with pytest.raises(ConfigError):
        beam_search(toy_step(table), state, beam=2, nbest=3, **kw)


@pytest.mark.parametrize("input_feeding", [False, True])
def test_beam_one_equals_greedy_on_a_real_model(input_feeding: bool) -> None:
    torch.manual_seed(3)
    cfg = ModelConfig(emb=16, hidden=16, layers=2, dropout=0.0, input_feeding=input_feeding)
    model = Seq2Seq(cfg, 40, 40).eval()
    lengths = torch.tensor([7, 3, 5, 1, 6])
    src = torch.zeros(7, 5, dtype=torch.long)
    for b, n in enumerate(lengths.tolist()):
        src[:n, b] = torch.randint(4, 40, (n,))
    # sharpen the output layer so that hypotheses differ in length and end early
    with torch.no_grad():
        model.out.weight.mul_(8.0)
    max_lens = 2 * lengths
    with torch.no_grad():
        state = model.encode(src, lengths)
        kw = {"batch_size": 5, "bos": 2, "eos": 3, "max_lens": max_lens, "pad": 0}
        greedy = greedy_search(model.step, state, **kw)
        beam1 = [h[0] for h in beam_search(model.step, state, beam=1, **kw)]
        beam4 = [h[0] for h in beam_search(model.step, state, beam=4, **kw)]
    assert [h.tokens for h in beam1] == [h.tokens for h in greedy]
    for a, b in zip(beam1, greedy):
        assert a.logprob == pytest.approx(b.logprob, rel=1e-5, abs=1e-5)
    # a wider beam never ranks below greedy by the search's own score
    for wide, g in zip(beam4, greedy):
        assert wide.score >= g.score - 1e-5
