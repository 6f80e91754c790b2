"""Training methods as objects: each knows its settings, how it fits counts, and how it turns
a model file back into a `LanguageModel`. A new method is one new class here.

- `Neural`: the notebook's one-layer network (order 2), trained by `model.train`.
- `AddK`: counts plus K, P(c | h) = (N(h c) + K) / (N(h) + K V); at order 2 the course's
  counting model exactly (its table, its loop's words), at orders 3 and 4 over n-gram states.
- `KneserNey`: interpolated modified Kneser–Ney, orders 2 to 8 (`service.lm.ngram`).

The method of a file is read from its `config` once (`method_of`); nothing else branches on
method names.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from service.lm import ngram
from service.lm.defaults import MAX_ADD_K_ORDER, MAX_ORDER, MIN_ORDER
from service.lm.lm import LanguageModel, mean_nll
from service.lm.model import (
    TrainConfig,
    counting_weights,
    model_loss,
    probabilities,
    train,
)

KNESER_NEY = "kneser-ney"
NEURAL_KEYS = ("steps", "lr", "reg", "seed")


class MethodError(ValueError):
    """Settings that do not make a method (a usage error)."""


@dataclass
class Fitted:
    """What a method fitted: the file's tensors (besides the word lists) and the record of
    its training (`load` makes the model of the tensors, `loss` its figures)."""

    tensors: dict[str, torch.Tensor]
    history: list[float] = field(default_factory=list)  # loss before each step (neural)
    descent: dict | None = None  # neural: how W was computed (`model.train`)
    warning: str | None = None  # why W may differ from the notebook's (neural)


class Method:
    """The interface every training method has."""

    name: str  # the file config's `method`
    order: int
    sparse: bool  # fitted from n-gram counts (file format 3), not (V, V) bigram counts

    def config(self) -> dict:
        """The method's entries of a file's `config`."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    @property
    def label(self) -> str:
        """How the next-symbol probabilities are made, as /model says it: 'neural',
        'add-k:K' or 'kneser-ney'."""
        raise NotImplementedError

    def fit(self, counts, examples=None, on_step=None) -> Fitted:
        """Fit the training counts: (V, V) bigram counts, or `NgramCounts` when `sparse`."""
        raise NotImplementedError

    def load(self, tensors: dict[str, torch.Tensor], alphabet) -> tuple[LanguageModel, dict]:
        """The model of a checked file's tensors, and the figures `/model` shows about it."""
        raise NotImplementedError

    def loss(self, tensors: dict[str, torch.Tensor], lm: LanguageModel) -> tuple[float, float]:
        """(loss, nll) of the stored model on its training counts."""
        nll = mean_nll(lm.logP, lm.counts)
        return nll, nll


@dataclass(frozen=True)
class Neural(Method):
    settings: TrainConfig = TrainConfig()
    name = "neural"
    order = 2
    sparse = False

    def config(self) -> dict:
        return {"method": self.name, "order": 2, **asdict(self.settings), "smoothing": None}

    def describe(self) -> str:
        return "neural"

    @property
    def label(self) -> str:
        return "neural"

    def fit(self, counts, examples=None, on_step=None) -> Fitted:
        trained = train(counts, self.settings, on_step, examples)
        descent = {
            "path": trained.path,
            "float32_gap": trained.float32_gap,
            "warning": trained.warning,
        }
        tensors = {"W": trained.W, "counts": counts}
        return Fitted(tensors, trained.history, descent, trained.warning)

    def load(self, tensors, alphabet) -> tuple[LanguageModel, dict]:
        W, counts = tensors["W"], tensors["counts"]
        P, logP = probabilities(W, counts, "neural")
        return LanguageModel.bigram(P.numpy(), logP, alphabet, counts.numpy()), {}

    def loss(self, tensors, lm) -> tuple[float, float]:
        return model_loss(tensors["W"], tensors["counts"], self.settings.reg)


@dataclass(frozen=True)
class AddK(Method):
    k: float = 1.0
    order: int = 2
    name = "counts"

    @property
    def sparse(self) -> bool:  # type: ignore[override]
        return self.order > 2

    def config(self) -> dict:
        return {
            "method": self.name,
            "order": self.order,
            **dict.fromkeys(NEURAL_KEYS),
            "smoothing": self.k,
        }

    def describe(self) -> str:
        return f"counts, order {self.order}, add-k K = {self.k:g}"

    @property
    def label(self) -> str:
        return f"add-k:{self.k:g}"

    def fit(self, counts, examples=None, on_step=None) -> Fitted:
        if not self.sparse:
            tensors = {"W": counting_weights(counts, self.k), "counts": counts}
        else:
            tensors = sparse_tensors(counts)
        return Fitted(tensors)

    def load(self, tensors, alphabet) -> tuple[LanguageModel, dict]:
        if not self.sparse:
            counts = tensors["counts"]
            P, logP = probabilities(tensors["W"], counts, "counts", self.k)
            return LanguageModel.bigram(P.numpy(), logP, alphabet, counts.numpy()), {}
        return ngram.add_k(ngrams_of(tensors, alphabet, self.order), self.k), {}


