"""``evaluate_stream``: batch-1 perplexity computed many streams at a time."""

from __future__ import annotations

import pytest
import torch

from g2lstm.config import GateConfig
from g2lstm.lm.batching import batchify
from g2lstm.lm.config import ModelConfig
from g2lstm.lm.evaluate import evaluate, evaluate_stream, perplexity
from g2lstm.lm.model import RNNLanguageModel


@pytest.fixture(scope="module")
def trained() -> tuple[RNNLanguageModel, torch.Tensor]:
    """A small LM trained briefly on a stream that mostly repeats the token two steps back,
    so the carried state matters."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(20, (4000,), generator=gen)
    keep = torch.rand(4000, generator=gen) < 0.9
    for t in range(2, 4000):
        if keep[t]:
            ids[t] = ids[t - 2]
    torch.manual_seed(0)
    model = RNNLanguageModel(
        ModelConfig(vocab_size=20, emsize=16, nhid=32, nlayers=1, gates=GateConfig.for_cell("g2"))
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    data = batchify(ids, 16)
    for step in range(150):
        i = (step * 20) % (data.size(0) - 21)
        out = model(data[i : i + 20])
        loss = torch.nn.functional.cross_entropy(
            out.logits.reshape(-1, 20), data[i + 1 : i + 21].reshape(-1)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, ids


def test_stream_batches_give_the_batch_1_number(trained) -> None:
    model, ids = trained
    exact = perplexity(evaluate(model, batchify(ids, 1), 35, desc=None))
    assert exact < 15  # learnt something (uniform: 20)
    fast = perplexity(evaluate_stream(model, ids, 35, 8, desc=None))
    assert fast == pytest.approx(exact, abs=0.01)
    cold = perplexity(evaluate_stream(model, ids, 35, 8, warmup=0, desc=None))
    assert abs(cold - exact) > abs(fast - exact)  # the warm-up is what makes it exact
    assert perplexity(evaluate_stream(model, ids, 35, 1, desc=None)) == pytest.approx(exact)
