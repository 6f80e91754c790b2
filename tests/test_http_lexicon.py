"""The lexicon over HTTP (SPEC section 8), against the real server and references written here.

- `novel=true` gives no real word: checked against wordfreq's own list (read through its public
  `iter_wordlist`) and the corpus, accent-folded by Unicode decomposition here.
- /score's `in_lexicon`, `matches`, `old20`, `neighbours` and `nearest` equal a brute-force scan
  of the whole lexicon (every entry measured with rapidfuzz's Levenshtein, nothing skipped).
- `old20_min`/`old20_max` words lie in the range; `stats=true` equals /score.
- POST /pseudowords: every pseudoword of its target's length, novel, unique, within both
  tolerances (rescored, brute-forced); the summary equals the figures; the same seed, the same
  answer from every worker.
- CSV (`Accept: text/csv`) parses back (Python's csv module) into the JSON answer.
- Bounded work: a small LEXICON_BUDGET gives 422s naming the parameter, or unmatched targets,
  never a 5xx; a model without a lexicon says so; LEXICON_PATH replaces wordfreq's list, and a
  bad file stops start-up naming the file and the line.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import subprocess
import sys
import unicodedata
from functools import cache

import numpy as np
import pytest
import requests
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

from service.lm.store import load_model
from tests.conftest import LEGACY_MODEL, ROOT, SHIPPED_MODEL, TUNED_MODEL
from tests.server import free_port, start_server

pytestmark = pytest.mark.server

TARGETS = ["maison", "lettre", "soleil", "chat", "jardin", "parole", "nuage", "york", "ß"]


def folded(word: str) -> str:
    w = unicodedata.normalize("NFC", word).lower().replace("œ", "oe").replace("æ", "ae")
    return "".join(c for c in unicodedata.normalize("NFD", w) if not unicodedata.combining(c))


@cache
def entries() -> tuple[str, ...]:
    """The default lexicon as SPEC 8 defines it: wordfreq's French list (NFC, lower case, in
    its order, each word once), then the corpus words it lacks."""
    import wordfreq

    listed = [
        unicodedata.normalize("NFC", w.lower()) for w in wordfreq.iter_wordlist("fr", "large")
    ]
    f = load_model(SHIPPED_MODEL)
    corpus = sorted({*(f.words or ()), *(f.heldout or ())})
    return tuple(dict.fromkeys([*listed, *corpus]))


@cache
def folded_entries() -> frozenset[str]:
    return frozenset(map(folded, entries()))


def brute_force(word: str) -> dict:
    """OLD20, neighbours and the 5 nearest of `word` by measuring every entry."""
    listed = entries()
    d = cdist([word], listed, scorer=Levenshtein.distance, dtype=np.int32, workers=1)[0]
    d = np.where(np.array(listed, dtype=object) == word, 0, d)  # the word itself: not counted
    order = np.lexsort((np.arange(len(d)), d))  # by distance, then lexicon order
    order = order[d[order] > 0]
    closest = d[order[:20]]
    return {
        "old20": float(closest.mean()),
        "neighbours": [listed[i] for i in order if d[i] == 1],
        "nearest": [{"word": listed[i], "distance": int(d[i])} for i in order[:5]],
    }


@pytest.fixture(scope="module")
def both():
    """The shipped models as `make serve` serves them."""
    s = start_server(ROOT / "model_store", workers=2, DEFAULT_MODEL="civil-words")
    yield s
    s.stop()


def post(server, path: str, body: dict, csv_wanted: bool = False) -> requests.Response:
    headers = {"Accept": "text/csv"} if csv_wanted else {}
    return requests.post(server.url + path, json=body, headers=headers, timeout=60)


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def cell(value) -> str:
    """How the JSON value reads in the CSV (the documented encoding, written here)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(
            f"{v['word']}:{cell(v.get('zipf', v.get('distance')))}" if isinstance(v, dict) else v
            for v in value
        )
    return repr(value) if isinstance(value, float) else str(value)


# -- the lexicon is served ----------------------------------------------------------------------


def test_models_and_model_name_the_lexicon(both):
    listing = both.get("/models").json()["models"]
    sizes = {m["name"]: m["lexicon"] for m in listing}
    assert sizes["civil-words"] == sizes["civil-words-tuned"]  # one lexicon, shared
    lexicon = sizes["civil-words"]
    assert lexicon["source"].startswith("wordfreq ") and " fr " in lexicon["source"]
    assert lexicon["size"] == len(entries())
    assert both.get("/model").json()["lexicon"] == lexicon
    assert both.get("/model?model=civil-words-tuned").json()["config"]["language"] == "fr"


