"""The words: GET /sample (under constraints), GET and POST /score, POST /pseudowords; JSON, or
CSV for `Accept: text/csv`."""

import secrets

from flask_openapi3 import APIBlueprint
from pydantic_core import to_json

from service.lm.constrained import Constraints
from service.lm.defaults import MAX_SEED, MAX_TARGETS
from service.lm.score import scores_json
from service.lm.tables import pseudowords_csv, scores_csv, words_csv
from service.settings import Settings
from service.web import metrics
from service.web.api import (
    BAD_REQUEST,
    MODEL_TAG,
    NOT_FOUND,
    TOO_LARGE,
    UNPROCESSABLE,
    csv_text,
    json_answer,
    json_text,
    served,
    served_symbols,
    validated,
    wants_csv,
)
from service.web.registry import ModelSet
from service.web.schemas import (
    MAX_SCORE_WORDS,
    PseudowordsResponse,
    SampleResponse,
    ScoreResponse,
    WordScoreInfo,
    model_query,
    pseudowords_body,
    sample_query,
    score_body,
    score_query,
)


def blueprint(settings: Settings, served_models: ModelSet) -> APIBlueprint:
    bp = APIBlueprint("words", __name__)
    names, symbols = served_models.names, served_symbols(served_models)
    SampleQuery = sample_query(settings.max_n, settings.max_word_len, symbols, names)
    ModelQuery = model_query(names)
    ScoreQuery = score_query(settings.max_word_len, symbols, names)
    ScoreBody = score_body(settings.max_word_len, symbols)
    # The largest valid body, written compactly: every word at its longest, each symbol escaped
    # as a JSON surrogate pair (12 bytes), with quotes and commas. Other routes keep the app's
    # 16 KiB.
    score_bytes = MAX_SCORE_WORDS * (settings.max_word_len * 12 + 3) + 64
    PseudowordsBody = pseudowords_body(settings.max_word_len, names)
    pseudowords_bytes = MAX_TARGETS * (settings.max_word_len * 12 + 3) + 1024

    @bp.get(
        "/sample",
        tags=[MODEL_TAG],
        responses={200: SampleResponse, **BAD_REQUEST, **NOT_FOUND, **UNPROCESSABLE},
        summary="Sample words, optionally under constraints",
    )
    @validated(query=SampleQuery)
    def sample(query: SampleQuery):  # type: ignore[valid-type]
        """n words from the model; the same seed gives the same words (the notebook's, without
        constraints). Constraints condition the model exactly: each word comes with probability
        P(w) / P(constraints). 422 when no word can meet them, or when they are so improbable
        that the request's bounded work cannot find n words. With `Accept: text/csv`, CSV: a
        `word` column (with stats=true, /score's columns), the seed and model version in the
        `X-Seed` and `X-Model` headers."""
        q = query
        m = served(q.model)
        seed = q.seed if q.seed is not None else secrets.randbelow(MAX_SEED + 1)
        c = Constraints(
            q.prefix,
            q.min_len,
            q.max_len,
            q.novel,
            q.unique,
            q.temperature,
            q.top_k,
            q.old20_min,
            q.old20_max,
        )
        allowance = m.allowance()  # the request's lexicon work: OLD20 filters and stats
        result = m.sample(q.n, seed, c, allowance)
        metrics.words_generated(m.name, q.n, result.constrained)
        if result.rejected:
            metrics.words_rejected(m.name, result.rejected)
        stats = m.score(result.words, "stats", allowance) if q.stats else None
        if wants_csv():
            table = words_csv(result.words) if stats is None else scores_csv(stats)
            return csv_text(table, {"X-Seed": str(seed), "X-Model": m.version})
        # Our own output, built from validated values: no need to validate it again.
        answer = SampleResponse.model_construct(
            words=result.words, n=q.n, seed=seed, model=m.version
        )
        if stats is None:
            return json_answer(answer)
        text = answer.model_dump_json(exclude_none=True)
        return json_text(f'{text[:-1]},"stats":[{",".join(scores_json(stats, bigrams=False))}]}}')

    @bp.get(
        "/score",
        tags=[MODEL_TAG],
        responses={200: WordScoreInfo, **BAD_REQUEST, **NOT_FOUND},
        summary="Score a word",
    )
    @validated(query=ScoreQuery)
    def score(query: ScoreQuery):  # type: ignore[valid-type]
        """How likely the model finds a word: its bigrams' log-probabilities, start and end
        included, their sum, the NLL per symbol and the perplexity; and, for a model with a
        lexicon, whether it is a real word, its OLD20, neighbours and nearest words. With
        `Accept: text/csv`, CSV (one row, without the bigrams)."""
        (result,) = served(query.model).score([query.word], "word")
        if wants_csv():
            return csv_text(scores_csv([result]))
        return json_text(scores_json([result])[0])

    @bp.post(
        "/score",
        tags=[MODEL_TAG],
        responses={200: ScoreResponse, **BAD_REQUEST, **NOT_FOUND, **TOO_LARGE},
        summary=f"Score 1 to {MAX_SCORE_WORDS} words",
    )
    @validated(query=ModelQuery, body=ScoreBody, max_body=score_bytes)
    def score_many(query: ModelQuery, body: ScoreBody):  # type: ignore[valid-type]
        """The scores of `{"words": [...]}`, in order (CSV for `Accept: text/csv`)."""
        results = served(query.model).score(body.words, "words")
        if wants_csv():
            return csv_text(scores_csv(results))
        return json_text(f'{{"scores":[{",".join(scores_json(results))}]}}')

    @bp.post(
        "/pseudowords",
        tags=[MODEL_TAG],
        responses={
            200: PseudowordsResponse,
            **BAD_REQUEST,
            **NOT_FOUND,
            **TOO_LARGE,
            **UNPROCESSABLE,
        },
        summary=f"Pseudowords matched to 1 to {MAX_TARGETS} target words",
    )
    @validated(body=PseudowordsBody, max_body=pseudowords_bytes)
    def pseudowords(body: PseudowordsBody):  # type: ignore[valid-type]
        """For each target, `per_target` novel words of its length (unique in the answer) whose
        OLD20 and NLL per symbol lie within the tolerances of the target's; targets that cannot
        be matched within the request's bounded work are listed under `unmatched` with the
        reason. Exact: each word comes with probability P(w) / P(constraints). With `Accept:
        text/csv`, CSV: a row per target, then its pseudowords, then the unmatched targets."""
        m = served(body.model)
        seed = body.seed if body.seed is not None else secrets.randbelow(MAX_SEED + 1)
        matched = m.pseudowords(
            body.targets, body.per_target, seed, body.old20_tolerance, body.nll_tolerance
        )
        words = sum(len(item.pseudowords) for item in matched.items)
        metrics.words_generated(m.name, words, True)
        if wants_csv():
            return csv_text(pseudowords_csv(matched), {"X-Seed": str(seed), "X-Model": m.version})
        # Our own output, built from validated values (as /sample's): written, not validated.
        return json_text(to_json(matched.json(seed, m.version)).decode())

    return bp
