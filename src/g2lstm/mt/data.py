"""Reading, tokenising and filtering parallel text for machine translation.

Everything here works on plain Python strings, one sentence per line; nothing imports torch.

* :func:`read_parallel` reads two line-aligned files (UTF-8, ``\\n`` or ``\\r\\n`` line ends),
  drops pairs where either side is empty and reports what it dropped in a :class:`ReadReport`.
* :class:`Tokenizer` wraps sacremoses (Moses ``tokenizer.perl``, ``normalize-punctuation.perl``
  and ``detokenizer.perl``) or passes already-tokenised text through.
* :func:`filter_pairs` is Moses ``clean-corpus-n.perl``: it drops pairs with a side shorter than
  ``min_len`` or longer than ``max_len`` whitespace tokens, or whose length ratio exceeds
  ``ratio``, and counts each reason in a :class:`FilterReport`.
* :func:`read_iwslt_train_tags` and :func:`read_iwslt_xml_segments` read the raw files of the
  IWSLT'14 ``de-en`` release the way fairseq's ``prepare-iwslt14.sh`` does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from g2lstm.errors import ConfigError, DataError

__all__ = [
    "FilterReport",
    "ParallelText",
    "ReadReport",
    "Tokenizer",
    "TokenizerConfig",
    "filter_pairs",
    "read_iwslt_train_tags",
    "read_iwslt_xml_segments",
    "read_lines",
    "read_parallel",
]

#: How many dropped (file, line) locations a :class:`ReadReport` lists.
MAX_REPORTED = 5


def read_lines(path: str | Path) -> list[str]:
    """Read a UTF-8 text file as a list of lines without their ``\\n`` / ``\\r\\n`` endings.

    Only ``\\n`` separates lines (``str.splitlines`` would also split on U+2028, U+0085, ... and
    silently misalign parallel files). A UTF-8 byte-order mark at the start is dropped.

    Raises:
        DataError: the file is missing, or is not valid UTF-8 (the message names the line).
    """
    return _read_lines(Path(path))[0]


def _read_lines(path: Path) -> tuple[list[str], int]:
    """:func:`read_lines` plus the number of lines that ended in ``\\r\\n``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the path.") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc}).") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise DataError(
            f"{path}:{line_no}: not valid UTF-8 (byte 0x{bad} at column {column}); re-encode "
            f"the file, e.g. `iconv -f latin1 -t utf-8 {path.name}`."
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline does not start another line
    num_crlf = data.count(b"\r\n")
    if num_crlf:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return lines, num_crlf


@dataclass(frozen=True)
class ReadReport:
    """What :func:`read_parallel` read and dropped.

    Attributes:
        src_path, tgt_path: the two files.
        num_lines: lines in each file.
        num_pairs: pairs kept.
        num_empty: pairs dropped because at least one side was empty or whitespace only.
        empty_lines: ``(file, 1-based line)`` of the first few empty sides found.
        num_crlf: lines (both files together) that ended in ``\\r\\n``.
    """

    src_path: str
    tgt_path: str
    num_lines: int
    num_pairs: int
    num_empty: int
    empty_lines: tuple[tuple[str, int], ...] = ()
    num_crlf: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the report."""
        out = asdict(self)
        out["empty_lines"] = [list(loc) for loc in self.empty_lines]
        return out

    def __str__(self) -> str:
        text = f"{self.src_path} / {self.tgt_path}: {self.num_pairs} of {self.num_lines} pairs kept"
        if self.num_empty:
            where = ", ".join(f"{Path(f).name}:{n}" for f, n in self.empty_lines)
            text += f", {self.num_empty} dropped as empty (first: {where})"
        return text


@dataclass(frozen=True)
class ParallelText:
    """Aligned sentences read by :func:`read_parallel`.

    Attributes:
        src, tgt: the kept sentences, ``src[i]`` aligned with ``tgt[i]``.
        line_numbers: the 1-based line of pair ``i`` in both files.
        report: what was read and dropped.
    """

    src: list[str]
    tgt: list[str]
    line_numbers: list[int]
    report: ReadReport

    def __len__(self) -> int:
        return len(self.src)


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> ParallelText:
    """Read two line-aligned UTF-8 files; drop (and count) pairs with an empty side.

    Raises:
        DataError: a file is missing or not UTF-8 (naming file and line), or the two files have
            different numbers of lines (naming both files and both counts).
    """
    src_path, tgt_path = Path(src_path), Path(tgt_path)
    (src_lines, src_crlf), (tgt_lines, tgt_crlf) = _read_lines(src_path), _read_lines(tgt_path)
    if len(src_lines) != len(tgt_lines):
        raise DataError(
            f"parallel files are not aligned: {src_path} has {len(src_lines)} lines but "
            f"{tgt_path} has {len(tgt_lines)}; each line of one must translate the same line "
            f"of the other."
        )
    src: list[str] = []
    tgt: list[str] = []
    numbers: list[int] = []
    empty: list[tuple[str, int]] = []
    num_empty = 0
    for i, (s, t) in enumerate(zip(src_lines, tgt_lines), start=1):
        s_empty, t_empty = not s.strip(), not t.strip()
        if s_empty or t_empty:
            num_empty += 1
            for is_empty, p in ((s_empty, src_path), (t_empty, tgt_path)):
                if is_empty and len(empty) < MAX_REPORTED:
                    empty.append((str(p), i))
            continue
        src.append(s)
        tgt.append(t)
        numbers.append(i)
    report = ReadReport(
        src_path=str(src_path),
        tgt_path=str(tgt_path),
        num_lines=len(src_lines),
        num_pairs=len(src),
        num_empty=num_empty,
        empty_lines=tuple(empty),
        num_crlf=src_crlf + tgt_crlf,
    )
    return ParallelText(src, tgt, numbers, report)


@dataclass(frozen=True)
class TokenizerConfig:
    """How text of one language is tokenised.

    Attributes:
        lang: language code for Moses' rules and non-breaking prefixes (``"de"``, ``"en"``).
        tokenize: ``True`` runs the Moses tokenizer; ``False`` passes already-tokenised text
            through (only whitespace is normalised and, if asked, case is lowered).
        lowercase: lowercase after tokenising (Moses ``lowercase.perl``).
        normalize_punct: run Moses ``normalize-punctuation.perl`` first (raw text only).
        escape: the tokenised text carries Moses XML escapes (``&apos;``, ``&quot;``,
            ``&amp;``, ...): the tokenizer writes them (``tokenizer.perl``'s default) and
            :meth:`Tokenizer.detokenize` undoes them. The Multi30k ``tok`` files and fairseq's
            IWSLT'14 data are escaped.
        aggressive_dash_splits: Moses ``-a`` (split hyphenated words).
    """

    lang: str
    tokenize: bool = True
    lowercase: bool = False
    normalize_punct: bool = False
    escape: bool = False
    aggressive_dash_splits: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.lang, str) or not re.fullmatch(r"[A-Za-z][A-Za-z_-]*", self.lang):
            raise ConfigError(
                f"TokenizerConfig.lang must be a language code like 'de', got {self.lang!r}."
            )
        if self.normalize_punct and not self.tokenize:
            raise ConfigError(
                "TokenizerConfig: normalize_punct=True needs tokenize=True; punctuation "
                "normalisation is for raw text and would change already-tokenised text."
            )


class Tokenizer:
    """Moses tokenisation / detokenisation for one language (sacremoses).

    Example:
        >>> tok = Tokenizer(TokenizerConfig("en", lowercase=True))
        >>> tok.tokenize("Hello, world!")
        'hello , world !'
        >>> tok.detokenize("hello , world !")
        'hello, world!'
    """

    def __init__(self, config: TokenizerConfig) -> None:
        from sacremoses import MosesDetokenizer, MosesPunctNormalizer, MosesTokenizer

        self.config = config
        self._tok = MosesTokenizer(config.lang) if config.tokenize else None
        self._norm = MosesPunctNormalizer(config.lang) if config.normalize_punct else None
        self._detok = MosesDetokenizer(config.lang)

    def tokenize(self, line: str) -> str:
        """Tokenise one sentence; returns space-separated tokens, no leading/trailing space."""
        cfg = self.config
        if self._norm is not None:
            line = self._norm.normalize(line)
        if self._tok is not None:
            line = self._tok.tokenize(
                line,
                return_str=True,
                escape=cfg.escape,
                aggressive_dash_splits=cfg.aggressive_dash_splits,
            )
        line = " ".join(line.split())
        return line.lower() if cfg.lowercase else line

    def tokenize_lines(self, lines: Sequence[str]) -> list[str]:
        """:meth:`tokenize` on every line."""
        return [self.tokenize(line) for line in lines]

    def detokenize(self, line: str) -> str:
        """Moses-detokenise one space-separated sentence (undoing escapes if ``escape``)."""
        return self._detok.detokenize(line.split(), return_str=True, unescape=self.config.escape)

    def detokenize_lines(self, lines: Sequence[str]) -> list[str]:
        """:meth:`detokenize` on every line."""
        return [self.detokenize(line) for line in lines]


@dataclass(frozen=True)
class FilterReport:
    """Counts from :func:`filter_pairs` (each dropped pair is counted under its first reason).

    Attributes:
        num_in, num_kept: pairs before and after filtering.
        too_short: a side had fewer than ``min_len`` tokens.
        too_long: a side had more than ``max_len`` tokens.
        bad_ratio: one side was more than ``ratio`` times longer than the other.
        min_len, max_len, ratio: the limits used (``None`` = not applied).
    """

    num_in: int
    num_kept: int
    too_short: int = 0
    too_long: int = 0
    bad_ratio: int = 0
    min_len: int = 1
    max_len: int | None = None
    ratio: float | None = None
    dropped: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dropped", self.num_in - self.num_kept)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the report."""
        return asdict(self)


def filter_pairs(
    src_lines: Sequence[str],
    tgt_lines: Sequence[str],
    *,
    max_len: int | None = None,
    min_len: int = 1,
    ratio: float | None = 9.0,
) -> tuple[list[int], FilterReport]:
    """Moses ``clean-corpus-n.perl`` on whitespace tokens: which pairs to keep.

    A pair is dropped if a side has more than ``max_len`` or fewer than ``min_len`` tokens,
    or if ``len(a) / len(b) > ratio`` either way (Moses' default ratio is 9; fairseq's IWSLT'14
    recipe uses 1.5 with lengths 1..175). Count tokens of the text you want to limit: Moses
    tokens before BPE, or subwords after it.

    Returns:
        ``(kept_indices, report)``: the indices of the kept pairs, in order, and the counts.
    """
    if len(src_lines) != len(tgt_lines):
        raise DataError(f"filter_pairs: {len(src_lines)} source but {len(tgt_lines)} target lines.")
    if max_len is not None and max_len < 1:
        raise ConfigError(f"filter_pairs: max_len must be >= 1 or None, got {max_len}.")
    if min_len < 0 or (max_len is not None and min_len > max_len):
        raise ConfigError(f"filter_pairs: need 0 <= min_len <= max_len, got {min_len}, {max_len}.")
    if ratio is not None and ratio < 1.0:
        raise ConfigError(f"filter_pairs: ratio must be >= 1 (e.g. 1.5 or 9) or None, got {ratio}.")
    kept: list[int] = []
    too_short = too_long = bad_ratio = 0
    for i, (s, t) in enumerate(zip(src_lines, tgt_lines)):
        ns, nt = len(s.split()), len(t.split())
        if max_len is not None and (ns > max_len or nt > max_len):
            too_long += 1
        elif ns < min_len or nt < min_len:
            too_short += 1
        elif ratio is not None and ns and nt and (ns / nt > ratio or nt / ns > ratio):
            bad_ratio += 1
        else:
            kept.append(i)
    report = FilterReport(
        num_in=len(src_lines),
        num_kept=len(kept),
        too_short=too_short,
        too_long=too_long,
        bad_ratio=bad_ratio,
        min_len=min_len,
        max_len=max_len,
        ratio=ratio,
    )
    return kept, report


# --- IWSLT'14 raw files (fairseq examples/translation/prepare-iwslt14.sh) -------------------

#: Lines of ``train.tags.*`` that fairseq drops (``grep -v``).
IWSLT_DROP_MARKERS = ("<url>", "<talkid>", "<keywords>")
#: Tags that fairseq deletes from the remaining lines (``sed -e 's/<title>//g'`` ...).
IWSLT_STRIP_TAGS = ("<title>", "</title>", "<description>", "</description>")
_WHOLE_ELEMENT = re.compile(r"^\s*<[A-Za-z][^>]*>.*</[A-Za-z]+>\s*$|^\s*<[^>]+/?>\s*$")
_SEG_OPEN = re.compile(r'<seg id="[0-9]*">\s*')
_SEG_CLOSE = re.compile(r"\s*</seg>\s*")


def read_iwslt_train_tags(path: str | Path, *, drop_all_tag_lines: bool = False) -> list[str]:
    """Read ``train.tags.de-en.{de,en}`` as fairseq's ``prepare-iwslt14.sh`` does.

    Lines containing ``<url>``, ``<talkid>`` or ``<keywords>`` are dropped and the
    ``<title>``/``<description>`` tags are deleted (their text stays). With
    ``drop_all_tag_lines=True`` any other line that is a whole XML element (``<speaker>...``,
    ``<reviewer .../>``) is dropped too; the default reproduces fairseq's data exactly.
    """
    out: list[str] = []
    for line in read_lines(path):
        if any(marker in line for marker in IWSLT_DROP_MARKERS):
            continue
        for tag in IWSLT_STRIP_TAGS:
            line = line.replace(tag, "")
        if drop_all_tag_lines and _WHOLE_ELEMENT.match(line):
            continue
        out.append(line)
    return out


def read_iwslt_xml_segments(path: str | Path) -> list[str]:
    """Read the ``<seg id="N">...</seg>`` contents of an ``IWSLT14.TED*.xml`` dev/test file.

    Like fairseq: keep lines containing ``<seg id``, delete the ``seg`` tags and the spaces
    next to them, and replace the right single quote U+2019 with ``'``.
    """
    out: list[str] = []
    for line in read_lines(path):
        if "<seg id" not in line:
            continue
        line = _SEG_CLOSE.sub("", _SEG_OPEN.sub("", line))
        out.append(line.replace("\u2019", "'"))
    return out
