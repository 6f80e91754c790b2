"""A model of order 5 on the real server (gunicorn, 2 workers), beside the notebook's model.

One server for the module serves a directory holding the shipped notebook model
(`civil-words`, the default) and a Kneser–Ney model of order 5 trained here on the shared corpus
with a tenth held out (`kn5`). Its answers are the library's (`open_model` on the same file):
/sample plain and under every constraint of SPEC section 4, /score as the sum of /next's
log-probabilities along the word, /next's distributions, /models, /model and /loss; the bigram
views (/prob, /matrix) refuse the order-5 model with a 422 that points to /next and still serve
the notebook's, whose words are unchanged.
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import requests

from service.lm.constrained import Constraints
from service.lm.methods import KneserNey
from service.lm.ready import open_model
from service.lm.sampling import Sampler
from service.lm.store import load_model
from service.lm.train import Split, train_to_file
from tests.conftest import CORPUS, SHIPPED_MODEL
from tests.reference import notebook_on
from tests.server import start_server

pytestmark = pytest.mark.server
PROBLEM_JSON = "application/problem+json"
KN5 = "kn5"
NOTEBOOK = "civil-words"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    shutil.copy(SHIPPED_MODEL, d / f"{NOTEBOOK}.safetensors")
    train_to_file(CORPUS, d / f"{KN5}.safetensors", KneserNey(5), split=Split(0.1, 7))
    return d


@pytest.fixture(scope="module")
def server(models_dir):
    s = start_server(models_dir, workers=2, DEFAULT_MODEL=NOTEBOOK)
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def kn5(models_dir):
    """The order-5 model in process, with the server's default settings."""
    return open_model(models_dir / f"{KN5}.safetensors")


def get_json(server, path: str, **params) -> dict:
    r = server.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def problem(server, path: str, status: int, **params) -> dict:
    r = server.get(path, params=params)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith(PROBLEM_JSON)
    body = r.json()
    assert body["status"] == status
    return body


# --- /sample ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 7, 2147483647])
def test_plain_words_at_order_5_are_the_reference_loops(server, kn5, seed):
    body = get_json(server, "/sample", model=KN5, n=60, seed=seed)
    assert body["words"] == kn5.sampler.sample(60, seed)
    assert body["n"] == 60 and body["seed"] == seed and body["model"] == kn5.version


PARAMS = [
    {"prefix": "con"},
    {"min_len": 9},
    {"max_len": 4},
    {"min_len": 6, "max_len": 6},
    {"novel": "true"},
    {"unique": "true"},
    {"temperature": 0.3},
    {"temperature": 3.0, "max_len": 10},
    {"top_k": 2},
    {"prefix": "ré", "min_len": 7, "max_len": 9, "novel": "true", "unique": "true"},
    {
        "prefix": "a",
        "min_len": 5,
        "max_len": 8,
        "novel": "true",
        "unique": "true",
        "temperature": 0.8,
        "top_k": 6,
    },
]


def constraints_of(params: dict) -> Constraints:
    return Constraints(
        prefix=params.get("prefix", ""),
        min_len=params.get("min_len"),
        max_len=params.get("max_len"),
        novel=params.get("novel") == "true",
        unique=params.get("unique") == "true",
        temperature=float(params.get("temperature", 1.0)),
        top_k=params.get("top_k"),
    )


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: ",".join(map(str, p.items())))
def test_constrained_words_at_order_5_are_the_librarys_and_meet_the_constraints(
    server, kn5, params
):
    seed, n = 20261202, 80
    body = get_json(server, "/sample", model=KN5, n=n, seed=seed, **params)
    c = constraints_of(params)
    words = body["words"]
    assert words == kn5.constrained.sample(n, seed, c).words
    assert len(words) == n and body["seed"] == seed
    lo, hi = c.min_len or 0, c.max_len or 256
    training = set(kn5.file.words)
    lm = kn5.lm
    logP = lm.logP
    for w in words:
        assert w.startswith(c.prefix) and lo <= len(w) <= hi, w
        assert not (c.novel and w in training), w
        if c.top_k is not None:  # every symbol among the k most probable after its context
            s = lm.start
            for ch in [*w, "."]:
                x = lm.stoi[ch]
                assert (logP[s] > logP[s, x]).sum() < c.top_k, (w, ch)
                s = int(lm.next[s, x])
    if c.unique:
        assert len(set(words)) == n


def test_a_seed_replays_and_word_k_does_not_depend_on_n(server):
    params = {"model": KN5, "prefix": "dé", "min_len": 6, "max_len": 9, "novel": "true"}
    first = get_json(server, "/sample", n=50, **params)  # a seed drawn by the server
    again = get_json(server, "/sample", n=50, seed=first["seed"], **params)
    assert again["words"] == first["words"]
    assert (
        get_json(server, "/sample", n=7, seed=first["seed"], **params)["words"]
        == (first["words"][:7])
    )
    plain = get_json(server, "/sample", model=KN5, n=40, seed=5)
    assert get_json(server, "/sample", model=KN5, n=40, seed=5) == plain
    assert get_json(server, "/sample", model=KN5, n=3, seed=5)["words"] == plain["words"][:3]


