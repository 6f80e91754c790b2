"""The Flask application: the served model set (loaded and checked before the workers fork), the
API, errors, metrics and the home page."""

from __future__ import annotations

import logging
from importlib import metadata

from flask import request, send_from_directory
from flask_openapi3 import Info, OpenAPI

from service.settings import Settings
from service.web import errors, metrics
from service.web.api import OPS_TAG
from service.web.errors import problem_response, problem_schema_ref
from service.web.registry import ModelSet
from service.web.schemas import Problem
from service.web.views import BLUEPRINTS

# The API's own version (the package's, PEP 440): it changes with the code, not with the model,
# so clients generated from the document can be versioned and installed.
API_VERSION = metadata.version("civil-words")
MAX_QUERY_BYTES = 1024
UNKNOWN_PARAMETERS_REFUSED = (
    "Bad Request: a query parameter is malformed or out of range, or is not one of this "
    "operation's parameters (unknown parameters are refused, not ignored)"
)  # far more than any valid query needs
# The JSON API sends no HTML and loads nothing; the home page loads only its own files.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def create_app(settings: Settings | None = None) -> OpenAPI:
    """Build the app for `settings` (from the environment by default).

    Loads and checks every model first: a bad file raises `ModelFileError` naming it (a bad
    model directory `ModelSetError`), and no app is built.
    """
    settings = settings or Settings()
    models = ModelSet.load(
        settings.model_path,
        settings.default_model,
        max_word_len=settings.max_word_len,
        rejection_budget=settings.rejection_budget,
        lexicon_path=settings.lexicon_path,
        lexicon_budget=settings.lexicon_budget,
    )
    model = models.get()

    app = OpenAPI(
        __name__,
        info=Info(
            title="civil-words",
            version=API_VERSION,
            description="Words that look French, from a character-level bigram model "
            "of the French Code civil. The default model's version is `x-model-version` here, "
            "and `model` in the answers of /sample and /readyz; /models lists every served "
            "model with its version.",
        ),
        validation_error_status=400,
        validation_error_model=Problem,
        validation_error_callback=errors.from_validation_error,
        doc_ui=False,
    )
    # DEBUG: Flask would take FLASK_DEBUG from the environment; production never runs in debug.
    app.config.update(MAX_CONTENT_LENGTH=16 * 1024, JSON_SORT_KEYS=False, DEBUG=False)
    app.extensions["civil_words"] = models
    logging.getLogger("civil_words").setLevel(settings.log_level.upper())

    errors.init_app(app)
    metrics.init_app(app, {name: m.version for name, m in models.models.items()})
    for blueprint in BLUEPRINTS:
        app.register_api(blueprint(settings, models))

    @app.get(
        "/openapi.json",
        tags=[OPS_TAG],
        summary="OpenAPI document",
        responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
    )
    def openapi_json():
        """This document."""
        return app.api_doc

    @app.before_request
    def _bounded_query():
        # gunicorn refuses request lines over 8 KiB with a bare page; refuse long queries here
        # first, as a problem like every other error.
        if len(request.query_string) > MAX_QUERY_BYTES:
            return problem_response(
                Problem(
                    title="URI Too Long",
                    status=414,
                    instance=request.path,
                    detail=f"the query string is over {MAX_QUERY_BYTES} bytes",
                )
            )
        return None

    @app.get("/", doc_ui=False)
    def index():
        return send_from_directory(app.static_folder, "index.html")

    app.wsgi_app = SecurityHeaders(app.wsgi_app)
    _finish_document(app.api_doc, model.version)
    return app


class SecurityHeaders:
    """Adds the security headers to every answer, errors included.

    A WSGI wrapper rather than an `after_request` hook: it appends fixed tuples, which costs a
    fraction of setting five headers on each response object.
    """

    COMMON = (
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
    )
    API = (*COMMON, ("Content-Security-Policy", API_CSP))
    PAGE = (*COMMON, ("Content-Security-Policy", PAGE_CSP))

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            names = {k.lower(): v for k, v in headers}
            html = names.get("content-type", "").startswith("text/html")
            headers.extend(self.PAGE if html else self.API)
            if "cache-control" not in names:
                headers.append(("Cache-Control", "no-store"))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def _finish_document(doc: dict, model_version: str) -> None:
    """Say what the API answers: flask-openapi3 writes `securitySchemes: null` (not OpenAPI)
    and a JSON-array 400 on every operation; every route may answer 414 (`_bounded_query`); an
    operation with query parameters refuses any other parameter (its query model forbids extra
    fields), which OpenAPI cannot express but in words."""
    doc["info"]["x-model-version"] = model_version
    components = doc.get("components", {})
    if components.get("securitySchemes") is None:
        components.pop("securitySchemes", None)
    for item in doc["paths"].values():
        for op in item.values():
            responses = op["responses"]
            if "application/json" in responses.get("400", {}).get("content", {}):
                del responses["400"]
            if "400" in responses and op.get("parameters"):
                responses["400"]["description"] = UNKNOWN_PARAMETERS_REFUSED
            responses["414"] = {"description": "URI Too Long", **problem_schema_ref()}
