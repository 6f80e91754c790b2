"""Real pseudowords in the library (SPEC section 8): `novel` against a lexicon, the OLD20
filters, matched sets, and the bounded work of each.

The references are written here: Levenshtein distance by dynamic programming, OLD20 and
neighbours by brute force over the lexicon, accent folding by Unicode decomposition, and on
tiny models every allowed word enumerated with its probability, so that sampled frequencies
can be compared with P(w) / P(constraints) (chi-square, fixed seed). The same chi-square
rejects plausible wrong samplers.
"""

from __future__ import annotations

import itertools
import statistics
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.lm.constrained import (
    Constraints,
    ImpossibleConstraints,
    ImprobableConstraints,
    NoLexicon,
)
from service.lm.lexicon import Allowance, Lexicon, LexiconSource
from service.lm.pseudowords import Matcher, target_seed
from service.lm.ready import open_model
from service.lm.score import Scorer
from tests.conftest import TUNED_MODEL
from tests.test_constrained import chi_square_pvalue, enumerate_words, sampler_for

# -- references written here ----------------------------------------------------------------


def levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def old20(word: str, entries: list[str]) -> float | None:
    """Mean distance to the 20 closest entries other than the word itself (fewer if there are
    fewer)."""
    d = sorted(levenshtein(word, e) for e in entries if e != word)[:20]
    return sum(d) / len(d) if d else None


def folded(word: str) -> str:
    """NFC, lower case, then without combining marks (and the two ligatures)."""
    w = unicodedata.normalize("NFC", word).lower().replace("œ", "oe").replace("æ", "ae")
    return "".join(c for c in unicodedata.normalize("NFD", w) if not unicodedata.combining(c))


# A tiny lexicon over a and b: most short words are in it, long ones not.
TINY = ["a", "b", "ab", "ba", "aa", "aba", "bab", "abb", "bba", "aab", "abab", "baba", "bbbb"]
TINY += ["aaaa", "abba", "baab", "ababa", "bbaab", "aabba", "abaab", "babab", "bbbbb", "aaaaa"]


def tiny_source(tmp_path, words=TINY) -> LexiconSource:
    path = tmp_path / "tiny.txt"
    path.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    return LexiconSource(None, path)


def tiny_sampler(tmp_path, words=TINY, budget=None, lexicon_budget=None):
    cs = sampler_for("ab", 20261202, scale=1.2, words=["ab", "bb"], budget=budget)
    cs.lexicon_source = tiny_source(tmp_path, words)
    cs.lexicon_budget = lexicon_budget
    return cs


def conditional(probs: dict[str, float], keep) -> dict[str, float]:
    kept = {w: p for w, p in probs.items() if keep(w)}
    total = sum(kept.values())
    return {w: p / total for w, p in kept.items()}


# -- the neighbourhood -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    word=st.text(alphabet="abé", min_size=1, max_size=7),
    above=st.floats(min_value=0, max_value=4, allow_nan=False),
)
def test_a_search_stopped_above_a_bound_is_right_about_it(word, above):
    """`above` lets a search stop once OLD20 is known to exceed it: then it truly does; else the
    figures are the brute force's."""
    entries = sorted({"".join(p) for n in range(1, 6) for p in itertools.product("abé", repeat=n)})
    lexicon = _lexicon_of(tuple(entries[::3]))
    nb = lexicon._search(word, 5, None, above)
    truth = old20(word, entries[::3])
    if nb.old20 is None:
        assert nb.old20_above is not None and truth > above
        assert truth >= nb.old20_above - 1e-12  # and the bound it gives is one
    else:
        assert nb.old20 == pytest.approx(truth, abs=1e-12)


_LEXICONS: dict[tuple, Lexicon] = {}


def _lexicon_of(words: tuple[str, ...]) -> Lexicon:
    if words not in _LEXICONS:
        _LEXICONS[words] = Lexicon(list(words))
    return _LEXICONS[words]


def test_allowance_charges_searches_alike_cached_or_not():
    """A remembered search is charged as if made again: running out never depends on what
    other requests asked before."""
    lexicon = Lexicon([w + s for w in ("maison", "raison", "saison") for s in ("", "s", "x")])
    first, again = Allowance(None), Allowance(None)
    a = first.neighbourhood(lexicon, "maisson")
    b = again.neighbourhood(lexicon, "maisson")
    assert a == b and first.spent == again.spent > 0
    tight = Allowance(again.spent - 1)
    with pytest.raises(Exception, match="budget"):
        tight.neighbourhood(lexicon, "maisson")


# -- novel ---------------------------------------------------------------------------------


