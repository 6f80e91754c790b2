"""The counting model (`train --method counts`) against the course's counting loop
(`tests/notebook_reference.py` CELL_COUNTING), on the shared corpus and made-up word lists."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from service.lm.methods import AddK
from service.lm.model import counts_table, probabilities, probability_table
from service.lm.ready import open_model
from service.lm.store import load_model
from service.lm.train import Split, train_to_file
from tests.conftest import generated_word_lists
from tests.reference import run_counting, table_sampler

LISTS = ["civil", *generated_word_lists()]
SEEDS = [0, 1, 42, 2147483647, 2**63 - 1]
# Smoothing K: the course's 1 on every list; an integer and fractions on some.
CASES = [(name, 1) for name in LISTS] + [("digits", 3), ("greek-cyrillic", 0.5), ("civil", 0.01)]


@pytest.fixture(scope="module")
def trained(word_lists, tmp_path_factory):
    cache = {}

    def get(name, K):
        if (name, K) not in cache:
            path = tmp_path_factory.mktemp("counts") / f"{name}.safetensors"
            train_to_file(word_lists[name], path, AddK(K))
            cache[name, K] = (load_model(path), run_counting(word_lists[name], K))
        return cache[name, K]

    return get


def alphabet_of(ref) -> tuple[str, ...]:
    itoc = ref.namespace["itoc"]
    return tuple(itoc[i] for i in range(len(itoc)))


@pytest.mark.parametrize(("name", "K"), CASES)
def test_table_is_the_counting_loops(trained, name, K):
    m, ref = trained(name, K)
    assert m.alphabet == alphabet_of(ref)
    assert torch.equal(m.counts, ref.N)
    P, logP = probabilities(m.W, m.counts, m.method, m.config["smoothing"])
    assert P.dtype == torch.float32 and torch.equal(P, ref.P)  # bit for bit
    assert logP == pytest.approx(torch.log(ref.P.double()).numpy(), abs=1e-6)
    # The ready model (what the CLI and the server use) holds these very tables.
    lm = open_model(m.path).lm
    assert lm.order == 2 and lm.alphabet == m.alphabet
    assert lm.P.dtype == np.float32 and np.array_equal(lm.P, ref.P.numpy())
    assert np.array_equal(lm.logP, logP) and np.array_equal(lm.counts, ref.N.numpy())
    # The file describes itself: W = log P, and no neural setting.
    assert torch.equal(m.W, torch.log(ref.P))
    assert m.config == {
        "method": "counts",
        "order": 2,
        "steps": None,
        "lr": None,
        "reg": None,
        "seed": None,
        "smoothing": K,
        "holdout": 0.0,
        "split_seed": 2147483647,
        "language": None,
    }
    # Its loss is its NLL on its own counts (no regularisation term).
    N = ref.N.double()
    expected = -(N * torch.log(ref.N.double() + K).sub(torch.log((N + K).sum(1, keepdim=True))))
    nll = (expected.sum() / N.sum()).item()
    assert m.metadata["nll"] == pytest.approx(nll, abs=1e-9)
    assert m.metadata["loss"] == m.metadata["nll"]


@pytest.mark.parametrize(("name", "K"), CASES)
def test_words_are_the_counting_loops(trained, name, K):
    m, ref = trained(name, K)
    sampler = open_model(m.path).sampler
    for seed in SEEDS:
        assert sampler.sample(40, seed) == ref.sample(40, seed), seed


def test_the_comparison_catches_a_wrong_table(trained):
    """The checks above can fail: a wrong K changes the words, and the network's softmax of the
    stored W = log P (the table a counts model would get through the neural path) is not P."""
    m, ref = trained("civil", 1)
    wrong_K = table_sampler(counts_table(m.counts, 2), m.alphabet)
    assert wrong_K.sample(40, 42) != ref.sample(40, 42)
    assert not torch.equal(probability_table(m.W), ref.P)


@settings(max_examples=25, deadline=None)
@given(V=st.integers(2, 60), seed=st.integers(0, 2**63 - 1), power=st.sampled_from([1, 3, 8]))
def test_multinomial_draws_the_same_stream_from_a_row_and_a_1_by_V_table(V, seed, power):
    """The counting loop draws from `P[ix]` (1-D), the notebook's from `p` (1, V): the same
    generator stream, so one sampler serves both."""
    P = torch.rand((V, V), generator=torch.Generator().manual_seed(seed % 2**32)) ** power
    P /= P.sum(1, keepdim=True)
    g1, g2 = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    a = b = 0
    for _ in range(300):
        a = torch.multinomial(P[a], 1, replacement=True, generator=g1).item()
        b = torch.multinomial(P[b : b + 1], num_samples=1, replacement=True, generator=g2).item()
        assert a == b


def test_the_seed_claim(trained, tmp_path):
    """The spec's published figures: on the shared corpus, seed 2147483647, the shipped neural
    model and the counting model (K = 1) agree on the first 9 words and on 17 of the first 20."""
    from tests.conftest import SHIPPED_MODEL
    from tests.test_measure import cli_json

    m, _ = trained("civil", 1)
    c = cli_json("compare", str(SHIPPED_MODEL), m.path, "-n", "20", "--seed", "2147483647")
    neural, counts = c["words"]
    assert neural[:9] == counts[:9] and neural[9] != counts[9]
    assert c["agree"] == 17 == sum(x == y for x, y in zip(neural, counts, strict=True))
    assert c["n"] == 20 and c["seed"] == 2147483647


@pytest.mark.server
def test_the_server_answers_with_the_counting_table(trained, word_lists, tmp_path):
    """/prob is exactly P, /sample the counting loop's words, /model and /loss say what the
    model is, with the held-out figures; on the real server (2 workers)."""
    from tests.server import start_server

    path = tmp_path / "counts-holdout.safetensors"
    r = train_to_file(word_lists["civil"], path, AddK(1), split=Split(0.1, 7))
    m = load_model(path)
    P, _ = probabilities(m.W, m.counts, "counts", 1)
    server = start_server(path, workers=2)
    try:
        for bigram in ("es", ".a", "e.", "..", "œu", "-x"):
            body = server.get("/prob", params={"bigram": bigram}).json()
            i, j = m.alphabet.index(bigram[0]), m.alphabet.index(bigram[1])
            assert body["prob"] == P[i, j].item()  # exact: the float32 table itself
            assert body["logprob"] == pytest.approx(math.log(P[i, j].item()), abs=1e-12)
        words = table_sampler(P, m.alphabet).sample(300, 5)
        assert server.get("/sample?n=300&seed=5").json()["words"] == words
        info = server.get("/model").json()
        assert info["config"]["method"] == "counts" and info["config"]["smoothing"] == 1
        assert info["config"]["holdout"] == 0.1 and info["config"]["split_seed"] == 7
        assert info["config"]["steps"] is None and info["holdout"] == r.holdout
        assert info["word_list"] == {"words": len(m.words), "heldout": len(m.heldout)}
        loss = server.get("/loss").json()
        assert loss["holdout"] == r.holdout and loss["holdout"]["words"] > 600
        assert loss["nll"] == pytest.approx(r.nll, abs=1e-12) and loss["loss"] == loss["nll"]
        assert loss["examples"] == int(m.counts.sum())
    finally:
        server.stop()


def test_a_held_out_nll_of_nothing_is_null(tmp_path):
    """A hold-out of round(F x n) = 0 words: /loss and /model say so, with a null nll."""
    from service import create_app
    from service.settings import Settings

    words = tmp_path / "w.txt"
    words.write_text("ab\nba\naab\n", encoding="utf-8")
    path = tmp_path / "m.safetensors"
    train_to_file(words, path, AddK(), split=Split(0.1))
    client = create_app(Settings(model_path=path)).test_client()
    nothing = {"nll": None, "examples": 0, "words": 0, "skipped": 0}
    assert client.get("/loss").get_json()["holdout"] == nothing
    assert client.get("/model").get_json()["holdout"] == nothing
