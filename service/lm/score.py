"""How likely the model finds a word: the log-probabilities of its bigrams, start and end
included, and what follows from them (per-symbol NLL, perplexity).

One vectorised gather over the model's log-probability table `logP` (V, V) float64 (from
`probabilities()`: log_softmax(W) for the neural model) for a whole batch of words.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.lm.model import EOS


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


@dataclass
class WordScore:
    word: str  # NFC-normalised
    logprob: float  # sum of the natural log-probabilities of the word's bigrams
    symbols: int  # the word's length; it has symbols + 1 bigrams
    in_corpus: bool | None  # in the training word list (None: the model has none)
    bigrams: list[tuple[str, float]]  # ("ab", log P(b | a)), from ".x" to "y."

    @property
    def nll_per_symbol(self) -> float:
        return -self.logprob / (self.symbols + 1)

    def as_dict(self) -> dict:
        """The score as `GET /score` and `civil-words score --json` write it."""
        return {
            "word": self.word,
            "logprob": self.logprob,
            "symbols": self.symbols,
            "nll_per_symbol": self.nll_per_symbol,
            "perplexity": self.perplexity,
            "in_corpus": self.in_corpus,
            "bigrams": [{"bigram": b, "logprob": v} for b, v in self.bigrams],
        }

    @property
    def perplexity(self) -> float | None:
        """exp(nll_per_symbol), or None past the largest double."""
        try:
            return math.exp(self.nll_per_symbol)
        except OverflowError:
            return None


class Scorer:
    """Scores words with a model's log-probabilities `logP` (V, V) over `alphabet`; `words` is
    the training word list (None for a model file without one)."""

    def __init__(self, logP: np.ndarray, alphabet: Sequence[str], words: Sequence[str] | None):
        self.logP = np.ascontiguousarray(logP, dtype=np.float64)
        self.alphabet = tuple(alphabet)
        self.stoi = {c: i for i, c in enumerate(self.alphabet) if c != EOS}
        self.words = None if words is None else frozenset(words)

    def encode(self, words: Sequence[str]) -> tuple[list[str], list[list[int]]]:
        """NFC words and their symbol indices; `UnknownSymbolError` names the first bad one."""
        normal, codes = [], []
        stoi = self.stoi
        for i, word in enumerate(words):
            w = unicodedata.normalize("NFC", word)
            if not w:
                raise UnknownSymbolError(i, w, None, None)
            try:
                codes.append([stoi[c] for c in w])
            except KeyError:
                pos = next(p for p, c in enumerate(w) if c not in stoi)
                raise UnknownSymbolError(i, w, w[pos], pos + 1) from None
            normal.append(w)
        return normal, codes

    def score(self, words: Sequence[str]) -> list[WordScore]:
        """One `WordScore` per word, in order."""
        normal, codes = self.encode(words)
        sizes = np.array([len(c) + 1 for c in codes])  # bigrams per word
        xs = np.fromiter((x for c in codes for x in (0, *c)), dtype=np.int64, count=sizes.sum())
        ys = np.fromiter((y for c in codes for y in (*c, 0)), dtype=np.int64, count=sizes.sum())
        lp = self.logP[xs, ys]
        ends = np.cumsum(sizes)
        totals = np.add.reduceat(lp, ends - sizes).tolist()
        lp, xs, ys = lp.tolist(), xs.tolist(), ys.tolist()
        a = self.alphabet
        out, start = [], 0
        for w, size, end, total in zip(normal, sizes.tolist(), ends.tolist(), totals, strict=True):
            bigrams = [
                (a[x] + a[y], v)
                for x, y, v in zip(xs[start:end], ys[start:end], lp[start:end], strict=True)
            ]
            in_corpus = None if self.words is None else w in self.words
            out.append(WordScore(w, total, size - 1, in_corpus, bigrams))
            start = end
        return out
