"""MT presets and how a run's configuration is assembled: preset, YAML file, overrides.

- :data:`PRESETS`: ``iwslt`` (2 layers, 256/256, the paper's IWSLT'14 De->En model),
  ``multi30k`` (the ``iwslt`` model with a recipe that converges on Multi30k in 10 epochs),
  ``wmt`` (3 layers, 512/1024, the paper's WMT'14 En->De model), ``tiny`` (1 layer, 32/32,
  2 epochs of the first 500 sentence pairs: seconds on any dataset, for tests);
- :func:`apply_overrides`: ``section.key=value`` strings, values parsed as YAML;
- :func:`load_config`: preset, then YAML file, then overrides.

All three are also importable from :mod:`g2lstm.mt.config`, which defines :class:`MTConfig`.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from g2lstm.errors import ConfigError

if TYPE_CHECKING:
    from g2lstm.mt.config import MTConfig

__all__ = ["PRESETS", "apply_overrides", "load_config"]

#: Named starting points; ``iwslt`` and ``wmt`` are the paper's two MT models.
PRESETS: dict[str, dict[str, Any]] = {
    "iwslt": {
        "model": {"emb": 256, "hidden": 256, "layers": 2, "dropout": 0.2},
        "train": {"max_tokens": 2000},
    },
    # the iwslt model with the additive attention of the authors' dl4mt decoder and a recipe
    # chosen by probes on Multi30k's valid split (benchmarks/RESULTS.md, "Machine
    # translation"): ~1000-token batches (460 updates per epoch), Adam 2e-3, clip 1.0,
    # constant for 12 epochs, then halved every epoch (1e-3 .. 1.25e-4), 16 epochs
    "multi30k": {
        "model": {
            "emb": 256,
            "hidden": 256,
            "layers": 2,
            "dropout": 0.2,
            "attention": "bahdanau",
        },
        "optim": {
            "name": "adam",
            "lr": 2e-3,
            "clip": 1.0,
            "schedule": "step",
            "decay_start": 12,
            "lr_decay": 0.5,
        },
        "train": {"max_tokens": 1000, "epochs": 16},
    },
    "wmt": {
        "model": {"emb": 512, "hidden": 1024, "layers": 3, "dropout": 0.2},
        "train": {"max_tokens": 4096},
    },
    "tiny": {
        "model": {"emb": 32, "hidden": 32, "layers": 1, "dropout": 0.0},
        "train": {"max_tokens": 256, "epochs": 2, "log_every": 10, "limit_sentences": 500},
        "decode": {"beam": 2, "batch_size": 16},
    },
}


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return text


def apply_overrides(config: MTConfig, overrides: list[str] | tuple[str, ...]) -> MTConfig:
    """Apply ``section.key=value`` overrides (values parsed as YAML: ``0.1``, ``true``, ``null``).

    Example: ``apply_overrides(cfg, ["model.cell=lstm", "optim.lr=5e-4"])``.
    """
    from g2lstm.mt.config import _SECTIONS

    data: dict[str, dict[str, Any]] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(
                f"override {item!r} is not of the form section.key=value (e.g. train.seed=2)"
            )
        parsed = _parse_value(value)
        section_cls = _SECTIONS.get(section)
        if section_cls is not None:
            types = {f.name: f.type for f in fields(section_cls)}
            if types.get(name) in ("str", "str | None") and parsed is not None:
                parsed = value  # keep strings as written ("1e3" stays a string path)
        data.setdefault(section, {})[name] = parsed
    return config.merged(data)


def load_config(
    preset: str | None = None,
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> MTConfig:
    """Preset, then YAML file, then overrides (each optional)."""
    from g2lstm.mt.config import MTConfig

    cfg = MTConfig.preset(preset) if preset else MTConfig()
    if path is not None:
        import yaml

        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {p} not found") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"{p}: cannot read a YAML config ({why})") from None
        try:
            cfg = cfg.merged(data)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from exc
    return apply_overrides(cfg, list(overrides))
