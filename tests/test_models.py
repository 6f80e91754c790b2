"""Several models in one server (MODEL_PATH a directory), `model=`, /models, and SIGHUP reloads.

The servers here are real (`civil-words serve`, gunicorn, 2 workers). The models are the shipped
one and models trained here on made-up word lists, so that each can be checked against the
notebook's own code on its own corpus.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from service.lm.corpus import read_words
from service.lm.methods import Neural
from service.lm.model import TrainConfig
from service.lm.store import load_model
from service.lm.train import train_to_file
from tests.conftest import SHIPPED_MODEL
from tests.reference import notebook_on
from tests.server import Server, start_server
from tests.test_hostile_models import assert_refused, serve

pytestmark = pytest.mark.server

MODEL_ENDPOINTS = [
    "/sample?n=3&seed=1",
    "/sample?n=3&seed=1&min_len=2&max_len=4",
    "/prob?bigram=..",
    "/loss",
    "/model",
    "/matrix",
    "/score?word=α",
    "/next?context=α",
]


@pytest.fixture(scope="module")
def greek(tmp_path_factory, word_lists) -> Path:
    """A model of the made-up Greek/Cyrillic word list, trained with the notebook's settings."""
    path = tmp_path_factory.mktemp("greek") / "greek.safetensors"
    train_to_file(read_words(word_lists["greek-cyrillic"]), path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, greek) -> Path:
    d = tmp_path_factory.mktemp("models")
    shutil.copyfile(SHIPPED_MODEL, d / "civil.safetensors")
    shutil.copyfile(greek, d / "greek.safetensors")
    return d


@pytest.fixture(scope="module")
def multi(model_dir):
    s = start_server(model_dir, workers=2, DEFAULT_MODEL="civil")
    yield s
    s.stop()


def test_models_lists_every_model(multi, model_dir):
    body = multi.get("/models").json()
    files = {name: load_model(model_dir / f"{name}.safetensors") for name in ("civil", "greek")}
    # The notebook's model was trained with --language fr: wordfreq's French and its corpus;
    # the Greek one without: no lexicon.
    lexicons = [m.pop("lexicon") for m in body["models"]]
    assert lexicons[1] is None
    assert lexicons[0]["source"].startswith("wordfreq ") and " fr " in lexicons[0]["source"]
    assert lexicons[0]["size"] > 300_000 and 0 < lexicons[0]["extra_words"] < 7072
    assert body == {
        "models": [
            {
                "name": name,
                "version": m.version,
                "method": "neural",
                "order": 2,
                "smoothing": None,  # kept: null for the neural method
                "symbols": len(m.alphabet),
                "nll": m.metadata["nll"],
                "holdout_nll": None,  # nothing held out
                "default": name == "civil",
            }
            for name, m in files.items()
        ]
    }


@pytest.mark.parametrize(("n", "seed"), [(30, 2147483647), (200, 7)])
def test_side_by_side_equals_alone_and_the_notebook(multi, server, greek, word_lists, n, seed):
    """Each model of the directory gives the very words it gives served alone, and the words
    the notebook's loop samples from it on its own corpus."""
    url = f"/sample?n={n}&seed={seed}"
    alone_greek = start_server(greek, workers=1)
    try:
        greek_alone = alone_greek.get(url).json()["words"]
    finally:
        alone_greek.stop()
    civil_alone = server.get(url).json()["words"]  # the shipped model, served alone
    assert multi.get(url + "&model=greek").json()["words"] == greek_alone
    assert multi.get(url + "&model=civil").json()["words"] == civil_alone
    assert multi.get(url).json()["words"] == civil_alone  # the default model
    for path, corpus, words in [
        (greek, word_lists["greek-cyrillic"], greek_alone),
        (SHIPPED_MODEL, word_lists["civil"], civil_alone),
    ]:
        m = load_model(path)
        assert notebook_on(m.W, m.alphabet, corpus).sample(n, seed) == words


def test_every_model_endpoint_takes_model(multi, model_dir):
    greek = load_model(model_dir / "greek.safetensors")
    for path in MODEL_ENDPOINTS:
        sep = "&" if "?" in path else "?"
        assert multi.get(f"{path}{sep}model=greek").status_code == 200, path
    assert multi.get("/model?model=greek").json()["alphabet"] == list(greek.alphabet)
    assert multi.get("/matrix?model=greek").json()["model"] == greek.version
    assert multi.get("/sample?model=greek").json()["model"] == greek.version
    assert multi.get("/loss?model=greek").json()["examples"] == int(greek.counts.sum())
    assert multi.get("/model").json()["version"] == load_model(SHIPPED_MODEL).version
    word = "".join(greek.alphabet[1:4])
    got = multi.get(f"/score?word={word}&model=greek").json()
    assert got["word"] == word and len(got["bigrams"]) == 4
    r = requests.post(
        f"{multi.url}/score?model=greek", json={"words": [word, word[::-1]]}, timeout=30
    )
    assert r.status_code == 200 and [s["word"] for s in r.json()["scores"]] == [word, word[::-1]]
    # The same word is not a word of the other model.
    assert multi.get(f"/score?word={word}").status_code == 400


