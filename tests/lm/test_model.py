"""RNNLanguageModel: shapes, tying, gate options per cell, init, train/eval behaviour."""

from __future__ import annotations

import pytest
import torch

from g2lstm.errors import ConfigError, ShapeError
from g2lstm.lm import RNNLanguageModel, preset_config
from g2lstm.lm.model import detach_hidden
from g2lstm.nn import G2LSTM


def _model(cell: str = "g2", **overrides) -> RNNLanguageModel:
    cfg = preset_config("tiny", {"model.cell": cell, "model.vocab_size": 50, **overrides})
    return RNNLanguageModel(cfg.model)


def test_shapes_tying_and_hidden() -> None:
    m = _model()
    x = torch.randint(0, 50, (7, 3))
    out = m(x)
    assert out.logits.shape == (7, 3, 50)
    assert m.decoder.weight is m.encoder.weight
    assert m.layer_sizes == [24, 16]  # last layer = emsize when tied
    assert [o.shape[-1] for o in out.raw_outputs] == [24, 16]
    assert [tuple(h.shape) for h, _ in out.hidden] == [(1, 3, 24), (1, 3, 16)]
    carried = detach_hidden(out.hidden)
    assert all(h.grad_fn is None and c.grad_fn is None for h, c in carried)
    assert m(x, carried).logits.shape == (7, 3, 50)
    with pytest.raises(ShapeError, match=r"\(T, B\)"):
        m(torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize(
    ("cell", "tau", "noise_p"), [("lstm", 1.0, 0.0), ("sharpened", 0.2, 0.0), ("g2", 0.9, 0.2)]
)
def test_every_layer_gets_the_cell_options(cell: str, tau: float, noise_p: float) -> None:
    m = _model(cell)
    for rnn in m.rnns:
        assert isinstance(rnn, G2LSTM)
        assert (rnn.gate_config.tau, rnn.gate_config.noise_p) == (tau, noise_p)
        assert rnn.weight_dropout == 0.2


def test_eval_is_deterministic_and_training_is_random() -> None:
    m = _model()
    x = torch.randint(0, 50, (6, 2))
    m.eval()
    assert torch.equal(m(x).logits, m(x).logits)
    m.train()
    assert not torch.equal(m(x).logits, m(x).logits)


def test_uniform_init_and_untied_decoder() -> None:
    m = _model(
        "lstm", **{"model.init": "uniform", "model.init_range": 0.05, "model.tie_weights": False}
    )
    assert m.decoder.weight is not m.encoder.weight
    assert all(p.abs().max() <= 0.05 for p in m.parameters())
    assert m.layer_sizes == [24, 24]


def test_vocab_size_must_be_set() -> None:
    cfg = preset_config("tiny")
    with pytest.raises(ConfigError, match="vocab_size"):
        RNNLanguageModel(cfg.model)
