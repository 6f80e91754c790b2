"""Exact constrained sampling: the model's words conditioned on a prefix, a length range,
novelty and uniqueness, after temperature and top-k.

What a constrained request returns: independent draws from the model's distribution over whole
words (after temperature and top-k) conditioned on the constraints, P(w) / P(constraints).

- No constraint (or only defaults): `Sampler.sample`, the notebook's words, unchanged.
- Only `novel` and/or `unique`: the notebook's own stream, with the words they reject left out
  (whole-word rejection of an exact stream is exact).
- Any of prefix, min_len, max_len, temperature, top_k: a walk on the bigram chain whose every
  next-symbol choice is weighted by the probability of finishing with an allowed length from
  there (backward probabilities, in log space so that nothing underflows), so that every word
  meets the prefix and length constraints by construction and comes with exactly its
  conditional probability; `novel`/`unique` then reject whole words.

Every walk draws from a seeded torch generator's exponential stream, one row of V values per
drawn symbol, in bulk (as `Sampler` does): `argmax(p / e)` over a row of exponentials e picks
index b with probability p[b] / sum(p). The same seed and constraints give the same words, and
word k does not depend on n.

Constraints no word can meet are found from the chain's support at once (never by trying);
`novel`/`unique` are checked against counts of the distinct words the constraints allow.
Possible but improbable ones are bounded: the symbols drawn for rejected words are limited to
`rejection_budget` per request.

Shapes: V symbols, index 0 is `.`; `hi` is the largest length allowed.
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from service.lm.model import CHUNK_DRAWS, DEFAULT_MAX_WORD_LEN, EOS, Sampler

MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0
# Symbols drawn for words that novel/unique reject, at most, per request: past it the request
# is refused as too improbable. The worst case is short words rejected one after another (a
# few us each, the word's own cost included): about a second of one core.
DEFAULT_REJECTION_BUDGET = 200_000
CACHE_BYTES = 32 * 2**20  # conditioned chains kept per process (bounded LRU)
LEVEL_BYTES = 2**20  # a level's (V, V) conditional rows are kept if this small; else per row
TINY = np.float32(np.finfo(np.float32).tiny)  # stands for an exponential draw of exactly 0
CHAIN_PARAMETERS = ("prefix", "min_len", "max_len", "top_k")  # the ones that shape the support


@dataclass(frozen=True)
class Constraints:
    """What a request asks of its words; every default leaves the notebook's sampling alone."""

    prefix: str = ""  # every word starts with these symbols (NFC; in the alphabet, no '.')
    min_len: int | None = None  # fewest symbols, prefix included; None: no minimum
    max_len: int | None = None  # most symbols; None: the sampler's max_word_len
    novel: bool = False  # no word of the model's training word list
    unique: bool = False  # no word twice in one answer
    temperature: float = 1.0  # next-symbol probabilities softmax(logP[ix] / temperature)
    top_k: int | None = None  # keep the top_k most probable next symbols; None: all V

    def given(self, V: int) -> list[str]:
        """The parameters set to something other than their defaults, in a fixed order."""
        names = []
        if self.prefix:
            names.append("prefix")
        if self.min_len is not None:
            names.append("min_len")
        if self.max_len is not None:
            names.append("max_len")
        if self.novel:
            names.append("novel")
        if self.unique:
            names.append("unique")
        if self.temperature != 1.0:
            names.append("temperature")
        if self.top_k is not None and self.top_k != V:
            names.append("top_k")
        return names


NONE = Constraints()


class ConstraintError(ValueError):
    """Constraints that cannot be served; `parameters` names those involved."""

    def __init__(self, parameters: Sequence[str], reason: str):
        super().__init__(reason)
        self.parameters = tuple(parameters)
        self.reason = reason


class BadConstraint(ConstraintError):
    """A value the model or the settings do not allow (a bad request)."""


class ImpossibleConstraints(ConstraintError):
    """No word can meet the constraints: decided from the chain's support and counts."""


class ImprobableConstraints(ConstraintError):
    """Possible, but the request's rejection budget ran out before n words were found."""

    def __init__(self, parameters: Sequence[str], reason: str, found: int):
        super().__init__(parameters, reason)
        self.found = found


