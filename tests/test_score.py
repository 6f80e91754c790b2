"""Word scores (service/lm/score.py) against log-softmax of the stored W, and the notebook."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from service.lm.model import probabilities
from service.lm.ready import open_model
from service.lm.score import Scorer, UnknownSymbolError
from tests.conftest import LEGACY_MODEL, SHIPPED_MODEL, generated_word_lists
from tests.reference import table_lm


@pytest.fixture(scope="module")
def shipped():
    m = open_model(SHIPPED_MODEL)
    return m.file, m.scorer


def reference_logprob(W: torch.Tensor, alphabet, word: str) -> list[float]:
    """log_softmax of the stored W's rows, bigram by bigram, in float64."""
    ix = [0, *(alphabet.index(c) for c in word), 0]
    rows = torch.log_softmax(W.double(), dim=1)
    return [rows[a, b].item() for a, b in itertools.pairwise(ix)]


WORDS = ["maison", "mor", "éssanée", "code", "x", "qu'il", "zzzz", "anticonstitutionnellement"]


def test_scores_are_sums_of_log_softmax_of_W(shipped):
    m, scorer = shipped
    scores = scorer.score(WORDS)
    for word, s in zip(WORDS, scores, strict=True):
        expected = reference_logprob(m.W, m.alphabet, word)
        assert s.word == word and s.symbols == len(word)
        assert [b for b, _ in s.bigrams] == [
            a + b for a, b in zip("." + word, word + ".", strict=False)
        ]
        assert s.contexts == list("." + word)  # a bigram model conditions on one symbol
        assert [v for _, v in s.bigrams] == pytest.approx(expected, abs=1e-12)
        assert s.logprob == pytest.approx(sum(expected), abs=1e-9)
        assert s.nll_per_symbol == pytest.approx(-sum(expected) / (len(word) + 1), abs=1e-9)
        assert s.perplexity == pytest.approx(math.exp(s.nll_per_symbol))
        assert s.in_corpus == (word in set(m.words))
    assert [s.in_corpus for s in scores[:4]] == [True, False, False, True]


def test_scores_match_the_notebooks_per_bigram_code(shipped):
    """The notebook computes a bigram's probability with one-hot @ W, exp and a row sum."""
    m, scorer = shipped
    V = len(m.alphabet)
    for word, s in zip(WORDS, scorer.score(WORDS), strict=True):
        ix = [0, *(m.alphabet.index(c) for c in word), 0]
        total = 0.0
        for a, b in itertools.pairwise(ix):
            logits = F.one_hot(torch.tensor([a]), num_classes=V).float() @ m.W
            counts = logits.exp()
            p = counts / counts.sum(1, keepdims=True)
            total += torch.log(p[0, b]).item()
        assert s.logprob == pytest.approx(total, abs=1e-4)


@pytest.mark.parametrize("name", ["greek-cyrillic", "cjk-emoji-symbols"])
def test_scores_on_other_alphabets_and_the_counting_model(name):
    words = generated_word_lists()[name]
    alphabet = (".", *sorted(set("".join(words))))
    V = len(alphabet)
    W = torch.randn((V, V), generator=torch.Generator().manual_seed(3))
    counts = torch.randint(0, 50, (V, V), generator=torch.Generator().manual_seed(4))
    for method, smoothing in [("neural", None), ("counts", 1.0)]:
        P, logP = probabilities(W, counts, method, smoothing)
        scorer = Scorer(table_lm(P, alphabet, logP, counts), words)
        for w, s in zip(words[:20], scorer.score(words[:20]), strict=True):
            ix = [0, *(alphabet.index(c) for c in w), 0]
            if method == "neural":
                rows = torch.log_softmax(W.double(), 1)
            else:
                N = counts.double() + smoothing
                rows = torch.log(N / N.sum(1, keepdim=True))
            expected = sum(rows[a, b].item() for a, b in itertools.pairwise(ix))
            assert s.logprob == pytest.approx(expected, abs=1e-9) and s.in_corpus is True


def test_words_are_nfc_normalised(shipped):
    _, scorer = shipped
    (decomposed,) = scorer.score(["e\u0301te\u0301"])
    (composed,) = scorer.score(["été"])
    assert decomposed.word == "été" and decomposed.logprob == composed.logprob


