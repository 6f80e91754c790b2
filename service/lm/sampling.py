"""Walking words on a model's states: the one loop, fed by two sources of randomness.

Two walks, each written once, every caller using them:

- The reference loop's stream (`Sampler`): `c = torch.multinomial(P[state], 1, generator=g)`
  from a fresh `Generator().manual_seed(seed)`, word after word; for the notebook's model, the
  notebook's very words. Plain sampling (and novel/unique alone, which leave words out of it).
- Conditioned walks (`conditioned_words`, for prefix, length, temperature and top-k): many
  independent candidate words advance together in `walk`, one vectorised step per symbol
  position; candidate k's j-th symbol is drawn by inverse CDF from `uniform(seed, k, j)`
  (SplitMix64 of a counter: word k depends only on the seed and k); accepted candidates are
  the answer, in order.

Shapes: V symbols (index 0, `.`, ends a word), S states, A candidates still going.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from service.lm.defaults import DEFAULT_MAX_WORD_LEN
from service.lm.lm import LanguageModel

CHUNK_DRAWS = 1 << 18  # exponential draws (rows x V) made at once at most: bounds memory
MAX_BATCH = 4096  # conditioned candidates walked together, at most
MAX_CANDIDATES = 1 << 49  # conditioned candidates k (with j < 2 ** 14: one counter, 63 bits)

# choose(ids, step, level, states) -> (A,) the next symbol of each candidate.
Choose = Callable[[np.ndarray, int, int, np.ndarray], np.ndarray]
# rows(level, states) -> (A, V) next-symbol weights of A candidates at `states` after `level`
# symbols (candidates walk in step, so they share the level).
Rows = Callable[[int, np.ndarray], np.ndarray]


class Accept:
    """Which whole words a walk keeps: `screen` gives the reasons that a batch of words can be
    judged by at once (cheap, the same for a word wherever it comes), `__call__` the reason for
    one word, asked in order and only until n words are kept (for what depends on the words
    kept before, or costs too much to ask of words never needed). None: the word is kept."""

    def screen(self, words: list[str]) -> list[str | None]:
        return [None] * len(words)

    def __call__(self, word: str) -> str | None:
        return None


Budget = tuple[int, Callable[[int, int], None]]  # (most symbols for rejected words, on spent)


@dataclass(frozen=True)
class Walker:
    """Where words start and end: at `state` with `level` symbols already given (`prefix`),
    ending at `.` or at `hi` symbols, where no draw is made."""

    next: np.ndarray  # (S, V) next-state table
    alphabet: tuple[str, ...]
    state: int
    level: int
    hi: int
    prefix: str = ""


@dataclass
class Walked:
    out: np.ndarray  # (A0, J) int32: each candidate's symbols
    size: np.ndarray  # (A0,) symbols of each
    draws: np.ndarray  # (A0,) draws each consumed


def walk(w: Walker, ids: np.ndarray, choose: Choose) -> Walked:
    """Walk the candidates `ids` together to their ends: each step asks `choose` for the next
    symbol of every candidate still going, moves it to its next state, and ends it at `.` or
    at `hi` symbols (no draw there)."""
    A0 = len(ids)
    out = np.zeros((A0, 16), dtype=np.int32)
    size = np.zeros(A0, dtype=np.int64)
    draws = np.zeros(A0, dtype=np.int64)
    who = np.arange(A0)  # the candidates still going, by position in `ids`
    st = np.full(A0, w.state, dtype=np.int64)
    level = w.level
    nxt = w.next
    j = 0
    while who.size and level < w.hi:  # at hi, every candidate still going ends
        c = choose(ids[who], j, level, st)
        draws[who] += 1
        go = c != 0
        if not go.all():
            who, st, c = who[go], st[go], c[go]
        if j == out.shape[1]:
            out = np.concatenate([out, np.zeros_like(out)], axis=1)
        out[who, j] = c
        size[who] += 1
        st = nxt[st, c]
        level += 1
        j += 1
    return Walked(out, size, draws)


def _words_text(alphabet: tuple[str, ...], out: np.ndarray, sizes: np.ndarray, prefix: str):
    """Each row of `out` (W, J) cut to its size, as words (the prefix before each)."""
    if not len(sizes):
        return []
    J = out.shape[1]
    points = np.array([ord(c) for c in alphabet] + [ord("\n")], dtype=np.uint32)
    codes = np.concatenate([out, np.zeros((len(out), 1), dtype=out.dtype)], axis=1)
    codes[np.arange(len(sizes)), sizes] = len(alphabet)  # the separator after each word
    keep = np.arange(J + 1)[None, :] <= sizes[:, None]
    text = points[codes[keep]].tobytes().decode("utf-32-le")
    words = text.split("\n")[:-1]
    return [prefix + word for word in words] if prefix else words


def _filter(
    found: list[str],
    costs: list[int],
    words: list[str],
    n: int,
    accept: Accept | None,
    budget: Budget | None,
    rejected: dict[str, int],
    spent: int,
) -> int:
    """Append the accepted of `found` to `words` (up to n); returns the symbols spent on the
    rejected so far, calling the budget's `on spent` past its limit."""
    screened = accept.screen(found) if accept is not None else [None] * len(found)
    for word, cost, reason in zip(found, costs, screened, strict=True):
        if len(words) == n:
            break
        if reason is None and accept is not None:
            reason = accept(word)
        if reason is None:
            words.append(word)
            continue
        rejected[reason] = rejected.get(reason, 0) + 1
        spent += cost
        if budget is not None and spent > budget[0]:
            budget[1](len(words), n)
    return spent


