"""Word-level language-model corpora: vocabulary, tokenisation and the token-id cache.

Conventions (PyTorch ``word_language_model`` / AWD-LSTM): every line is split on whitespace
and gets one ``<eos>``, so an empty line is a lone ``<eos>``. Unlike AWD-LSTM the vocabulary is
built from ``train.txt`` only, in order of first appearance; words of ``valid``/``test`` that
are not in it count as out-of-vocabulary (OOV) and map to ``<unk>`` (added to the vocabulary
when the training text has none).

Token ids are cached as ``int32`` ``.npy`` files (``<folder>/.g2lstm-cache/lm-<key>/``, or
``<user cache>/lm/lm-<key>/`` when the folder is read-only), keyed by the sha256 of the three
files and :data:`TOKENIZER_VERSION`; later loads memory-map them (``np.load(mmap_mode="r")``).
The first load streams each file twice (count, then write ids), so memory stays flat.

:class:`Vocabulary`, :func:`read_lines`, :func:`tokenize_lines` (:mod:`g2lstm.lm.vocab`) and
batching and random BPTT (:func:`batchify`, :func:`get_batch`, :func:`sample_seq_len`,
:class:`BPTTStep`, :class:`BPTTIterator`, :mod:`g2lstm.lm.batching`) are re-exported here, so
``from g2lstm.lm.data import batchify`` keeps working.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from g2lstm.datasets import LM_LAYOUT, check_layout, file_digests, is_writable_dir, user_cache_dir
from g2lstm.errors import ConfigError, DataError
from g2lstm.lm.batching import BPTTIterator, BPTTStep, Rng, batchify, get_batch, sample_seq_len
from g2lstm.lm.vocab import EOS, UNK, Vocabulary, read_lines, tokenize_lines

__all__ = [
    "EOS",
    "SPLITS",
    "TOKENIZER_VERSION",
    "UNK",
    "BPTTIterator",
    "BPTTStep",
    "Corpus",
    "Rng",
    "SplitInfo",
    "Vocabulary",
    "batchify",
    "get_batch",
    "read_lines",
    "sample_seq_len",
    "tokenize_lines",
]

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
#: Bump when tokenisation changes: it is part of the cache key.
TOKENIZER_VERSION = 1
_CACHE_FORMAT = 1
_FLUSH = 1 << 20


@dataclass(frozen=True)
class SplitInfo:
    """Counts of one split: lines, tokens (words + one ``<eos>`` per line), OOV tokens."""

    name: str
    n_lines: int
    n_tokens: int
    n_oov: int

    @property
    def oov_rate(self) -> float:
        """Fraction of the split's tokens that are not in the training vocabulary."""
        return self.n_oov / self.n_tokens if self.n_tokens else 0.0


def _count(path: Path, name: str, vocab: Vocabulary, grow: bool) -> SplitInfo:
    """Pass 1: count lines/tokens/OOV; with ``grow`` add every new token to ``vocab``."""
    n_lines = n_tokens = n_oov = 0
    for tokens in tokenize_lines(read_lines(path)):
        n_lines += 1
        n_tokens += len(tokens)
        if grow:
            for t in tokens:
                vocab.add(t)
        else:
            n_oov += sum(t not in vocab for t in tokens)
    return SplitInfo(name, n_lines, n_tokens, n_oov)


def _write_ids(path: Path, info: SplitInfo, vocab: Vocabulary, out: Path | None) -> np.ndarray:
    """Pass 2: the ids of ``path`` as int32, into ``out`` (``.npy``) or memory."""
    shape = (info.n_tokens,)
    if out is None:
        arr = np.empty(shape, dtype=np.int32)
    else:
        arr = np.lib.format.open_memmap(out, mode="w+", dtype=np.int32, shape=shape)
    stoi, unk = vocab._stoi, -1 if vocab.unk_id is None else vocab.unk_id
    changed = DataError(f"{path} changed while it was being read; load the corpus again")
    buf: list[int] = []
    pos = 0
    for tokens in tokenize_lines(read_lines(path)):
        buf.extend([stoi.get(t, unk) for t in tokens])
        if len(buf) >= _FLUSH:
            if pos + len(buf) > info.n_tokens:
                raise changed
            arr[pos : pos + len(buf)] = buf
            pos, buf = pos + len(buf), []
    if pos + len(buf) != info.n_tokens:
        raise changed
    arr[pos:] = buf
    if unk < 0 and int(arr.min()) < 0:
        raise changed
    if isinstance(arr, np.memmap):
        arr.flush()
    return arr


