"""The models of order N (`service.lm.ngram`) against a reference written here with dicts and
loops, straight from the module docstring: interpolated modified Kneser–Ney (raw counts at level
N, continuation counts below, per-level discounts with the (0.5, 1, 1.5) fallback, uniform base
1/V, an unseen context taking its suffix's distribution) and add-k on the full context.

The model's rows are read as a consumer reads them: the state after a context (`state_after`)
and `exp(logP)` there, for seen, unseen, empty and over-long contexts; they must equal the
reference within 1e-12. Also: the rows are distributions, the streaming counter (small chunks,
hold-out mask) counts what the in-memory one counts, random lists (hypothesis) agree, and the
comparison is sensitive (plausible wrong smoothers differ by far more than the tolerance).
An alphabet too big for the int64 keys is refused by both counters.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import service.lm.ngram as ngram
from service.lm.corpus import WordStream
from service.lm.ngram import NgramCounts, add_k, count_ngrams, kneser_ney
from tests.conftest import CORPUS, generated_word_lists

EOS = "."
FALLBACK = (0.5, 1.0, 1.5)  # the documented fallback, written out (not imported)
TOL = 1e-12
ORDERS = range(2, 9)
ADD_K_ORDERS = range(2, 5)
KS = [0.01, 0.5, 1, 2]


def corpus_words() -> list[str]:
    return CORPUS.read_text(encoding="utf-8").splitlines()


def word_lists() -> dict[str, list[str]]:
    """The small lists the exact comparisons run on."""
    generated = generated_word_lists()
    words = corpus_words()
    return {
        "tiny-ab": generated["tiny-ab"],
        "greek-cyrillic": generated["greek-cyrillic"],
        "cjk-emoji-symbols": generated["cjk-emoji-symbols"],
        "civil-first-400": words[:400],
        "civil-every-25th": words[::25],
        # Made up here: a one-symbol alphabet (V = 2), words sharing long stretches, and
        # repeated words whose level-N counts give all of n1..n4 > 0 but D2 < 0 (fallback).
        "one-symbol": ["a", "aa", "aaa", "aaaa"],
        "banana": ["banana", "bandana", "cabana", "ananas", "nana", "an", "bab", "cab-an'a"],
        "repeats": ["a"] * 3 + ["b"] * 3 + ["c"] * 3 + ["e", "f", "f"] + ["g"] * 4,
    }


LISTS = word_lists()


def alphabet_of(words) -> tuple[str, ...]:
    return (EOS, *sorted(set("".join(words))))


# -- the reference ----------------------------------------------------------------------------


def gram_counts(words, N: int) -> dict[str, int]:
    """The N-grams of `'.' * (N - 1) + word + '.'`, one per position after the padding."""
    counts: dict[str, int] = {}
    for w in words:
        s = EOS * (N - 1) + w + EOS
        for i in range(N - 1, len(s)):
            g = s[i - N + 1 : i + 1]
            counts[g] = counts.get(g, 0) + 1
    return counts


def ref_discounts(values) -> tuple[float, float, float]:
    n1, n2, n3, n4 = (sum(1 for v in values if v == k) for k in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) == 0:
        return FALLBACK
    Y = n1 / (n1 + 2 * n2)
    d = (1 - 2 * Y * n2 / n1, 2 - 3 * Y * n3 / n2, 3 - 4 * Y * n4 / n3)
    if not (0 < d[0] <= 1 and 0 < d[1] <= 2 and 0 < d[2] <= 3):
        return FALLBACK
    return d


class ReferenceKN:
    """Interpolated modified Kneser–Ney as the module docstring defines it.

    `continuation=False` (raw counts at every level) and `fixed` (the same discounts at every
    level) make the plausible wrong models the sensitivity test needs."""

    def __init__(self, words, N: int, continuation: bool = True, fixed=None):
        self.alphabet = alphabet_of(words)
        self.V = len(self.alphabet)
        self.N = N
        self.levels: dict[int, dict[str, int]] = {N: gram_counts(words, N)}
        for n in range(N - 1, 0, -1):
            lower: dict[str, int] = {}
            for g, c in self.levels[n + 1].items():  # c_n(g): distinct x g with a count
                lower[g[1:]] = lower.get(g[1:], 0) + (1 if continuation else c)
            self.levels[n] = lower
        self.discounts = {
            n: fixed if fixed is not None else ref_discounts(self.levels[n].values())
            for n in range(1, N + 1)
        }
        # Per level, per seen context h: T(h) and D1 N1(h) + D2 N2(h) + D3 N3+(h).
        self.seen: dict[int, dict[str, list[float]]] = {}
        for n in range(1, N + 1):
            stats: dict[str, list[float]] = {}
            for g, c in self.levels[n].items():
                s = stats.setdefault(g[:-1], [0, 0.0])
                s[0] += c
                s[1] += self.D(n, c)
            self.seen[n] = stats
        self._memo: dict[tuple[int, str], list[float]] = {}

    def D(self, n: int, count: int) -> float:
        return 0.0 if count == 0 else self.discounts[n][min(count, 3) - 1]

    def dist(self, n: int, h: str) -> list[float]:
        """P_n(. | h) over the alphabet, h of n - 1 symbols."""
        if n == 0:
            return [1 / self.V] * self.V
        key = (n, h)
        if key not in self._memo:
            lower = self.dist(n - 1, h[1:])
            if h not in self.seen[n]:
                out = lower
            else:
                T, mass = self.seen[n][h]
                gamma = mass / T
                counts = self.levels[n]
                out = []
                for c, p in zip(self.alphabet, lower, strict=True):
                    k = counts.get(h + c, 0)
                    out.append(max(k - self.D(n, k), 0) / T + gamma * p)
            self._memo[key] = out
        return self._memo[key]

    def context(self, ctx: str) -> str:
        """The last N - 1 symbols of the padded history of a word begun with `ctx`."""
        return (EOS * (self.N - 1) + ctx)[-(self.N - 1) :]

    def probs(self, ctx: str) -> list[float]:
        return self.dist(self.N, self.context(ctx))

    def state(self, ctx: str) -> str:
        """The longest suffix of the context seen at its level (what the distribution is)."""
        h = self.context(ctx)
        return next(h[i:] for i in range(len(h) + 1) if h[i:] in self.seen[len(h) - i + 1])


class ReferenceAddK:
    """add-k: (N(h c) + K) / (N(h) + K V) on the full context h, uniform for an unseen h."""

    def __init__(self, words, N: int, K: float):
        self.alphabet = alphabet_of(words)
        self.V = len(self.alphabet)
        self.N, self.K = N, K
        self.counts = gram_counts(words, N)
        self.totals: dict[str, int] = {}
        for g, c in self.counts.items():
            self.totals[g[:-1]] = self.totals.get(g[:-1], 0) + c
        self.prefixes = {h[:i] for h in self.totals for i in range(N)}

    def context(self, ctx: str) -> str:
        return (EOS * (self.N - 1) + ctx)[-(self.N - 1) :]

    def probs(self, ctx: str) -> list[float]:
        h = self.context(ctx)
        if h not in self.totals:
            return [1 / self.V] * self.V
        total = self.totals[h] + self.K * self.V
        return [(self.counts.get(h + c, 0) + self.K) / total for c in self.alphabet]

    def state(self, ctx: str) -> str:
        """The longest suffix of the context that begins a seen context."""
        h = self.context(ctx)
        return next(h[i:] for i in range(len(h) + 1) if h[i:] in self.prefixes)


# -- helpers ----------------------------------------------------------------------------------


def contexts_of(words, N: int, seed: int = 0, randoms: int = 300) -> list[str]:
    """Every prefix of every word (seen), the empty context, random strings over the alphabet
    (mostly unseen; up to N + 3 symbols, so many longer than N - 1), and words run on."""
    symbols = alphabet_of(words)[1:]
    rng = random.Random(seed)
    out = {w[:i] for w in words for i in range(len(w) + 1)}
    out |= {"".join(rng.choices(symbols, k=rng.randint(0, N + 3))) for _ in range(randoms)}
    out |= {w + "".join(rng.choices(symbols, k=N)) for w in rng.sample(words, min(20, len(words)))}
    return sorted(out)


def model_row(lm, ctx: str) -> tuple[np.ndarray, int]:
    s = lm.state_after(lm.codes(ctx))
    return np.exp(lm.logP[s]), s


def assert_matches(lm, ref, contexts) -> None:
    """The model's row after each context is the reference's distribution (and its state is
    the context the reference conditions on)."""
    assert lm.alphabet == ref.alphabet
    worst, where = 0.0, None
    for ctx in contexts:
        row, s = model_row(lm, ctx)
        diff = float(np.abs(row - np.array(ref.probs(ctx))).max())
        if diff > worst:
            worst, where = diff, ctx
        assert lm.contexts[s] == ref.state(ctx), ctx
    assert worst <= TOL, f"after {where!r}: off by {worst:.3g}"


def max_difference(lm, ref, contexts) -> float:
    return max(float(np.abs(model_row(lm, c)[0] - np.array(ref.probs(c))).max()) for c in contexts)


_FITS: dict[tuple[str, int], ngram.KneserNeyFit] = {}


def fit_of(name: str, N: int):
    if (name, N) not in _FITS:
        _FITS[name, N] = kneser_ney(NgramCounts.from_words(LISTS[name], N))
    return _FITS[name, N]


# -- Kneser–Ney and add-k against the reference -------------------------------------------------


@pytest.mark.parametrize("N", ORDERS)
@pytest.mark.parametrize("name", list(LISTS))
def test_kneser_ney_is_the_reference(name, N):
    words = LISTS[name]
    fit = fit_of(name, N)
    ref = ReferenceKN(words, N)
    assert len(fit.discounts) == N
    for n, got in enumerate(fit.discounts, 1):
        assert got == pytest.approx(ref.discounts[n], abs=TOL), f"level {n}"
    assert_matches(fit.lm, ref, contexts_of(words, N, seed=N))
    # The training words walk to the states their grams were counted at.
    assert np.array_equal(fit.lm.transition_counts(words)[0], fit.lm.counts)
    assert fit.lm.counts.sum() == sum(len(w) + 1 for w in words)


@pytest.mark.parametrize("K", KS)
@pytest.mark.parametrize("N", ADD_K_ORDERS)
@pytest.mark.parametrize("name", list(LISTS))
def test_add_k_is_the_reference(name, N, K):
    words = LISTS[name]
    lm = add_k(NgramCounts.from_words(words, N), K)
    assert_matches(lm, ReferenceAddK(words, N, K), contexts_of(words, N, seed=N, randoms=100))


def test_the_lists_take_both_discount_rules():
    """The comparisons above cover discounts from counts of counts, the fallback for a zero
    among n1..n4, and the fallback for a result out of range (`repeats`, level N: D2 < 0)."""
    rules = set()
    for name in LISTS:
        for N in ORDERS:
            ref = ReferenceKN(LISTS[name], N)
            for n in range(1, N + 1):
                values = list(ref.levels[n].values())
                if not all(k in values for k in (1, 2, 3, 4)):
                    rules.add("zero among n1..n4")
                else:
                    rules.add("out of range" if ref.discounts[n] == FALLBACK else "computed")
    assert rules == {"zero among n1..n4", "out of range", "computed"}
    assert fit_of("repeats", 2).discounts[1] == FALLBACK


# -- distributions ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_models():
    words = corpus_words()
    return words, {N: kneser_ney(NgramCounts.from_words(words, N)).lm for N in ORDERS}


@pytest.mark.parametrize("N", ORDERS)
def test_rows_are_distributions(corpus_models, N):
    words, lm = corpus_models[0], corpus_models[1][N]
    rng = random.Random(N)
    symbols = lm.alphabet[1:]
    contexts = [""] + [w[: rng.randint(0, len(w))] for w in rng.sample(words, 300)]
    contexts += ["".join(rng.choices(symbols, k=rng.randint(1, 12))) for _ in range(300)]
    for ctx in contexts:
        row, _ = model_row(lm, ctx)
        assert abs(row.sum() - 1) <= 1e-9, ctx
        assert row.min() > 0, ctx
    # Every state, not only those reached above.
    P = np.exp(lm.logP)
    assert np.abs(P.sum(axis=1) - 1).max() <= 1e-9
    assert np.isfinite(lm.logP).all()
    assert np.isfinite(lm.P).all() and (lm.P > 0).all()
    assert np.abs(lm.P.astype(np.float64).sum(axis=1) - 1).max() <= 1e-5


@pytest.mark.parametrize("K", KS)
@pytest.mark.parametrize("N", ADD_K_ORDERS)
def test_add_k_rows_are_distributions(N, K):
    lm = add_k(NgramCounts.from_words(corpus_words(), N), K)
    assert np.abs(np.exp(lm.logP).sum(axis=1) - 1).max() <= 1e-9
    assert np.isfinite(lm.P).all() and (lm.P > 0).all()


# -- the streaming counter ----------------------------------------------------------------------


def stream_counts(path: Path, N: int, alphabet, held=None) -> tuple[NgramCounts, int]:
    stream = WordStream(path, chunk_bytes=64)
    chunks = 0

    def counted():
        nonlocal chunks
        for chunk in stream:
            chunks += 1
            yield chunk

    counter = count_ngrams(counted(), stream.symbols, N, held=held)
    return counter.result(alphabet, stream.symbols), chunks


def assert_same_counts(got: NgramCounts, want: NgramCounts) -> None:
    assert got.alphabet == want.alphabet and got.order == want.order
    assert np.array_equal(got.keys, want.keys)
    assert np.array_equal(got.counts, want.counts)


STREAMED = ["tiny-ab", "greek-cyrillic", "cjk-emoji-symbols", "banana", "civil"]


def list_file(name: str, tmp_path: Path) -> tuple[Path, list[str]]:
    if name == "civil":
        return CORPUS, corpus_words()
    words = LISTS.get(name) or generated_word_lists()[name]
    path = tmp_path / f"{name}.txt"
    path.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    return path, words


@pytest.mark.parametrize("reduce_rows", [None, 50])
@pytest.mark.parametrize("N", [2, 3, 5, 8])
@pytest.mark.parametrize("name", STREAMED)
def test_streamed_counts_are_the_in_memory_counts(name, N, reduce_rows, tmp_path, monkeypatch):
    """64-byte chunks, so words cross many chunks; `reduce_rows` small: many merges of the table
    while the stream's symbols still grow."""
    if reduce_rows is not None:
        monkeypatch.setattr(ngram, "REDUCE_ROWS", reduce_rows)
    path, words = list_file(name, tmp_path)
    got, chunks = stream_counts(path, N, alphabet_of(words))
    assert chunks >= min(len(words), path.stat().st_size // 64)
    assert_same_counts(got, NgramCounts.from_words(words, N))


@pytest.mark.parametrize("N", [2, 4, 8])
@pytest.mark.parametrize("name", STREAMED)
def test_held_out_words_are_not_counted(name, N, tmp_path):
    path, words = list_file(name, tmp_path)
    rng = np.random.default_rng(N)
    held = rng.random(len(words)) < 0.3
    held[0] = len(words) > 1  # the first word held out: its symbols come first in the stream
    kept = [w for w, h in zip(words, held, strict=True) if not h]
    got, _ = stream_counts(path, N, alphabet_of(kept), held=held)
    assert_same_counts(got, NgramCounts.from_words(kept, N))


def test_held_out_symbols_are_not_in_the_alphabet(tmp_path):
    """A symbol only held-out words hold is seen first by the stream, yet left out."""
    words = ["zèbre", "ab", "ba", "aab", "ωz", "b"]
    path = tmp_path / "w.txt"
    path.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    held = np.array([True, False, False, False, True, False])
    kept = [w for w, h in zip(words, held, strict=True) if not h]
    for N in (2, 3, 6):
        got, _ = stream_counts(path, N, alphabet_of(kept), held=held)
        assert_same_counts(got, NgramCounts.from_words(kept, N))


def wide_word(V: int) -> str:
    """One word of V - 1 distinct symbols: its 8-grams' keys need V ** 8 < 2 ** 63."""
    return "".join(chr(0x4E00 + i) for i in range(V - 1))


def test_streamed_counter_refuses_an_alphabet_too_big(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_text(wide_word(300) + "\n", encoding="utf-8")
    stream = WordStream(path)
    with pytest.raises(ValueError, match="alphabet of at most 234 symbols"):
        count_ngrams(stream, stream.symbols, 8)


def test_in_memory_counts_refuse_an_alphabet_too_big():
    with pytest.raises(ValueError, match="alphabet of at most 234 symbols"):
        NgramCounts.from_words([wide_word(300)], 8)


# -- random lists -------------------------------------------------------------------------------

POOL = "abcxyzéœπжλ水🙂'-#"


@st.composite
def random_lists(draw):
    alphabet = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=5, unique=True))
    word = st.text(alphabet="".join(alphabet), min_size=1, max_size=7)
    words = draw(st.lists(word, min_size=1, max_size=15))
    N = draw(st.integers(2, 6))
    symbols = alphabet_of(words)[1:]
    ctx = st.text(alphabet="".join(symbols), max_size=N + 3)
    return words, N, draw(st.lists(ctx, max_size=15)), draw(st.sampled_from(KS))


