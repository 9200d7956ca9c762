"""The translation model's evaluation data for the gate analysis (:meth:`MTTask.eval_data`).

The callables :func:`g2lstm.analysis.analyze_models` needs for a translation model.

Batches are ``(src (S, B), src_lengths (B,), tgt_in (T, B), tgt_out (T, B))`` tuples from
:func:`g2lstm.mt.batching.collate`, built from one prepared split. Pairs are grouped by target
length, so the decoder (which runs unpacked over ``tgt_in``) never steps over padding and its
histograms hold real steps only; the encoder runs packed, so its padding is masked anyway.
Batches are ordered by the corpus index of their first pair.

Gates are recorded in every LSTM of :class:`~g2lstm.mt.model.Seq2Seq`: ``enc_bi`` (the
bidirectional first encoder layer: direction 0 reads the source left to right, 1 right to
left), ``enc_rest`` (the other encoder layers) and ``dec_rnn`` (the decoder layers).

Token classes and heatmaps follow one layer, on its own side: source subwords for an encoder
layer (the tokens it reads: the source and ``</s>``), target subwords for a decoder layer (the
decoder input at each step: ``<s> y_1 .. y_n``, as an LM's input words). Statistics are per BPE
subword, not per joined word: a piece of a split word that follows another piece is counted
under its own entry ``@@piece`` (``"wal@@ king"`` -> ``wal@@``, ``@@king``), so every piece of a
split word is classed ``content`` and only whole words can be function words or punctuation.

:meth:`MTAdapter.bleu` is tokenised BLEU (higher is better) with
:func:`g2lstm.mt.translate.evaluate_split`, the function ``g2lstm mt eval`` uses;
:meth:`MTAdapter.perplexity` is the teacher-forced perplexity of the adapter's batches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from g2lstm.errors import ConfigError, DataError
from g2lstm.mt.batching import collate
from g2lstm.mt.config import DecodeConfig
from g2lstm.mt.model import Seq2Seq
from g2lstm.mt.prepared import PreparedData, load_prepared
from g2lstm.mt.translate import Translator, evaluate_split, resolve_split
from g2lstm.mt.vocab import Vocab
from g2lstm.nn import g2_modules

__all__ = [
    "INPUT_FORMATS",
    "SIDES",
    "MTAdapter",
    "check_prepared",
    "layer_side",
    "module_side",
    "mt_batches",
    "side_layer_index",
]

#: Which sentence a recorded layer reads: ``"source"`` (encoder) or ``"target"`` (decoder).
SIDES = ("source", "target")
#: Formats of heatmap sentences (as ``g2lstm mt translate --input-format``).
INPUT_FORMATS = ("raw", "tok", "bpe")
_SEP = "|||"
_BPE_MARK = "@@"

Batch = tuple[Tensor, Tensor, Tensor, Tensor]


def module_side(name: str) -> str:
    """``"source"`` for an encoder module name (``enc_*``), ``"target"`` for ``dec_*``."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf.startswith("enc"):
        return "source"
    if leaf.startswith("dec"):
        return "target"
    raise ConfigError(f"module {name!r} is neither an encoder (enc_*) nor a decoder (dec_*) LSTM")


def recorded_layers(model: nn.Module) -> list[tuple[str, int]]:
    """``(module name, layer)`` of every layer the gate analysis records, in module order
    (as :func:`g2lstm.analysis.recorded_layers`)."""
    return [(n, k) for n, m in g2_modules(model) for k in range(getattr(m, "num_layers", 1))]


def side_layer_index(model: nn.Module, side: str = "target") -> int:
    """Index into :func:`recorded_layers` of the first layer of ``side`` (``"target"``: the
    first decoder layer, the paper's Figs. 1/3)."""
    for i, (name, _) in enumerate(recorded_layers(model)):
        if module_side(name) == side:
            return i
    raise ConfigError(f"{type(model).__name__} has no recorded {side}-side LSTM layer")


def layer_side(models: Sequence[nn.Module], index: int) -> str:
    """The side of layer ``index`` (see :func:`side_layer_index`), the same in every model."""
    sides = set()
    for model in models:
        layers = recorded_layers(model)
        if index >= len(layers):
            raise ConfigError(f"--layer {index}: a model has only {len(layers)} recorded layers")
        sides.add(module_side(layers[index][0]))
    if len(sides) != 1:
        raise ConfigError(
            f"--layer {index} is an encoder layer in some models and a decoder layer in others; "
            "pick a layer index on the same side in every model"
        )
    return sides.pop()


