"""The HTTP API against its own OpenAPI document, fuzzed, and the hygiene of every answer.

Property-based fuzzing: schemathesis reads the real server's `/openapi.json` and, for every
operation, sends generated requests, valid ones and invalid ones (its examples, coverage and
fuzzing phases), and runs all its default checks on each answer: no 5xx, the status code, the
content type, the headers and the body conform to the document, valid data is accepted and
invalid data refused. On top of that every answer must carry the security headers, and every
error must be an `application/problem+json` document (RFC 9457).

`make test` runs a bounded number of examples per operation (`MAX_EXAMPLES`), in seconds.
(A request that raises inside the app is tested in tests/test_app.py.) Before a release, run
the long version: either this file with more examples (1000 take about 70 s on 2 cores),

    FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_fuzz.py

or the schemathesis command line against a running server (`make serve`), all phases
including stateful ones, with the two non-default settings used here (a query string over
1 KiB is refused with 414, a correct refusal of invalid data; valid constraints that no word
can meet get 422, see ACCEPTANCES):

    printf '%s\n%s\n%s\n%s\n' '[checks.negative_data_rejection]' \
        'expected-statuses = ["400", "404", "414"]' '[checks.positive_data_acceptance]' \
        'expected-statuses = ["2xx", "400", "414", "422"]' > /tmp/st.toml
    .venv/bin/schemathesis --config-file /tmp/st.toml run http://127.0.0.1:8000/openapi.json \
        --max-examples 2000 --workers 2
"""

from __future__ import annotations

import os
import re
import tomllib

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Err

from service import create_app
from service.settings import Settings
from tests.conftest import ROOT, SHIPPED_MODEL
from tests.test_limits import headers_of, raw_request, status_of

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
# Statuses by which the API may refuse invalid query data: 400 (a bad parameter), 404 (a `model`
# outside the served names the document lists) and 414 (a query string over 1 KiB, refused
# before it is parsed).
REFUSALS = ["400", "404", "414"]
# Answers to schema-valid requests: success, or what no schema can say. /sample's constraints
# may be valid one by one yet such that no word meets them together, or that its bounded work
# cannot find enough words (422); min_len <= max_len and a prefix no longer than max_len relate
# two parameters, which OpenAPI cannot state (400). Valid values one by one can also add up to
# a query string over the documented 1 KiB (a long decomposed prefix with every other
# parameter set): 414, the document's limit on every operation.
ACCEPTANCES = ["2xx", "400", "414", "422"]


def fuzz_config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "checks": {
                "negative_data_rejection": {"expected-statuses": REFUSALS},
                "positive_data_acceptance": {"expected-statuses": ACCEPTANCES},
            },
        }
    )


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=fuzz_config())


@pytest.fixture(scope="module")
def document(server) -> dict:
    r = server.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def assert_secure_headers(headers) -> None:
    """`headers`: any mapping with lower-case keys, values as strings or lists of strings."""

    def one(name: str) -> str:
        value = headers.get(name)
        assert value is not None, f"no {name} header"
        return value[0] if isinstance(value, list) else value

    assert one("x-content-type-options") == "nosniff"
    csp = one("content-security-policy")
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    server_header = headers.get("server")
    if server_header is not None:
        server_header = server_header[0] if isinstance(server_header, list) else server_header
        assert not re.search(r"\d", server_header), f"version in Server: {server_header}"


# --- the document -----------------------------------------------------------------------------


def test_document_is_valid_openapi(api_schema):
    """schemathesis validates every operation against the OpenAPI 3.1 meta-schema."""
    errors = [str(r.err()) for r in api_schema.get_all_operations() if isinstance(r, Err)]
    assert not errors, errors[0]


