"""Request and response bodies of the HTTP API, as pydantic models.

The OpenAPI document is generated from these; the views never validate by hand.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from functools import cache
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from service.lm.defaults import (
    DEFAULT_NLL_TOLERANCE,
    DEFAULT_OLD20_TOLERANCE,
    DEFAULT_PER_TARGET,
    MAX_OLD20,
    MAX_PER_TARGET,
    MAX_SEED,
    MAX_TARGETS,
    MAX_TEMPERATURE,
    MAX_TOLERANCE,
    MIN_TEMPERATURE,
)
from service.lm.metadata import HoldoutInfo, TrainingConfig

MAX_SCORE_WORDS = 1000  # words in one POST /score
_DIGITS = re.compile(r"[0-9]{1,25}")
_NUMBER = re.compile(r"[+-]?([0-9]{1,20}(\.[0-9]{0,20})?|\.[0-9]{1,20})([eE][+-]?[0-9]{1,3})?")


def _integer(value: Any) -> Any:
    """Query values arrive as text: accept plain ASCII digits only (no sign, no '1.0')."""
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise ValueError("must be a non-negative integer written in digits")
        return int(value)
    return value


Digits = BeforeValidator(_integer)


def _number(value: Any) -> Any:
    """A decimal number (`0.7`, `2`, `1e-1`); not `inf`, `nan`, hex or `1_0`."""
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value):
            raise ValueError("must be a decimal number")
        return float(value)
    return value


def _boolean(value: Any) -> Any:
    """`true` or `false`, as written in JSON (not `1`, `yes` or `on`)."""
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise ValueError("must be true or false")
        return value == "true"
    return value


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


Decimal = BeforeValidator(_number)
Boolean = BeforeValidator(_boolean)
NFC = AfterValidator(_nfc)


class Query(BaseModel):
    """Base of the query models: unknown parameters are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    @cache
    def model_json_schema(cls, *args, **kwargs) -> dict[str, Any]:  # type: ignore[override]
        # flask-openapi3 asks for the schema on every request; it never changes, so keep it.
        return super().model_json_schema(*args, **kwargs)


def _integer_schema(lo: int, hi: int, kind: str = "integer"):
    """Exact bounds for the document (and no `null` default where none is possible)."""

    def edit(schema: dict[str, Any]) -> None:
        schema.update(type=kind, minimum=lo, maximum=hi)
        if schema.get("default") is None:
            schema.pop("default", None)

    return edit


def _number_schema(lo: float, hi: float):
    return _integer_schema(lo, hi, "number")


def _enum_schema(names: tuple[str, ...]):
    def edit(schema: dict[str, Any]) -> None:
        schema.update(type="string", enum=list(names))
        schema.pop("default", None)

    return edit


def _model_field(names: tuple[str, ...]):
    """The `model` parameter of every model endpoint. The document lists the served names; the
    view looks the name up itself, so that an unknown one is a 404 that lists them."""
    return (
        str | SkipJsonSchema[None],
        Field(
            None,
            description="name of the model to use (see /models); the default model if absent",
            max_length=64,
            json_schema_extra=_enum_schema(names),
        ),
    )


def model_query(names: tuple[str, ...]) -> type[Query]:
    """The query of the endpoints that take only `model`."""
    return create_model("ModelQuery", __base__=Query, model=_model_field(names))


def _symbols_pattern(alphabet: tuple[str, ...], count: str) -> str:
    """A regular expression for `count` symbols of the alphabet other than `.`, each in one of
    its `spellings` (the server NFC-normalises what it is given)."""
    return f"^(?:{_symbol_regex(tuple(c for c in alphabet if c != '.'))}){count}$"


class SampleQueryBase(Query):
    @field_validator("max_len", check_fields=False)
    @classmethod
    def _range(cls, v: int | None, info: ValidationInfo) -> int | None:
        """min_len <= max_len, and the prefix fits: bad values whatever the model."""
        if v is None:
            return v
        lo, prefix = info.data.get("min_len"), info.data.get("prefix") or ""
        if lo is not None and lo > v:
            raise ValueError(f"must be at least min_len ({lo})")
        if len(prefix) > v:
            raise ValueError(f"the prefix has {len(prefix)} symbols, more than max_len ({v})")
        return v

    @field_validator("old20_max", check_fields=False)
    @classmethod
    def _old20_range(cls, v: float | None, info: ValidationInfo) -> float | None:
        lo = info.data.get("old20_min")
        if v is not None and lo is not None and lo > v:
            raise ValueError(f"must be at least old20_min ({lo})")
        return v