@pytest.mark.parametrize("model", ["civil-words", "civil-words-tuned"])
def test_novel_words_are_no_real_words(both, model):
    """The issue's measure: 8.8 % of novel words with min_len=4 were French words; now none,
    over several seeds, accent-folded, nor a corpus word."""
    words = []
    for seed in range(4):
        r = both.get(f"/sample?n=1000&novel=true&min_len=4&seed={seed}&model={model}")
        assert r.status_code == 200, r.text
        words += r.json()["words"]
    real = [w for w in words if folded(w) in folded_entries()]
    assert real == []
    assert len(set(words)) > 1000


def test_score_figures_equal_a_brute_force_scan(both):
    """Random, real, accented and corpus words: every figure from a scan of the whole list."""
    rng = np.random.default_rng(17)
    letters = list("abcdefghijlmnoprstuvéèàç")
    made_up = ["".join(rng.choice(letters, size=int(rng.integers(2, 10)))) for _ in range(4)]
    corpus_only = entries()[-1]  # the corpus words wordfreq lacks come last
    words = ["maison", "tete", "tête", "cœur", "coeur", "anticonstitutionnellement", corpus_only]
    for word in words + made_up:
        r = both.get(f"/score?word={word}")
        assert r.status_code == 200, (word, r.text)
        got = r.json()
        expected = brute_force(unicodedata.normalize("NFC", word))
        assert got["old20"] == pytest.approx(expected["old20"], abs=1e-12), word
        assert got["neighbours"] == expected["neighbours"], word
        assert got["nearest"] == expected["nearest"], word
        matches = [e for e in entries() if folded(e) == folded(word)]
        assert [m["word"] for m in got["matches"]] == matches, word
        assert got["in_lexicon"] == bool(matches), word
    tete = both.get("/score?word=tete").json()
    assert tete["in_lexicon"] and {"tête", "tete"} <= {m["word"] for m in tete["matches"]}
    assert all(isinstance(m["zipf"], float) for m in tete["matches"])


def test_stats_are_the_scores(both):
    r = both.get("/sample?n=20&seed=5&stats=true&model=civil-words-tuned")
    body = r.json()
    assert [s["word"] for s in body["stats"]] == body["words"]
    scores = post(both, "/score?model=civil-words-tuned", {"words": body["words"]}).json()
    for stat, score in zip(body["stats"], scores["scores"], strict=True):
        score.pop("bigrams")
        assert stat == score
    assert "stats" not in both.get("/sample?n=3&seed=5").json()


def test_old20_ranges_over_http(both):
    r = both.get("/sample?n=30&seed=3&min_len=5&max_len=8&old20_min=2.5&old20_max=3.2")
    assert r.status_code == 200, r.text
    for w in r.json()["words"][:8]:
        assert 2.5 - 1e-9 <= brute_force(w)["old20"] <= 3.2 + 1e-9
    bad = both.get("/sample?old20_min=2&old20_max=1")
    assert bad.status_code == 400 and bad.json()["errors"][0]["parameter"] == "old20_max"
    for value in ("-1", "nan", "inf", "300", "x"):
        r = both.get(f"/sample?old20_min={value}")
        assert r.status_code == 400 and r.json()["errors"][0]["parameter"] == "old20_min"


# -- matched pseudowords ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matched(both):
    body = {"targets": TARGETS, "per_target": 3, "seed": 11, "model": "civil-words-tuned"}
    r = post(both, "/pseudowords", body)
    assert r.status_code == 200, r.text
    return body, r.json()