def test_the_notebooks_words_are_unchanged_by_default(server):
    f = load_model(SHIPPED_MODEL)
    nb = notebook_on(f.W, f.alphabet)
    sampler = Sampler(open_model(SHIPPED_MODEL).lm)
    for seed in (2147483647, 3):
        words = get_json(server, "/sample", n=30, seed=seed)["words"]
        assert words == nb.sample(30, seed) == sampler.sample(30, seed)
    assert get_json(server, "/sample", model=NOTEBOOK, n=30, seed=3)["words"] == words


# --- /score and /next ------------------------------------------------------------------------

WORDS = ["maison", "anticonstitutionnellement", "a", "zzz", "réé", "contrat"]


@pytest.mark.parametrize("model", [KN5, NOTEBOOK])
def test_score_is_the_sum_of_next_log_probabilities(server, model):
    for w in WORDS:
        score = get_json(server, "/score", model=model, word=w)
        assert len(score["bigrams"]) == len(w) + 1
        total = 0.0
        for i, entry in enumerate(score["bigrams"]):
            nxt = get_json(server, "/next", model=model, context=w[:i])
            symbol = w[i] if i < len(w) else "."
            (row,) = [e for e in nxt["next"] if e["symbol"] == symbol]
            assert entry["logprob"] == row["logprob"], (w, i)
            assert entry["context"] == nxt["state"], (w, i)
            total += row["logprob"]
        assert math.isclose(score["logprob"], total, rel_tol=1e-12, abs_tol=1e-12), w
        assert score["nll_per_symbol"] == pytest.approx(-total / (len(w) + 1), rel=1e-12)


def test_score_gives_the_context_of_each_symbol_at_order_5(server, kn5):
    body = requests.post(
        server.url + "/score", params={"model": KN5}, json={"words": WORDS}, timeout=30
    )
    assert body.status_code == 200, body.text
    for w, s in zip(WORDS, body.json()["scores"], strict=True):
        contexts = [b["context"] for b in s["bigrams"]]
        padded = "...." + w
        assert contexts[0] == "...."
        for i, ctx in enumerate(contexts):  # a suffix of the last 4 symbols of the history
            assert len(ctx) <= 4 and padded[: 4 + i].endswith(ctx), (w, i, ctx)
        (mine,) = kn5.scorer.score([w])
        assert contexts == list(mine.contexts)
        assert s["logprob"] == mine.logprob and s["in_corpus"] == (w in set(kn5.file.words))


@pytest.mark.parametrize("model", [KN5, NOTEBOOK])
@pytest.mark.parametrize("context", ["", "m", "mais", "anticonstitutionnel", "zzzz", "l'"])
def test_next_is_the_whole_distribution_sorted(server, models_dir, model, context):
    body = get_json(server, "/next", model=model, context=context)
    assert set(body) == {"context", "state", "next"} and body["context"] == context
    lm = open_model(models_dir / f"{model}.safetensors").lm
    entries = body["next"]
    assert [e["symbol"] for e in entries] == sorted(
        lm.alphabet,
        key=lambda c: (-lm.logP[lm.state_after(lm.codes(context))][lm.stoi[c]], lm.stoi[c]),
    )
    assert len(entries) == lm.V and {e["symbol"] for e in entries} == set(lm.alphabet)
    probs = np.array([e["prob"] for e in entries])
    assert abs(probs.sum() - 1) <= 1e-9
    assert (np.diff(probs) <= 0).all()
    for e in entries:
        assert set(e) == {"symbol", "prob", "logprob"}
        assert e["prob"] == pytest.approx(math.exp(e["logprob"]), rel=1e-12)
    s = lm.state_after(lm.codes(context))
    assert body["state"] == lm.contexts[s]
    got = {e["symbol"]: e["logprob"] for e in entries}
    assert all(got[c] == lm.logP[s, i] for i, c in enumerate(lm.alphabet))
    if model == KN5:
        assert (probs > 0).all()  # Kneser–Ney: no symbol is impossible
        history = "...." + context
        assert len(body["state"]) <= 4 and history.endswith(body["state"])


def test_next_of_the_empty_context_is_the_padding(server):
    assert get_json(server, "/next", model=KN5)["state"] == "...."
    assert get_json(server, "/next", model=KN5, context="")["state"] == "...."
    assert get_json(server, "/next")["state"] == "."  # the notebook's: the start marker


