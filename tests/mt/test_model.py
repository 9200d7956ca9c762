"""The MT model and its configuration: attention masks, padding, step == full sequence."""

from __future__ import annotations

import pytest
import torch

from g2lstm.config import GateConfig
from g2lstm.errors import ConfigError
from g2lstm.mt.attention import Attention
from g2lstm.mt.config import ModelConfig, MTConfig, load_config
from g2lstm.mt.model import Seq2Seq
from g2lstm.nn import G2LSTM, g2_modules

V_SRC, V_TGT = 23, 29


def _batch(lengths: list[int], vocab: int = V_SRC) -> tuple[torch.Tensor, torch.Tensor]:
    src = torch.zeros(max(lengths), len(lengths), dtype=torch.long)
    for b, n in enumerate(lengths):
        src[:n, b] = torch.randint(4, vocab, (n,))
    return src, torch.tensor(lengths)


def _model(**kw: object) -> Seq2Seq:
    gate_keys = [k for k in kw if k in GateConfig.__dataclass_fields__]
    gates = GateConfig(**{k: kw.pop(k) for k in gate_keys})  # type: ignore[arg-type]
    cfg = ModelConfig(
        **{"emb": 12, "hidden": 10, "layers": 2, "dropout": 0.0, "gates": gates, **kw}
    )
    return Seq2Seq(cfg, V_SRC, V_TGT)


@pytest.mark.parametrize("kind", ["luong", "bahdanau"])
def test_attention_gives_padding_exactly_zero_weight(kind: str) -> None:
    att = Attention(kind, query_dim=6, memory_dim=8)
    memory = torch.randn(5, 3, 8)
    mask = torch.tensor([[1, 1, 1], [1, 1, 1], [1, 0, 1], [1, 0, 0], [1, 0, 0]], dtype=torch.bool)
    context, weights = att(torch.randn(4, 3, 6), att.keys(memory), memory, mask)
    assert context.shape == (4, 3, 8) and weights.shape == (3, 4, 5)
    pad = ~mask.t().unsqueeze(1).expand_as(weights)
    assert torch.equal(weights[pad], torch.zeros(int(pad.sum())))
    assert (weights[~pad] > 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))
    # the context is the weighted sum of the real positions only: garbage in padding is ignored
    noisy = memory.clone()
    noisy[~mask] = 1e6
    query = torch.randn(4, 3, 6)
    context1, _ = att(query, att.keys(memory), memory, mask)
    context2, _ = att(query, att.keys(noisy), noisy, mask)
    torch.testing.assert_close(context1, context2)


@pytest.mark.parametrize("layers", [1, 2])
def test_encoding_ignores_padding(layers: int) -> None:
    model = _model(layers=layers).eval()
    src, lengths = _batch([6, 3, 4])
    padded = src.clone()
    padded[3:, 1] = 7  # junk after the end of sentence 1 must not matter
    with torch.no_grad():
        a = model.encode(src, lengths)
        b = model.encode(padded, lengths)
        alone = model.encode(src[:3, 1:2], lengths[1:2])
    torch.testing.assert_close(a.memory[:3, 1], alone.memory[:, 0])
    torch.testing.assert_close(a.h[:, 1], alone.h[:, 0])
    torch.testing.assert_close(a.memory, b.memory)
    assert torch.equal(a.memory[3:, 1], torch.zeros_like(a.memory[3:, 1]))
    assert a.mask[:, 1].tolist() == [True] * 3 + [False] * 3
    assert a.memory.shape[-1] == model.memory_dim == (20 if layers == 1 else 10)


@pytest.mark.parametrize(
    ("attention", "input_feeding", "cell"),
    [
        ("luong", False, "g2"),
        ("luong", True, "g2"),
        ("bahdanau", False, "sharpened"),
        ("bahdanau", True, "lstm"),
    ],
)
def test_teacher_forced_steps_equal_full_sequence(
    attention: str, input_feeding: bool, cell: str
) -> None:
    model = _model(attention=attention, input_feeding=input_feeding, cell=cell).eval()
    src, lengths = _batch([5, 2, 4])
    tgt = torch.randint(4, V_TGT, (6, 3))
    with torch.no_grad():
        state = model.encode(src, lengths)
        full = torch.log_softmax(model.logits(model.decode(tgt, state)), -1)
        steps = []
        for t in range(tgt.shape[0]):
            lp, state = model.step(tgt[t], state)
            steps.append(lp)
    torch.testing.assert_close(torch.stack(steps), full, rtol=1e-5, atol=1e-5)


