"""How likely the model finds a word: the log-probability of each of its symbols given the
context the model conditions on, start and end included, and what follows from them
(per-symbol NLL, perplexity); and, for a model with a lexicon, where the word stands among
real words (SPEC section 8): whether the lexicon holds it, its OLD20, neighbours and nearest.

The words of a batch walk the model's states together, one vectorised step per symbol
position (`LanguageModel.walk`), and their log-probabilities are one gather from `logP`.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring  # a JSON string literal, non-ASCII kept as is

import numpy as np
from pydantic_core import to_json

from service.lm.lexicon import Allowance, Entry, LexiconSource
from service.lm.lm import EOS, LanguageModel, UnknownSymbolError

__all__ = ["Lexical", "Scorer", "UnknownSymbolError", "WordScore", "scores_json"]


@dataclass(frozen=True)
class Lexical:
    """A word against the model's lexicon."""

    in_lexicon: bool  # the lexicon holds it, accent-folded
    matches: list[Entry]  # the entries it is taken for, with their Zipf frequency
    old20: float | None  # mean distance to the 20 closest entries other than itself
    neighbours: tuple[str, ...]  # entries at distance 1
    nearest: tuple[tuple[str, int], ...]  # up to 5 closest, with their distances

    def json(self) -> dict:
        return {
            "in_lexicon": self.in_lexicon,
            "matches": [{"word": e.word, "zipf": e.zipf} for e in self.matches],
            "old20": self.old20,
            "neighbours": list(self.neighbours),
            "nearest": [{"word": w, "distance": d} for w, d in self.nearest],
        }


NO_LEXICON = {
    "in_lexicon": None,
    "matches": None,
    "old20": None,
    "neighbours": None,
    "nearest": None,
}


@dataclass
class WordScore:
    word: str  # NFC-normalised
    logprob: float  # sum of the natural log-probabilities of the word's symbols and end
    symbols: int  # the word's length; it has symbols + 1 predictions
    in_corpus: bool | None  # in the training word list (None: the model has none)
    ix: list[int]  # each prediction, from the first symbol to the end, as bigram a * V + b
    states: list[int]  # the state each prediction is made from
    logprobs: list[float]  # log P(symbol | state) of each
    scorer: Scorer  # names and JSON fragments by bigram and state
    lexical: Lexical | None = None  # against the lexicon (None: not asked, or no lexicon)

    @property
    def bigrams(self) -> list[tuple[str, float]]:
        """("ab", log P(b | context)) for each symbol and the end, in order."""
        names = self.scorer.names
        return [(names[i], v) for i, v in zip(self.ix, self.logprobs, strict=True)]

    @property
    def contexts(self) -> list[str]:
        """The context each prediction conditions on (its state's)."""
        return [self.scorer.lm.contexts[s] for s in self.states]

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


def scores_json(scores: Sequence[WordScore], bigrams: bool = True) -> list[str]:
    """Each score as the JSON object `GET /score` answers (and `score --json` prints):
    {"word", "logprob", "symbols", "nll_per_symbol", "perplexity", "in_corpus", "in_lexicon",
    "matches": [{"word", "zipf"}, ...], "old20", "neighbours", "nearest": [{"word",
    "distance"}, ...], "bigrams": [{"bigram", "context", "logprob"}, ...]}, `context` being
    what the model conditions on (the previous symbol for a bigram model); the lexicon's
    fields are null for a model without one. Without `bigrams`, the object stops before them
    (`/sample?stats=true`).

    Written directly, each bigram entry from a prepared beginning and its number: a thousand
    words have some ten thousand bigrams, and a generic encoder takes several times longer
    over them than the scoring does. The numbers are always finite here."""
    if not scores:
        return []
    scorer = scores[0].scorer
    fragments, contexts = scorer.fragments, scorer.context_json(s.states for s in scores)
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
        corpus = "null" if s.in_corpus is None else "true" if s.in_corpus else "false"
        lexical = to_json(NO_LEXICON if s.lexical is None else s.lexical.json()).decode()
        head = (
            f'{{"word":{encode_basestring(s.word)},"logprob":{logprob},"symbols":{s.symbols},'
            f'"nll_per_symbol":{nll},"perplexity":{perplexity},"in_corpus":{corpus},'
            f"{lexical[1:-1]}"
        )
        if not bigrams:
            out.append(head + "}")
            continue
        listed = "},".join(
            [
                f"{fragments[i]}{contexts[st]}{v}"
                for i, st, v in zip(s.ix, s.states, bigram_numbers[k : k + n], strict=True)
            ]
        )
        k += n
        out.append(f'{head},"bigrams":[{listed}}}]}}')
    return out