def test_novel_rejects_lexicon_words_accent_folded(tmp_path):
    """A lexicon word written with or without its accents is not novel; the conditional
    distribution of what is left is P(w) / P(novel and the rest) (chi-square)."""
    cs = sampler_for("abeé", 7, scale=1.0, words=["ab"])
    listed = ["é", "ba", "ae", "bb", "ébé"]
    cs.lexicon_source = tiny_source(tmp_path, listed)
    c = Constraints(min_len=1, max_len=3, novel=True)
    words = cs.sample(20000, 3, c).words
    keys = {folded(w) for w in listed}
    # The model's "e" is "é" unaccented, its "aé" is "ae" accented, "ebe" and "ébe" are "ébé".
    out = {"e", "é", "ae", "aé", "ebe", "ébe", "ebé", "ébé", "ba", "bb", "ab"}
    assert {w for w in out if w != "ab"} == {w for w in _all_words("abeé", 3) if folded(w) in keys}
    assert not out & set(words)
    probs = conditional(
        enumerate_words(cs, Constraints(min_len=1, max_len=3), longest=3),
        lambda w: w not in out,
    )
    assert chi_square_pvalue(words, probs) > 1e-3


def _all_words(letters: str, longest: int) -> list[str]:
    return ["".join(p) for n in range(1, longest + 1) for p in itertools.product(letters, repeat=n)]


def test_novel_with_only_lexicon_words_left_is_impossible_at_once(tmp_path):
    """Every word the constraints allow is in the lexicon: refused at once (words listed),
    not after spending the budget."""
    allowed = ["".join(p) for n in (2, 3) for p in itertools.product("ab", repeat=n)]
    cs = tiny_sampler(tmp_path, words=allowed, budget=10**9)
    with pytest.raises(ImpossibleConstraints, match="lexicon word") as e:
        cs.sample(5, 1, Constraints(min_len=2, max_len=3, novel=True))
    assert "novel" in e.value.parameters
    # Two words of 4 letters are not in it: unique asks for more than there are.
    cs.lexicon_source = tiny_source(tmp_path, [*allowed, *TINY[:12], "aaaa", "abba"])
    with pytest.raises(ImpossibleConstraints, match="fewer than n"):
        cs.sample(20, 1, Constraints(min_len=4, max_len=4, novel=True, unique=True))


# -- OLD20 filters ---------------------------------------------------------------------------

OLD20_CASES = [
    ("min", Constraints(min_len=2, max_len=5, old20_min=2.1)),
    ("max", Constraints(min_len=2, max_len=5, old20_max=2.0)),
    ("range-novel", Constraints(max_len=5, old20_min=1.8, old20_max=2.2, novel=True)),
]


@pytest.mark.parametrize(("name", "c"), OLD20_CASES, ids=[x[0] for x in OLD20_CASES])
def test_old20_filters_follow_the_conditional_distribution(tmp_path, name, c):
    cs = tiny_sampler(tmp_path, budget=10**8)
    n = 20000
    words = cs.sample(n, 12345, c).words
    shaped = Constraints(min_len=c.min_len, max_len=c.max_len)
    figures = {}

    def keep(w):
        if w not in figures:
            figures[w] = old20(w, TINY)
        o, lexical = figures[w], {*TINY, "ab", "bb"}
        return (
            (c.old20_min is None or o >= c.old20_min - 1e-9)
            and (c.old20_max is None or o <= c.old20_max + 1e-9)
            and not (c.novel and w in lexical)
        )

    probs = conditional(enumerate_words(cs, shaped, longest=c.max_len), keep)
    assert set(words) <= set(probs)
    assert chi_square_pvalue(words, probs) > 1e-3, name
    # A plausible wrong filter fails the same test: retry a failing word once, then keep the
    # second candidate whatever its OLD20 (to bound the work).
    rough = cs.sample(3 * n, 999, shaped).words
    wrong, k = [], 0
    while len(wrong) < n:
        w = rough[k]
        wrong.append(w if keep(w) else rough[k + 1])
        k += 2 if not keep(w) else 1
    assert chi_square_pvalue(wrong, probs) < 1e-6, name


def test_old20_filters_need_a_lexicon_and_a_budget(tmp_path):
    cs = sampler_for("ab", 3)
    with pytest.raises(NoLexicon) as e:
        cs.sample(3, 1, Constraints(old20_min=1.0))
    assert e.value.parameters == ("old20_min",)
    cs = tiny_sampler(tmp_path, lexicon_budget=50_000)
    with pytest.raises(ImprobableConstraints, match="lexicon work budget") as e:
        cs.sample(1000, 1, Constraints(min_len=2, max_len=5, old20_min=2.1))
    assert e.value.parameters[0] == "old20_min" and 0 < e.value.found < 1000
    with pytest.raises(ValueError, match="at least old20_min"):
        cs.sample(1, 1, Constraints(old20_min=2, old20_max=1))


# -- matched sets ------------------------------------------------------------------------------


def tiny_matcher(tmp_path, tolerance=0.4, nll=0.5):
    cs = tiny_sampler(tmp_path)
    scorer = Scorer(cs.lm, cs.training.words, cs.lexicon_source)
    return Matcher(cs, scorer, cs.lexicon(), tolerance, nll), cs, scorer


