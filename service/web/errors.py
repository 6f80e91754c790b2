"""The one place where errors become `application/problem+json` (RFC 9457).

Validation errors name each bad parameter and the reason; HTTP errors keep their status;
anything unexpected is logged here and answered 500 without internals.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from service.lm.constrained import (
    BadConstraint,
    ConstraintError,
    ImpossibleConstraints,
    ImprobableConstraints,
    NoLexicon,
    NoWordList,
)
from service.lm.score import UnknownSymbolError
from service.web.registry import UnknownModel
from service.web.schemas import FieldError, Problem
from service.web.served import LexiconWorkExceeded, NotABigramModel

PROBLEM_JSON = "application/problem+json"
INVALID_PARAMETER = "urn:civil-words:problem:invalid-parameter"
UNKNOWN_MODEL = "urn:civil-words:problem:unknown-model"
NOT_A_BIGRAM_MODEL = "urn:civil-words:problem:not-a-bigram-model"
# 422: the request is well formed, but the model cannot answer it.
UNPROCESSABLE = {
    ImpossibleConstraints: (
        "urn:civil-words:problem:impossible-constraints",
        "No word meets the constraints",
    ),
    ImprobableConstraints: (
        "urn:civil-words:problem:improbable-constraints",
        "Constraints too improbable",
    ),
    NoWordList: ("urn:civil-words:problem:no-word-list", "The model has no word list"),
    NoLexicon: ("urn:civil-words:problem:no-lexicon", "The model has no lexicon"),
}
LEXICON_BUDGET = "urn:civil-words:problem:lexicon-budget"
log = logging.getLogger("civil_words")


class InvalidParameter(Exception):
    """A query parameter that passed its type check but not the model's (e.g. a bigram symbol
    outside the alphabet)."""

    def __init__(self, parameter: str, reason: str):
        super().__init__(f"{parameter}: {reason}")
        self.errors = [FieldError(parameter=parameter, reason=reason)]


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response:
    body = problem.model_dump_json(exclude_none=True)
    return Response(body, status=problem.status, mimetype=PROBLEM_JSON, headers=headers)


def invalid_parameters(
    errors: list[FieldError],
    status: int = 400,
    title: str = "Invalid query parameter",
    type: str = INVALID_PARAMETER,  # RFC 9457 names the member so
) -> Response:
    """A problem about request parameters: one `errors` entry per parameter, and the same
    entries joined as the `detail`."""
    detail = "; ".join(f"{e.parameter}: {e.reason}" for e in errors)
    return problem_response(
        Problem(
            type=type,
            title=title,
            status=status,
            detail=detail,
            instance=request.path,
            errors=errors,
        )
    )


def _reason(err: dict) -> str:
    """A short reason for a pydantic error, in the API's words."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown parameter"
    if kind == "missing":
        return "required"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']} (got {err['input']})"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']} (got {err['input']})"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "too_short":
        return f"must hold at least {ctx['min_length']} (got {ctx['actual_length']})"
    if kind == "too_long":
        return f"must hold at most {ctx['max_length']} (got {ctx['actual_length']})"
    if kind == "model_type":
        return 'must be a JSON object: {"words": [...]}'
    if kind == "list_type":
        return "must be a JSON array"
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def _name(loc: tuple, body: bool) -> str:
    """A parameter's name from a pydantic location: `n`, or `words[3]` for a body item."""
    if not loc:
        return "body" if body else "query"
    name = str(loc[0])
    if body and len(loc) > 1 and isinstance(loc[1], int):
        name += f"[{loc[1]}]"
    return name


def from_validation_error(e: ValidationError) -> Response:
    """The validation error callback: one FieldError per bad parameter (or body item)."""
    body = request.method == "POST"
    errors: dict[str, FieldError] = {}
    for err in e.errors(include_url=False):
        name = _name(err["loc"], body)
        # An optional parameter fails twice (as a value and as "absent"): say it once.
        if name not in errors:
            errors[name] = FieldError(parameter=name, reason=_reason(err))
    title = "Invalid request body" if body else "Invalid query parameter"
    return invalid_parameters(list(errors.values()), title=title)


def init_app(app: Flask) -> None:
    @app.errorhandler(InvalidParameter)
    def _invalid(e: InvalidParameter):
        return invalid_parameters(e.errors)

    @app.errorhandler(UnknownModel)
    def _unknown_model(e: UnknownModel):
        reason = f"no model named {e.name!r}; the models are {', '.join(e.names)}"
        return invalid_parameters(
            [FieldError(parameter="model", reason=reason)], 404, "Unknown model", UNKNOWN_MODEL
        )

    @app.errorhandler(BadConstraint)
    def _bad_constraint(e: BadConstraint):
        return invalid_parameters([FieldError(parameter=p, reason=e.reason) for p in e.parameters])

    @app.errorhandler(ConstraintError)
    def _unprocessable(e: ConstraintError):
        kind, title = UNPROCESSABLE[type(e)]
        return problem_response(
            Problem(
                type=kind,
                title=title,
                status=422,
                detail=e.reason,
                instance=request.path,
                errors=[FieldError(parameter=p, reason=e.reason) for p in e.parameters],
                found=getattr(e, "found", None),
            )
        )

    @app.errorhandler(LexiconWorkExceeded)
    def _lexicon_work(e: LexiconWorkExceeded):
        return problem_response(
            Problem(
                type=LEXICON_BUDGET,
                title="Lexicon work budget exhausted",
                status=422,
                detail=e.reason,
                instance=request.path,
                errors=[FieldError(parameter=e.parameter, reason=e.reason)],
            )
        )

    @app.errorhandler(NotABigramModel)
    def _not_a_bigram_model(e: NotABigramModel):
        return problem_response(
            Problem(
                type=NOT_A_BIGRAM_MODEL,
                title="Not a bigram model",
                status=422,
                detail=str(e),
                instance=request.path,
                errors=[FieldError(parameter="model", reason=str(e))],
            )
        )

    @app.errorhandler(UnknownSymbolError)
    def _unknown_symbol(e: UnknownSymbolError):
        body = request.method == "POST"
        error = FieldError(
            parameter=f"words[{e.index}]" if body else "word",
            reason=e.reason,
            word=e.word,
            symbol=e.symbol,
            position=e.position,
        )
        return invalid_parameters(
            [error], title="Invalid request body" if body else "Invalid query parameter"
        )

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        if e.response is not None and e.response.mimetype == PROBLEM_JSON:
            return e.response  # already a problem (a validation error aborted with it)
        headers = {}
        if e.code == 405 and e.valid_methods:
            headers["Allow"] = ", ".join(sorted(e.valid_methods))
        return problem_response(
            Problem(
                title=e.name, status=e.code or 500, detail=e.description, instance=request.path
            ),
            headers,
        )

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.exception("unexpected error on %s", request.full_path)
        return problem_response(
            Problem(
                title="Internal Server Error",
                status=500,
                detail="The server could not answer; this was logged.",
                instance=request.path,
            )
        )


def problem_schema_ref() -> dict:
    """An OpenAPI response entry for a problem, by reference to the Problem schema."""
    return {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
