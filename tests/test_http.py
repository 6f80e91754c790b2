"""The real server (gunicorn, 2 workers, free port): answers equal the model's, and so the
notebook's; bad input gets a 4xx problem; metrics add up across workers."""

from __future__ import annotations

import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from service.lm.corpus import read_words
from service.lm.model import probability_table
from service.lm.store import load_model
from service.lm.train import train_to_file
from tests.conftest import CORPUS, SHIPPED_MODEL, neural_config
from tests.reference import notebook_loss, notebook_on
from tests.server import start_server

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def shipped():
    return load_model(SHIPPED_MODEL)


@pytest.fixture(scope="module")
def notebook(shipped):
    """The notebook's namespace on the corpus, holding the served W."""
    return notebook_on(shipped.W, shipped.alphabet, CORPUS)


@pytest.mark.parametrize(("n", "seed"), [(5, 2147483647), (1, 0), (200, 42), (1000, 2**63 - 1)])
def test_sample_is_the_notebooks(server, notebook, n, seed):
    r = server.get(f"/sample?n={n}&seed={seed}")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert (
        body["n"] == n
        and body["seed"] == seed
        and body["model"] == load_model(SHIPPED_MODEL).version
    )
    assert body["words"] == notebook.sample(n, seed)


def test_sample_without_seed_can_be_replayed(server):
    first = server.get("/sample?n=7").json()
    assert 0 <= first["seed"] < 2**63 and len(first["words"]) == 7
    again = server.get(f"/sample?n=7&seed={first['seed']}").json()
    assert again["words"] == first["words"]


@pytest.mark.parametrize("bigram", ["es", ".a", "e.", "..", "'a", "œu", "-x"])
def test_prob_is_the_notebooks(server, notebook, bigram):
    body = server.get("/prob", params={"bigram": bigram}).json()
    ns = notebook.namespace
    ix, iy = ns["ctoi"][bigram[0]], ns["ctoi"][bigram[1]]
    row = ns["W"][ix]
    expected = (row.exp() / row.exp().sum())[iy].item()
    assert body["bigram"] == bigram
    assert body["prob"] == pytest.approx(expected, rel=1e-6)
    assert body["logprob"] == pytest.approx(math.log(expected), abs=1e-6)


def test_prob_normalises_to_nfc(server):
    decomposed = "e\u0301s"  # é typed as e + combining acute accent
    body = server.get("/prob", params={"bigram": decomposed}).json()
    assert body["bigram"] == "és"
    assert body["prob"] == server.get("/prob", params={"bigram": "és"}).json()["prob"]


def test_loss_is_the_notebooks(server, notebook, shipped):
    body = server.get("/loss").json()
    assert body["examples"] == 65725 == int(shipped.counts.sum())
    assert body["loss"] == pytest.approx(notebook_loss(notebook), abs=1e-5)
    assert 0 < body["nll"] < body["loss"]
    assert body["holdout"] is None  # nothing was held out


def test_model_metadata(server, shipped):
    body = server.get("/model").json()
    assert body["version"] == shipped.version
    assert body["alphabet"] == list(shipped.alphabet) and body["shape"] == [41, 41]
    # The notebook's bigram: one state per symbol, every one a seen context; no discounts.
    assert body["order"] == 2 and body["smoothing"] == "neural"
    assert body["states"] == body["contexts"] == 41 and body["discounts"] is None
    assert body["config"] == neural_config(language="fr")
    assert body["corpus"]["sha256"] == shipped.metadata["corpus_sha256"]
    assert round(body["loss"]["first"], 4) == 4.2714 and round(body["loss"]["last"], 4) == 2.3817
    assert body["loss"]["curve"][0][0] == 0 and body["loss"]["curve"][-1][0] == 599


def test_matrix_rows_are_distributions(server, shipped):
    body = server.get("/matrix").json()
    P = probability_table(shipped.W)
    assert body["alphabet"] == list(shipped.alphabet)
    assert body["probs"] == P.tolist()
    assert all(abs(sum(row) - 1) < 1e-5 for row in body["probs"])


def test_health_and_readiness(server, shipped):
    assert server.get("/healthz").json() == {"status": "ok"}
    assert server.get("/readyz").json() == {"status": "ready", "model": shipped.version}


def test_openapi_document_lists_every_endpoint(server):
    doc = server.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    paths = set(doc["paths"])
    assert {
        "/sample",
        "/prob",
        "/loss",
        "/model",
        "/matrix",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    } <= paths
    params = {p["name"]: p for p in doc["paths"]["/sample"]["get"]["parameters"]}
    assert params["n"]["schema"]["maximum"] == 1000
    assert "400" in doc["paths"]["/sample"]["get"]["responses"]
    assert "Problem" in doc["components"]["schemas"]


