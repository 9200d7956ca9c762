"""prepare_dataset / prepare_iwslt14 / prepare_multi30k on fixtures (and one real-data slice)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from g2lstm.errors import ConfigError, DataError
from g2lstm.mt.batching import TokenBatchSampler, collate, collate_lengths
from g2lstm.mt.bpe import remove_bpe
from g2lstm.mt.data import Tokenizer, read_lines
from g2lstm.mt.iwslt import prepare_iwslt14
from g2lstm.mt.prepare import (
    PrepareConfig,
    load_prepared,
    multi30k_files,
    prepare_dataset,
    prepare_multi30k,
)

SUBJECTS_EN = ["A man", "The woman", "Two dogs", "A little girl", "Some workers"]
SUBJECTS_DE = ["Ein Mann", "Die Frau", "Zwei Hunde", "Ein kleines Mädchen", "Einige Arbeiter"]
ACTIONS_EN = ["is walking", "are playing", "is sitting", "stands", "is running"]
ACTIONS_DE = ["geht", "spielen", "sitzt", "steht", "läuft"]
PLACES_EN = ["in the park.", "on the street!", "near the house, quickly.", "at the beach."]
PLACES_DE = ["im Park.", "auf der Straße!", "beim Haus, schnell.", "am Strand."]


def sentence(i: int) -> tuple[str, str]:
    s, a, p = i % 5, (i // 5) % 5, (i // 25) % 4
    return (
        f"{SUBJECTS_DE[s]} {ACTIONS_DE[a]} {PLACES_DE[p]}",
        f"{SUBJECTS_EN[s]} {ACTIONS_EN[a]} {PLACES_EN[p]}",
    )


def write_corpus(root: Path, n_train: int = 120) -> Path:
    """train/valid/test .de/.en files; train has one empty line and one very long pair."""
    root.mkdir(parents=True, exist_ok=True)
    spans = {"train": range(n_train), "valid": range(200, 210), "test": range(300, 308)}
    for split, span in spans.items():
        pairs = [sentence(i) for i in span]
        if split == "train":
            pairs.insert(5, ("", "An orphan line."))
            pairs.append((" ".join(["Wort"] * 40) + ".", " ".join(["word"] * 40) + "."))
        for k, lang in enumerate(("de", "en")):
            text = "".join(p[k] + "\n" for p in pairs)
            (root / f"{split}.{lang}").write_text(text, encoding="utf-8")
    return root


SETTINGS = {"tokenize": True, "lowercase": True, "bpe_merges": 60, "max_len": 30}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "raw")


def test_prepare_dataset_outputs(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "prep"
    data = prepare_dataset(corpus, out, "de", "en", **SETTINGS)
    names = {p.name for p in out.iterdir()}
    for name in ("prepare.json", "bpe.codes", "vocab.json", "train.de", "train.en"):
        assert name in names
    for split in ("valid", "test"):
        for kind in ("", "tok.", "detok."):
            assert f"{split}.{kind}de" in names and f"{split}.{kind}en" in names
    info = json.loads((out / "prepare.json").read_text(encoding="utf-8"))
    assert info["settings"]["config"]["bpe_merges"] == 60
    sha = hashlib.sha256((corpus / "train.de").read_bytes()).hexdigest()
    assert info["inputs"]["train.de"]["sha256"] == sha
    counts = info["counts"]
    assert counts["read"]["train"]["num_empty"] == 1
    assert counts["read"]["train"]["empty_lines"] == [[str(corpus / "train.de"), 6]]
    assert counts["train_filter"]["too_long"] == 1  # the 41-token pair, max_len=30
    assert counts["sizes"] == {"train": 120, "valid": 10, "test": 8}
    assert 0 < counts["bpe_merges_learned"] <= 60

    # the files agree with each other
    tok = Tokenizer(data.config.tokenizer_config("en"))
    raw_valid = read_lines(corpus / "valid.en")
    assert data.lines("valid", "en", "detok") == raw_valid
    assert data.lines("valid", "en", "tok") == tok.tokenize_lines(raw_valid)
    assert [remove_bpe(x) for x in data.lines("valid", "en")] == data.lines("valid", "en", "tok")
    assert data.lines("train", "en")[0] == "a man is walking in the park ."
    assert data.src_vocab is data.tgt_vocab  # joint by default
    assert data.splits == ("test", "train", "valid")
    assert data.bpe() is not None
    with pytest.raises(ConfigError, match="not for train"):
        data.path("train", "en", "tok")


def test_encoded_data_feeds_the_sampler_and_collate(corpus: Path, tmp_path: Path) -> None:
    data = prepare_dataset(corpus, tmp_path / "prep", "de", "en", **SETTINGS)
    pairs = data.encoded("train")
    assert len(pairs) == 120
    src0, tgt0 = pairs[0]
    assert data.tgt_vocab.decode(tgt0) == data.lines("train", "en")[0]
    assert data.src_vocab.unk_id not in src0.tolist()
    lengths = [collate_lengths(s, t) for s, t in pairs]
    sampler = TokenBatchSampler([a for a, _ in lengths], [b for _, b in lengths], 64, seed=0)
    seen = 0
    for idx in sampler:
        src, src_len, tgt_in, tgt_out = collate([pairs[i] for i in idx], 0, 2, 3)
        assert src.shape[1] == len(idx) == tgt_in.shape[1] == src_len.shape[0]
        seen += len(idx)
    assert seen == 120


def test_prepare_is_idempotent(
    corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "prep"
    first = prepare_dataset(corpus, out, "de", "en", **SETTINGS)
    stamp = (out / "train.en").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="g2lstm.mt.prepare"):
        again = prepare_dataset(corpus, out, "de", "en", **SETTINGS)
    assert "skipping" in caplog.text
    assert (out / "train.en").stat().st_mtime_ns == stamp
    assert again.info == first.info


def test_other_settings_or_inputs_are_refused_unless_overwrite(
    corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "prep"
    prepare_dataset(corpus, out, "de", "en", **SETTINGS)
    with pytest.raises(DataError, match=r"other settings .*bpe_merges.*overwrite=True"):
        prepare_dataset(corpus, out, "de", "en", **{**SETTINGS, "bpe_merges": 30})
    data = prepare_dataset(
        corpus, out, "de", "en", overwrite=True, **{**SETTINGS, "bpe_merges": 30}
    )
    assert data.config.bpe_merges == 30
    with (corpus / "test.en").open("a", encoding="utf-8") as f:
        f.write("One more.\n")
    (corpus / "test.de").write_text(
        (corpus / "test.de").read_text(encoding="utf-8") + "Noch einer.\n", encoding="utf-8"
    )
    with pytest.raises(DataError, match="other input files"):
        prepare_dataset(corpus, out, "de", "en", **{**SETTINGS, "bpe_merges": 30})


def test_damaged_output_is_rebuilt(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "prep"
    prepare_dataset(corpus, out, "de", "en", **SETTINGS)
    good = (out / "valid.en").read_bytes()
    (out / "valid.en").write_text("garbage\n", encoding="utf-8")
    prepare_dataset(corpus, out, "de", "en", **SETTINGS)
    assert (out / "valid.en").read_bytes() == good


def test_prepare_without_bpe_and_separate_vocabs(corpus: Path, tmp_path: Path) -> None:
    data = prepare_dataset(
        corpus, tmp_path / "p", "de", "en", bpe_merges=0, joint_vocab=False, lowercase=True
    )
    assert not (tmp_path / "p" / "bpe.codes").exists()
    assert data.bpe() is None
    assert data.lines("test", "en") == data.lines("test", "en", "tok")
    assert "mädchen" in data.src_vocab and "mädchen" not in data.tgt_vocab
    assert "girl" in data.tgt_vocab


def test_prepare_argument_errors(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown MT prepare setting"):
        prepare_dataset(corpus, tmp_path / "p", "de", "en", bpe_merge=10)
    with pytest.raises(ConfigError, match="include 'train'"):
        prepare_dataset(corpus, tmp_path / "p", "de", "en", splits={"valid": "valid"})
    with pytest.raises(DataError, match="missing"):
        prepare_dataset(corpus, tmp_path / "p", "de", "en", splits={"train": "nope"})
    with pytest.raises(ConfigError, match="both 'de'"):
        PrepareConfig("de", "de")
    with pytest.raises(DataError, match="not a prepared MT folder"):
        load_prepared(tmp_path / "nothing")


def test_multi30k_preset_paths(tmp_path: Path) -> None:
    files = multi30k_files(tmp_path, variant="raw")
    assert files["valid"] == (tmp_path / "multi30k/raw/val.de", tmp_path / "multi30k/raw/val.en")
    assert files["test"][1].name == "test2016.en"
    with pytest.raises(ConfigError, match="variant"):
        multi30k_files(tmp_path, variant="bpe")


# --- IWSLT'14 fixture mimicking the extracted de-en folder of the 2014-01 tgz -------------

HEADER = (
    "<url>http://www.ted.com/talks/{n}.html</url>\n"
    "<keywords>talks, culture</keywords>\n"
    "<speaker>Jane Doe</speaker>\n"
    "<talkid>{n}</talkid>\n"
    "<title>{title}</title>\n"
    "<description>TED Talk Subtitles and Transcript: a talk.</description>\n"
)
TEST_SETS = [
    "IWSLT14.TED.dev2010",
    "IWSLT14.TEDX.dev2012",
    "IWSLT14.TED.tst2010",
    "IWSLT14.TED.tst2011",
    "IWSLT14.TED.tst2012",
]


def write_iwslt(root: Path) -> tuple[list[str], list[str]]:
    """Write the fixture; return the en train lines fairseq's script keeps after cleaning,
    before lowercasing/tokenising (i.e. the raw text of each kept pair)."""
    root.mkdir(parents=True)
    de, en, kept_en = [], [], []
    for talk in (1, 2):
        de.append(HEADER.format(n=talk, title="Ein Vortrag"))
        en.append(HEADER.format(n=talk, title="A talk"))
        kept_en += [
            "<speaker>Jane Doe</speaker>",
            "A talk",
            "TED Talk Subtitles and Transcript: a talk.",
        ]
        for i in range(talk * 100, talk * 100 + 30):
            d, e = sentence(i)
            de.append(d + "\n")
            en.append(e + "\n")
            kept_en.append(e)
        de.append(" ".join(["lang"] * 180) + "\n")  # > 175 tokens: dropped by the clean step
        en.append(" ".join(["long"] * 180) + "\n")
        de.append("Ja.\n")  # ratio 2 tokens vs 6 > 1.5: dropped
        en.append("Yes, yes, yes.\n")
    (root / "train.tags.de-en.de").write_text("".join(de), encoding="utf-8")
    (root / "train.tags.de-en.en").write_text("".join(en), encoding="utf-8")
    for k, name in enumerate(TEST_SETS):
        for lang, text in (("de", "Es ist Satz {k}.{j}"), ("en", "It\u2019s sentence {k}.{j}")):
            segs = "".join(f'<seg id="{j}"> {text.format(k=k, j=j)} </seg>\n' for j in (1, 2))
            (root / f"{name}.de-en.{lang}.xml").write_text(
                f'<?xml version="1.0" encoding="UTF-8"?>\n<mteval>\n<srcset setid="x">\n'
                f'<doc docid="{k}" genre="lectures">\n<talkid>{k}</talkid>\n{segs}</doc>\n'
                f"</srcset>\n</mteval>\n",
                encoding="utf-8",
            )
    return de, kept_en


def test_prepare_iwslt14_fixture(tmp_path: Path) -> None:
    root = tmp_path / "de-en"
    _, kept_en = write_iwslt(root)
    data = prepare_iwslt14(root, tmp_path / "iwslt", bpe_merges=80)
    counts = data.info["counts"]
    assert counts["moses_clean"]["too_long"] == 2
    assert counts["moses_clean"]["bad_ratio"] == 2
    assert counts["moses_clean"]["num_kept"] == len(kept_en) == 66
    # valid = every 23rd cleaned line (lines 23 and 46), train = the rest, test = 5 sets x 2
    assert counts["sizes"] == {"train": 64, "valid": 2, "test": 10}
    assert data.lines("valid", "en", "detok") == [kept_en[22], kept_en[45]]
    tok = Tokenizer(data.config.tokenizer_config("en"))
    assert data.lines("valid", "en", "tok") == tok.tokenize_lines([kept_en[22], kept_en[45]])
    train_tok = [remove_bpe(x) for x in data.lines("train", "en")]
    assert train_tok[0] == "&lt; speaker &gt; jane doe &lt; / speaker &gt;"  # as fairseq's data
    assert train_tok[1] == "a talk"
    assert len(train_tok) == 64 and all(x == x.lower() for x in train_tok)
    # test: the five TED sets concatenated in fairseq's order, U+2019 -> ', escaped, lowercased
    assert data.lines("test", "en", "tok")[:3] == [
        "it &apos;s sentence 0.1",
        "it &apos;s sentence 0.2",
        "it &apos;s sentence 1.1",
    ]
    assert data.lines("test", "en", "detok")[-1] == "It's sentence 4.2"
    assert data.lines("test", "de", "tok")[-1] == "es ist satz 4.2"
    assert counts["test_sets"] == dict.fromkeys(TEST_SETS, 2)
    assert data.info["settings"]["pipeline"]["name"] == "iwslt14"


def test_prepare_iwslt14_errors(tmp_path: Path) -> None:
    root = tmp_path / "de-en"
    write_iwslt(root)
    (root / "IWSLT14.TED.tst2012.de-en.en.xml").unlink()
    with pytest.raises(DataError, match=r"missing files .*tst2012"):
        prepare_iwslt14(root, tmp_path / "out")
    with pytest.raises(ConfigError, match="de and en"):
        prepare_iwslt14(root, tmp_path / "out", src_lang="fr")


# --- real data -----------------------------------------------------------------------------


@pytest.mark.data
def test_multi30k_tok_slice(real_data: Path, tmp_path: Path) -> None:
    """The default (paper-like, tokenised+lowercased) Multi30k preset on a 500-sentence slice."""
    for src, tgt in multi30k_files(real_data).values():
        dest = tmp_path / "multi30k" / "tok"
        dest.mkdir(parents=True, exist_ok=True)
        for path in (src, tgt):
            lines = read_lines(path)[:500]
            (dest / path.name).write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    data = prepare_multi30k(tmp_path, tmp_path / "out", bpe_merges=1000)
    assert data.info["counts"]["sizes"] == {"train": 500, "valid": 500, "test": 500}
    ref_tok = read_lines(real_data / "multi30k/tok/val.en")[:500]
    assert data.lines("valid", "en", "tok") == ref_tok
    assert [remove_bpe(x) for x in data.lines("valid", "en")] == ref_tok
    detok = data.lines("valid", "en", "detok")
    assert "&apos;" not in " ".join(detok)  # the detok references are unescaped
    assert any("'s " in x for x in detok)
    retok = data.tokenizer("en", tokenize=True).tokenize_lines(detok)
    assert sum(a == b for a, b in zip(retok, ref_tok)) >= 495  # Moses detok/tok round trip
    assert len(data.src_vocab) > 500


@pytest.mark.data
def test_multi30k_raw_preset_tokenisation_reproduces_tok(real_data: Path) -> None:
    """normalize-punctuation + Moses tokenizer (escaped) + lowercase on raw = the tok files."""
    config = PrepareConfig(
        "de", "en", tokenize=True, lowercase=True, normalize_punct=True, escape=True
    )
    for lang in ("de", "en"):
        raw = read_lines(real_data / f"multi30k/raw/train.{lang}")[:300]
        ref = read_lines(real_data / f"multi30k/tok/train.{lang}")[:300]
        out = Tokenizer(config.tokenizer_config(lang)).tokenize_lines(raw)
        assert sum(a == b for a, b in zip(out, ref)) >= 297