def sample_query(
    max_n: int, max_word_len: int, alphabet: tuple[str, ...], names: tuple[str, ...]
) -> type[Query]:
    """The /sample query model, with the configured maximum of n, the longest word, the served
    symbols (for the prefix pattern and top_k's maximum: with several models, those of all of
    them; the view checks the chosen model's) and the served names."""
    V = len(alphabet)
    old20 = Annotated[float, Decimal, Field(ge=0, le=MAX_OLD20)] | SkipJsonSchema[None]
    length = (
        Annotated[int, Digits, Field(ge=1, le=max_word_len)] | SkipJsonSchema[None],
        Field(None, json_schema_extra=_integer_schema(1, max_word_len)),
    )
    return create_model(
        "SampleQuery",
        __base__=SampleQueryBase,
        model=_model_field(names),
        n=(
            Annotated[int, Digits],
            Field(
                1,
                ge=1,
                le=max_n,
                description=f"number of words, 1 to {max_n}",
                json_schema_extra=_integer_schema(1, max_n),
            ),
        ),
        seed=(
            # Absent means "pick one"; there is no null in a query string, so the document
            # shows the integer alone.
            Annotated[int, Digits, Field(ge=0, le=MAX_SEED)] | SkipJsonSchema[None],
            Field(
                None,
                description="sampling seed, 0 to 2^63-1; picked at random if absent",
                json_schema_extra=_integer_schema(0, MAX_SEED),
            ),
        ),
        prefix=(
            Annotated[str, NFC],
            Field(
                "",
                max_length=max_word_len,
                description="every word starts with these symbols (NFC-normalised; symbols of "
                "the model's alphabet, not '.')",
                json_schema_extra={"pattern": _symbols_pattern(alphabet, "*")},
            ),
        ),
        min_len=(
            length[0],
            Field(
                None,
                description=f"fewest symbols per word, prefix included, 1 to {max_word_len}; "
                "no minimum if absent",
                json_schema_extra=_integer_schema(1, max_word_len),
            ),
        ),
        max_len=(
            length[0],
            Field(
                None,
                description=f"most symbols per word, prefix included, min_len to {max_word_len} "
                f"(the longest word the server makes, MAX_WORD_LEN, if absent)",
                json_schema_extra=_integer_schema(1, max_word_len),
            ),
        ),
        novel=(
            Annotated[bool, Boolean],
            Field(False, description="true: no word of the model's training word list"),
        ),
        unique=(
            Annotated[bool, Boolean],
            Field(False, description="true: no word twice in the answer"),
        ),
        temperature=(
            Annotated[float, Decimal],
            Field(
                1.0,
                ge=MIN_TEMPERATURE,
                le=MAX_TEMPERATURE,
                description=f"next-symbol probabilities become softmax(W[ix] / temperature), "
                f"{MIN_TEMPERATURE} to {MAX_TEMPERATURE:g}",
            ),
        ),
        top_k=(
            # Absent means all V symbols of the chosen model (V is per model).
            Annotated[int, Digits, Field(ge=1, le=V)] | SkipJsonSchema[None],
            Field(
                None,
                description="keep only the k most probable next symbols (ties to the lower "
                "index), 1 to the model's V (the /models `symbols`); all of them if absent",
                json_schema_extra=_integer_schema(1, V),
            ),
        ),
        old20_min=(
            old20,
            Field(
                None,
                description="only words whose OLD20 against the model's lexicon is at least "
                f"this, 0 to {MAX_OLD20:g} (exact, by whole-word rejection)",
                json_schema_extra=_number_schema(0, MAX_OLD20),
            ),
        ),
        old20_max=(
            old20,
            Field(
                None,
                description=f"only words whose OLD20 is at most this, old20_min to {MAX_OLD20:g}",
                json_schema_extra=_number_schema(0, MAX_OLD20),
            ),
        ),
        stats=(
            Annotated[bool, Boolean],
            Field(
                False,
                description="true: add `stats`, each word's figures (as /score gives them, "
                "without the bigrams)",
            ),
        ),
    )


