"""`civil-words eval` and `civil-words compare`, run as a user runs them; figures recomputed here
from the model's tables, word by word."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from service.lm.methods import AddK
from service.lm.model import probabilities
from service.lm.store import load_model
from service.lm.train import Split, train_to_file
from tests.conftest import CORPUS, LEGACY_MODEL, SHIPPED_MODEL
from tests.reference import table_sampler
from tests.test_cli import cli


def cli_json(*args: str) -> dict:
    r = cli(*args, "--json", check=True)
    return json.loads(r.stdout)


def direct_nll(m, words: list[str]) -> tuple[float, int, int, int]:
    """Mean NLL over the words' bigrams (markers included), one bigram at a time."""
    _, logP = probabilities(m.W, m.counts, m.method, m.config["smoothing"])
    stoi = {c: i for i, c in enumerate(m.alphabet)}
    total, examples, scored, skipped = 0.0, 0, 0, 0
    for w in words:
        if any(c not in stoi for c in w):
            skipped += 1
            continue
        chs = [".", *w, "."]
        for a, b in itertools.pairwise(chs):
            total -= logP[stoi[a], stoi[b]]
            examples += 1
        scored += 1
    return total / examples, examples, scored, skipped


@pytest.fixture(scope="module")
def counts_holdout(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "counts.safetensors"
    train_to_file(CORPUS, path, AddK(), split=Split(0.2, 11))
    return load_model(path)


def test_eval_on_the_training_list_is_the_training_nll():
    e = cli_json("eval", "--model", str(SHIPPED_MODEL), "--words", str(CORPUS))
    m = load_model(SHIPPED_MODEL)
    assert e["nll"] == pytest.approx(m.metadata["nll"], abs=1e-9)
    assert e["perplexity"] == pytest.approx(math.exp(e["nll"]), rel=1e-12)
    assert (e["examples"], e["words"], e["skipped"]) == (65725, 7072, 0)


def test_eval_skips_and_counts_words_outside_the_alphabet(tmp_path, counts_holdout):
    words = ["maison", "kayak", "loi", "Loi", "œuvre", "ok", "été", "loi"]
    f = tmp_path / "w.txt"
    f.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    for m in (load_model(SHIPPED_MODEL), counts_holdout):
        e = cli_json("eval", "--model", m.path, "--words", str(f))
        nll, examples, scored, skipped = direct_nll(m, words)
        assert (e["examples"], e["words"], e["skipped"]) == (examples, scored, skipped)
        assert skipped == 3 and e["nll"] == pytest.approx(nll, abs=1e-9)
    text = cli("eval", "--model", str(SHIPPED_MODEL), "--words", str(f), check=True).stdout
    assert "perplexity" in text and "3 skipped" in text


def test_eval_refuses_a_bad_word_list(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_bytes(b"maison\nloi civile\n")
    r = cli("eval", "--model", str(SHIPPED_MODEL), "--words", str(f))
    assert r.returncode == 1 and f"{f}: line 2" in r.stderr and "Traceback" not in r.stderr


def test_eval_samples_sorts_words_by_origin(counts_holdout):
    m = counts_holdout
    o = cli_json("eval", "--model", m.path, "--samples", "2000", "--seed", "3")
    P, _ = probabilities(m.W, m.counts, "counts", 1)
    words = table_sampler(P, m.alphabet).sample(2000, 3)
    training, heldout = set(m.words), set(m.heldout)
    assert o["training"] == sum(w in training for w in words)
    assert o["heldout"] == sum(w in heldout and w not in training for w in words)
    assert o["new"] == sum(w not in training and w not in heldout for w in words)
    assert o["training"] + o["heldout"] + o["new"] == o["n"] == 2000 and o["seed"] == 3
    assert o["heldout"] > 0  # 2000 words do land on some of the 1414 held-out words


def test_eval_samples_needs_a_word_list():
    r = cli("eval", "--model", str(LEGACY_MODEL), "--samples", "5")
    assert r.returncode == 1 and str(LEGACY_MODEL) in r.stderr and "word list" in r.stderr


def test_compare_figures(counts_holdout):
    a, b = load_model(SHIPPED_MODEL), counts_holdout
    c = cli_json("compare", a.path, b.path, "-n", "30", "--seed", "9")
    Pa, logA = probabilities(a.W, a.counts, "neural")
    Pb, logB = probabilities(b.W, b.counts, "counts", 1)
    # KL summed bigram by bigram over A's training examples.
    kl, num = 0.0, 0
    for i in range(len(a.alphabet)):
        row = sum(math.exp(logA[i, j]) * (logA[i, j] - logB[i, j]) for j in range(len(a.alphabet)))
        kl += int(a.counts[i].sum()) * row
        num += int(a.counts[i].sum())
    assert c["kl"] == pytest.approx(kl / num, rel=1e-9) and c["kl"] > 0
    assert c["max_abs_diff"] == pytest.approx((Pa - Pb).abs().max().item(), rel=1e-6)
    assert c["nll"][0] == pytest.approx(a.metadata["nll"], abs=1e-9)
    corpus = CORPUS.read_text(encoding="utf-8").splitlines()  # A's training words
    assert c["nll"][1] == pytest.approx(direct_nll(b, corpus)[0], abs=1e-9)
    wa, wb = (
        table_sampler(Pa, a.alphabet).sample(30, 9),
        table_sampler(Pb, b.alphabet).sample(30, 9),
    )
    assert c["words"] == [wa, wb] and c["agree"] == sum(x == y for x, y in zip(wa, wb, strict=True))
    assert (c["n"], c["seed"]) == (30, 9)


def test_compare_a_model_with_itself_and_as_text():
    c = cli_json("compare", str(SHIPPED_MODEL), str(SHIPPED_MODEL), "-n", "5")
    assert c["kl"] == 0 and c["max_abs_diff"] == 0 and c["agree"] == 5
    assert c["nll"][0] == c["nll"][1]
    out = cli("compare", str(SHIPPED_MODEL), str(SHIPPED_MODEL), "-n", "5", check=True).stdout
    assert "KL(P_A || P_B)" in out and "5 of 5 agree" in out and "éssanée" in out


def test_compare_refuses_different_alphabets(word_lists, tmp_path):
    other = tmp_path / "greek.safetensors"
    train_to_file(word_lists["greek-cyrillic"], other, AddK())
    r = cli("compare", str(SHIPPED_MODEL), str(other))
    assert r.returncode == 1 and "different alphabets" in r.stderr
    assert str(other) in r.stderr and "Traceback" not in r.stderr


def test_eval_and_compare_usage_errors():
    for args in (
        ["eval", "--model", "x"],  # neither --words nor --samples
        ["eval", "--model", "x", "--words", "w", "--samples", "3"],
        ["eval", "--model", "x", "--samples", "0"],
        ["compare", "a"],
        ["compare", "a", "b", "-n", "0"],
    ):
        r = cli(*args)
        assert r.returncode == 2 and "usage:" in r.stderr, args


def test_held_out_figures_are_the_held_out_words_nll(counts_holdout):
    """The figures stored in the file are the eval of the held-out words."""
    m = counts_holdout
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    k = round(0.2 * len(lines))
    held = torch.randperm(len(lines), generator=torch.Generator().manual_seed(11))[:k]
    words = [lines[i] for i in sorted(held.tolist())]
    nll, examples, scored, skipped = direct_nll(m, words)
    h = m.metadata["holdout"]
    assert (h["examples"], h["words"], h["skipped"]) == (examples, scored, skipped)
    assert h["nll"] == pytest.approx(nll, abs=1e-9)
