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
from json.encoder import encode_basestring  # a JSON string literal, non-ASCII kept as is

import numpy as np
from pydantic_core import to_json

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
    ix: list[int]  # its bigrams, from ".x" to "y.", as flat indices a * V + b
    logprobs: list[float]  # log P(b | a) of each
    names: list[str]  # the scorer's bigram names by flat index ("ab")
    fragments: list[str]  # the scorer's JSON beginnings of a bigram entry, by flat index

    @property
    def bigrams(self) -> list[tuple[str, float]]:
        """("ab", log P(b | a)) for each bigram, in order."""
        return [(self.names[i], v) for i, v in zip(self.ix, self.logprobs, strict=True)]

    @property
    def nll_per_symbol(self) -> float:
        return -self.logprob / (self.symbols + 1)

    @property
    def perplexity(self) -> float | None:
        """exp(nll_per_symbol), or None past the largest double."""
        try:
            return math.exp(self.nll_per_symbol)
        except OverflowError:
            return None


def _numbers(values: list) -> list[str]:
    """Each float (or None) as JSON, written in one call: the shortest text that reads back
    as the same double (pydantic_core's writer, far faster than repr one by one)."""
    return to_json(values).decode()[1:-1].split(",") if values else []


def scores_json(scores: Sequence[WordScore]) -> list[str]:
    """Each score as the JSON object `GET /score` answers (and `score --json` prints):
    {"word", "logprob", "symbols", "nll_per_symbol", "perplexity", "in_corpus",
    "bigrams": [{"bigram", "logprob"}, ...]}.

    Written directly, each bigram entry from a prepared beginning and its number: a thousand
    words have some ten thousand bigrams, and a generic encoder takes several times longer
    over them than the scoring does. The numbers are always finite here."""
    if not scores:
        return []
    fragments = scores[0].fragments
    bigram_numbers = _numbers([v for s in scores for v in s.logprobs])
    heads = zip(
        _numbers([s.logprob for s in scores]),
        _numbers([s.nll_per_symbol for s in scores]),
        _numbers([s.perplexity for s in scores]),
        strict=True,
    )
    out, k = [], 0
    for s, (logprob, nll, perplexity) in zip(scores, heads, strict=True):
        n = len(s.ix)
        bigrams = "},".join(
            [fragments[i] + v for i, v in zip(s.ix, bigram_numbers[k : k + n], strict=True)]
        )
        k += n
        corpus = "null" if s.in_corpus is None else "true" if s.in_corpus else "false"
        out.append(
            f'{{"word":{encode_basestring(s.word)},"logprob":{logprob},"symbols":{s.symbols},'
            f'"nll_per_symbol":{nll},"perplexity":{perplexity},"in_corpus":{corpus},'
            f'"bigrams":[{bigrams}}}]}}'
        )
    return out


class Scorer:
    """Scores words with a model's log-probabilities `logP` (V, V) over `alphabet`; `words` is
    the training word list (None for a model file without one)."""

    def __init__(self, logP: np.ndarray, alphabet: Sequence[str], words: Sequence[str] | None):
        self.logP = np.ascontiguousarray(logP, dtype=np.float64)
        self.alphabet = tuple(alphabet)
        self.stoi = {c: i for i, c in enumerate(self.alphabet) if c != EOS}
        self.words = None if words is None else frozenset(words)
        V = len(self.alphabet)
        self.names = [a + b for a in self.alphabet for b in self.alphabet]  # index a * V + b
        self.fragments = [f'{{"bigram":{encode_basestring(n)},"logprob":' for n in self.names]
        self.V = V
        # Code point -> symbol index (-1: not in the alphabet; the last entry stands for every
        # code point beyond the alphabet's largest).
        self._lut = np.full(max(ord(c) for c in self.alphabet) + 2, -1, dtype=np.int64)
        for i, c in enumerate(self.alphabet):
            self._lut[ord(c)] = i

    def encode(self, words: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """NFC words and the symbol indices of ".w1.w2. ... wn." (int64): one word's bigrams
        then the next's, each `.` between two words ending one and starting the other.
        `UnknownSymbolError` names the first bad word, symbol and position."""
        normal = [unicodedata.normalize("NFC", w) for w in words]
        text = "." + ".".join(normal) + "."
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        ix = self._lut[np.minimum(points, len(self._lut) - 1)]
        # No empty word, every symbol known, and the only markers those put between words.
        if not all(normal) or (ix < 0).any() or np.count_nonzero(ix == 0) != len(normal) + 1:
            self._name_error(normal)
        return normal, ix.astype(np.int64)

    def _name_error(self, words: list[str]) -> None:
        for i, w in enumerate(words):
            if not w:
                raise UnknownSymbolError(i, w, None, None)
            for pos, c in enumerate(w, 1):
                if c not in self.stoi:
                    raise UnknownSymbolError(i, w, c, pos)
        raise AssertionError("no bad symbol found")  # pragma: no cover - encode found one

    def score(self, words: Sequence[str]) -> list[WordScore]:
        """One `WordScore` per word, in order."""
        normal, codes = self.encode(words)
        flat = codes[:-1] * self.V + codes[1:]
        lp = self.logP.ravel()[flat]
        sizes = np.array([len(w) + 1 for w in normal])  # bigrams per word
        ends = np.cumsum(sizes)
        totals = np.add.reduceat(lp, ends - sizes).tolist()
        flat, lp = flat.tolist(), lp.tolist()
        names, fragments, known = self.names, self.fragments, self.words
        out, start = [], 0
        for w, size, end, s in zip(normal, sizes.tolist(), ends.tolist(), totals, strict=True):
            in_corpus = None if known is None else w in known
            out.append(
                WordScore(
                    w, s, size - 1, in_corpus, flat[start:end], lp[start:end], names, fragments
                )
            )
            start = end
        return out
