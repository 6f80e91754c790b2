"""Models of order N (SPEC section 7) at the library level and on the command line.

- Exact constrained sampling at orders 3 and 4 (Kneser–Ney and add-k): on tiny models whose
  allowed words can all be enumerated, each with its probability walked along the model's
  states (sum of the sampler's own `log_q(T, k)`), the frequencies of many seeded constrained
  draws match P(w) / P(constraints) (chi-square); two plausible wrong samplers, "cut long words
  to max_len, draw short ones again" and "forbid the end below min_len, force it at max_len",
  fail the same test.
- novel / unique at order N, and a property test (hypothesis) over random small models of
  orders 2 to 5: every word meets every constraint; every "impossible" is confirmed by brute
  force.
- The scorer is the walk: a word's logprob is the sum of logP[state, symbol] along
  `state_after`, ends included, and each symbol's context is its state's.
- Conditioned rows (`Chain.rows`) are distributions at every reachable (level, state) of a
  trained order-5 model (the plain rows are tests/test_ngram.py's).
- Determinism at order 5, plain and constrained; the sampler is the documented reference loop
  (`torch.multinomial` on `lm.P[state]`, state after state) at order 4.
- Order 2 by Kneser–Ney trains, loads and samples as the reference loop; order 2's default
  stays add-k K = 1 in format 2.
- `tune` picks the candidate of least held-out NLL (each NLL recomputed here from an
  independent split and fit) and writes it with the figures it reports.
- The CLI (real processes): train at orders 2 to 5 and its refusals, tune --json, sample,
  score --json, eval, compare (and its refusal), check.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors import safe_open

from service.lm.constrained import (
    ConstrainedSampler,
    Constraints,
    ImpossibleConstraints,
    ImprobableConstraints,
)
from service.lm.methods import AddK, KneserNey
from service.lm.ngram import NgramCounts, add_k, kneser_ney
from service.lm.ready import open_model
from service.lm.sampling import Sampler
from service.lm.score import Scorer
from service.lm.store import FORMAT, SPARSE_FORMAT, load_model
from service.lm.train import ADD_K_GRID, Split, train_to_file, tune
from tests.conftest import CORPUS, SHIPPED_MODEL
from tests.test_constrained import chi_square_pvalue

EOS = "."
# Short words over three letters: every allowed word up to 6 symbols can be enumerated.
TINY = ["a", "b", "ab", "ba", "abb", "bab", "aab", "ca", "cab", "bc", "abca", "bcab", "cc"]


def corpus_words() -> list[str]:
    return CORPUS.read_text(encoding="utf-8").splitlines()


def tiny_model(kind: str, N: int, words=TINY):
    ng = NgramCounts.from_words(words, N)
    return kneser_ney(ng).lm if kind == "kn" else add_k(ng, float(kind.removeprefix("add-k:")))


def constrained(lm, words=TINY, max_word_len: int = 6, **kwargs) -> ConstrainedSampler:
    return ConstrainedSampler(Sampler(lm), words, max_word_len, **kwargs)


@pytest.fixture(scope="module")
def kn5():
    """Kneser–Ney of order 5 on the shared corpus, with its sampler and constrained sampler."""
    words = corpus_words()
    lm = kneser_ney(NgramCounts.from_words(words, 5)).lm
    return lm, constrained(lm, words, max_word_len=256)


# --- exactness: enumeration and chi-square ---------------------------------------------------


def bounds(cs: ConstrainedSampler, c: Constraints) -> tuple[int, int]:
    """The length range the constraints allow (the spec's: max_len defaults to the longest)."""
    return (c.min_len or 0), (c.max_len if c.max_len is not None else cs.max_word_len)


def walk_logprob(lm, logQ: np.ndarray, word: str) -> float:
    """log Q(word .) walked along the model's states from the start."""
    s, lp = lm.start, 0.0
    for ch in word:
        c = lm.stoi[ch]
        lp += logQ[s, c]
        s = int(lm.next[s, c])
    return lp + logQ[s, 0]


def enumerate_words(cs: ConstrainedSampler, c: Constraints) -> dict[str, float]:
    """Every word meeting the prefix, length and top-k constraints, with its probability
    P(w) / P(constraints) under softmax(logP / T) kept to the top k (the sampler's `log_q`).
    The longest allowed length is at most the sampler's max_word_len: the list is complete."""
    c = cs.normalise(c)
    logQ = cs.log_q(c.temperature, c.top_k or cs.V)
    lo, hi = bounds(cs, c)
    logs = {}
    for L in range(max(lo, len(c.prefix)), hi + 1):
        for tail in itertools.product(cs.alphabet[1:], repeat=L - len(c.prefix)):
            w = c.prefix + "".join(tail)
            lp = walk_logprob(cs.lm, logQ, w)
            if lp > -math.inf:
                logs[w] = lp
    if not logs:
        return {}
    top = max(logs.values())
    weights = {w: math.exp(lp - top) for w, lp in logs.items()}
    total = sum(weights.values())
    return {w: p / total for w, p in weights.items()}


def wrong_words(cs: ConstrainedSampler, c: Constraints, n: int, seed: int, kind: str):
    """Plausible wrong samplers on the same model (the same T and top-k), walked here with
    numpy's generator from the prefix's state:
    - "cut": words that end too short are drawn again, words still going at max_len are cut;
    - "mask": the end is forbidden below min_len (the row renormalised) and forced at max_len.
    """
    c = cs.normalise(c)
    lm = cs.lm
    Q = np.exp(cs.log_q(c.temperature, c.top_k or cs.V))
    lo, hi = bounds(cs, c)
    m0 = len(c.prefix)
    s0 = lm.state_after(lm.codes(c.prefix))
    rng = np.random.default_rng(seed)
    out: list[str] = []
    while len(out) < n:
        m = 2 * (n - len(out)) + 16
        states = np.full(m, s0, dtype=np.int64)
        alive = np.ones(m, dtype=bool)
        length = np.full(m, m0, dtype=np.int64)
        syms = np.zeros((m, hi), dtype=np.int64)
        for level in range(m0, hi):
            rows = Q[states].copy()
            if kind == "mask" and level < lo:
                rows[:, 0] = 0.0
            cum = np.cumsum(rows / rows.sum(axis=1, keepdims=True), axis=1)
            ch = np.minimum((cum < rng.random(m)[:, None]).sum(axis=1), cs.V - 1)
            alive &= ch != 0
            syms[alive, level] = ch[alive]
            length[alive] += 1
            states = np.where(alive, lm.next[states, ch], states)
        for i in range(m):
            if kind == "cut" and length[i] < lo:
                continue  # too short: drawn again
            out.append(c.prefix + "".join(cs.alphabet[x] for x in syms[i, m0 : length[i]]))
    return out[:n]


MODELS = {"kn3": ("kn", 3), "kn4": ("kn", 4), "addk3": ("add-k:0.5", 3), "addk4": ("add-k:2", 4)}
DISTRIBUTION_CASES = [
    # name, model, constraints, max_word_len
    ("lengths", "kn3", Constraints(min_len=2, max_len=4), 6),
    ("exact-length", "kn4", Constraints(min_len=3, max_len=3), 6),
    ("prefix-length", "kn4", Constraints(prefix="ab", min_len=3, max_len=5), 6),
    ("top-k", "kn3", Constraints(top_k=2, max_len=4), 6),
    ("temperature", "kn4", Constraints(temperature=0.5, min_len=2, max_len=4), 6),
    ("hot-only", "kn3", Constraints(temperature=2.5), 4),
    ("add-k-lengths", "addk3", Constraints(min_len=2, max_len=4), 6),
    ("add-k-prefix-top-k", "addk4", Constraints(prefix="b", top_k=3, max_len=4), 6),
    ("add-k-cold", "addk4", Constraints(temperature=0.4, min_len=4), 5),
]


@pytest.mark.parametrize(
    ("name", "model", "c", "longest"), DISTRIBUTION_CASES, ids=[d[0] for d in DISTRIBUTION_CASES]
)
def test_constrained_words_follow_the_conditional_distribution(name, model, c, longest):
    lm = tiny_model(*MODELS[model])
    assert lm.order >= 3 and lm.S > lm.V  # states are contexts, not symbols
    cs = constrained(lm, max_word_len=longest)
    probs = enumerate_words(cs, c)
    n = 20000
    words = cs.sample(n, 20261201, c).words
    assert len(words) == n
    p = chi_square_pvalue(words, probs)
    assert p > 1e-3, f"{name}: chi-square p = {p:.2e}"
    # The same test catches samplers that cut or force words to fit instead of conditioning.
    for kind in ("cut", "mask"):
        wrong = chi_square_pvalue(wrong_words(cs, c, n, 20261201, kind), probs)
        assert wrong < 1e-6, f"{name}: the {kind!r} sampler passed (p = {wrong:.2e})"


def test_the_chi_square_test_accepts_an_exact_sampler_of_its_own():
    """Control: a sampler written here from the enumerated probabilities passes, so the
    test's failures above are the wrong samplers', not the enumeration's."""
    cs = constrained(tiny_model("kn", 4))
    probs = enumerate_words(cs, Constraints(min_len=2, max_len=5, temperature=0.7))
    rng = np.random.default_rng(3)
    ws = list(probs)
    drawn = rng.choice(len(ws), size=20000, p=np.array([probs[w] for w in ws]))
    assert chi_square_pvalue([ws[i] for i in drawn], probs) > 1e-3


def test_log_q_at_defaults_is_the_models_log_probabilities():
    lm = tiny_model("kn", 4)
    cs = constrained(lm)
    assert np.allclose(cs.log_q(1.0, lm.V), lm.logP, atol=1e-12)


# --- novel, unique, and every constraint -----------------------------------------------------


@pytest.mark.parametrize("model", list(MODELS))
def test_novel_and_unique_at_order_n_on_tiny_models(model):
    cs = constrained(tiny_model(*MODELS[model]))
    r = cs.sample(40, 5, Constraints(novel=True, unique=True, max_len=5))
    assert len(r.words) == 40 and len(set(r.words)) == 40
    assert not set(r.words) & set(TINY)
    r = cs.sample(200, 5, Constraints(novel=True))  # the plain stream, training words left out
    assert not set(r.words) & set(TINY)
    stream = cs.sampler.sample(2000, 5, cs.max_word_len)
    assert r.words == [w for w in stream if w not in set(TINY)][:200]


def test_novel_and_unique_at_order_5_on_the_corpus(kn5):
    _, cs = kn5
    training = set(cs.training.words)
    c = Constraints(min_len=7, max_len=7, novel=True, unique=True)
    words = cs.sample(500, 1, c).words
    assert len(words) == len(set(words)) == 500
    assert all(len(w) == 7 and w not in training for w in words)
    # Order 5 reproduces many training words: novel has something to reject.
    assert sum(w in training for w in cs.sample(500, 1, Constraints(min_len=7, max_len=7)).words)


def meets(cs: ConstrainedSampler, c: Constraints, words: list[str], n: int) -> None:
    """Every word meets every constraint: prefix, lengths, top-k support walked on the
    model's states (the end included), novel, unique."""
    c = cs.normalise(c)
    lo, hi = bounds(cs, c)
    logQ = cs.log_q(c.temperature, c.top_k or cs.V)
    shaped = bool(set(c.given(cs.V)) - {"novel", "unique"})
    lm = cs.lm
    assert len(words) == n
    for w in words:
        assert w.startswith(c.prefix) and lo <= len(w) <= hi, (w, c)
        s = lm.start
        for ch in w:
            assert logQ[s, lm.stoi[ch]] > -math.inf, (w, c)
            s = int(lm.next[s, lm.stoi[ch]])
        if shaped or len(w) < hi:  # the plain stream cuts a word at hi without its end
            assert logQ[s, 0] > -math.inf, (w, c)
        if c.novel:
            assert w not in cs.training.set
    if c.unique:
        assert len(set(words)) == len(words)


@st.composite
def small_models(draw):
    N = draw(st.integers(2, 5))
    words = draw(st.lists(st.text(alphabet="abc", min_size=1, max_size=6), min_size=1, max_size=12))
    words = sorted({*words, "abc"})  # every letter in the alphabet
    kind = draw(st.sampled_from(["kn", "add-k:0.1", "add-k:1"])) if N <= 4 else "kn"
    return N, kind, words


constraint_sets = st.builds(
    Constraints,
    prefix=st.text(alphabet="abc", max_size=3),
    min_len=st.none() | st.integers(1, 5),
    max_len=st.none() | st.integers(1, 6),
    novel=st.booleans(),
    unique=st.booleans(),
    temperature=st.sampled_from([1.0, 0.05, 0.3, 2.0, 20.0]),
    top_k=st.none() | st.integers(1, 4),
)


@settings(
    max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    model=small_models(), c=constraint_sets, n=st.integers(1, 20), seed=st.integers(0, 2**63 - 1)
)
def test_every_word_meets_every_constraint_at_orders_2_to_5(model, c, n, seed):
    N, kind, words = model
    if c.min_len is not None and c.max_len is not None and c.min_len > c.max_len:
        c = Constraints(**{**c.__dict__, "min_len": c.max_len})
    if c.max_len is not None and len(c.prefix) > c.max_len:
        c = Constraints(**{**c.__dict__, "prefix": c.prefix[: c.max_len]})
    lm = tiny_model(kind, N, words)
    assert lm.order == N
    cs = constrained(lm, words, rejection_budget=5_000)  # improbable: found out soon
    try:
        r = cs.sample(n, seed, c)
    except ImpossibleConstraints:
        event("impossible")
        # Brute force: no word (or not enough new or distinct ones) meets them.
        allowed = set(enumerate_words(cs, c))
        if c.novel:
            allowed -= set(words)
        assert len(allowed) < (n if c.unique else 1), (c, n, sorted(allowed)[:10])
        return
    except ImprobableConstraints:
        event("improbable")
        return  # possible, but the budget ran out
    event(f"sampled at order {N}")
    meets(cs, c, r.words, n)


# --- the scorer is the walk ------------------------------------------------------------------


def score_cases(kn5):
    lm, _ = kn5
    words = corpus_words()
    return [
        (lm, [*words[::500], "zzz", "x", "anticonstitutionnellement", "ré'é"]),
        (tiny_model("kn", 3), ["a", "cab", "ccccc", "abcabc"]),
        (tiny_model("add-k:0.5", 4), ["b", "bca", "aaaaaa"]),
        (add_k(NgramCounts.from_words(words, 3), 0.1), [*words[1::700], "qwq"]),
    ]


def test_score_is_the_sum_of_next_symbol_log_probabilities(kn5):
    for lm, words in score_cases(kn5):
        N = lm.order
        scores = Scorer(lm, None).score(words)
        for w, s in zip(words, scores, strict=True):
            state, total, states, logprobs = lm.start, 0.0, [], []
            for c in [*lm.codes(w), 0]:
                states.append(state)
                logprobs.append(float(lm.logP[state, c]))
                total += lm.logP[state, c]
                state = int(lm.next[state, c])
            assert s.word == w and s.symbols == len(w)
            assert s.states == states and s.logprobs == logprobs
            assert math.isclose(s.logprob, total, rel_tol=1e-12, abs_tol=1e-12)
            assert s.nll_per_symbol == pytest.approx(-total / (len(w) + 1), rel=1e-12)
            assert s.contexts == [lm.contexts[x] for x in states]
            # Each context is what the model conditions on: a suffix of the padded history,
            # of at most N - 1 symbols; the first is the padding itself for Kneser–Ney.
            padded = EOS * (N - 1) + w
            for i, ctx in enumerate(s.contexts):
                assert len(ctx) <= N - 1 and padded[: N - 1 + i].endswith(ctx), (w, i, ctx)
            assert [name for name, _ in s.bigrams] == [
                a + b for a, b in zip(EOS + w, w + EOS, strict=True)
            ]
    assert kn5[0].contexts[kn5[0].start] == EOS * 4


# --- normalisation of the conditioned rows ---------------------------------------------------


@pytest.mark.parametrize(
    "c",
    [
        Constraints(min_len=3, max_len=8),
        Constraints(prefix="ré", min_len=6, max_len=9, temperature=0.6),
        Constraints(max_len=12, top_k=4, temperature=1.7),
        Constraints(min_len=10, max_len=10, top_k=2),
    ],
    ids=str,
)
def test_conditioned_rows_are_distributions_at_every_reachable_state(kn5, c):
    """`Chain.rows` at every (level, state) the walk can reach sums to 1 within 1e-9, is 0
    outside the top-k support, and gives the end 0 below min_len."""
    lm, cs = kn5
    c = cs.normalise(c)
    lo, hi = bounds(cs, c)
    chain = cs.chain(c.temperature, c.top_k or lm.V, lo, hi)
    support = np.isfinite(cs.log_q(c.temperature, c.top_k or lm.V))
    level = len(c.prefix)
    states = np.array([lm.state_after(lm.codes(c.prefix))])
    seen = 0
    while level < hi and len(states):
        rows = chain.rows(level, states)
        assert np.abs(rows.sum(axis=1) - 1).max() <= 1e-9, level
        assert (rows >= 0).all() and not rows[~support[states]].any()
        if level < lo:
            assert not rows[:, 0].any()
        seen += len(states)
        go = rows[:, 1:] > 0
        states = np.unique(lm.next[states, 1:][go])
        level += 1
    assert seen > 100


def test_the_reference_rows_are_the_log_probabilities_rounded(kn5):
    lm, _ = kn5
    assert lm.P.dtype == np.float32 and lm.logP.dtype == np.float64
    assert np.abs(lm.P.astype(np.float64) - np.exp(lm.logP)).max() <= 1e-7


# --- determinism and the reference loop ------------------------------------------------------


@pytest.mark.parametrize(
    "c",
    [
        Constraints(),
        Constraints(prefix="con"),
        Constraints(min_len=8, max_len=8, novel=True),
        Constraints(temperature=0.5, top_k=5, max_len=12, unique=True),
    ],
    ids=str,
)
def test_same_seed_same_words_and_word_k_does_not_depend_on_n_at_order_5(kn5, c):
    _, cs = kn5
    long = cs.sample(200, 99, c).words
    assert cs.sample(200, 99, c).words == long
    for n in (1, 7, 120):
        assert cs.sample(n, 99, c).words == long[:n]
    assert cs.sample(200, 100, c).words != long


def reference_loop(lm, n: int, seed: int) -> list[str]:
    """The loop the docs promise: torch.multinomial on the state's row, state after state."""
    g = torch.Generator().manual_seed(seed)
    words = []
    for _ in range(n):
        s, out = lm.start, []
        while True:
            row = torch.from_numpy(np.array(lm.P[s]))
            ix = torch.multinomial(row, num_samples=1, replacement=True, generator=g).item()
            s = int(lm.next[s, ix])
            if ix == 0:
                break
            out.append(lm.alphabet[ix])
        words.append("".join(out))
    return words


@pytest.mark.parametrize("smoothing", ["kneser-ney", "add-k:0.1"])
def test_the_sampler_is_the_reference_loop_at_order_4(smoothing):
    ng = NgramCounts.from_words(corpus_words(), 4)
    lm = kneser_ney(ng).lm if smoothing == "kneser-ney" else add_k(ng, 0.1)
    sampler = Sampler(lm)
    for seed in (0, 7, 2147483647):
        assert sampler.sample(40, seed) == reference_loop(lm, 40, seed), seed


# --- order 2 ---------------------------------------------------------------------------------


def test_kneser_ney_of_order_2_trains_loads_and_samples(tmp_path):
    words = corpus_words()
    path = tmp_path / "kn2.safetensors"
    train_to_file(CORPUS, path, KneserNey(2))
    m = open_model(path)
    assert m.file.metadata["format"] == SPARSE_FORMAT and m.lm.order == 2
    want = kneser_ney(NgramCounts.from_words(words, 2)).lm
    assert np.array_equal(m.lm.logP, want.logP) and np.array_equal(m.lm.next, want.next)
    assert m.sampler.sample(30, 11) == reference_loop(m.lm, 30, 11)
    assert len(m.details["discounts"]) == 2


def test_order_2_counts_stay_format_2(tmp_path):
    """add-k at order 2 (the course's counting model, `counting_method`'s default there) keeps
    writing W and counts, format 2."""
    path = tmp_path / "c2.safetensors"
    train_to_file(CORPUS, path, AddK(1.0, 2))
    f = load_model(path)
    assert f.metadata["format"] == FORMAT and f.W is not None and f.order == 2
    assert "order" not in json.loads(_raw_metadata(path)["config"])


def _raw_metadata(path) -> dict:
    with safe_open(str(path), framework="numpy") as f:
        return dict(f.metadata())


# --- tune ------------------------------------------------------------------------------------


def heldout_nll(lm, heldout: list[str]) -> float:
    """Mean NLL per predicted symbol (ends included) of the held-out words, those holding a
    symbol outside the alphabet skipped; walked here symbol by symbol."""
    total, count = 0.0, 0
    for w in heldout:
        if any(ch not in lm.stoi or ch == EOS for ch in w):
            continue
        s = lm.start
        for c in [*(lm.stoi[ch] for ch in w), 0]:
            total -= lm.logP[s, c]
            count += 1
            s = int(lm.next[s, c])
    return total / count


def test_tune_writes_the_candidate_of_least_held_out_nll(tmp_path):
    words = corpus_words()[::3]
    src = tmp_path / "words.txt"
    src.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    out = tmp_path / "best.safetensors"
    split = Split(0.15, 42)
    results, written = tune(src, out, split, (2, 3, 4))
    # Every candidate: Kneser–Ney at each order, add-k's grid at each (orders <= 4).
    tried = [(r.method.order, r.method.config()["smoothing"]) for r in results]
    assert sorted(tried, key=str) == sorted(
        [(N, "kneser-ney") for N in (2, 3, 4)] + [(N, k) for N in (2, 3, 4) for k in ADD_K_GRID],
        key=str,
    )
    # The split as the spec defines it, and each candidate's held-out NLL fitted here.
    k = round(split.holdout * len(words))
    held = set(torch.randperm(len(words), generator=torch.Generator().manual_seed(42))[:k].tolist())
    train = [w for i, w in enumerate(words) if i not in held]
    heldout = [w for i, w in enumerate(words) if i in held]
    mine = {}
    for N, smoothing in tried:
        ng = NgramCounts.from_words(train, N)
        lm = kneser_ney(ng).lm if smoothing == "kneser-ney" else add_k(ng, smoothing)
        mine[N, smoothing] = heldout_nll(lm, heldout)
    for r, key in zip(results, tried, strict=True):
        assert r.holdout["nll"] == pytest.approx(mine[key], rel=1e-9), key
    best = min(mine, key=mine.get)
    assert (written.method.order, written.method.config()["smoothing"]) == best
    # The written file is that candidate, with the figures reported.
    f = load_model(out)
    assert (f.order, f.config["smoothing"]) == best
    assert f.config["holdout"] == 0.15 and f.config["split_seed"] == 42
    assert f.metadata["holdout"] == written.holdout
    reported = dict(zip(tried, (r.holdout for r in results), strict=True))
    assert written.holdout == reported[best]
    assert f.version == written.version
    assert set(f.heldout) == set(heldout) and set(f.words) == set(train)


# --- the command line ------------------------------------------------------------------------

_SCRIPT = Path(sys.executable).with_name("civil-words")
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "service"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, encoding="utf-8", timeout=300
    )


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Every command of this module, run once as real processes, side by side (each is mostly
    importing torch). The models they read are written here first, by the library."""
    d = tmp_path_factory.mktemp("cli")
    kn5_file = d / "kn5.safetensors"
    train_to_file(CORPUS, kn5_file, KneserNey(5))
    small = d / "small.txt"
    small.write_text("".join(w + "\n" for w in corpus_words()[::4]), encoding="utf-8")
    evaluated = d / "eval.txt"
    eval_words = [*corpus_words()[5::40], "wörd", "kayak"]
    evaluated.write_text("".join(w + "\n" for w in eval_words), encoding="utf-8")
    model = str(kn5_file)
    train = ("train", "--words", CORPUS, "--quiet", "--out")
    commands = {
        "train-kn5": (*train, d / "t-kn5.safetensors", "--method", "counts", "--order", "5",
                      "--smoothing", "kneser-ney"),
        "train-addk3": (*train, d / "t-addk3.safetensors", "--method", "counts", "--order", "3",
                        "--smoothing", "add-k:0.5", "--holdout", "0.1"),
        "train-plain-k": (*train, d / "t-k.safetensors", "--method", "counts", "--order", "4",
                          "--smoothing", "2"),
        "neural-order-3": (*train, d / "r1.safetensors", "--method", "neural", "--order", "3"),
        "order-9": (*train, d / "r2.safetensors", "--method", "counts", "--order", "9"),
        "tune": ("tune", "--words", small, "--holdout", "0.1", "--orders", "2-4",
                 "--out", d / "tuned.safetensors", "--json"),
        "sample-constrained": ("sample", "--model", model, "-n", "25", "--seed", "7",
                               "--prefix", "ré", "--min-len", "6", "--max-len", "8", "--novel"),
        "score": ("score", "--model", model, "--json", "maison", "anticonstitutionnellement", "a"),
        "eval": ("eval", "--model", model, "--words", evaluated, "--json"),
        "compare": ("compare", model, SHIPPED_MODEL, "-n", "10", "--json"),
        "compare-refused": ("compare", SHIPPED_MODEL, model),
        "check": ("check", "--model", model),
    }  # fmt: skip
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        runs = dict(zip(commands, pool.map(lambda a: cli(*a), commands.values()), strict=True))
    return {"dir": d, "kn5": kn5_file, "eval_words": eval_words, "runs": runs}


def ok(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_cli_trains_kneser_ney_of_order_5(cli_runs):
    out = ok(cli_runs["runs"]["train-kn5"])
    f = load_model(cli_runs["dir"] / "t-kn5.safetensors")
    assert f.metadata["format"] == SPARSE_FORMAT and f.order == 5
    assert f.config["smoothing"] == "kneser-ney" and f.config["method"] == "counts"
    assert "counts, order 5, Kneser–Ney" in out
    # The same file the library writes: the version hashes every tensor and word list.
    assert f.version == load_model(cli_runs["kn5"]).version


def test_cli_trains_add_k_and_plain_k(cli_runs):
    out = ok(cli_runs["runs"]["train-addk3"])
    f = load_model(cli_runs["dir"] / "t-addk3.safetensors")
    assert (f.order, f.config["smoothing"], f.config["holdout"]) == (3, 0.5, 0.1)
    assert "add-k K = 0.5" in out and "held out:" in out
    assert f.metadata["holdout"]["nll"] is not None
    ok(cli_runs["runs"]["train-plain-k"])
    f = load_model(cli_runs["dir"] / "t-k.safetensors")
    assert (f.order, f.config["smoothing"]) == (4, 2.0)
    assert f.training == AddK(2.0, 4)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("neural-order-3", "--order 3: the neural method is the notebook's, of order 2"),
        ("order-9", "argument --order: 9 is out of range"),
    ],
)
def test_cli_train_refuses_an_order(cli_runs, name, message):
    run = cli_runs["runs"][name]
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert message in run.stderr and "usage: civil-words train" in run.stderr
    assert "Traceback" not in run.stderr
    if name == "neural-order-3":
        assert "--method counts" in run.stderr  # where longer contexts are
    assert not list(cli_runs["dir"].glob("r*.safetensors"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--order", "5", "--smoothing", "add-k:1"), "add-k is for orders up to 4 (got 5)"),
        (("--order", "3", "--smoothing", "banana"), "'banana': expected 'kneser-ney', 'add-k:K'"),
        (("--order", "3", "--smoothing", "add-k:0"), "K must be a finite number > 0"),
        (("--smoothing", "kneser-ney", "--steps", "5"), "options of the neural method"),
    ],
    ids=["add-k-order-5", "banana", "add-k-zero", "neural-option"],
)
def test_cli_train_refuses_a_smoothing(options, message, tmp_path, capsys):
    """The same `main` as the processes above, run in this process (each refusal is decided
    before any file is read): exit 2 with the command's usage and the message."""
    from service.cli import main

    out = tmp_path / "m.safetensors"
    args = ["train", "--words", str(CORPUS), "--out", str(out), "--method", "counts", *options]
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert message in err and "usage: civil-words train" in err
    assert not out.exists()


