"""The one language-model interface every consumer uses: states and next-symbol tables.

A model is a finite set of states, one of them the start. From a state s, the next symbol c
has log-probability `logP[s, c]`, and the walk moves to `next[s, c]` (the end `.`, c = 0, ends
the word; `next[s, 0]` is the start, where the next word begins). The sampler, the constrained
walk, the scorer, `/next` and the measures ask only this; nothing else knows how a model makes
its states. The notebook's bigram is the case S = V, the state being the last symbol
(`LanguageModel.bigram`); a model of order N has its seen contexts as states (`service.lm.ngram`).

Shapes: S states, V symbols (index 0 is `.`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from service.lm.corpus import EOS


class UnknownSymbolError(ValueError):
    """A word that cannot be scored: empty, or holding a symbol outside the alphabet."""

    def __init__(self, index: int, word: str, symbol: str | None, position: int | None):
        self.index = index  # the word's place in the batch (0 for a single word)
        self.word = word
        self.symbol = symbol  # None for an empty word
        self.position = position  # 1-based position of the symbol in the word
        if symbol is None:
            reason = "an empty word has no symbols to score"
        elif symbol == EOS:
            reason = f"{word!r}: '.' (position {position}) is the end marker"
        else:
            reason = f"{word!r}: {symbol!r} (position {position}) is not in the model's alphabet"
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, eq=False)
class LanguageModel:
    alphabet: tuple[str, ...]  # index order, `.` first
    order: int  # N: the next symbol depends on the last N - 1 symbols
    logP: np.ndarray  # (S, V) float64: log P(c | state)
    P: np.ndarray  # (S, V) float32: the rows the reference loop draws from (`Sampler`)
    next: np.ndarray  # (S, V) int32: the state after symbol c; next[:, 0] is the start
    start: int  # the state of a word's beginning
    contexts: Sequence[str]  # (S,) the context each state conditions on ('.' pads the start)
    counts: np.ndarray  # (S, V) int64: the training symbols counted at their state

    def __post_init__(self):
        for a in (self.logP, self.P, self.next, self.counts):
            a.setflags(write=False)  # shared by threads and forked workers: read only

    @property
    def V(self) -> int:
        return len(self.alphabet)

    @property
    def S(self) -> int:
        return self.logP.shape[0]

    @classmethod
    def bigram(
        cls, P: np.ndarray, logP: np.ndarray, alphabet: Sequence[str], counts: np.ndarray
    ) -> LanguageModel:
        """The notebook's model: the state is the last symbol (`.` at the start); `P` (V, V)
        float32 is the table its loop draws from, `logP` (V, V) float64 the same
        distribution's logs, `counts` (V, V) the bigram counts."""
        V = len(alphabet)
        nxt = np.broadcast_to(np.arange(V, dtype=np.int32), (V, V)).copy()
        return cls(
            alphabet=tuple(alphabet),
            order=2,
            logP=np.ascontiguousarray(logP, dtype=np.float64),
            P=np.ascontiguousarray(P, dtype=np.float32),
            next=nxt,
            start=0,
            contexts=tuple(alphabet),
            counts=np.ascontiguousarray(counts, dtype=np.int64),
        )

    @classmethod
    def from_rows(
        cls,
        alphabet: Sequence[str],
        order: int,
        probs: np.ndarray,
        next_state: np.ndarray,
        start: int,
        contexts: Sequence[str],
        counts: np.ndarray,
    ) -> LanguageModel:
        """A model from its next-symbol probabilities `probs` (S, V) float64, each row
        summing to 1; its reference loop draws from them rounded to float32."""
        with np.errstate(divide="ignore"):
            logP = np.log(probs)
        return cls(
            alphabet=tuple(alphabet),
            order=order,
            logP=logP,
            P=probs.astype(np.float32),
            next=np.ascontiguousarray(next_state, dtype=np.int32),
            start=int(start),
            contexts=contexts,
            counts=np.ascontiguousarray(counts, dtype=np.int64),
        )

    # -- walking -------------------------------------------------------------------------

    def codes(self, text: str) -> list[int]:
        """The symbol indices of a word (NFC); `UnknownSymbolError` names a bad symbol."""
        stoi = self.stoi
        word = unicodedata.normalize("NFC", text)
        out = []
        for pos, c in enumerate(word, 1):
            i = stoi.get(c, 0)
            if i == 0:
                raise UnknownSymbolError(0, word, c, pos)
            out.append(i)
        return out

    @cached_property
    def stoi(self) -> dict[str, int]:
        """Symbol -> index (made once; not to be changed)."""
        return {c: i for i, c in enumerate(self.alphabet)}

    def state_after(self, codes: Sequence[int], state: int | None = None) -> int:
        """The state after the symbols `codes` (no `.`), from `state` (default: the start)."""
        s = self.start if state is None else state
        nxt = self.next
        for c in codes:
            s = int(nxt[s, c])
        return s

    def walk(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """States along many words at once: `codes` (W, L) symbol indices padded with 0 after
        each word's `lengths[i]` symbols; returns (W, L + 1) int64, column j the state before
        symbol j (column lengths[i] is the state the end `.` is drawn from)."""
        W, L = codes.shape
        states = np.empty((W, L + 1), dtype=np.int64)
        states[:, 0] = self.start
        nxt = self.next
        for j in range(L):
            states[:, j + 1] = nxt[states[:, j], codes[:, j]]
        return states

    def encode_words(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Words as a padded (W, L + 1) int64 matrix of symbol indices (each word's end `.`,
        0, after its symbols), their lengths (W,), and which words were kept (W_all,) bool:
        a word holding a symbol outside the alphabet (or `.`) is left out."""
        lut = self._lut
        text = "\n".join(words)
        pts = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        sep = pts == ord("\n")
        if np.count_nonzero(sep) != max(len(words) - 1, 0):  # a word holds a line break
            bad = ["\n" in w for w in words]
            kept_words = [w for w, b in zip(words, bad, strict=True) if not b]
            codes, lengths, kept = self.encode_words(kept_words)
            every = np.zeros(len(words), dtype=bool)
            every[np.flatnonzero(~np.array(bad, dtype=bool))] = kept
            return codes, lengths, every
        ix = lut[np.minimum(pts, len(lut) - 1)]
        owner = np.cumsum(sep) - sep  # each position's word
        all_lengths = np.bincount(owner[~sep], minlength=len(words)) if len(words) else owner
        bad_word = np.zeros(len(words), dtype=bool)
        bad_word[owner[(ix <= 0) & ~sep]] = True
        kept = ~bad_word
        starts = np.concatenate([[0], np.flatnonzero(sep) + 1]) if len(words) else sep
        pos = np.arange(len(pts)) - starts[owner] if len(pts) else owner
        keep_pos = ~sep & kept[owner] if len(pts) else sep
        new_index = np.cumsum(kept) - 1
        lengths = all_lengths[kept]
        L = int(lengths.max(initial=0))
        codes = np.zeros((int(kept.sum()), L + 1), dtype=np.int64)
        codes[new_index[owner[keep_pos]], pos[keep_pos]] = ix[keep_pos]
        return codes, lengths.astype(np.int64), kept

    @cached_property
    def _lut(self) -> np.ndarray:
        """Code point -> symbol index (-1: none; `.` maps to 0); the last entry stands for
        every code point beyond the alphabet's largest."""
        lut = np.full(max(ord(c) for c in self.alphabet) + 2, -1, dtype=np.int64)
        for i, c in enumerate(self.alphabet):
            lut[ord(c)] = i
        return lut

    def transition_counts(
        self, words: Sequence[str], weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, int, int]:
        """(S, V) int64 counts of the (state, next symbol) pairs of the words, ends included;
        the words counted, and those skipped (a symbol outside the alphabet). `weights` (one
        int per word): how many times each word counts (default once)."""
        codes, lengths, kept = self.encode_words(words)
        w = np.ones(len(words), dtype=np.int64) if weights is None else np.asarray(weights)
        counts = np.zeros(self.S * self.V, dtype=np.int64)
        if len(lengths):
            states = self.walk(codes[:, :-1], lengths)
            valid = np.arange(codes.shape[1])[None, :] <= lengths[:, None]
            flat = states[valid] * self.V + codes[valid]
            times = np.broadcast_to(w[kept][:, None], valid.shape)[valid]
            counts += (
                np.bincount(flat, weights=times, minlength=counts.size).round().astype(np.int64)
            )
        return counts.reshape(self.S, self.V), int(w[kept].sum()), int(w[~kept].sum())

    def nll(self, words: Sequence[str]) -> tuple[float | None, int, int, int]:
        """Mean NLL per predicted symbol (ends included) of the words under the model, the
        number of predictions, of words scored and of words skipped."""
        C, scored, skipped = self.transition_counts(words)
        return mean_nll(self.logP, C), int(C.sum()), scored, skipped

    def expected_steps(self, limit: int = 64) -> float:
        """Symbols drawn per word (the end included), roughly: it only sizes random draws. The
        training words' mean when the model has counts; else the model's own expectation from
        the start, counting at most `limit` and stopping when all but 1e-3 of words ended."""
        ends = int(self.counts[:, 0].sum())
        if ends > 0:
            return float(self.counts.sum()) / ends
        d = np.zeros(self.S)
        d[self.start] = 1.0
        P = self.P.astype(np.float64)
        inner = (P / P.sum(axis=1, keepdims=True))[:, 1:]
        targets = self.next[:, 1:].ravel()
        steps = 0.0
        for _ in range(limit):
            alive = d.sum()
            if alive < 1e-3:
                break
            steps += alive
            d = np.bincount(targets, weights=(d[:, None] * inner).ravel(), minlength=self.S)
        return max(1.0, steps)


def mean_nll(logP: np.ndarray, counts: np.ndarray) -> float | None:
    """Mean negative log-likelihood of the transitions counted in `counts` (S, V) under
    `logP` (S, V); None when nothing is counted."""
    C = np.asarray(counts, dtype=np.float64)
    total = C.sum()
    if total <= 0:
        return None
    used = C > 0
    return float(-(C[used] * logP[used]).sum() / total)


__all__ = ["EOS", "LanguageModel", "UnknownSymbolError", "mean_nll"]