def mt_batches(
    pairs: Sequence[tuple[Any, Any]],
    batch_size: int,
    max_batches: int | None = None,
    device: str | torch.device = "cpu",
) -> list[Batch]:
    """Collated batches of ``(src_ids, tgt_ids)`` pairs, each of one target length.

    Args:
        pairs: id sequences without ``<s>``/``</s>`` (:meth:`PreparedData.encoded`).
        batch_size: at most this many pairs per batch.
        max_batches: keep the first ``max_batches`` batches (by first corpus index).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r} must be an int >= 1")
    groups: dict[int, list[int]] = {}
    for i, (_, tgt) in enumerate(pairs):
        groups.setdefault(len(tgt), []).append(i)
    chunks = [g[j : j + batch_size] for g in groups.values() for j in range(0, len(g), batch_size)]
    chunks.sort(key=lambda c: c[0])
    out = []
    for chunk in chunks[:max_batches]:
        src, src_len, tgt_in, tgt_out = collate(
            [pairs[i] for i in chunk], Vocab.pad_id, Vocab.bos_id, Vocab.eos_id
        )
        out.append((src.to(device), src_len, tgt_in.to(device), tgt_out.to(device)))
    return out


def check_prepared(translator: Any, prepared: Any) -> None:
    """Refuse a model whose vocabularies differ from the prepared data's.

    Raises:
        DataError: naming the checkpoint and the data folder.
    """
    if translator.src_vocab != prepared.src_vocab or translator.tgt_vocab != prepared.tgt_vocab:
        raise DataError(
            f"{translator.checkpoint}: its vocabularies differ from those of the prepared data "
            f"{prepared.root}; pass the folder the run was trained on with --data"
        )


class MTAdapter:
    """Batches of one prepared split and the callables :func:`analyze_models` needs.

    Args:
        prepared: a :class:`~g2lstm.mt.prepare.PreparedData` or its folder.
        max_batches: keep at most this many batches (``None``: the whole split).
        batch_size: sentence pairs per batch.
        device: where batches are built.
        split: ``"valid"`` or ``"test"`` (or ``val``/``test2016``).
        side: ``"source"`` or ``"target"``: the tokens :meth:`tokens` and :meth:`encode` give
            (those of the followed layer, see :func:`layer_side`).
        decode: decoding settings of :meth:`bleu` (default :class:`DecodeConfig`, beam 5).
        bleu_limit: :meth:`bleu` scores only the first ``bleu_limit`` sentences.
        input_format: format of :meth:`encode`'s sentences, one of :data:`INPUT_FORMATS`.
    """

    def __init__(
        self,
        prepared: Any,
        max_batches: int | None = None,
        batch_size: int = 32,
        device: str | torch.device = "cpu",
        *,
        split: str = "valid",
        side: str = "target",
        decode: Any = None,
        bleu_limit: int | None = None,
        input_format: str = "raw",
    ) -> None:
        if side not in SIDES:
            raise ConfigError(f"side={side!r}: expected one of {SIDES}")
        if input_format not in INPUT_FORMATS:
            raise ConfigError(f"input_format={input_format!r}: expected one of {INPUT_FORMATS}")
        if bleu_limit is not None and (isinstance(bleu_limit, bool) or bleu_limit < 1):
            raise ConfigError(f"--limit {bleu_limit!r} must be an integer >= 1")
        if not isinstance(prepared, PreparedData):
            prepared = load_prepared(prepared)
        self.prepared = prepared
        self.split = resolve_split(prepared, split)
        if self.split == "train":
            raise ConfigError("MT analysis runs on the valid or test split, not train")
        self.side, self.input_format, self.bleu_limit = side, input_format, bleu_limit
        self.decode = decode if decode is not None else DecodeConfig()
        self.device = device
        self.pad = prepared.tgt_vocab.pad_id
        self.batches = mt_batches(prepared.encoded(self.split), batch_size, max_batches, device)
        vocab = prepared.src_vocab if side == "source" else prepared.tgt_vocab
        base = list(vocab.tokens)
        #: id -> token of :meth:`tokens`: the vocabulary, then ``@@piece`` for every piece
        self.itos: list[str] = base + [_BPE_MARK + t for t in base]
        self._continues = torch.tensor([t.endswith(_BPE_MARK) for t in base], dtype=torch.bool)
        self._bpe: Any = None

    # ------------------------------------------------------------------ analysis callables
    def forward(self, model: nn.Module, batch: Batch) -> Tensor:
        """Mean teacher-forced cross-entropy of ``batch`` (padding excluded)."""
        src, src_len, tgt_in, tgt_out = batch
        logits = model(src, src_len, tgt_in)
        return F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1), ignore_index=self.pad
        )

    def tokens(self, batch: Batch) -> Tensor:
        """``(T, B)`` ids into :attr:`itos` of the followed side: ``src`` (S, B) for the
        encoder, ``tgt_in`` (T, B) for the decoder; continuation pieces are shifted by V."""
        ids = (batch[0] if self.side == "source" else batch[2]).detach().cpu().long()
        cont = torch.zeros_like(ids, dtype=torch.bool)
        cont[1:] = self._continues[ids[:-1]]
        return ids + cont.long() * len(self._continues)

    def perplexity(self, model: nn.Module) -> float:
        """Teacher-forced perplexity over the adapter's batches (eval mode, no gradients)."""
        was = model.training
        model.eval()
        total, count = 0.0, 0
        try:
            with torch.no_grad():
                for batch in self.batches:
                    n = int((batch[3] != self.pad).sum())
                    total += float(self.forward(model, batch)) * n
                    count += n
        finally:
            model.train(was)
        return math.exp(min(total / max(count, 1), 50.0))

    def evaluate(self, model: nn.Module) -> float:
        """Same as :meth:`perplexity` (the metric of the ``reproduce`` MT analysis step)."""
        return self.perplexity(model)

    def bleu(self, model: nn.Module) -> float:
        """Tokenised BLEU of ``model`` on the split (``g2lstm mt eval``'s number)."""
        p, was = self.prepared, model.training
        tr = Translator(cast(Seq2Seq, model), p.src_vocab, p.tgt_vocab, p.config, self.decode)
        try:
            res = evaluate_split(tr, self.split, p, limit=self.bleu_limit)
        finally:
            model.train(was)
        return float(res.bleu.tok_bleu)

    # ------------------------------------------------------------------ heatmap sentences
    def default_sentence(self, lo: int = 8, hi: int = 16) -> str:
        """``"SOURCE ||| TARGET"`` (BPE'd, encode with ``input_format="bpe"``): the split's
        first pair whose target has ``lo``..``hi`` subwords (else its first pair)."""
        p = self.prepared
        src, tgt = p.lines(self.split, p.src_lang), p.lines(self.split, p.tgt_lang)
        if not src:
            raise DataError(f"{p.root}: the {self.split} split is empty")
        k = next((i for i, t in enumerate(tgt) if lo <= len(t.split()) <= hi), 0)
        return f"{src[k]} {_SEP} {tgt[k]}"

    def _segment(self, text: str, lang: str, fmt: str) -> list[str]:
        p = self.prepared
        if fmt == "raw":
            text = p.tokenizer(lang, tokenize=True).tokenize(text)
        elif fmt == "tok" and p.config.lowercase:
            text = text.lower()
        if fmt != "bpe" and p.config.bpe_merges > 0:
            if self._bpe is None:
                self._bpe = p.bpe()
            text = self._bpe.apply(text)
        return text.split()

    def encode(self, sentence: str, input_format: str | None = None) -> tuple[list[str], Batch]:
        """``(tokens, batch)`` of one sentence pair for a heatmap.

        ``sentence`` is ``"SOURCE ||| TARGET"``, or ``"SOURCE"`` alone: its target is then the
        reference of the same source in the split (needed for a decoder layer; an encoder
        layer reads the source only). The tokens are those the followed side reads
        (``SOURCE </s>`` or ``<s> TARGET``); unknown subwords show as ``piece→<unk>``.
        """
        p, fmt = self.prepared, input_format or self.input_format
        if fmt not in INPUT_FORMATS:
            raise ConfigError(f"input_format={fmt!r}: expected one of {INPUT_FORMATS}")
        src_text, sep, tgt_text = sentence.partition(_SEP)
        src = self._segment(src_text.strip(), p.src_lang, fmt)
        if not src:
            raise ConfigError(f"heatmap sentence {sentence!r} has an empty source")
        tgt = self._segment(tgt_text.strip(), p.tgt_lang, fmt) if sep else None
        if tgt is None:
            tgt = self._reference(src) if self.side == "target" else []
        if self.side == "target" and not tgt:
            raise ConfigError(f"heatmap sentence {sentence!r}: a decoder layer needs a target")
        src_ids, tgt_ids = p.src_vocab.encode(src), p.tgt_vocab.encode(tgt)
        batch = mt_batches([(src_ids, tgt_ids)], 1, device=self.device)[0]
        toks, ids = (src, src_ids) if self.side == "source" else (tgt, tgt_ids)
        shown = [t if i != p.src_vocab.unk_id else f"{t}→<unk>" for t, i in zip(toks, ids)]
        return ([*shown, "</s>"] if self.side == "source" else ["<s>", *shown]), batch

    def _reference(self, src: list[str]) -> list[str]:
        p = self.prepared
        line = " ".join(src)
        for s, t in zip(p.lines(self.split, p.src_lang), p.lines(self.split, p.tgt_lang)):
            if s == line:
                return t.split()
        raise ConfigError(
            f"heatmap source {line!r} is not in the {self.split} split, and a decoder layer "
            f"needs its target: write the sentence as 'SOURCE {_SEP} TARGET'"
        )
