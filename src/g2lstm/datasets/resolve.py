"""Name or folder -> dataset folder: :func:`resolve_dataset`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from g2lstm.datasets.download import _download_dataset, _hint
from g2lstm.datasets.spec import (
    _REGISTRY,
    LM_LAYOUT,
    DatasetSpec,
    Verify,
    available_datasets,
    get_dataset_spec,
)
from g2lstm.datasets.spec import data_dir as _default_data_dir  # shadowed by a parameter
from g2lstm.datasets.verify import check_layout, verify_dataset
from g2lstm.errors import ConfigError, DataError

__all__ = ["resolve_dataset"]


def resolve_dataset(
    name_or_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
    *,
    registry: Mapping[str, DatasetSpec] | None = None,
    verify: Verify = "cached",
    kind: Literal["lm", "mt"] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Return the folder of a dataset, downloading it if needed.

    ``name_or_path`` is an existing folder (returned as is; with ``kind="lm"`` it must hold
    :data:`LM_LAYOUT`) or a registered name, looked up as ``data_dir(data_dir) / name`` and
    checked per ``verify`` (:mod:`g2lstm.datasets` doc). A missing dataset is downloaded when
    ``download``, else ``DataError`` says how to get it. ``registry`` replaces the default
    registry.
    """
    if verify not in ("none", "cached", "full"):
        raise ConfigError(f"verify must be 'none', 'cached' or 'full', got {verify!r}")
    as_path = Path(name_or_path).expanduser()
    if as_path.is_dir():
        if kind == "lm":
            check_layout(as_path, LM_LAYOUT, what="language-model data")
        return as_path
    name = str(name_or_path)
    reg = _REGISTRY if registry is None else registry
    if name not in reg and (os.sep in name or "/" in name or name.startswith((".", "~"))):
        raise DataError(
            f"dataset folder {as_path} does not exist; known dataset names: "
            f"{', '.join(available_datasets(reg))}"
        )
    spec = get_dataset_spec(name, reg)
    if kind is not None and spec.kind != kind:
        raise ConfigError(f"dataset {name!r} is a {spec.kind} dataset, but a {kind} one is needed")
    root = _default_data_dir(data_dir) / spec.name
    if not all((root / rel).is_file() for rel in spec.layout):
        if not spec.files:
            raise DataError(
                f"dataset {name!r} is not under {root} and cannot be downloaded "
                f"automatically: {spec.note}"
            )
        if not download:
            raise DataError(
                f"dataset {name!r} is not under {root} (expected "
                f"{root}/{{{','.join(spec.layout)}}}) and download=False. Allow "
                f"the download (CLI: --download) or: {_hint(spec, root)}"
            )
        _download_dataset(spec, root, progress=progress, timeout=timeout)
    verify_dataset(root, spec, verify)
    return root
