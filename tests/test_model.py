"""The model against the notebook's own code, on the shared corpus and made-up word lists."""

from __future__ import annotations

import pytest
import torch

from service.lm.corpus import read_words
from service.lm.model import (
    TrainConfig,
    build_alphabet,
    count_bigrams,
    encode,
    init_weights,
    model_loss,
    probability_table,
    train,
)
from tests.conftest import generated_word_lists
from tests.reference import table_sampler

LISTS = ["civil", *generated_word_lists()]
SEEDS = [0, 1, 42, 2147483647, 2**63 - 1]


@pytest.fixture(scope="module")
def ours(word_lists):
    cache = {}

    def get(name):
        if name not in cache:
            words = read_words(word_lists[name]).words
            alphabet = build_alphabet(words)
            xs, ys = encode(words, alphabet)
            counts = count_bigrams(xs, ys, len(alphabet))
            t = train(counts, examples=lambda xs=xs, ys=ys: (xs, ys))
            cache[name] = (alphabet, counts, t.W, t.history)
        return cache[name]

    return get


@pytest.mark.parametrize("name", LISTS)
def test_alphabet_and_examples_match_notebook(name, ours, notebook_run):
    alphabet, counts, _, _ = ours(name)
    ref = notebook_run(name)
    itoc = ref.namespace["itoc"]
    assert alphabet == tuple(itoc[i] for i in range(len(itoc)))
    assert int(counts.sum()) == ref.examples
    xs, ys = ref.namespace["xs"], ref.namespace["ys"]
    expected = torch.zeros_like(counts)
    expected.index_put_((xs, ys), torch.ones_like(xs), accumulate=True)
    assert torch.equal(counts, expected)


@pytest.mark.parametrize("name", LISTS)
def test_trained_W_and_losses_match_notebook(name, ours, notebook_run):
    _, _counts, W, history = ours(name)
    ref = notebook_run(name)
    assert W.shape == ref.W.shape and W.dtype == torch.float32
    assert (W - ref.W).abs().max().item() <= 1e-4
    assert len(history) == len(ref.losses) == 600
    assert max(abs(a - b) for a, b in zip(history, ref.losses, strict=True)) <= 1e-4


@pytest.mark.parametrize("name", LISTS)
def test_sampled_words_match_notebook(name, ours, notebook_run):
    alphabet, _, W, _ = ours(name)
    ref = notebook_run(name)
    mine, theirs = (
        table_sampler(probability_table(W), alphabet),
        table_sampler(probability_table(ref.W), alphabet),
    )
    for seed in SEEDS:
        expected = ref.sample(60, seed)
        # The same algorithm on the notebook's own W gives its words exactly ...
        assert theirs.sample(60, seed) == expected, seed
        # ... and so does the whole pipeline, from our own training.
        assert mine.sample(60, seed) == expected, seed


def test_sampling_is_a_stream(ours):
    """Asking for more words extends the list: word k never depends on n."""
    alphabet, _, W, _ = ours("civil")
    s = table_sampler(probability_table(W), alphabet)
    assert s.sample(300, 7)[:5] == s.sample(5, 7)
    assert s.sample(1, 7) == s.sample(5, 7)[:1]


def test_notebook_corpus_figures(ours):
    """The figures the data README gives for the shared corpus."""
    alphabet, counts, W, history = ours("civil")
    assert len(alphabet) == 41 and int(counts.sum()) == 65725
    assert round(history[0], 4) == 4.2714 and round(history[-1], 4) == 2.3817
    assert table_sampler(probability_table(W), alphabet).sample(5, 2147483647)[:3] == [
        "éssanée",
        "mexiomerér",
        "monts",
    ]


def test_zero_steps_keeps_initial_W(ours):
    alphabet, _, _, _ = ours("tiny-ab")
    xs, ys = encode(["ab", "ba"], alphabet)
    counts = count_bigrams(xs, ys, len(alphabet))
    for examples in (lambda: (xs, ys), None):  # the notebook's loop, and the descent
        t = train(counts, TrainConfig(steps=0), examples=examples)
        assert t.history == [] and torch.equal(t.W, init_weights(len(alphabet)))


def test_model_loss_is_the_notebook_loss_of_W(ours, notebook_run):
    """The loss of a W from counts alone equals the notebook's formula on the examples."""
    _, counts, W, _ = ours("greek-cyrillic")
    ns = notebook_run("greek-cyrillic").namespace
    xs, ys, V = ns["xs"], ns["ys"], W.shape[0]
    logits = torch.nn.functional.one_hot(xs, num_classes=V).float() @ W
    probs = logits.exp() / logits.exp().sum(1, keepdims=True)
    nll = -probs[torch.arange(len(xs)), ys].log().mean()
    loss, plain = model_loss(W, counts, 0.01)
    assert plain == pytest.approx(nll.item(), abs=1e-5)
    assert loss == pytest.approx((nll + 0.01 * (W**2).mean()).item(), abs=1e-5)


def test_cut_at_cuts_a_word_that_never_ends():
    """A model that (almost) never emits '.' still returns: words are cut at `cut_at`."""
    alphabet = (".", "a", "b")
    W = torch.tensor([[-50.0, 5.0, 5.0], [-50.0, 5.0, 5.0], [-50.0, 5.0, 5.0]])
    words = table_sampler(probability_table(W), alphabet).sample(3, 1, cut_at=40)
    assert [len(w) for w in words] == [40, 40, 40]
    assert set("".join(words)) <= {"a", "b"}


def test_chaotic_descent_on_a_large_list_is_reported_not_looped(ours, word_lists, monkeypatch):
    """Where the float32 and float64 descents part (a step too large), the notebook's loop
    decides; beyond FALLBACK_BUDGET it is not run: the float64 W comes with a warning."""
    from service.lm import model

    alphabet, counts, _, _ = ours("greek-cyrillic")
    config = TrainConfig(steps=300, lr=2000)
    calls = []

    def examples():
        calls.append(1)
        words = read_words(word_lists["greek-cyrillic"]).words
        return encode(words, alphabet)

    # Over the literal budget, under the fallback's: the notebook's loop is run after all.
    monkeypatch.setattr(model, "LITERAL_BUDGET", 0)
    t = train(counts, config, examples=examples)
    assert t.path == model.NOTEBOOK_LOOP and t.float32_gap > model.STABLE_TOL and not t.warning
    assert calls == [1]
    # Over both: the float64 descent, reported; the examples are never built.
    monkeypatch.setattr(model, "FALLBACK_BUDGET", 0)
    t64 = train(counts, config, examples=examples)
    assert calls == [1] and t64.path == model.FLOAT64_DESCENT
    assert t64.warning and "part by" in t64.warning and f"{t64.float32_gap:.1e}" in t64.warning
    # A stable descent is not reported.
    quiet = train(counts, TrainConfig(steps=300), examples=examples)
    assert quiet.path == model.FLOAT64_DESCENT and quiet.warning is None
    assert quiet.float32_gap <= model.STABLE_TOL
