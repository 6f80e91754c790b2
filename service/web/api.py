"""What every view shares: one request's model (`served`), validation of the query and body
by the view's pydantic model, JSON answers, and the documented error responses. The routes live
by concern in `service.web.views` (words, model, operations), each a blueprint built from the
model set it serves; a request reaches the model through its view, `served.py` and `service.lm`.
"""

from functools import wraps

from flask import Response, abort, current_app, request
from flask_openapi3 import Tag
from pydantic import BaseModel, ValidationError

from service.web import metrics
from service.web.errors import from_validation_error, problem_schema_ref
from service.web.registry import ModelSet
from service.web.served import ServedModel

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


CSV = "text/csv"


def wants_csv() -> bool:
    """Whether the request's Accept header prefers CSV to JSON (JSON without one)."""
    return request.accept_mimetypes.best_match(["application/json", CSV]) == CSV


def csv_text(text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(text, mimetype=CSV, headers=headers)  # charset=utf-8 added by Flask


def json_text(text: str) -> Response:
    return Response(text, mimetype="application/json")


def json_answer(model, exclude_none: bool = True) -> Response:
    return Response(model.model_dump_json(exclude_none=exclude_none), mimetype="application/json")


def models() -> ModelSet:
    return current_app.extensions["civil_words"]


def served(name: str | None) -> ServedModel:
    """The model a request asked for (`model=`), or the default one; unknown names are 404."""
    m = models().get(name)
    metrics.used_model(m.name)
    return m


def served_symbols(served_models: ModelSet) -> tuple[str, ...]:
    """The union of the served alphabets (the documented patterns); each view checks the chosen
    model's own."""
    return tuple(sorted({c for m in served_models.models.values() for c in m.file.alphabet}))