@settings(max_examples=40, deadline=None)
@given(case=random_lists())
def test_random_lists_are_the_reference(case):
    words, N, randoms, K = case
    contexts = sorted({w[:i] for w in words for i in range(len(w) + 1)} | set(randoms))
    lm = kneser_ney(NgramCounts.from_words(words, N)).lm
    assert_matches(lm, ReferenceKN(words, N), contexts)
    assert np.abs(np.exp(lm.logP).sum(axis=1) - 1).max() <= 1e-9
    assert (lm.P > 0).all()
    if N <= 4:
        lm = add_k(NgramCounts.from_words(words, N), K)
        assert_matches(lm, ReferenceAddK(words, N, K), contexts)
        assert np.abs(np.exp(lm.logP).sum(axis=1) - 1).max() <= 1e-9


# -- the comparison can fail --------------------------------------------------------------------


WRONG = {
    "raw counts below N": {"continuation": False},
    "one discount 0.75": {"fixed": (0.75, 0.75, 0.75)},
    "fallback discounts everywhere": {"fixed": FALLBACK},
}


@pytest.mark.parametrize("N", [3, 5])
@pytest.mark.parametrize("wrong", list(WRONG))
def test_the_comparison_catches_a_wrong_smoother(wrong, N):
    words = LISTS["civil-first-400"]
    contexts = contexts_of(words, N, seed=N)
    lm = fit_of("civil-first-400", N).lm
    assert max_difference(lm, ReferenceKN(words, N), contexts) <= TOL
    assert max_difference(lm, ReferenceKN(words, N, **WRONG[wrong]), contexts) > 1e-4


def test_the_comparison_catches_a_wrong_add_k():
    words = LISTS["civil-first-400"]
    lm = add_k(NgramCounts.from_words(words, 3), 0.5)
    contexts = contexts_of(words, 3)
    assert max_difference(lm, ReferenceAddK(words, 3, 0.5), contexts) <= TOL
    assert max_difference(lm, ReferenceAddK(words, 3, 0.25), contexts) > 1e-4
    assert max_difference(lm, ReferenceAddK(words, 2, 0.5), contexts) > 1e-4
    assert math.isclose(float(np.exp(lm.logP[lm.start]).sum()), 1.0, abs_tol=1e-12)