@pytest.mark.parametrize("path", MODEL_ENDPOINTS)
def test_an_unknown_model_is_a_404_listing_the_names(multi, path):
    sep = "&" if "?" in path else "?"
    r = multi.get(f"{path}{sep}model=nope")
    if path.startswith("/score"):
        post = requests.post(f"{multi.url}/score?model=nope", json={"words": ["a"]}, timeout=30)
        assert post.status_code == 404 and post.json() == {**r.json(), "instance": "/score"}
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/problem+json"
    body = r.json()
    assert body["errors"][0]["parameter"] == "model"
    assert "'nope'" in body["detail"] and "civil, greek" in body["detail"]


def test_a_symbol_of_another_model_is_a_400_naming_it(multi):
    """/prob's document allows the symbols of every served model; the view checks the model's."""
    r = multi.get("/prob?bigram=ab&model=greek")
    assert r.status_code == 400 and "'a'" in r.json()["detail"]


def test_the_document_lists_the_model_names(multi):
    doc = multi.get("/openapi.json").json()
    for path in ("/sample", "/prob", "/loss", "/model", "/matrix", "/score", "/next"):
        params = {p["name"]: p for p in doc["paths"][path]["get"]["parameters"]}
        assert params["model"]["schema"]["enum"] == ["civil", "greek"], path
        assert "404" in doc["paths"][path]["get"]["responses"], path
    assert "/models" in doc["paths"]


def samples(metrics_text: str, name: str) -> dict[tuple, float]:
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == name:
                yield tuple(sorted(s.labels.items())), s.value


def test_metrics_carry_the_model(multi, model_dir):
    """Requests, latency and words are counted by model name, across both workers; the info
    gauge lists every served model with its version."""
    before = dict(samples(multi.get("/metrics").text, "civil_words_words_generated_total"))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: multi.get("/sample?n=2&model=greek"), range(20)))
        list(pool.map(lambda _: multi.get("/sample?n=3"), range(10)))
    text = multi.get("/metrics").text
    words = dict(samples(text, "civil_words_words_generated_total"))

    def delta(model):
        def total(values):
            return sum(v for k, v in values.items() if dict(k)["model"] == model)

        return total(words) - total(before)

    assert (delta("greek"), delta("civil")) == (40, 30)
    requests_by_model = Counter()
    for labels, value in samples(text, "civil_words_http_requests_total"):
        labels = dict(labels)
        if labels["endpoint"] == "/sample":
            requests_by_model[labels["model"]] += value
    assert requests_by_model["greek"] >= 20 and requests_by_model["civil"] >= 10
    info = {
        dict(k)["model"]: dict(k)["version"] for k, _ in samples(text, "civil_words_model_info")
    }
    assert info == {
        n: load_model(model_dir / f"{n}.safetensors").version for n in ("civil", "greek")
    }
    buckets = [
        dict(k) for k, _ in samples(text, "civil_words_http_request_duration_seconds_bucket")
    ]
    assert {"endpoint": "/sample", "model": "greek", "le": "+Inf"} in buckets


# --- start-up refusals -----------------------------------------------------------------------


def _dir(tmp_path: Path, files: dict[str, Path | bytes]) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    for name, content in files.items():
        if isinstance(content, Path):
            shutil.copyfile(content, d / name)
        else:
            (d / name).write_bytes(content)
    return d


REFUSED_DIRS = [
    # name, files, extra env, what the message must say
    (
        "bad-file",
        {"civil.safetensors": SHIPPED_MODEL, "broken.safetensors": b"junk"},
        {},
        "broken.safetensors",
    ),
    (
        "bad-name",
        {"Civil Words.safetensors": SHIPPED_MODEL},
        {},
        "'Civil Words' is not a model name",
    ),
    (
        "not-a-model",
        {"civil.safetensors": SHIPPED_MODEL, "notes.txt": b"hello"},
        {},
        "'notes.txt' is not a model file",
    ),
    ("no-model", {}, {}, "holds no model file"),
    (
        "no-default",
        {"a.safetensors": SHIPPED_MODEL, "b.safetensors": SHIPPED_MODEL},
        {},
        "set DEFAULT_MODEL to one of a, b",
    ),
    (
        "unknown-default",
        {"a.safetensors": SHIPPED_MODEL},
        {"DEFAULT_MODEL": "c"},
        "DEFAULT_MODEL 'c' is not served",
    ),
]


