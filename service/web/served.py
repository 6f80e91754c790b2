"""The model as the service holds it: the checked file, its sampler, and answers computed once."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import torch

from service.lm.constrained import (
    DEFAULT_REJECTION_BUDGET,
    ConstrainedSampler,
    Constraints,
    Sampled,
)
from service.lm.model import DEFAULT_MAX_WORD_LEN, Sampler, file_loss
from service.lm.score import Scorer, WordScore
from service.lm.store import ModelFile, load_model
from service.web.schemas import (
    CorpusInfo,
    LossInfo,
    LossResponse,
    MatrixResponse,
    ModelInfo,
    ProbResponse,
    TrainingConfig,
    WordListInfo,
    bigram_regex,
)


class UnknownSymbol(ValueError):
    pass


@dataclass
class ServedModel:
    name: str  # the name it is served under (`model=`)
    file: ModelFile
    sampler: Sampler  # the notebook's words
    constrained: ConstrainedSampler  # words under constraints (the notebook's without)
    scorer: Scorer
    loss: LossResponse
    info: ModelInfo
    matrix: MatrixResponse

    @property
    def version(self) -> str:
        return self.file.version

    @classmethod
    def load(
        cls,
        path: str | Path,
        name: str,
        max_word_len: int = DEFAULT_MAX_WORD_LEN,
        rejection_budget: int = DEFAULT_REJECTION_BUDGET,
    ) -> ServedModel:
        """Load and check a model file (raises `ModelFileError`), and prepare its answers."""
        f = load_model(path)
        meta, config = f.metadata, f.config
        P, logP = f.probabilities()
        sampler = Sampler(P, f.alphabet)
        constrained = ConstrainedSampler(sampler, logP, f.words, max_word_len, rejection_budget)
        loss, nll = file_loss(f.W, f.counts, f.method, config["smoothing"], config["reg"])
        V = len(f.alphabet)
        info = ModelInfo(
            version=f.version,
            alphabet=list(f.alphabet),
            shape=(V, V),
            config=TrainingConfig(**config),
            examples=int(f.counts.sum()),
            corpus=CorpusInfo(
                sha256=meta["corpus_sha256"], bytes=meta["corpus_bytes"], words=meta["corpus_words"]
            ),
            loss=LossInfo(
                first=meta["loss_first"],
                last=meta["loss_last"],
                final=loss,
                nll=nll,
                curve=meta["loss_curve"],
            ),
            holdout=meta.get("holdout"),
            word_list=None
            if f.words is None
            else WordListInfo(words=len(f.words), heldout=len(f.heldout or ())),
            created=meta.get("created"),
            torch_version=meta.get("torch_version"),
        )
        return cls(
            name=name,
            file=f,
            sampler=sampler,
            constrained=constrained,
            scorer=Scorer(logP, f.alphabet, f.words),
            loss=LossResponse(
                loss=loss, nll=nll, examples=info.examples, holdout=meta.get("holdout")
            ),
            info=info,
            matrix=MatrixResponse(
                model=f.version, alphabet=list(f.alphabet), probs=sampler.P.tolist()
            ),
        )

    def prob(self, bigram: str) -> ProbResponse:
        """P(next | previous) for two symbols, each written precomposed or decomposed (the
        pattern in the OpenAPI document, `bigram_regex`); the answer names them in NFC."""
        stoi = self.sampler.stoi
        match = bigram_regex(self.file.alphabet).fullmatch(bigram)
        if match is None:
            raise UnknownSymbol(self._why_not(bigram))
        bigram = "".join(unicodedata.normalize("NFC", s) for s in match.groups())
        i, j = stoi[bigram[0]], stoi[bigram[1]]
        p = float(self.sampler.P[i, j])
        if p > 0:
            logprob = math.log(p)
        else:  # underflowed in float32: the log is still finite
            logprob = float(torch.log_softmax(self.file.W[i].double(), 0)[j])
        return ProbResponse(bigram=bigram, prob=p, logprob=logprob)

    def _why_not(self, bigram: str) -> str:
        """Why a bigram does not match the pattern, in words."""
        nfc = unicodedata.normalize("NFC", bigram)
        if len(nfc) != 2:
            return f"must be exactly two symbols, got {len(nfc)}"
        missing = [c for c in nfc if c not in self.sampler.stoi]
        if missing:
            shown = ", ".join(repr(c) for c in dict.fromkeys(missing))
            return f"{shown} not in the model's alphabet"
        return "not two symbols of the model's alphabet, each precomposed or decomposed"

    def sample(self, n: int, seed: int, constraints: Constraints) -> Sampled:
        """n words under the constraints (raises the `ConstraintError`s)."""
        return self.constrained.sample(n, seed, constraints)

    def score(self, words: list[str]) -> list[WordScore]:
        """Scores of the words, in order (raises `UnknownSymbolError`)."""
        return self.scorer.score(words)
