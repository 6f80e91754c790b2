"""The offline pipeline: word list -> counts (one streaming pass) -> model -> model file."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from service.lm.corpus import (
    CountedWords,
    WordList,
    WordListError,
    WordStream,
    count_words,
)
from service.lm.defaults import MAX_ADD_K_ORDER, MAX_ORDER, MIN_ORDER, check_language
from service.lm.lm import mean_nll
from service.lm.methods import AddK, KneserNey, Method, Neural
from service.lm.model import DEFAULT_SEED, encode
from service.lm.ngram import NgramCounter, NgramCounts
from service.lm.store import save_model

CURVE_POINTS = 60  # about this many [step, loss] pairs kept in the file's loss curve


@dataclass(frozen=True)
class Split:
    """The hold-out split: which words are kept out of training."""

    holdout: float = 0.0  # fraction F of the words held out from training, 0 <= F < 1
    split_seed: int = DEFAULT_SEED  # seed of the hold-out split's permutation


@dataclass
class TrainResult:
    version: str | None  # the written file's content version (None: not written)
    method: Method  # how it was trained
    examples: int  # number of training symbols predicted (bigrams at order 2)
    symbols: int  # V, the alphabet size with "."
    loss_first: float  # the notebook's first printed loss (initial W); counts: the nll
    loss_last: float  # the notebook's last printed loss (before the last step); counts: the nll
    loss: float  # loss of the final model, with the regularisation term; counts: the nll
    nll: float  # mean NLL of the model on its training symbols
    holdout: dict | None  # the held-out figures {nll, examples, words, skipped}, or None
    warning: str | None  # set when the neural W may differ from the notebook's (see `train`)
    seconds: float  # wall time of reading, counting and training


def loss_curve(history: list[float]) -> list[list[float]]:
    """A coarse copy of the loss history: every k-th step and the last one."""
    every = max(1, len(history) // CURVE_POINTS)
    steps = list(range(0, len(history), every))
    if history and steps[-1] != len(history) - 1:
        steps.append(len(history) - 1)
    return [[k, history[k]] for k in steps]


def holdout_positions(n: int, fraction: float, seed: int) -> torch.Tensor:
    """The positions (int64 (k,)) of the held-out words among `n`, as the spec defines them:
    k = round(fraction * n), with Python's `round` (a half goes to the even neighbour), and
    `torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k]`."""
    k = round(fraction * n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k]


def _stream(words: WordList | str | Path) -> WordStream:
    if isinstance(words, WordList):
        return WordStream("<word list>", words=words.words)
    return WordStream(words)


def held_mask(words: WordList | str | Path, split: Split) -> np.ndarray | None:
    """One bool per word of the list, True where held out (None without a hold-out)."""
    if split.holdout <= 0:
        return None
    if isinstance(words, WordList):
        n = len(words.words)
    else:
        first = WordStream(words)
        for _ in first:
            pass
        n = first.lines
    held = np.zeros(n, dtype=bool)
    held[holdout_positions(n, split.holdout, split.split_seed).numpy()] = True
    return held


@dataclass
class Counted:
    """A word list read and counted once, ready for any method to fit."""

    source: WordList | str | Path
    name: str  # the list's name in messages
    counted: CountedWords  # the bigram counts, training words and held-out words
    ngrams: dict[int, NgramCounts]  # order -> n-gram counts, for the orders asked for
    held: np.ndarray | None  # held-out words, one bool per word of the list
    sha256: str
    size: int
    start: float  # when reading began (perf_counter)


def count(
    words: WordList | str | Path, split: Split = Split(), orders: Sequence[int] = ()
) -> Counted:
    """Read and count a word list in one streaming pass (two with a hold-out: the split needs
    the number of words): its bigrams, and its n-grams of each of `orders`."""
    start = time.perf_counter()
    held = held_mask(words, split)
    stream = _stream(words)
    counters = {order: NgramCounter(order) for order in orders}
    counted = count_words(stream, stream.symbols, held, _Fanout(list(counters.values())))
    if not counted.words:
        raise WordListError(
            f"{stream.path}: no training words left: {int(held.sum())} of {counted.lines} held out"
        )
    sha256, size = (
        (words.sha256, words.size) if isinstance(words, WordList) else (stream.sha256, stream.size)
    )
    ngrams = {o: c.result(counted.alphabet, stream.symbols) for o, c in counters.items()}
    return Counted(words, stream.path, counted, ngrams, held, sha256, size, start)


class _Fanout:
    """Gives each chunk to several n-gram counters."""

    def __init__(self, counters: list[NgramCounter]):
        self.counters = counters

    def add(self, chunk, symbols, keep) -> None:
        for c in self.counters:
            c.add(chunk, symbols, keep)


def train_to_file(
    words: WordList | str | Path,
    out: str | Path,
    method: Method = Neural(),
    on_step: Callable[[int, float], None] | None = None,
    split: Split = Split(),
    language: str | None = None,
) -> TrainResult:
    """Train a model on a word list (a file, read in one streaming pass, or a list in memory)
    and write one model file. `language` (a code `check_language` takes, or None) is the
    language of the model's lexicon, recorded in its config: it changes no tensor, so not the
    version.

    With a hold-out, the list is read twice: once to count its words (the split needs their
    number), once to count the others' bigrams (and n-grams, for a method of order N). The
    notebook's literal loop, where `train` takes it, needs the training examples themselves:
    the list is then read whole (it is small there by construction).
    """
    _check_language(language)
    c = count(words, split, [method.order] if method.sparse else [])
    return fit_to_file(c, method, out, split, on_step, language)


def fit_to_file(
    c: Counted,
    method: Method,
    out: str | Path | None,
    split: Split = Split(),
    on_step: Callable[[int, float], None] | None = None,
    language: str | None = None,
) -> TrainResult:
    """Fit a counted word list with a method and write the model file (none if `out` is None:
    the figures only), its config naming the lexicon's `language`."""
    alphabet = c.counted.alphabet
    counts = torch.from_numpy(c.counted.counts)

    def examples() -> tuple[torch.Tensor, torch.Tensor]:
        source = c.source
        listed = source.words if isinstance(source, WordList) else _reread(source, c.counted)
        if c.held is not None:
            listed = list(itertools.compress(listed, ~c.held))
        return encode(listed, alphabet)

    if method.sparse:
        fitted = method.fit(c.ngrams[method.order])
    else:
        fitted = method.fit(counts, examples, on_step)
    history = fitted.history
    lm, _ = method.load(fitted.tensors, alphabet)
    loss, nll = method.loss(fitted.tensors, lm)
    holdout = None if c.held is None else heldout_figures(lm, c.counted)
    seconds = time.perf_counter() - c.start
    examples_n = int(lm.counts.sum())
    config = {
        **method.config(),
        "holdout": split.holdout,
        "split_seed": split.split_seed,
        "language": language,
    }
    if not method.sparse:
        del config["order"]  # format 2, as ever: order 2 is implied
    metadata = {
        "config": config,
        "loss_first": history[0] if history else loss,
        "loss_last": history[-1] if history else loss,
        "loss_curve": loss_curve(history),
        "loss": loss,
        "nll": nll,
        "examples": examples_n,
        "corpus_sha256": c.sha256,
        "corpus_bytes": c.size,
        "corpus_words": c.counted.lines,
        "holdout": holdout,
        "descent": fitted.descent,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    version = None
    if out is not None:
        dense = not method.sparse
        version = save_model(
            out,
            fitted.tensors["W"] if dense else None,
            fitted.tensors["counts"] if dense else None,
            alphabet,
            metadata,
            words=c.counted.words,
            heldout=c.counted.heldout,
            sparse=None if dense else fitted.tensors,
        )
    return TrainResult(
        version=version,
        method=method,
        examples=examples_n,
        symbols=len(alphabet),
        loss_first=float(metadata["loss_first"]),
        loss_last=float(metadata["loss_last"]),
        loss=loss,
        nll=nll,
        holdout=holdout,
        warning=fitted.warning,
        seconds=seconds,
    )


ADD_K_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)  # the K that `tune` tries for add-k


