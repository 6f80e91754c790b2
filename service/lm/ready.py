"""The one place a model file becomes a ready model: the CLI, `measure` and the web app all
call `open_model` (or `ready` on a file already loaded)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from service.lm.constrained import (
    DEFAULT_LEXICON_BUDGET,
    DEFAULT_REJECTION_BUDGET,
    ConstrainedSampler,
    NoLexicon,
)
from service.lm.defaults import DEFAULT_NLL_TOLERANCE, DEFAULT_OLD20_TOLERANCE, DEFAULT_PER_TARGET
from service.lm.lexicon import Allowance, Lexicon, LexiconSource
from service.lm.lm import LanguageModel
from service.lm.methods import Method
from service.lm.pseudowords import Matched, Matcher
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
    lexicon_source: LexiconSource  # the real words (built on first use; empty: none)
    loss: float  # on its training counts, with the method's regularisation
    nll: float  # mean NLL of its training symbols
    details: dict = field(default_factory=dict)  # what the method tells of the fit (discounts)

    @property
    def alphabet(self) -> tuple[str, ...]:
        return self.lm.alphabet

    @property
    def version(self) -> str:
        return self.file.version

    @property
    def lexicon(self) -> Lexicon | None:
        """The model's lexicon, built on first use (`LexiconError` names a bad source)."""
        return self.lexicon_source.get()

    def allowance(self) -> Allowance:
        """The lexicon work one request may do (its `lexicon_budget`)."""
        return Allowance(self.constrained.lexicon_budget)

    def pseudowords(
        self,
        targets: list[str],
        per_target: int = DEFAULT_PER_TARGET,
        seed: int = 0,
        old20_tolerance: float = DEFAULT_OLD20_TOLERANCE,
        nll_tolerance: float = DEFAULT_NLL_TOLERANCE,
        allowance: Allowance | None = None,
    ) -> Matched:
        """Matched pseudowords for the targets (`service.lm.pseudowords`), within `allowance`
        (else one request's); `NoLexicon` for a model without a lexicon."""
        lexicon = self.lexicon
        if lexicon is None:
            raise NoLexicon(["model"])
        matcher = Matcher(self.constrained, self.scorer, lexicon, old20_tolerance, nll_tolerance)
        return matcher.match(targets, per_target, seed, allowance or self.allowance())


def ready(
    f: ModelFile,
    max_word_len: int = DEFAULT_MAX_WORD_LEN,
    rejection_budget: int = DEFAULT_REJECTION_BUDGET,
    lexicon_path: str | os.PathLike | None = None,
    lexicon_budget: int | None = DEFAULT_LEXICON_BUDGET,
) -> ReadyModel:
    """A loaded file's model, sampler, constrained sampler, scorer and lexicon source.

    The lexicon (SPEC section 8): the word list at `lexicon_path` (LEXICON_PATH) if given, else
    wordfreq's list for the language the model was trained with (`--language`; none without),
    plus the model's training and held-out words. `lexicon_budget`: the lexicon work of one
    request."""
    method = f.training
    lm, details = method.load(f.tensors, f.alphabet)
    loss, nll = method.loss(f.tensors, lm)
    sampler = Sampler(lm)
    language = f.config.get("language")
    # Its word lists, held-out words included: real words of its corpus (and models trained
    # on one corpus, whatever their split, share one lexicon).
    corpus = sorted({*(f.words or ()), *(f.heldout or ())})
    source = LexiconSource(language if isinstance(language, str) else None, lexicon_path, corpus)
    return ReadyModel(
        file=f,
        method=method,
        lm=lm,
        sampler=sampler,
        constrained=ConstrainedSampler(
            sampler, f.words, max_word_len, rejection_budget, source, lexicon_budget
        ),
        scorer=Scorer(lm, f.words, source, lexicon_budget),
        lexicon_source=source,
        loss=loss,
        nll=nll,
        details=details,
    )


def open_model(
    path: str | os.PathLike,
    max_word_len: int = DEFAULT_MAX_WORD_LEN,
    rejection_budget: int = DEFAULT_REJECTION_BUDGET,
    lexicon_path: str | os.PathLike | None = None,
    lexicon_budget: int | None = DEFAULT_LEXICON_BUDGET,
) -> ReadyModel:
    """Load and check a model file (`ModelFileError` names it and the reason), made ready."""
    return ready(load_model(path), max_word_len, rejection_budget, lexicon_path, lexicon_budget)