@pytest.mark.parametrize("context", ["k", "mai.son", ".", "ab\u00a0"])
@pytest.mark.parametrize("model", [KN5, NOTEBOOK])
def test_next_refuses_a_symbol_outside_the_alphabet(server, model, context):
    body = problem(server, "/next", 400, model=model, context=context)
    assert [e["parameter"] for e in body["errors"]] == ["context"]


def test_next_of_an_unknown_model_is_404(server):
    body = problem(server, "/next", 404, model="kn9", context="a")
    assert body["errors"][0]["parameter"] == "model"
    assert "kn5" in body["detail"] and "civil-words" in body["detail"]


# --- the bigram views ------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "params"), [("/prob", {"bigram": "ma"}), ("/matrix", {})])
def test_bigram_views_refuse_order_5_and_point_to_next(server, path, params):
    body = problem(server, path, 422, model=KN5, **params)
    assert body["type"] == "urn:civil-words:problem:not-a-bigram-model"
    assert body["errors"][0]["parameter"] == "model"
    assert "/next" in body["detail"] and "order 5" in body["detail"]
    # The notebook's model (the default, and by name) still answers.
    assert get_json(server, path, **params) == get_json(server, path, model=NOTEBOOK, **params)


def test_the_notebooks_bigram_views_are_its_table(server):
    f = load_model(SHIPPED_MODEL)
    lm = open_model(SHIPPED_MODEL).lm
    m = get_json(server, "/matrix")
    assert m["model"] == f.version and m["alphabet"] == list(f.alphabet)
    assert np.array_equal(np.array(m["probs"], dtype=np.float32), lm.P)
    p = get_json(server, "/prob", bigram="ma")
    assert p["prob"] == float(lm.P[lm.stoi["m"], lm.stoi["a"]])


# --- /models, /model, /loss ------------------------------------------------------------------


def test_models_lists_order_smoothing_and_nlls(server, kn5):
    entries = {m["name"]: m for m in get_json(server, "/models")["models"]}
    assert set(entries) == {KN5, NOTEBOOK}
    k, nb = entries[KN5], entries[NOTEBOOK]
    assert (k["order"], k["smoothing"], k["method"], k["default"]) == (
        5,
        "kneser-ney",
        "counts",
        False,
    )
    assert k["nll"] == pytest.approx(kn5.nll, rel=1e-12)
    assert k["holdout_nll"] == kn5.file.metadata["holdout"]["nll"]
    assert k["holdout_nll"] > k["nll"]  # held-out words are harder than the training ones
    assert k["version"] == kn5.version and k["symbols"] == kn5.lm.V
    assert (nb["order"], nb["smoothing"], nb["method"], nb["default"]) == (2, None, "neural", True)
    assert nb["holdout_nll"] is None and nb["nll"] > k["nll"]


def test_model_of_order_5(server, kn5):
    info = get_json(server, "/model", model=KN5)
    lm = kn5.lm
    assert info["order"] == 5 and info["smoothing"] == "kneser-ney"
    assert info["states"] == lm.S and info["shape"] == [lm.S, lm.V]
    assert info["version"] == kn5.version and info["alphabet"] == list(lm.alphabet)
    discounts = info["discounts"]
    assert len(discounts) == 5 and all(len(d) == 3 for d in discounts)
    assert discounts == [list(d) for d in kn5.details["discounts"]]
    assert all(0 < d1 <= 1 and 0 < d2 <= 2 and 0 < d3 <= 3 for d1, d2, d3 in discounts)
    assert info["config"]["order"] == 5 and info["config"]["holdout"] == 0.1
    assert info["examples"] == int(lm.counts.sum())
    assert info["contexts"] == len(kn5.file.tensors["contexts"]) < info["states"]
    nb = get_json(server, "/model")
    assert nb["order"] == 2 and nb["smoothing"] == "neural" and nb["discounts"] is None
    assert nb["shape"] == [len(nb["alphabet"])] * 2


def test_loss_of_order_5(server, kn5):
    loss = get_json(server, "/loss", model=KN5)
    assert loss["nll"] == pytest.approx(kn5.nll, rel=1e-12)
    assert loss["loss"] == pytest.approx(kn5.loss, rel=1e-12)
    assert loss["examples"] == int(kn5.lm.counts.sum())
    assert loss["holdout"] == kn5.file.metadata["holdout"]
    # The held-out figures are the held-out words' NLL under the model, walked here.
    total, count = 0.0, 0
    for w in kn5.file.heldout:
        if not set(w) <= set(kn5.lm.alphabet[1:]):
            continue
        s = kn5.lm.start
        for c in [*kn5.lm.codes(w), 0]:
            total -= kn5.lm.logP[s, c]
            count += 1
            s = int(kn5.lm.next[s, c])
    assert loss["holdout"]["nll"] == pytest.approx(total / count, rel=1e-9)
    assert loss["holdout"]["examples"] == count