BAD = [
    ("/sample?n=abc", "n", "integer"),
    ("/sample?n=1.5", "n", "integer"),
    ("/sample?n=-3", "n", "integer"),
    ("/sample?n=0", "n", "at least 1"),
    ("/sample?n=1001", "n", "at most 1000"),
    ("/sample?n=", "n", "integer"),
    ("/sample?seed=-1", "seed", "integer"),
    ("/sample?seed=9223372036854775808", "seed", "at most"),
    ("/sample?seed=1e3", "seed", "integer"),
    ("/sample?seed=%F0%9F%99%82", "seed", "integer"),
    ("/sample?count=3", "count", "unknown parameter"),
    ("/prob", "bigram", "required"),
    ("/prob?bigram=", "bigram", "empty"),
    ("/prob?bigram=e", "bigram", "exactly two symbols"),
    ("/prob?bigram=abc", "bigram", "exactly two symbols"),
    ("/prob?bigram=ka", "bigram", "'k' not in the model's alphabet"),
    ("/prob?bigram=E%20", "bigram", "not in the model's alphabet"),
    ("/prob?bigram=%00a", "bigram", "not in the model's alphabet"),
]


@pytest.mark.parametrize(("url", "parameter", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_problem(server, url, parameter, reason):
    r = server.get(url)
    assert r.status_code == 400
    assert r.headers["Content-Type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 400 and body["title"] and body["instance"] == url.split("?")[0]
    assert [e["parameter"] for e in body["errors"]] == [parameter]
    assert reason in body["errors"][0]["reason"] and reason in body["detail"]
    assert "Traceback" not in r.text


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("POST", "/sample", 405),
        ("DELETE", "/model", 405),
        ("PUT", "/prob?bigram=es", 405),
    ],
)
def test_http_errors_are_problems(server, method, path, status):
    r = requests.request(method, server.url + path, timeout=30)
    assert r.status_code == status
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["status"] == status


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def _counter(text: str, endpoint: str, status: str = "200") -> float:
    """GET requests answered on `endpoint` with `status`, whatever the model."""
    return sum(
        value
        for labels, value in _samples(text, "civil_words_http_requests_total")
        if labels["endpoint"] == endpoint
        and labels["method"] == "GET"
        and labels["status"] == status
    )


def test_metrics_add_up_across_workers(server):
    before = server.get("/metrics").text
    n = 120

    def hit(i):
        # A new connection each time, so that both workers take requests.
        with requests.Session() as s:
            return s.get(server.url + f"/sample?n=2&seed={i}", timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(hit, range(n))) == {200}
    after = server.get("/metrics").text
    assert _counter(after, "/sample") - _counter(before, "/sample") == n
    words = {
        (labels["model"], labels["constrained"]): v
        for labels, v in _samples(after, "civil_words_words_generated_total")
    }
    words_before = {
        (labels["model"], labels["constrained"]): v
        for labels, v in _samples(before, "civil_words_words_generated_total")
    }
    plain = ("civil-words", "false")
    assert words[plain] - words_before.get(plain, 0) == 2 * n
    version = load_model(SHIPPED_MODEL).version
    info = _samples(after, "civil_words_model_info")
    assert info == [({"model": "civil-words", "version": version}, 1.0)]
    assert "civil_words_http_request_duration_seconds_bucket" in after
    # Both workers wrote samples: one counter file per process that answered.
    files = list(server.metrics_dir.glob("counter_*.db"))
    assert len(files) >= 2, files


def test_serve_refuses_missing_model(tmp_path):
    missing = tmp_path / "absent.safetensors"
    s = start_server(missing, wait=False)
    code = s.proc.wait(60)
    out = s.output()
    assert code != 0
    assert str(missing) in out and "no such file" in out
    assert "Traceback" not in out and "Booting worker" not in out


def test_serves_a_model_trained_on_another_word_list(tmp_path, word_lists):
    """Every endpoint answers as specified on a model of another alphabet."""
    model = tmp_path / "greek.safetensors"
    train_to_file(read_words(word_lists["greek-cyrillic"]), model)
    m = load_model(model)
    nb = notebook_on(m.W, m.alphabet, word_lists["greek-cyrillic"])
    s = start_server(model)
    try:
        assert s.get("/sample?n=40&seed=9").json()["words"] == nb.sample(40, 9)
        assert s.get("/model").json()["alphabet"] == list(m.alphabet)
        assert s.get("/loss").json()["loss"] == pytest.approx(notebook_loss(nb), abs=1e-5)
        a, b = m.alphabet[1], m.alphabet[2]
        assert s.get("/prob", params={"bigram": a + b}).status_code == 200
        r = s.get("/prob", params={"bigram": "es"})
        assert r.status_code == 400 and "not in the model's alphabet" in r.json()["detail"]
    finally:
        assert s.stop() == 0


def test_serve_refuses_bad_settings():
    r = subprocess.run(
        [sys.executable, "-m", "service", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PORT": "http", "MODEL_PATH": str(SHIPPED_MODEL)},
    )
    assert r.returncode == 2 and "PORT" in r.stderr and "Traceback" not in r.stderr
