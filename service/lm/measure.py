"""Measuring models: mean NLL on a word list, where sampled words come from, two models compared.

What `civil-words eval` and `civil-words compare` print; plain torch/numpy, no web code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.lm.corpus import WordStream, count_known
from service.lm.model import (
    DEFAULT_MAX_WORD_LEN,
    DEFAULT_SEED,
    Sampler,
    mean_nll,
)
from service.lm.store import ModelFile, ModelFileError


class IncomparableModels(ValueError):
    """Two models that cannot be compared (their alphabets differ)."""


@dataclass(frozen=True)
class Evaluation:
    """A model's figures on a word list (`civil-words eval --words`)."""

    nll: float | None  # mean NLL of the scored words' bigrams (None: no word scored)
    perplexity: float | None  # exp(nll)
    examples: int  # bigrams scored, the `.` markers included
    words: int  # words scored
    skipped: int  # words skipped: a symbol outside the model's alphabet


def evaluate(m: ModelFile, words: str | Path) -> Evaluation:
    """The model's mean NLL on a word list, read in one streaming pass (checked as for
    training); words holding a symbol outside the alphabet are skipped and counted."""
    known = count_known(((chunk.text, None) for chunk in WordStream(words)), m.alphabet)
    nll = mean_nll(m.probabilities()[1], known.counts)
    return Evaluation(
        nll=nll,
        perplexity=None if nll is None else math.exp(nll),
        examples=int(known.counts.sum()),
        words=known.words,
        skipped=known.skipped,
    )


@dataclass(frozen=True)
class Origins:
    """Where n sampled words come from (`civil-words eval --samples`)."""

    n: int  # words sampled
    seed: int  # the sampling seed
    training: int  # in the model's training word list
    heldout: int  # not in the training list, but in the held-out list
    new: int  # in neither


def sample_origins(
    m: ModelFile, n: int, seed: int = DEFAULT_SEED, cut_at: int = DEFAULT_MAX_WORD_LEN
) -> Origins:
    """Sample n words (the reference loop's, for the seed) and sort them by origin."""
    if m.words is None:
        raise ModelFileError(m.path, "holds no word list (a format-1 file): retrain it")
    training, heldout = set(m.words), set(m.heldout or ())
    words = Sampler(m.probabilities()[0], m.alphabet).sample(n, seed, cut_at)
    in_training = sum(w in training for w in words)
    in_heldout = sum(w not in training and w in heldout for w in words)
    return Origins(n, seed, in_training, in_heldout, n - in_training - in_heldout)


@dataclass(frozen=True)
class Comparison:
    """Two models of one alphabet, side by side (`civil-words compare`)."""

    kl: float  # mean KL(P_A || P_B) of the next-symbol rows, weighted by A's bigram counts
    max_abs_diff: float  # max |P_A - P_B| over the table
    nll: tuple[float, float]  # A's and B's mean NLL on A's training bigrams
    words: tuple[list[str], list[str]]  # the first n words of each for the seed
    agree: int  # positions where the two words are equal
    n: int
    seed: int


def compare(
    a: ModelFile,
    b: ModelFile,
    n: int = 20,
    seed: int = DEFAULT_SEED,
    cut_at: int = DEFAULT_MAX_WORD_LEN,
) -> Comparison:
    """Compare model B with model A on A's training bigrams, and their words for a seed.

    KL(P_A || P_B) = sum_a (N_a / N) sum_b P_A[a, b] log(P_A[a, b] / P_B[a, b]), with N_a the
    number of A's training bigrams that start with a (in nats, from the float64 logP)."""
    if a.alphabet != b.alphabet:
        raise IncomparableModels(
            f"{a.path} and {b.path} have different alphabets ({len(a.alphabet)} and "
            f"{len(b.alphabet)} symbols; only in A: {_only(a, b)}; only in B: {_only(b, a)}): "
            "their next-symbol tables and words cannot be compared"
        )
    (PA, logA), (PB, logB) = a.probabilities(), b.probabilities()
    C = a.counts.numpy().astype(np.float64)
    rows = C.sum(axis=1)
    kl_rows = (np.exp(logA) * (logA - logB)).sum(axis=1)
    words_a = Sampler(PA, a.alphabet).sample(n, seed, cut_at)
    words_b = Sampler(PB, b.alphabet).sample(n, seed, cut_at)
    return Comparison(
        kl=float(rows @ kl_rows / rows.sum()),
        max_abs_diff=float((PA.double() - PB.double()).abs().max()),
        nll=(mean_nll(logA, C), mean_nll(logB, C)),
        words=(words_a, words_b),
        agree=sum(x == y for x, y in zip(words_a, words_b, strict=True)),
        n=n,
        seed=seed,
    )


def _only(a: ModelFile, b: ModelFile) -> str:
    only = [c for c in a.alphabet if c not in b.alphabet]
    return " ".join(only) if only else "none"
