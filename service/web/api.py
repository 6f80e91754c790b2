"""The JSON API: one blueprint, thin views over `ServedModel`."""

import secrets

from flask import Response, current_app
from flask_openapi3 import APIBlueprint, Tag

from service.settings import Settings
from service.web import metrics
from service.web.errors import InvalidParameter, log, problem_response, problem_schema_ref
from service.web.registry import ModelSet
from service.web.schemas import (
    LossResponse,
    MatrixResponse,
    ModelInfo,
    ModelsResponse,
    Problem,
    ProbResponse,
    SampleResponse,
    Status,
    model_query,
    prob_query,
    sample_query,
)
from service.web.served import ServedModel, UnknownSymbol

MODEL_TAG = Tag(name="model", description="Words and numbers from the bigram model")
OPS_TAG = Tag(name="operations", description="Health, readiness and metrics")
BAD_REQUEST = {400: problem_schema_ref()}
NOT_FOUND = {404: problem_schema_ref()}  # `model=` names no served model


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
    SampleQuery = sample_query(settings.max_n, names)
    # The union of the served alphabets: the view says which symbol a given model lacks.
    symbols = sorted({c for m in served_models.models.values() for c in m.file.alphabet})
    ProbQuery = prob_query(tuple(symbols), names)
    ModelQuery = model_query(names)

    @api.get(
        "/sample",
        tags=[MODEL_TAG],
        responses={200: SampleResponse, **BAD_REQUEST, **NOT_FOUND},
        summary="Sample words",
    )
    def sample(query: SampleQuery):  # type: ignore[valid-type]
        """n words from the model; the same seed gives the same words (the notebook's)."""
        m = served(query.model)
        seed = query.seed if query.seed is not None else secrets.randbelow(2**63)
        words = m.sampler.sample(query.n, seed, settings.max_word_len)
        metrics.words_generated(m.name, query.n)
        # Our own output, built from validated values: no need to validate it again.
        return _json(
            SampleResponse.model_construct(words=words, n=query.n, seed=seed, model=m.version)
        )

    @api.get(
        "/prob",
        tags=[MODEL_TAG],
        responses={200: ProbResponse, **BAD_REQUEST, **NOT_FOUND},
        summary="Probability of a bigram",
    )
    def prob(query: ProbQuery):  # type: ignore[valid-type]
        """The model's probability that the second symbol follows the first."""
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
        responses={200: MatrixResponse, **BAD_REQUEST, **NOT_FOUND},
        summary="Probability matrix",
    )
    def matrix(query: ModelQuery):  # type: ignore[valid-type]
        """The whole matrix P (V x V): row = previous symbol, column = next symbol."""
        return _json(served(query.model).matrix)

    @api.get("/models", tags=[MODEL_TAG], responses={200: ModelsResponse}, summary="Models")
    def models_view():
        """Every served model: its name (for `model=`), version, method and alphabet size."""
        return _json(models().listing)

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
