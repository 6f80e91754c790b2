"""Constrained sampling (service/lm/constrained.py): exact, deterministic, honest about the
impossible.

- Without constraints, and with only novel/unique, the words are the notebook's (its stream,
  minus the rejected words).
- Distribution: on tiny models where every allowed word can be enumerated, the frequencies of
  many constrained draws match P(w) / P(constraints) (chi-square, fixed seed); a "sample then
  cut to length" sampler fails the same test.
- Properties (hypothesis): over random models and constraint combinations, every word meets
  every constraint, and every "impossible" is confirmed by brute force.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.lm.constrained import (
    ConstrainedSampler,
    Constraints,
    ImpossibleConstraints,
    ImprobableConstraints,
    NoWordList,
)
from service.lm.model import probabilities
from service.lm.ready import open_model
from tests.conftest import LEGACY_MODEL, SHIPPED_MODEL, generated_word_lists
from tests.reference import notebook_on, table_sampler

SEED = 2147483647


def made_up(letters: str, seed: int, scale: float = 1.0, words=(), end: float | None = None):
    """A model over `letters` with a random W (no training needed to sample it); `end`
    overrides W's end-marker column (a very negative value: words almost never end)."""
    alphabet = (".", *sorted(letters))
    V = len(alphabet)
    W = torch.randn((V, V), generator=torch.Generator().manual_seed(seed)) * scale
    if end is not None:
        W[:, 0] = end
    counts = torch.ones((V, V), dtype=torch.int64)
    P, logP = probabilities(W, counts)
    return W, alphabet, P, logP, sorted(set(words))


def sampler_for(
    letters, seed, scale=1.0, words=(), end=None, max_word_len=256, budget=None, log_rows=None
):
    """The constrained sampler of `made_up`'s model; `log_rows(logP)` changes its float64
    log-probabilities in place before the model is built (the model's tables are read-only),
    the reference loop's table P staying as it is."""
    _W, alphabet, P, logP, words = made_up(letters, seed, scale, words, end)
    if log_rows is not None:
        logP = logP.copy()
        log_rows(logP)
    kwargs = {} if budget is None else {"rejection_budget": budget}
    counts = np.ones(logP.shape, dtype=np.int64)
    return ConstrainedSampler(
        table_sampler(P, alphabet, logP, counts), words, max_word_len, **kwargs
    )


@pytest.fixture(scope="module")
def shipped():
    m = open_model(SHIPPED_MODEL)
    return m.file, m.constrained


# --- the notebook's words -------------------------------------------------------------------


def test_no_constraint_is_the_notebooks_sample(shipped):
    m, cs = shipped
    nb = notebook_on(m.W, m.alphabet)
    expected = nb.sample(40, SEED)
    assert cs.sample(40, SEED).words == expected
    # Defaults given explicitly are no constraint either.
    explicit = Constraints(prefix="", novel=False, unique=False, temperature=1.0, top_k=41)
    r = cs.sample(40, SEED, explicit)
    assert r.words == expected and r.constrained is False


@pytest.mark.parametrize("name", list(generated_word_lists()))
def test_novel_and_unique_filter_the_notebooks_stream(name):
    """Only novel/unique: the notebook's words, with the rejected ones left out, in order."""
    words = generated_word_lists()[name]
    letters = "".join(sorted(set("".join(words))))
    cs = sampler_for(letters, 7, scale=2.0, words=words)
    stream = cs.sampler.sample(3000, 11, cs.max_word_len)
    for novel, unique in [(True, False), (False, True), (True, True)]:
        r = cs.sample(60, 11, Constraints(novel=novel, unique=unique))
        seen, expected = set(), []
        for w in stream:
            if (novel and w in set(words)) or (unique and w in seen):
                continue
            seen.add(w)
            expected.append(w)
        assert r.words == expected[:60], (novel, unique)
        assert r.constrained


def test_the_filtered_stream_cuts_words_as_the_notebook_path_does():
    """A model that never ends a word: the stream is cut at max_word_len, as `Sampler` cuts."""
    cs = sampler_for("ab", 3, end=-1e4, max_word_len=12)
    plain = cs.sample(200, 5).words
    assert {len(w) for w in plain} == {12}
    assert cs.sample(30, 5, Constraints(unique=True)).words == list(dict.fromkeys(plain))[:30]


# --- exact conditioning: distribution -----------------------------------------------------


