"""Token <-> id vocabulary for MT, with the special tokens at fixed ids.

Ids: ``<pad>`` = 0, ``<unk>`` = 1, ``<s>`` = 2 (begin of sentence), ``</s>`` = 3 (end of
sentence), then the corpus tokens from most to least frequent (ties in string order, so a
vocabulary is a deterministic function of its text).

Example:
    >>> v = Vocab.build(["a b b", "b c"])
    >>> v.encode("b a x", add_eos=True)
    [4, 5, 1, 3]
    >>> v.decode([2, 4, 5, 3, 0, 0])
    'b a'
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from g2lstm.errors import ConfigError, DataError
from g2lstm.train.atomic import atomic_write_text

__all__ = ["BOS", "EOS", "PAD", "SPECIALS", "UNK", "Vocab"]

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
#: The special tokens, in id order.
SPECIALS = (PAD, UNK, BOS, EOS)
_FORMAT = "g2lstm.mt.vocab"
_VERSION = 1


class Vocab:
    """An immutable token list; a token's id is its position.

    Args:
        tokens: every token in id order, starting with :data:`SPECIALS`.

    Raises:
        DataError: the specials are not first or a token appears twice.
    """

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = tuple(tokens)
        if tokens[: len(SPECIALS)] != SPECIALS:
            raise DataError(
                f"Vocab: the first tokens must be {list(SPECIALS)}, got {list(tokens[:4])}."
            )
        index = {tok: i for i, tok in enumerate(tokens)}
        if len(index) != len(tokens):
            dup = next(t for t, c in Counter(tokens).items() if c > 1)
            raise DataError(f"Vocab: token {dup!r} appears more than once.")
        bad = next((t for t in tokens if not t or any(c.isspace() for c in t)), None)
        if bad is not None:
            raise DataError(f"Vocab: token {bad!r} is empty or contains whitespace.")
        self._tokens = tokens
        self._index = index

    @classmethod
    def build(
        cls, lines: Iterable[str], *, min_freq: int = 1, max_size: int | None = None
    ) -> Vocab:
        """Count the whitespace tokens of ``lines`` and keep the frequent ones.

        For a joint (shared) source+target vocabulary pass both sides' lines.

        Args:
            lines: tokenised (usually BPE'd) training text.
            min_freq: keep tokens seen at least this often.
            max_size: at most this many ids in total, specials included (``None`` = no cap).
        """
        counts: Counter[str] = Counter()
        for line in lines:
            counts.update(line.split())
        return cls.from_counts(counts, min_freq=min_freq, max_size=max_size)

    @classmethod
    def from_counts(
        cls,
        counts: Counter[str] | dict[str, int],
        *,
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> Vocab:
        """Like :meth:`build`, from token counts."""
        if min_freq < 1:
            raise ConfigError(f"Vocab: min_freq must be >= 1, got {min_freq}.")
        if max_size is not None and max_size < len(SPECIALS):
            raise ConfigError(
                f"Vocab: max_size must be >= {len(SPECIALS)} (the special tokens) or None, "
                f"got {max_size}."
            )
        kept = sorted(
            (tok for tok, c in counts.items() if c >= min_freq and tok not in SPECIALS),
            key=lambda tok: (-counts[tok], tok),
        )
        if max_size is not None:
            kept = kept[: max_size - len(SPECIALS)]
        return cls(SPECIALS + tuple(kept))

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._tokens == other._tokens

    def __hash__(self) -> int:
        return hash(self._tokens)

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"

    @property
    def tokens(self) -> tuple[str, ...]:
        """All tokens in id order."""
        return self._tokens

    def token_to_id(self, token: str) -> int:
        """The id of ``token``, or :attr:`unk_id` if it is not in the vocabulary."""
        return self._index.get(token, self.unk_id)

    def id_to_token(self, idx: int) -> str:
        """The token with id ``idx``."""
        if not 0 <= idx < len(self._tokens):
            raise ConfigError(f"Vocab: id {idx} is outside the vocabulary of {len(self)} tokens.")
        return self._tokens[idx]

    def encode(
        self, text: str | Sequence[str], *, add_bos: bool = False, add_eos: bool = False
    ) -> list[int]:
        """Ids of a sentence (a space-separated string or a token list); unknown -> ``<unk>``."""
        tokens = text.split() if isinstance(text, str) else text
        ids = [self._index.get(tok, self.unk_id) for tok in tokens]
        if add_bos:
            ids.insert(0, self.bos_id)
        if add_eos:
            ids.append(self.eos_id)
        return ids

    def decode_tokens(self, ids: Iterable[int], *, keep_unk: bool = True) -> list[str]:
        """Tokens of ``ids`` up to the first ``</s>``, without ``<pad>`` and ``<s>``.

        ``ids`` may be a list, a 1-D numpy array or a 1-D tensor. ``<unk>`` is kept (it is
        part of the hypothesis and counts towards its length) unless ``keep_unk=False``.
        """
        out: list[str] = []
        skip = {self.pad_id, self.bos_id} if keep_unk else {self.pad_id, self.bos_id, self.unk_id}
        for raw in ids:
            idx = int(raw)
            if idx == self.eos_id:
                break
            if idx not in skip:
                out.append(self.id_to_token(idx))
        return out

    def decode(self, ids: Iterable[int], *, keep_unk: bool = True) -> str:
        """:meth:`decode_tokens` joined with spaces (still BPE'd if the vocabulary is)."""
        return " ".join(self.decode_tokens(ids, keep_unk=keep_unk))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; :meth:`from_dict` inverts it."""
        return {"format": _FORMAT, "version": _VERSION, "tokens": list(self._tokens)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocab:
        """Rebuild a vocabulary from :meth:`to_dict` output."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise DataError(f"Vocab.from_dict: expected a dict with format={_FORMAT!r}.")
        if data.get("version") != _VERSION:
            raise DataError(
                f"Vocab.from_dict: version {data.get('version')!r} is not supported "
                f"(this g2lstm reads version {_VERSION})."
            )
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise DataError("Vocab.from_dict: 'tokens' must be a list of strings.")
        return cls(tokens)

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON (atomically: a symlink at ``path`` is replaced, not
        followed)."""
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a file written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path}: vocabulary file not found.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a JSON vocabulary file ({exc}).") from exc
        return cls.from_dict(data)
