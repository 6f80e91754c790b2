"""Fast app-level tests with Flask's test client (no server)."""

from __future__ import annotations

import pytest

from service import create_app
from service.lm.store import ModelFileError
from service.settings import Settings
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
