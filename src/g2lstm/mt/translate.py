"""Batched translation and BLEU evaluation of a trained MT checkpoint.

A checkpoint written by :mod:`g2lstm.mt.trainer` is self-contained: its ``meta.json`` holds
the run configuration, both vocabularies, the preparation settings (tokeniser, lowercasing)
and the BPE codes, so :func:`load_translator` needs nothing else::

    tr = load_translator("runs/g2")                # run folder -> its best checkpoint
    out = tr.translate(["Ein Mann fährt Fahrrad."])  # raw text in, detokenised text out
    print(out.detok[0], out.sentences_per_second)

Pipeline: raw text -> Moses tokenisation (+ lowercase, as prepared) -> BPE -> ids -> beam
search (sentences sorted by length for batching, order restored) -> ids -> tokens -> BPE
removal (tokenised output) -> Moses detokenisation (detokenised output).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from g2lstm.errors import CheckpointError, ConfigError, DataError, G2LSTMError
from g2lstm.limits import build_checked
from g2lstm.mt.beam import beam_search, greedy_search
from g2lstm.mt.bleu import BleuResult, score_bleu, tok_lowercase
from g2lstm.mt.bpe import BPE, remove_bpe
from g2lstm.mt.config import DecodeConfig, MTConfig
from g2lstm.mt.data import Tokenizer, TokenizerConfig
from g2lstm.mt.model import Seq2Seq
from g2lstm.mt.prepare import MULTI30K_SPLITS, PrepareConfig, PreparedData, load_prepared
from g2lstm.mt.vocab import Vocab
from g2lstm.train import load_checkpoint, resolve_checkpoint
from g2lstm.train.progress import progress

__all__ = [
    "META_KIND",
    "EvalResult",
    "TranslationOutput",
    "Translator",
    "bpe_from_meta",
    "data_meta",
    "evaluate_split",
    "load_translator",
    "resolve_checkpoint",
    "resolve_split",
    "vocabs_from_meta",
]

#: ``meta["kind"]`` of an MT checkpoint.
META_KIND = "g2lstm.mt"
INPUT_FORMATS = ("raw", "tok", "bpe")


def data_meta(prepared: PreparedData) -> dict[str, Any]:
    """What a checkpoint must carry to translate on its own (JSON-ready)."""
    codes = prepared.root / "bpe.codes"
    joint = prepared.src_vocab is prepared.tgt_vocab
    return {
        "prepared_dir": str(prepared.root.resolve()),
        "prepare": prepared.config.to_dict(),
        "src_vocab": list(prepared.src_vocab.tokens),
        "tgt_vocab": None if joint else list(prepared.tgt_vocab.tokens),
        "bpe_codes": codes.read_text(encoding="utf-8") if prepared.config.bpe_merges else None,
    }


def vocabs_from_meta(data: dict[str, Any]) -> tuple[Vocab, Vocab]:
    """(source, target) vocabularies of :func:`data_meta` output; one shared object for a
    joint vocabulary (``tgt_vocab`` null)."""
    src = Vocab(data["src_vocab"])
    return src, (src if data["tgt_vocab"] is None else Vocab(data["tgt_vocab"]))


def bpe_from_meta(data: dict[str, Any]) -> BPE | None:
    """The BPE codes of :func:`data_meta` output, loaded; ``None`` for a run without BPE."""
    if not data.get("bpe_codes"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        codes = Path(tmp) / "bpe.codes"
        codes.write_text(data["bpe_codes"], encoding="utf-8")
        return BPE(codes)


@dataclass(frozen=True)
class TranslationOutput:
    """Translations of a list of sentences, in input order.

    Attributes:
        bpe: model output tokens (subwords) per sentence.
        tok: BPE removed (tokenised text; what tokenised BLEU scores).
        detok: Moses-detokenised text (what sacreBLEU scores).
        seconds: wall time of the search (tokenisation excluded).
        sentences_per_second: ``len(sentences) / seconds``.
    """

    bpe: list[str]
    tok: list[str]
    detok: list[str]
    seconds: float

    @property
    def sentences_per_second(self) -> float:
        return len(self.bpe) / self.seconds if self.seconds > 0 else math.inf


class Translator:
    """A model plus everything needed to turn text into translations.

    Args:
        model: the trained :class:`~g2lstm.mt.model.Seq2Seq` (put in eval mode here).
        src_vocab, tgt_vocab: vocabularies.
        prepare: the preparation settings (tokenisation, lowercasing, escapes).
        decode: beam size, length normalisation, maximum length, batch size.
        bpe: BPE codes for raw/tokenised input (``None`` = word-level model).
    """

    def __init__(
        self,
        model: Seq2Seq,
        src_vocab: Vocab,
        tgt_vocab: Vocab,
        prepare: PrepareConfig,
        decode: DecodeConfig,
        bpe: BPE | None = None,
    ) -> None:
        self.model = model.eval()
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.prepare = prepare
        self.decode = decode
        self.bpe = bpe
        #: where the model came from (set by :func:`load_translator`)
        self.checkpoint: Path | None = None
        #: the checkpoint's metadata (config, data settings) when loaded from one
        self.meta: dict[str, Any] = {}
        self._src_tok: Tokenizer | None = None
        self._tgt_detok: Tokenizer | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _source_tokenizer(self) -> Tokenizer:
        if self._src_tok is None:
            c = self.prepare.tokenizer_config(self.prepare.src_lang)
            self._src_tok = Tokenizer(
                TokenizerConfig(c.lang, True, c.lowercase, c.normalize_punct, c.escape)
            )
        return self._src_tok

    def detokenize(self, line: str) -> str:
        """Moses-detokenise one tokenised target sentence."""
        if self._tgt_detok is None:
            self._tgt_detok = Tokenizer(
                TokenizerConfig(self.prepare.tgt_lang, tokenize=False, escape=self.prepare.escape)
            )
        return self._tgt_detok.detokenize(line)

    def preprocess(self, line: str, input_format: str = "raw") -> str:
        """Raw / tokenised / BPE'd source sentence -> the BPE'd model input."""
        if input_format not in INPUT_FORMATS:
            raise ConfigError(f"input_format={input_format!r}; expected one of {INPUT_FORMATS}")
        if input_format == "raw":
            line = self._source_tokenizer().tokenize(line)
        elif self.prepare.lowercase and input_format == "tok":
            line = line.lower()
        if input_format != "bpe" and self.bpe is not None:
            line = self.bpe.apply(line)
        return line

    @torch.no_grad()
    def translate_ids(self, sources: Sequence[Sequence[int]]) -> list[list[int]]:
        """Translate id sequences (without ``</s>``; it is appended); returns output ids.

        Sentences are sorted by length, decoded ``decode.batch_size`` at a time and returned
        in input order. An empty source is translated from ``</s>`` alone.
        """
        cfg, vocab, device = self.decode, self.tgt_vocab, self.device
        if cfg.beam > 1 and self.model.decoder_noise_per_sequence():
            raise ConfigError(
                "beam search reorders and drops hypotheses between steps, which per-sequence "
                "gate noise (noise_schedule mask_per_sequence / noise_per_sequence with "
                "sampled gates) cannot follow; decode with beam 1 (greedy), or with soft or "
                "hard eval gates"
            )
        order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
        results: list[list[int]] = [[] for _ in sources]
        batches = progress(
            range(0, len(order), cfg.batch_size), desc="translating", unit="batch", leave=False
        )
        for start in batches:
            idx = order[start : start + cfg.batch_size]
            lengths = torch.tensor([len(sources[i]) + 1 for i in idx])
            src = torch.full((int(lengths.max()), len(idx)), vocab.pad_id, dtype=torch.long)
            for col, i in enumerate(idx):
                src[: len(sources[i]), col] = torch.as_tensor(list(sources[i]), dtype=torch.long)
                src[len(sources[i]), col] = self.src_vocab.eos_id
            state = self.model.encode(src.to(device), lengths)
            max_lens = (cfg.max_len_a * lengths.double() + cfg.max_len_b).floor().long()

            def step(tokens: torch.Tensor, st: Any) -> tuple[torch.Tensor, Any]:
                return self.model.step(tokens.to(device), st)

            common = {
                "batch_size": len(idx),
                "bos": vocab.bos_id,
                "eos": vocab.eos_id,
                "max_lens": max_lens,
                "pad": vocab.pad_id,
                "alpha": cfg.alpha,
            }
            if cfg.beam == 1:
                with self.model.noise_scope():  # the same rows at every step
                    hyps = greedy_search(step, state, **common)
            else:
                hyps = [h[0] for h in beam_search(step, state, beam=cfg.beam, **common)]
            for col, i in enumerate(idx):
                results[i] = hyps[col].tokens
        return results

    def translate(self, lines: Sequence[str], input_format: str = "raw") -> TranslationOutput:
        """Translate sentences; see :class:`TranslationOutput`. One output per input line; an
        empty (or blank) line gives an empty output line without running the model."""
        model_in = [self.preprocess(line, input_format) if line.strip() else "" for line in lines]
        ids = [self.src_vocab.encode(line) for line in model_in]
        full = [i for i, x in enumerate(ids) if x]
        start = time.perf_counter()
        out_ids: list[list[int]] = [[] for _ in ids]
        for i, out in zip(full, self.translate_ids([ids[i] for i in full])):
            out_ids[i] = out
        seconds = time.perf_counter() - start
        bpe = [self.tgt_vocab.decode(o) for o in out_ids]
        tok = [remove_bpe(b) for b in bpe]
        detok = [self.detokenize(t) for t in tok]
        return TranslationOutput(bpe, tok, detok, seconds)


def load_translator(
    path: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    decode: DecodeConfig | None = None,
    which: str = "best",
) -> Translator:
    """Rebuild the model of an MT checkpoint (or run folder) and wrap it in a Translator.

    Args:
        path: run folder, its ``checkpoints/`` or one checkpoint directory.
        device: where to run.
        decode: decoding settings (default: those stored with the run).
        which: ``"best"`` (lowest validation loss) or ``"last"`` for a run folder.
    """
    ckpt = load_checkpoint(resolve_checkpoint(path, which), map_location=device)
    meta = ckpt.meta
    if meta.get("kind") != META_KIND or "data" not in meta:
        raise CheckpointError(
            f"{ckpt.path} is not an MT checkpoint (meta kind {meta.get('kind')!r}); "
            "use the command of the model kind that wrote it"
        )
    try:
        cfg = MTConfig.from_dict(meta["config"])
        data = meta["data"]
        src_vocab, tgt_vocab = vocabs_from_meta(data)
        prepare = PrepareConfig(**data["prepare"])
        bpe = bpe_from_meta(data)
    except G2LSTMError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(
            f"{ckpt.path}/meta.json: malformed config, vocabulary or data settings "
            f"({type(exc).__name__}: {exc})"
        ) from None
    # sizes from meta.json are checked against the stored tensors before anything is built
    model = build_checked(
        lambda: Seq2Seq(cfg.model, len(src_vocab), len(tgt_vocab), pad_id=src_vocab.pad_id),
        ckpt.model_state,
        str(ckpt.path),
    )
    model.load_state_dict(ckpt.model_state)
    model.to(device)
    translator = Translator(model, src_vocab, tgt_vocab, prepare, decode or cfg.decode, bpe)
    translator.checkpoint = ckpt.path
    translator.meta = meta
    return translator


def resolve_split(prepared: PreparedData, split: str) -> str:
    """Accept a prepared split name or a Multi30k file prefix (``test2016`` -> ``test``)."""
    if split in prepared.splits:
        return split
    aliases = {prefix: name for name, prefix in MULTI30K_SPLITS.items()}
    if aliases.get(split) in prepared.splits:
        return aliases[split]
    raise ConfigError(f"{prepared.root}: no split {split!r}; it has {list(prepared.splits)}")


@dataclass(frozen=True)
class EvalResult:
    """BLEU and speed of one split.

    Attributes:
        split: the split name; bleu: both BLEU numbers; output: the translations.
    """

    split: str
    bleu: BleuResult
    output: TranslationOutput

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            **self.bleu.to_dict(),
            "seconds": self.output.seconds,
            "sentences_per_second": self.output.sentences_per_second,
        }


def evaluate_split(
    translator: Translator,
    split: str,
    prepared: PreparedData | str | os.PathLike[str] | None = None,
    *,
    limit: int | None = None,
    tok_case: str = "auto",
) -> EvalResult:
    """Translate a prepared split and score it (tokenised BLEU + detokenised sacreBLEU).

    Args:
        translator: from :func:`load_translator`.
        split: ``valid``/``test`` (or ``val``/``test2016``).
        prepared: the prepared folder (default: the one recorded in the checkpoint).
        limit: score only the first ``limit`` sentences.
        tok_case: case of the tokenised BLEU (:func:`g2lstm.mt.bleu.tok_lowercase`):
            ``auto`` (case-sensitive for a German target, lowercased otherwise), ``lc`` or
            ``mixed``. The sacreBLEU number is lowercased only when the data were.
    """
    lowercase = tok_lowercase(tok_case, translator.prepare.tgt_lang)
    if prepared is None:
        prepared = translator.meta.get("data", {}).get("prepared_dir")
        if prepared is None:
            raise DataError("evaluate_split: pass the prepared data folder (--data)")
    if not isinstance(prepared, PreparedData):
        prepared = load_prepared(prepared)
    split = resolve_split(prepared, split)
    tgt = prepared.tgt_lang
    src_lines = prepared.lines(split, prepared.src_lang)
    refs_tok = prepared.lines(split, tgt, "tok")
    refs_detok = prepared.lines(split, tgt, "detok")
    if limit is not None:
        src_lines, refs_tok, refs_detok = src_lines[:limit], refs_tok[:limit], refs_detok[:limit]
    output = translator.translate(src_lines, input_format="bpe")
    bleu = score_bleu(
        output.tok,
        refs_tok,
        output.detok,
        refs_detok,
        tok_lowercase=lowercase,
        detok_lowercase=prepared.config.lowercase,
    )
    return EvalResult(split, bleu, output)