def score_query(
    max_word_len: int, alphabet: tuple[str, ...], names: tuple[str, ...]
) -> type[Query]:
    """The GET /score query model."""
    return create_model(
        "ScoreQuery",
        __base__=Query,
        model=_model_field(names),
        word=(
            str,
            Field(
                min_length=1,
                max_length=max_word_len,
                description="the word to score (NFC-normalised): symbols of the model's "
                "alphabet, not '.'",
                json_schema_extra={"pattern": _symbols_pattern(alphabet, "+")},
            ),
        ),
    )


def next_query(max_word_len: int, alphabet: tuple[str, ...], names: tuple[str, ...]) -> type[Query]:
    """The GET /next query model."""
    return create_model(
        "NextQuery",
        __base__=Query,
        model=_model_field(names),
        context=(
            Annotated[str, NFC],
            Field(
                "",
                max_length=max_word_len,
                description="the beginning of a word (NFC-normalised; possibly empty, without "
                "'.'): symbols of the model's alphabet",
                json_schema_extra={"pattern": _symbols_pattern(alphabet, "*")},
            ),
        ),
    )


def score_body(max_word_len: int, alphabet: tuple[str, ...]) -> type[BaseModel]:
    """The POST /score body model."""
    Word = Annotated[
        str,
        Field(
            min_length=1,
            max_length=max_word_len,
            json_schema_extra={"pattern": _symbols_pattern(alphabet, "+")},
        ),
    ]
    return create_model(
        "ScoreBody",
        __config__=ConfigDict(extra="forbid"),
        words=(
            list[Word],
            Field(
                min_length=1,
                max_length=MAX_SCORE_WORDS,
                description=f"1 to {MAX_SCORE_WORDS} words to score, each NFC-normalised",
            ),
        ),
    )


def spellings(symbol: str) -> set[str]:
    """The ways of writing `symbol` that Unicode NFC normalisation turns back into it, made of
    its canonical decomposition: precomposed (`é`), decomposed (`e` + U+0301), partly composed,
    and with combining marks of different classes in either order. Other characters that NFC
    happens to map onto it (singletons such as U+212B ANGSTROM SIGN for `Å`) are not spellings."""
    nfd = unicodedata.normalize("NFD", symbol)
    base, marks = nfd[:1], nfd[1:]
    found = {symbol}
    for order in set(itertools.permutations(marks)):  # a symbol has few marks
        s = base + "".join(order)
        for k in range(1, len(s) + 1):
            found.add(unicodedata.normalize("NFC", s[:k]) + s[k:])
    return {s for s in found if unicodedata.normalize("NFC", s) == symbol}


def _escape(text: str) -> str:
    """Escape what is syntax in both ECMA-262 (JSON Schema's) and Python regular expressions."""
    return "".join("\\" + c if c in "^$\\.*+?()[]{}|/" else c for c in text)


@cache
def _symbol_regex(alphabet: tuple[str, ...]) -> str:
    """One symbol of the alphabet, in any of its `spellings`: an alternation."""
    in_class = "".join("\\" + c if c in "\\]^-[" else c for c in alphabet)
    longer = {w for c in alphabet for w in spellings(c) if len(w) > 1}
    # Longest first, then the one-character symbols as a class.
    ordered = sorted(longer, key=lambda w: (-len(w), w))
    return "|".join([*map(_escape, ordered), f"[{in_class}]"])


@cache
def bigram_regex(alphabet: tuple[str, ...]) -> re.Pattern[str]:
    """A /prob bigram: two symbols of the alphabet, each in one of its `spellings`, as two
    groups. The OpenAPI document states this very expression, and the view parses the bigram
    with it, so the document and the server cannot disagree on which bigrams are valid."""
    symbol = _symbol_regex(alphabet)
    return re.compile(f"^({symbol})({symbol})$")