def test_matched_words_follow_the_conditional_distribution(tmp_path):
    """One pseudoword per answer, many seeds: the words of a target's length within both
    tolerances, novel, not the target, with probability P(w) / P(those constraints)."""
    matcher, cs, scorer = tiny_matcher(tmp_path, tolerance=0.4, nll=0.45)
    target = "aabaa"
    (t,) = scorer.score([target])
    t_old20 = old20(target, TINY)
    lexical = {*TINY, "ab", "bb"}

    def keep(w):
        (s,) = scorer.score([w])
        return (
            w not in lexical
            and w != target
            and abs(s.nll_per_symbol - t.nll_per_symbol) <= 0.45 + 1e-9
            and abs(old20(w, TINY) - t_old20) <= 0.4 + 1e-9
        )

    probs = conditional(enumerate_words(cs, Constraints(min_len=5, max_len=5), longest=5), keep)
    assert len(probs) > 5
    words = []
    for seed in range(3000):
        (item,) = matcher.match([target], 1, seed, Allowance(None)).items
        words.append(item.pseudowords[0].word)
    assert chi_square_pvalue(words, probs) > 1e-3
    # A matcher that gives up after one retry (keeps the second candidate of the target's
    # length whatever it is) fails it.
    rough = cs.sample(6000, 5, Constraints(min_len=5, max_len=5)).words
    wrong = [a if keep(a) else b for a, b in zip(rough[::2], rough[1::2], strict=True)]
    assert chi_square_pvalue(wrong, probs) < 1e-6


def test_matched_sets_on_the_tuned_model():
    """Each pseudoword: the target's length, novel (accent-folded, against the lexicon's own
    entries), within both tolerances (NLL rescored, OLD20 by brute force), unique in the
    answer; the summary equals the figures it summarises; the same seed, the same answer."""
    m = open_model(TUNED_MODEL)
    lexicon = m.lexicon
    entries = list(lexicon)
    keys = {folded(e) for e in entries}
    targets = ["maison", "lettre", "soleil", "chat", "jardin", "york"]
    matched = m.pseudowords(targets, 3, 7, 0.3, 0.3)
    again = m.pseudowords(targets, 3, 7, 0.3, 0.3)
    assert matched == again
    assert [u.target for u in matched.unmatched][-1] == "york"
    assert "'k'" in matched.unmatched[-1].reason
    assert len(matched.items) >= 4
    seen = set()
    for item in matched.items:
        t = item.target
        assert len(item.pseudowords) == 3
        for p in item.pseudowords:
            assert len(p.word) == p.length == t.length
            assert folded(p.word) not in keys and p.word not in seen and p.word not in targets
            seen.add(p.word)
            (s,) = m.scorer.score([p.word])
            assert s.nll_per_symbol == p.nll_per_symbol
            assert abs(p.nll_per_symbol - t.nll_per_symbol) <= 0.3 + 1e-9
            assert abs(p.old20 - t.old20) <= 0.3 + 1e-9
        d = np.sort(np.array([levenshtein(t.word, e) for e in entries if e != t.word]))[:20]
        assert t.old20 == pytest.approx(d.mean(), abs=1e-12)
    summary = matched.summary()
    words = [p for item in matched.items for p in item.pseudowords]
    assert summary["pseudowords"]["count"] == len(words)
    assert summary["targets"]["old20"]["mean"] == pytest.approx(
        statistics.fmean(item.target.old20 for item in matched.items)
    )
    assert summary["pseudowords"]["nll_per_symbol"]["sd"] == pytest.approx(
        statistics.stdev(p.nll_per_symbol for p in words)
    )


def test_unmatched_targets_say_why_and_give_their_words_back(tmp_path):
    matcher, *_ = tiny_matcher(tmp_path, tolerance=0.0, nll=0.0)
    matched = matcher.match(["abbab", "ac", "", "a" * 300], 2, 1, Allowance(None))
    reasons = [u.reason for u in matched.unmatched]
    assert any("rejection budget" in r for r in reasons)
    assert any("'c' (position 2)" in r for r in reasons)
    assert "an empty target" in reasons and any("longest word" in r for r in reasons)
    # The lexicon budget: the request's, then nothing more is searched.
    matcher, *_ = tiny_matcher(tmp_path)
    matched = matcher.match(["abbab", "babba", "aabab"], 2, 1, Allowance(10_000))
    assert any("lexicon work budget ran out" in u.reason for u in matched.unmatched)


def test_target_seeds_are_distinct_and_in_range():
    seeds = {target_seed(s, i) for s in (0, 1, 2**63 - 1) for i in range(200)}
    assert len(seeds) == 600 and all(0 <= s < 2**63 for s in seeds)


def test_counts_of_rejections_are_reasons(tmp_path):
    cs = tiny_sampler(tmp_path)
    r = cs.sample(500, 1, Constraints(max_len=5, novel=True, old20_min=2.1))
    assert set(r.rejected) == {"novel", "old20"}
    assert all(old20(w, TINY) >= 2.1 - 1e-9 for w in r.words)