# ----------------------------------------------------------------------------- corpus
class Corpus:
    """Vocabulary plus the ``train``/``valid``/``test`` token ids (1-D ``int32`` arrays,
    memory-mapped when cached) and their :class:`SplitInfo`."""

    def __init__(
        self,
        vocab: Vocabulary,
        splits: Mapping[str, np.ndarray],
        info: Mapping[str, SplitInfo],
        folder: Path,
        cache_path: Path | None = None,
    ) -> None:
        self.vocab, self.folder, self.cache_path = vocab, folder, cache_path
        self.splits, self.info = dict(splits), dict(info)

    train = property(lambda self: self.splits["train"], doc="Training ids, shape (N,).")
    valid = property(lambda self: self.splits["valid"], doc="Validation ids, shape (N,).")
    test = property(lambda self: self.splits["test"], doc="Test ids, shape (N,).")

    def __getitem__(self, split: str) -> np.ndarray:
        if split not in self.splits:
            raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        return self.splits[split]

    def head(self, n_tokens: int | None) -> Corpus:
        """The first ``n_tokens`` ids of every split (all of them when None); same vocabulary.

        Used by ``train.limit_tokens`` (the ``tiny`` preset): a quick run on any dataset.
        """
        if n_tokens is None:
            return self
        splits = {name: ids[:n_tokens] for name, ids in self.splits.items()}
        return Corpus(self.vocab, splits, self.info, self.folder, self.cache_path)

    def tensor(self, split: str) -> torch.Tensor:
        """A split as an int64 tensor of shape (N,) (a copy)."""
        return torch.from_numpy(np.array(self[split], dtype=np.int64))

    def oov_rate(self, split: str) -> float:
        """OOV fraction of ``split`` (0 for train by construction)."""
        return self.info[split].oov_rate

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={self.info[s].n_tokens}" for s in SPLITS)
        return f"Corpus({self.folder}, vocab={len(self.vocab)}, {sizes})"

    @classmethod
    def load(
        cls,
        folder: str | Path,
        *,
        cache: bool = True,
        cache_dir: str | Path | None = None,
        vocab: Vocabulary | None = None,
    ) -> Corpus:
        """Load ``folder/{train,valid,test}.txt``.

        ``vocab`` fixes the vocabulary (e.g. a checkpoint's): OOV words then need its
        ``<unk>``. ``cache_dir`` overrides where token ids are cached; ``cache=False``
        tokenises into memory and writes nothing.
        """
        folder = Path(folder)
        check_layout(folder, LM_LAYOUT, what="language-model corpus")
        if vocab is not None and EOS not in vocab:
            raise DataError(f"the given vocabulary has no {EOS}; it is not a word-LM vocabulary")
        if not cache:
            return _tokenize(cls, folder, vocab, None)
        digests = file_digests(folder, LM_LAYOUT)
        key_src = {
            "tokenizer": TOKENIZER_VERSION,
            "files": digests,
            "vocab": vocab.sha256() if vocab is not None else None,
        }
        key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:24]
        local = cache_dir is None and is_writable_dir(folder)
        if cache_dir is not None:
            root = Path(cache_dir)
        else:
            root = folder / ".g2lstm-cache" if local else user_cache_dir() / "lm"
        entry = root / f"lm-{key}"
        if (entry / "meta.json").is_file():
            try:
                return _load_cached(cls, folder, entry, digests)
            except (DataError, OSError, ValueError, KeyError, TypeError) as e:
                logger.warning("ignoring unreadable token cache %s (%s); rebuilding", entry, e)
                shutil.rmtree(entry, ignore_errors=True)
        try:
            root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-lm-", dir=root))
        except OSError as e:
            logger.warning("cannot write token cache under %s (%s); not caching", root, e)
            return _tokenize(cls, folder, vocab, None)
        try:
            _tokenize(cls, folder, vocab, tmp, digests)
            try:
                tmp.rename(entry)
            except OSError:  # another process wrote the same entry meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if local:
            _prune(root, keep=entry, digests=digests)
        return _load_cached(cls, folder, entry, digests)