def enumerate_words(cs: ConstrainedSampler, c: Constraints, longest: int) -> dict[str, float]:
    """Every word meeting the prefix, length and top-k constraints up to `longest` symbols,
    with its probability P(w) / P(constraints) under softmax(logP / T) kept to the top k."""
    c = cs.normalise(c)
    logQ = cs.log_q(c.temperature, c.top_k or cs.V)
    lo, hi = cs._bounds(c)
    weights = {}
    for L in range(max(lo, len(c.prefix)), min(hi, longest) + 1):
        for tail in itertools.product(cs.alphabet[1:], repeat=L - len(c.prefix)):
            w = c.prefix + "".join(tail)
            ix = [0, *(cs.stoi[ch] for ch in w), 0]
            lp = sum(logQ[a, b] for a, b in itertools.pairwise(ix))
            if lp > -math.inf:
                weights[w] = lp
    top = max(weights.values(), default=0.0)  # in log space: P(w) may underflow
    weights = {w: math.exp(lp - top) for w, lp in weights.items()}
    total = sum(weights.values())
    return {w: p / total for w, p in weights.items()}


def chi_square_pvalue(words: list[str], probs: dict[str, float]) -> float:
    """Pearson's chi-square goodness of fit of the words' counts to `probs`; cells expected
    fewer than 5 times are pooled. A word outside `probs` gives p = 0."""
    counts = Counter(words)
    if set(counts) - set(probs):
        return 0.0
    n = len(words)
    cells, pooled_obs, pooled_exp = [], 0, 0.0
    for w, p in probs.items():
        if n * p >= 5:
            cells.append((counts[w], n * p))
        else:
            pooled_obs, pooled_exp = pooled_obs + counts[w], pooled_exp + n * p
    if pooled_exp > 0:
        cells.append((pooled_obs, pooled_exp))
    x2 = sum((o - e) ** 2 / e for o, e in cells)
    df = len(cells) - 1
    # The chi-square survival function: the regularised upper incomplete gamma function.
    return float(torch.special.gammaincc(torch.tensor(df / 2.0), torch.tensor(x2 / 2.0)))


def cut_to_length(cs: ConstrainedSampler, c: Constraints, n: int, seed: int) -> list[str]:
    """A plausible wrong sampler: draw unconstrained words (the same temperature and top-k),
    drop those too short or without the prefix, cut the others to max_len."""
    free = Constraints(temperature=c.temperature, top_k=c.top_k)
    out: list[str] = []
    batch = 0
    while len(out) < n:
        for w in cs.sample(4 * n, seed + batch, free).words:
            if len(w) >= (c.min_len or 0) and w.startswith(c.prefix):
                out.append(w[: c.max_len])
        batch += 1
    return out[:n]


DISTRIBUTION_CASES = [
    ("exact-length", "abc", Constraints(min_len=3, max_len=3)),
    ("range-prefix", "abc", Constraints(prefix="b", min_len=2, max_len=4)),
    ("temperature-top-k", "abcd", Constraints(min_len=2, max_len=3, temperature=0.6, top_k=3)),
    ("hot-prefix", "ab", Constraints(prefix="ab", max_len=5, temperature=2.5)),
]


@pytest.mark.parametrize(
    ("name", "letters", "c"), DISTRIBUTION_CASES, ids=[d[0] for d in DISTRIBUTION_CASES]
)
def test_constrained_words_follow_the_conditional_distribution(name, letters, c):
    cs = sampler_for(letters, 20261128, scale=1.5)
    probs = enumerate_words(cs, c, longest=c.max_len)
    n = 20000
    words = cs.sample(n, 12345, c).words
    assert len(words) == n
    p = chi_square_pvalue(words, probs)
    assert p > 1e-3, f"{name}: chi-square p = {p:.2e}"
    # The same test catches a sampler that cuts words to fit instead of conditioning.
    wrong = chi_square_pvalue(cut_to_length(cs, c, n, 12345), probs)
    assert wrong < 1e-6, f"{name}: the cutting sampler passed (p = {wrong:.2e})"


def test_temperature_and_top_k_rows():
    """softmax(logP / T) kept to the k most probable (ties to the lower index), renormalised."""

    def tie(logP):  # a row with a tie: symbols 1 and 3 equally likely, 2 in between
        logP[2] = np.log(np.array([0.1, 0.3, 0.2, 0.3, 0.1]))

    cs = sampler_for("abcd", 1, log_rows=tie)
    q = np.exp(cs.log_q(0.5, 2)[2])
    assert np.allclose(q, [0, 0.5, 0, 0.5, 0])
    q = np.exp(cs.log_q(1.0, 3)[2])
    assert np.allclose(q, np.array([0, 0.3, 0.2, 0.3, 0]) / 0.8)
    q = np.exp(cs.log_q(0.5, 1)[2])  # the tie goes to index 1
    assert np.allclose(q, [0, 1, 0, 0, 0])
    hot = np.exp(cs.log_q(2.0, 5)[2])
    expected = np.array([0.1, 0.3, 0.2, 0.3, 0.1]) ** 0.5
    assert np.allclose(hot, expected / expected.sum())


