"""Word-LM vocabulary and tokenisation: :class:`Vocabulary`, :func:`read_lines`,
:func:`tokenize_lines` and the special tokens ``<unk>``/``<eos>`` (conventions in
:mod:`g2lstm.lm.data`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from g2lstm.errors import DataError
from g2lstm.train.atomic import atomic_write_text

__all__ = ["EOS", "UNK", "Vocabulary", "read_lines", "tokenize_lines"]

UNK, EOS = "<unk>", "<eos>"


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
        """Write :meth:`to_dict` as JSON (atomically: a symlink at ``path`` is replaced, not
        followed)."""
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False))

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