class NoWordList(ConstraintError):
    """`novel` asked of a model file that carries no training word list (format 1)."""


@dataclass
class Sampled:
    words: list[str]
    constrained: bool  # any constraint was given (for the metrics)
    rejected: dict[str, int] = field(default_factory=dict)  # words left out, by reason


def _logsumexp(X: np.ndarray) -> np.ndarray:
    """log(sum(exp(X), axis=1)) of a (rows, cols) array, -inf for a row of -inf only."""
    m = X.max(axis=1)
    shift = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(X - shift[:, None]).sum(axis=1)) + shift


class Chain:
    """The chain for one (temperature, top_k) conditioned on a length range [lo, hi].

    `logQ` (V, V): log next-symbol probabilities after temperature and top-k (-inf outside
    the top-k support). `logB` (hi + 1, V): `logB[l, a]` is the log-probability that a word
    at state a (its last symbol, or `.` at the start) after l symbols ends with a total length
    in [lo, hi]:
        logB[hi, a] = logQ[a, .]
        logB[l, a]  = log( [lo <= l] Q[a, .] + sum_{b != .} Q[a, b] B[l + 1, b] )
    The walk at (l, a) then draws b with probability Q[a, b] B[l + 1, b] / B[l, a] (the end
    `.` with Q[a, .] / B[l, a] if lo <= l): exactly the conditional of the next symbol.
    """

    def __init__(self, logQ: np.ndarray, lo: int, hi: int):
        V = logQ.shape[0]
        self.logQ, self.lo, self.hi = logQ, lo, hi
        inner, end = logQ[:, 1:], logQ[:, 0]
        logB = np.full((hi + 1, V), -np.inf)
        logB[hi] = end
        for k in range(hi - 1, -1, -1):
            go_on = _logsumexp(inner + logB[k + 1, 1:])
            logB[k] = np.logaddexp(go_on, end) if k >= lo else go_on
        self.logB = logB
        # tails[l] (V,): what follows a choice at level l: the end if allowed, else B[l + 1].
        self.tails = np.concatenate([np.zeros((hi, 1)), logB[1:, 1:]], axis=1)
        self.tails[:lo, 0] = -np.inf
        # Conditional rows per level, computed when a walk first reaches the level (most
        # words visit a few levels of a long range); kept only if a level is small.
        self._levels: list[list[np.ndarray] | None] = [None] * hi
        self._keep_levels = V * V * 8 <= LEVEL_BYTES
        self.nbytes = logB.nbytes + self.tails.nbytes + (V * V * 8 * hi if self._keep_levels else 0)

    def possible(self, path: Sequence[int]) -> bool:
        """Whether a word can start with the symbols `path` (indices, without the start `.`)
        and meet the length range: each step in the support, and the rest possible."""
        a = 0
        for b in path:
            if self.logQ[a, b] == -np.inf:
                return False
            a = b
        return len(path) <= self.hi and self.logB[len(path), a] > -np.inf

    def row(self, k: int, a: int) -> np.ndarray:
        """(V,) float64: the next symbol's conditional probabilities at state a after k
        symbols."""
        level = self._levels[k]
        if level is None:
            with np.errstate(invalid="ignore", over="ignore"):  # unreachable states: unused
                if not self._keep_levels:
                    return np.exp(self.logQ[a] + self.tails[k] - self.logB[k, a])
                block = np.exp(self.logQ + self.tails[k][None, :] - self.logB[k][:, None])
            level = self._levels[k] = list(block)
        return level[a]


def count_words(
    mask: np.ndarray, path: Sequence[int], lo: int, hi: int, cap: int, cut: bool = False
) -> int:
    """How many distinct words start with the symbols `path` and end with a length in
    [lo, hi], walking only the transitions of `mask` (V, V) bool; counts are capped at `cap`.

    With `cut` (the notebook stream), a word that reaches hi symbols ends there whatever
    follows. A word is one path of the chain, so paths are counted, level by level."""
    a = 0
    for b in path:
        if not mask[a, b]:
            return 0
        a = b
    m = len(path)
    if m > hi:
        return 0
    go, end = mask[:, 1:].astype(np.int64), mask[:, 0].astype(np.int64)
    N = np.ones_like(end) if cut else end.copy()  # level hi
    for k in range(hi - 1, m - 1, -1):
        N = go @ N[1:]
        if k >= lo:
            N += end
        np.minimum(N, cap, out=N)
    return int(N[a])


