"""Word-level language-model corpora: vocabulary, token-id cache, batching and random BPTT.

Conventions (PyTorch ``word_language_model`` / AWD-LSTM): every line is split on whitespace
and gets one ``<eos>``, so an empty line is a lone ``<eos>``. Unlike AWD-LSTM the vocabulary is
built from ``train.txt`` only, in order of first appearance; words of ``valid``/``test`` that
are not in it count as out-of-vocabulary (OOV) and map to ``<unk>`` (added to the vocabulary
when the training text has none).

Token ids are cached as ``int32`` ``.npy`` files (``<folder>/.g2lstm-cache/lm-<key>/``, or
``<user cache>/lm/lm-<key>/`` when the folder is read-only), keyed by the sha256 of the three
files and :data:`TOKENIZER_VERSION`; later loads memory-map them (``np.load(mmap_mode="r")``).
The first load streams each file twice (count, then write ids), so memory stays flat.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from g2lstm.datasets import LM_LAYOUT, check_layout, file_digests, is_writable_dir, user_cache_dir
from g2lstm.errors import ConfigError, DataError

__all__ = [
    "EOS",
    "SPLITS",
    "TOKENIZER_VERSION",
    "UNK",
    "BPTTIterator",
    "BPTTStep",
    "Corpus",
    "SplitInfo",
    "Vocabulary",
    "batchify",
    "get_batch",
    "read_lines",
    "sample_seq_len",
    "tokenize_lines",
]

logger = logging.getLogger(__name__)

UNK, EOS = "<unk>", "<eos>"
SPLITS = ("train", "valid", "test")
#: Bump when tokenisation changes: it is part of the cache key.
TOKENIZER_VERSION = 1
_CACHE_FORMAT = 1
_FLUSH = 1 << 20


class Vocabulary:
    """Bijection token <-> id (ids ``0 .. len-1`` in insertion order)."""

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self._itos: list[str] = []
        self._stoi: dict[str, int] = {}
        for token in tokens:
            if token in self._stoi:
                raise DataError(f"duplicate token {token!r} in vocabulary")
            self.add(token)

    def add(self, token: str) -> int:
        """Id of ``token``, appending it if new."""
        idx = self._stoi.get(token)
        if idx is None:
            idx = self._stoi[token] = len(self._itos)
            self._itos.append(token)
        return idx

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __iter__(self) -> Iterator[str]:
        return iter(self._itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._itos == other._itos

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    def index(self, token: str) -> int:
        """Id of ``token``; its ``<unk>`` id if absent and the vocabulary has one."""
        idx = self._stoi.get(token, self.unk_id)
        if idx is None:
            raise KeyError(f"token {token!r} is not in the vocabulary and there is no {UNK}")
        return idx

    def token(self, idx: int) -> str:
        """Token of id ``idx``."""
        return self._itos[idx]

    @property
    def unk_id(self) -> int | None:
        """Id of ``<unk>``, or ``None``."""
        return self._stoi.get(UNK)

    @property
    def eos_id(self) -> int | None:
        """Id of ``<eos>``, or ``None``."""
        return self._stoi.get(EOS)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of ``tokens`` (OOV -> ``<unk>``)."""
        return [self.index(t) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids``."""
        return [self._itos[int(i)] for i in ids]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: ``{"format": "g2lstm-vocab", "version": 1, "tokens": [...]}``."""
        return {"format": "g2lstm-vocab", "version": 1, "tokens": list(self._itos)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Vocabulary:
        """Inverse of :meth:`to_dict`; ``DataError`` on anything else."""
        tokens = data.get("tokens") if isinstance(data, Mapping) else None
        if (
            not isinstance(data, Mapping)
            or data.get("format") != "g2lstm-vocab"
            or data.get("version") != 1
            or not isinstance(tokens, list)
            or not all(isinstance(t, str) for t in tokens)
        ):
            raise DataError("not a g2lstm vocabulary (expected format 'g2lstm-vocab' version 1)")
        return cls(tokens)

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read a vocabulary written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read vocabulary {path}: {e}") from e
        return cls.from_dict(data)

    def sha256(self) -> str:
        """Hash of the token list (to compare a checkpoint's vocabulary with the data's)."""
        return hashlib.sha256("\n".join(self._itos).encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- tokenisation
def _decode_error(path: Path) -> DataError:
    """Find the first line of ``path`` that is not UTF-8 and describe it."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return DataError(
                    f"{path}, line {lineno}: byte 0x{raw[e.start]:02x} at column {e.start + 1} "
                    "is not valid UTF-8; re-encode the file as UTF-8 (e.g. iconv -f latin1 -t "
                    "utf-8)"
                )
    return DataError(f"{path}: not valid UTF-8; re-encode the file as UTF-8")


def read_lines(path: str | Path) -> Iterator[str]:
    """Lines of a UTF-8 text file (BOM dropped, ``\\n``/``\\r\\n``/``\\r`` accepted).

    Raises ``DataError`` naming the file and line of the first byte that is not UTF-8.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline=None) as f:
            yield from f
    except UnicodeDecodeError:
        raise _decode_error(path) from None


def tokenize_lines(lines: Iterable[str]) -> Iterator[list[str]]:
    """``line.split() + ["<eos>"]`` for each line (an empty line gives ``["<eos>"]``)."""
    for line in lines:
        tokens = line.split()
        tokens.append(EOS)
        yield tokens


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


# ----------------------------------------------------------------------------- batching
def batchify(
    data: np.ndarray | torch.Tensor,
    batch_size: int,
    *,
    name: str = "data",
    dtype: torch.dtype = torch.long,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Cut a 1-D id sequence into ``batch_size`` contiguous streams: shape
    ``(n_steps, batch_size)`` with ``n_steps = len(data) // batch_size``; the remainder is
    dropped (AWD-LSTM). Column ``b`` is ``data[b * n_steps : (b + 1) * n_steps]``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
    n_steps = len(data) // batch_size
    if n_steps < 2:
        raise DataError(
            f"the {name} split has {len(data)} tokens, fewer than 2 x batch_size = "
            f"{2 * batch_size} needed for one step (input + target); use a smaller batch size "
            "or a larger split"
        )
    used = data[: n_steps * batch_size]
    if isinstance(used, torch.Tensor):
        flat = used.to(dtype)
    else:
        flat = torch.from_numpy(np.array(used, dtype=np.int64)).to(dtype)
    return flat.view(batch_size, n_steps).t().contiguous().to(device)


def get_batch(source: torch.Tensor, i: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input, target)``, each ``(T, B)`` views of ``source`` ``(n_steps, B)`` with
    ``T = min(seq_len, n_steps - 1 - i)``; ``target`` is ``input`` shifted by one step."""
    n = source.size(0)
    length = min(seq_len, n - 1 - i)
    if i < 0 or seq_len < 1 or length < 1:
        raise ConfigError(
            f"get_batch: start {i} with seq_len {seq_len} leaves no target in "
            f"a source of {n} steps (valid starts: 0..{n - 2})"
        )
    return source[i : i + length], source[i + 1 : i + 1 + length]


class BPTTStep(NamedTuple):
    """One truncated-BPTT segment: rows ``start .. start + seq_len`` and the LR factor."""

    start: int
    seq_len: int
    lr_scale: float


Rng = np.random.Generator | torch.Generator


def _uniform(rng: Rng) -> float:
    if isinstance(rng, torch.Generator):
        return float(torch.rand((), generator=rng, dtype=torch.float64))
    return float(rng.random())


def _normal(rng: Rng, mean: float, std: float) -> float:
    if isinstance(rng, torch.Generator):
        return mean + std * float(torch.randn((), generator=rng, dtype=torch.float64))
    return float(rng.normal(mean, std))


def sample_seq_len(
    rng: Rng,
    bptt: int,
    *,
    p_full: float = 0.95,
    std: float = 5.0,
    min_len: int = 5,
    max_extra: int = 20,
) -> int:
    """AWD-LSTM's random length: ``base = bptt`` with probability ``p_full`` else
    ``bptt / 2``; ``round(N(base, std))`` clamped to ``[min(min_len, bptt), bptt + max_extra]``
    (AWD-LSTM truncates instead of rounding and has no upper clamp)."""
    base = bptt if _uniform(rng) < p_full else bptt / 2
    drawn = round(_normal(rng, base, std))
    return int(min(max(drawn, min(min_len, bptt)), bptt + max_extra))


class BPTTIterator:
    """The segments of one epoch over a batchified source of ``n_steps`` rows.

    With ``variable`` (training) lengths come from :func:`sample_seq_len` with ``rng`` (a
    ``numpy.random.Generator`` or ``torch.Generator``); otherwise every segment has length
    ``bptt`` (evaluation). The last segment is cut to the rows left; ``lr_scale`` is
    ``seq_len / bptt`` of the segment actually yielded. To resume at row ``start``, pass a
    generator in the state it had at the start of the epoch (e.g. seeded by ``(seed,
    epoch)``): the earlier draws are replayed. Each iterator is meant to be iterated once.
    """

    def __init__(
        self,
        n_steps: int,
        bptt: int,
        *,
        rng: Rng | None = None,
        variable: bool = True,
        p_full: float = 0.95,
        std: float = 5.0,
        min_len: int = 5,
        max_extra: int = 20,
        start: int = 0,
    ) -> None:
        if bptt < 1 or min_len < 1 or max_extra < 0 or std < 0 or not 0.0 <= p_full <= 1.0:
            raise ConfigError(
                f"BPTTIterator: need bptt >= 1, min_len >= 1, max_extra >= 0, std >= 0, "
                f"0 <= p_full <= 1; got bptt={bptt}, min_len={min_len}, "
                f"max_extra={max_extra}, std={std}, p_full={p_full}"
            )
        if variable and not isinstance(rng, np.random.Generator | torch.Generator):
            raise ConfigError(
                "BPTTIterator(variable=True) needs rng=np.random.default_rng(seed) "
                "or a torch.Generator, so the lengths are reproducible"
            )
        if not 0 <= start < max(n_steps - 1, 1):
            raise ConfigError(f"BPTTIterator: start {start} outside 0..{n_steps - 2}")
        self.n_steps, self.bptt, self.rng, self.variable = n_steps, bptt, rng, variable
        self._kw = {"p_full": p_full, "std": std, "min_len": min_len, "max_extra": max_extra}
        self.start = start

    def __iter__(self) -> Iterator[BPTTStep]:
        i = 0
        while i < self.n_steps - 1:
            if self.variable:
                seq_len = sample_seq_len(self.rng, self.bptt, **self._kw)  # type: ignore[arg-type]
            else:
                seq_len = self.bptt
            seq_len = min(seq_len, self.n_steps - 1 - i)
            if i >= self.start:
                yield BPTTStep(i, seq_len, seq_len / self.bptt)
            elif i + seq_len > self.start:
                raise ConfigError(
                    f"BPTTIterator: start {self.start} is not a segment boundary of this "
                    f"schedule (segment {i}..{i + seq_len}); pass the generator in its "
                    "start-of-epoch state and a start taken from a yielded BPTTStep"
                )
            i += seq_len