@pytest.mark.parametrize(
    ("words", "index", "symbol", "position", "reason"),
    [
        (["maison", "kayak"], 1, "k", 1, "'k' (position 1) is not in the model's alphabet"),
        (["mai.son"], 0, ".", 4, "'.' (position 4) is the end marker"),
        (["a", "b", ""], 2, None, None, "empty word"),
        (["Paris"], 0, "P", 1, "'P' (position 1)"),
        (["ab c"], 0, " ", 3, "' ' (position 3)"),
    ],
)
def test_unknown_symbols_and_empty_words_are_named(shipped, words, index, symbol, position, reason):
    _, scorer = shipped
    with pytest.raises(UnknownSymbolError) as e:
        scorer.score(words)
    assert (e.value.index, e.value.symbol, e.value.position) == (index, symbol, position)
    assert reason in e.value.reason


def test_no_word_list_means_in_corpus_unknown():
    m = open_model(LEGACY_MODEL)
    assert m.file.words is None
    (s,) = m.scorer.score(["maison"])
    assert s.in_corpus is None and s.logprob < 0


def test_json_is_the_score(shipped):
    """The JSON written directly reads back as exactly the score's numbers and strings."""
    import json

    from service.lm.score import scores_json

    m, scorer = shipped
    words = [*m.words[::50], "zoé", "x", "qu'il"]
    scores = scorer.score(words)
    for s, text in zip(scores, scores_json(scores), strict=True):
        assert json.loads(text) == {
            "word": s.word,
            "logprob": s.logprob,
            "symbols": s.symbols,
            "nll_per_symbol": s.nll_per_symbol,
            "perplexity": s.perplexity,
            "in_corpus": s.in_corpus,
            # Not asked for (lexical=False): null, as for a model without a lexicon.
            "in_lexicon": None,
            "matches": None,
            "old20": None,
            "neighbours": None,
            "nearest": None,
            "bigrams": [
                {"bigram": b, "context": c, "logprob": v}
                for (b, v), c in zip(s.bigrams, s.contexts, strict=True)
            ],
        }
        assert s.contexts == [b[0] for b, _ in s.bigrams]  # the previous symbol
    # Symbols JSON must escape are escaped.
    alphabet = (".", '"', "\\", "a")
    uniform = np.full((4, 4), 0.25, dtype=np.float32)
    (s,) = Scorer(table_lm(uniform, alphabet, np.zeros((4, 4))), None).score(['a"\\'])
    entry = json.loads(scores_json([s])[0])["bigrams"][1]
    assert entry["bigram"] == 'a"' and entry["context"] == "a"
    assert json.loads(scores_json([s])[0])["bigrams"][2]["context"] == '"'


def test_json_with_the_lexicon_figures(shipped, tmp_path):
    """With a lexicon, the JSON carries its figures, each equal to the lexicon's own answers."""
    import json

    from service.lm.lexicon import LexiconSource
    from service.lm.score import scores_json

    m, shipped_scorer = shipped
    listed = tmp_path / "words.tsv"
    listed.write_text("tête\t5.5\ntete\t3.8\nfête\t4.9\nmaison\t5.6\nraison\t5.2\n")
    source = LexiconSource(None, listed, ["saison"])
    scorer = Scorer(shipped_scorer.lm, m.words, source)
    lexicon = source.get()
    scores = scorer.score(["tete", "maison", "zoé"], lexical=True)
    for s, text in zip(scores, scores_json(scores), strict=True):
        got = json.loads(text)
        nb = lexicon.neighbourhood(s.word)
        assert got["in_lexicon"] == (s.word in lexicon)
        assert got["matches"] == [{"word": e.word, "zipf": e.zipf} for e in lexicon.lookup(s.word)]
        assert got["old20"] == nb.old20
        assert got["neighbours"] == list(nb.neighbours)
        assert got["nearest"] == [{"word": w, "distance": d} for w, d in nb.nearest]
    tete, maison, _ = (json.loads(t) for t in scores_json(scores))
    assert [e["word"] for e in tete["matches"]] == ["tête", "tete"]
    assert "tête" in tete["neighbours"] or tete["nearest"][0]["distance"] == 1
    assert maison["in_lexicon"] and "raison" in maison["neighbours"]
    assert "saison" in maison["neighbours"]  # the extra (corpus) words are entries too
    assert "bigrams" not in json.loads(scores_json(scores, bigrams=False)[0])
