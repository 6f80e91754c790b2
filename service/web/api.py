"""The JSON API: one blueprint, thin views over `ServedModel`."""

import secrets
from functools import wraps

from flask import Response, abort, current_app, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ValidationError

from service.lm.constrained import Constraints
from service.lm.score import UnknownSymbolError, scores_json
from service.settings import Settings
from service.web import metrics
from service.web.errors import (
    InvalidParameter,
    from_validation_error,
    log,
    problem_response,
    problem_schema_ref,
)
from service.web.registry import ModelSet
from service.web.schemas import (
    MAX_SCORE_WORDS,
    LossResponse,
    MatrixResponse,
    ModelInfo,
    ModelsResponse,
    NextResponse,
    Problem,
    ProbResponse,
    SampleResponse,
    ScoreResponse,
    Status,
    WordScoreInfo,
    model_query,
    next_query,
    prob_query,
    sample_query,
    score_body,
    score_query,
)
from service.web.served import ServedModel, UnknownSymbol

MODEL_TAG = Tag(name="model", description="Words and numbers from the language models")
OPS_TAG = Tag(name="operations", description="Health, readiness and metrics")
BAD_REQUEST = {400: problem_schema_ref()}
NOT_FOUND = {404: problem_schema_ref()}  # `model=` names no served model
UNPROCESSABLE = {422: problem_schema_ref()}
TOO_LARGE = {413: problem_schema_ref()}


def validated(
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    max_body: int | None = None,
):
    """Validate the query string or JSON body with the view's pydantic model, here; a body of
    up to `max_body` bytes (else the app's MAX_CONTENT_LENGTH) is read.

    flask-openapi3 still documents the view from its annotations; `__delay_validate_request__`
    (its own `validate_request` decorator's mark) tells it the view validates itself. Its
    generic parsing walks the model's JSON schema field by field on every request, a cost the
    default `/sample?n=1` would pay for each of its nine parameters; `model_validate` on the
    query's own items is the same validation (first value of a repeated key, unknown keys
    refused) for a fraction of that.
    """

    def decorate(view):
        @wraps(view)
        def checked(**kwargs):
            try:
                if query is not None:
                    kwargs["query"] = query.model_validate(request.args.to_dict())
                if body is not None:
                    if max_body is not None:
                        request.max_content_length = max_body
                    kwargs["body"] = body.model_validate(request.get_json(silent=True))
            except ValidationError as e:
                abort(from_validation_error(e))
            return view(**kwargs)

        checked.__delay_validate_request__ = True
        return checked

    return decorate


def _json_text(text: str) -> Response:
    return Response(text, mimetype="application/json")


def _json(model, exclude_none: bool = True) -> Response:
    return Response(model.model_dump_json(exclude_none=exclude_none), mimetype="application/json")


def models() -> ModelSet:
    return current_app.extensions["civil_words"]


def served(name: str | None) -> ServedModel:
    """The model a request asked for (`model=`), or the default one; unknown names are 404."""
    m = models().get(name)
    metrics.used_model(m.name)
    return m