def test_cli_tune_json(cli_runs):
    body = json.loads(ok(cli_runs["runs"]["tune"]))
    assert set(body) == {"candidates", "best"}
    rows = body["candidates"]
    assert len(rows) == 3 * (1 + len(ADD_K_GRID))
    for row in rows:
        assert set(row) == {"order", "smoothing", "nll", "holdout_nll"}
        assert row["order"] in (2, 3, 4) and row["holdout_nll"] > 0
    best = body["best"]
    assert set(best) == {"order", "smoothing", "holdout_nll", "version", "out"}
    least = min(rows, key=lambda r: r["holdout_nll"])
    assert (best["order"], best["smoothing"], best["holdout_nll"]) == (
        least["order"],
        least["smoothing"],
        least["holdout_nll"],
    )
    f = load_model(best["out"])
    assert f.version == best["version"]
    assert (f.order, f.config["smoothing"]) == (best["order"], best["smoothing"])
    assert f.metadata["holdout"]["nll"] == best["holdout_nll"]


def test_cli_sample_at_order_5(cli_runs):
    m = open_model(cli_runs["kn5"])
    words = ok(cli_runs["runs"]["sample-constrained"]).splitlines()
    c = Constraints(prefix="ré", min_len=6, max_len=8, novel=True)
    assert words == m.constrained.sample(25, 7, c).words
    assert all(w.startswith("ré") and 6 <= len(w) <= 8 for w in words)
    assert not set(words) & set(m.file.words)


