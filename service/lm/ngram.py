"""Models of order N from n-gram counts: the counts, Kneser–Ney and add-k (SPEC section 7).

Estimation apart from query: the counts are made once (one streaming pass over a word list,
`count_ngrams`), a smoother turns them into arrays once (`kneser_ney`, `add_k`), and everything
else only reads the resulting `LanguageModel`.

Order N, 2 <= N <= 8: the next symbol depends on the last N - 1 symbols of
`'.' * (N - 1) + word`, and the word ends at `.`. An n-gram is written as its symbol indices
(`.` is 0); a gram of n symbols is the int64 key `sum(s[i] * V ** (n - 1 - i))`, so that keys of
one length sort as the grams do. Keys need V ** N < 2 ** 63 (`max_symbols`).

Interpolated modified Kneser–Ney (Chen & Goodman 1998), exactly as computed here:
- Level N counts are the raw counts of the N-grams in the padded words. Level n < N counts are
  continuation counts: c_n(g) = the number of distinct symbols x such that the (n + 1)-gram x g
  has a positive level-(n + 1) count (so every level-n gram is a suffix of a level-N gram).
- Discounts per level from that level's counts of counts n1..n4:
  Y = n1 / (n1 + 2 n2), D1 = 1 - 2 Y n2 / n1, D2 = 2 - 3 Y n3 / n2, D3 = 3 - 4 Y n4 / n3; when
  one of n1..n4 is 0 or the result is not 0 < D1 <= 1, 0 < D2 <= 2, 0 < D3 <= 3, the level
  takes the fixed discounts `FALLBACK_DISCOUNTS` (0.5, 1, 1.5), as KenLM's discount fallback.
- For a context h of n - 1 symbols seen at level n (some level-n gram h c):
  P_n(c | h) = max(c_n(h c) - D(c_n(h c)), 0) / T(h) + gamma(h) P_{n-1}(c | h[1:]), with
  T(h) = sum_c c_n(h c), D(k) = D1, D2, D3 for k = 1, 2, >= 3 (0 for k = 0) and
  gamma(h) = (D1 N1(h) + D2 N2(h) + D3 N3+(h)) / T(h), N_k(h) the number of symbols c whose
  count c_n(h c) is k (3 or more for N3+). An unseen context: P_n(c | h) = P_{n-1}(c | h[1:]).
  P_0(c) = 1 / V, the uniform base over the V symbols (`.` included).
So a context never seen has exactly the distribution of its longest seen suffix: the model's
states are the seen contexts (the suffixes of the level-N contexts), and the state after a
symbol is the longest seen suffix of the history.

add-k: P(c | h) = (N(h c) + K) / (N(h) + K V) for the full context h of N - 1 symbols (uniform
for an unseen h). Its states are the prefixes of the seen contexts: the longest suffix of the
history that begins a seen context is all that the future depends on.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from service.lm.corpus import EOS, Chunk, WordListError, word_of_pairs
from service.lm.lm import LanguageModel

FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
REDUCE_ROWS = 1 << 18  # chunk grams gathered before they are merged into the table


def max_symbols(order: int) -> int:
    """The largest alphabet (with `.`) whose grams of `order` symbols fit an int64 key."""
    return math.floor((2**63 - 1) ** (1 / order))


@dataclass(frozen=True)
class NgramCounts:
    """The counts of a word list's N-grams (padded words), sparse.

    `keys` (M,) int64 sorted distinct, `counts` (M,) int64 > 0: gram key -> occurrences."""

    alphabet: tuple[str, ...]
    order: int
    keys: np.ndarray
    counts: np.ndarray

    @property
    def V(self) -> int:
        return len(self.alphabet)

    @property
    def examples(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def from_words(cls, words: Sequence[str], order: int) -> NgramCounts:
        """The counts of an in-memory word list (its alphabet: `.` and its sorted symbols)."""
        alphabet = (EOS, *sorted(set("".join(words))))
        _check_alphabet_size(len(alphabet), order)
        stoi = {c: i for i, c in enumerate(alphabet)}
        text = "".join(w + "\n" for w in words)
        ix = np.array([0 if c == "\n" else stoi[c] for c in text], dtype=np.int64)
        rows, counts = _chunk_grams(ix, order, None, len(alphabet))
        keys = _keys(rows, len(alphabet))
        keys, counts = _merge(keys, counts)
        return cls(alphabet, order, keys, counts)

    def contexts(self) -> np.ndarray:
        """(C,) int64 sorted: the keys of the seen contexts (N - 1 symbols)."""
        return np.unique(self.keys // self.V)


def _check_alphabet_size(V: int, order: int) -> None:
    if V > max_symbols(order):
        raise WordListError(
            f"order {order} needs an alphabet of at most {max_symbols(order)} symbols with "
            f"'.'; this word list has {V}"
        )


def _keys(rows: np.ndarray, base: int) -> np.ndarray:
    """(M,) int64 keys of (M, n) symbol rows in `base`."""
    keys = np.zeros(len(rows), dtype=np.int64)
    for j in range(rows.shape[1]):
        keys *= base
        keys += rows[:, j]
    return keys


def _rows(keys: np.ndarray, base: int, n: int) -> np.ndarray:
    """(M, n) int64 symbol rows of keys in `base` (inverse of `_keys`)."""
    rows = np.empty((len(keys), n), dtype=np.int64)
    k = keys.copy()
    for j in range(n - 1, -1, -1):
        rows[:, j] = k % base
        k //= base
    return rows


def _merge(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys with their counts summed."""
    u, inv = np.unique(keys, return_inverse=True)
    return u, np.bincount(inv, weights=counts, minlength=len(u)).round().astype(np.int64)