def test_step_equals_full_sequence_in_training_without_noise() -> None:
    """With dropout 0 and no gate noise, training mode is deterministic: same check."""
    model = _model(cell="lstm", input_feeding=True).train()
    src, lengths = _batch([4, 4])
    tgt = torch.randint(4, V_TGT, (3, 2))
    state = model.encode(src, lengths)
    full = model.logits(model.decode(tgt, state))
    lp, state = model.step(tgt[0], state)
    torch.testing.assert_close(lp, torch.log_softmax(full[0], -1))


def _record_decoder_noise(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """Record the gate noise of every G2 layer call, ``(1, N, width)`` per call (the calls
    here are one step each): the values of the call's drawn seeds, materialised."""
    import g2lstm.nn.lstm as lstm_module

    draws: list[torch.Tensor] = []
    real = lstm_module.draw_gate_noise

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        draw = real(*args, **kwargs)
        draws.append(draw.materialize(1, kwargs["batch"], kwargs["width"], torch.float32))
        return draw

    monkeypatch.setattr(lstm_module, "draw_gate_noise", spy)
    return draws


@pytest.mark.parametrize("schedule", ["mask_per_sequence", "noise_per_sequence"])
def test_input_feeding_decoder_holds_per_sequence_noise_across_steps(
    schedule: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The teacher-forced input-feeding decoder calls its LSTM once per step; the
    per-sequence part of the noise is the same at every step (one draw per sequence)."""
    model = _model(cell="g2", input_feeding=True, noise_p=0.5, noise_schedule=schedule).train()
    src, lengths = _batch([5, 3, 4])
    tgt = torch.randint(4, V_TGT, (6, 3))
    state = model.encode(src, lengths)
    draws = _record_decoder_noise(monkeypatch)
    model.decode(tgt, state)
    assert len(draws) == 6 * 2  # one draw per step and decoder layer
    for layer in (0, 1):
        steps = torch.cat(draws[layer::2])  # (T, N, width)
        mask = steps != 0
        assert mask.any() and not mask.all()
        assert (mask == mask[:1]).all(), "the mask B changed between steps"
        if schedule == "noise_per_sequence":
            assert torch.equal(steps, steps[:1].expand_as(steps))
        else:
            assert not torch.equal(steps, steps[:1].expand_as(steps))  # L is per step
    # outside a scope every per-step call would draw a new mask: the case the scope fixes
    draws.clear()
    for t in range(6):
        _, state = model.step(tgt[t], state)
    masks = torch.cat(draws[0::2]) != 0
    assert not (masks == masks[:1]).all()


def test_steps_in_a_noise_scope_equal_the_full_sequence_with_per_sequence_noise() -> None:
    """noise_per_sequence, training mode, dropout 0: stepping the decoder inside
    ``noise_scope`` draws what one full-sequence call draws, so the outputs are equal."""
    model = _model(cell="g2", noise_p=0.5, noise_schedule="noise_per_sequence").train()
    src, lengths = _batch([5, 2, 4])
    tgt = torch.randint(4, V_TGT, (6, 3))
    with torch.no_grad():
        state = model.encode(src, lengths)
        torch.manual_seed(7)
        full = torch.log_softmax(model.logits(model.decode(tgt, state)), -1)
        torch.manual_seed(7)
        with model.noise_scope():
            st, steps = state, []
            for t in range(tgt.shape[0]):
                lp, st = model.step(tgt[t], st)
                steps.append(lp)
        torch.manual_seed(7)
        st, unscoped = state, []
        for t in range(tgt.shape[0]):
            lp, st = model.step(tgt[t], st)
            unscoped.append(lp)
    torch.testing.assert_close(torch.stack(steps), full, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(torch.stack(unscoped), full, rtol=1e-3, atol=1e-3)


def test_greedy_decoding_holds_sampled_per_sequence_noise_and_beam_refuses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sampled gates at inference (``eval_gates="sample"``): greedy decoding steps one batch
    of rows and holds the per-sequence mask across its steps; beam search, which reorders
    and drops rows between steps, is refused with a clear error instead of silently
    switching to per-step noise."""
    from g2lstm.mt.config import DecodeConfig
    from g2lstm.mt.prepare import PrepareConfig
    from g2lstm.mt.translate import Translator
    from g2lstm.mt.vocab import SPECIALS, Vocab

    model = _model(cell="g2", noise_p=0.5, noise_schedule="mask_per_sequence", eval_gates="sample")
    src_vocab = Vocab([*SPECIALS, *(f"s{i}" for i in range(V_SRC - 4))])
    tgt_vocab = Vocab([*SPECIALS, *(f"t{i}" for i in range(V_TGT - 4))])
    prep = PrepareConfig("src", "tgt")
    sources = [[5, 6, 7], [8, 9], [10, 11, 12, 13]]
    greedy = Translator(model, src_vocab, tgt_vocab, prep, DecodeConfig(beam=1, max_len_b=4))
    draws = _record_decoder_noise(monkeypatch)
    out = greedy.translate_ids(sources)
    assert len(out) == 3
    dec = draws[3:]  # after the encoder (2 directions + 1 layer): per step and decoder layer
    assert len(dec) >= 4 and len(dec) % 2 == 0
    masks = torch.cat(dec[0::2]) != 0
    assert (masks == masks[:1]).all()
    beam = Translator(model, src_vocab, tgt_vocab, prep, DecodeConfig(beam=3))
    with pytest.raises(ConfigError, match="beam search reorders.*beam 1"):
        beam.translate_ids(sources)
    beam.model.dec_rnn.set_gate_options(eval_gates="soft")
    assert len(beam.translate_ids(sources)) == 3


def test_gate_noise_reaches_every_lstm_and_all_parameters_get_gradients() -> None:
    model = _model(cell="g2", input_feeding=True)
    lstms = g2_modules(model)
    assert [n for n, _ in lstms] == ["enc_bi", "enc_rest", "dec_rnn"]
    for _, m in lstms:
        assert isinstance(m, G2LSTM)
        g2 = GateConfig.for_cell("g2")
        assert (m.gate_config.noise_p, m.gate_config.tau) == (g2.noise_p, g2.tau)
    assert model.enc_bi.bidirectional and not model.dec_rnn.bidirectional
    src, lengths = _batch([5, 3])
    tgt = torch.randint(4, V_TGT, (4, 2))
    a = model(src, lengths, tgt)
    b = model(src, lengths, tgt)
    assert not torch.equal(a, b)  # fresh gate noise on every call in training
    a.sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert no_grad == []
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(src, lengths, tgt), model(src, lengths, tgt))


def test_tied_embeddings_share_the_output_weight() -> None:
    model = _model(tie_embeddings=True, emb=8)
    assert model.out.weight is model.tgt_embed.weight
    assert model.combine.out_features == 8
    untied = _model(emb=8)
    assert model.num_parameters < untied.num_parameters
    assert torch.equal(model.src_embed.weight[0], torch.zeros(8))


def test_cells_map_to_gate_options() -> None:
    def kwargs(cell: str, **options: float) -> dict:
        return ModelConfig(gates=GateConfig.for_cell(cell, **options)).gate_kwargs()

    assert kwargs("lstm")["noise_p"] == 0.0 and kwargs("lstm")["tau"] == 1.0
    assert kwargs("sharpened")["tau"] == 0.2
    assert (kwargs("g2")["noise_p"], kwargs("g2")["tau"]) == (0.2, 0.9)
    assert kwargs("g2", tau=0.5)["tau"] == 0.5


def test_presets_are_the_papers_models() -> None:
    iwslt, wmt = MTConfig.from_preset("iwslt").model, MTConfig.from_preset("wmt").model
    assert (iwslt.layers, iwslt.emb, iwslt.hidden) == (2, 256, 256)
    assert (wmt.layers, wmt.emb, wmt.hidden) == (3, 512, 1024)
    assert MTConfig.from_preset("iwslt").optim.clip == 2.0
    assert MTConfig.from_preset("iwslt").decode.beam == 5


@pytest.mark.parametrize(
    "override",
    [
        "model.cell=gru",
        "model.gates.cell=gru",
        "model.attention=dot",
        "model.dropout=1.5",
        "optim.name=sgd",
        "train.max_tokens=0",
        "decode.beam=0",
        "model.tau=0",
        "model.gates.noise_p=2",
        "model.nope=1",
        "nosection.x=1",
        "model.emb",
    ],
)
def test_invalid_values_are_rejected(override: str) -> None:
    with pytest.raises(ConfigError):
        MTConfig().with_assignments([override])


def test_yaml_config_and_overrides(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  cell: lstm\n  layers: 3\ntrain:\n  data: /x/1e3\n")
    cfg = load_config("iwslt", path, ["optim.lr=5e-4", "train.seed=7", "model.tau=null"])
    assert cfg.model.gates.cell == "lstm" and cfg.model.layers == 3 and cfg.model.emb == 256
    assert cfg.optim.lr == 5e-4 and cfg.train.seed == 7 and cfg.train.data == "/x/1e3"
    assert MTConfig.from_dict(cfg.to_dict()) == cfg
    path.write_text("model:\n  bogus: 1\n")
    with pytest.raises(ConfigError, match="bogus"):
        load_config(None, path)
