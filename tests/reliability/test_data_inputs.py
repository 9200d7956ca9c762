"""Bad data through the public commands: ``g2lstm lm train`` and ``g2lstm mt prepare``.

Every failure is one ``g2lstm: error:`` line naming the file, what was expected and what to
do; CRLF line endings and very long lines are accepted; empty MT lines are dropped and counted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from g2lstm.cli import main


def test_missing_data_directory(tmp_path: Path, cli_error, cli_argv) -> None:
    missing = tmp_path / "nope"
    cli_error(cli_argv.lm_train(missing, tmp_path / "run"), str(missing), "does not exist")
    assert not list((tmp_path / "run").glob("checkpoints/step-*"))


def test_missing_split_lists_the_expected_layout(
    tmp_path: Path, cli_error, write_lm_corpus, cli_argv
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    (data / "valid.txt").unlink()
    cli_error(cli_argv.lm_train(data, tmp_path / "run"), "valid.txt", "expected layout")


def test_empty_file_is_named(tmp_path: Path, cli_error, write_lm_corpus, cli_argv) -> None:
    data = write_lm_corpus(tmp_path / "data")
    (data / "test.txt").write_text("", encoding="utf-8")
    cli_error(cli_argv.lm_train(data, tmp_path / "run"), str(data / "test.txt"), "0 tokens")


def test_split_shorter_than_one_batch(tmp_path: Path, cli_error, write_lm_corpus, cli_argv) -> None:
    data = write_lm_corpus(tmp_path / "data")
    (data / "train.txt").write_text("w1\n", encoding="utf-8")  # 2 tokens, batch size 4
    line = cli_error(cli_argv.lm_train(data, tmp_path / "run"), "train")
    assert "batch_size" in line and "8" in line


def test_non_utf8_bytes_report_file_and_line(
    tmp_path: Path, cli_error, write_lm_corpus, cli_argv
) -> None:
    data = write_lm_corpus(tmp_path / "data")
    lines = (data / "valid.txt").read_bytes().split(b"\n")
    lines[6] = b"w1 caf\xe9 w2"  # latin-1, line 7
    (data / "valid.txt").write_bytes(b"\n".join(lines))
    line = cli_error(cli_argv.lm_train(data, tmp_path / "run"), str(data / "valid.txt"), "7")
    assert "UTF-8" in line or "utf-8" in line


def test_crlf_line_endings_are_accepted_like_lf(
    tmp_path: Path, capsys, write_lm_corpus, cli_argv
) -> None:
    from g2lstm.lm.data import Corpus

    lf = write_lm_corpus(tmp_path / "lf")
    crlf = write_lm_corpus(tmp_path / "crlf")
    for split in ("train", "valid", "test"):
        text = (crlf / f"{split}.txt").read_bytes()
        (crlf / f"{split}.txt").write_bytes(text.replace(b"\n", b"\r\n"))
    assert main(cli_argv.lm_train(crlf, tmp_path / "run", "--max-steps", "1")) == 0
    assert "Traceback" not in capsys.readouterr().err
    a, b = Corpus.load(lf, cache=False), Corpus.load(crlf, cache=False)
    assert a.vocab == b.vocab
    for split in ("train", "valid", "test"):
        assert (a[split] == b[split]).all(), split
    assert not any("\r" in token for token in b.vocab)


def test_ten_megabyte_line_is_read(tmp_path: Path, capsys, write_lm_corpus, cli_argv) -> None:
    data = write_lm_corpus(tmp_path / "data")
    words = [f"w{i % 30}" for i in range(2_000_000)]
    big = " ".join(words)
    big += " " + "x" * (10_000_000 - len(big))  # one 10 MB line ending in a long token
    assert len(big) >= 10_000_000
    with (data / "valid.txt").open("a", encoding="utf-8") as f:
        f.write(big + "\n")
    assert main(cli_argv.lm_train(data, tmp_path / "run", "--max-steps", "1")) == 0
    assert "Traceback" not in capsys.readouterr().err
    from g2lstm.lm.data import Corpus

    valid = Corpus.load(data)["valid"]
    assert len(valid) > 2_000_000


# ---------------------------------------------------------------- machine translation


#: the toy corpus of these tests: 40 training pairs, 8 valid, 8 test
SIZES = {"train": 40, "valid": 8, "test": 8}


def test_mt_misaligned_parallel_files(
    tmp_path: Path, cli_error, write_parallel_corpus, cli_argv
) -> None:
    raw = write_parallel_corpus(tmp_path / "raw", SIZES)
    with (raw / "train.tgt").open("a", encoding="utf-8") as f:
        f.write("t1 t2\n")
    cli_error(
        cli_argv.mt_prepare(raw, tmp_path / "prep"),
        str(raw / "train.src"),
        str(raw / "train.tgt"),
        "40",
        "41",
    )
    assert not (tmp_path / "prep" / "prepare.json").exists()


def test_mt_non_utf8_names_file_and_line(
    tmp_path: Path, cli_error, write_parallel_corpus, cli_argv
) -> None:
    raw = write_parallel_corpus(tmp_path / "raw", SIZES)
    lines = (raw / "valid.src").read_bytes().split(b"\n")
    lines[2] = b"s1 \xff\xfe s2"
    (raw / "valid.src").write_bytes(b"\n".join(lines))
    cli_error(cli_argv.mt_prepare(raw, tmp_path / "prep"), str(raw / "valid.src"), "3")


def test_mt_missing_file(tmp_path: Path, cli_error, write_parallel_corpus, cli_argv) -> None:
    raw = write_parallel_corpus(tmp_path / "raw", SIZES)
    (raw / "test.tgt").unlink()
    cli_error(cli_argv.mt_prepare(raw, tmp_path / "prep"), "test.tgt")


def test_mt_empty_lines_dropped_and_counted(
    tmp_path: Path, capsys, write_parallel_corpus, cli_argv
) -> None:
    raw = write_parallel_corpus(tmp_path / "raw", SIZES)
    src = (raw / "train.src").read_text(encoding="utf-8").splitlines()
    tgt = (raw / "train.tgt").read_text(encoding="utf-8").splitlines()
    src[4], tgt[9] = "", "   "  # lines 5 and 10
    (raw / "train.src").write_text("\r\n".join(src) + "\r\n", encoding="utf-8")  # CRLF too
    (raw / "train.tgt").write_text("\n".join(tgt) + "\n", encoding="utf-8")
    assert main(cli_argv.mt_prepare(raw, tmp_path / "prep")) == 0
    assert "Traceback" not in capsys.readouterr().err
    info = json.loads((tmp_path / "prep" / "prepare.json").read_text(encoding="utf-8"))
    read = info["counts"]["read"]["train"]
    assert read["num_empty"] == 2
    assert [list(x) for x in read["empty_lines"]] == [
        [str(raw / "train.src"), 5],
        [str(raw / "train.tgt"), 10],
    ]
    assert info["counts"]["sizes"]["train"] == 38
    out_src = (tmp_path / "prep" / "train.src").read_text(encoding="utf-8").splitlines()
    assert len(out_src) == 38 and all(line.strip() for line in out_src)


@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
def test_mt_unencodable_or_control_text_is_not_a_crash(tmp_path: Path, bad: str) -> None:
    """Control characters pass through; a lone surrogate cannot even be written as UTF-8."""
    from g2lstm.errors import DataError
    from g2lstm.mt.data import read_parallel

    src, tgt = tmp_path / "a.src", tmp_path / "a.tgt"
    try:
        src.write_text(f"s1 {bad} s2\n", encoding="utf-8")
    except UnicodeEncodeError:
        src.write_bytes(b"s1 \xed\xa0\x80 s2\n")  # the surrogate's CESU bytes: not UTF-8
    tgt.write_text("t1\n", encoding="utf-8")
    if bad == "\x00":
        assert len(read_parallel(src, tgt).src) == 1
    else:
        with pytest.raises(DataError, match="a.src"):
            read_parallel(src, tgt)