def _nulls(node, path="$"):
    """Paths of the `null` values in an OpenAPI document, outside JSON Schemas (where
    `"default": null` is fine)."""
    if node is None:
        yield path
    elif isinstance(node, dict):
        for k, v in node.items():
            if k not in ("schema", "schemas"):
                yield from _nulls(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _nulls(v, f"{path}[{i}]")


def test_document_has_no_null_entries(document):
    """OpenAPI has no `null` for an absent object (e.g. `components.securitySchemes`)."""
    assert list(_nulls(document)) == []


def test_documented_errors_are_problems_that_can_occur(document):
    """Every documented error is the Problem object as `application/problem+json`; 414 is on
    every operation (the query limit applies to every route); 400 only where there are
    parameters or a body to be wrong."""
    for path, item in document["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            responses = op["responses"]
            for status, entry in responses.items():
                if status.startswith(("4", "5")):
                    assert list(entry["content"]) == [PROBLEM_JSON], f"{where} {status}"
                    schema = entry["content"][PROBLEM_JSON]["schema"]
                    assert schema == {"$ref": PROBLEM_REF}, f"{where} {status}"
            assert "414" in responses, f"{where}: 414 is not documented"
            if not op.get("parameters") and "requestBody" not in op:
                assert "400" not in responses, f"{where}: 400 documented, never sent"


# --- fuzzing ----------------------------------------------------------------------------------

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request):
    # schemathesis 4.32.5 reads and rewrites `node._nodeid` to name each operation's subtest;
    # pytest 9 keeps the id elsewhere (`node._id`). Give it the attribute it reads.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
def test_api_conforms_to_its_document(case):
    response = case.call_and_validate(timeout=30)
    assert_secure_headers(response.headers)
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith(PROBLEM_JSON)
        assert response.json()["status"] == response.status_code


# --- hygiene: headers, banners, debug, pins ---------------------------------------------------

ANSWERS = [
    ("GET", "/sample?n=2&seed=1", 200),
    ("GET", "/prob?bigram=es", 200),
    ("GET", "/loss", 200),
    ("GET", "/model", 200),
    ("GET", "/healthz", 200),
    ("GET", "/readyz", 200),
    ("GET", "/metrics", 200),
    ("GET", "/openapi.json", 200),
    ("GET", "/", 200),
    ("GET", "/sample?n=0", 400),
    ("GET", "/sample?top_k=1&unique=true&n=50&max_len=3", 422),
    ("GET", "/score?word=maison", 200),
    ("POST", "/score", 400),
    ("GET", "/prob?bigram=%00%01", 400),
    ("GET", "/nope", 404),
    ("POST", "/sample", 405),
    ("DELETE", "/model", 405),
    ("GET", "/healthz?" + "x" * 1100, 414),
]


@pytest.mark.parametrize(
    ("method", "path", "status"), ANSWERS, ids=[f"{m} {p[:30]}" for m, p, _ in ANSWERS]
)
def test_security_headers_on_every_answer(server, method, path, status):
    r = requests.request(method, server.url + path, timeout=30)
    assert r.status_code == status
    assert_secure_headers({k.lower(): v for k, v in r.headers.items()})
    if status >= 400:
        assert r.headers["Content-Type"] == PROBLEM_JSON
        assert "Traceback" not in r.text
    if status == 405:
        assert "GET" in r.headers["Allow"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /healthz?" + b"a" * 8200 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
        + b"".join(b"X%d: v\r\n" % i for i in range(60))
        + b"\r\n",
    ],
    ids=["request-line-over-8k", "too-many-headers"],
)
def test_security_headers_on_gunicorns_own_refusals(server, request_bytes):
    """Requests refused by gunicorn before the app sees them are answers too."""
    raw = raw_request(server.port, request_bytes)
    assert 400 <= status_of(raw) < 500
    headers = headers_of(raw)
    assert_secure_headers(headers)
    assert headers["content-type"] == PROBLEM_JSON


def test_no_debugger_or_console_in_production(server):
    r = server.get("/console")
    assert r.status_code == 404 and r.headers["Content-Type"] == PROBLEM_JSON
    # The Werkzeug debugger serves its own files under any path with `__debugger__`.
    r = server.get("/?__debugger__=yes&cmd=resource&f=debugger.js")
    assert "javascript" not in r.headers["Content-Type"]
    assert "werkzeug" not in r.text.lower() and "__debugger__" not in r.text


def test_debug_mode_cannot_be_switched_on_from_the_environment(monkeypatch):
    """Flask reads FLASK_DEBUG when an app is made; the production app ignores it."""
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = create_app(Settings(model_path=SHIPPED_MODEL))
    assert app.debug is False


def test_dependencies_are_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    assert requirements
    pinned = re.compile(
        r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[0-9][0-9A-Za-z.+!-]*$"
    )
    loose = [r for r in requirements if not pinned.match(r.replace(" ", ""))]
    assert loose == [], f"not pinned with ==: {loose}"