def test_cli_score_json_gives_the_context_per_symbol(cli_runs):
    lm = open_model(cli_runs["kn5"]).lm
    lines = ok(cli_runs["runs"]["score"]).splitlines()
    assert len(lines) == 3
    for line, w in zip(lines, ["maison", "anticonstitutionnellement", "a"], strict=True):
        s = json.loads(line)
        assert s["word"] == w and len(s["bigrams"]) == len(w) + 1
        state, total = lm.start, 0.0
        for entry, c in zip(s["bigrams"], [*lm.codes(w), 0], strict=True):
            assert set(entry) == {"bigram", "context", "logprob"}
            assert entry["context"] == lm.contexts[state]
            assert entry["logprob"] == lm.logP[state, c]
            total += lm.logP[state, c]
            state = int(lm.next[state, c])
        assert s["bigrams"][0]["context"] == "...."
        assert math.isclose(s["logprob"], total, rel_tol=1e-12)
        assert s["in_corpus"] == (w in set(corpus_words()))


def test_cli_eval_at_order_5(cli_runs):
    e = json.loads(ok(cli_runs["runs"]["eval"]))
    lm = open_model(cli_runs["kn5"]).lm
    words = cli_runs["eval_words"]
    assert e["skipped"] == 2 and e["words"] == len(words) - 2
    assert e["nll"] == pytest.approx(heldout_nll(lm, words), rel=1e-12)
    assert e["examples"] == sum(len(w) + 1 for w in words[:-2])
    assert e["perplexity"] == pytest.approx(math.exp(e["nll"]), rel=1e-12)


def test_cli_compare_order_5_with_the_bigram(cli_runs):
    c = json.loads(ok(cli_runs["runs"]["compare"]))
    a, b = open_model(cli_runs["kn5"]), open_model(SHIPPED_MODEL)
    assert c["words"] == [a.sampler.sample(10, 2147483647), b.sampler.sample(10, 2147483647)]
    # A's NLL is its own training NLL; the bigram does worse on A's contexts.
    assert c["nll"][0] == pytest.approx(a.nll, rel=1e-12)
    assert c["nll"][1] > c["nll"][0] and c["kl"] > 0
    run = cli_runs["runs"]["compare-refused"]
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "order 5" in run.stderr and "give the higher-order model as A" in run.stderr


def test_cli_check_an_order_5_file(cli_runs):
    out = ok(cli_runs["runs"]["check"])
    lm = open_model(cli_runs["kn5"]).lm
    assert f"order 5, {lm.S} states (counts, order 5, Kneser–Ney)" in out and ": ok," in out
