"""Joint BPE with subword-nmt: learning, applying, removing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from g2lstm.errors import ConfigError, DataError
from g2lstm.mt.bpe import BPE, learn_bpe, remove_bpe

TRAIN = [
    "the lowest tower is lower than the newest tower",
    "newer towers are lower and wider",
    "der niedrigste turm ist niedriger als der neueste turm",
    "die neueren türme sind niedriger und breiter",
] * 3


@pytest.fixture(scope="module")
def codes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bpe") / "bpe.codes"
    learned = learn_bpe(TRAIN, path, num_merges=40)
    assert 0 < learned <= 40
    return path


def test_codes_file_format(codes: Path) -> None:
    lines = codes.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#version: 0.2"
    assert all(len(line.split(" ")) == 2 for line in lines[1:])
    assert BPE(codes).num_merges == len(lines) - 1
    assert not codes.with_name("bpe.codes.tmp").exists()


def test_apply_splits_rare_words_with_separator(codes: Path) -> None:
    bpe = BPE(codes)
    out = bpe.apply("the unseenword tower")
    assert "@@ " in out  # the unseen word is split into pieces
    assert out.split()[0] == "the"
    assert bpe.apply_lines(["tower", "towers"])[0] == "tower"


def test_merge_limit_gives_finer_segmentation(codes: Path) -> None:
    full, few = BPE(codes), BPE(codes, merges=3)
    assert few.num_merges == 3
    assert len(few.apply("niedrigste").split()) > len(full.apply("niedrigste").split())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.text(alphabet="abdeilnorstuwäü.,'", min_size=1, max_size=12),
        min_size=1,
        max_size=12,
    )
)
def test_round_trip(codes: Path, words: list[str]) -> None:
    text = " ".join(words)
    assert remove_bpe(BPE(codes).apply(text)) == text


def test_remove_bpe() -> None:
    assert remove_bpe("un@@ believ@@ able story") == "unbelievable story"
    assert remove_bpe("dangling@@") == "dangling"
    assert remove_bpe("no bpe here") == "no bpe here"


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="num_merges"):
        learn_bpe(TRAIN, tmp_path / "c", num_merges=0)
    with pytest.raises(DataError, match="no merge could be learned"):
        learn_bpe(["a b c"], tmp_path / "c", num_merges=10)
    with pytest.raises(DataError, match="codes file not found"):
        BPE(tmp_path / "missing.codes")
