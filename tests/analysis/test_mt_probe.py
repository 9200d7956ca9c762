"""The translation task's analysis probe (MTAdapter): length-grouped batches, side tokens
with BPE pieces, heatmap pairs, metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from g2lstm.analysis import record_traces
from g2lstm.analysis.tokens import token_class
from g2lstm.errors import ConfigError, DataError
from g2lstm.mt.prepare import load_prepared
from g2lstm.mt.translate import evaluate_split, load_translator
from g2lstm.tasks.mt_probe import (
    MTAdapter,
    check_prepared,
    layer_side,
    module_side,
    mt_batches,
    side_layer_index,
)

pytestmark = pytest.mark.slow  # the session fixture trains two tiny MT runs (~5 s)


@pytest.fixture(scope="module")
def g2(mt_runs: dict[str, Path]):
    """The tiny G2-LSTM translator (2 layers: enc_bi, enc_rest[0], dec_rnn[0..1])."""
    return load_translator(mt_runs["g2"])


def test_batches_group_pairs_by_target_length(mt_runs: dict[str, Path]) -> None:
    prepared = load_prepared(mt_runs["data"])
    pairs = prepared.encoded("valid")
    adapter = MTAdapter(prepared, batch_size=4)
    firsts, seen = [], 0
    for src, src_len, tgt_in, tgt_out in adapter.batches:
        assert (tgt_out != adapter.pad).all() and (tgt_in != adapter.pad).all()  # no padding
        assert tgt_in.shape == tgt_out.shape and tgt_in.shape[1] == src.shape[1] <= 4
        assert (tgt_in[0] == prepared.tgt_vocab.bos_id).all()
        assert int(src_len.max()) == src.shape[0]
        seen += src.shape[1]
        col = src[: int(src_len[0]) - 1, 0].tolist()
        firsts.append(next(i for i, (s, _) in enumerate(pairs) if s.tolist() == col))
    assert seen == len(pairs) and firsts == sorted(firsts)
    assert len(MTAdapter(prepared, 2, batch_size=4).batches) == 2
    with pytest.raises(ConfigError, match="batch_size"):
        mt_batches(pairs, 0)


def test_tokens_follow_the_side_and_mark_bpe_pieces(mt_runs: dict[str, Path], g2) -> None:
    adapter = MTAdapter(mt_runs["data"], side="target", input_format="tok")
    shown, batch = adapter.encode("s8 s9 ||| street walking")
    assert shown[0] == "<s>" and "".join(shown[1:]).replace("@@", "") == "streetwalking"
    assert any(t.endswith("@@") for t in shown)  # 25 merges leave these words split
    ids = adapter.tokens(batch)
    names = [adapter.itos[i] for i in ids[:, 0].tolist()]
    assert names[0] == "<s>"
    for prev, tok, name in zip(shown, shown[1:], names[1:]):
        assert name == ("@@" + tok if prev.endswith("@@") else tok)
        assert token_class(name) == "content"
    # the ids line up with every step of the first decoder layer, not with the encoder's
    traces, _ = record_traces(g2.model, batch, adapter.forward)
    dec = next(t for n, t in traces if n == "dec_rnn" and t.layer == 0)
    assert tuple(dec.mask.shape) == tuple(ids.shape) and bool(dec.mask.all())
    src = MTAdapter(mt_runs["data"], side="source", input_format="tok")
    shown, batch = src.encode("s8 s9 s10")
    assert shown[-1] == "</s>" and tuple(src.tokens(batch).shape) == tuple(batch[0].shape)
    traces, _ = record_traces(g2.model, batch, src.forward)
    enc = next(t for n, t in traces if n == "enc_bi" and t.direction == 1)
    assert enc.mask.shape[0] == len(shown)


def test_encode_finds_references_and_refuses_bad_sentences(mt_runs: dict[str, Path]) -> None:
    prepared = load_prepared(mt_runs["data"])
    adapter = MTAdapter(prepared, input_format="bpe")
    src0, tgt0 = prepared.lines("valid", "de")[0], prepared.lines("valid", "en")[0]
    shown, _ = adapter.encode(src0)  # a source of the split: its reference is the target
    assert shown == ["<s>", *tgt0.split()]
    default = adapter.default_sentence()
    assert " ||| " in default and adapter.encode(default)[0][0] == "<s>"
    shown, _ = adapter.encode("s1 ||| zebra", input_format="tok")
    assert any(t.endswith("→<unk>") for t in shown)
    with pytest.raises(ConfigError, match="SOURCE"):
        adapter.encode("s1 s1 s1 s1 s1 s1 s1 s1 s1")
    with pytest.raises(ConfigError, match="empty source"):
        adapter.encode(" ||| the man")
    with pytest.raises(ConfigError, match="input_format"):
        adapter.encode("s1", input_format="xml")
    with pytest.raises(ConfigError, match="train"):
        MTAdapter(prepared, split="train")
    with pytest.raises(ConfigError, match="side"):
        MTAdapter(prepared, side="both")


def test_perplexity_and_bleu_are_the_mt_numbers(mt_runs: dict[str, Path], g2) -> None:
    model = g2.model.train()
    adapter = MTAdapter(mt_runs["data"], 3, batch_size=5, decode=g2.decode, bleu_limit=6)
    with torch.no_grad():
        model.eval()
        losses = [(float(adapter.forward(model, b)), int(b[3].numel())) for b in adapter.batches]
        model.train()
    want = math.exp(sum(v * n for v, n in losses) / sum(n for _, n in losses))
    assert adapter.perplexity(model) == pytest.approx(want, rel=1e-6)
    assert adapter.evaluate(model) == adapter.perplexity(model) and model.training
    bleu = adapter.bleu(model)
    assert model.training  # the mode is restored
    ref = evaluate_split(load_translator(mt_runs["g2"]), "valid", limit=6).bleu.tok_bleu
    assert bleu == ref and 0 <= bleu <= 100


def test_layer_sides_and_vocabulary_check(mt_runs: dict[str, Path], g2) -> None:
    assert side_layer_index(g2.model, "target") == 2 and side_layer_index(g2.model, "source") == 0
    assert layer_side([g2.model], 1) == "source" and layer_side([g2.model], 3) == "target"
    assert module_side("model.enc_bi") == "source" and module_side("dec_rnn") == "target"
    with pytest.raises(ConfigError, match="neither"):
        module_side("rnn")
    with pytest.raises(ConfigError, match="only 4"):
        layer_side([g2.model], 4)
    prepared = load_prepared(mt_runs["data"])
    check_prepared(g2, prepared)
    other = load_prepared(mt_runs["data"])
    object.__setattr__(other, "tgt_vocab", type(other.tgt_vocab)(other.tgt_vocab.tokens[:-1]))
    with pytest.raises(DataError, match="vocabularies differ"):
        check_prepared(g2, other)
