"""Datasets by name: where they live, how to download, unpack, lay out and verify them.

A dataset is a folder. Language-model corpora hold ``train.txt``, ``valid.txt`` and
``test.txt``; ``multi30k`` holds ``{raw,tok}/{train,val,test2016}.{de,en}``. Names are looked
up under :func:`data_dir` (``--data-dir``, else ``$G2LSTM_DATA``, else the user cache), so
``G2LSTM_DATA=/path/to/shared/data`` resolves ``ptb`` and ``multi30k`` without downloading.

Verification policy (``verify=``):

- ``"cached"`` (default): every file is hashed once and its sha256 is recorded with its size
  and mtime in a stamp file (``.g2lstm-stamps.json`` in the folder, or under the user cache
  when the folder is read-only). Later resolves re-hash only files whose size or mtime changed,
  so they cost a few ``stat`` calls. Files younger than 2 s are never stamped (a same-size
  rewrite within the file system's timestamp granularity could otherwise go unnoticed).
- ``"full"``: re-hash every file (the CLI's ``--verify``).
- ``"none"``: only check that the files exist.

Hashes are compared with the values pinned in the :class:`DatasetSpec`; where none is pinned
(WikiText), the first download is trusted and its hashes are written to ``SHA256SUMS`` beside
the data (``sha256sum -c SHA256SUMS`` format), which later resolves are checked against.
"""

from __future__ import annotations

from g2lstm.datasets import builtin as _builtin  # noqa: F401  (registers the built-in specs)
from g2lstm.datasets.resolve import resolve_dataset
from g2lstm.datasets.spec import (
    CHECKSUM_FILE,
    ENV_DATA,
    LM_LAYOUT,
    DatasetSpec,
    RemoteFile,
    Verify,
    available_datasets,
    data_dir,
    get_dataset_spec,
    is_writable_dir,
    register_dataset,
    user_cache_dir,
)
from g2lstm.datasets.verify import (
    check_layout,
    file_digests,
    read_checksums,
    sha256_file,
    verify_dataset,
)

__all__ = [
    "CHECKSUM_FILE",
    "ENV_DATA",
    "LM_LAYOUT",
    "DatasetSpec",
    "RemoteFile",
    "Verify",
    "available_datasets",
    "check_layout",
    "data_dir",
    "file_digests",
    "get_dataset_spec",
    "is_writable_dir",
    "read_checksums",
    "register_dataset",
    "resolve_dataset",
    "sha256_file",
    "user_cache_dir",
    "verify_dataset",
]
