"""Measuring models: mean NLL on a word list, where sampled words come from, two models compared.

What `civil-words eval` and `civil-words compare` print; plain torch/numpy, no web code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.lm.corpus import WordStream
from service.lm.lm import mean_nll
from service.lm.model import DEFAULT_SEED
from service.lm.ready import ReadyModel
from service.lm.sampling import DEFAULT_MAX_WORD_LEN
from service.lm.store import ModelFileError


class IncomparableModels(ValueError):
    """Two models that cannot be compared (their alphabets differ)."""


@dataclass(frozen=True)
class Evaluation:
    """A model's figures on a word list (`civil-words eval --words`)."""

    nll: float | None  # mean NLL of the scored words' symbols and ends (None: no word scored)
    perplexity: float | None  # exp(nll)
    examples: int  # symbols predicted, the ends included (bigrams at order 2)
    words: int  # words scored
    skipped: int  # words skipped: a symbol outside the model's alphabet


def evaluate(m: ReadyModel, words: str | Path) -> Evaluation:
    """The model's mean NLL on a word list, read in one streaming pass (checked as for
    training); words holding a symbol outside the alphabet are skipped and counted."""
    lm = m.lm
    C = np.zeros((lm.S, lm.V), dtype=np.int64)
    scored = skipped = 0
    for chunk in WordStream(words):
        counts, k, s = lm.transition_counts(chunk.words)
        C += counts
        scored += k
        skipped += s
    nll = mean_nll(lm.logP, C)
    return Evaluation(
        nll=nll,
        perplexity=None if nll is None else math.exp(nll),
        examples=int(C.sum()),
        words=scored,
        skipped=skipped,
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
    m: ReadyModel, n: int, seed: int = DEFAULT_SEED, cut_at: int = DEFAULT_MAX_WORD_LEN
) -> Origins:
    """Sample n words (the reference loop's, for the seed) and sort them by origin."""
    f = m.file
    if f.words is None:
        raise ModelFileError(f.path, "holds no word list (a format-1 file): retrain it")
    training, heldout = set(f.words), set(f.heldout or ())
    words = m.sampler.sample(n, seed, cut_at)
    in_training = sum(w in training for w in words)
    in_heldout = sum(w not in training and w in heldout for w in words)
    return Origins(n, seed, in_training, in_heldout, n - in_training - in_heldout)


@dataclass(frozen=True)
class Comparison:
    """Two models of one alphabet, side by side (`civil-words compare`)."""

    kl: float  # mean KL(P_A || P_B) of the next-symbol rows, weighted by A's training counts
    max_abs_diff: float  # max |P_A - P_B| over A's training contexts
    nll: tuple[float, float]  # A's and B's mean NLL on A's training symbols
    words: tuple[list[str], list[str]]  # the first n words of each for the seed
    agree: int  # positions where the two words are equal
    n: int
    seed: int


def compare(
    a: ReadyModel,
    b: ReadyModel,
    n: int = 20,
    seed: int = DEFAULT_SEED,
    cut_at: int = DEFAULT_MAX_WORD_LEN,
) -> Comparison:
    """Compare model B with model A on A's training contexts, and their words for a seed.

    Each of A's states that its training counts visit stands for a context; B's state for the
    same context is found by walking B on it (so B's order may not exceed A's: B would need a
    longer history than A's counts keep). KL(P_A || P_B) = sum_h (N_h / N) sum_c P_A(c | h)
    log(P_A(c | h) / P_B(c | h)), N_h the number of A's training symbols predicted from h (in
    nats, from the float64 logP)."""
    if a.alphabet != b.alphabet:
        raise IncomparableModels(
            f"{a.file.path} and {b.file.path} have different alphabets ({len(a.alphabet)} and "
            f"{len(b.alphabet)} symbols; only in A: {_only(a, b)}; only in B: {_only(b, a)}): "
            "their next-symbol tables and words cannot be compared"
        )
    if b.lm.order > a.lm.order:
        raise IncomparableModels(
            f"{b.file.path} (order {b.lm.order}) conditions on longer contexts than "
            f"{a.file.path} (order {a.lm.order}) keeps: give the higher-order model as A"
        )
    A, B = a.lm, b.lm
    C = A.counts.astype(np.float64)
    rows = C.sum(axis=1)
    used = np.flatnonzero(rows > 0)
    b_states = np.array([_state_for(B, A.contexts[s]) for s in used], dtype=np.int64)
    logA, logB = A.logP[used], B.logP[b_states]
    with np.errstate(invalid="ignore"):
        kl_rows = np.where(np.isfinite(logA), np.exp(logA) * (logA - logB), 0.0).sum(axis=1)
    PA, PB = A.P[used].astype(np.float64), B.P[b_states].astype(np.float64)
    words_a = a.sampler.sample(n, seed, cut_at)
    words_b = b.sampler.sample(n, seed, cut_at)
    C_b = np.zeros((B.S, B.V))
    np.add.at(C_b, b_states, C[used])
    return Comparison(
        kl=float(rows[used] @ kl_rows / rows.sum()),
        max_abs_diff=float(np.abs(PA - PB).max()),
        nll=(mean_nll(A.logP, C), mean_nll(B.logP, C_b)),
        words=(words_a, words_b),
        agree=sum(x == y for x, y in zip(words_a, words_b, strict=True)),
        n=n,
        seed=seed,
    )


def _state_for(lm, context: str) -> int:
    """The state `lm` is in after a context of another model ('.' pads a word's start)."""
    word = context.lstrip(".")
    return lm.state_after([lm.stoi[c] for c in word])


def _only(a: ReadyModel, b: ReadyModel) -> str:
    only = [c for c in a.alphabet if c not in b.alphabet]
    return " ".join(only) if only else "none"