def test_matched_sets_keep_their_promises(both, matched):
    body, answer = matched
    assert (
        answer["seed"] == 11
        and answer["model"] == both.get("/model?model=civil-words-tuned").json()["version"]
    )
    assert [u["target"] for u in answer["unmatched"]][-2:] == ["york", "ß"]
    assert len(answer["items"]) >= 5
    seen = set()
    for item in answer["items"]:
        t = item["target"]
        assert t["old20"] == pytest.approx(brute_force(t["word"])["old20"], abs=1e-12)
        assert len(item["pseudowords"]) == 3
        words = [p["word"] for p in item["pseudowords"]]
        scores = post(both, "/score?model=civil-words-tuned", {"words": words}).json()["scores"]
        for p, s in zip(item["pseudowords"], scores, strict=True):
            w = p["word"]
            assert len(w) == p["length"] == t["length"] == len(t["word"])
            assert folded(w) not in folded_entries() and w not in seen and w not in TARGETS
            seen.add(w)
            assert p["nll_per_symbol"] == s["nll_per_symbol"]
            assert abs(p["nll_per_symbol"] - t["nll_per_symbol"]) <= 0.3 + 1e-9
            truth = brute_force(w)
            assert p["old20"] == pytest.approx(truth["old20"], abs=1e-12)
            assert p["neighbours"] == truth["neighbours"]
            assert abs(p["old20"] - t["old20"]) <= 0.3 + 1e-9
    # The summary is of the figures above.
    targets = [item["target"] for item in answer["items"]]
    pseudo = [p for item in answer["items"] for p in item["pseudowords"]]
    summary = answer["summary"]
    for name, group in (("targets", targets), ("pseudowords", pseudo)):
        assert summary[name]["count"] == len(group)
        for field in ("length", "old20", "nll_per_symbol"):
            values = [g[field] for g in group]
            assert summary[name][field]["mean"] == pytest.approx(statistics.fmean(values))
            assert summary[name][field]["sd"] == pytest.approx(statistics.stdev(values))
    # The same request, the same answer (whichever worker takes it).
    for _ in range(3):
        assert post(both, "/pseudowords", body).json() == answer


def test_pseudowords_refuse_bad_bodies(both):
    cases = [
        ({"targets": []}, "targets"),
        ({"targets": ["a"] * 501}, "targets"),
        ({"targets": ["maison"], "per_target": 0}, "per_target"),
        ({"targets": ["maison"], "per_target": 21}, "per_target"),
        ({"targets": ["maison"], "old20_tolerance": -1}, "old20_tolerance"),
        ({"targets": ["maison"], "nll_tolerance": 11}, "nll_tolerance"),
        ({"targets": ["maison"], "seed": -1}, "seed"),
        ({"targets": [""]}, "targets[0]"),
        ({"targets": ["maison"], "colour": 1}, "colour"),
        ({"targets": "maison"}, "targets"),
    ]
    for body, parameter in cases:
        r = post(both, "/pseudowords", body)
        assert r.status_code == 400, (body, r.text)
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert parameter in [e["parameter"] for e in r.json()["errors"]], (body, r.text)
    r = post(both, "/pseudowords", {"targets": ["maison"], "model": "nope"})
    assert r.status_code == 404


# -- CSV ----------------------------------------------------------------------------------------


def test_csv_parses_back_into_the_json(both, matched):
    # /sample
    url = "/sample?n=12&seed=9&stats=true&novel=true"
    as_json = both.get(url).json()
    r = both.get(url, headers={"Accept": "text/csv"})
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["X-Seed"] == "9" and r.headers["X-Model"] == as_json["model"]
    rows = read_csv(r.text)
    assert [row["word"] for row in rows] == as_json["words"]
    for row, stat in zip(rows, as_json["stats"], strict=True):
        assert row == {k: cell(v) for k, v in stat.items()}
    plain = read_csv(both.get("/sample?n=5&seed=9", headers={"Accept": "text/csv"}).text)
    assert [row["word"] for row in plain] == both.get("/sample?n=5&seed=9").json()["words"]
    # /score, GET and POST
    words = ["maison", "tete", "xqzwv", "qu'il"]
    scores = post(both, "/score", {"words": words}).json()["scores"]
    rows = read_csv(post(both, "/score", {"words": words}, csv_wanted=True).text)
    for row, score in zip(rows, scores, strict=True):
        score.pop("bigrams")
        assert row == {k: cell(v) for k, v in score.items()}
    (row,) = read_csv(both.get("/score?word=tete", headers={"Accept": "text/csv"}).text)
    assert float(row["old20"]) == both.get("/score?word=tete").json()["old20"]
    # /pseudowords: a target row, its pseudowords, then the unmatched.
    body, answer = matched
    rows = read_csv(post(both, "/pseudowords", body, csv_wanted=True).text)
    expected = []
    for i, item in enumerate(answer["items"], 1):
        t = item["target"]
        expected.append({"item": str(i), "role": "target", "target": t["word"], **_csv_of(t)})
        for p in item["pseudowords"]:
            expected.append(
                {"item": str(i), "role": "pseudoword", "target": t["word"], **_csv_of(p)}
            )
    for u in answer["unmatched"]:
        expected.append(
            {
                **dict.fromkeys(rows[0], ""),
                "role": "unmatched",
                "target": u["target"],
                "reason": u["reason"],
            }
        )
    assert rows == expected
    # Errors stay problems, whatever the Accept header.
    r = both.get("/sample?n=0", headers={"Accept": "text/csv"})
    assert r.status_code == 400 and r.headers["Content-Type"].startswith("application/problem")


