"""Fast app-level tests with Flask's test client (no server)."""

from __future__ import annotations

import itertools
import random
import re
import subprocess
import sys
import unicodedata
from importlib import metadata

import pytest
from packaging.version import Version
from prometheus_client import CONTENT_TYPE_LATEST

from service import create_app
from service.lm.store import ModelFileError
from service.settings import Settings
from service.web.app import UNKNOWN_PARAMETERS_REFUSED
from service.web.metrics import LATENCY_BUCKETS
from service.web.schemas import spellings
from tests.conftest import LEGACY_MODEL, SHIPPED_MODEL


def test_every_answer_has_security_headers(client):
    for url in ["/sample", "/nope", "/prob", "/metrics", "/openapi.json"]:
        r = client.get(url)
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert r.headers["X-Frame-Options"] == "DENY"


def test_home_page_is_html_with_its_own_policy(client):
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]


def test_long_query_is_a_problem(client):
    r = client.get("/sample?n=1&pad=" + "x" * 2000)
    assert r.status_code == 414 and r.mimetype == "application/problem+json"
    assert "1024 bytes" in r.get_json()["detail"]


def test_max_n_comes_from_settings():
    app = create_app(Settings(model_path=SHIPPED_MODEL, max_n=5))
    c = app.test_client()
    assert c.get("/sample?n=5").status_code == 200
    r = c.get("/sample?n=6")
    assert r.status_code == 400 and r.get_json()["errors"][0]["reason"].startswith(
        "must be at most 5"
    )
    doc = c.get("/openapi.json").get_json()
    n = next(p for p in doc["paths"]["/sample"]["get"]["parameters"] if p["name"] == "n")
    assert n["schema"]["maximum"] == 5


def test_max_word_len_comes_from_settings():
    app = create_app(Settings(model_path=SHIPPED_MODEL, max_word_len=3))
    words = app.test_client().get("/sample?n=200&seed=1").get_json()["words"]
    assert max(len(w) for w in words) == 3


def test_create_app_refuses_a_bad_model(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 16)
    with pytest.raises(ModelFileError, match=str(bad)):
        create_app(Settings(model_path=bad))


def test_unexpected_error_is_a_problem_without_internals():
    app = create_app(Settings(model_path=SHIPPED_MODEL))

    @app.get("/boom-test-only", doc_ui=False)
    def boom():
        raise RuntimeError("secret internal detail")

    r = app.test_client().get("/boom-test-only")
    assert r.status_code == 500 and r.mimetype == "application/problem+json"
    assert "secret" not in r.get_data(as_text=True) and "Traceback" not in r.get_data(as_text=True)


def test_head_and_options(client):
    assert client.head("/healthz").status_code == 200
    r = client.options("/sample")
    assert r.status_code == 200 and "GET" in r.headers["Allow"]


def test_a_format_1_model_still_serves():
    """A model file written before word lists were stored serves the same words, and says it
    has no word list."""
    legacy = create_app(Settings(model_path=LEGACY_MODEL)).test_client()
    shipped = create_app(Settings(model_path=SHIPPED_MODEL)).test_client()
    url = "/sample?n=50&seed=2147483647"
    assert legacy.get(url).get_json()["words"] == shipped.get(url).get_json()["words"]
    info = legacy.get("/model").get_json()
    assert info["word_list"] is None and info["version"] == "22374489e7b2"
    assert shipped.get("/model").get_json()["word_list"] == {"words": 7072, "heldout": 0}


# --- what outside tools found (issue 13): each would have caught its defect ------------------


def test_metrics_content_type_names_each_parameter_once(client):
    """RFC 6838: a media type parameter appears at most once (it was `charset=utf-8` twice)."""
    value = client.get("/metrics").headers["Content-Type"]
    kind, *params = [p.strip() for p in value.split(";")]
    assert kind == "text/plain"
    names = [p.split("=", 1)[0].lower() for p in params]
    assert len(names) == len(set(names)), value
    assert value == CONTENT_TYPE_LATEST


