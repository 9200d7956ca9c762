"""Typed errors raised by g2lstm.

Every error a user can trigger names the file or argument involved, what was expected and
how to fix it. They all derive from :class:`G2LSTMError`, so callers can catch one type;
the configuration errors are also :class:`ValueError` (like ``torch.nn.LSTM``'s own), so code
that already catches ``ValueError`` keeps working.
"""

from __future__ import annotations

#: Exit status of a command stopped by Ctrl-C / SIGTERM before it finished (128 + SIGINT, the
#: shell's convention). Training commands return it after writing a resumable checkpoint, so
#: a script running ``g2lstm lm train && g2lstm lm eval`` does not evaluate an unfinished run.
EXIT_INTERRUPTED = 130


class G2LSTMError(Exception):
    """Base class of every error raised on purpose by g2lstm."""


class ConfigError(G2LSTMError, ValueError):
    """An argument or configuration value is invalid (wrong range, unknown name, conflict)."""


class ShapeError(G2LSTMError, ValueError, RuntimeError):
    """A tensor handed to a layer has the wrong number of dimensions or the wrong size.

    It is also a ``RuntimeError`` because ``torch.nn.LSTM`` raises ``RuntimeError`` for wrong
    input and state sizes: code written for ``nn.LSTM`` that catches it keeps working.
    """


class DataError(G2LSTMError):
    """A dataset file or folder is missing, empty, undecodable or inconsistent."""


class ChecksumError(DataError):
    """A downloaded or cached file does not match its expected sha256."""


class CheckpointError(G2LSTMError):
    """A checkpoint is missing, corrupt, from another format version or does not fit."""


class OutputError(G2LSTMError):
    """An output cannot be written safely: a directory or read-only place where a file is
    wanted, a symlink planted where g2lstm writes, or a file that must not be overwritten."""


class LimitError(ConfigError):
    """A size read from a file or argument exceeds a resource cap (decompressed bytes, model
    parameters, beam size, generated words); the message names the flag that raises it."""


class TrainingError(G2LSTMError):
    """Training cannot go on (non-finite loss or gradient, output directory locked, ...)."""


class DTypeError(G2LSTMError, ValueError, RuntimeError):
    """A tensor's dtype does not match the module's (``nn.LSTM`` raises ``ValueError``,
    ``nn.LSTMCell`` ``RuntimeError``: this is both)."""