@dataclass(frozen=True)
class KneserNey(Method):
    order: int = 5
    name = "counts"
    sparse = True

    def config(self) -> dict:
        return {
            "method": self.name,
            "order": self.order,
            **dict.fromkeys(NEURAL_KEYS),
            "smoothing": KNESER_NEY,
        }

    def describe(self) -> str:
        return f"counts, order {self.order}, Kneser–Ney"

    @property
    def label(self) -> str:
        return KNESER_NEY

    def fit(self, counts, examples=None, on_step=None) -> Fitted:
        return Fitted(sparse_tensors(counts))

    def load(self, tensors, alphabet) -> tuple[LanguageModel, dict]:
        fit = ngram.kneser_ney(ngrams_of(tensors, alphabet, self.order))
        return fit.lm, {"discounts": [list(d) for d in fit.discounts]}


# -- sparse counts in a file --------------------------------------------------------------


def sparse_tensors(ng: ngram.NgramCounts) -> dict[str, torch.Tensor]:
    """A file's sparse counts: `contexts` (C, N - 1) int32, the seen contexts sorted; and per
    n-gram, sorted by context then symbol, `ngram_context` (M,) int32 (a row of `contexts`),
    `ngram_symbol` (M,) int32 and `ngram_count` (M,) int64."""
    V, N = ng.V, ng.order
    ctx_keys, ctx_index = np.unique(ng.keys // V, return_inverse=True)
    return {
        "contexts": torch.from_numpy(ngram._rows(ctx_keys, V, N - 1).astype(np.int32)),
        "ngram_context": torch.from_numpy(ctx_index.astype(np.int32)),
        "ngram_symbol": torch.from_numpy((ng.keys % V).astype(np.int32)),
        "ngram_count": torch.from_numpy(ng.counts.astype(np.int64)),
    }


SPARSE_TENSORS = ("contexts", "ngram_context", "ngram_symbol", "ngram_count")


def ngrams_of(tensors: dict[str, torch.Tensor], alphabet, order: int) -> ngram.NgramCounts:
    """The `NgramCounts` of a checked file's sparse tensors."""
    V = len(alphabet)
    ctx_keys = ngram._keys(tensors["contexts"].numpy().astype(np.int64), V)
    keys = ctx_keys[tensors["ngram_context"].numpy()] * V + tensors["ngram_symbol"].numpy()
    counts = tensors["ngram_count"].numpy()
    return ngram.NgramCounts(tuple(alphabet), order, keys.astype(np.int64), counts)


# -- choosing a method --------------------------------------------------------------------


def parse_smoothing(text: str) -> tuple[str, float | None]:
    """`kneser-ney`, `add-k:K` or a plain number K (add-k) -> (kind, K)."""
    t = text.strip().lower()
    if t == KNESER_NEY:
        return KNESER_NEY, None
    number = t.removeprefix("add-k:")
    try:
        k = float(number)
    except ValueError:
        raise MethodError(f"{text!r}: expected 'kneser-ney', 'add-k:K' or a number K > 0") from None
    if not (math.isfinite(k) and k > 0):
        raise MethodError(f"{text!r}: K must be a finite number > 0")
    return "add-k", k


def counting_method(order: int, smoothing: str | None) -> Method:
    """The counting method of an order and a smoothing text (None: the order's default,
    add-k K = 1 at order 2, Kneser–Ney above)."""
    if not MIN_ORDER <= order <= MAX_ORDER:
        raise MethodError(f"order {order}: must be from {MIN_ORDER} to {MAX_ORDER}")
    if smoothing is None:
        return AddK(1.0, 2) if order == 2 else KneserNey(order)
    kind, k = parse_smoothing(smoothing)
    if kind == KNESER_NEY:
        return KneserNey(order)
    if order > MAX_ADD_K_ORDER:
        raise MethodError(
            f"add-k is for orders up to {MAX_ADD_K_ORDER} (got {order}): its states "
            "grow with the contexts' prefixes; use kneser-ney"
        )
    return AddK(k, order)


def method_of(config: dict) -> Method:
    """The method of a checked file config."""
    if config["method"] == "neural":
        return Neural(TrainConfig(**{k: config[k] for k in NEURAL_KEYS}))
    smoothing = config["smoothing"]
    order = int(config.get("order", 2))
    if smoothing == KNESER_NEY:
        return KneserNey(order)
    return AddK(float(smoothing), order)