def prob_query(alphabet: tuple[str, ...], names: tuple[str, ...]) -> type[Query]:
    """The /prob query model. Its document states the served model's alphabet as a pattern
    (`bigram_regex`), so that clients (and fuzzers) know which bigrams exist; the view matches
    the bigram itself, to say which symbol is unknown when it does not match."""
    return create_model(
        "ProbQuery",
        __base__=Query,
        model=_model_field(names),
        bigram=(
            str,
            Field(
                description="two symbols of the model's alphabet, the previous then the next; "
                "'.' stands for the start or end of a word. A symbol may be written precomposed "
                "or decomposed (`é` or `e` + U+0301 COMBINING ACUTE ACCENT): the answer names it "
                "in NFC",
                min_length=1,
                max_length=64,
                json_schema_extra={"pattern": bigram_regex(alphabet).pattern},
            ),
        ),
    )


class BigramScore(BaseModel):
    bigram: str = Field(description="the previous symbol and this one; '.' is the start or end")
    context: str = Field(
        description="the context the model conditions on for this symbol: its state (the "
        "previous symbol for a bigram model; '.' pads a word's start)"
    )
    logprob: float = Field(description="natural log of the symbol's probability in that context")


class LexiconMatch(BaseModel):
    word: str = Field(description="a lexicon word the word is taken for (accent-folded)")
    zipf: float | None = Field(description="its Zipf frequency; null if the source has none")


class NearWord(BaseModel):
    word: str = Field(description="a lexicon word")
    distance: int = Field(description="its Levenshtein distance to the word")


class WordStats(BaseModel):
    word: str = Field(description="the word, NFC-normalised")
    logprob: float = Field(description="sum of its symbols' log-probabilities, the end included")
    symbols: int = Field(description="its length in symbols; symbols + 1 are predicted")
    nll_per_symbol: float = Field(description="-logprob / (symbols + 1)")
    perplexity: float | None = Field(
        description="exp(nll_per_symbol); null if over the largest double"
    )
    in_corpus: bool | None = Field(
        description="whether the word is in the training word list; null if the model file "
        "carries none"
    )
    in_lexicon: bool | None = Field(
        description="whether the model's lexicon holds the word (NFC, lower case, "
        "accent-folded); null for a model without a lexicon"
    )
    matches: list[LexiconMatch] | None = Field(
        description="the lexicon words it is taken for, with their Zipf frequency"
    )
    old20: float | None = Field(
        description="mean Levenshtein distance to the 20 closest lexicon words other than "
        "itself (Yarkoni, Balota & Yap 2008)"
    )
    neighbours: list[str] | None = Field(
        description="lexicon words at distance 1 (as listed: accents kept), in lexicon order"
    )
    nearest: list[NearWord] | None = Field(
        description="up to 5 closest lexicon words other than itself: by distance, then "
        "lexicon order (for wordfreq, the more frequent first)"
    )


class WordScoreInfo(WordStats):
    bigrams: list[BigramScore] = Field(description="each symbol and the end, in order")


class ScoreResponse(BaseModel):
    scores: list[WordScoreInfo] = Field(description="one score per word, in order")


class SampleResponse(BaseModel):
    words: list[str] = Field(description="the sampled words, without the end marker")
    n: int = Field(description="number of words")
    seed: int = Field(description="the seed used: the same n and seed give the same words")
    model: str = Field(description="version of the model that sampled them")
    stats: list[WordStats] | None = Field(
        None, description="with stats=true: each word's figures, in order"
    )


class PseudowordsBodyBase(BaseModel):
    # Strict: JSON's true is no seed, nor 5.0 a count, nor "0.3" a tolerance.
    model_config = ConfigDict(extra="forbid", strict=True)

    per_target: int = Field(
        DEFAULT_PER_TARGET,
        ge=1,
        le=MAX_PER_TARGET,
        description=f"pseudowords for each target, 1 to {MAX_PER_TARGET}",
    )
    # Absent means "pick one" (or "the default model"); null is no value for either.
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = Field(
        None,
        description="seed, 0 to 2^63-1; picked at random if absent",
        json_schema_extra=_integer_schema(0, MAX_SEED),
    )
    old20_tolerance: float = Field(
        DEFAULT_OLD20_TOLERANCE,
        ge=0,
        le=MAX_TOLERANCE,
        allow_inf_nan=False,
        description="a pseudoword's OLD20 lies within this of its target's",
    )
    nll_tolerance: float = Field(
        DEFAULT_NLL_TOLERANCE,
        ge=0,
        le=MAX_TOLERANCE,
        allow_inf_nan=False,
        description="a pseudoword's NLL per symbol lies within this of its target's",
    )


