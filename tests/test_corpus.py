"""The word-list builder (rules of ../shared/data/README.md) and the word-list reader."""

from __future__ import annotations

import pytest

from service.lm.corpus import build_word_list, read_words, tokens
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