@pytest.mark.parametrize(
    ("name", "files", "env", "reason"), REFUSED_DIRS, ids=[r[0] for r in REFUSED_DIRS]
)
def test_a_bad_model_directory_is_refused_at_start(tmp_path, name, files, env, reason):
    d = _dir(tmp_path, files)
    run = serve({"MODEL_PATH": str(d), **env})
    assert_refused(run, str(d), reason)


def test_a_configmap_layout_is_served(tmp_path, greek):
    """Kubernetes mounts a ConfigMap as links into a hidden, timestamped directory; the hidden
    entries are skipped and the links followed."""
    d = tmp_path / "models"
    data = tmp_path / "models" / "..2026_11_28_00_00_00.000000001"
    data.mkdir(parents=True)
    shutil.copyfile(greek, data / "greek.safetensors")
    (d / "..data").symlink_to(data.name)
    (d / "greek.safetensors").symlink_to("..data/greek.safetensors")
    s = start_server(d, workers=1)
    try:
        assert [m["name"] for m in s.get("/models").json()["models"]] == ["greek"]
    finally:
        s.stop()


# --- reload ----------------------------------------------------------------------------------


def _train(words: list[str], path: Path, steps: int) -> str:
    from tests.test_limits import word_list

    tmp = path.with_name(f".{path.name}.new")
    r = train_to_file(word_list(words), tmp, Neural(TrainConfig(steps=steps)))
    os.replace(tmp, path)  # as a careful operator would: the new file appears whole
    return r.version


class Load:
    """Clients hammering the server from threads until stopped: half on kept-alive sessions,
    half on a new connection per request; every answer that is not a 200 is kept."""

    PATHS = ("/sample?n=5&seed={i}", "/models", "/prob?bigram=es", "/loss", "/readyz")

    def __init__(self, server: Server, clients: int = 6):
        self.server, self.clients = server, clients
        self.stop = threading.Event()
        self.done = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def client(self, k: int) -> None:
        session = requests.Session() if k % 2 == 0 else None
        i = 0
        while not self.stop.is_set():
            url = self.server.url + self.PATHS[i % len(self.PATHS)].format(i=i)
            try:
                if session is not None:
                    r = session.get(url, timeout=30)
                else:
                    r = requests.get(url, timeout=30, headers={"Connection": "close"})
                ok, what = r.status_code == 200, f"{r.status_code} {url}"
            except requests.RequestException as e:
                ok, what = False, f"{type(e).__name__} {url}: {e}"
            with self.lock:
                self.done += 1
                if not ok:
                    self.failures.append(what)
            i += 1

    def __enter__(self):
        self.pool = ThreadPoolExecutor(self.clients)
        self.futures = [self.pool.submit(self.client, k) for k in range(self.clients)]
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for f in self.futures:
            f.result()
        self.pool.shutdown()


def versions(server: Server) -> dict[str, str]:
    return {m["name"]: m["version"] for m in server.get("/models").json()["models"]}


def reloads(server: Server) -> dict[str, float]:
    return {
        dict(k)["result"]: v
        for k, v in samples(server.get("/metrics").text, "civil_words_model_reloads_total")
    }


def wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server did not get there in time"
        time.sleep(0.1)


def test_reload_under_load_loses_no_request(tmp_path, word_lists):
    """Under steady load from 6 clients: add a model, replace one, then add a bad file, each
    followed by SIGHUP to the master. Not one request fails; /models shows the new versions
    after each good reload and the old ones after the bad one; the reloads are counted."""
    d = _dir(tmp_path, {"civil.safetensors": SHIPPED_MODEL})
    s = start_server(d, workers=2, DEFAULT_MODEL="civil")
    try:
        civil = load_model(SHIPPED_MODEL).version
        assert versions(s) == {"civil": civil}
        assert reloads(s) == {"ok": 0, "failed": 0}
        with Load(s) as load:
            time.sleep(1)
            v1 = _train(["alpha", "beta", "gamma"], d / "greek.safetensors", steps=10)
            s.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: versions(s) == {"civil": civil, "greek": v1})
            time.sleep(1)

            v2 = _train(["alpha", "beta", "gamma", "delta"], d / "greek.safetensors", steps=20)
            assert v2 != v1
            s.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: versions(s) == {"civil": civil, "greek": v2})
            time.sleep(1)

            (d / "zbad.safetensors").write_bytes(b"not a model at all")
            s.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: reloads(s).get("failed") == 1)
            assert versions(s) == {"civil": civil, "greek": v2}
            time.sleep(1)
        print(f"\nreload under load: {load.done} requests, {len(load.failures)} failed")
        assert load.done > 200
        assert load.failures == []
        assert reloads(s) == {"ok": 2, "failed": 1}
        assert re.search(r"reload refused.*zbad\.safetensors", s.output())
        assert s.get("/sample?n=2&model=greek").json()["model"] == v2
    finally:
        assert s.stop() == 0