class TrainingWords:
    """The model's training word list, sorted, with its bigrams for counting which words a set
    of constraints allows."""

    def __init__(self, words: Sequence[str], stoi: dict[str, int]):
        self.words = tuple(words)
        self.set = frozenset(self.words)
        self.lengths = np.array([len(w) for w in self.words], dtype=np.int64)
        # Bigrams of every word, start and end included, word after word: word i's are
        # xs[offsets[i]:offsets[i + 1]] -> ys[...].
        codes = [[0, *(stoi[c] for c in w)] for w in self.words]
        sizes = [len(c) for c in codes]
        self.offsets = np.cumsum([0, *sizes])
        self.xs = np.fromiter(itertools.chain.from_iterable(codes), dtype=np.int64)
        self.ys = np.fromiter(itertools.chain.from_iterable([*c[1:], 0] for c in codes), np.int64)
        self.owner = np.repeat(np.arange(len(codes)), sizes)
        self.is_end = self.ys == 0

    def allowed(self, mask: np.ndarray, prefix: str, lo: int, hi: int, cut: bool = False) -> int:
        """How many training words start with `prefix`, have a length in [lo, hi] and walk
        only transitions of `mask` (with `cut`, a word of exactly hi symbols needs no end)."""
        # Sorted by code point, the words with a prefix are one run (no symbol sorts after
        # U+10FFFF, a non-printable the alphabet cannot hold).
        i0 = bisect.bisect_left(self.words, prefix)
        i1 = (
            bisect.bisect_left(self.words, prefix + "\U0010ffff", lo=i0)
            if prefix
            else len(self.words)
        )
        if i0 == i1:
            return 0
        r = slice(self.offsets[i0], self.offsets[i1])
        bad = ~mask[self.xs[r], self.ys[r]]
        if cut:
            bad &= ~(self.is_end[r] & (self.lengths[self.owner[r]] == hi))
        ok = np.ones(i1 - i0, dtype=bool)
        ok[self.owner[r][bad] - i0] = False
        lengths = self.lengths[i0:i1]
        return int((ok & (lengths >= lo) & (lengths <= hi)).sum())


