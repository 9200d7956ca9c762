"""Reading parallel files, Moses tokenisation, clean-corpus filtering, IWSLT raw readers."""

from __future__ import annotations

from pathlib import Path

import pytest

from g2lstm.errors import ConfigError, DataError
from g2lstm.mt.data import (
    Tokenizer,
    TokenizerConfig,
    filter_pairs,
    read_iwslt_train_tags,
    read_iwslt_xml_segments,
    read_lines,
    read_parallel,
)


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def test_read_parallel_aligned_with_crlf_and_bom(tmp_path: Path) -> None:
    src = write(tmp_path / "a.de", "\ufeffein Haus\r\nzwei Häuser\r\n")
    tgt = write(tmp_path / "a.en", "a house\ntwo houses")  # no final newline
    par = read_parallel(src, tgt)
    assert par.src == ["ein Haus", "zwei Häuser"]
    assert par.tgt == ["a house", "two houses"]
    assert par.line_numbers == [1, 2]
    assert par.report.num_crlf == 2
    assert par.report.num_empty == 0


def test_unicode_line_separator_does_not_split_a_line(tmp_path: Path) -> None:
    src = write(tmp_path / "a.de", "eins\u2028zwei\ndrei\n")
    assert read_lines(src) == ["eins\u2028zwei", "drei"]


def test_empty_lines_are_dropped_counted_and_located(tmp_path: Path) -> None:
    src = write(tmp_path / "a.de", "eins\n\ndrei\nvier\n  \nsechs\n")
    tgt = write(tmp_path / "a.en", "one\ntwo\n\nfour\n\nsix\n")
    par = read_parallel(src, tgt)
    assert par.src == ["eins", "vier", "sechs"]
    assert par.tgt == ["one", "four", "six"]
    assert par.line_numbers == [1, 4, 6]
    rep = par.report
    assert (rep.num_lines, rep.num_pairs, rep.num_empty) == (6, 3, 3)
    assert rep.empty_lines == ((str(src), 2), (str(tgt), 3), (str(src), 5), (str(tgt), 5))
    assert "3 dropped as empty" in str(rep)
    assert rep.to_dict()["empty_lines"][0] == [str(src), 2]


def test_misaligned_files_name_both_files_and_counts(tmp_path: Path) -> None:
    src = write(tmp_path / "x.de", "a\nb\nc\n")
    tgt = write(tmp_path / "x.en", "a\nb\n")
    with pytest.raises(DataError) as err:
        read_parallel(src, tgt)
    msg = str(err.value)
    assert str(src) in msg and str(tgt) in msg
    assert "3 lines" in msg and "has 2" in msg


def test_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    src = write(tmp_path / "bad.de", "gut\nauch gut\nsch\xf6n\n".encode("latin-1"))
    tgt = write(tmp_path / "bad.en", "good\nalso good\nnice\n")
    with pytest.raises(DataError, match=r"bad\.de:3: not valid UTF-8 \(byte 0xf6 at column 4\)"):
        read_parallel(src, tgt)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.de: file not found"):
        read_lines(tmp_path / "nope.de")


SENTENCES_EN = [
    "Hello, world!",
    "A man in a blue shirt (and a hat) is standing on a ladder.",
    "It costs $5.50, doesn't it?",
    "Two dogs play in the snow near a red car.",
]
SENTENCES_DE = [
    "Ein Mann mit einem blauen Hemd steht auf einer Leiter.",
    "Zwei Hunde spielen im Schnee, neben einem roten Auto!",
]


@pytest.mark.parametrize("escape", [False, True])
def test_tokenize_detokenize_round_trip(escape: bool) -> None:
    for lang, sentences in (("en", SENTENCES_EN), ("de", SENTENCES_DE)):
        tok = Tokenizer(TokenizerConfig(lang, escape=escape))
        for sentence in sentences:
            tokens = tok.tokenize(sentence)
            assert tokens != sentence  # punctuation was split off
            assert tok.detokenize(tokens) == sentence


def test_tokenize_settings() -> None:
    tok = Tokenizer(TokenizerConfig("en", lowercase=True))
    assert tok.tokenize("Hello, World!") == "hello , world !"
    assert tok.tokenize("doesn't") == "doesn 't"
    esc = Tokenizer(TokenizerConfig("en", escape=True))
    assert esc.tokenize("doesn't") == "doesn &apos;t"
    assert esc.detokenize("doesn &apos;t") == "doesn't"
    norm = Tokenizer(TokenizerConfig("en", normalize_punct=True))
    assert norm.tokenize("\u201equoted\u201c") == '" quoted "'


def test_pass_through_only_normalises_whitespace_and_case() -> None:
    tok = Tokenizer(TokenizerConfig("en", tokenize=False, lowercase=True))
    assert tok.tokenize("  A man &apos;s  hat ,\tok . ") == "a man &apos;s hat , ok ."


def test_tokenizer_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="normalize_punct"):
        TokenizerConfig("en", tokenize=False, normalize_punct=True)
    with pytest.raises(ConfigError, match="language code"):
        TokenizerConfig("e n")


def test_filter_pairs_counts_each_reason() -> None:
    src = ["a b c", "a", "a b c d e f g", "a b", "a b c d"]
    tgt = ["a b c", "a b c d", "a b", "", "a b c"]
    kept, rep = filter_pairs(src, tgt, max_len=6, min_len=1, ratio=3.0)
    assert kept == [0, 4]
    assert (rep.too_long, rep.too_short, rep.bad_ratio) == (1, 1, 1)
    assert (rep.num_in, rep.num_kept, rep.dropped) == (5, 2, 3)
    kept, rep = filter_pairs(src, tgt, max_len=None, ratio=None)
    assert kept == [0, 1, 2, 4]
    assert rep.to_dict()["too_short"] == 1


def test_filter_pairs_ratio_like_moses_clean() -> None:
    # ratio 1.5: 3 vs 2 tokens is fine (1.5), 4 vs 2 is not.
    kept, _ = filter_pairs(["a b c", "a b c d"], ["x y", "x y"], ratio=1.5)
    assert kept == [0]
    with pytest.raises(ConfigError, match="ratio"):
        filter_pairs([], [], ratio=0.5)


def test_iwslt_train_tags_like_fairseq(tmp_path: Path) -> None:
    path = write(
        tmp_path / "train.tags.de-en.en",
        "<url>http://www.ted.com/talks/x.html</url>\n"
        "<keywords>talks, science</keywords>\n"
        "<speaker>Jane Doe</speaker>\n"
        "<talkid>1</talkid>\n"
        "<title>Jane Doe: A talk</title>\n"
        "<description>TED Talk Subtitles</description>\n"
        "Thank you so much.\n",
    )
    assert read_iwslt_train_tags(path) == [
        "<speaker>Jane Doe</speaker>",
        "Jane Doe: A talk",
        "TED Talk Subtitles",
        "Thank you so much.",
    ]
    assert read_iwslt_train_tags(path, drop_all_tag_lines=True)[0] == "Jane Doe: A talk"


def test_iwslt_xml_segments(tmp_path: Path) -> None:
    path = write(
        tmp_path / "IWSLT14.TED.dev2010.de-en.en.xml",
        '<?xml version="1.0" encoding="UTF-8"?>\n<mteval>\n<doc docid="1">\n'
        "<talkid>1</talkid>\n"
        '<seg id="1"> It\u2019s  big. </seg>\n'
        '<seg id="2">Second one.</seg>\n'
        "</doc>\n</mteval>\n",
    )
    assert read_iwslt_xml_segments(path) == ["It's  big.", "Second one."]