def pseudowords_body(max_word_len: int, names: tuple[str, ...]) -> type[BaseModel]:
    """The POST /pseudowords body model."""
    Target = Annotated[str, Field(min_length=1, max_length=max_word_len)]
    return create_model(
        "PseudowordsBody",
        __base__=PseudowordsBodyBase,
        targets=(
            list[Target],
            Field(
                min_length=1,
                max_length=MAX_TARGETS,
                description=f"1 to {MAX_TARGETS} target words (NFC-normalised, lower-cased; "
                "each matched with pseudowords of its length)",
            ),
        ),
        model=(
            Annotated[str, Field(max_length=64)],
            Field(
                None,
                description="name of the model to use (see /models); the default model if absent",
                json_schema_extra=_enum_schema(names),
            ),
        ),
    )


class MatchedWord(BaseModel):
    word: str = Field(description="the word (NFC, lower case)")
    length: int = Field(description="symbols")
    nll_per_symbol: float = Field(description="its NLL per symbol under the model, end included")
    old20: float | None = Field(description="its OLD20 against the model's lexicon")
    neighbours: list[str] = Field(description="lexicon words at distance 1")


class TargetWord(MatchedWord):
    in_lexicon: bool = Field(description="whether the lexicon holds the target")
    zipf: float | None = Field(
        description="the highest Zipf frequency of the lexicon words it is taken for"
    )


class MatchedItem(BaseModel):
    target: TargetWord
    pseudowords: list[MatchedWord]


class UnmatchedTarget(BaseModel):
    target: str = Field(description="the target as given")
    reason: str = Field(description="why it could not be matched")


class MeanSd(BaseModel):
    mean: float | None
    sd: float | None = Field(description="sample standard deviation; null below two values")


class SetSummary(BaseModel):
    count: int
    length: MeanSd
    old20: MeanSd
    nll_per_symbol: MeanSd


class PseudowordsSummary(BaseModel):
    targets: SetSummary = Field(description="the answered targets")
    pseudowords: SetSummary = Field(description="their pseudowords")


class PseudowordsResponse(BaseModel):
    items: list[MatchedItem] = Field(description="the matched targets, in order")
    unmatched: list[UnmatchedTarget] = Field(description="the targets not matched, in order")
    summary: PseudowordsSummary
    seed: int
    model: str = Field(description="version of the model")


class ProbResponse(BaseModel):
    bigram: str = Field(description="the bigram asked for, NFC-normalised")
    prob: float = Field(ge=0, le=1, description="probability that the 2nd symbol follows the 1st")
    logprob: float = Field(description="natural log of prob")


class LossResponse(BaseModel):
    loss: float = Field(
        description="the notebook's loss of the served W: mean NLL + reg mean(W^2); the NLL for "
        "a counting model"
    )
    nll: float = Field(description="mean negative log-likelihood over the training examples")
    examples: int = Field(description="training examples: symbols predicted (bigrams at order 2)")
    holdout: HoldoutInfo | None = Field(
        None, description="the held-out words' figures, when the model was trained with a hold-out"
    )


class LexiconInfo(BaseModel):
    source: str = Field(description="wordfreq's list (package version, language) or the file")
    size: int = Field(description="distinct words: the source's and the training words")
    extra_words: int = Field(description="training words the source did not hold")


class ModelEntry(BaseModel):
    name: str = Field(description="the name to pass as `model=`")
    version: str = Field(description="content-derived version of the model")
    method: str = Field(description="'neural' or 'counts'")
    order: int = Field(description="N: the next symbol depends on the last N - 1 symbols")
    smoothing: float | str | None = Field(
        description="counts: 'kneser-ney' or add-k's K; null for neural"
    )
    symbols: int = Field(description="V: the alphabet's size, '.' included")
    nll: float = Field(description="mean NLL per symbol on its training words")
    holdout_nll: float | None = Field(
        description="mean NLL per symbol on its held-out words; null without a hold-out"
    )
    default: bool = Field(description="whether a request without `model=` gets this model")
    lexicon: LexiconInfo | None = Field(description="its lexicon; null without one")


