"""The word-list builder (rules of ../shared/data/README.md) and the word-list reader."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.lm.corpus import (
    WordListError,
    WordStream,
    build_word_list,
    count_words,
    read_words,
    tokens,
)
from service.lm.model import build_alphabet, count_bigrams, encode
from tests.conftest import CODE_CIVIL, CORPUS


def test_rebuilds_civil_mots_byte_for_byte():
    text = CODE_CIVIL.read_text(encoding="utf-8")
    assert build_word_list(text).encode("utf-8") == CORPUS.read_bytes()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Article 12\nLe juge", ["le", "juge"]),  # rule 1: the title line is skipped
        ("L’ÉTAT", ["l'", "état"]),  # rule 2: NFC, lower case, typographic apostrophe
        ("E\u0301te\u0301", ["été"]),  # rule 2: a combining accent is composed
        ("art. 3-1, alinéa 2", ["art", "alinéa"]),  # rule 3: digits and punctuation separate
        ("-peut-être- 'x'", ["peut-être", "x"]),  # rule 4: edges stripped
        ("qu'il", ["qu'", "il"]),  # rule 5
        ("jusqu'à lorsqu'elle", ["jusqu'", "à", "lorsqu'", "elle"]),
        ("aujourd'hui quelqu'un", ["aujourd'hui", "quelqu'un"]),  # no elided prefix
        ("l'qu'il", ["l'", "qu'", "il"]),  # repeatedly
        ("l'-avis", ["l'", "avis"]),  # stripped again after the split
        ("l'", ["l"]),  # nothing remains after the prefix: rule 4 strips the apostrophe
        ("Œuvre et cæcum", ["œuvre", "et", "cæcum"]),
    ],
)
def test_rules(text, expected):
    assert tokens(text) == expected


def test_word_list_is_sorted_unique_with_final_newline():
    assert build_word_list("b a b\nc") == "a\nb\nc\n"


def test_read_words_keeps_notebook_split(tmp_path):
    p = tmp_path / "w.txt"
    p.write_bytes(b"un\r\ndeux\ntrois")
    wl = read_words(p)
    assert wl.words == ["un", "deux", "trois"] and wl.size == len(p.read_bytes())


def whole_file_reader(path) -> list[str]:
    """The word-list reader as it was before streaming (the whole file at once), kept as the
    reference for the streaming one: the same words, and the same refusals."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise WordListError(f"{path}: line {line}: not valid UTF-8 (byte {e.start})") from None
    words = text.splitlines()
    if not words:
        raise WordListError(f"{path}: the word list is empty")
    for i, w in enumerate(words, 1):
        if not w:
            raise WordListError(f"{path}: line {i}: empty line (one word per line)")
        for c in w:
            if c == ".":
                raise WordListError(f"{path}: line {i}: {w!r} holds '.', the start/end marker")
            if c.isspace() or not c.isprintable():
                raise WordListError(
                    f"{path}: line {i}: {w!r} holds whitespace or a control character "
                    f"(U+{ord(c):04X})"
                )
    return words


def outcome(read, path):
    try:
        return read(path)
    except WordListError as e:
        return str(e)


def streamed(chunk_bytes):
    def read(path):
        words = []
        stream = WordStream(path, chunk_bytes)
        for chunk in stream:
            assert chunk.first == len(words)
            words += chunk.words
        assert stream.lines == len(words)
        assert stream.sha256 == hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return words

    return read


# Words of a few symbols, separated by every line break `splitlines` knows, with now and then
# a bad character ('.', a space, a control character), an empty line or a byte that is not
# UTF-8 (for that the text is made of bytes).
PIECES = st.sampled_from(
    ["a", "é", "œ", "ж", "🙂", "\n", "\n", "\r\n", "\r", "\x0b", "\x85", "\u2028", ".", " ", "\x07"]
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pieces=st.lists(PIECES, max_size=40),
    bad_byte=st.one_of(st.none(), st.integers(0, 200)),
    chunk_bytes=st.integers(1, 24),
)
def test_streaming_reader_reads_as_the_whole_file_reader(tmp_path, pieces, bad_byte, chunk_bytes):
    """Any content, cut in chunks of any size: the same words, or the same refusal (when the
    bytes are UTF-8; with a bad byte, both refuse: the streaming reader names the first problem
    in the file, which may come before the bad byte)."""
    data = "".join(pieces).encode("utf-8")
    if bad_byte is not None:
        at = bad_byte % (len(data) + 1)
        data = data[:at] + b"\xff" + data[at:]
    path = tmp_path / "w.txt"
    path.write_bytes(data)
    expected, got = outcome(whole_file_reader, path), outcome(streamed(chunk_bytes), path)
    if bad_byte is None:
        assert got == expected
    else:
        assert isinstance(got, str) and isinstance(expected, str)
        assert outcome(read_words, path) == got


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    words=st.lists(st.text(alphabet="abcœж🙂-'", min_size=1, max_size=8), min_size=1, max_size=60),
    chunk_bytes=st.integers(1, 64),
    held_seed=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
)
def test_streaming_counts_are_the_examples_counts(tmp_path, words, chunk_bytes, held_seed):
    """The one-pass counts (any chunk size, with or without held-out words) equal the counts of
    the notebook's examples of the training words, over their alphabet."""
    path = tmp_path / "w.txt"
    path.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    held = None
    if held_seed is not None:
        held = np.random.default_rng(held_seed).random(len(words)) < 0.3
    stream = WordStream(path, chunk_bytes)
    counted = count_words(stream, stream.symbols, held)
    train = [w for i, w in enumerate(words) if held is None or not held[i]]
    assert counted.lines == len(words)
    assert counted.words == set(train)
    assert counted.heldout == Counter(
        w for i, w in enumerate(words) if held is not None and held[i]
    )
    if not train:
        return
    alphabet = build_alphabet(train)
    xs, ys = encode(train, alphabet)
    assert counted.alphabet == alphabet
    assert np.array_equal(counted.counts, count_bigrams(xs, ys, len(alphabet)).numpy())


def test_counting_memory_does_not_grow_with_the_list(tmp_path):
    """The shared corpus 8 times over (a few chunks), and 64 times over: the peak of memory
    allocated while counting (tracemalloc sees numpy's buffers too) stays about the same;
    reading the list whole grows with it."""
    data = CORPUS.read_bytes()

    def peak(times: int, read) -> int:
        path = tmp_path / f"x{times}.txt"
        path.write_bytes(data * times)
        tracemalloc.start()
        read(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    def count(path):
        stream = WordStream(path)
        return count_words(stream, stream.symbols)

    small, large = peak(8, count), peak(64, count)
    assert large < 1.2 * small, (small, large)
    # The measure can fail: the whole-file reader's peak grows with the list.
    assert peak(64, whole_file_reader) > 4 * peak(8, whole_file_reader)