def _chunk_grams(ix: np.ndarray, order: int, keep, base: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct N-grams of a chunk (rows (U, N) of symbol indices) and their counts.

    `ix`: the chunk's symbols, each word followed by its end 0 (the `.` before the chunk's
    first word is implied); every position is the target of one gram, whose context is the
    N - 1 symbols before it in `'.' * (N - 1) + word`. `keep` (bool per position) or None;
    `base` exceeds every index (grams are made distinct as int64 keys in that base)."""
    n = len(ix)
    sep = ix == 0
    start = np.zeros(n, dtype=np.int64)  # where each position's word starts
    starts = np.flatnonzero(sep) + 1
    start[starts[starts < n]] = starts[starts < n]
    start = np.maximum.accumulate(start)
    pos = np.arange(n) - start  # symbols of the word before the target
    rows = np.zeros((n, order), dtype=np.int64)
    rows[:, order - 1] = ix
    for j in range(1, order):
        inside = pos >= j
        rows[inside, order - 1 - j] = ix[np.flatnonzero(inside) - j]
    if keep is not None:
        rows = rows[keep]
    u, c = np.unique(_keys(rows, base), return_counts=True)
    return _rows(u, base, order), c.astype(np.int64)


class NgramCounter:
    """Counts the N-grams of a `WordStream`'s chunks as they come (`add`), in bounded memory:
    the table of distinct grams plus at most `REDUCE_ROWS` grams gathered between merges.
    Indices are the stream's own (order of first appearance) until `result` maps them to the
    alphabet."""

    def __init__(self, order: int):
        self.order = order
        self._rows = np.zeros((0, order), dtype=np.int64)
        self._counts = np.zeros(0, dtype=np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_rows = 0
        self._symbols = 1

    def add(self, chunk: Chunk, symbols: list[str], keep=None) -> None:
        self._symbols = len(symbols)
        _check_alphabet_size(self._symbols, self.order)
        rows, counts = _chunk_grams(chunk.ix.astype(np.int64), self.order, keep, self._symbols)
        self._pending.append((rows, counts))
        self._pending_rows += len(rows)
        if self._pending_rows > REDUCE_ROWS:
            self._reduce()

    def _reduce(self) -> None:
        base = self._symbols
        rows = np.concatenate([self._rows, *(r for r, _ in self._pending)])
        counts = np.concatenate([self._counts, *(c for _, c in self._pending)])
        keys, self._counts = _merge(_keys(rows, base), counts)
        self._rows = _rows(keys, base, self.order)
        self._pending, self._pending_rows = [], 0

    def result(self, alphabet: tuple[str, ...], symbols: list[str]) -> NgramCounts:
        """The counts over `alphabet` (a subset of the stream's `symbols`: held-out words may
        have brought symbols the training words lack; their grams are all held out)."""
        self._reduce()
        to_alphabet = np.full(len(symbols), -1, dtype=np.int64)
        where = {c: i for i, c in enumerate(alphabet)}
        for i, c in enumerate(symbols):
            if c in where:
                to_alphabet[i] = where[c]
        rows = to_alphabet[self._rows]
        if (rows < 0).any():
            raise AssertionError("a counted gram holds a symbol outside the alphabet")
        keys, counts = _merge(_keys(rows, len(alphabet)), self._counts)
        return NgramCounts(alphabet, self.order, keys, counts)


# -- states -------------------------------------------------------------------------------


def _states(by_length: list[np.ndarray], V: int, order: int) -> tuple[np.ndarray, int, list[int]]:
    """The states of a set of contexts given by length (`by_length[k]`: sorted keys of the
    contexts of k symbols, k = 0 .. N - 1; the set must hold the start `'.' * (N - 1)`).

    Returns (next (S, V), start, offsets): state ids run length by length (those of k
    symbols from offsets[k]); next[s, c] is the state of the longest suffix of
    (context(s) + c), cut to N - 1 symbols, that is in the set (c = 0: the start, a new word).
    """
    offsets = np.cumsum([0, *(len(k) for k in by_length)]).tolist()
    S = offsets[-1]
    nxt = np.empty((S, V), dtype=np.int64)
    top = order - 1
    start = offsets[top] + _find(by_length[top], np.zeros(1, dtype=np.int64))[0]
    if start < offsets[top]:
        raise ValueError("the start context is not among the contexts")
    for n, keys in enumerate(by_length):
        if not len(keys):
            continue
        m = min(n + 1, top)
        cand = (keys[:, None] * V + np.arange(V)[None, :]) % (V**m)  # (len, V) m symbols
        found = np.full(cand.shape, -1, dtype=np.int64)
        for L in range(m, -1, -1):
            todo = found < 0
            if not todo.any():
                break
            sub = cand[todo] % (V**L)
            hit = _find(by_length[L], sub)
            ok = hit >= 0
            idx = np.flatnonzero(todo.ravel())[ok]
            found.ravel()[idx] = offsets[L] + hit[ok]
        if (found < 0).any():
            raise ValueError("the contexts do not hold the empty context")
        nxt[offsets[n] : offsets[n + 1]] = found
    nxt[:, 0] = start
    return nxt, int(start), offsets


def _find(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Index of each key in `sorted_keys`, -1 where absent."""
    if not len(sorted_keys):
        return np.full(len(keys), -1, dtype=np.int64)
    i = np.searchsorted(sorted_keys, keys)
    i = np.minimum(i, len(sorted_keys) - 1)
    return np.where(sorted_keys[i] == keys, i, -1)


