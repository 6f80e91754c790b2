"""Exact constrained sampling: the model's words conditioned on a prefix, a length range,
novelty and uniqueness, after temperature and top-k.

What a constrained request returns: independent draws from the model's distribution over whole
words (after temperature and top-k) conditioned on the constraints, P(w) / P(constraints).

- No constraint (or only defaults): `Sampler.sample`, the notebook's words, unchanged.
- Only whole-word filters (`novel`, `unique`, `old20_min`, `old20_max`): the notebook's own
  stream, with the words they reject left out (whole-word rejection of an exact stream is
  exact).
- Any of prefix, min_len, max_len, temperature, top_k: a walk on the model's states whose every
  next-symbol choice is weighted by the probability of finishing with an allowed length from
  there (backward probabilities over the states, in log space so that nothing underflows), so
  that every word meets the prefix and length constraints by construction and comes with
  exactly its conditional probability; the filters then reject whole words.

`novel` rejects the model's training words and, when the model has a lexicon (SPEC section 8),
every word the lexicon holds (accent-folded); `old20_min`/`old20_max` keep the words whose OLD20
against the lexicon lies in the range. Lexicon work is bounded per request (`Allowance`).

Every walk is `service.lm.sampling`'s one loop: the reference loop's stream for the notebook's
words (and for novel/unique alone), and for conditioned walks independent candidates drawn
by inverse CDF from a counter-based generator (`sampling.uniform`). The same seed and
constraints give the same words, and word k does not depend on n.

Constraints no word can meet are found from the model's support at once (never by trying);
`novel`/`unique` are checked against counts of the distinct words the constraints allow (with a
lexicon, by listing those words when they are at most ENUMERATE_WORDS: beyond that many, every
model here has words no lexicon holds, and the budget answers for the rest). Possible but
improbable ones are bounded: the symbols drawn for rejected words are limited to
`rejection_budget` per request, the lexicon's work to `lexicon_budget`.

Shapes: S states, V symbols, index 0 is `.`; `hi` is the largest length allowed.
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

from service.lm.defaults import MAX_OLD20, MAX_TEMPERATURE, MIN_TEMPERATURE
from service.lm.lexicon import (
    Allowance,
    Lexicon,
    LexiconBudgetExceeded,
    LexiconSource,
)
from service.lm.lm import EOS, LanguageModel
from service.lm.sampling import DEFAULT_MAX_WORD_LEN, Accept, Sampler, Walker, conditioned_words

# Symbols drawn for words that novel/unique reject, at most, per request: past it the request
# is refused as too improbable. The worst case is short words rejected one after another (a
# few us each, the word's own cost included): about a second of one core.
DEFAULT_REJECTION_BUDGET = 200_000
CACHE_BYTES = 32 * 2**20  # conditioned chains kept per process (bounded LRU)
CHAIN_PARAMETERS = ("prefix", "min_len", "max_len", "top_k")  # the ones that shape the support
FILTERS = ("novel", "unique", "old20_min", "old20_max")  # the ones that reject whole words
# Lexicon work one request may do (`lexicon.Allowance` units: about 3,000 a millisecond here).
DEFAULT_LEXICON_BUDGET = 30_000_000
ENUMERATE_WORDS = 20_000  # with a lexicon, novel/unique are decided by listing this many words
EPSILON = 1e-9  # OLD20 ranges and tolerances are compared with this slack (means of 20 ints)


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
    old20_min: float | None = None  # OLD20 against the lexicon at least this; None: no minimum
    old20_max: float | None = None  # at most this; None: no maximum

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
        if self.old20_min is not None:
            names.append("old20_min")
        if self.old20_max is not None:
            names.append("old20_max")
        return names

    @property
    def old20(self) -> bool:
        return self.old20_min is not None or self.old20_max is not None


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


class NoLexicon(ConstraintError):
    """A lexicon figure (OLD20) asked of a model without a lexicon."""

    def __init__(self, parameters: Sequence[str]):
        super().__init__(
            parameters,
            "the model has no lexicon: it was trained without --language (e.g. fr), and no "
            "lexicon word list is set",
        )


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
    """The model for one (temperature, top_k) conditioned on a length range [lo, hi].

    `logQ` (S, V): log next-symbol probabilities after temperature and top-k (-inf outside
    the top-k support); `nxt` (S, V) the next states. `logB[l, s]` is the log-probability
    that a word at state s after l symbols ends with a total length in [lo, hi]:
        logB[hi, s] = logQ[s, .]
        logB[l, s]  = log( [lo <= l] Q[s, .] + sum_{c != .} Q[s, c] B[l + 1, next[s, c]] )
    The walk at (l, s) then draws c with probability Q[s, c] B[l + 1, next[s, c]] / B[l, s]
    (the end `.` with Q[s, .] / B[l, s] if lo <= l): exactly the conditional of the next
    symbol. Levels below hi whose logB equals the level above bit for bit (the recurrence has
    reached its fixed point: far from hi, a word almost surely ends in time) are stored once.
    """

    def __init__(self, logQ: np.ndarray, nxt: np.ndarray, lo: int, hi: int):
        self.logQ, self.nxt, self.lo, self.hi = logQ, nxt, lo, hi
        inner, end = logQ[:, 1:], logQ[:, 0]
        targets = nxt[:, 1:]
        levels = [end]  # logB[hi], logB[hi - 1], ... while they change
        index = np.zeros(hi + 1, dtype=np.int64)
        index[hi] = 0
        k = hi - 1
        while k >= 0:
            above = levels[-1]
            go_on = _logsumexp(inner + above[targets])
            row = np.logaddexp(go_on, end) if k >= lo else go_on
            if k >= lo and np.array_equal(row, above):
                index[lo : k + 1] = len(levels) - 1  # the same from here down to lo
                k = lo - 1
                continue
            levels.append(row)
            index[k] = len(levels) - 1
            k -= 1
        self._B = np.stack(levels)
        self._index = index
        self.nbytes = self._B.nbytes

    def logB(self, level: int) -> np.ndarray:
        """(S,) logB at one level."""
        return self._B[self._index[level]]

    def possible(self, start: int, path: Sequence[int]) -> bool:
        """Whether a word can start with the symbols `path` (indices, without the start `.`)
        and meet the length range: each step in the support, and the rest possible."""
        s = start
        for c in path:
            if self.logQ[s, c] == -np.inf:
                return False
            s = int(self.nxt[s, c])
        return len(path) <= self.hi and self.logB(len(path))[s] > -np.inf

    def rows(self, level: int, states: np.ndarray) -> np.ndarray:
        """(A, V) float64: the next symbol's conditional probabilities of A walks at `states`
        after `level` symbols."""
        here = self.logB(level)[states]  # (A,)
        tails = self.logB(level + 1)[self.nxt[states]]  # (A, V): logB after each symbol
        tails[:, 0] = 0.0 if level >= self.lo else -np.inf
        tails += self.logQ[states]
        tails -= here[:, None]
        with np.errstate(invalid="ignore", over="ignore"):  # unreachable states: unused
            return np.exp(tails, out=tails)


def count_words(
    mask: np.ndarray,
    nxt: np.ndarray,
    start: int,
    path: Sequence[int],
    lo: int,
    hi: int,
    cap: int,
    cut: bool = False,
) -> int:
    """How many distinct words start with the symbols `path` and end with a length in
    [lo, hi], walking only the transitions of `mask` (S, V) bool on the states `nxt`; counts
    are capped at `cap`.

    With `cut` (the reference loop's stream), a word that reaches hi symbols ends there
    whatever follows. A word is one path of the states, so paths are counted, level by
    level; once a level's counts equal the level above's (all capped, say), the rest are
    the same."""
    s = start
    for c in path:
        if not mask[s, c]:
            return 0
        s = int(nxt[s, c])
    m = len(path)
    if m > hi:
        return 0
    go, end = mask[:, 1:], mask[:, 0].astype(np.int64)
    # A lower bound for every state first (most models allow many symbols everywhere): with
    # at least b letters and e ends at each state, N(k) >= b N(k + 1) + [k >= lo] e.
    b, e = int(go.sum(axis=1).min()), int(end.min())
    bound = 1 if cut else e
    for k in range(hi - 1, m - 1, -1):
        bound = min(cap, b * bound + (e if k >= lo else 0))
    if bound >= cap:
        return cap
    targets = nxt[:, 1:]
    N = np.ones_like(end) if cut else end.copy()  # level hi
    for k in range(hi - 1, m - 1, -1):
        above = N
        N = np.where(go, above[targets], 0).sum(axis=1)
        if k >= lo:
            N += end
        np.minimum(N, cap, out=N)
        if k >= lo and np.array_equal(N, above):
            break  # the same recurrence from here down to m: a fixed point
    return int(N[s])


def real_words(words: list[str], training: frozenset[str], lexicon: Lexicon | None) -> list[bool]:
    """Which of `words` `novel` rejects: training words, and lexicon words (accent-folded),
    looked up a batch at a time."""
    real = [w in training for w in words]
    if lexicon is not None:
        rest = [i for i, r in enumerate(real) if not r]
        if rest:
            for i in np.flatnonzero(lexicon.contains([words[i] for i in rest])).tolist():
                real[rest[i]] = True
    return real


def old20_in_range(
    allowance: Allowance, lexicon: Lexicon, word: str, lo: float | None, hi: float | None
):
    """The word's neighbourhood if its OLD20 lies in [lo, hi] (to EPSILON), else None; the
    search may stop as soon as OLD20 is known to exceed hi."""
    above = None if hi is None else hi + EPSILON
    nb = allowance.neighbourhood(lexicon, word, above=above)
    if nb.old20 is None:  # above hi (or no other word in the lexicon)
        return None
    if (lo is None or nb.old20 >= lo - EPSILON) and (hi is None or nb.old20 <= hi + EPSILON):
        return nb
    return None


def list_words(
    mask: np.ndarray,
    nxt: np.ndarray,
    start: int,
    path: Sequence[int],
    lo: int,
    hi: int,
    limit: int,
    cut: bool = False,
) -> list[list[int]] | None:
    """The distinct words `count_words` counts (their symbols after `path`, without the end),
    or None if following them takes more than `limit` partial words at a level (a model whose
    allowed words are few, but whose dead ends are many)."""
    s = start
    for c in path:
        if not mask[s, c]:
            return []
        s = int(nxt[s, c])
    m = len(path)
    words: list[list[int]] = []
    frontier: list[tuple[int, list[int]]] = [(s, [])]
    for level in range(m, hi + 1):
        if not frontier:
            break
        grown: list[tuple[int, list[int]]] = []
        for state, symbols in frontier:
            row = mask[state]
            if level >= lo and (row[0] or (cut and level == hi)):
                words.append(symbols)
            if level == hi:
                continue
            for c in np.flatnonzero(row[1:]).tolist():
                grown.append((int(nxt[state, c + 1]), [*symbols, c + 1]))
        if len(grown) > limit or len(words) > limit:
            return None
        frontier = grown
    return words


class TrainingWords:
    """The model's training word list, sorted, with each word's (state, symbol) transitions
    for counting which words a set of constraints allows."""

    def __init__(self, words: Sequence[str], lm: LanguageModel):
        self.words = tuple(words)
        self.set = frozenset(self.words)
        self.lengths = np.array([len(w) for w in self.words], dtype=np.int64)
        # Transitions of every word, end included, word after word: word i's are
        # xs[offsets[i]:offsets[i + 1]] (states) -> ys[...] (symbols).
        codes, lengths, kept = lm.encode_words(self.words)
        if not kept.all():
            raise ValueError("a training word holds a symbol outside the alphabet")
        states = lm.walk(codes[:, :-1], lengths)
        valid = np.arange(codes.shape[1])[None, :] <= lengths[:, None]
        self.xs, self.ys = states[valid], codes[valid]
        sizes = lengths + 1
        self.offsets = np.cumsum([0, *sizes.tolist()])
        self.owner = np.repeat(np.arange(len(self.words)), sizes)
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

    `sampler` is the model's `Sampler` (its reference loop, over `sampler.lm`), `words` the
    training word list (None for a file without one), `lexicon` the model's lexicon (built on
    first use; None or an empty source: none). `max_word_len` is the longest word: the
    reference stream is cut there, and constrained words never exceed it.
    """

    def __init__(
        self,
        sampler: Sampler,
        words: Sequence[str] | None,
        max_word_len: int = DEFAULT_MAX_WORD_LEN,
        rejection_budget: int = DEFAULT_REJECTION_BUDGET,
        lexicon: LexiconSource | None = None,
        lexicon_budget: int | None = DEFAULT_LEXICON_BUDGET,
    ):
        self.sampler = sampler
        self.lm = lm = sampler.lm
        self.alphabet = lm.alphabet
        self.stoi = lm.stoi
        self.V = lm.V
        self.logP = lm.logP
        self.max_word_len = max_word_len
        self.rejection_budget = rejection_budget
        self.lexicon_source = lexicon
        self.lexicon_budget = lexicon_budget
        self.training = None if words is None else TrainingWords(words, lm)
        self._ranks: np.ndarray | None = None  # for top-k, made on its first request
        # What the reference loop can draw (its rows are the model's table P).
        self._stream_support = lm.P > 0
        self._lock = threading.Lock()
        self._chains: OrderedDict[tuple, Chain] = OrderedDict()
        self._chain_bytes = 0
        self._default: Chain | None = None  # kept apart from the cache (`warm`)

    def lexicon(self) -> Lexicon | None:
        """The model's lexicon (built on first use), or None."""
        return self.lexicon_source.get() if self.lexicon_source else None

    def warm(self) -> None:
        """Build what a prefix-only request needs now (before the workers fork, to share it)."""
        self.chain(1.0, self.V, 0, self.max_word_len)

    # -- the support and the chain ---------------------------------------------------------

    def support(self, top_k: int) -> np.ndarray:
        """(S, V) bool: the transitions top-k keeps (all finite ones for k = V)."""
        finite = np.isfinite(self.logP)
        if top_k >= self.V:
            return finite
        mask = np.zeros(self.logP.shape, dtype=bool)
        if self._ranks is None:
            # A stable sort of -logP keeps the lower index on ties; int16 holds V <= 4096.
            self._ranks = np.argsort(-self.logP, axis=1, kind="stable").astype(np.int16)
        np.put_along_axis(mask, self._ranks[:, :top_k].astype(np.intp), True, axis=1)
        return mask & finite

    def log_q(self, temperature: float, top_k: int) -> np.ndarray:
        """(S, V): log next-symbol probabilities, softmax(logP / T) kept to the top k and
        renormalised; the model's own logP (shared, not copied) at T = 1 with every symbol."""
        if temperature == 1.0 and top_k >= self.V:
            return self.logP
        Z = np.where(self.support(top_k), self.logP / temperature, -np.inf)
        return Z - _logsumexp(Z)[:, None]

    def _build(self, temperature: float, top_k: int, lo: int, hi: int) -> Chain:
        return Chain(self.log_q(temperature, top_k), self.lm.next, lo, hi)

    def chain(self, temperature: float, top_k: int, lo: int, hi: int) -> Chain:
        """The conditioned chain, from a bounded LRU cache (a few ms to build)."""
        key = (float(temperature), int(top_k), lo, hi)
        if key == (1.0, self.V, 0, self.max_word_len):
            if self._default is None:
                self._default = self._build(*key[:2], lo, hi)
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
        for name in ("old20_min", "old20_max"):
            v = getattr(c, name)
            if v is not None and not (math.isfinite(v) and 0 <= v <= MAX_OLD20):
                raise BadConstraint([name], f"must be from 0 to {MAX_OLD20:g} (got {v})")
        if c.old20_min is not None and c.old20_max is not None and c.old20_min > c.old20_max:
            raise BadConstraint(["old20_max"], f"must be at least old20_min ({c.old20_min})")
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
        mask = self.support(c.top_k or self.V)
        return count_words(mask, self.lm.next, self.lm.start, self._path(c.prefix), lo, hi, 1) > 0

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
        lexicon = self.lexicon() if c.novel else None
        cap = n + (len(training.words) if training else 0) + 1  # more is as good as enough
        if lexicon is not None:
            cap = max(cap, ENUMERATE_WORDS)
        lm, path = self.lm, self._path(c.prefix)
        allowed = count_words(mask, lm.next, lm.start, path, lo, hi, cap, cut)
        if allowed >= cap:
            return
        if lexicon is None:
            seen = training.allowed(mask, c.prefix, lo, hi, cut) if training else 0
        else:
            listed = list_words(mask, lm.next, lm.start, path, lo, hi, 4 * cap, cut)
            if listed is None:
                return  # too many dead ends to list: the budget answers
            alphabet = self.alphabet
            words = [c.prefix + "".join(alphabet[i] for i in w) for w in listed]
            seen = sum(real_words(words, training.set if training else frozenset(), lexicon))
        what = "a training word" if lexicon is None else "a training word or a lexicon word"
        if c.novel and allowed == seen:
            raise ImpossibleConstraints(
                ["novel", *others],
                f"every word that meets the constraints ({allowed}) is {what}",
            )
        if c.unique and allowed - seen < n:
            k = allowed - seen
            kind = ("new" if c.novel else "distinct") + (" word meets" if k == 1 else " words meet")
            raise ImpossibleConstraints(
                ["unique", "n", *others],
                f"only {k} {kind} the constraints, fewer than n = {n}",
            )

    # -- sampling --------------------------------------------------------------------------

    def sample(
        self,
        n: int,
        seed: int,
        constraints: Constraints = NONE,
        allowance: Allowance | None = None,
    ) -> Sampled:
        """`n` words from a fresh `Generator().manual_seed(seed)` under `constraints`; the
        lexicon's work (OLD20) within `allowance` (else the sampler's `lexicon_budget`).

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
        if c.old20 and self.lexicon() is None:
            raise NoLexicon([p for p in given if p.startswith("old20")])
        if allowance is None:
            allowance = Allowance(self.lexicon_budget)
        accept = self._filter(c, allowance)
        try:
            return self._sample(n, seed, c, given, accept)
        except LexiconBudgetExceeded:
            names = [p for p in given if p.startswith("old20")]
            raise ImprobableConstraints(
                names + [p for p in given if p not in names],
                f"found {accept.kept} of {n} words before the lexicon work budget "
                f"({allowance.limit:,} units) ran out",
                accept.kept,
            ) from None

    def _sample(
        self, n: int, seed: int, c: Constraints, given: list[str], accept: WordFilter
    ) -> Sampled:
        budget = (self.rejection_budget, self._exhausted(given))
        shaped = [p for p in given if p not in FILTERS]
        if not shaped:
            # The reference stream, words rejected whole: its words minus the rejected.
            hi = self.max_word_len
            self._check_filters(c, n, given, self._stream_support, 0, hi, cut=True)
            g = torch.Generator().manual_seed(seed)
            with torch.inference_mode():
                words, rejected = self.sampler.stream_words(g, n, hi, accept, budget)
            return Sampled(words, constrained=True, rejected=rejected)
        lo, hi = self._bounds(c)
        chain = self.chain(c.temperature, c.top_k or self.V, lo, hi)
        path = self._path(c.prefix)
        lm = self.lm
        if not chain.possible(lm.start, path):
            raise self._impossible(c, given)
        if c.novel or c.unique:
            self._check_filters(c, n, given, self.support(c.top_k or self.V), lo, hi)
        walker = Walker(lm.next, self.alphabet, lm.state_after(path), len(path), hi, c.prefix)
        words, rejected = conditioned_words(walker, chain.rows, seed, n, accept, budget)
        return Sampled(words, constrained=True, rejected=rejected)

    def _filter(self, c: Constraints, allowance: Allowance) -> WordFilter:
        """The whole-word tests of novel, unique and the OLD20 range."""
        return WordFilter(
            training=self.training.set if c.novel and self.training else frozenset(),
            lexicon=self.lexicon() if c.novel or c.old20 else None,
            novel=c.novel,
            unique=c.unique,
            old20=(c.old20_min, c.old20_max) if c.old20 else None,
            allowance=allowance,
        )

    def _exhausted(self, given: list[str]) -> Callable[[int, int], None]:
        """What to do when the rejection budget runs out: refuse, naming the filters first."""
        filters = [p for p in given if p in FILTERS]
        names = filters + [p for p in given if p not in filters]

        def exhausted(found: int, n: int) -> None:
            raise ImprobableConstraints(
                names,
                f"found {found} of {n} words before the rejection budget "
                f"({self.rejection_budget:,} symbols drawn for rejected words) ran out",
                found,
            )

        return exhausted


class WordFilter(Accept):
    """The whole-word filters of one request: `novel` (not a training word, nor a lexicon word,
    accent-folded), `unique` (not a word already kept), `old20` (OLD20 against the lexicon in
    [min, max], to EPSILON). The cheap tests are made a batch at a time (`screen`); OLD20 only
    for the words that pass them, in order, within the request's `allowance`."""

    def __init__(
        self,
        training: frozenset[str],
        lexicon: Lexicon | None,
        novel: bool,
        unique: bool,
        old20: tuple[float | None, float | None] | None,
        allowance: Allowance,
    ):
        self.training, self.lexicon, self.novel, self.unique = training, lexicon, novel, unique
        self.old20, self.allowance = old20, allowance
        self.seen: set[str] = set()
        self.kept = 0

    def screen(self, words: list[str]) -> list[str | None]:
        if not self.novel:
            return [None] * len(words)
        return ["novel" if r else None for r in real_words(words, self.training, self.lexicon)]

    def __call__(self, word: str) -> str | None:
        if self.unique and word in self.seen:
            return "unique"
        if self.old20 is not None and not old20_in_range(
            self.allowance, self.lexicon, word, *self.old20
        ):
            return "old20"
        if self.unique:
            self.seen.add(word)
        self.kept += 1
        return None