class ConstrainedSampler:
    """Samples a model's words under constraints (see the module docstring).

    `sampler` is the model's `Sampler` (the notebook's table P and its walk), `logP` (V, V)
    float64 the same distribution's log-probabilities (`probabilities()`), `words` the training
    word list (None for a file without one). `max_word_len` is the longest word: the notebook's
    stream is cut there, and constrained words never exceed it.
    """

    def __init__(
        self,
        sampler: Sampler,
        logP: np.ndarray,
        words: Sequence[str] | None,
        max_word_len: int = DEFAULT_MAX_WORD_LEN,
        rejection_budget: int = DEFAULT_REJECTION_BUDGET,
    ):
        self.sampler = sampler
        self.alphabet = sampler.alphabet
        self.stoi = sampler.stoi
        self.V = len(self.alphabet)
        self.logP = np.asarray(logP, dtype=np.float64)
        self.max_word_len = max_word_len
        self.rejection_budget = rejection_budget
        self.training = None if words is None else TrainingWords(words, self.stoi)
        # Ranks for top-k: a stable sort of -logP keeps the lower index on ties.
        self._order = np.argsort(-self.logP, axis=1, kind="stable")
        # What the notebook's loop can draw (its rows are the sampler's own, `sampler.rows`).
        self._stream_support = sampler.P.numpy() > 0
        self._lock = threading.Lock()
        self._chains: OrderedDict[tuple, Chain] = OrderedDict()
        self._chain_bytes = 0
        # What a prefix-only request needs, ready before the first request (and shared by
        # the forked workers).
        self._default = self._build(1.0, self.V, 0, max_word_len)

    # -- the support and the chain ---------------------------------------------------------

    def support(self, top_k: int) -> np.ndarray:
        """(V, V) bool: the transitions top-k keeps (all finite ones for k = V)."""
        finite = np.isfinite(self.logP)
        if top_k >= self.V:
            return finite
        mask = np.zeros((self.V, self.V), dtype=bool)
        np.put_along_axis(mask, self._order[:, :top_k], True, axis=1)
        return mask & finite

    def log_q(self, temperature: float, top_k: int) -> np.ndarray:
        """(V, V): log next-symbol probabilities, softmax(logP / T) kept to the top k and
        renormalised."""
        Z = np.where(self.support(top_k), self.logP / temperature, -np.inf)
        return Z - _logsumexp(Z)[:, None]

    def _build(self, temperature: float, top_k: int, lo: int, hi: int) -> Chain:
        return Chain(self.log_q(temperature, top_k), lo, hi)

    def chain(self, temperature: float, top_k: int, lo: int, hi: int) -> Chain:
        """The conditioned chain, from a bounded LRU cache (a few ms to build)."""
        key = (float(temperature), int(top_k), lo, hi)
        if key == (1.0, self.V, 0, self.max_word_len):
            return self._default
        with self._lock:
            chain = self._chains.get(key)
            if chain is not None:
                self._chains.move_to_end(key)
                return chain
        chain = self._build(temperature, top_k, lo, hi)  # outside the lock: others go on
        with self._lock:
            if key not in self._chains:
                self._chains[key] = chain
                self._chain_bytes += chain.nbytes
                while self._chain_bytes > CACHE_BYTES and len(self._chains) > 1:
                    _, old = self._chains.popitem(last=False)
                    self._chain_bytes -= old.nbytes
        return chain

    # -- checks ----------------------------------------------------------------------------

    def normalise(self, c: Constraints) -> Constraints:
        """The constraints checked against the model and the settings (`BadConstraint`), with
        the prefix in NFC and top_k = V meaning "all"."""
        prefix = unicodedata.normalize("NFC", c.prefix)
        for i, ch in enumerate(prefix, 1):
            if ch == EOS:
                raise BadConstraint(["prefix"], f"'.' (position {i}) is the end marker")
            if ch not in self.stoi:
                raise BadConstraint(
                    ["prefix"], f"{ch!r} (position {i}) is not in the model's alphabet"
                )
        limit = self.max_word_len
        for name in ("min_len", "max_len"):
            v = getattr(c, name)
            if v is not None and not 1 <= v <= limit:
                raise BadConstraint([name], f"must be from 1 to {limit} (got {v})")
        if c.min_len is not None and c.max_len is not None and c.min_len > c.max_len:
            raise BadConstraint(["max_len"], f"must be at least min_len ({c.min_len})")
        longest = c.max_len if c.max_len is not None else limit
        if len(prefix) > longest:
            name = "max_len" if c.max_len is not None else "prefix"
            raise BadConstraint(
                [name], f"the prefix has {len(prefix)} symbols, more than {longest} allowed"
            )
        T = c.temperature
        if not (math.isfinite(T) and MIN_TEMPERATURE <= T <= MAX_TEMPERATURE):
            raise BadConstraint(
                ["temperature"], f"must be from {MIN_TEMPERATURE} to {MAX_TEMPERATURE} (got {T})"
            )
        if c.top_k is not None and not 1 <= c.top_k <= self.V:
            raise BadConstraint(["top_k"], f"must be from 1 to {self.V} (got {c.top_k})")
        top_k = None if c.top_k == self.V else c.top_k
        return replace(c, prefix=prefix, top_k=top_k, temperature=float(T))

    def _impossible(self, c: Constraints, given: list[str]) -> ImpossibleConstraints:
        """Name the fewest given constraints that no word can meet together, and why."""
        shaping = [p for p in CHAIN_PARAMETERS if p in given]
        for size in range(1, len(shaping) + 1):
            for subset in itertools.combinations(shaping, size):
                kept = self._relaxed(c, subset)
                if not self._exists(kept):
                    return ImpossibleConstraints(subset, self._no_word(kept, subset))
        return ImpossibleConstraints(shaping or ["max_len"], self._no_word(c, shaping))

    def _relaxed(self, c: Constraints, keep: Sequence[str]) -> Constraints:
        """`c` with only the chain parameters in `keep` (others back to their defaults)."""
        return Constraints(
            prefix=c.prefix if "prefix" in keep else "",
            min_len=c.min_len if "min_len" in keep else None,
            max_len=c.max_len if "max_len" in keep else None,
            top_k=c.top_k if "top_k" in keep else None,
        )

    def _bounds(self, c: Constraints) -> tuple[int, int]:
        lo = c.min_len if c.min_len is not None else 0
        return lo, c.max_len if c.max_len is not None else self.max_word_len

    def _path(self, prefix: str) -> list[int]:
        return [self.stoi[ch] for ch in prefix]

    def _exists(self, c: Constraints) -> bool:
        lo, hi = self._bounds(c)
        return count_words(self.support(c.top_k or self.V), self._path(c.prefix), lo, hi, 1) > 0

    def _no_word(self, c: Constraints, names: Sequence[str]) -> str:
        shown = {
            "prefix": f"prefix {c.prefix!r}",
            "min_len": f"min_len {c.min_len}",
            "max_len": f"max_len {c.max_len}",
            "top_k": f"top_k {c.top_k}",
        }
        what = " with ".join(shown[n] for n in names) or "the model"
        within = "" if "max_len" in names else f" within {self.max_word_len} symbols"
        return f"no word meets {what}{within}: the model cannot produce one"

    def _check_filters(
        self,
        c: Constraints,
        n: int,
        given: list[str],
        mask: np.ndarray,
        lo: int,
        hi: int,
        cut: bool = False,
    ) -> None:
        """novel/unique against the number of distinct words the other constraints allow."""
        others = [p for p in given if p not in ("novel", "unique")]
        training = self.training if c.novel else None
        cap = n + (len(training.words) if training else 0) + 1  # more is as good as enough
        allowed = count_words(mask, self._path(c.prefix), lo, hi, cap, cut)
        if allowed >= cap:
            return
        seen = training.allowed(mask, c.prefix, lo, hi, cut) if training else 0
        if c.novel and allowed == seen:
            raise ImpossibleConstraints(
                ["novel", *others],
                f"every word that meets the constraints ({allowed}) is a training word",
            )
        if c.unique and allowed - seen < n:
            k = allowed - seen
            kind = ("new" if c.novel else "distinct") + (" word meets" if k == 1 else " words meet")
            raise ImpossibleConstraints(
                ["unique", "n", *others],
                f"only {k} {kind} the constraints, fewer than n = {n}",
            )

    # -- sampling --------------------------------------------------------------------------

    def sample(self, n: int, seed: int, constraints: Constraints = NONE) -> Sampled:
        """`n` words from a fresh `Generator().manual_seed(seed)` under `constraints`.

        Raises `BadConstraint`, `NoWordList`, `ImpossibleConstraints` (decided before drawing)
        or `ImprobableConstraints` (the rejection budget ran out)."""
        if constraints == NONE:  # the common case, without a detour
            return Sampled(self.sampler.sample(n, seed, self.max_word_len), constrained=False)
        c = self.normalise(constraints)
        given = c.given(self.V)
        if not given:  # the notebook's words, as fast as ever
            return Sampled(self.sampler.sample(n, seed, self.max_word_len), constrained=False)
        if c.novel and self.training is None:
            raise NoWordList(
                ["novel"], "the model file carries no training word list (an older format)"
            )
        accept = self._filter(c)
        budget = (self.rejection_budget, self._exhausted(given))
        g = torch.Generator().manual_seed(seed)
        shaped = [p for p in given if p not in ("novel", "unique")]
        if not shaped:
            # The notebook's own stream, words rejected whole: its words minus the rejected.
            hi = self.max_word_len
            self._check_filters(c, n, given, self._stream_support, 0, hi, cut=True)
            rows = self.sampler.rows
            walk = Walk(lambda _k, a: rows[a], self.alphabet, np.float32, clamp=False)
            steps = self.sampler.mean_steps
            words, rejected = walk.run(g, n, accept, (0, 0), "", hi, steps, budget)
            return Sampled(words, constrained=True, rejected=rejected)
        lo, hi = self._bounds(c)
        chain = self.chain(c.temperature, c.top_k or self.V, lo, hi)
        path = self._path(c.prefix)
        if not chain.possible(path):
            raise self._impossible(c, given)
        if c.novel or c.unique:
            self._check_filters(c, n, given, self.support(c.top_k or self.V), lo, hi)
        m = len(path)
        # Symbols drawn per word, roughly, to size the random draws (not their order).
        steps = min(hi - m + 1, max(lo - m + 1, self.sampler.mean_steps - 1))
        walk = Walk(chain.row, self.alphabet, np.float64, clamp=True)
        start = (path[-1] if path else 0, m)
        words, rejected = walk.run(g, n, accept, start, c.prefix, hi, steps, budget)
        return Sampled(words, constrained=True, rejected=rejected)

    def _filter(self, c: Constraints) -> Callable[[str], str | None]:
        """The whole-word test of novel/unique: the reason a word is rejected, or None."""
        training = self.training.set if c.novel and self.training else frozenset()
        seen: set[str] = set()

        def accept(word: str) -> str | None:
            if word in training:
                return "novel"
            if c.unique:
                if word in seen:
                    return "unique"
                seen.add(word)
            return None

        return accept

    def _exhausted(self, given: list[str]) -> Callable[[int, int], None]:
        """What to do when the rejection budget runs out: refuse, naming the filters first."""
        filters = [p for p in given if p in ("novel", "unique")]
        names = filters + [p for p in given if p not in filters]

        def exhausted(found: int, n: int) -> None:
            raise ImprobableConstraints(
                names,
                f"found {found} of {n} words before the rejection budget "
                f"({self.rejection_budget:,} symbols drawn for rejected words) ran out",
                found,
            )

        return exhausted


