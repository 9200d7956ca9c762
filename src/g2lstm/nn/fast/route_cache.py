"""The autotuner's disk cache: measured GEMM timings in one JSON file, replaced atomically.

``$G2LSTM_CACHE/gemm_routes.json`` (default ``~/.cache/g2lstm/``) holds::

    {"format": 4, "entries": {KEY: {ROUTE: {ROLE: best seconds}}}}

where ``KEY`` names the CPU model, torch version, thread count, dtype and shape bucket
(:mod:`g2lstm.nn.fast.autotune` builds it) and a route holds whole role groups:
:data:`FORWARD`, :data:`BACKWARD`, :data:`WGRAD` or any union of them (each group is timed
the first time a pass needs it). A file of an older format is dropped quietly (its shapes are
measured again and the file rewritten); an unreadable or malformed one is ignored with one
notice on stderr per process and rewritten. Writes go to a temporary file in the same
folder, then a rename, so a reader never sees half a file and a symlink there is replaced,
never written through; a failed write keeps the timings in memory (one notice).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

__all__ = [
    "BACKWARD",
    "FILE_NAME",
    "FORMAT",
    "FORWARD",
    "WGRAD",
    "Costs",
    "cache_path",
    "read",
    "reset_notices",
    "save",
]

FILE_NAME = "gemm_routes.json"
#: 2: the backward's roles; 3: a route's forward and backward roles measured apart; 4: the
#: weight gradients measured as a group of their own (an entry may hold any union of the
#: groups). A cache of an older format is measured again.
FORMAT = 4
#: the forward's roles (packing ``W_hh`` for the steps, one per-step product, the input
#: projection) and the backward's (packing ``W_hh^T``, a per-step product with it, one
#: reading ``W_hh`` as it is), each in the order they are timed
FORWARD = ("pack", "step", "proj")
BACKWARD = ("bpack", "bstep", "bplain")
#: the backward's weight gradient ``dG^T h`` of :data:`WGRAD_ROWS` rows, ``(rows, 4H)^T x
#: (rows, H)``, on each route (the library that multiplies the steps fastest need not be the
#: one that reduces over ``T N`` rows fastest)
WGRAD = ("wgrad",)

#: the timings of one shape bucket: ``{route: {role: best seconds}}``
Costs = dict[str, dict[str, float]]

_notices = {"unusable": False, "failed_write": False}  # each said once per process


def cache_path() -> Path:
    """``$G2LSTM_CACHE/gemm_routes.json``, or under ``~/.cache/g2lstm/`` when that is unset."""
    root = os.environ.get("G2LSTM_CACHE", "").strip()
    folder = Path(root).expanduser() if root else Path.home() / ".cache" / "g2lstm"
    return folder / FILE_NAME


def reset_notices() -> None:
    """Say the next unusable file or failed write again (a cleared autotuner's fresh start)."""
    _notices.update(unusable=False, failed_write=False)


def read(path: Path) -> dict[str, Costs]:
    """The entries of the cache file at ``path``; ``{}`` if it is missing, of an older
    format or unusable (the last with one notice)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        return _unusable(path, f"cannot be read ({type(e).__name__})")
    try:
        data = json.loads(text)
    except ValueError:
        return _unusable(path, "is not valid JSON")
    version = data.get("format") if isinstance(data, dict) else None
    if isinstance(version, int) and 1 <= version < FORMAT:
        return {}  # an older version's timings: measured again, the file rewritten
    if version != FORMAT:
        return _unusable(path, f"is not a format-{FORMAT} route cache")
    entries = data.get("entries")
    if not isinstance(entries, dict) or not all(_valid(c) for c in entries.values()):
        return _unusable(path, "has malformed entries")
    return entries


def save(key: str, costs: Costs) -> None:
    """Merge ``key`` into the cache file and replace it atomically (failures: one notice)."""
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        entries = read(path)
        entries[key] = costs
        text = json.dumps({"format": FORMAT, "entries": entries}, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        if not _notices["failed_write"]:
            _notices["failed_write"] = True
            print(
                f"g2lstm: cannot write the GEMM route cache {path} ({type(e).__name__}: {e}); "
                "keeping the measured routes in memory only (set G2LSTM_CACHE to a writable "
                "folder or G2LSTM_AUTOTUNE=memory)",
                file=sys.stderr,
            )


_UNIONS = [
    {*a, *b, *c}
    for a in ((), FORWARD)
    for b in ((), BACKWARD)
    for c in ((), WGRAD)
    if a or b or c
]


def _valid(costs: object) -> bool:
    """Whether a cache entry is ``{route: {role: seconds}}`` with whole role groups."""
    return isinstance(costs, dict) and all(
        isinstance(c, dict)
        and all(isinstance(v, (int, float)) and v >= 0 for v in c.values())
        and set(c) in _UNIONS
        for c in costs.values()
    )


def _unusable(path: Path, why: str) -> dict[str, Costs]:
    if not _notices["unusable"]:
        _notices["unusable"] = True
        print(
            f"g2lstm: ignoring the GEMM route cache {path}: it {why}; "
            "routes are measured again and the file rewritten",
            file=sys.stderr,
        )
    return {}
