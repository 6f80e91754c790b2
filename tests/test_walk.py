"""The reference loop's walk in C (service/lm/_walk.c) and in Python give the same words.

The extension is optional (an install without a compiler runs the Python loop), so both paths
must be the reference loop exactly: on the notebook's model against the notebook's own code, and
against each other on made-up models with cuts, unreachable symbols (probability 0) and states
of higher order.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.lm import sampling
from service.lm.lm import LanguageModel
from service.lm.ngram import NgramCounts, kneser_ney
from service.lm.ready import open_model
from service.lm.sampling import Sampler
from tests.conftest import SHIPPED_MODEL, generated_word_lists
from tests.reference import notebook_on

SEEDS = [0, 1, 2147483647, 2**63 - 1]


def test_the_extension_is_built_here():
    """`make install` compiles it on this machine (gcc is there): the fast path is the one the
    benchmarks measure."""
    assert sampling._walk_block_c is not None
    assert Sampler(open_model(SHIPPED_MODEL).lm).accelerated


@pytest.mark.parametrize("seed", SEEDS)
def test_c_and_python_walks_give_the_notebooks_words(seed):
    m = open_model(SHIPPED_MODEL)
    expected = notebook_on(m.file.W, m.alphabet).sample(60, seed)
    assert Sampler(m.lm).sample(60, seed) == expected
    assert Sampler(m.lm, accelerated=False).sample(60, seed) == expected


def made_up(letters: str, seed: int, zero_column: int | None = None) -> LanguageModel:
    alphabet = (".", *sorted(letters))
    V = len(alphabet)
    W = torch.randn((V, V), generator=torch.Generator().manual_seed(seed)) * 2
    P = torch.softmax(W, 1)
    if zero_column is not None:
        P[:, zero_column] = 0.0  # a symbol no state can draw
    with np.errstate(divide="ignore"):
        logP = np.log(P.double().numpy())
    return LanguageModel.bigram(P.numpy(), logP, alphabet, np.zeros((V, V), dtype=np.int64))


@pytest.mark.parametrize("cut", [1, 2, 5, 256])
@pytest.mark.parametrize("zero", [None, 2])
def test_c_and_python_walks_agree_with_cuts_and_zeros(cut, zero):
    lm = made_up("abcdé", 7, zero)
    for seed in SEEDS:
        fast = Sampler(lm).sample(700, seed, cut)
        slow = Sampler(lm, accelerated=False).sample(700, seed, cut)
        assert fast == slow
        assert all(len(w) <= cut for w in fast)
        if zero is not None:
            assert not any(lm.alphabet[zero] in w for w in fast)


@pytest.mark.parametrize("name", ["greek-cyrillic", "cjk-emoji-symbols", "digits"])
def test_c_and_python_walks_agree_at_higher_orders(name):
    lm = kneser_ney(NgramCounts.from_words(generated_word_lists()[name], 4)).lm
    for seed in SEEDS[:2]:
        assert Sampler(lm).sample(500, seed) == Sampler(lm, accelerated=False).sample(500, seed)


def test_the_walk_refuses_inconsistent_buffers():
    lm = made_up("ab", 1)
    E = np.ones((4, lm.V), dtype=np.float32)
    out, cuts = np.empty(4, np.int32), np.empty(4, np.uint8)
    with pytest.raises(ValueError, match="inconsistent"):
        sampling._walk_block_c(lm.P, lm.next, E, lm.V, 0, lm.S, 0, 5, out, cuts)  # bad state
    with pytest.raises(ValueError, match="inconsistent"):
        sampling._walk_block_c(lm.P, lm.next, E, lm.V, 0, 0, 0, 5, out[:2], cuts)  # short out
