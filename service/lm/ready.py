"""The one place a model file becomes a ready model: the CLI, `measure` and the web app all
call `open_model` (or `ready` on a file already loaded)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from service.lm.constrained import DEFAULT_REJECTION_BUDGET, ConstrainedSampler
from service.lm.lm import LanguageModel
from service.lm.methods import Method
from service.lm.sampling import DEFAULT_MAX_WORD_LEN, Sampler
from service.lm.score import Scorer
from service.lm.store import ModelFile, load_model


@dataclass
class ReadyModel:
    """A checked model file with its model and everything that answers from it."""

    file: ModelFile
    method: Method  # how it was trained (`service.lm.methods`)
    lm: LanguageModel
    sampler: Sampler  # the reference loop's words
    constrained: ConstrainedSampler  # words under constraints (the reference loop's without)
    scorer: Scorer
    loss: float  # on its training counts, with the method's regularisation
    nll: float  # mean NLL of its training symbols
    details: dict = field(default_factory=dict)  # what the method tells of the fit (discounts)

    @property
    def alphabet(self) -> tuple[str, ...]:
        return self.lm.alphabet

    @property
    def version(self) -> str:
        return self.file.version


def ready(
    f: ModelFile,
    max_word_len: int = DEFAULT_MAX_WORD_LEN,
    rejection_budget: int = DEFAULT_REJECTION_BUDGET,
) -> ReadyModel:
    """A loaded file's model, sampler, constrained sampler and scorer."""
    method = f.training
    lm, details = method.load(f.tensors, f.alphabet)
    loss, nll = method.loss(f.tensors, lm)
    sampler = Sampler(lm)
    return ReadyModel(
        file=f,
        method=method,
        lm=lm,
        sampler=sampler,
        constrained=ConstrainedSampler(sampler, f.words, max_word_len, rejection_budget),
        scorer=Scorer(lm, f.words),
        loss=loss,
        nll=nll,
        details=details,
    )


def open_model(
    path: str | os.PathLike,
    max_word_len: int = DEFAULT_MAX_WORD_LEN,
    rejection_budget: int = DEFAULT_REJECTION_BUDGET,
) -> ReadyModel:
    """Load and check a model file (`ModelFileError` names it and the reason), made ready."""
    return ready(load_model(path), max_word_len, rejection_budget)
