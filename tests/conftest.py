"""Shared test fixtures: deterministic seeds, one thread, the real-data folder, tiny corpora
(language-model text and parallel toy translation pairs)."""

from __future__ import annotations

import importlib.util
import os
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$G2LSTM_DATA`` if set, else ``../shared/data`` beside the checkout, if present."""
    env = os.environ.get("G2LSTM_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if (c / "ptb" / "train.txt").is_file():
            return c
    return None


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The folder with the real corpora (``ptb/``, ``multi30k/``); skips the test if absent.
    Session scoped, so that session fixtures (trained runs) can use it too."""
    d = shared_data_dir()
    if d is None:
        pytest.skip("real corpora not found: set G2LSTM_DATA or put shared/data beside the repo")
    return d


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The GEMM-route measurements of the tests go to a folder of the session, never to the
    user's ``~/.cache/g2lstm``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("G2LSTM_CACHE", str(tmp_path_factory.mktemp("g2lstm-cache")))
        yield


@pytest.fixture(scope="session", autouse=True)
def _cpu_kernel_built() -> None:
    """Build (or load) the fused CPU step kernel once, before the first test, so that its
    one-time build notice never lands in a test that checks what a command prints."""
    from g2lstm.nn.fast.kernel import cpu_kernel, kernel_mode

    if kernel_mode() != "off":
        cpu_kernel()


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)


def _write_lm_corpus(folder: Path, n_words: int = 30, seed: int = 0) -> Path:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(n_words)]
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in (("train", 120), ("valid", 20), ("test", 20)):
        text = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 9))) for _ in range(lines)]
        (folder / f"{split}.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def write_lm_corpus() -> Callable[..., Path]:
    """``write_lm_corpus(folder, n_words=30, seed=0) -> folder``: a tiny LM corpus.

    Writes ``train/valid/test.txt`` (120/20/20 lines of 2-9 random words ``w0..w{n_words-1}``,
    deterministic in ``seed``) into ``folder`` (created if needed) and returns it. Session
    scoped, so module- and session-scoped fixtures can use it too.
    """
    return _write_lm_corpus


#: words of the toy translation task (default): source ``s0..s11``, target ``t0..t11``
TOY_WORDS = 12


def _write_parallel_corpus(
    raw: Path, sizes: Mapping[str, int], seed: int = 0, words: int = TOY_WORDS
) -> Path:
    rng = random.Random(seed)
    raw.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        ids = [[rng.randrange(words) for _ in range(rng.randint(2, 6))] for _ in range(n)]
        src = "".join(" ".join(f"s{i}" for i in x) + "\n" for x in ids)
        tgt = "".join(" ".join(f"t{i}" for i in reversed(x)) + "\n" for x in ids)
        (raw / f"{split}.src").write_text(src, encoding="utf-8")
        (raw / f"{split}.tgt").write_text(tgt, encoding="utf-8")
    return raw


@pytest.fixture(scope="session")
def write_parallel_corpus() -> Callable[..., Path]:
    """``write_parallel_corpus(raw, sizes, seed=0, words=12) -> raw``: a toy parallel corpus.

    Writes ``{split}.src`` / ``{split}.tgt`` for each ``split: pairs`` of ``sizes`` into
    ``raw`` (created if needed): 2-6 random words ``s0..s{words-1}`` per source line, the target is
    the word-by-word translation in reverse order (``s3 s7 s1`` -> ``t1 t7 t3``), a task a
    small attention model learns in a few hundred updates. Deterministic in ``seed``;
    session scoped, like :func:`write_lm_corpus`.
    """
    return _write_parallel_corpus


class CliArgv:
    """Argument lists of the CLI's training commands at test size (one thread, no bar)."""

    @staticmethod
    def lm_train(data: Path, out: Path, *extra: str) -> list[str]:
        """``g2lstm lm train`` on the tiny preset."""
        return ["lm", "train", "--preset", "tiny", "--data", str(data), "--out", str(out),
                "--threads", "1", "--no-progress", *extra]  # fmt: skip

    @staticmethod
    def mt_prepare(raw: Path, out: Path, *extra: str) -> list[str]:
        """``g2lstm mt prepare`` of a pre-tokenised ``{split}.src``/``.tgt`` folder, no BPE."""
        return ["mt", "prepare", "--dataset", "folder", "--raw", str(raw), "--src", "src",
                "--tgt", "tgt", "--pretokenized", "--bpe-merges", "0", "--out", str(out),
                *extra]  # fmt: skip

    @staticmethod
    def mt_train(prep: Path, out: Path, *extra: str) -> list[str]:
        """``g2lstm mt train`` on the tiny preset, no BLEU at the end."""
        return ["mt", "train", "--preset", "tiny", "--data", str(prep), "--out", str(out),
                "--threads", "1", "--no-progress", "--set", "train.valid_bleu=false",
                *extra]  # fmt: skip


@pytest.fixture(scope="session")
def cli_argv() -> CliArgv:
    """:class:`CliArgv`: ``cli_argv.lm_train(data, out, *extra)``, ``.mt_prepare(raw, out,
    *extra)``, ``.mt_train(prep, out, *extra)`` -> the ``main()`` argument list."""
    return CliArgv()


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    """``tests/browser.py``: headless Chromium helpers (``page_images``); skips the test when
    Debian's ``chromium`` is not installed (``.ci/run`` installs it with apt-get)."""
    spec = importlib.util.spec_from_file_location(
        "g2lstm_tests_browser", Path(__file__).with_name("browser.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if module.chromium() is None:
        pytest.skip("Debian's `chromium` is not installed (.ci/run installs it with apt-get)")
    return module