def test_openapi_version_is_the_apis_not_the_models(app, client, tmp_path):
    """A client generated from the document takes info.version as its package version: it must
    be PEP 440 and must not change with every retrain. The model's version is beside it."""
    doc = client.get("/openapi.json").json
    version = doc["info"]["version"]
    assert str(Version(version)) == version == metadata.version("civil-words")
    assert doc["info"]["x-model-version"] == app.extensions["civil_words"].get().version

    words = tmp_path / "words.txt"
    words.write_text("ab\nba\nabba\n", encoding="utf-8")
    other = tmp_path / "other.safetensors"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "service",
            "train",
            "--words",
            words,
            "--out",
            other,
            "--steps",
            "5",
        ],
        check=True,
        capture_output=True,
    )
    other_doc = create_app(Settings(model_path=other)).api_doc
    assert other_doc["info"]["version"] == version
    assert other_doc["info"]["x-model-version"] != doc["info"]["x-model-version"]


def _bigrams_to_try(alphabet: tuple[str, ...]) -> list[str]:
    """Every symbol in each of its spellings, beside a plain symbol; then odd strings: other
    normalisation forms, marks alone, unknown characters, wrong lengths."""
    tries = []
    for c in alphabet:
        for w in spellings(c):
            tries += [w + "a", "." + w]
    pool = [*alphabet, "\u0301", "\u0300", "\u0327", "\u0308", "\u212b", "k", "E", " ", "é"]
    rng = random.Random(13)
    tries += ["".join(rng.choices(pool, k=rng.randint(1, 4))) for _ in range(400)]
    tries += [unicodedata.normalize(form, "éa") for form in ("NFD", "NFKD", "NFKC")]
    tries += ["e\u0301\u0301", "\u212bs", "a", "abc", "ée", "e\u0301e\u0301"]
    return tries


def test_prob_pattern_in_the_document_is_what_the_server_accepts(app, client):
    """The document's pattern for `bigram` and the server agree on every string: it matches
    exactly the bigrams answered 200 (it once refused `e` + U+0301 which the server accepts)."""
    doc = client.get("/openapi.json").json
    [param] = [p for p in doc["paths"]["/prob"]["get"]["parameters"] if p["name"] == "bigram"]
    pattern = re.compile(param["schema"]["pattern"])
    alphabet = app.extensions["civil_words"].get().file.alphabet
    disagree = []
    for bigram in _bigrams_to_try(alphabet):
        documented = pattern.fullmatch(bigram) is not None
        status = client.get("/prob", query_string={"bigram": bigram}).status_code
        if documented != (status == 200):
            disagree.append((ascii(bigram), documented, status))
    assert disagree == []
    assert pattern.fullmatch("e\u0301s") and client.get("/prob?bigram=e%CC%81s").status_code == 200


def test_unknown_parameters_are_answered_as_documented(client):
    """Operations with query parameters refuse any other one (400) and their document says so;
    the others ignore it, and document no 400."""
    doc = client.get("/openapi.json").json
    valid = {"/prob": {"bigram": "es"}, "/score": {"word": "maison"}}
    for path, item in doc["paths"].items():
        op = item.get("get")
        if op is None:
            continue
        r = client.get(path, query_string={**valid.get(path, {}), "zz_unknown": "1"})
        if op.get("parameters"):
            assert r.status_code == 400, path
            assert r.json["errors"] == [{"parameter": "zz_unknown", "reason": "unknown parameter"}]
            assert op["responses"]["400"]["description"] == UNKNOWN_PARAMETERS_REFUSED
        else:
            assert r.status_code == 200, path
            assert "400" not in op["responses"], path


def test_latency_buckets_resolve_this_services_latencies():
    """About 68 % of /sample requests once fell in the lowest bucket (0.5 ms). The bounds now
    start below the fastest endpoint measured (/healthz, about 40 us), step by at most x2.5, and
    reach past a slow request, so histogram_quantile has buckets to interpolate in."""
    assert list(LATENCY_BUCKETS) == sorted(set(LATENCY_BUCKETS))
    assert LATENCY_BUCKETS[0] <= 50e-6
    assert LATENCY_BUCKETS[-1] >= 10
    steps = [b / a for a, b in itertools.pairwise(LATENCY_BUCKETS)]
    assert max(steps) <= 2.5
    # several bounds within the range where most requests fall (50 us - 1 ms)
    assert sum(50e-6 <= b <= 1e-3 for b in LATENCY_BUCKETS) >= 6
    assert 0.5 in LATENCY_BUCKETS  # the p99 alert's threshold is a bucket bound