def _tokenize(
    cls: type[Corpus],
    folder: Path,
    vocab: Vocabulary | None,
    out: Path | None,
    digests: Mapping[str, str] | None = None,
) -> Corpus:
    """Two streaming passes over each split; writes ``out/*.npy`` + ``meta.json`` if ``out``."""
    fixed = vocab is not None
    vocab = Vocabulary(vocab) if vocab is not None else Vocabulary()
    info = {}
    for split in SPLITS:
        info[split] = _count(
            folder / f"{split}.txt", split, vocab, grow=split == "train" and not fixed
        )
        if info[split].n_tokens == 0:
            raise DataError(f"{folder / f'{split}.txt'} has 0 tokens; every split needs text")
    oov = {s: i.n_oov for s, i in info.items() if i.n_oov}
    if oov and vocab.unk_id is None:
        if fixed:
            raise DataError(
                f"{folder}: {oov} tokens are not in the given vocabulary and it has no {UNK}; "
                "use the vocabulary the model was trained with on matching data"
            )
        vocab.add(UNK)
    splits = {
        s: _write_ids(folder / f"{s}.txt", info[s], vocab, out / f"{s}.npy" if out else None)
        for s in SPLITS
    }
    if out is not None:
        vocab.save(out / "vocab.json")
        meta = {
            "format": "g2lstm-lm-cache",
            "version": _CACHE_FORMAT,
            "tokenizer": TOKENIZER_VERSION,
            "files": dict(digests or {}),
            "splits": {s: [i.n_lines, i.n_tokens, i.n_oov] for s, i in info.items()},
        }
        (out / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    for split, arr in splits.items():
        logger.info("%s: %d tokens, OOV rate %.4f", split, len(arr), info[split].oov_rate)
    return cls(vocab, splits, info, folder, out)


def _prune(root: Path, keep: Path, digests: Mapping[str, str]) -> None:
    """Delete the entries of a folder-local cache made for contents the folder no longer has."""
    for entry in root.glob("lm-*"):
        try:
            stale = (
                json.loads((entry / "meta.json").read_text(encoding="utf-8"))["files"] != digests
            )
        except (OSError, ValueError, KeyError, TypeError):
            stale = True
        if entry != keep and stale:
            shutil.rmtree(entry, ignore_errors=True)


def _load_cached(
    cls: type[Corpus], folder: Path, entry: Path, digests: Mapping[str, str]
) -> Corpus:
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    if (meta.get("format"), meta.get("version"), meta.get("tokenizer")) != (
        "g2lstm-lm-cache",
        _CACHE_FORMAT,
        TOKENIZER_VERSION,
    ) or meta.get("files") != dict(digests):
        raise DataError(f"{entry} does not describe the current files")
    info = {s: SplitInfo(s, *map(int, meta["splits"][s])) for s in SPLITS}
    splits = {}
    for s in SPLITS:
        arr = np.load(entry / f"{s}.npy", mmap_mode="r", allow_pickle=False)
        if arr.dtype != np.int32 or arr.shape != (info[s].n_tokens,):
            raise DataError(f"{entry / f'{s}.npy'} has the wrong shape or dtype")
        splits[s] = arr
    return cls(Vocabulary.load(entry / "vocab.json"), splits, info, folder, entry)
