"""Machine translation with G2-LSTM layers (paper §4.1.2): data, model, training, decoding.

Modules (import what you need; this package imports nothing heavy itself):

- :mod:`~g2lstm.mt.data`, :mod:`~g2lstm.mt.bpe`, :mod:`~g2lstm.mt.vocab`,
  :mod:`~g2lstm.mt.prepare`: read, tokenise, BPE and build vocabularies (``mt prepare``);
- :mod:`~g2lstm.mt.batching`: token-budget batches, time-major padding;
- :mod:`~g2lstm.mt.config`: typed run configuration and the ``iwslt``/``wmt``/``tiny`` presets;
- :mod:`~g2lstm.mt.model`, :mod:`~g2lstm.mt.attention`: the attention encoder-decoder;
- :mod:`~g2lstm.mt.beam`: batched beam search and greedy decoding;
- :mod:`~g2lstm.mt.trainer`: the training run and its loop (``mt train``);
  :mod:`~g2lstm.mt.steps`: one update, validation, checkpoint save/restore;
  :mod:`~g2lstm.mt.objective`: the label-smoothed loss and the optimiser;
  :mod:`~g2lstm.mt.resume`: what a resumed run may change;
- :mod:`~g2lstm.mt.translate`, :mod:`~g2lstm.mt.bleu`: translation and BLEU (``mt translate``,
  ``mt eval``);
- :mod:`~g2lstm.mt.cli`: the ``g2lstm mt`` commands, one module each: :mod:`~g2lstm.mt.cli_prepare`,
  :mod:`~g2lstm.mt.cli_train`, :mod:`~g2lstm.mt.cli_decode` (``translate``, ``eval``).
"""

from __future__ import annotations