def test_conditioning_survives_underflow():
    """End probabilities of e^-10000 (0 in float32 and in exp of float64): the walk is in log
    space, so a length limit still conditions words to end, exactly and at once."""
    cs = sampler_for("ab", 3, end=-1e4)
    c = Constraints(min_len=3, max_len=6)
    assert math.exp(cs.logP[1, 0]) == 0.0
    words = cs.sample(20000, 1, c).words
    # Every word pays the same e^-10000 to end: the conditional spreads over the lengths.
    assert chi_square_pvalue(words, enumerate_words(cs, c, longest=6)) > 1e-3


# --- determinism --------------------------------------------------------------------------

STREAM_CASES = [
    Constraints(prefix="mor"),
    Constraints(min_len=7, max_len=7, novel=True, unique=True),
    Constraints(temperature=0.4, top_k=5),
    Constraints(novel=True),
    Constraints(unique=True, max_len=3),
]


@pytest.mark.parametrize("c", STREAM_CASES, ids=str)
def test_same_seed_same_words_and_word_k_does_not_depend_on_n(shipped, c):
    _, cs = shipped
    long = cs.sample(300, 99, c).words
    assert cs.sample(300, 99, c).words == long
    for n in (1, 7, 120):
        assert cs.sample(n, 99, c).words == long[:n]
    assert cs.sample(300, 100, c).words != long


# --- impossible, improbable ---------------------------------------------------------------


def test_impossible_constraints_are_named(shipped):
    m, cs = shipped
    ranked = np.argsort(-cs.logP[0], kind="stable")
    worst = m.alphabet[ranked[-1]]  # the least likely first letter
    with pytest.raises(ImpossibleConstraints) as e:
        cs.sample(5, 1, Constraints(prefix=worst, top_k=3, min_len=2))
    assert e.value.parameters == ("prefix", "top_k")
    assert repr(worst) in e.value.reason
    with pytest.raises(ImpossibleConstraints) as e:
        cs.sample(500, 1, Constraints(max_len=1, unique=True))
    assert set(e.value.parameters) == {"unique", "n", "max_len"}
    # The empty word (no min_len: no minimum) and each letter alone.
    assert f"only {len(m.alphabet)} distinct words" in e.value.reason


def test_every_allowed_word_a_training_word_is_impossible_with_novel():
    words = ["a", "b", "ab", "ba", "aa", "bb"]
    cs = sampler_for("ab", 5, words=words)
    with pytest.raises(ImpossibleConstraints) as e:
        cs.sample(3, 1, Constraints(min_len=1, max_len=2, novel=True))
    assert e.value.parameters == ("novel", "min_len", "max_len")
    # Without a minimum the empty word is new (the notebook's loop can draw it too) ...
    assert cs.sample(3, 1, Constraints(max_len=2, novel=True)).words == ["", "", ""]
    # ... and one length more, so are some words of three letters.
    r = cs.sample(3, 1, Constraints(min_len=1, max_len=3, novel=True))
    assert all(w not in words and len(w) == 3 for w in r.words)


def test_improbable_constraints_run_out_of_budget():
    """Possible but improbable: a tiny budget runs out, and the error says what was found."""
    words = ["aa", "ab", "ba"]  # every word of two letters but "bb"

    def rare_b(logP):  # "b" after anything: e^-30 (the rows need not sum to 1 here)
        logP[:, 2] = -30.0

    cs = sampler_for("ab", 5, words=words, budget=200, log_rows=rare_b)
    c = Constraints(min_len=2, max_len=2, novel=True)
    with pytest.raises(ImprobableConstraints) as e:
        cs.sample(20, 1, c)
    assert e.value.parameters == ("novel", "min_len", "max_len")
    assert e.value.found == 0 and "found 0 of 20 words" in e.value.reason
    # Improbable, not impossible: less improbable, and a larger budget, and it is found.

    def less_rare_b(logP):
        logP[:, 2] = -4.0

    cs = sampler_for("ab", 5, words=words, budget=10**5, log_rows=less_rare_b)
    assert cs.sample(20, 1, c).words == ["bb"] * 20