class StateNames(Sequence[str]):
    """The context each state stands for, decoded from its key when asked (a model of high
    order has tens of thousands of states; a request names a few)."""

    def __init__(self, by_length: list[np.ndarray], offsets: list[int], alphabet):
        self._by_length, self._offsets, self._alphabet = by_length, offsets, tuple(alphabet)

    def __len__(self) -> int:
        return self._offsets[-1]

    def __getitem__(self, s):  # type: ignore[override]
        if isinstance(s, slice):
            return [self[i] for i in range(*s.indices(len(self)))]
        s = int(s)
        if not 0 <= s < len(self):
            raise IndexError(s)
        k = bisect.bisect_right(self._offsets, s) - 1
        key = int(self._by_length[k][s - self._offsets[k]])
        V, out = len(self._alphabet), []
        for _ in range(k):
            key, c = divmod(key, V)
            out.append(self._alphabet[c])
        return "".join(reversed(out))


def _transition_counts(
    ng: NgramCounts, by_length: list[np.ndarray], offsets: list[int]
) -> np.ndarray:
    """(S, V) int64: the training grams' counts at the state of their full context."""
    V, top = ng.V, ng.order - 1
    S = offsets[-1]
    ctx = _find(by_length[top], ng.keys // V) + offsets[top]
    flat = ctx * V + ng.keys % V
    return (
        np.bincount(flat, weights=ng.counts, minlength=S * V).round().astype(np.int64).reshape(S, V)
    )


# -- smoothers ----------------------------------------------------------------------------


def discounts(counts: np.ndarray) -> tuple[float, float, float]:
    """Modified Kneser–Ney discounts (D1, D2, D3+) from one level's counts (see the module)."""
    n1, n2, n3, n4 = (int(np.count_nonzero(counts == k)) for k in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) == 0:
        return FALLBACK_DISCOUNTS
    Y = n1 / (n1 + 2 * n2)
    d = (1 - 2 * Y * n2 / n1, 2 - 3 * Y * n3 / n2, 3 - 4 * Y * n4 / n3)
    if not (0 < d[0] <= 1 and 0 < d[1] <= 2 and 0 < d[2] <= 3):
        return FALLBACK_DISCOUNTS
    return d


@dataclass(frozen=True)
class KneserNeyFit:
    """What `kneser_ney` computed besides the model: the discounts of each level 1..N."""

    lm: LanguageModel
    discounts: tuple[tuple[float, float, float], ...]


def kneser_ney(ng: NgramCounts) -> KneserNeyFit:
    """Interpolated modified Kneser–Ney over the states of the seen contexts (module docs)."""
    N, V = ng.order, ng.V
    # Level n grams and counts, n = N .. 1: raw at N, continuation counts below.
    levels: dict[int, tuple[np.ndarray, np.ndarray]] = {N: (ng.keys, ng.counts)}
    keys = ng.keys
    for n in range(N - 1, 0, -1):
        u, c = np.unique(keys % (V**n), return_counts=True)
        levels[n] = (u, c.astype(np.int64))
        keys = u
    # States of k symbols: the contexts of level k + 1.
    by_length = [np.unique(levels[k + 1][0] // V) for k in range(N)]
    nxt, start, offsets = _states(by_length, V, N)
    S = offsets[-1]
    rows = np.empty((S, V), dtype=np.float64)
    ds = []
    for k in range(N):  # level n = k + 1, contexts of k symbols
        gkeys, gcounts = levels[k + 1]
        D = discounts(gcounts)
        ds.append(D)
        ctx = np.searchsorted(by_length[k], gkeys // V)  # every gram's context is a state
        sym = gkeys % V
        Dk = np.array([0.0, *D])[np.minimum(gcounts, 3)]
        nctx = len(by_length[k])
        total = np.bincount(ctx, weights=gcounts, minlength=nctx)
        mass = np.bincount(ctx, weights=Dk, minlength=nctx)  # D1 N1 + D2 N2 + D3 N3+
        gamma = mass / total
        block = np.zeros((nctx, V), dtype=np.float64)
        np.add.at(block, (ctx, sym), np.maximum(gcounts - Dk, 0.0) / total[ctx])
        if k == 0:
            block += gamma[:, None] / V
        else:
            parent = offsets[k - 1] + _find(by_length[k - 1], by_length[k] % (V ** (k - 1)))
            block += gamma[:, None] * rows[parent]
        rows[offsets[k] : offsets[k + 1]] = block
    lm = _model(
        ng, rows, nxt, start, by_length, offsets, _transition_counts(ng, by_length, offsets)
    )
    return KneserNeyFit(lm, tuple(ds))


def add_k(ng: NgramCounts, k: float) -> LanguageModel:
    """add-k over the full context (module docs); states: the prefixes of the seen contexts."""
    N, V = ng.order, ng.V
    top = N - 1
    seen = ng.contexts()
    by_length = [np.unique(seen // (V ** (top - n))) for n in range(N)]
    nxt, start, offsets = _states(by_length, V, N)
    S = offsets[-1]
    counts = _transition_counts(ng, by_length, offsets)
    rows = np.full((S, V), 1.0 / V, dtype=np.float64)
    full = slice(offsets[top], offsets[top + 1])
    C = counts[full].astype(np.float64)
    rows[full] = (C + k) / (C.sum(axis=1, keepdims=True) + k * V)
    return _model(ng, rows, nxt, start, by_length, offsets, counts)


def _model(ng, rows, nxt, start, by_length, offsets, counts) -> LanguageModel:
    """The model of a smoother's rows (S, V) over the states `by_length` (`_states`)."""
    return LanguageModel.from_rows(
        alphabet=ng.alphabet,
        order=ng.order,
        probs=rows,
        next_state=nxt,
        start=start,
        contexts=StateNames(by_length, offsets, ng.alphabet),
        counts=counts,
    )


def count_ngrams(
    chunks: Iterable[Chunk], symbols: list[str], order: int, held=None
) -> NgramCounter:
    """Feed a stream's chunks to a counter (training words only: `held` marks the held-out
    words, one bool per word of the list, or None)."""
    counter = NgramCounter(order)
    for chunk in chunks:
        keep = None
        if held is not None:
            h = held[chunk.first : chunk.first + chunk.text.count("\n")]
            if h.any():
                keep = ~h[word_of_pairs(chunk.ix)]
        counter.add(chunk, symbols, keep)
    return counter
