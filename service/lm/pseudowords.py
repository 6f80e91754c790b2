"""Matched pseudowords (SPEC section 8): for each target word, novel words of its length whose
OLD20 and per-symbol NLL lie within tolerances of the target's.

Exact by rejection, like every constraint: for target t of L symbols, candidates are the
model's words conditioned on length L (`ConstrainedSampler.chain`, temperature 1, every
symbol), independent draws k = 0, 1, 2, ... from `sampling.uniform(seed_t, k, j)`; a candidate
is kept if it is novel (no training word, no lexicon word, accent-folded), not a target nor a
word already kept anywhere in the answer, and within both tolerances. A kept word w therefore
comes with probability P(w) / P(those constraints), and the answer depends only on the seed,
the targets in order and the parameters.

Targets are taken in order. Each has its own seed (`target_seed`), the rejection budget in
symbols (of REQUEST_SYMBOLS times that for the whole request), and a share of the request's
lexicon work (`TARGET_SHARE`); a target that cannot be matched within them is listed under
`unmatched` with the reason, its words given back, and the others are answered.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.lm.constrained import EPSILON, ConstrainedSampler, old20_in_range, real_words
from service.lm.defaults import DEFAULT_NLL_TOLERANCE, DEFAULT_OLD20_TOLERANCE
from service.lm.lexicon import Allowance, Lexicon, LexiconBudgetExceeded, normalize
from service.lm.sampling import Accept, Walker, conditioned_words
from service.lm.score import Scorer

TARGET_SHARE = 10  # one target may do at most 1/TARGET_SHARE of the request's lexicon work
REQUEST_SYMBOLS = 10  # a request may draw this many times the rejection budget, all targets
CANDIDATES = 64  # candidates walked together, at least

_MASK64 = (1 << 64) - 1


def target_seed(seed: int, index: int) -> int:
    """The seed of the index-th target's candidates (SplitMix64 of the pair; 0 <= it < 2^63)."""
    z = (seed + (index + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


@dataclass(frozen=True)
class Figures:
    """A word's figures in a matched set."""

    word: str
    length: int  # symbols
    nll_per_symbol: float  # under the model, end included
    old20: float | None
    neighbours: tuple[str, ...]  # lexicon words at distance 1
    in_lexicon: bool
    zipf: float | None = None  # the highest Zipf frequency of the lexicon words it is taken for

    def json(self, target: bool = False) -> dict:
        out = {
            "word": self.word,
            "length": self.length,
            "nll_per_symbol": self.nll_per_symbol,
            "old20": self.old20,
            "neighbours": list(self.neighbours),
        }
        if target:
            out.update(in_lexicon=self.in_lexicon, zipf=self.zipf)
        return out


@dataclass(frozen=True)
class Item:
    target: Figures
    pseudowords: list[Figures]


@dataclass(frozen=True)
class Unmatched:
    target: str
    reason: str


@dataclass
class Matched:
    items: list[Item] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)

    def json(self, seed: int, model: str) -> dict:
        """The answer of POST /pseudowords (and `pseudo --json`)."""
        return {
            "items": [
                {
                    "target": item.target.json(target=True),
                    "pseudowords": [p.json() for p in item.pseudowords],
                }
                for item in self.items
            ],
            "unmatched": [{"target": u.target, "reason": u.reason} for u in self.unmatched],
            "summary": self.summary(),
            "seed": seed,
            "model": model,
        }

    def summary(self) -> dict:
        """Targets and pseudowords of the answered items side by side: count, and the mean and
        sample standard deviation (null below two) of length, OLD20 and NLL per symbol."""
        targets = [item.target for item in self.items]
        words = [w for item in self.items for w in item.pseudowords]
        return {"targets": _describe(targets), "pseudowords": _describe(words)}


def _describe(figures: Sequence[Figures]) -> dict:
    def stats(values: list[float]) -> dict:
        return {
            "mean": statistics.fmean(values) if values else None,
            "sd": statistics.stdev(values) if len(values) > 1 else None,
        }

    return {
        "count": len(figures),
        "length": stats([float(f.length) for f in figures]),
        "old20": stats([f.old20 for f in figures if f.old20 is not None]),
        "nll_per_symbol": stats([f.nll_per_symbol for f in figures]),
    }


class _OutOfWork(Exception):
    """The target's rejection budget ran out, after `found` pseudowords."""

    def __init__(self, found: int = 0):
        self.found = found


class _Candidates(Accept):
    """Which candidates of one target are kept (see the module docstring)."""

    def __init__(self, matcher: Matcher, target: Figures, used: set[str], allowance: Allowance):
        self.m, self.target, self.used, self.allowance = matcher, target, used, allowance
        self.nll_lo = target.nll_per_symbol - matcher.nll_tolerance - EPSILON
        self.nll_hi = target.nll_per_symbol + matcher.nll_tolerance + EPSILON
        self.kept: list[Figures] = []
        self._nll: dict[str, float] = {}

    def screen(self, words: list[str]) -> list[str | None]:
        m = self.m
        # Every candidate has the target's length: nll_per_symbol = -logprob / (L + 1).
        nlls = (-m.scorer.logprobs(words) / (self.target.length + 1)).tolist()
        within = [i for i, nll in enumerate(nlls) if self.nll_lo <= nll <= self.nll_hi]
        reasons: list[str | None] = ["nll"] * len(words)
        real = real_words([words[i] for i in within], m.training, m.lexicon)
        for i, is_real in zip(within, real, strict=True):
            reasons[i] = "novel" if is_real else None
            self._nll[words[i]] = nlls[i]
        return reasons

    def __call__(self, word: str) -> str | None:
        if word in self.used:
            return "unique"
        t, tolerance = self.target.old20, self.m.old20_tolerance
        nb = old20_in_range(self.allowance, self.m.lexicon, word, t - tolerance, t + tolerance)
        if nb is None:
            return "old20"
        self.used.add(word)
        self.kept.append(
            Figures(word, len(word), self._nll[word], nb.old20, nb.neighbours, in_lexicon=False)
        )
        return None


class Matcher:
    """Matched pseudowords from one model: its conditioned sampler, scorer and lexicon."""

    def __init__(
        self,
        constrained: ConstrainedSampler,
        scorer: Scorer,
        lexicon: Lexicon,
        old20_tolerance: float = DEFAULT_OLD20_TOLERANCE,
        nll_tolerance: float = DEFAULT_NLL_TOLERANCE,
    ):
        self.constrained, self.scorer, self.lexicon = constrained, scorer, lexicon
        self.lm = constrained.lm
        training = constrained.training
        self.training = training.set if training is not None else frozenset()
        self.old20_tolerance, self.nll_tolerance = old20_tolerance, nll_tolerance

    def match(
        self,
        targets: Sequence[str],
        per_target: int,
        seed: int,
        allowance: Allowance,
    ) -> Matched:
        """Each target's `per_target` pseudowords, or its reason under `unmatched`."""
        answer = Matched()
        normal = [normalize(t) for t in targets]
        used = set(normal)  # no pseudoword is a target, nor a word kept before
        share = None if allowance.limit is None else allowance.limit // TARGET_SHARE
        budget = self.constrained.rejection_budget
        symbols = REQUEST_SYMBOLS * budget  # left for the request
        for i, (given, word) in enumerate(zip(targets, normal, strict=True)):
            part = allowance.part(share)
            try:
                reason = self._unfit(word)
                if reason is None and symbols <= 0:
                    reason = "the request's rejection budget ran out"
                if reason is None:
                    target = self._figures(word, part)
                    limit = min(budget, symbols)
                    try:
                        item, spent = self._match_one(
                            target, per_target, target_seed(seed, i), used, part, limit
                        )
                    except _OutOfWork as e:
                        whose = "the request's" if limit < budget else "the"
                        item, spent = (
                            f"found {e.found} of {per_target} pseudowords before {whose} "
                            f"rejection budget ({limit:,} symbols drawn for rejected words) "
                            "ran out",
                            limit,
                        )
                    symbols -= spent
                    if isinstance(item, Item):
                        answer.items.append(item)
                    else:
                        answer.unmatched.append(Unmatched(given, item))
                else:
                    answer.unmatched.append(Unmatched(given, reason))
            except LexiconBudgetExceeded:
                whose = "the request's" if part.limit != share else "the target's share of the"
                answer.unmatched.append(Unmatched(given, f"{whose} lexicon work budget ran out"))
            allowance.add(part)
        return answer

    def _unfit(self, word: str) -> str | None:
        """Why a target cannot be matched before trying, or None."""
        if not word:
            return "an empty target"
        stoi = self.lm.stoi
        for pos, c in enumerate(word, 1):
            if c == "." or c not in stoi:
                return f"{c!r} (position {pos}) is not in the model's alphabet"
        if len(word) > self.constrained.max_word_len:
            return f"longer than the longest word ({self.constrained.max_word_len} symbols)"
        return None

    def _figures(self, word: str, allowance: Allowance) -> Figures:
        (s,) = self.scorer.score([word], lexical=True, allowance=allowance)
        x = s.lexical
        zipfs = [e.zipf for e in x.matches if e.zipf is not None]
        return Figures(
            word,
            len(word),
            s.nll_per_symbol,
            x.old20,
            x.neighbours,
            in_lexicon=x.in_lexicon,
            zipf=max(zipfs) if zipfs else None,
        )

    def _match_one(
        self,
        target: Figures,
        k: int,
        seed: int,
        used: set[str],
        allowance: Allowance,
        budget: int,
    ) -> tuple[Item | str, int]:
        """The target's item, or why not, and the symbols drawn for rejected words; raises
        `_OutOfWork` when they would pass `budget` (its words given back)."""
        L = target.length
        if target.old20 is None:
            return "the target has no OLD20 (the lexicon holds no other word)", 0
        c = self.constrained
        chain = c.chain(1.0, c.V, L, L)
        lm = self.lm
        if not chain.possible(lm.start, []):
            return f"the model makes no word of {L} symbols", 0
        accept = _Candidates(self, target, used, allowance)

        def exhausted(found: int, n: int) -> None:
            raise _OutOfWork

        walker = Walker(lm.next, lm.alphabet, lm.start, 0, L)
        try:
            _, rejected = conditioned_words(
                walker, chain.rows, seed, k, accept, (budget, exhausted), min_batch=CANDIDATES
            )
        except (_OutOfWork, LexiconBudgetExceeded) as e:
            used.difference_update(f.word for f in accept.kept)
            if isinstance(e, LexiconBudgetExceeded):
                raise
            raise _OutOfWork(len(accept.kept)) from None
        # Every candidate has L symbols, all drawn (a walk that reaches L draws no end).
        return Item(target, accept.kept), L * sum(rejected.values())
