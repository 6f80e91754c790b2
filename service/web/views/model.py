"""The model's numbers: GET /next, /prob, /matrix, /loss, /model and /models."""

from flask_openapi3 import APIBlueprint

from service.lm.score import UnknownSymbolError
from service.settings import Settings
from service.web.api import (
    BAD_REQUEST,
    MODEL_TAG,
    NOT_FOUND,
    UNPROCESSABLE,
    json_answer,
    models,
    served,
    served_symbols,
    validated,
)
from service.web.errors import InvalidParameter
from service.web.registry import ModelSet
from service.web.schemas import (
    LossResponse,
    MatrixResponse,
    ModelInfo,
    ModelsResponse,
    NextResponse,
    ProbResponse,
    model_query,
    next_query,
    prob_query,
)
from service.web.served import UnknownSymbol


def blueprint(settings: Settings, served_models: ModelSet) -> APIBlueprint:
    bp = APIBlueprint("model", __name__)
    names, symbols = served_models.names, served_symbols(served_models)
    ProbQuery = prob_query(symbols, names)
    ModelQuery = model_query(names)
    NextQuery = next_query(settings.max_word_len, symbols, names)

    @bp.get(
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
            return json_answer(served(query.model).next(query.context))
        except UnknownSymbolError as e:
            raise InvalidParameter("context", e.reason) from None

    @bp.get(
        "/prob",
        tags=[MODEL_TAG],
        responses={200: ProbResponse, **BAD_REQUEST, **NOT_FOUND, **UNPROCESSABLE},
        summary="Probability of a bigram",
    )
    def prob(query: ProbQuery):  # type: ignore[valid-type]
        """The model's probability that the second symbol follows the first (a bigram model's
        view: 422 on a model of order N > 2, which /next answers)."""
        try:
            return json_answer(served(query.model).prob(query.bigram))
        except UnknownSymbol as e:
            raise InvalidParameter("bigram", str(e)) from None

    @bp.get(
        "/loss",
        tags=[MODEL_TAG],
        responses={200: LossResponse, **BAD_REQUEST, **NOT_FOUND},
        summary="Training loss",
    )
    def loss(query: ModelQuery):  # type: ignore[valid-type]
        """The served model's loss on its training corpus, from the stored bigram counts, and
        its held-out figures (null when nothing was held out)."""
        return json_answer(
            served(query.model).loss, exclude_none=False
        )  # a held-out nll may be null

    @bp.get(
        "/model",
        tags=[MODEL_TAG],
        responses={200: ModelInfo, **BAD_REQUEST, **NOT_FOUND},
        summary="Model metadata",
    )
    def model(query: ModelQuery):  # type: ignore[valid-type]
        """Version, alphabet, shape, training settings, corpus checksum and losses."""
        # Every key, null where not applicable.
        return json_answer(served(query.model).info, exclude_none=False)

    @bp.get(
        "/matrix",
        tags=[MODEL_TAG],
        responses={200: MatrixResponse, **BAD_REQUEST, **NOT_FOUND, **UNPROCESSABLE},
        summary="Probability matrix",
    )
    def matrix(query: ModelQuery):  # type: ignore[valid-type]
        """The whole matrix P (V x V): row = previous symbol, column = next symbol (a bigram
        model's view: 422 on a model of order N > 2)."""
        return json_answer(served(query.model).bigram_matrix())

    @bp.get("/models", tags=[MODEL_TAG], responses={200: ModelsResponse}, summary="Models")
    def models_view():
        """Every served model: its name (for `model=`), version, method and alphabet size."""
        return json_answer(models().listing, exclude_none=False)  # null: no smoothing, hold-out

    return bp