def tune_candidates(orders: Sequence[int]) -> list[Method]:
    """What `tune` tries: Kneser–Ney at every order, add-k (`ADD_K_GRID`) up to its orders."""
    methods: list[Method] = []
    for order in orders:
        methods.append(KneserNey(order))
        if order <= MAX_ADD_K_ORDER:
            methods += [AddK(k, order) for k in ADD_K_GRID]
    return methods


def tune(
    words: WordList | str | Path,
    out: str | Path,
    split: Split,
    orders: Sequence[int] = tuple(range(MIN_ORDER, MAX_ORDER + 1)),
    language: str | None = None,
) -> tuple[list[TrainResult], TrainResult]:
    """Fit every candidate (`tune_candidates`) on the training part of one split, and write
    the one of least held-out NLL (its lexicon's `language` in its config, as `train_to_file`).
    The list is read once for every order."""
    if split.holdout <= 0:
        raise ValueError("tune needs a hold-out (0 < F < 1) to measure the candidates on")
    _check_language(language)
    c = count(words, split, [o for o in orders])
    results = [fit_to_file(c, m, None, split) for m in tune_candidates(orders)]
    scored = [r for r in results if r.holdout and r.holdout["nll"] is not None]
    if not scored:
        raise WordListError(f"{c.name}: no held-out word could be scored")
    best = min(scored, key=lambda r: r.holdout["nll"])
    written = fit_to_file(c, best.method, out, split, language=language)
    return results, written


def _check_language(language: str | None) -> None:
    """Before any reading: a language wordfreq has no list for would give a model without one."""
    if language is not None:
        check_language(language)


def _reread(path: str | Path, counted: CountedWords) -> list[str]:
    """The whole word list, read again (only for the literal loop, on a small list)."""
    words: list[str] = []
    for chunk in WordStream(path):
        words += chunk.words
    if len(words) != counted.lines:
        raise WordListError(f"{path}: the word list changed while training")
    return words


def heldout_figures(lm, counted: CountedWords) -> dict:
    """The held-out words' mean NLL under the trained model, with the number of their
    predicted symbols, of the words scored and of the words skipped (a symbol outside the
    training alphabet). A word held out several times counts each time."""
    distinct = sorted(counted.heldout)
    weights = np.array([counted.heldout[w] for w in distinct], dtype=np.int64)
    C, scored, skipped = lm.transition_counts(distinct, weights)
    return {
        "nll": mean_nll(lm.logP, C),
        "examples": int(C.sum()),
        "words": scored,
        "skipped": skipped,
    }
