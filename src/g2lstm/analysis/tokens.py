"""Token classes (punctuation / function word / content word) and per-token gate means.

The paper's Fig. 4 reads G2-LSTM's lowest forget gates as falling on function words and clause
boundaries (§6 claim 12 of the digest). To test that on a corpus, every token is put in one
class by :func:`token_class`:

- ``"special"``: markup tokens in angle brackets (``<eos>``, ``<unk>``, ``<pad>``, ``<s>``).
- ``"punctuation"``: every character is Unicode punctuation or a symbol (``. , ; -- $ ``''``
  ``&quot;``). Moses escapes (``&apos;``, ``&quot;``, ``&amp;`` ...) are unescaped first, and
  PTB bracket tokens (``-lrb-``, ``-rrb-`` ...) count as punctuation.
- ``"function"``: a word of :data:`FUNCTION_WORD_GROUPS` (closed-class English words:
  conjunctions, determiners, pronouns, prepositions, auxiliaries and modals, particles,
  clitics such as ``'s`` / ``n't``), compared in lower case.
- ``"content"``: everything else (nouns, verbs, adjectives, adverbs, numbers, PTB's ``N``).

:class:`TokenGateStats` is a streaming gate-recorder callback that sums, for each token id, the
gate value averaged over the hidden units at that token's step; from the sums it gives the mean
per token, per class, and the tokens with the lowest/highest mean.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from g2lstm.errors import ConfigError, ShapeError
from g2lstm.nn.recording import GateTrace

__all__ = [
    "FUNCTION_WORDS",
    "FUNCTION_WORD_GROUPS",
    "TOKEN_CLASSES",
    "TokenGateStats",
    "function_word_group",
    "position_means",
    "token_class",
]

#: Token classes, in the order the figures show them.
TOKEN_CLASSES = ("punctuation", "function", "content", "special")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Closed-class English words by group (lower case). The union is :data:`FUNCTION_WORDS`.
FUNCTION_WORD_GROUPS: dict[str, frozenset[str]] = {
    "conjunction": _words(
        "and or but nor so yet for because although though while whereas if unless since "
        "until whether than as that once lest"
    ),
    "determiner": _words(
        "the a an this these those some any no every each either neither all both another "
        "such what which whose much many few several"
    ),
    "pronoun": _words(
        "i me my mine myself you your yours yourself yourselves he him his himself she her "
        "hers herself it its itself we us our ours ourselves they them their theirs "
        "themselves who whom whoever whatever one ones there"
    ),
    "preposition": _words(
        "of in on at by with from to into onto upon about above across after against along "
        "among around before behind below beneath beside besides between beyond during "
        "except inside near off out outside over past per through throughout toward towards "
        "under underneath unlike up via within without"
    ),
    "auxiliary": _words(
        "be am is are was were been being have has had having do does did doing will would "
        "shall should can could may might must ought"
    ),
    "particle": _words("not n't 't to up also just only even too very then"),
    "clitic": _words("'s 're 've 'd 'll 'm"),
    "wh-adverb": _words("how when where why"),
}
FUNCTION_WORDS: frozenset[str] = frozenset().union(*FUNCTION_WORD_GROUPS.values())

_PTB_BRACKETS = _words("-lrb- -rrb- -lsb- -rsb- -lcb- -rcb-")


def _normalize(token: str) -> str:
    return html.unescape(token).lower()


def _is_punct(text: str) -> bool:
    return bool(text) and all(unicodedata.category(ch)[0] in "PS" for ch in text)


def token_class(token: str) -> str:
    """The class of ``token``: one of :data:`TOKEN_CLASSES` (see the module docstring)."""
    if len(token) > 2 and token.startswith("<") and token.endswith(">"):
        return "special"
    text = _normalize(token)
    if _is_punct(text) or text in _PTB_BRACKETS:
        return "punctuation"
    if text in FUNCTION_WORDS:
        return "function"
    return "content"


def function_word_group(token: str) -> str | None:
    """The first group of :data:`FUNCTION_WORD_GROUPS` holding ``token``, else ``None``."""
    text = _normalize(token)
    return next((g for g, words in FUNCTION_WORD_GROUPS.items() if text in words), None)


def position_means(trace: GateTrace, gate: str, batch_index: int = 0) -> np.ndarray:
    """Gate value averaged over hidden units at every valid step of one sequence.

    Args:
        trace: a recorded trace, gates ``(T, N, H)``, mask ``(T, N)``.
        gate: ``"input"``, ``"forget"`` or ``"output"``.
        batch_index: which sequence ``n`` of the batch.

    Returns:
        ``(T_n,)`` float64, the valid steps of sequence ``n`` in time order.
    """
    values: Tensor = getattr(trace, gate)
    if not 0 <= batch_index < values.shape[1]:
        raise ShapeError(f"batch_index={batch_index} outside a batch of {values.shape[1]}")
    col = values[:, batch_index].double().mean(-1)
    return col[trace.mask[:, batch_index]].cpu().numpy()


class TokenGateStats:
    """Streaming per-token mean gate values of one recorded layer.

    For each valid step ``(t, n)`` the gate vector is averaged over its ``H`` units, and that
    scalar is added to the sums of token ``ids[t, n]``. Use it as a GateRecorder callback after
    binding the batch's token ids::

        tok = TokenGateStats(itos)
        with GateRecorder(model, keep=False, callback=tok):
            for batch in batches:
                tok.bind(ids_of(batch))  # (T, N), aligned with the layer's time steps
                model(batch)

    Args:
        itos: id -> token string (the vocabulary).
        gates: which gates to accumulate.
        module: recorded module name to follow; ``None`` follows the first one seen.
        layer: layer index inside that module.
        direction: 0 forward, 1 reverse, ``None`` pools both.
        classify: token -> class (default :func:`token_class`).
    """

    def __init__(
        self,
        itos: Sequence[str],
        gates: Sequence[str] = ("input", "forget", "output"),
        *,
        module: str | None = None,
        layer: int = 0,
        direction: int | None = 0,
        classify: Callable[[str], str] = token_class,
    ) -> None:
        if len(itos) == 0:
            raise ConfigError("TokenGateStats: itos (the vocabulary) is empty")
        self.itos = list(itos)
        self.gates = tuple(gates)
        self.module, self.layer, self.direction = module, layer, direction
        self.token_classes = [classify(t) for t in self.itos]
        self.classes = tuple(dict.fromkeys([*TOKEN_CLASSES, *self.token_classes]))
        self._class_index = np.array([self.classes.index(c) for c in self.token_classes])
        v = len(self.itos)
        self.counts = np.zeros(v, dtype=np.float64)
        self.sums = {g: np.zeros(v, dtype=np.float64) for g in self.gates}
        self.sq_sums = {g: np.zeros(v, dtype=np.float64) for g in self.gates}
        self._ids: Tensor | None = None

    def bind(self, ids: Tensor) -> TokenGateStats:
        """Set the ``(T, N)`` token ids of the batch about to run. Returns self."""
        if ids.dim() != 2:
            raise ShapeError(f"TokenGateStats.bind: ids must be (T, N), got {tuple(ids.shape)}")
        self._ids = ids.detach().cpu().long()
        return self

    def __call__(self, module: str, trace: GateTrace) -> None:
        if self.module is None:
            self.module = module
        if module != self.module or trace.layer != self.layer:
            return
        if self.direction is not None and trace.direction != self.direction:
            return
        self.update(trace)

    def update(self, trace: GateTrace) -> None:
        """Add one trace of the followed layer, using the bound ids."""
        ids = self._ids
        if ids is None:
            raise ConfigError("TokenGateStats: call bind(ids) before the forward pass")
        if tuple(ids.shape) != tuple(trace.mask.shape):
            raise ShapeError(
                f"TokenGateStats: bound ids have shape {tuple(ids.shape)} but the trace of "
                f"{self.module} layer {trace.layer} has (T, N) = {tuple(trace.mask.shape)}; "
                "tokens_fn must return time-major ids aligned with that layer's steps"
            )
        mask = trace.mask.cpu()
        sel = ids[mask]
        if sel.numel() and (int(sel.min()) < 0 or int(sel.max()) >= len(self.itos)):
            raise ShapeError(f"TokenGateStats: token id outside [0, {len(self.itos)})")
        n = len(self.itos)
        self.counts += torch.bincount(sel, minlength=n).double().numpy()
        for g in self.gates:
            vals = getattr(trace, g).detach().cpu().double().mean(-1)[mask]
            self.sums[g] += torch.bincount(sel, weights=vals, minlength=n).numpy()
            self.sq_sums[g] += torch.bincount(sel, weights=vals * vals, minlength=n).numpy()

    def token_means(self, gate: str) -> np.ndarray:
        """``(V,)`` mean gate value per token id (NaN for unseen tokens)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums[gate] / self.counts, np.nan)

    def class_stats(self, gate: str) -> dict[str, dict[str, float]]:
        """Per class: ``count`` (token occurrences), ``mean`` and ``std`` over occurrences."""
        k = len(self.classes)
        cnt = np.bincount(self._class_index, weights=self.counts, minlength=k)
        s = np.bincount(self._class_index, weights=self.sums[gate], minlength=k)
        sq = np.bincount(self._class_index, weights=self.sq_sums[gate], minlength=k)
        out = {}
        for i, c in enumerate(self.classes):
            mean = s[i] / cnt[i] if cnt[i] > 0 else float("nan")
            var = max(sq[i] / cnt[i] - mean * mean, 0.0) if cnt[i] > 0 else float("nan")
            out[c] = {"count": float(cnt[i]), "mean": float(mean), "std": float(np.sqrt(var))}
        return out

    def extremes(
        self, gate: str, k: int = 10, *, min_count: int = 5, lowest: bool = True
    ) -> list[dict[str, Any]]:
        """The ``k`` tokens seen ``>= min_count`` times with the lowest (or highest) mean."""
        means = self.token_means(gate)
        ok = np.flatnonzero(self.counts >= min_count)
        order = ok[np.argsort(means[ok], kind="stable")]
        if not lowest:
            order = order[::-1]
        return [
            {
                "token": self.itos[i],
                "class": self.token_classes[i],
                "mean": float(means[i]),
                "count": float(self.counts[i]),
            }
            for i in order[:k]
        ]

    def to_dict(self, k: int = 15, min_count: int = 5) -> dict[str, Any]:
        """JSON-ready: followed layer, class statistics and extreme tokens per gate."""
        return {
            "module": self.module,
            "layer": self.layer,
            "direction": self.direction,
            "tokens_seen": float(self.counts.sum()),
            "classes": {g: self.class_stats(g) for g in self.gates},
            "lowest": {g: self.extremes(g, k, min_count=min_count) for g in self.gates},
            "highest": {
                g: self.extremes(g, k, min_count=min_count, lowest=False) for g in self.gates
            },
        }