class Scorer:
    """Scores words with a model (`lm`); `words` is the training word list (None for a model
    file without one), `lexicon` the model's lexicon (None or an empty source: none) and
    `lexicon_budget` the lexicon work one call may do (`lexicon.Allowance`)."""

    def __init__(
        self,
        lm: LanguageModel,
        words: Sequence[str] | None,
        lexicon: LexiconSource | None = None,
        lexicon_budget: int | None = None,
    ):
        self.lm = lm
        self.lexicon_source = lexicon
        self.lexicon_budget = lexicon_budget
        self.alphabet = lm.alphabet
        self.stoi = {c: i for i, c in enumerate(self.alphabet) if c != EOS}
        self.words = None if words is None else frozenset(words)
        V = self.V = lm.V
        self.names = [a + b for a in self.alphabet for b in self.alphabet]  # index a * V + b
        self.fragments = [f'{{"bigram":{encode_basestring(n)},"context":' for n in self.names]
        self._context_json: dict[int, str] = {}  # state -> its JSON, made when first used
        self._logP = lm.logP.ravel()
        self._V = V

    def context_json(self, states) -> dict[int, str]:
        """The JSON of the contexts of the states in `states` (iterables of state ids), each
        followed by the logprob key."""
        known, names = self._context_json, self.lm.contexts
        for group in states:
            for s in group:
                if s not in known:
                    known[s] = f'{encode_basestring(names[s])},"logprob":'
        return known

    def _name_error(self, words: list[str]) -> None:
        for i, w in enumerate(words):
            if not w:
                raise UnknownSymbolError(i, w, None, None)
            for pos, c in enumerate(w, 1):
                if c not in self.stoi:
                    raise UnknownSymbolError(i, w, c, pos)
        raise AssertionError("no bad symbol found")  # pragma: no cover - encode found one

    def score(
        self, words: Sequence[str], lexical: bool = False, allowance: Allowance | None = None
    ) -> list[WordScore]:
        """One `WordScore` per word, in order; `UnknownSymbolError` names the first bad word,
        symbol and position. With `lexical`, each word's figures against the lexicon too (if
        the model has one), within `allowance` (else the scorer's budget):
        `LexiconBudgetExceeded` when it runs out."""
        normal = [unicodedata.normalize("NFC", w) for w in words]
        codes, lengths, valid, st, lp, totals = self._walk(normal)
        V = self._V
        prev = np.zeros_like(codes)
        prev[:, 1:] = codes[:, :-1]
        flat = (prev[valid] * V + codes[valid]).tolist()
        sizes = lengths + 1  # predictions per word
        ends = np.cumsum(sizes)
        totals = totals.tolist()
        st, lp = st.tolist(), lp.tolist()
        known = self.words
        out, start = [], 0
        for w, size, end, s in zip(normal, sizes.tolist(), ends.tolist(), totals, strict=True):
            in_corpus = None if known is None else w in known
            out.append(
                WordScore(
                    w, s, size - 1, in_corpus, flat[start:end], st[start:end], lp[start:end], self
                )
            )
            start = end
        if lexical:
            self.add_lexical(out, allowance)
        return out

    def logprobs(self, words: Sequence[str]) -> np.ndarray:
        """(len(words),) float64: each word's `logprob`, the same numbers as `score`'s, without
        the rest (for many candidate words: NFC, as the model writes them)."""
        return self._walk(words)[-1]

    def _walk(self, words: Sequence[str]):
        """The words' codes, lengths, valid positions, states, symbol log-probabilities (at the
        valid positions, word after word) and totals."""
        codes, lengths, kept = self.lm.encode_words(words)
        if not kept.all() or not lengths.all():
            self._name_error(list(words))
        states = self.lm.walk(codes[:, :-1], lengths)
        valid = np.arange(codes.shape[1])[None, :] <= lengths[:, None]
        st = states[valid]
        lp = self._logP[st * self._V + codes[valid]]
        sizes = lengths + 1  # predictions per word
        totals = np.add.reduceat(lp, np.cumsum(sizes) - sizes)
        return codes, lengths, valid, st, lp, totals

    def add_lexical(self, scores: list[WordScore], allowance: Allowance | None = None) -> None:
        """Fill each score's `lexical` (nothing for a model without a lexicon)."""
        lexicon = self.lexicon_source.get() if self.lexicon_source else None
        if lexicon is None:
            return
        if allowance is None:
            allowance = Allowance(self.lexicon_budget)
        done: dict[str, Lexical] = {}
        for s in scores:
            if s.word not in done:
                nb = allowance.neighbourhood(lexicon, s.word)
                matches = lexicon.lookup(s.word)
                done[s.word] = Lexical(bool(matches), matches, nb.old20, nb.neighbours, nb.nearest)
            s.lexical = done[s.word]
