"""The offline pipeline: word list -> counts -> trained W -> model file."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from service.lm.corpus import WordList
from service.lm.model import (
    DEFAULT_SEED,
    TrainConfig,
    build_alphabet,
    count_bigrams,
    encode,
    model_loss,
    train,
)
from service.lm.store import save_model

CURVE_POINTS = 60  # about this many [step, loss] pairs kept in the file's loss curve


@dataclass
class TrainResult:
    version: str  # the written file's content version
    examples: int  # number of training bigrams
    symbols: int  # V, the alphabet size with "."
    loss_first: float  # the notebook's first printed loss (initial W)
    loss_last: float  # the notebook's last printed loss (before the last step)
    loss: float  # loss of the final W, with the regularisation term
    seconds: float  # wall time of counting and training


def loss_curve(history: list[float]) -> list[list[float]]:
    """A coarse copy of the loss history: every k-th step and the last one."""
    every = max(1, len(history) // CURVE_POINTS)
    steps = list(range(0, len(history), every))
    if history and steps[-1] != len(history) - 1:
        steps.append(len(history) - 1)
    return [[k, history[k]] for k in steps]


def train_to_file(
    words: WordList,
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train on a word list with the notebook's algorithm and write one model file."""
    start = time.perf_counter()
    alphabet = build_alphabet(words.words)
    xs, ys = encode(words.words, alphabet)
    V = len(alphabet)
    counts = count_bigrams(xs, ys, V)
    W, history = train(xs, ys, V, config, on_step)
    loss, nll = model_loss(W, counts, config.reg)
    seconds = time.perf_counter() - start
    examples = int(counts.sum())
    metadata = {
        "config": {
            "method": "neural",
            **asdict(config),
            "smoothing": None,
            "holdout": 0.0,
            "split_seed": DEFAULT_SEED,
        },
        "loss_first": history[0] if history else loss,
        "loss_last": history[-1] if history else loss,
        "loss_curve": loss_curve(history),
        "loss": loss,
        "nll": nll,
        "examples": examples,
        "corpus_sha256": words.sha256,
        "corpus_bytes": words.size,
        "corpus_words": len(words.words),
        "holdout": None,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    version = save_model(out, W, counts, alphabet, metadata, words=words.words)
    return TrainResult(
        version=version,
        examples=examples,
        symbols=len(alphabet),
        loss_first=float(metadata["loss_first"]),
        loss_last=float(metadata["loss_last"]),
        loss=loss,
        seconds=seconds,
    )
