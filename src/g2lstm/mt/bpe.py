"""Byte-pair encoding with subword-nmt (the tool of fairseq's IWSLT'14 recipe).

Subwords that continue into the next subword end in the separator ``@@``
(``"unbelievable"`` -> ``"un@@ believ@@ able"``), so :func:`remove_bpe` restores the
tokenised text by deleting ``"@@ "``, exactly like ``fairseq-generate --remove-bpe``.

Example:
    >>> n = learn_bpe(["low lower lowest"] * 3, "bpe.codes", num_merges=10)  # doctest: +SKIP
    >>> bpe = BPE("bpe.codes")  # doctest: +SKIP
    >>> remove_bpe(bpe.apply("lowest low")) == "lowest low"  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from g2lstm.errors import ConfigError, DataError

__all__ = ["BPE", "SEPARATOR", "learn_bpe", "remove_bpe"]

#: The subword continuation marker, as in subword-nmt and fairseq.
SEPARATOR = "@@"


def learn_bpe(
    lines: Iterable[str],
    codes_path: str | Path,
    num_merges: int,
    *,
    min_frequency: int = 2,
) -> int:
    """Learn up to ``num_merges`` BPE merges from tokenised lines and write them to a file.

    For a joint source+target BPE pass both sides' training lines (e.g.
    ``itertools.chain(src_lines, tgt_lines)``). Learning stops early when no pair of symbols
    occurs ``min_frequency`` times. The file is written atomically (temporary file + rename).

    Returns:
        The number of merges actually learned (``<= num_merges``).
    """
    from subword_nmt.learn_bpe import learn_bpe as _learn

    if num_merges < 1:
        raise ConfigError(f"learn_bpe: num_merges must be >= 1, got {num_merges}.")
    if min_frequency < 1:
        raise ConfigError(f"learn_bpe: min_frequency must be >= 1, got {min_frequency}.")
    codes_path = Path(codes_path)
    out = io.StringIO()
    # subword-nmt prints a tqdm bar and "no pair has frequency >= 2. Stopping" to stderr.
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
            _learn(
                (line if line.endswith("\n") else line + "\n" for line in lines),
                out,
                num_merges,
                min_frequency=min_frequency,
            )
    except ValueError:  # subword-nmt: max() of no pair statistics (no word of 2+ characters)
        out = io.StringIO()
    text = out.getvalue()
    learned = sum(1 for line in text.splitlines() if line and not line.startswith("#version"))
    if learned == 0:
        raise DataError(
            f"learn_bpe: no pair of symbols occurs {min_frequency} times in the training text, "
            f"so no merge could be learned for {codes_path}; use more text or bpe_merges=0."
        )
    tmp = codes_path.with_name(codes_path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, codes_path)
    return learned


class BPE:
    """Apply learned BPE codes (a thin wrapper over ``subword_nmt.apply_bpe.BPE``).

    Args:
        codes_path: a codes file written by :func:`learn_bpe` (or subword-nmt's
            ``learn_bpe.py``).
        merges: use only the first ``merges`` merges (``-1`` = all).
        separator: the continuation marker (default ``@@``).
    """

    def __init__(
        self, codes_path: str | Path, *, merges: int = -1, separator: str = SEPARATOR
    ) -> None:
        from subword_nmt.apply_bpe import BPE as _SubwordBPE

        self.codes_path = Path(codes_path)
        self.separator = separator
        try:
            with open(self.codes_path, encoding="utf-8") as codes:
                self._bpe = _SubwordBPE(codes, merges=merges, separator=separator)
        except FileNotFoundError:
            raise DataError(
                f"{self.codes_path}: BPE codes file not found; run the MT prepare step first."
            ) from None
        except (ValueError, IndexError) as exc:
            raise DataError(f"{self.codes_path}: not a subword-nmt codes file ({exc}).") from exc

    @property
    def num_merges(self) -> int:
        """How many merges are in use."""
        return len(self._bpe.bpe_codes)

    def apply(self, line: str) -> str:
        """Segment one tokenised sentence (space-separated tokens) into subwords."""
        return " ".join(self._bpe.segment_tokens(line.split()))

    def apply_lines(self, lines: Sequence[str]) -> list[str]:
        """:meth:`apply` on every line."""
        return [self.apply(line) for line in lines]


def remove_bpe(text: str, separator: str = SEPARATOR) -> str:
    """Undo BPE: delete every ``"@@ "`` (and a dangling ``"@@"`` at the end of the line).

    ``remove_bpe(bpe.apply(x)) == x`` for any tokenised ``x`` with single spaces between
    tokens and no token ending in the separator itself.
    """
    return (text + " ").replace(separator + " ", "").rstrip(" ")