class ModelsResponse(BaseModel):
    models: list[ModelEntry] = Field(description="every served model, by name")


class Status(BaseModel):
    status: str = Field(description="'ok' (alive) or 'ready' (model loaded and usable)")
    model: str | None = Field(None, description="version of the served model")


class WordListInfo(BaseModel):
    words: int = Field(description="distinct training words stored in the model file")
    heldout: int = Field(description="distinct held-out words stored in the model file")


class CorpusInfo(BaseModel):
    sha256: str = Field(description="sha256 of the training word list")
    bytes: int
    words: int


class LossInfo(BaseModel):
    first: float = Field(description="loss of the initial W (the notebook's first printed loss)")
    last: float = Field(description="loss before the last step (the notebook's last print)")
    final: float = Field(description="loss of the stored W, regularisation included")
    nll: float = Field(description="mean NLL of the stored W")
    curve: list[tuple[int, float]] = Field(description="coarse loss curve: [step, loss] pairs")


class ModelInfo(BaseModel):
    version: str = Field(description="content-derived version of the model")
    alphabet: list[str] = Field(description="symbols in index order; '.' is the start/end marker")
    shape: tuple[int, int] = Field(
        description="(S, V): the model's states by symbols; (V, V) for a bigram model (W's)"
    )
    order: int = Field(description="N: the next symbol depends on the last N - 1 symbols")
    smoothing: str = Field(
        description="how the next-symbol probabilities are made: 'neural', 'add-k:K' or "
        "'kneser-ney'"
    )
    states: int = Field(description="S: the contexts the model conditions on")
    contexts: int = Field(description="the seen contexts of N - 1 symbols (with '.' padding)")
    discounts: list[tuple[float, float, float]] | None = Field(
        None,
        description="Kneser–Ney: (D1, D2, D3+) of each level, order 1 to N; null otherwise",
    )
    config: TrainingConfig
    examples: int
    corpus: CorpusInfo
    loss: LossInfo
    holdout: HoldoutInfo | None = Field(None, description="held-out figures, if any")
    word_list: WordListInfo | None = Field(
        description="the word lists the file carries (for `novel` and `in_corpus`); null in "
        "files written before word lists were stored"
    )
    created: str | None = None
    torch_version: str | None = None
    lexicon: LexiconInfo | None = Field(
        None,
        description="the real words a pseudoword must not be (novel, OLD20); null without one",
    )


class NextSymbol(BaseModel):
    symbol: str = Field(description="a symbol of the alphabet; '.' ends the word")
    prob: float = Field(ge=0, le=1, description="its probability after the context")
    logprob: float = Field(description="natural log of prob")


class NextResponse(BaseModel):
    context: str = Field(description="the beginning of a word asked about, NFC-normalised")
    state: str = Field(
        description="the context the model actually conditions on ('.' pads a word's start; a "
        "shorter one when the model backs off)"
    )
    next: list[NextSymbol] = Field(
        description="every symbol of the alphabet, most probable first (ties: alphabet order)"
    )


class MatrixResponse(BaseModel):
    model: str = Field(description="model version")
    alphabet: list[str]
    probs: list[list[float]] = Field(description="P[i][j]: probability that symbol j follows i")


class FieldError(BaseModel):
    parameter: str = Field(description="the parameter at fault (`words[3]`: a body item)")
    reason: str = Field(description="what is wrong with it")
    word: str | None = Field(None, description="the word at fault (/score)")
    symbol: str | None = Field(None, description="the symbol at fault in it (/score)")
    position: int | None = Field(None, description="its position in the word, 1 first (/score)")


class Problem(BaseModel):
    """An error, as RFC 9457 `application/problem+json`."""

    type: str = Field("about:blank", description="URI reference identifying the problem type")
    title: str = Field(description="short summary of the problem type")
    status: int = Field(description="HTTP status code")
    detail: str | None = Field(None, description="explanation of this occurrence")
    instance: str | None = Field(None, description="the request path")
    errors: list[FieldError] | None = Field(None, description="one entry per bad parameter")
    found: int | None = Field(
        None, description="words found before the rejection budget ran out (improbable)"
    )
