"""Fixtures of the nn tests: the Triton step kernels, interpreted (CPU) or compiled (CUDA)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest
import torch


def _triton_step(monkeypatch: pytest.MonkeyPatch, interpret: bool) -> ModuleType:
    """:mod:`g2lstm.nn.fast.triton_step` with interpreted or compiled kernels.

    Triton reads ``TRITON_INTERPRET`` when a kernel is decorated (and its helpers while an
    interpreted kernel runs), so the variable is set or removed for the test and the kernels'
    module (:mod:`~g2lstm.nn.fast.triton_kernels`) reloaded when they are of the other kind.
    """
    pytest.importorskip("triton", reason="triton is not installed: pip install -e '.[triton]'")
    from g2lstm.nn.fast import triton_kernels, triton_step

    if interpret:
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    else:
        monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    if triton_kernels.interpreting() != interpret:
        importlib.reload(triton_kernels)
    return triton_step


@pytest.fixture(scope="session", autouse=True)
def _triton_step_compiled_after() -> Iterator[None]:
    """Leave :mod:`~g2lstm.nn.fast.triton_kernels` compiled after the session (as an import
    without ``TRITON_INTERPRET`` makes it), whatever the tests switched it to."""
    yield
    module = sys.modules.get("g2lstm.nn.fast.triton_kernels")
    if module is not None and module.interpreting() and os.environ.get("TRITON_INTERPRET") != "1":
        importlib.reload(module)


@pytest.fixture
def triton_interpreter(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The Triton step module with its kernels run by Triton's interpreter on CPU tensors.

    Skips when triton or numpy (the interpreter's) is missing: extra ``triton``.
    """
    pytest.importorskip("numpy", reason="Triton's interpreter needs numpy (extra 'triton')")
    return _triton_step(monkeypatch, interpret=True)


@pytest.fixture
def triton_compiled(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The Triton step module with compiled kernels; skips without a CUDA device."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return _triton_step(monkeypatch, interpret=False)