# -- the reference loop's stream ----------------------------------------------------------


def _walk_block_python(
    rows: list[np.ndarray],
    nxt: np.ndarray,
    E: np.ndarray,
    start: int,
    state: int,
    length: int,
    cut_at: int,
    out: np.ndarray,
    cuts: np.ndarray,
) -> tuple[int, int]:
    """The reference loop over a block of exponential rows `E` (R, V), one symbol per row:
    `out[t]` the symbol drawn (0: the end), `cuts[t]` 1 where the word was cut after it.
    Returns where the walk stands after the block: (state, symbols of the unfinished word)."""
    buf = np.empty(E.shape[1], dtype=np.float32)
    for t in range(len(E)):
        np.divide(rows[state], E[t], out=buf)
        c = int(buf.argmax())
        out[t] = c
        cuts[t] = 0
        if c == 0:
            state, length = start, 0
            continue
        length += 1
        if length == cut_at:
            cuts[t] = 1
            state, length = start, 0
        else:
            state = int(nxt[state, c])
    return state, length


try:  # the same loop in C (service/lm/_walk.c), where it was built
    from service.lm._walk import walk as _walk_block_c
except ImportError:  # pragma: no cover - an install without a compiler
    _walk_block_c = None


class Sampler:
    """The reference loop's words of a model: `torch.multinomial(P[state], 1)` from a fresh
    `Generator().manual_seed(seed)`, state after state (the notebook's loop for its model).

    `multinomial(p, 1)` on the CPU is `argmax(p / e)` where `e` holds one float32
    `exponential_` draw per symbol; the draws for many symbols are made in one call (the
    generator's stream, consumed in the same order) and the walk divides and compares rows
    with no torch call per symbol. The walk is sequential (each word starts where the previous
    one ended): one row per symbol, in C where the extension was built (`_walk.c`), else in
    Python (the same words; a vectorised walk of every candidate start costs more than it
    saves, measured). The symbols of a block become words all at once."""

    def __init__(self, lm: LanguageModel, accelerated: bool = True):
        self.lm = lm
        self.alphabet = lm.alphabet
        self.stoi = lm.stoi
        self.mean_steps = lm.expected_steps()
        self._max_rows = max(16, CHUNK_DRAWS // lm.V)
        self._P = np.ascontiguousarray(lm.P, dtype=np.float32)
        self._next = np.ascontiguousarray(lm.next, dtype=np.int32)
        self.accelerated = accelerated and _walk_block_c is not None
        # Symbol index -> code point, the end mapped to the separator "\n".
        self._points = np.array([ord("\n"), *(ord(c) for c in lm.alphabet[1:])], np.uint32)

    @torch.inference_mode()
    def sample(self, n: int, seed: int, cut_at: int = DEFAULT_MAX_WORD_LEN) -> list[str]:
        """`n` words without the trailing `.`; a word that reaches `cut_at` symbols is cut
        there and the next word starts (only then can they differ from the reference loop,
        which would not stop)."""
        g = torch.Generator().manual_seed(seed)
        return self.stream_words(g, n, cut_at)[0]

    @cached_property
    def _row_views(self) -> list[np.ndarray]:
        """P's rows as a list, for the Python loop (indexing a list is its cheapest step)."""
        return list(self._P)

    def _block(self, E, state, length, cut_at):
        R = len(E)
        out = np.empty(R, dtype=np.int32)
        cuts = np.empty(R, dtype=np.uint8)
        if self.accelerated:
            state, length = _walk_block_c(
                self._P, self._next, E, self.lm.V, self.lm.start, state, length, cut_at, out, cuts
            )
        else:
            state, length = _walk_block_python(
                self._row_views, self._next, E, self.lm.start, state, length, cut_at, out, cuts
            )
        return out, cuts, state, length

    def stream_words(
        self,
        g: torch.Generator,
        n: int,
        cut_at: int,
        accept: Accept | None = None,
        budget: Budget | None = None,
    ) -> tuple[list[str], dict[str, int]]:
        """n accepted words of the stream, and how many were rejected by reason (the stream's
        words in order, the rejected left out). `budget`: the most symbols drawn for rejected
        words, and what to call when they are spent."""
        V = self.lm.V
        words: list[str] = []
        rejected: dict[str, int] = {}
        spent = 0
        state, length = self.lm.start, 0
        partial, partial_rows = "", 0  # the unfinished word of the last block
        while len(words) < n:
            need = (n - len(words)) * self.mean_steps * 1.1 + 8
            E = torch.empty((min(self._max_rows, max(16, int(need))), V))
            E = E.exponential_(1, generator=g).numpy()
            out, cuts, state, length = self._block(E, state, length, cut_at)
            # Each end (a drawn `.`, or a cut after a symbol) closes a word.
            points = self._points[out]
            cut = cuts.any()
            if cut:
                points = np.insert(points, np.flatnonzero(cuts) + 1, ord("\n"))
            pieces = points.tobytes().decode("utf-32-le").split("\n")
            pieces[0] = partial + pieces[0]
            partial = pieces[-1]
            found = pieces[:-1]
            if accept is None:
                words += found[: n - len(words)]
                continue
            ends = np.flatnonzero((out == 0) | (cuts == 1) if cut else out == 0)
            costs = np.diff(ends, prepend=-1)  # rows each word drew
            if len(costs):
                costs[0] += partial_rows
                partial_rows = len(out) - 1 - int(ends[-1])
            else:
                partial_rows += len(out)
            spent = _filter(found, costs.tolist(), words, n, accept, budget, rejected, spent)
        return words, rejected


# -- conditioned walks --------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _splitmix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def uniform(seed: int, ids: np.ndarray, step: int) -> np.ndarray:
    """(A,) float64 in (0, 1): SplitMix64's output at position (id << 14 | step) of the
    stream seeded with `seed`; a function of (seed, id, step) alone."""
    with np.errstate(over="ignore"):
        key = _splitmix(np.array([seed], dtype=np.uint64))[0]
        m = (ids.astype(np.uint64) << np.uint64(14)) | np.uint64(step)
        z = _splitmix(key + (m + np.uint64(1)) * _GOLDEN)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def conditioned_words(
    w: Walker,
    rows: Rows,
    seed: int,
    n: int,
    accept: Accept | None = None,
    budget: Budget | None = None,
    min_batch: int = 8,
) -> tuple[list[str], dict[str, int]]:
    """n accepted words of independent candidates k = 0, 1, 2, ..., each walked with
    `rows(level, states)` (conditional probabilities, each row summing to about 1) by inverse
    CDF from `uniform(seed, k, j)`; and how many were rejected by reason. Candidates come in
    batches (of at least `min_batch`); word k of the answer is the k-th accepted candidate,
    whatever n and the batches."""
    if w.hi - w.level >= 1 << 14:
        raise ValueError("words longer than 16383 symbols cannot be drawn")

    def choose(ids, j, level, states):
        p = rows(level, states)
        cum = np.cumsum(p, axis=1)
        x = uniform(seed, ids, j) * cum[:, -1]
        return (cum < x[:, None]).sum(axis=1).astype(np.int64)

    words: list[str] = []
    rejected: dict[str, int] = {}
    spent, k = 0, 0
    while len(words) < n:
        # Enough candidates for the words still missing at the rate seen so far (rejection can
        # make it low), within MAX_BATCH: which words come out does not depend on it.
        missing = n - len(words)
        rate = (len(words) + 1) / (k + 1)
        batch = int(min(max(min_batch, missing + missing // 8, 1.1 * missing / rate), MAX_BATCH))
        if k + batch > MAX_CANDIDATES:
            raise ValueError("too many candidates")
        ids = np.arange(k, k + batch, dtype=np.int64)
        k += batch
        d = walk(w, ids, choose)
        found = _words_text(w.alphabet, d.out, d.size, w.prefix)
        spent = _filter(found, d.draws.tolist(), words, n, accept, budget, rejected, spent)
    return words, rejected
