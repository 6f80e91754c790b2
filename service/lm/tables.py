"""Answers as CSV, for experiment software (PsychoPy, jsPsych, R): a header row, then one row
per word; UTF-8, RFC 4180 quoting, CRLF line ends. The same text for the HTTP API
(`Accept: text/csv`) and the CLI (`--csv`).

Each cell is the JSON answer's value written out: numbers in the shortest form that reads back
as the same double (as JSON writes them), `true`/`false`, an empty cell for null; a list of
words is space-separated (`lettres mettre`), a list of (word, number) pairs is `word:number`
pairs space-separated (`mettre:1 lettres:1`; a pair splits at its last colon). Lists are
read back by splitting at spaces: wordfreq's words hold none (a LEXICON_PATH file's could).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from service.lm.pseudowords import Figures, Matched
from service.lm.score import WordScore

WORD_COLUMNS = ("word",)
STATS_COLUMNS = (
    "word",
    "symbols",
    "logprob",
    "nll_per_symbol",
    "perplexity",
    "in_corpus",
    "in_lexicon",
    "matches",
    "old20",
    "neighbours",
    "nearest",
)
PSEUDOWORD_COLUMNS = (
    "item",
    "role",
    "word",
    "target",
    "length",
    "nll_per_symbol",
    "old20",
    "neighbours",
    "in_lexicon",
    "zipf",
    "reason",
)


def cell(value: object) -> str:
    """One value as a CSV cell (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return " ".join(f"{v[0]}:{cell(v[1])}" if isinstance(v, tuple) else str(v) for v in value)
    return str(value)


def write(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(columns)
    w.writerows([cell(v) for v in row] for row in rows)
    return out.getvalue()


def words_csv(words: Sequence[str]) -> str:
    return write(WORD_COLUMNS, ([w] for w in words))


def scores_csv(scores: Sequence[WordScore]) -> str:
    """The per-word figures of `/score` (or `/sample?stats=true`), without the bigrams."""

    def row(s: WordScore) -> list[object]:
        x = s.lexical
        return [
            s.word,
            s.symbols,
            s.logprob,
            s.nll_per_symbol,
            s.perplexity,
            s.in_corpus,
            None if x is None else x.in_lexicon,
            None if x is None else [(e.word, e.zipf) for e in x.matches],
            None if x is None else x.old20,
            None if x is None else list(x.neighbours),
            None if x is None else list(x.nearest),
        ]

    return write(STATS_COLUMNS, map(row, scores))


def pseudowords_csv(matched: Matched) -> str:
    """One row per word: each item's target (role `target`, `item` its number from 1), then its
    pseudowords (role `pseudoword`, `target` naming it); then the unmatched targets (role
    `unmatched`, with the `reason`)."""

    def row(item: int, role: str, f: Figures, target: str) -> list[object]:
        in_lexicon = f.in_lexicon if role == "target" else None
        return [
            item,
            role,
            f.word,
            target,
            f.length,
            f.nll_per_symbol,
            f.old20,
            list(f.neighbours),
            in_lexicon,
            f.zipf,
            None,
        ]

    rows: list[list[object]] = []
    for i, item in enumerate(matched.items, 1):
        t = item.target
        rows.append(row(i, "target", t, t.word))
        rows += [row(i, "pseudoword", p, t.word) for p in item.pseudowords]
    for u in matched.unmatched:
        rows.append([None, "unmatched", None, u.target, *[None] * 6, u.reason])
    return write(PSEUDOWORD_COLUMNS, rows)