def test_novel_needs_a_word_list():
    cs = open_model(LEGACY_MODEL).constrained
    assert cs.training is None
    with pytest.raises(NoWordList):
        cs.sample(1, 1, Constraints(novel=True))
    assert len(cs.sample(3, 1, Constraints(unique=True, prefix="a")).words) == 3


# --- properties ---------------------------------------------------------------------------


def meets(cs: ConstrainedSampler, c: Constraints, words: list[str], n: int) -> None:
    """Every word meets every constraint (the top-k support included)."""
    c = cs.normalise(c)
    lo, hi = cs._bounds(c)
    support = cs.support(c.top_k or cs.V)
    shaped = bool(set(c.given(cs.V)) - {"novel", "unique"})
    assert len(words) == n
    for w in words:
        assert w.startswith(c.prefix) and lo <= len(w) <= hi, (w, c)
        ix = [0, *(cs.stoi[ch] for ch in w)]
        if shaped or len(w) < hi:  # the plain stream cuts a word at hi without its end
            ix.append(0)
        assert all(support[a, b] for a, b in itertools.pairwise(ix)), (w, c)
        if c.novel:
            assert w not in cs.training.set
    if c.unique:
        assert len(set(words)) == len(words)


def confirm_impossible(cs: ConstrainedSampler, c: Constraints, n: int, longest: int) -> None:
    """Brute force: no word (or not enough new or distinct ones) meets the constraints."""
    c = cs.normalise(c)
    allowed = set(enumerate_words(cs, c, longest))
    if c.novel:
        allowed -= cs.training.set
    need = n if c.unique else 1
    assert len(allowed) < need, (c, n, sorted(allowed)[:10])


constraints = st.builds(
    Constraints,
    prefix=st.text(alphabet="abc", max_size=3),
    min_len=st.none() | st.integers(1, 5),
    max_len=st.none() | st.integers(1, 6),
    novel=st.booleans(),
    unique=st.booleans(),
    temperature=st.sampled_from([1.0, 0.05, 0.3, 2.0, 20.0]) | st.floats(0.05, 20),
    top_k=st.none() | st.integers(1, 4),
)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    c=constraints,
    model_seed=st.integers(0, 2**31),
    scale=st.sampled_from([0.5, 2.0, 6.0]),
    end=st.sampled_from([None, -1e4]),
    n=st.integers(1, 25),
    seed=st.integers(0, 2**63 - 1),
)
def test_every_word_meets_every_constraint_on_small_models(c, model_seed, scale, end, n, seed):
    if c.min_len is not None and c.max_len is not None and c.min_len > c.max_len:
        c = Constraints(**{**c.__dict__, "min_len": c.max_len})
    if c.max_len is not None and len(c.prefix) > c.max_len:
        c = Constraints(**{**c.__dict__, "prefix": c.prefix[: c.max_len]})
    words = ["a", "b", "ab", "ba", "abc", "cab", "ca"]
    cs = sampler_for("abc", model_seed, scale, words, end, max_word_len=6)
    try:
        r = cs.sample(n, seed, c)
    except ImpossibleConstraints:
        confirm_impossible(cs, c, n, longest=6)
        return
    except ImprobableConstraints:
        return  # possible: a budget ran out (checked apart)
    meets(cs, c, r.words, n)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    prefix=st.sampled_from(["", "mor", "ex", "qu", "é", "z", "'"]),
    lengths=st.sampled_from([(None, None), (7, 7), (1, 3), (12, None), (None, 4), (3, 10)]),
    novel=st.booleans(),
    unique=st.booleans(),
    temperature=st.sampled_from([1.0, 0.1, 0.7, 3.0]),
    top_k=st.sampled_from([None, 1, 2, 5, 41]),
    n=st.integers(1, 60),
    seed=st.integers(0, 2**63 - 1),
)
def test_every_word_meets_every_constraint_on_the_shipped_model(
    shipped, prefix, lengths, novel, unique, temperature, top_k, n, seed
):
    _, cs = shipped
    lo, hi = lengths
    if hi is not None and len(prefix) > hi:
        prefix = ""
    c = Constraints(prefix, lo, hi, novel, unique, temperature, top_k)
    try:
        r = cs.sample(n, seed, c)
    except ImpossibleConstraints as e:
        # Every transition has a positive probability: only top-k or a count can forbid.
        assert {"top_k", "unique", "novel"} & set(e.parameters), e
        assert set(e.parameters) <= set(c.given(cs.V)) | {"n"}
        return
    meets(cs, c, r.words, n)
