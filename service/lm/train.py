"""The offline pipeline: word list -> counts (one streaming pass) -> model -> model file."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from service.lm.corpus import (
    CountedWords,
    WordList,
    WordListError,
    WordStream,
    count_known,
    count_words,
)
from service.lm.model import (
    DEFAULT_SEED,
    TrainConfig,
    counting_weights,
    encode,
    file_loss,
    mean_nll,
    probabilities,
    train,
)
from service.lm.store import save_model

CURVE_POINTS = 60  # about this many [step, loss] pairs kept in the file's loss curve
METHODS = ("neural", "counts")


@dataclass(frozen=True)
class Recipe:
    """What to train besides the neural settings (`TrainConfig`): the method and the split."""

    method: str = "neural"  # 'neural' (the notebook's network) or 'counts' (the counting model)
    smoothing: float = 1.0  # counts: K added to every bigram count, K > 0
    holdout: float = 0.0  # fraction F of the words held out from training, 0 <= F < 1
    split_seed: int = DEFAULT_SEED  # seed of the hold-out split's permutation


@dataclass
class TrainResult:
    version: str  # the written file's content version
    method: str  # 'neural' or 'counts'
    examples: int  # number of training bigrams
    symbols: int  # V, the alphabet size with "."
    loss_first: float  # the notebook's first printed loss (initial W); counts: the nll
    loss_last: float  # the notebook's last printed loss (before the last step); counts: the nll
    loss: float  # loss of the final W, with the regularisation term; counts: the nll
    nll: float  # mean NLL of the model on its training bigrams
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


def train_to_file(
    words: WordList | str | Path,
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    on_step: Callable[[int, float], None] | None = None,
    recipe: Recipe = Recipe(),
) -> TrainResult:
    """Train a model on a word list (a file, read in one streaming pass, or a list in memory)
    and write one model file.

    With a hold-out, the list is read twice: once to count its words (the split needs their
    number), once to count the bigrams of the others. The notebook's literal loop, where
    `train` takes it, needs the training examples themselves: the list is then read whole
    (it is small there by construction).
    """
    if recipe.method not in METHODS:
        raise ValueError(f"unknown method {recipe.method!r}")
    start = time.perf_counter()
    held = None
    if recipe.holdout > 0:
        if isinstance(words, WordList):
            n = len(words.words)
        else:
            first = WordStream(words)
            for _ in first:
                pass
            n = first.lines
        held = np.zeros(n, dtype=bool)
        held[holdout_positions(n, recipe.holdout, recipe.split_seed).numpy()] = True
    stream = _stream(words)
    counted = count_words(stream, stream.symbols, held)
    name = stream.path
    if not counted.words:
        raise WordListError(
            f"{name}: no training words left: {int(held.sum())} of {counted.lines} held out"
        )
    sha256, size = (
        (words.sha256, words.size) if isinstance(words, WordList) else (stream.sha256, stream.size)
    )
    alphabet = counted.alphabet
    counts = torch.from_numpy(counted.counts)
    descent = None
    if recipe.method == "neural":

        def examples() -> tuple[torch.Tensor, torch.Tensor]:
            listed = words.words if isinstance(words, WordList) else _reread(words, counted)
            if held is not None:
                listed = list(itertools.compress(listed, ~held))
            return encode(listed, alphabet)

        trained = train(counts, config, on_step, examples)
        W, history = trained.W, trained.history
        descent = {
            "path": trained.path,
            "float32_gap": trained.float32_gap,
            "warning": trained.warning,
        }
        settings = {**asdict(config), "smoothing": None}
    else:
        W, history = counting_weights(counts, recipe.smoothing), []
        settings = {k: None for k in asdict(config)} | {"smoothing": recipe.smoothing}
    loss, nll = file_loss(W, counts, recipe.method, settings["smoothing"], settings["reg"])
    holdout = None if held is None else heldout_figures(W, counts, recipe, settings, counted)
    seconds = time.perf_counter() - start
    examples_n = int(counts.sum())
    metadata = {
        "config": {
            "method": recipe.method,
            **settings,
            "holdout": recipe.holdout,
            "split_seed": recipe.split_seed,
        },
        "loss_first": history[0] if history else loss,
        "loss_last": history[-1] if history else loss,
        "loss_curve": loss_curve(history),
        "loss": loss,
        "nll": nll,
        "examples": examples_n,
        "corpus_sha256": sha256,
        "corpus_bytes": size,
        "corpus_words": counted.lines,
        "holdout": holdout,
        "descent": descent,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    version = save_model(
        out, W, counts, alphabet, metadata, words=counted.words, heldout=counted.heldout
    )
    return TrainResult(
        version=version,
        method=recipe.method,
        examples=examples_n,
        symbols=len(alphabet),
        loss_first=float(metadata["loss_first"]),
        loss_last=float(metadata["loss_last"]),
        loss=loss,
        nll=nll,
        holdout=holdout,
        warning=None if descent is None else descent["warning"],
        seconds=seconds,
    )


def _reread(path: str | Path, counted: CountedWords) -> list[str]:
    """The whole word list, read again (only for the literal loop, on a small list)."""
    words: list[str] = []
    for chunk in WordStream(path):
        words += chunk.words
    if len(words) != counted.lines:
        raise WordListError(f"{path}: the word list changed while training")
    return words


def heldout_figures(
    W: torch.Tensor, counts: torch.Tensor, recipe: Recipe, settings: dict, counted: CountedWords
) -> dict:
    """The held-out words' mean NLL under the trained model, with the number of their bigrams,
    of the words scored and of the words skipped (a symbol outside the training alphabet).
    A word held out several times counts each time."""
    distinct = sorted(counted.heldout)
    text = "".join(w + "\n" for w in distinct)
    weights = np.array([counted.heldout[w] for w in distinct], dtype=np.int64)
    known = count_known([(text, weights)], counted.alphabet)
    _, logP = probabilities(W, counts, recipe.method, settings["smoothing"])
    return {
        "nll": mean_nll(logP, known.counts),
        "examples": int(known.counts.sum()),
        "words": known.words,
        "skipped": known.skipped,
    }