def _csv_of(figures: dict) -> dict:
    out = {k: cell(figures.get(k)) for k in ("word", "length", "nll_per_symbol", "old20")}
    out["neighbours"] = cell(figures["neighbours"])
    out["in_lexicon"] = cell(figures.get("in_lexicon"))
    out["zipf"] = cell(figures.get("zipf"))
    out["reason"] = ""
    return out


# -- bounded work, other lexicons, none ---------------------------------------------------------


def test_a_small_budget_gives_422s_or_unmatched_targets_never_a_5xx(tmp_path):
    s = start_server(SHIPPED_MODEL, workers=1, LEXICON_BUDGET="100000")
    try:
        assert s.get("/score?word=maison").status_code == 200
        r = post(s, "/score", {"words": [f"{a}{b}ssette" for a in "bcdfglmnprst" for b in "aeiou"]})
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["type"].endswith("lexicon-budget")
        assert problem["errors"][0]["parameter"] == "words"
        r = s.get("/sample?n=200&seed=1&stats=true")
        assert r.status_code == 422 and r.json()["errors"][0]["parameter"] == "stats"
        # Possible but beyond the request's work: a 422 that names the filter.
        r = s.get("/sample?n=100&max_len=3&old20_min=2.9")
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["parameter"] == "old20_min"
        r = post(s, "/pseudowords", {"targets": TARGETS[:6], "seed": 1})
        assert r.status_code == 200, r.text
        reasons = [u["reason"] for u in r.json()["unmatched"]]
        assert any("lexicon work budget ran out" in x for x in reasons)
        assert s.get("/readyz").status_code == 200
    finally:
        s.stop()


def test_lexicon_path_replaces_wordfreq(tmp_path):
    listed = tmp_path / "lexique.tsv"
    listed.write_text("maison\t5.6\nraison\t5.1\nsaison\t4.9\nmaisons\t4.2\n", encoding="utf-8")
    s = start_server(SHIPPED_MODEL, workers=1, LEXICON_PATH=str(listed))
    try:
        lexicon = s.get("/model").json()["lexicon"]
        assert lexicon["source"] == str(listed)
        corpus = {*load_model(SHIPPED_MODEL).words}
        assert lexicon["size"] == len(corpus | {"maison", "raison", "saison", "maisons"})
        got = s.get("/score?word=maisom").json()
        assert got["in_lexicon"] is False
        assert [n["word"] for n in got["nearest"][:2]] == [
            "maison",
            "raison",
        ]  # a tie at 2: file order
        assert s.get("/score?word=raison").json()["matches"] == [{"word": "raison", "zipf": 5.1}]
        words = s.get("/sample?n=300&seed=2&novel=true").json()["words"]
        assert not {"maison", "raison", "saison", "maisons"} & set(words)
    finally:
        s.stop()


def test_a_bad_lexicon_file_stops_start_up_naming_it(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("maison\t5.6\nraison\n", encoding="utf-8")
    env = {"MODEL_PATH": str(SHIPPED_MODEL), "LEXICON_PATH": str(bad), "PORT": str(free_port())}
    r = subprocess.run(
        [sys.executable, "-m", "service", "serve"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0
    assert f"{bad}, line 2" in r.stderr and "Traceback" not in r.stderr


def test_a_model_without_a_lexicon_says_so():
    s = start_server(LEGACY_MODEL, workers=1)
    try:
        assert s.get("/model").json()["lexicon"] is None
        got = s.get("/score?word=maison").json()
        assert [got[k] for k in ("in_lexicon", "matches", "old20", "neighbours", "nearest")] == [
            None
        ] * 5
        r = s.get("/sample?old20_max=2")
        assert r.status_code == 422 and r.json()["type"].endswith("no-lexicon")
        r = post(s, "/pseudowords", {"targets": ["maison"]})
        assert r.status_code == 422 and r.json()["errors"][0]["parameter"] == "model"
    finally:
        s.stop()


def test_the_tuned_model_is_served_with_its_lexicon(both):
    """(The tuned model file is the one `tune` wrote, trained with --language fr.)"""
    assert load_model(TUNED_MODEL).config["language"] == "fr"
    r = both.get("/score?word=maison&model=civil-words-tuned").json()
    assert r["in_lexicon"] and r["old20"] == both.get("/score?word=maison").json()["old20"]
