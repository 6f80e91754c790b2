"""A model file's metadata as pydantic models: the store reads a file's settings into them, and
`/model` shows them as they are (the web layer imports these, never the reverse)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TrainingConfig(BaseModel):
    method: str = Field(description="'neural' (the notebook's network) or 'counts' (counting)")
    order: int = Field(2, description="N: the next symbol depends on the last N - 1 symbols")
    steps: int | None = Field(description="gradient descent steps (neural; null for counts)")
    lr: float | None = Field(description="learning rate (neural; null for counts)")
    reg: float | None = Field(description="weight of the mean(W^2) term (neural; null for counts)")
    seed: int | None = Field(description="seed of the initial W (neural; null for counts)")
    smoothing: float | str | None = Field(
        description="counts: 'kneser-ney', or K added to every count (add-k); null for neural"
    )
    holdout: float = Field(description="fraction of the word list held out from training")
    split_seed: int | None = Field(description="seed of the hold-out split")
    language: str | None = Field(
        None,
        description="the language of the model's lexicon (wordfreq's list for it, plus the "
        "training words), e.g. 'fr'; null: no lexicon unless LEXICON_PATH names one",
    )


class HoldoutInfo(BaseModel):
    nll: float | None = Field(
        description="mean NLL per predicted symbol of the held-out words, ends included (null "
        "if none)"
    )
    examples: int = Field(description="symbols of the held-out words predicted (ends included)")
    words: int = Field(description="held-out words scored")
    skipped: int = Field(description="held-out words skipped: a symbol outside the alphabet")