def create_api(settings: Settings, served_models: ModelSet) -> APIBlueprint:
    api = APIBlueprint("api", __name__)
    names = served_models.names
    # The union of the served alphabets: each view checks the chosen model's own.
    symbols = tuple(sorted({c for m in served_models.models.values() for c in m.file.alphabet}))
    SampleQuery = sample_query(settings.max_n, settings.max_word_len, symbols, names)
    ProbQuery = prob_query(symbols, names)
    ModelQuery = model_query(names)
    ScoreQuery = score_query(settings.max_word_len, symbols, names)
    NextQuery = next_query(settings.max_word_len, symbols, names)
    ScoreBody = score_body(settings.max_word_len, symbols)
    # The largest valid body, written compactly: every word at its longest, each symbol escaped
    # as a JSON surrogate pair (12 bytes), with quotes and commas. Other routes keep the app's
    # 16 KiB.
    score_bytes = MAX_SCORE_WORDS * (settings.max_word_len * 12 + 3) + 64

    @api.get(
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
        that the request's bounded work cannot find n words."""
        q = query
        m = served(q.model)
        seed = q.seed if q.seed is not None else secrets.randbelow(2**63)
        c = Constraints(q.prefix, q.min_len, q.max_len, q.novel, q.unique, q.temperature, q.top_k)
        result = m.sample(q.n, seed, c)
        metrics.words_generated(m.name, q.n, result.constrained)
        if result.rejected:
            metrics.words_rejected(m.name, result.rejected)
        # Our own output, built from validated values: no need to validate it again.
        return _json(
            SampleResponse.model_construct(words=result.words, n=q.n, seed=seed, model=m.version)
        )

    @api.get(
        "/score",
        tags=[MODEL_TAG],
        responses={200: WordScoreInfo, **BAD_REQUEST, **NOT_FOUND},
        summary="Score a word",
    )
    @validated(query=ScoreQuery)
    def score(query: ScoreQuery):  # type: ignore[valid-type]
        """How likely the model finds a word: its bigrams' log-probabilities, start and end
        included, their sum, the NLL per symbol and the perplexity."""
        (result,) = served(query.model).score([query.word])
        return _json_text(scores_json([result])[0])

    @api.post(
        "/score",
        tags=[MODEL_TAG],
        responses={200: ScoreResponse, **BAD_REQUEST, **NOT_FOUND, **TOO_LARGE},
        summary=f"Score 1 to {MAX_SCORE_WORDS} words",
    )
    @validated(query=ModelQuery, body=ScoreBody, max_body=score_bytes)
    def score_many(query: ModelQuery, body: ScoreBody):  # type: ignore[valid-type]
        """The scores of `{"words": [...]}`, in order."""
        scores = ",".join(scores_json(served(query.model).score(body.words)))
        return _json_text(f'{{"scores":[{scores}]}}')

    @api.get(
        "/next",
        tags=[MODEL_TAG],
        responses={200: NextResponse, **BAD_REQUEST, **NOT_FOUND},
        summary="What comes next",
    )
    @validated(query=NextQuery)
    def next_symbol(query: NextQuery):  # type: ignore[valid-type]
        """The distribution of the symbol after the beginning of a word (empty: the first
        symbol): every symbol, most probable first, and the context the model conditions on."""
        try:
            return _json(served(query.model).next(query.context))
        except UnknownSymbolError as e:
            raise InvalidParameter("context", e.reason) from None

    @api.get(
        "/prob",
        tags=[MODEL_TAG],
        responses={200: ProbResponse, **BAD_REQUEST, **NOT_FOUND, **UNPROCESSABLE},
        summary="Probability of a bigram",
    )
    def prob(query: ProbQuery):  # type: ignore[valid-type]
        """The model's probability that the second symbol follows the first (a bigram model's
        view: 422 on a model of order N > 2, which /next answers)."""
        try:
            return _json(served(query.model).prob(query.bigram))
        except UnknownSymbol as e:
            raise InvalidParameter("bigram", str(e)) from None

    @api.get(
        "/loss",
        tags=[MODEL_TAG],
        responses={200: LossResponse, **BAD_REQUEST, **NOT_FOUND},
        summary="Training loss",
    )
    def loss(query: ModelQuery):  # type: ignore[valid-type]
        """The served model's loss on its training corpus, from the stored bigram counts, and
        its held-out figures (null when nothing was held out)."""
        return _json(served(query.model).loss, exclude_none=False)  # a held-out nll may be null

    @api.get(
        "/model",
        tags=[MODEL_TAG],
        responses={200: ModelInfo, **BAD_REQUEST, **NOT_FOUND},
        summary="Model metadata",
    )
    def model(query: ModelQuery):  # type: ignore[valid-type]
        """Version, alphabet, shape, training settings, corpus checksum and losses."""
        # Every key, null where not applicable.
        return _json(served(query.model).info, exclude_none=False)

    @api.get(
        "/matrix",
        tags=[MODEL_TAG],
        responses={200: MatrixResponse, **BAD_REQUEST, **NOT_FOUND, **UNPROCESSABLE},
        summary="Probability matrix",
    )
    def matrix(query: ModelQuery):  # type: ignore[valid-type]
        """The whole matrix P (V x V): row = previous symbol, column = next symbol (a bigram
        model's view: 422 on a model of order N > 2)."""
        return _json(served(query.model).bigram_matrix())

    @api.get("/models", tags=[MODEL_TAG], responses={200: ModelsResponse}, summary="Models")
    def models_view():
        """Every served model: its name (for `model=`), version, method and alphabet size."""
        return _json(models().listing, exclude_none=False)  # null: no smoothing, hold-out

    @api.get("/healthz", tags=[OPS_TAG], responses={200: Status}, summary="Liveness")
    def healthz():
        """The process answers."""
        return _json(Status(status="ok"))

    @api.get(
        "/readyz",
        tags=[OPS_TAG],
        responses={200: Status, 503: problem_schema_ref()},
        summary="Readiness",
    )
    def readyz():
        """Every model is loaded and samples."""
        ms = models()
        try:
            for m in ms.models.values():
                m.sampler.sample(1, 0, 8)
        except Exception:
            log.exception("readiness check failed")
            return problem_response(
                Problem(
                    title="Service Unavailable",
                    status=503,
                    detail="the model cannot sample",
                    instance="/readyz",
                )
            )
        return _json(Status(status="ready", model=ms.get().version))

    @api.get(
        "/metrics",
        tags=[OPS_TAG],
        summary="Prometheus metrics",
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def metrics_view():
        """Prometheus text format, summed over all workers."""
        return metrics.render()

    return api
