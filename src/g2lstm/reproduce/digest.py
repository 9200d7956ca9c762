"""Content hashes of what a result was computed from: one canonical JSON form for all of them.

Every hash of settings in the reproduction goes through here: a step's scale settings
(:meth:`~g2lstm.reproduce.scales.Scale.settings_key`, part of its ``DONE.json`` inputs), the
sweeps' and probes' settings (:mod:`g2lstm.reproduce.ablations`), the config compared when a
run is reused (:mod:`g2lstm.reproduce.reuse`) and the inputs a kept probe was measured on
(:mod:`g2lstm.reproduce.probe_file`). Equal values give equal hashes whatever the key order;
objects JSON cannot write (a dataclass, a path) enter as their ``str``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def json_sha256(obj: Any) -> str:
    """sha256 (64 hex digits) of ``obj`` as canonical JSON (sorted keys, tuples as lists)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def short_hash(obj: Any) -> str:
    """The first 16 hex digits of :func:`json_sha256`: a settings key shown in plans and
    markers (64 bits: collisions are not a concern for the few settings compared)."""
    return json_sha256(obj)[:16]
