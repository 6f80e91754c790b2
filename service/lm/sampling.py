"""The one sampling loop: words walked on a model's states from a seeded exponential stream.

`torch.multinomial(p, 1)` on the CPU is `argmax(p / e)` where `e` holds one float32
`exponential_` draw per symbol from the generator. Drawing those values for many symbols in
one call consumes the generator's stream in the same order, so a walk over pre-drawn rows,
`c <- argmax(row(state) / E[t])`, gives the very words of the reference loop
`c = torch.multinomial(P[state], 1, generator=g)` without one torch call per symbol.

A walk is sequential: word k + 1 starts at the row after word k ends. To avoid a Python step
per symbol, every row of a block of draws is taken as the start of a word at once, and all
those candidate words are walked together, one vectorised step per symbol position; then the
real words are read off by chaining each word's end to the next one's start. Each candidate
walk is the serial walk from that row, so the words are exactly the serial loop's; the block
is walked about (mean word length) times over, in numpy rather than in Python.

Shapes: V symbols (index 0, `.`, ends a word), S states.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from service.lm.lm import LanguageModel

CHUNK_DRAWS = 1 << 18  # exponential draws (rows x V) made at once at most: bounds memory
TINY = np.float32(np.finfo(np.float32).tiny)  # stands for an exponential draw of exactly 0
DEFAULT_MAX_WORD_LEN = 256  # unconstrained sampling cuts a word at this many symbols

# rows(levels, states) -> (A, V): next-symbol weights of A walks at (symbols so far, state).
Rows = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Walker:
    """How words are walked: the weights of each step, the states, where a word starts.

    `rows` gives weights of `dtype` (float32 for the reference loop's own table, which must
    divide as it does; float64 for conditioned walks, whose draws are `clamp`ed so that only
    a symbol of positive weight can win). A word starts at `state` with `level` symbols
    already given (`prefix`) and ends at `.` or at `hi` symbols, where no draw is made."""

    rows: Rows
    next: np.ndarray  # (S, V) int32
    alphabet: tuple[str, ...]
    state: int
    level: int
    hi: int
    clamp: bool
    prefix: str = ""


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
    return [prefix + w for w in words] if prefix else words


class Drawn:
    """A block of draws walked from every row: each candidate word's symbols, size, and the
    row where the next word starts (`complete` False where the block ran out of rows)."""

    def __init__(self, w: Walker, E: np.ndarray):
        R = self.R = len(E)
        out = np.zeros((R, 16), dtype=np.int32)
        size = np.zeros(R, dtype=np.int64)
        next_row = np.zeros(R, dtype=np.int64)
        complete = np.zeros(R, dtype=bool)
        # The active walks, compacted: their start row, state, level and current row.
        ids = np.arange(R, dtype=np.int64)
        st = np.full(R, w.state, dtype=np.int64)
        lv = np.full(R, w.level, dtype=np.int64)
        ps = ids.copy()
        nxt, rows, hi = w.next, w.rows, w.hi
        j = 0  # symbols drawn so far by every active walk
        while ids.size:
            if lv[0] >= hi:  # all active walks are at the same level: they end here
                next_row[ids] = ps
                complete[ids] = True
                break
            inside = ps < R  # the others need rows past the block: incomplete
            if not inside.all():
                ids, st, lv, ps = ids[inside], st[inside], lv[inside], ps[inside]
                if not ids.size:
                    break
            c = (rows(lv, st) / E[ps]).argmax(axis=1)
            ended = c == 0
            if ended.any():
                done = ids[ended]
                next_row[done] = ps[ended] + 1
                complete[done] = True
                go = ~ended
                ids, st, lv, ps, c = ids[go], st[go], lv[go], ps[go], c[go]
            if j == out.shape[1]:
                out = np.concatenate([out, np.zeros_like(out)], axis=1)
            out[ids, j] = c
            size[ids] += 1
            st = nxt[st, c]
            lv += 1
            ps += 1
            j += 1
        self.out, self.size, self.next_row, self.complete = out, size, next_row, complete


def draw_words(
    w: Walker,
    g: torch.Generator,
    n: int,
    steps_per_word: float,
    accept: Callable[[str], str | None] | None = None,
    budget: tuple[int, Callable[[int, int], None]] | None = None,
) -> tuple[list[str], dict[str, int]]:
    """n accepted words from the generator's stream (the reference loop's words when the
    rows are its table), and how many were rejected by reason.

    `accept(word)` gives the reason a word is rejected, or None; `budget` = (most symbols
    drawn for rejected words, called with (found, n) when they are spent). Draws are sized
    from `steps_per_word` (rows per word, roughly: only the block sizes depend on it)."""
    V = len(w.alphabet)
    if w.level >= w.hi:  # the prefix is the whole word: nothing to draw
        word = w.prefix
        words = []
        rejected: dict[str, int] = {}
        for _ in range(n):
            reason = None if accept is None else accept(word)
            if reason is None:
                words.append(word)
            else:
                rejected[reason] = rejected.get(reason, 0) + 1
                if budget is not None:
                    budget[1](len(words), n)
        return words, rejected
    max_rows = max(16, CHUNK_DRAWS // V)
    words: list[str] = []
    rejected = {}
    spent = 0
    carry = np.zeros((0, V), dtype=np.float32)
    while len(words) < n:
        need = (n - len(words)) * steps_per_word * 1.1 + 8
        fresh = torch.empty((min(max_rows, max(16, int(need))), V))
        fresh = fresh.exponential_(1, generator=g).numpy()
        if w.clamp:
            np.maximum(fresh, TINY, out=fresh)
        E = np.concatenate([carry, fresh]) if len(carry) else fresh
        d = Drawn(w, E)
        chain, r = [], 0
        while r < d.R and d.complete[r] and len(words) + len(chain) < n:
            chain.append(r)
            r = int(d.next_row[r])
            if accept is not None and len(chain) >= n - len(words):
                break  # check these before walking further
        carry = E[r:]
        if not chain:
            continue
        rows = np.array(chain)
        found = _words_text(w.alphabet, d.out[rows], d.size[rows], w.prefix)
        if accept is None:
            words += found
            continue
        steps = d.next_row[rows] - rows
        for word, cost in zip(found, steps.tolist(), strict=True):
            if len(words) == n:
                break
            reason = accept(word)
            if reason is None:
                words.append(word)
                continue
            rejected[reason] = rejected.get(reason, 0) + 1
            spent += cost
            if budget is not None and spent > budget[0]:
                budget[1](len(words), n)
    return words, rejected


class Sampler:
    """The reference loop's words of a model, fast: `torch.multinomial(P[state], 1)` from a
    fresh `Generator().manual_seed(seed)`, state after state (the notebook's loop for its
    model)."""

    def __init__(self, lm: LanguageModel):
        self.lm = lm
        self.alphabet = lm.alphabet
        self.stoi = lm.stoi
        self.mean_steps = lm.expected_steps()
        P = lm.P
        self._rows = lambda _levels, states: P[states]

    def walker(self, cut_at: int) -> Walker:
        return Walker(self._rows, self.lm.next, self.alphabet, self.lm.start, 0, cut_at, False)

    @torch.inference_mode()
    def sample(self, n: int, seed: int, cut_at: int = DEFAULT_MAX_WORD_LEN) -> list[str]:
        """`n` words without the trailing `.`; a word that reaches `cut_at` symbols is cut
        there and the next word starts (only then can they differ from the reference loop,
        which would not stop)."""
        g = torch.Generator().manual_seed(seed)
        return draw_words(self.walker(cut_at), g, n, self.mean_steps)[0]
