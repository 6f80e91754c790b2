"""The model as the service holds it: the ready model, and answers computed once."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.lm.constrained import (
    DEFAULT_LEXICON_BUDGET,
    DEFAULT_REJECTION_BUDGET,
    Constraints,
    Sampled,
)
from service.lm.lexicon import Allowance, LexiconBudgetExceeded
from service.lm.pseudowords import Matched
from service.lm.ready import ReadyModel, open_model
from service.lm.sampling import DEFAULT_MAX_WORD_LEN
from service.lm.score import WordScore
from service.web.schemas import (
    CorpusInfo,
    LexiconInfo,
    LossInfo,
    LossResponse,
    MatrixResponse,
    ModelInfo,
    NextResponse,
    NextSymbol,
    ProbResponse,
    TrainingConfig,
    WordListInfo,
    bigram_regex,
)

# The chain a prefix-only request needs is built at start-up for models of at most this many
# states (milliseconds); a larger model builds it on its first such request (about a second).
WARM_STATES = 4096


class UnknownSymbol(ValueError):
    pass


class LexiconWorkExceeded(RuntimeError):
    """A request's lexicon work ran out while figuring `parameter`'s words."""

    def __init__(self, parameter: str, budget: int | None, word: str):
        self.parameter = parameter
        self.reason = (
            f"the lexicon work budget of the request ({budget:,} units) ran out at {word!r}: "
            "ask for fewer words"
        )
        super().__init__(self.reason)


class NotABigramModel(ValueError):
    """A bigram view (/prob, /matrix) asked of a model of order N > 2."""


@dataclass
class ServedModel:
    name: str  # the name it is served under (`model=`)
    model: ReadyModel  # the file, its model, samplers and scorer (`service.lm.ready`)
    loss: LossResponse
    info: ModelInfo
    matrix: MatrixResponse | None  # the bigram view; None above order 2

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def file(self):
        return self.model.file

    @property
    def sampler(self):
        return self.model.sampler

    @classmethod
    def load(
        cls,
        path: str | Path,
        name: str,
        max_word_len: int = DEFAULT_MAX_WORD_LEN,
        rejection_budget: int = DEFAULT_REJECTION_BUDGET,
        lexicon_path: str | Path | None = None,
        lexicon_budget: int = DEFAULT_LEXICON_BUDGET,
    ) -> ServedModel:
        """Load and check a model file (raises `ModelFileError`) and build its lexicon (raises
        `LexiconError`), and prepare its answers."""
        m = open_model(path, max_word_len, rejection_budget, lexicon_path, lexicon_budget)
        if m.lm.S <= WARM_STATES:  # small: built before the workers fork, shared by them
            m.constrained.warm()
        lexicon = m.lexicon  # built now, in the master: the workers share it
        f, lm = m.file, m.lm
        meta, config = f.metadata, f.config
        V = lm.V
        discounts = m.details.get("discounts")
        info = ModelInfo(
            version=f.version,
            alphabet=list(lm.alphabet),
            shape=(lm.S, V),
            order=lm.order,
            smoothing=m.method.label,
            states=lm.S,
            contexts=int((lm.counts.sum(axis=1) > 0).sum()),
            discounts=None if discounts is None else [tuple(d) for d in discounts],
            config=TrainingConfig(**config),
            examples=int(lm.counts.sum()),
            corpus=CorpusInfo(
                sha256=meta["corpus_sha256"], bytes=meta["corpus_bytes"], words=meta["corpus_words"]
            ),
            loss=LossInfo(
                first=meta["loss_first"],
                last=meta["loss_last"],
                final=m.loss,
                nll=m.nll,
                curve=meta["loss_curve"],
            ),
            holdout=meta.get("holdout"),
            word_list=None
            if f.words is None
            else WordListInfo(words=len(f.words), heldout=len(f.heldout or ())),
            created=meta.get("created"),
            torch_version=meta.get("torch_version"),
            lexicon=None if lexicon is None else LexiconInfo(**lexicon.describe()),
        )
        matrix = (
            MatrixResponse(model=f.version, alphabet=list(lm.alphabet), probs=lm.P.tolist())
            if lm.order == 2
            else None
        )
        return cls(
            name=name,
            model=m,
            loss=LossResponse(
                loss=m.loss, nll=m.nll, examples=info.examples, holdout=meta.get("holdout")
            ),
            info=info,
            matrix=matrix,
        )

    def _bigram_only(self, view: str) -> None:
        if self.model.lm.order != 2:
            raise NotABigramModel(
                f"{view} is the bigram view: model {self.name!r} is of order "
                f"{self.model.lm.order}, its next symbol depends on {self.model.lm.order - 1} "
                "symbols; ask GET /next?context=... for the distribution after any beginning"
            )

    def bigram_matrix(self) -> MatrixResponse:
        self._bigram_only("/matrix")
        return self.matrix

    def prob(self, bigram: str) -> ProbResponse:
        """P(next | previous) for two symbols, each written precomposed or decomposed (the
        pattern in the OpenAPI document, `bigram_regex`); the answer names them in NFC."""
        self._bigram_only("/prob")
        lm = self.model.lm
        stoi = lm.stoi
        match = bigram_regex(lm.alphabet).fullmatch(bigram)
        if match is None:
            raise UnknownSymbol(self._why_not(bigram))
        bigram = "".join(unicodedata.normalize("NFC", s) for s in match.groups())
        i, j = stoi[bigram[0]], stoi[bigram[1]]
        p = float(lm.P[i, j])
        # Underflowed in float32: the log is still finite.
        logprob = math.log(p) if p > 0 else float(lm.logP[i, j])
        return ProbResponse(bigram=bigram, prob=p, logprob=logprob)

    def _why_not(self, bigram: str) -> str:
        """Why a bigram does not match the pattern, in words."""
        nfc = unicodedata.normalize("NFC", bigram)
        if len(nfc) != 2:
            return f"must be exactly two symbols, got {len(nfc)}"
        missing = [c for c in nfc if c not in self.model.lm.stoi]
        if missing:
            shown = ", ".join(repr(c) for c in dict.fromkeys(missing))
            return f"{shown} not in the model's alphabet"
        return "not two symbols of the model's alphabet, each precomposed or decomposed"

    def next(self, context: str) -> NextResponse:
        """The distribution of the symbol after a word's beginning (raises
        `UnknownSymbolError` for a symbol outside the alphabet)."""
        lm = self.model.lm
        context = unicodedata.normalize("NFC", context)
        s = lm.state_after(lm.codes(context))
        logp = lm.logP[s]
        order = np.argsort(-logp, kind="stable")
        probs = np.exp(logp)
        return NextResponse(
            context=context,
            state=lm.contexts[s],
            next=[
                NextSymbol(symbol=lm.alphabet[c], prob=float(probs[c]), logprob=float(logp[c]))
                for c in order.tolist()
            ],
        )

    def allowance(self) -> Allowance:
        """The lexicon work one request may do."""
        return self.model.allowance()

    def sample(
        self, n: int, seed: int, constraints: Constraints, allowance: Allowance | None = None
    ) -> Sampled:
        """n words under the constraints (raises the `ConstraintError`s)."""
        return self.model.constrained.sample(n, seed, constraints, allowance)

    def score(
        self, words: list[str], parameter: str, allowance: Allowance | None = None
    ) -> list[WordScore]:
        """Scores of the words, in order, with their figures against the lexicon (raises
        `UnknownSymbolError`, and `LexiconWorkExceeded` naming `parameter` when `allowance`
        runs out)."""
        try:
            return self.model.scorer.score(words, True, allowance or self.allowance())
        except LexiconBudgetExceeded as e:
            raise LexiconWorkExceeded(parameter, e.budget, e.word) from None

    def pseudowords(
        self,
        targets: list[str],
        per_target: int,
        seed: int,
        old20_tolerance: float,
        nll_tolerance: float,
    ) -> Matched:
        """Matched pseudowords for the targets (`service.lm.pseudowords`); `NoLexicon` for a
        model without a lexicon."""
        return self.model.pseudowords(targets, per_target, seed, old20_tolerance, nll_tolerance)
