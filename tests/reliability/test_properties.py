"""Property-based tests: the layer over random sizes and options, the text loaders over
random unicode."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence

from g2lstm.errors import DataError
from g2lstm.nn import G2LSTM

_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def layer_cases(draw):
    hidden = draw(st.integers(1, 6))
    return {
        "input_size": draw(st.integers(1, 5)),
        "hidden_size": hidden,
        "num_layers": draw(st.integers(1, 2)),
        "bidirectional": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "proj_size": draw(st.integers(0, hidden - 1)) if hidden > 1 else 0,
        "noise_p": draw(st.sampled_from([0.0, 0.2, 1.0])),
        "tau": draw(st.sampled_from([0.1, 0.9, 1.0])),
        "eval_gates": draw(st.sampled_from(["soft", "hard", "sample"])),
        "batch": draw(st.integers(1, 3)),
        "length": draw(st.integers(1, 5)),
        "packed": draw(st.booleans()),
        "train": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


def _make(case, backend: str) -> G2LSTM:
    torch.manual_seed(case["seed"])
    layer = G2LSTM(
        case["input_size"],
        case["hidden_size"],
        case["num_layers"],
        batch_first=case["batch_first"],
        bidirectional=case["bidirectional"],
        proj_size=case["proj_size"],
        tau=case["tau"],
        noise_p=case["noise_p"],
        eval_gates=case["eval_gates"],
    )
    layer.backend = backend
    layer.train(case["train"])
    layer.generator = torch.Generator().manual_seed(case["seed"] + 1)
    return layer


def _inputs(case):
    g = torch.Generator().manual_seed(case["seed"])
    n, t = case["batch"], case["length"]
    shape = (n, t, case["input_size"]) if case["batch_first"] else (t, n, case["input_size"])
    x = torch.randn(shape, generator=g)
    if case["packed"]:
        lengths = torch.randint(1, t + 1, (n,), generator=g)
        return pack_padded_sequence(
            x, lengths, batch_first=case["batch_first"], enforce_sorted=False
        )
    return x


def _run(case, backend: str):
    layer = _make(case, backend)
    x = _inputs(case)
    out, (h, c) = layer(x)
    data = out.data if case["packed"] else out
    return data, h, c


@_SETTINGS
@given(layer_cases())
def test_shapes_and_finite_outputs(case) -> None:
    data, h, c = _run(case, "auto")
    d = 2 if case["bidirectional"] else 1
    h_out = case["proj_size"] or case["hidden_size"]
    n, t = case["batch"], case["length"]
    assert h.shape == (d * case["num_layers"], n, h_out)
    assert c.shape == (d * case["num_layers"], n, case["hidden_size"])
    if not case["packed"]:
        assert data.shape == ((n, t, d * h_out) if case["batch_first"] else (t, n, d * h_out))
    else:
        assert data.shape[-1] == d * h_out
    for tensor in (data, h, c):
        assert torch.isfinite(tensor).all()


@_SETTINGS
@given(layer_cases())
def test_eval_is_deterministic_unless_gates_are_sampled(case) -> None:
    case = {**case, "train": False}
    if case["eval_gates"] == "sample":
        case["eval_gates"] = "soft"
    layer = _make(case, "auto")
    x = _inputs(case)
    with torch.no_grad():
        a, b = layer(x), layer(x)
    out_a = a[0].data if case["packed"] else a[0]
    out_b = b[0].data if case["packed"] else b[0]
    assert torch.equal(out_a, out_b)
    assert torch.equal(a[1][0], b[1][0]) and torch.equal(a[1][1], b[1][1])


@_SETTINGS
@given(layer_cases())
def test_auto_backend_equals_reference_with_the_same_seed(case) -> None:
    fast, ref = _run(case, "auto"), _run(case, "reference")
    for x, y in zip(fast, ref):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- text loaders

_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@_SETTINGS
@given(st.lists(_TEXT, min_size=1, max_size=8))
def test_lm_tokenisation_round_trips_words(lines: list[str]) -> None:
    from g2lstm.lm.data import Corpus
    from g2lstm.lm.vocab import EOS, read_lines, tokenize_lines

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for split in ("train", "valid", "test"):
            (folder / f"{split}.txt").write_text("\n".join(lines), encoding="utf-8")
        read = list(read_lines(folder / "train.txt"))
        tokens = [t for line in tokenize_lines(read) for t in line]
        # the words str.split sees once the file's line breaks are normalised and a BOM dropped
        text = "\n".join(lines).replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff")
        assert [t for t in tokens if t != EOS] == text.split()
        if not read:  # the only acceptable error: a file without any line
            with pytest.raises(DataError, match="0 tokens"):
                Corpus.load(folder, cache=False)
            return
        corpus = Corpus.load(folder, cache=False)
        ids = corpus["train"].tolist()
        assert corpus.vocab.decode(ids) == tokens


@_SETTINGS
@given(st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=8), st.booleans())
def test_read_parallel_on_random_unicode(pairs, crlf: bool) -> None:
    from g2lstm.mt.data import read_parallel

    eol = "\r\n" if crlf else "\n"
    with tempfile.TemporaryDirectory() as tmp:
        src, tgt = Path(tmp) / "a.src", Path(tmp) / "a.tgt"
        src.write_text(eol.join(s for s, _ in pairs) + eol, encoding="utf-8", newline="")
        tgt.write_text(eol.join(t for _, t in pairs) + eol, encoding="utf-8", newline="")
        try:
            text = read_parallel(src, tgt)
        except DataError as e:  # line breaks inside a random line can misalign the files
            error = str(e)
            text = None
        if text is None:
            assert str(src) in error and str(tgt) in error and "not aligned" in error
            return
        assert len(text.src) == len(text.tgt) == text.report.num_pairs
        assert text.report.num_pairs + text.report.num_empty == text.report.num_lines
        for s, t in zip(text.src, text.tgt):
            assert s.strip() and t.strip()
        simple = all(
            not any(ch in s + t for ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
            for s, t in pairs
        )
        if simple:  # no line-break characters inside a line: the words come back unchanged
            kept = [(s, t) for s, t in pairs if s.strip() and t.strip()]
            assert [x.split() for x in text.src] == [s.split() for s, _ in kept]
            assert [x.split() for x in text.tgt] == [t.split() for _, t in kept]
