"""The JSON API: one blueprint, thin views over `ServedModel`."""

import secrets

from flask import Response, current_app
from flask_openapi3 import APIBlueprint, Tag

from service.settings import Settings
from service.web import metrics
from service.web.errors import InvalidParameter, log, problem_response, problem_schema_ref
from service.web.schemas import (
    LossResponse,
    MatrixResponse,
    ModelInfo,
    Problem,
    ProbResponse,
    SampleResponse,
    Status,
    prob_query,
    sample_query,
)
from service.web.served import ServedModel, UnknownSymbol

MODEL_TAG = Tag(name="model", description="Words and numbers from the bigram model")
OPS_TAG = Tag(name="operations", description="Health, readiness and metrics")
BAD_REQUEST = {400: problem_schema_ref()}


def _json(model, exclude_none: bool = True) -> Response:
    return Response(model.model_dump_json(exclude_none=exclude_none), mimetype="application/json")


def served() -> ServedModel:
    return current_app.extensions["civil_words"]


def create_api(settings: Settings, alphabet: tuple[str, ...]) -> APIBlueprint:
    api = APIBlueprint("api", __name__)
    SampleQuery = sample_query(settings.max_n)
    ProbQuery = prob_query(alphabet)

    @api.get(
        "/sample",
        tags=[MODEL_TAG],
        responses={200: SampleResponse, **BAD_REQUEST},
        summary="Sample words",
    )
    def sample(query: SampleQuery):  # type: ignore[valid-type]
        """n words from the model; the same seed gives the same words (the notebook's)."""
        m = served()
        seed = query.seed if query.seed is not None else secrets.randbelow(2**63)
        words = m.sampler.sample(query.n, seed, settings.max_word_len)
        metrics.words_generated(m.version, query.n)
        # Our own output, built from validated values: no need to validate it again.
        return _json(
            SampleResponse.model_construct(words=words, n=query.n, seed=seed, model=m.version)
        )

    @api.get(
        "/prob",
        tags=[MODEL_TAG],
        responses={200: ProbResponse, **BAD_REQUEST},
        summary="Probability of a bigram",
    )
    def prob(query: ProbQuery):  # type: ignore[valid-type]
        """The model's probability that the second symbol follows the first."""
        try:
            return _json(served().prob(query.bigram))
        except UnknownSymbol as e:
            raise InvalidParameter("bigram", str(e)) from None

    @api.get("/loss", tags=[MODEL_TAG], responses={200: LossResponse}, summary="Training loss")
    def loss():
        """The served model's loss on its training corpus, from the stored bigram counts, and
        its held-out figures (null when nothing was held out)."""
        return _json(served().loss, exclude_none=False)  # a held-out nll may be null

    @api.get("/model", tags=[MODEL_TAG], responses={200: ModelInfo}, summary="Model metadata")
    def model():
        """Version, alphabet, shape, training settings, corpus checksum and losses."""
        return _json(served().info, exclude_none=False)  # every key, null where not applicable

    @api.get(
        "/matrix", tags=[MODEL_TAG], responses={200: MatrixResponse}, summary="Probability matrix"
    )
    def matrix():
        """The whole matrix P (V x V): row = previous symbol, column = next symbol."""
        return _json(served().matrix)

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
        """The model is loaded and samples."""
        m = served()
        try:
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
        return _json(Status(status="ready", model=m.version))

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