class Walk:
    """Walks words on a chain from a generator's exponential stream, one row of V draws per
    drawn symbol: the exponential race `argmax(p / e)` picks b with probability p[b].

    `row(l, a)` (V,): next-symbol probabilities at state a after l symbols, of `dtype`.
    `clamp`: a draw of exactly 0 counts as the smallest float32 (only a symbol of positive
    probability can then win); off for the notebook's stream, which must divide as it does.
    """

    def __init__(self, row: Callable[[int, int], np.ndarray], alphabet, dtype, clamp: bool):
        self.row, self.alphabet, self.dtype, self.clamp = row, tuple(alphabet), dtype, clamp

    def run(
        self,
        g: torch.Generator,
        n: int,
        accept: Callable[[str], str | None],
        start: tuple[int, int],
        prefix: str,
        hi: int,
        steps_per_word: float,
        budget: tuple[int, Callable[[int, int], None]],
    ) -> tuple[list[str], dict[str, int]]:
        """n accepted words, and how many were rejected by reason. Each word starts at
        `start` = (state, symbols so far) with `prefix`, and ends at `.` or at hi symbols
        (where the chain allows only the end, so no draw is made). `budget` = (most symbols
        drawn for rejected words, called with (found, n) when they are spent)."""
        row, alphabet = self.row, self.alphabet
        V = len(alphabet)
        max_rows = max(16, CHUNK_DRAWS // V)
        buf = np.empty(V, dtype=self.dtype)
        words: list[str] = []
        rejected: dict[str, int] = {}
        spent, (a0, k0) = 0, start
        limit, exhausted = budget
        Q, t = None, 0
        while len(words) < n:
            ix, k, out, steps = a0, k0, [], 0
            while k < hi:
                if Q is None or t == len(Q):
                    need = (n - len(words)) * steps_per_word * 1.1 + 8
                    Q = torch.empty((min(max_rows, max(16, int(need))), V))
                    Q = Q.exponential_(1, generator=g).numpy()
                    if self.clamp:
                        np.maximum(Q, TINY, out=Q)
                    t = 0
                np.divide(row(k, ix), Q[t], out=buf)
                ix = int(buf.argmax())
                t += 1
                steps += 1
                if ix == 0:
                    break
                out.append(alphabet[ix])
                k += 1
            word = prefix + "".join(out)
            reason = accept(word)
            if reason is None:
                words.append(word)
                continue
            rejected[reason] = rejected.get(reason, 0) + 1
            spent += steps
            if spent > limit:
                exhausted(len(words), n)
        return words, rejected
